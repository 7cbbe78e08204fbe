"""What every datastore check shares: the record it fills, its time budget, the TCP
probe, a small HTTP GET, and the wording of errors a person can act on.

A check never puts a credential in its record: error messages are built here from
host, port and user name, never from a client library's URI or exception text that
could carry a password.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from collector.context import Deadline
from collector.redact import MASK, is_secret_key

STATUSES = ("ok", "unreachable", "timeout", "auth_failed", "error", "not_ready", "not_configured")
# a TCP connect that failed for one of these causes found no server at the address; a
# timeout did not (something there may drop or hold the connection)
NOTHING_LISTENS = ("refused", "no_route")
HTTP_BODY_LIMIT = 4096
# A check waits for an answer up to LATE_FACTOR times its budget after its client library
# is ready: an answer after the budget is late (recorded with its time), none is a timeout.
LATE_FACTOR = 2.0


@dataclass
class Endpoint:
    """One address to check, with where it came from and the credentials to use.
    `secrets` stays in memory: nothing in it is ever copied into a record."""

    name: str
    kind: str
    host: Optional[str]
    port: Optional[int]
    source: str
    description: str = ""
    group: Optional[str] = None  # the component a member or node belongs to
    user: Optional[str] = None
    secrets: Dict[str, str] = field(default_factory=dict, repr=False)
    options: Dict[str, Any] = field(default_factory=dict)  # kind-specific, never secret
    notes: List[str] = field(default_factory=list)
    problem: Optional[str] = None  # why it cannot be checked (bad config value)
    # set for an address a server may well not listen at (a catalog default main.json has no
    # key for): when nothing answers there, the record is not_configured with this note, not down
    if_absent: Optional[str] = None

    @property
    def address(self) -> str:
        return address_text(self.host, self.port)

    def password(self, key: str = "password") -> Optional[str]:
        value = self.secrets.get(key)
        return value if value else None


class CheckFailed(Exception):
    """Ends a check with a status and a one-line message (none for not_configured).  `cause`
    says why a TCP connection failed: refused, no_route, timeout, resolve or other."""

    def __init__(self, status: str, message: Optional[str], cause: Optional[str] = None):
        assert status in STATUSES, status
        super().__init__(message)
        self.status = status
        self.message = message
        self.cause = cause


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.1f}".rstrip("0").rstrip(".") if seconds < 10 else f"{seconds:.0f}"


class Check:
    """The state of one endpoint's check: its record, its deadline, what it is doing
    now (named in the message when it runs out of time), and clean-up work that runs
    after the record is handed over (closing a client must not delay the result).

    Time: the TCP probe has `timeout` seconds.  The budget of the check proper starts
    when its client library is ready (`client_ready`): an answer within `timeout` is on
    time, one within `LATE_FACTOR` times that is late, and no answer by then is a
    timeout.  Nothing ever runs past `hard_stop`, the end the runner set for every check."""

    def __init__(self, endpoint: Endpoint, timeout: float, hard_stop: Optional[Deadline] = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.hard_stop = hard_stop if hard_stop is not None else Deadline(timeout * (1 + LATE_FACTOR))
        self.window = min(timeout, self.hard_stop.remaining())  # what the current phase may wait
        self.deadline = Deadline(self.window)
        self.started = time.monotonic()
        self.ready_at: Optional[float] = None
        self.phase = "connecting"
        self.record = base_record(endpoint)
        self._cleanups: List[Callable[[], None]] = []
        self.abandoned = threading.Event()

    # -- time ---------------------------------------------------------------------
    def client_ready(self) -> None:
        """The budget starts now (the client library is loaded): the check may wait until
        LATE_FACTOR x timeout from now, never past the hard stop."""
        self.ready_at = time.monotonic()
        self.record["client_ready_s"] = round(self.ready_at - self.started, 3)
        self.window = min(self.timeout * LATE_FACTOR, self.hard_stop.remaining())
        self.deadline = Deadline(self.window)

    def remaining(self) -> float:
        return self.deadline.bound(max(self.window, 0.01))

    def out_of_time(self) -> bool:
        return self.deadline.remaining() < 0.02

    def timeout_message(self, what: Optional[str] = None, waited: Optional[float] = None) -> str:
        what = what or self.phase
        waited = self.window if waited is None else waited
        return f"no reply within {fmt_seconds(waited)} s from {self.endpoint.address} ({what})"

    def waited(self) -> float:
        """Seconds since the current phase's clock started (the client being ready, or the start)."""
        return time.monotonic() - (self.ready_at if self.ready_at is not None else self.started)

    # -- recording ----------------------------------------------------------------
    def set(self, key: str, value: Any) -> None:
        self.record[key] = value

    def detail(self, key: str, value: Any) -> None:
        details = dict(self.record.get("details") or {})
        details[key] = value
        self.record["details"] = details  # replaced, never mutated in place

    def command_error(self, command: str, message: str) -> None:
        errors = dict(self.record.get("command_errors") or {})
        errors[command] = message
        self.record["command_errors"] = errors

    def note(self, message: str) -> None:
        self.record["notes"] = list(self.record.get("notes") or []) + [message]

    def on_cleanup(self, func: Callable[[], None]) -> None:
        self._cleanups.append(func)

    def cleanup(self) -> None:
        for func in reversed(self._cleanups):
            try:
                func()
            except Exception:  # closing a broken client may fail; nothing to record
                pass
        self._cleanups.clear()

    def finish(self, status: str, error: Optional[str] = None) -> dict:
        now = time.monotonic()
        self.record["status"] = status
        self.record["error"] = error
        self.record["duration"] = round(now - self.started, 3)
        self.record["budget_s"] = self.timeout
        if self.ready_at is not None and status not in ("timeout", "unreachable"):
            answered = now - self.ready_at
            self.record["answered_s"] = round(answered, 3)  # from the client being ready
            self.record["late"] = answered > self.timeout
        return self.record

    # -- the TCP probe --------------------------------------------------------------
    def tcp_probe(self, port: Optional[int] = None) -> float:
        """Open and close one TCP connection; records reachable and connect_ms.
        Raises CheckFailed("unreachable") with the reason (and its cause) when it cannot connect."""
        self.phase = "TCP connect"
        port = port or self.endpoint.port
        try:
            ms = tcp_connect_ms(self.endpoint.host, port, self.remaining(), self.window)
        except CheckFailed:
            self.record["reachable"] = False
            raise
        self.record["reachable"] = True
        self.record["connect_ms"] = ms
        return ms


def base_record(endpoint: Endpoint) -> dict:
    return {
        "name": endpoint.name,
        "kind": endpoint.kind,
        "group": endpoint.group,
        "description": endpoint.description,
        "host": endpoint.host,
        "port": endpoint.port,
        "source": endpoint.source,
        "user": endpoint.user,
        "status": None,
        "reachable": None,
        "connect_ms": None,
        "latency_ms": None,
        "version": None,
        "error": None,
        "cause": None,  # a failed TCP connection's cause: refused, no_route, timeout, resolve, other
        "duration": None,
        # time: the check's budget, when its client library was ready (s after the start),
        # how long the answer took from then, and whether that was after the budget
        "budget_s": None,
        "client_ready_s": None,
        "answered_s": None,
        "late": None,
        "notes": list(endpoint.notes),
        "details": {},
        "command_errors": {},
    }


def ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 2)


def tcp_connect_ms(host: Optional[str], port: Optional[int], timeout: float, nominal: float) -> float:
    started = time.monotonic()
    sock = None
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise CheckFailed("unreachable", connect_error_message(exc, host, port, nominal),
                          connect_error_cause(exc)) from None
    finally:
        if sock is not None:
            sock.close()
    return ms_since(started)


def address_text(host: Optional[str], port: Optional[int]) -> str:
    host = host or "?"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def connect_error_cause(exc: BaseException) -> str:
    """Why a TCP connection failed, in one word: refused, no_route, timeout, resolve or other."""
    if isinstance(exc, socket.gaierror):
        return "resolve"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if getattr(exc, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "no_route"
    return "other"


def connect_error_message(exc: BaseException, host: Optional[str], port: Optional[int], timeout: float) -> str:
    where = address_text(host, port)
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name {host!r}: {exc.strerror or exc}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"no TCP connection to {where} within {fmt_seconds(timeout)} s (host down or port filtered)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused on {where}"
    code = getattr(exc, "errno", None)
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"no route to {where} ({exc.strerror or exc})"
    return f"cannot connect to {where}: {getattr(exc, 'strerror', None) or exc}"


def scrub_values(data: Any, secrets: List[str]) -> Any:
    """A copy of `data` where every occurrence of one of `secrets` in a string is masked:
    the last guard that keeps an endpoint's own credentials out of its record."""
    secrets = [s for s in secrets if isinstance(s, str) and len(s) >= 3]
    if not secrets:
        return data
    if isinstance(data, str):
        for secret in secrets:
            data = data.replace(secret, MASK)
        return data
    if isinstance(data, dict):
        return {key: scrub_values(value, secrets) for key, value in data.items()}
    if isinstance(data, list):
        return [scrub_values(item, secrets) for item in data]
    return data


def mask_secrets(data: Any) -> Any:
    """A copy of `data` where every value under a secret-named key is masked, scalars
    included, and a command line's `--password value` / `--password=value` are masked."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if isinstance(key, str) and is_secret_key(key) and value not in (None, "", [], {}):
                out[key] = MASK
            else:
                out[key] = mask_secrets(value)
        return out
    if isinstance(data, list):
        if all(isinstance(item, str) for item in data):
            return mask_argv(data)
        return [mask_secrets(item) for item in data]
    return data


def mask_argv(argv: List[str]) -> List[str]:
    out: List[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if arg.startswith("-"):
            name, eq, _value = arg.lstrip("-").partition("=")
            if is_secret_key(name.replace("-", "_")):
                if eq:
                    out.append(arg[: len(arg) - len(_value)] + MASK)
                else:
                    out.append(arg)
                    mask_next = True
                continue
        out.append(arg)
    return out


def split_host_port(value: str, default_port: Optional[int]) -> Tuple[str, Optional[int]]:
    """'host', 'host:port', '[v6]:port' -> (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if port:
        number = int(port)  # ValueError for the caller
        if not 0 < number < 65536:
            raise ValueError(f"port {number} out of range")
        return host, number
    return host, default_port
