"""The explicit context every collector receives: where the platform lives,
how long it may take, and the one writer through which it puts files in the bundle."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Tuple

import psutil

from collector import live, proctable, sockets
from collector.cmdline import CmdlineReader

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
        return time.monotonic() >= self._end  # one clock read: called per entry of long listings

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
    """What a run collects and how much: log bounds, the CPU window, time limits, the collectors."""

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


OWNER_SCAN_SECONDS = 3.0  # the look for the listeners' processes (every process's descriptors at worst)


def _listening_records(listeners: List["sockets.Listener"], owners: Dict[int, int]) -> List[dict]:
    """As live.listening_sockets gives them, sorted by port, each with its process's name."""
    names: Dict[int, Optional[str]] = {}
    records = []
    for listener in listeners:
        pid = owners.get(listener.inode)
        if pid is not None and pid not in names:
            names[pid] = live.process_name(pid)
        records.append({"protocol": listener.protocol, "address": listener.address, "port": listener.port,
                        "pid": pid, "process": names.get(pid) if pid is not None else None})
    records.sort(key=lambda s: (s["port"], s["protocol"], s["address"]))
    return records


class SocketSnapshot:
    """The host's TCP and UDP sockets, read once per run on first use and shared by every
    collector of the run (they run in threads: the first asks, the others wait for it).
    Only what the collectors use is kept (collector.sockets): the TCP states, each socket's
    state by inode, the listening sockets; their processes are looked for once, on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the tables
        self._owners_lock = threading.Lock()  # the listeners' processes: a longer look, apart
        self._tables: Optional[sockets.Tables] = None
        self.reads = 0  # how many times the kernel's tables were read: one per run
        self.seconds: Optional[float] = None
        self.error: Optional[str] = None  # why the tables could not be read
        self.hidden_processes = 0  # processes whose descriptors this user cannot read
        self.owners_missed: Optional[str] = None  # why some listeners have no process
        self._listening: Optional[List[dict]] = None

    def _take(self) -> "sockets.Tables":
        with self._lock:
            if self._tables is None:
                started = time.monotonic()
                self.reads += 1
                try:
                    self._tables = sockets.read_tables()
                except (OSError, ValueError) as exc:
                    self._tables = sockets.Tables(errors=[f"{type(exc).__name__}: {exc}"])
                if self._tables.errors:
                    self.error = "the host's socket tables could not all be read: " + "; ".join(self._tables.errors)
                self.seconds = round(time.monotonic() - started, 3)
            return self._tables

    def listening(self) -> List[dict]:
        """Every listening TCP and bound UDP socket, as live.listening_sockets gives them;
        their processes are looked for once, within OWNER_SCAN_SECONDS."""
        tables = self._take()
        with self._owners_lock:
            if self._listening is None:
                wanted = {listener.inode for listener in tables.listeners}
                found = sockets.find_owners(wanted, psutil.pids(), OWNER_SCAN_SECONDS)
                self.hidden_processes = found.hidden
                if found.missed and found.timed_out:
                    self.owners_missed = (f"the processes of {found.missed} listening socket(s) were not found within "
                                          f"{OWNER_SCAN_SECONDS:g} s ({found.links} descriptors read)")
                self._listening = _listening_records(tables.listeners, found.owners)
            return [dict(record) for record in self._listening]

    def listening_of(self, pids: Iterable[int]) -> List[dict]:
        """The listening sockets, with their process only where it is one of `pids`: their
        own descriptors are read, not every process's."""
        tables = self._take()
        owners = {inode: pid for pid in pids for inode in sockets.socket_inodes(pid) or ()}
        return _listening_records(tables.listeners, owners)

    def tcp_states(self) -> Dict[str, int]:
        return self._take().tcp_states

    def states_of(self, pid: int) -> Optional[Dict[str, int]]:
        """The states of the sockets `pid` holds; None when its descriptors cannot be read
        (another user's process) or the tables could not."""
        tables = self._take()
        inodes = sockets.socket_inodes(pid)
        if inodes is None or self.error:
            return None
        by_inode = tables.state_by_inode
        return dict(Counter(sockets.state_name(by_inode[i]) for i in inodes if i in by_inode))

    def errors(self, owners: bool = False) -> List[str]:
        """What a collector built on the snapshot says it could not read (`owners`: the
        listeners' processes included)."""
        self._take()
        return [e for e in (self.error, self.owners_missed if owners else None) if e]

    def hidden_note(self) -> Optional[str]:
        """Why some listening sockets show no process, when it is this user's rights."""
        unowned = sum(1 for record in self.listening() if record["pid"] is None)
        if not unowned or not self.hidden_processes:
            return None
        advice = " (run akdiag as root to see them)" if os.geteuid() != 0 else ""
        return (f"{unowned} listening socket(s) show no process: this user cannot read the descriptors of "
                f"{self.hidden_processes} process(es){advice}")

    def summary(self) -> Optional[dict]:
        """For the manifest: None when no collector of the run asked for the sockets."""
        tables = self._tables
        if tables is None:
            return None
        return {"reads": self.reads, "sockets": tables.sockets, "seconds": self.seconds, "source": tables.source,
                "hidden_processes": self.hidden_processes, "error": self.error, "owners_missed": self.owners_missed}


class ProcessSnapshot:
    """The host's process table (collector.proctable) with each process's command line
    (capped: collector.cmdline), read once per run on first use and shared by every
    collector of the run, as SocketSnapshot is: at 5,000 processes each read of /proc
    costs a fraction of a second.  The rows are the first reader's; a collector that
    adds to them (the processes collector's CPU window) works on its own copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: Optional[Dict[int, dict]] = None
        self._error: Optional[proctable.ProcUnreadable] = None
        self.cmdlines = CmdlineReader()
        self.reads = 0  # how many times /proc was read: one per run

    def table(self) -> Dict[int, dict]:
        """{pid: row}; ProcUnreadable (for every caller) when /proc cannot be parsed."""
        with self._lock:
            if self._table is None and self._error is None:
                self.reads += 1
                try:
                    table = proctable.read_table()
                except proctable.ProcUnreadable as exc:
                    self._error = exc
                else:
                    for pid, info in table.items():
                        info["cmdline"] = self.cmdlines.read(pid)
                    self._table = table
            if self._error is not None:
                raise proctable.ProcUnreadable(str(self._error))
            assert self._table is not None
            return self._table

    def table_if_read(self, wait: float) -> Optional[Dict[int, dict]]:
        """The table if another collector has read it, or is reading it and is done within
        `wait` seconds; else None (this never reads /proc itself: for a few PIDs, reading
        each costs less than every process of a busy host)."""
        if not self._lock.acquire(timeout=wait):
            return None
        try:
            return self._table
        finally:
            self._lock.release()

    def pids_by_name(self) -> Dict[str, List[int]]:
        """The PIDs by command name (/proc/PID/comm, as the table's `name`)."""
        found: Dict[str, List[int]] = {}
        for pid, info in self.table().items():
            found.setdefault(info.get("name") or "", []).append(pid)
        return found


@dataclass
class Context:
    """What one collector is given: the platform, its deadline, its writer, the run's snapshots."""

    basedir: Path
    basedir_source: str
    catalog: "Catalog"
    deadline: Deadline
    writer: "CollectorWriter"
    options: CollectOptions = field(default_factory=CollectOptions)
    sockets: SocketSnapshot = field(default_factory=SocketSnapshot)  # one per run, shared by its collectors
    processes: ProcessSnapshot = field(default_factory=ProcessSnapshot)  # likewise
