"""The host's process table read straight from /proc: per process one read of
/proc/PID/stat and one of /proc/PID/status, the fields named as psutil names them.
psutil's process_iter reads four files and builds an object per process: at 5,000
processes that costs seconds, this a fraction of it."""

from __future__ import annotations

import os
import pwd
import time
from typing import Dict, Optional

import psutil

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
STAT_MAX_BYTES = 4096
STATUS_MAX_BYTES = 8192
# the state letter of /proc/PID/stat, by psutil's names (psutil.STATUS_RUNNING is "running", ...)
STATUSES = {"R": "running", "S": "sleeping", "D": "disk-sleep", "T": "stopped", "t": "tracing-stop",
            "Z": "zombie", "X": "dead", "x": "dead", "K": "wake-kill", "W": "waking", "I": "idle", "P": "parked"}


def _read(path: str, limit: int) -> Optional[bytes]:
    try:
        with open(path, "rb", buffering=0) as handle:
            return handle.read(limit)
    except OSError:
        return None


class ProcUnreadable(ValueError):
    """A /proc this code cannot parse (a container's faked one, say): the collector fails
    and says so ("could not check"), rather than reporting a host with no processes."""


def _stat_fields(pid: int) -> Optional[tuple]:
    """(comm, the fields after it) of /proc/PID/stat; None when the process is gone.
    The command name is between the first "(" and the last ")": it may hold either."""
    data = _read(f"/proc/{pid}/stat", STAT_MAX_BYTES)
    if not data:  # it ended (ESRCH), or is ending
        return None
    head, _, rest = data.rpartition(b")")
    fields = rest.split()
    if not head or len(fields) < 22:  # the numbers are checked as they are read (read_row)
        raise ProcUnreadable(f"/proc/{pid}/stat cannot be parsed: {data[:80]!r}")
    return head.partition(b"(")[2].decode("utf-8", "replace"), fields


def cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU time the process has used, in seconds; None when it is gone."""
    stat = _stat_fields(pid)
    if stat is None:
        return None
    try:
        return (int(stat[1][11]) + int(stat[1][12])) / CLOCK_TICKS
    except ValueError:
        return None


class _Users:
    """User names by uid, looked up once each (psutil's fallback: the uid as text)."""

    def __init__(self) -> None:
        self._names: Dict[int, str] = {}

    def name(self, uid: Optional[int]) -> Optional[str]:
        if uid is None:
            return None
        if uid not in self._names:
            try:
                self._names[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._names[uid] = str(uid)
        return self._names[uid]


def _real_uid(pid: int) -> Optional[int]:
    """The real uid ("Uid:" of /proc/PID/status, as psutil's username): /proc/PID's owner is
    root for a process that changed its user, which is most daemons."""
    data = _read(f"/proc/{pid}/status", STATUS_MAX_BYTES)
    for line in (data or b"").splitlines():
        if line.startswith(b"Uid:"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def read_row(pid: int, boot_time: float, users: _Users) -> Optional[dict]:
    stat = _stat_fields(pid)
    if stat is None:
        return None
    comm, fields = stat
    try:
        ticks = int(fields[11]) + int(fields[12])
        row = {
            "pid": pid,
            "ppid": int(fields[1]),
            "name": comm,
            "status": STATUSES.get(fields[0].decode("ascii", "replace"), fields[0].decode("ascii", "replace")),
            "create_time": boot_time + int(fields[19]) / CLOCK_TICKS,
            "num_threads": int(fields[17]),
            "rss": int(fields[21]) * PAGE_SIZE,
            "vms": int(fields[20]),
            "cpu_seconds": ticks / CLOCK_TICKS,
            "cpu_read_at": time.monotonic(),
        }
    except (IndexError, ValueError) as exc:
        raise ProcUnreadable(f"/proc/{pid}/stat cannot be parsed: {exc}") from exc
    row["username"] = users.name(_real_uid(pid))
    return row


def read_table() -> Dict[int, dict]:
    """{pid: row} of every process this user can see (a process that ends meanwhile is left out)."""
    boot_time = psutil.boot_time()
    users = _Users()
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        row = read_row(int(name), boot_time, users)
        if row is not None:
            table[row["pid"]] = row
    return table
