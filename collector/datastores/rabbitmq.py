"""RabbitMQ: an AMQP connection with the config's user, password and vhost (pika, with
socket, handshake and blocked-connection timeouts); the broker's product, version and
cluster name; depth and consumers of the queues the vendor monitors: the exact names by
passive declare, the wildcard families through the management HTTP API (same
credentials), noted when the API does not answer.  Counts the API gives as null stay
null, never 0."""

from __future__ import annotations

import base64
import json
import socket
import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import pika
from pika import exceptions as pika_errors

from collector.datastores.common import Check, CheckFailed, ms_since
from collector.datastores.httpget import HttpFailure, http_get
from collector.plain import one_line

EXACT_QUEUES = ("oxy_triggers", "oxy_triggers_prior")
FAMILIES = (("trk_*", "trk_"), ("akmta_*", "akmta_"), ("geo_akmta_*", "geo_akmta_"))
QUEUE_FIELDS = ("messages", "messages_ready", "messages_unacknowledged", "consumers", "state")
MAX_QUEUES_PER_FAMILY = 200
API_BODY_LIMIT = 32 * 1024 * 1024
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
# kept out of pika's handshake budget for a second look when the handshake times out
PROBE_SECONDS = 0.25


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class _Rabbit:
    def __init__(self, chk: Check):
        self.chk = chk
        ep = chk.endpoint
        self.user = ep.user or "guest"
        self.vhost = ep.options.get("vhost") or "/"
        budget = max(0.05, chk.remaining() - PROBE_SECONDS)
        self.params = pika.ConnectionParameters(
            host=ep.host, port=ep.port, virtual_host=self.vhost,
            credentials=pika.PlainCredentials(self.user, ep.password() or "", erase_on_connect=True),
            connection_attempts=1, retry_delay=0, socket_timeout=budget, stack_timeout=budget,
            blocked_connection_timeout=budget, client_properties={"connection_name": "akdiag"},
        )
        self.connection: Optional[pika.BlockingConnection] = None

    def connect(self) -> None:
        chk = self.chk
        chk.phase = "AMQP handshake"
        try:
            self.connection = pika.BlockingConnection(self.params)
        except Exception as exc:
            raise self._failure(exc) from None
        chk.on_cleanup(self._close)

    def _close(self) -> None:
        if self.connection is not None and self.connection.is_open:
            self.connection.close()

    def _failure(self, exc: BaseException) -> CheckFailed:
        chk = self.chk
        where = chk.endpoint.address
        if isinstance(exc, pika_errors.ProbableAuthenticationError) or \
                isinstance(exc, pika_errors.AuthenticationError):
            return CheckFailed("auth_failed", f"authentication failed for user {self.user} on {where}")
        if isinstance(exc, pika_errors.ProbableAccessDeniedError):
            return CheckFailed("auth_failed", f"user {self.user} may not use vhost '{self.vhost}' on {where} "
                                              f"(it does not exist or the user has no permission on it)")
        name = type(exc).__name__
        text = str(exc)
        if "StackTimeout" in name or "timeout" in name.lower() or "Timeout" in text:
            first = _first_bytes(chk.endpoint.host, chk.endpoint.port, min(PROBE_SECONDS, chk.remaining()))
            if first and not _looks_like_amqp(first):
                return CheckFailed("error", f"{where} did not answer in AMQP 0-9-1 (its reply starts with "
                                            f"{first[:8].hex(' ')}); is this port RabbitMQ's?")
            return CheckFailed("timeout", chk.timeout_message("AMQP handshake"))
        if "ConnectionRefused" in text or "Connection refused" in text:
            return CheckFailed("unreachable", f"connection refused on {where}")
        if isinstance(exc, pika_errors.IncompatibleProtocolError):
            return CheckFailed("error", f"{where} closed the connection during the AMQP handshake "
                                        "(not a RabbitMQ answering AMQP 0-9-1?)")
        if isinstance(exc, pika_errors.ConnectionClosedByBroker):
            return CheckFailed("error", f"{where} closed the connection: {exc.reply_code} "
                                        f"{one_line(exc.reply_text, 160)}")
        if isinstance(exc, (pika_errors.StreamLostError, pika_errors.AMQPConnectionError)):
            return CheckFailed("error", f"{where} closed the connection ({one_line(text, 160)})")
        return CheckFailed("error", f"AMQP connection to {where} failed: {name}: {one_line(text, 160)}")

    def server_properties(self) -> dict:
        impl = getattr(self.connection, "_impl", None)
        props = getattr(impl, "server_properties", None) or {}
        return {str(_text(k)): _text(v) for k, v in props.items() if k != "capabilities"}

    def open_channel(self):
        self.chk.phase = "channel open"
        try:
            return self.connection.channel()
        except Exception as exc:
            raise self._failure(exc) from None

    def passive_declare(self, queue: str) -> dict:
        chk = self.chk
        chk.phase = f"queue {queue}"
        if chk.out_of_time():
            raise CheckFailed("timeout", chk.timeout_message(f"passive declare of {queue}"))
        channel = self.open_channel()
        try:
            frame = channel.queue_declare(queue, passive=True)
        except pika_errors.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return {"exists": False, "messages": None, "consumers": None}
            return {"exists": None, "messages": None, "consumers": None,
                    "error": f"{exc.reply_code} {one_line(exc.reply_text, 160)}"}
        except Exception as exc:
            raise self._failure(exc) from None
        try:
            channel.close()
        except Exception:
            pass
        return {"exists": True, "messages": frame.method.message_count, "consumers": frame.method.consumer_count}


def _first_bytes(host: str, port: int, seconds: float) -> bytes:
    """After a handshake that timed out: what the server says to a protocol header, in
    `seconds` at most (b"" when nothing)."""
    try:
        with socket.create_connection((host, port), timeout=seconds) as sock:
            sock.settimeout(seconds)
            sock.sendall(AMQP_HEADER)
            return sock.recv(8)
    except OSError:
        return b""


def _looks_like_amqp(data: bytes) -> bool:
    """A method frame on channel 0 (Connection.Start), or a protocol header back."""
    return data.startswith(b"AMQP") or data[:3] == b"\x01\x00\x00"


def _api_queues(chk: Check, user: str, vhost: str) -> Optional[List[dict]]:
    """The vhost's queues from the management API, or None (with a note) when it does
    not answer.  The credentials go in an Authorization header built here, in memory."""
    ep = chk.endpoint
    port = int(ep.options.get("management_port") or 15672)
    path = f"/api/queues/{quote(vhost, safe='')}?columns=name,{','.join(QUEUE_FIELDS)}"
    where = f"http://{ep.host}:{port}/api/queues/{quote(vhost, safe='')}"
    api: Dict[str, Any] = {"url": where, "status": None, "error": None}
    chk.detail("management_api", api)
    token = base64.b64encode(f"{user}:{ep.password() or ''}".encode()).decode()
    chk.phase = "management API"
    families = ", ".join(name for name, _prefix in FAMILIES)
    def not_counted(status: str, error: str, what_happened: str) -> None:
        api.update(status=status, error=error)
        chk.detail("management_api", api)
        chk.note(f"management API {where} {what_happened}; queues {families} not counted")

    try:
        reply = http_get(ep.host, port, path, chk.deadline, chk.window,
                         headers={"Authorization": f"Basic {token}"}, limit=API_BODY_LIMIT,
                         label="management API")
    except HttpFailure as exc:
        return not_counted("no_answer", exc.message, f"did not answer ({exc.message})")
    api["status_code"] = reply.status
    api["ms"] = reply.ms
    if reply.status in (401, 403):
        return not_counted("refused", f"HTTP {reply.status}: user {user} was refused",
                           f"refused user {user} (HTTP {reply.status})")
    if reply.status != 200 or reply.truncated:
        reason = "reply too large" if reply.truncated else f"HTTP {reply.status} {reply.reason}"
        return not_counted("error", reason, f"answered {reason}")
    try:
        queues = json.loads(reply.body.decode("utf-8", "replace"))
        if not isinstance(queues, list):
            raise ValueError("not a list")
    except ValueError:
        return not_counted("error", "the reply is not a JSON list of queues", "did not answer with a list of queues")
    api["status"] = "ok"
    chk.detail("management_api", api)
    return [q for q in queues if isinstance(q, dict)]


def _sum(values: List[Any]) -> Optional[int]:
    """The total, or None when any of the values is unknown (null)."""
    if any(not isinstance(v, int) or isinstance(v, bool) for v in values):
        return None
    return sum(values)


def _families(queues: List[dict]) -> dict:
    out = {}
    for pattern, prefix in FAMILIES:
        matched = [q for q in queues if isinstance(q.get("name"), str) and q["name"].startswith(prefix)]
        matched.sort(key=lambda q: q["name"])
        out[pattern] = {
            "count": len(matched),
            "messages_total": _sum([q.get("messages") for q in matched]),
            "consumers_total": _sum([q.get("consumers") for q in matched]),
            "queues": [{"name": q["name"], **{f: q.get(f) for f in QUEUE_FIELDS}}
                       for q in matched[:MAX_QUEUES_PER_FAMILY]],
            "truncated": len(matched) > MAX_QUEUES_PER_FAMILY,
        }
    return out


def check(chk: Check) -> None:
    rabbit = _Rabbit(chk)
    chk.detail("vhost", rabbit.vhost)
    if not chk.endpoint.password():
        chk.note(f"main.json gives no RabbitMQ password; connecting as {rabbit.user} with an empty one")
    rabbit.connect()
    props = rabbit.server_properties()
    chk.set("version", props.get("version"))
    chk.detail("server", {k: props.get(k) for k in ("product", "version", "cluster_name", "platform")})
    started = time.monotonic()
    channel = rabbit.open_channel()
    chk.set("latency_ms", ms_since(started))  # one Channel.Open round trip
    try:
        channel.close()
    except Exception:
        pass
    exact = {}
    for queue in EXACT_QUEUES:
        exact[queue] = rabbit.passive_declare(queue)
        chk.detail("queues", dict(exact))
    queues = _api_queues(chk, rabbit.user, rabbit.vhost)
    chk.detail("queue_families", _families(queues) if queues is not None else None)
