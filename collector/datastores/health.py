"""The platform services' status handlers: GET /<service>/health (200 "OK" while the
process serves) and /<service>/readiness (200 {"status": "OK"}, or 503 {"status":
"FAIL", "failed": [...]})."""

from __future__ import annotations

import json
from typing import Any

from collector.datastores.common import Check, CheckFailed, HttpFailure, body_text, http_get, one_line

BODY_LIMIT = 4096


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _get(chk: Check, path: str) -> dict:
    ep = chk.endpoint
    chk.phase = f"GET {path}"
    url = f"http://{ep.address}{path}"
    try:
        reply = http_get(ep.host, ep.port, path, chk.deadline, chk.timeout, limit=BODY_LIMIT)
    except HttpFailure as exc:
        return {"url": url, "status_code": None, "ms": None, "body": None, "error": exc.message,
                "_failure": exc.kind}
    text = body_text(reply.body)
    return {"url": url, "status_code": reply.status, "ms": reply.ms, "body": text,
            "body_truncated": reply.truncated, "error": None}


def check(chk: Check) -> None:
    ep = chk.endpoint
    service = ep.options.get("service") or ep.name
    health = _get(chk, f"/{service}/health")
    failure = health.pop("_failure", None)
    chk.detail("health", health)
    if failure == "timeout":
        raise CheckFailed("timeout", health["error"])
    if failure is not None:
        raise CheckFailed("error", health["error"])
    chk.set("latency_ms", health["ms"])
    readiness = _get(chk, f"/{service}/readiness")
    failure = readiness.pop("_failure", None)
    parsed = _parse(readiness["body"]) if readiness.get("body") else None
    readiness["ready"] = readiness["status_code"] == 200 if failure is None else None
    readiness["failed"] = parsed.get("failed") if isinstance(parsed, dict) else None
    readiness["status"] = parsed.get("status") if isinstance(parsed, dict) else None
    chk.detail("readiness", readiness)
    if health["status_code"] != 200:
        raise CheckFailed("error", f"HTTP {health['status_code']} from {health['url']}: "
                                   f"{one_line(health['body'] or '', 120)} (does this port serve {service}?)")
    if failure == "timeout":
        raise CheckFailed("timeout", readiness["error"])
    if failure is not None:
        raise CheckFailed("error", readiness["error"])
    if readiness["status_code"] != 200:
        failed = readiness["failed"]
        what = f"failed: {', '.join(str(f) for f in failed)}" if failed else one_line(readiness["body"] or "", 120)
        raise CheckFailed("error", f"{service} is not ready (HTTP {readiness['status_code']} from "
                                   f"{readiness['url']}; {what})")
