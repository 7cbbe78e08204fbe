"""A small HTTP GET for the status handlers of the datastores and the platform's services.
A module of its own, imported by the checks that speak HTTP (clickhouse, health, rabbitmq:
the checks load each under one import lock), so that http.client, and email and ssl with
it, load only when such a check runs."""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from collector.context import Deadline
from collector.datastores.common import HTTP_BODY_LIMIT, address_text, connect_error_message, fmt_seconds, ms_since


@dataclass
class HttpReply:
    """One HTTP reply: status, reason, body (cut at its limit), time taken, headers."""

    status: int
    reason: str
    body: bytes
    truncated: bool
    ms: float
    headers: Dict[str, str]


class HttpFailure(Exception):
    """An HTTP request that got no reply: kind is refused|unreachable|timeout|closed|garbage."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def http_get(host: str, port: int, path: str, deadline: Deadline, nominal: float,
             headers: Optional[Dict[str, str]] = None, limit: int = HTTP_BODY_LIMIT,
             label: Optional[str] = None) -> HttpReply:
    """GET http://host:port/path with the standard library client: no proxy from the
    environment (these are the host's own services), no redirects followed, every
    socket operation bounded by what is left of `deadline`, the body cut at `limit`.
    `label` names the request in messages (default: GET path)."""
    where = address_text(host, port)
    label = label or f"GET {path}"
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=deadline.bound(nominal))
    try:
        try:
            conn.connect()
        except OSError as exc:
            kind = "timeout" if isinstance(exc, (socket.timeout, TimeoutError)) else "refused"
            raise HttpFailure(kind, connect_error_message(exc, host, port, nominal)) from None
        try:
            conn.request("GET", path, headers={"User-Agent": "akdiag", "Accept": "*/*", **(headers or {})})
            conn.sock.settimeout(deadline.bound(nominal))
            response = conn.getresponse()
            chunks: List[bytes] = []
            size = 0
            truncated = False
            while True:
                if conn.sock is not None:
                    conn.sock.settimeout(deadline.bound(nominal))
                if deadline.expired():
                    raise socket.timeout()
                chunk = response.read(min(65536, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    truncated = True
                    break
            body = b"".join(chunks)[:limit]
            reply_headers = {k.lower(): v for k, v in response.getheaders()}
            return HttpReply(response.status, response.reason, body, truncated, ms_since(started), reply_headers)
        except (socket.timeout, TimeoutError):
            raise HttpFailure("timeout", f"no reply within {fmt_seconds(nominal)} s from {where} ({label})") from None
        except (http.client.BadStatusLine, http.client.LineTooLong, http.client.HTTPException) as exc:
            if isinstance(exc, http.client.RemoteDisconnected):
                raise HttpFailure("closed", f"{where} closed the connection without an HTTP reply ({label})") from None
            raise HttpFailure("garbage", f"{where} did not answer in HTTP ({label}: {type(exc).__name__})") from None
        except ConnectionError:
            raise HttpFailure("closed", f"{where} closed the connection without an HTTP reply ({label})") from None
        except OSError as exc:
            raise HttpFailure("closed", f"error talking to {where} ({label}): {exc.strerror or exc}") from None
    finally:
        conn.close()


def body_text(body: bytes, limit: int = HTTP_BODY_LIMIT) -> str:
    return body[:limit].decode("utf-8", "replace")
