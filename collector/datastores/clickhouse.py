"""ClickHouse: TCP reachability of the native port, and `SELECT version(), uptime()`
through the HTTP interface when it answers (credentials in X-ClickHouse-* headers,
never in the URL)."""

from __future__ import annotations


from collector.datastores.common import Check, CheckFailed
from collector.datastores.httpget import HttpFailure, body_text, http_get
from collector.plain import one_line

QUERY = "/?query=SELECT%20version()%2C%20uptime()%20FORMAT%20TabSeparated"


def check(chk: Check) -> None:
    ep = chk.endpoint
    port = int(ep.options.get("http_port") or 8123)
    headers = {"X-ClickHouse-User": ep.user or "default"}
    if ep.password():
        headers["X-ClickHouse-Key"] = ep.password()
    http = {"port": port, "status_code": None, "ms": None, "error": None}
    chk.detail("http", http)
    chk.phase = f"HTTP query on port {port}"
    try:
        reply = http_get(ep.host, port, QUERY, chk.deadline, chk.window, headers=headers,
                         label="HTTP interface, SELECT version(), uptime()")
    except HttpFailure as exc:
        http["error"] = exc.message
        chk.detail("http", http)
        if exc.kind == "timeout":
            raise CheckFailed("timeout", exc.message) from None
        chk.note(f"HTTP interface on port {port} did not answer ({exc.message}); version unknown")
        return
    http.update(status_code=reply.status, ms=reply.ms)
    chk.detail("http", http)
    text = body_text(reply.body).strip()
    if reply.status == 200:
        parts = text.split("\t")
        chk.set("latency_ms", reply.ms)
        chk.set("version", parts[0] or None)
        if len(parts) > 1 and parts[1].strip().isdigit():
            chk.detail("uptime_s", int(parts[1]))
        return
    message = one_line(text, 200)
    http["error"] = f"HTTP {reply.status}: {message}"
    chk.detail("http", http)
    if reply.status in (401, 403, 516) or "Authentication failed" in text or "AUTHENTICATION_FAILED" in text:
        raise CheckFailed("auth_failed", f"authentication failed for user {ep.user or 'default'} on "
                                         f"{ep.host}:{port} (HTTP {reply.status})")
    chk.note(f"the HTTP interface on port {port} answered HTTP {reply.status}: {message}")
