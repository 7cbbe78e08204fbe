"""One redis-py connection to a Redis-protocol server (SSDB, Kvrocks, Redis), spoken in
RESP2 (SSDB rejects RESP3's HELLO), with no client-side retries and no CLIENT SETINFO
on connect, every reply read raw (SSDB's INFO is an array redis-py's own parser
cannot read) and every read bounded by what is left of the check's time."""

from __future__ import annotations

import inspect
from typing import Any, Optional

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.retry import Retry

from collector.datastores.common import Check, CheckFailed
from collector.plain import one_line

try:
    _INIT_PARAMS = set(inspect.signature(redis.connection.AbstractConnection.__init__).parameters)
except (AttributeError, TypeError, ValueError):  # pragma: no cover - older redis-py
    _INIT_PARAMS = set(inspect.signature(Connection.__init__).parameters)
try:
    _READ_TIMEOUT = "timeout" in inspect.signature(Connection.read_response).parameters
except (TypeError, ValueError):  # pragma: no cover
    _READ_TIMEOUT = False

# a server without a password answers AUTH with one of these (lower-cased): Redis 6 and later
# "AUTH <password> called without any password configured for the default user. Are you sure
# your configuration is correct?", Redis 5 and Kvrocks "Client sent AUTH, but no password is set"
NO_PASSWORD_SET = ("without any password configured", "no password is set")


def no_password_set(exc: BaseException) -> bool:
    """Whether an error reply to AUTH says that the server has no password to check."""
    text = str(exc).lower()
    return any(words in text for words in NO_PASSWORD_SET)


def _connection_kwargs(chk: Check) -> dict:
    kwargs: dict = {
        "host": chk.endpoint.host,
        "port": chk.endpoint.port,
        "socket_connect_timeout": chk.remaining(),
        "socket_timeout": chk.remaining(),
        "socket_keepalive": False,
        "health_check_interval": 0,
        "decode_responses": False,
        "retry": Retry(NoBackoff(), 0),
    }
    if "protocol" in _INIT_PARAMS:
        kwargs["protocol"] = 2
    if "driver_info" in _INIT_PARAMS:
        kwargs["driver_info"] = None
    elif "lib_name" in _INIT_PARAMS:
        kwargs["lib_name"] = None
        kwargs["lib_version"] = None
    return kwargs


class RespClient:
    """The password is sent with an explicit AUTH command (never given to redis-py,
    so it can never appear in its exceptions or its connection's repr)."""

    def __init__(self, chk: Check, protocol_name: str):
        self.chk = chk
        self.protocol_name = protocol_name
        self.conn = Connection(**_connection_kwargs(chk))
        chk.on_cleanup(self.conn.disconnect)

    @property
    def where(self) -> str:
        return self.chk.endpoint.address

    def connect(self, phase: str = "connecting") -> None:
        self.chk.phase = phase
        self.conn.socket_connect_timeout = self.conn.socket_timeout = self.chk.remaining()
        try:
            self.conn.connect()
        except Exception as exc:  # mapped to a status and a message of our own
            raise self._failure(exc, "connect") from None

    def command(self, *args: Any, name: Optional[str] = None) -> Any:
        """Send one command; its raw reply.  A server's error reply to this command
        raises redis.ResponseError (the caller records it for that command); anything
        that ends the conversation raises CheckFailed."""
        name = name or str(args[0]).upper()
        self._start(name)
        try:
            return self._round_trip(args)
        except redis.exceptions.ResponseError:
            raise
        except Exception as exc:  # AuthenticationError included: it ends the conversation
            raise self._failure(exc, name) from None

    def auth(self, password: str) -> Optional[str]:
        """AUTH with `password`: None when the server accepts it.  A server that has no
        password set (redis-py closes the connection on its reply) is connected to again,
        without one, and its reply is returned.  A refused password raises
        CheckFailed("auth_failed"); another error reply raises redis.ResponseError."""
        self._start("AUTH")
        try:
            self._round_trip(("AUTH", password))
        except Exception as exc:
            if not no_password_set(exc):
                if isinstance(exc, redis.exceptions.ResponseError):
                    raise
                raise self._failure(exc, "AUTH") from None
            reply = reply_error_text(exc)
        else:
            return None
        self.conn.disconnect()
        self.connect("connecting again without a password")
        return reply

    def _start(self, name: str) -> None:
        self.chk.phase = name
        if self.chk.out_of_time():
            raise CheckFailed("timeout", self.chk.timeout_message(name))

    def _round_trip(self, args: tuple) -> Any:
        self.conn.send_command(*args, check_health=False)
        if _READ_TIMEOUT:
            return self.conn.read_response(timeout=self.chk.remaining())
        return self.conn.read_response()

    def _failure(self, exc: BaseException, what: str) -> CheckFailed:
        ep = self.chk.endpoint
        password_key = ep.options.get("password_from") or "its password key"
        if isinstance(exc, redis.exceptions.AuthenticationError) or "NOAUTH" in str(exc):
            if ep.password():
                return CheckFailed("auth_failed", f"authentication failed on {self.where}: the password from "
                                                  f"{password_key} was refused")
            return CheckFailed("auth_failed", f"{self.where} requires a password and {password_key} gives none")
        if isinstance(exc, redis.exceptions.TimeoutError):
            return CheckFailed("timeout", self.chk.timeout_message(what))
        if isinstance(exc, (redis.exceptions.InvalidResponse,)) or "Protocol Error" in str(exc):
            return CheckFailed("error", f"{self.where} did not answer in the Redis protocol "
                                        f"({self.protocol_name} expected) to {what}")
        if isinstance(exc, redis.exceptions.ConnectionError):
            text = str(exc)
            if "Connection refused" in text or "Error 111" in text:
                return CheckFailed("unreachable", f"connection refused on {self.where}")
            if "closed" in text.lower() or "reset" in text.lower() or "Error while reading" in text:
                return CheckFailed("error", f"{self.where} closed the connection without a reply to {what}")
            return CheckFailed("error", f"cannot talk to {self.where} ({what}): {one_line(text, 160)}")
        if isinstance(exc, (ValueError, UnicodeError, IndexError)):
            return CheckFailed("error", f"{self.where} did not answer in the Redis protocol "
                                        f"({self.protocol_name} expected) to {what}")
        return CheckFailed("error", f"{what} on {self.where} failed: {type(exc).__name__}: {one_line(exc, 160)}")


def reply_error_text(exc: BaseException) -> str:
    return one_line(str(exc), 200)
