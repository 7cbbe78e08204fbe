"""SSDB, over the Redis wire protocol in RESP2: auth (when main.json gives a password),
ping, INFO read raw and parsed from SSDB's array form, and dbsize."""

from __future__ import annotations

import time
from typing import Optional

import redis

from collector.datastores.common import Check, ms_since
from collector.datastores.resp import info_version, parse_info, ssdb_dbsize, ssdb_summary
from collector.datastores.respclient import RespClient, reply_error_text


def authenticate(chk: Check, client: RespClient) -> None:
    """AUTH with the configured password; records details.auth: ok, "no password
    configured", or "not needed" (the server has none set: the check goes on without)."""
    password = chk.endpoint.password()
    if not password:
        chk.detail("auth", "no password configured")
        return
    try:
        reply = client.auth(password)
    except redis.exceptions.ResponseError as exc:
        # another error reply (Kvrocks: "ERR Invalid password"): go on without; a server that
        # wants a password then refuses PING, which makes the check auth_failed
        chk.detail("auth", "refused")
        chk.note(f"AUTH: {reply_error_text(exc)}")
        return
    if reply is not None:
        password_key = chk.endpoint.options.get("password_from") or "main.json"
        chk.detail("auth", "not needed")
        chk.note(f"{password_key} gives a password, but {chk.endpoint.address} has none set: "
                  f"checked without it (AUTH: {reply})")
        return
    chk.detail("auth", "ok")


def ping(chk: Check, client: RespClient) -> None:
    started = time.monotonic()
    reply = client.command("PING")
    chk.set("latency_ms", ms_since(started))
    if reply not in (b"PONG", "PONG"):
        chk.note(f"PING replied {reply!r:.60}, not PONG")


def connect_and_read_info(chk: Check, client: RespClient) -> Optional[dict]:
    """Connect, AUTH when main.json gives a password, PING, and INFO parsed (SSDB's array
    form or Redis's text form); None, with the error recorded, when INFO fails."""
    client.connect()
    authenticate(chk, client)
    ping(chk, client)
    try:
        return parse_info(client.command("INFO"))
    except redis.exceptions.ResponseError as exc:
        chk.command_error("info", reply_error_text(exc))
    except ValueError as exc:
        chk.command_error("info", f"unexpected INFO reply: {exc}")
    return None


def check(chk: Check) -> None:
    client = RespClient(chk, "SSDB")
    parsed = connect_and_read_info(chk, client)
    if parsed is not None:
        chk.set("version", info_version(parsed))
        if parsed["format"] == "ssdb":
            chk.detail("info", ssdb_summary(parsed))
        else:
            chk.note("INFO answered in Redis's text form: this port serves Redis or Kvrocks, not SSDB")
            chk.detail("info", parsed)
    try:
        chk.detail("dbsize_bytes", ssdb_dbsize(client.command("DBSIZE")))  # leveldb's estimate on disk
    except redis.exceptions.ResponseError as exc:
        chk.command_error("dbsize", reply_error_text(exc))
    except ValueError as exc:
        chk.command_error("dbsize", str(exc))
