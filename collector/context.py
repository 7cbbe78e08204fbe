"""The explicit context every collector receives: where the platform lives,
how long it may take, and the one writer through which it puts files in the bundle."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import psutil

from collector import live

if TYPE_CHECKING:  # pragma: no cover
    from collector.bundle.writer import CollectorWriter
    from collector.catalog import Catalog


class DeadlineExceeded(Exception):
    """Raised by a collector that notices it has run out of time."""


class Deadline:
    """A point in monotonic time after which work must stop."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def bound(self, seconds: float) -> float:
        """The smaller of `seconds` and what is left, never below a few milliseconds
        so that a call given this timeout fails fast rather than blocking."""
        return max(0.01, min(seconds, self.remaining()))

    def check(self) -> None:
        if self.expired():
            raise DeadlineExceeded(f"run deadline of {self.seconds:g} s reached")

    def child(self, seconds: float) -> "Deadline":
        """A deadline of `seconds` from now that never outlives this one."""
        return Deadline(min(seconds, self.remaining()))


@dataclass(frozen=True)
class CollectOptions:
    log_lines: int = 5000
    log_bytes: int = 2 * 1024 * 1024
    log_total_bytes: int = 100 * 1024 * 1024
    log_depth: int = 6
    cpu_sample_seconds: float = 0.5
    command_timeout: float = 10.0
    datastore_timeout: float = 3.0
    with_logs: bool = True
    only: Optional[Tuple[str, ...]] = None  # collector names; None means all
    since: Optional[float] = None  # epoch seconds: read logs back to this time; None means tails


class SocketSnapshot:
    """The host's TCP and UDP sockets, read once per run on first use and shared by every
    collector of the run (they run in threads: the first asks, the others wait for it).
    psutil.net_connections re-reads every /proc/net table and every process's descriptors,
    so at 100,000 sockets each read costs seconds and tens of MB: only the summaries the
    collectors need are kept (listening sockets, TCP states, socket states per PID)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = False
        self.reads = 0  # how many times the kernel's tables were read: one per run
        self.seconds: Optional[float] = None
        self.sockets = 0
        self.error: Optional[str] = None  # why the tables could not be read
        self.unattributed = 0  # sockets whose process was hidden from this user
        self._listening: List[tuple] = []
        self._tcp_states: Counter = Counter()
        self._by_pid: Dict[int, Counter] = {}
        self._listening_records: Optional[List[dict]] = None

    def _take(self) -> None:
        with self._lock:
            if self._taken:
                return
            started = time.monotonic()
            self.reads += 1
            try:
                self._summarize(psutil.net_connections(kind="inet"))
            except psutil.AccessDenied:
                self.error = "the host's socket tables could not be read: permission denied (run as root)"
            except (psutil.Error, OSError) as exc:
                self.error = f"the host's socket tables could not be read: {exc}"
            self.seconds = round(time.monotonic() - started, 3)
            self._taken = True

    def _summarize(self, connections: list) -> None:
        self.sockets = len(connections)
        for conn in connections:
            is_tcp = conn.type == socket.SOCK_STREAM
            if is_tcp:
                self._tcp_states[conn.status] += 1
            if conn.pid is None:
                self.unattributed += 1
            else:
                self._by_pid.setdefault(conn.pid, Counter())[conn.status] += 1
            if live.is_listening(conn):
                self._listening.append(conn)

    def listening(self) -> List[dict]:
        """Every listening TCP and bound UDP socket, as live.listening_sockets gives them."""
        self._take()
        with self._lock:
            if self._listening_records is None:
                self._listening_records = live.listening_records(self._listening)
            return [dict(record) for record in self._listening_records]

    def tcp_states(self) -> Dict[str, int]:
        self._take()
        return dict(self._tcp_states)

    def states_of(self, pid: int) -> Dict[str, int]:
        """The states of the sockets `pid` holds (those the snapshot could attribute to it)."""
        self._take()
        return dict(self._by_pid.get(pid, {}))

    def errors(self) -> List[str]:
        """What a collector built on the snapshot says it could not read."""
        self._take()
        return [self.error] if self.error else []

    def summary(self) -> Optional[dict]:
        """For the manifest: None when no collector of the run asked for the sockets."""
        if not self._taken:
            return None
        return {"reads": self.reads, "sockets": self.sockets, "seconds": self.seconds,
                "unattributed": self.unattributed, "error": self.error}


@dataclass
class Context:
    basedir: Path
    basedir_source: str
    catalog: "Catalog"
    deadline: Deadline
    writer: "CollectorWriter"
    options: CollectOptions = field(default_factory=CollectOptions)
    sockets: SocketSnapshot = field(default_factory=SocketSnapshot)  # one per run, shared by its collectors
