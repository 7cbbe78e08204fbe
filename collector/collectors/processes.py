"""Every catalog process: its PIDs (found by title as pidof does), PID file, expected
port and resources; plus the whole host's process table for context.

processes.json: {"expected": [record per catalog process], "all": [host table],
"sample_seconds": float, "errors": [...]}

A PID whose title matches but which is a zombie (it exited; its parent has not reaped it)
is no running process: when every PID of a title is one, the record is "down", its
`pids` and `resources` are empty and `zombies` names each zombie and its parent.  Beside
a live PID, zombies stay in `pids` and `resources` with their status (process.zombie).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Dict, List, Optional

import psutil

from collector import live, proctable
from collector.catalog import ProcessSpec
from collector.context import Context, SocketSnapshot


def _host_table(ctx: Context) -> Dict[int, dict]:
    """Every process's row, from the run's one read of /proc (ctx.processes), copied: the
    CPU window adds to them.  Each row's read started its CPU window."""
    return {pid: dict(info) for pid, info in ctx.processes.table().items()}


def _end_cpu_window(table: Dict[int, dict], window_end: float) -> None:
    """CPU % of every process over its window: from its row's read to now, at least until
    `window_end`.  The work done meanwhile shortens the wait."""
    time.sleep(max(0.0, window_end - time.monotonic()))
    for pid, info in table.items():
        info["cpu_percent"] = _cpu_percent(info, proctable.cpu_seconds(pid))


def _cpu_percent(info: dict, now_seconds: Optional[float]) -> Optional[float]:
    """As psutil's Process.cpu_percent: user + system time over wall time, 100 per busy core."""
    if now_seconds is None:
        return None
    elapsed = time.monotonic() - info["cpu_read_at"]
    if elapsed <= 0:
        return None
    return round(max(0.0, 100.0 * (now_seconds - info["cpu_seconds"]) / elapsed), 1)


def _fd_limit(proc: psutil.Process) -> Optional[int]:
    try:
        soft, _hard = proc.rlimit(resource.RLIMIT_NOFILE)
        return None if soft == resource.RLIM_INFINITY else soft
    except (psutil.Error, OSError, AttributeError):
        return None


def _attr(call, default=None):
    try:
        return call()
    except (psutil.Error, OSError):
        return default


def _rounded(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds, 2)


def _pid_record(info: dict, sockets: SocketSnapshot) -> dict:
    """One PID's resources; cpu_percent is filled in when the CPU window ends (_fill_cpu)."""
    try:
        proc: Optional[psutil.Process] = psutil.Process(info["pid"])
    except (psutil.Error, OSError):
        proc = None  # it ended since the table was read
    fds = _attr(proc.num_fds) if proc else None
    limit = _fd_limit(proc) if proc else None
    return {
        "pid": info["pid"],
        "ppid": info.get("ppid"),
        "status": info.get("status"),
        "rss": info.get("rss"),
        "vms": info.get("vms"),
        "cpu_percent": info.get("cpu_percent"),
        "cpu_seconds": _rounded(info.get("cpu_seconds")),  # user + system since it started, from the table
        "threads": info.get("num_threads"),
        "open_files": fds,
        "open_files_limit": limit,
        "open_files_percent": round(100.0 * fds / limit, 1) if fds is not None and limit else None,
        "connections": sockets.states_of(info["pid"]),  # None: its descriptors are hidden from this user
        "started_at": live.iso_utc(info.get("create_time")),
        "user": info.get("username"),
        "exe": _attr(proc.exe) if proc else None,
        "cmdline": live.command_line(info.get("cmdline")),
    }


def _port_state(spec: ProcessSpec, pids: List[int], by_port: Dict[int, List[dict]]) -> dict:
    """listening (by the process), conflict (a program known not to be it),
    listening_owner_unknown (every holder's PID hidden from this user: it may well be the
    process, run by another user), not_listening, or none (no port)."""
    record = {"expected": spec.port, "address": spec.address, "state": "none", "owner_pid": None, "owner_name": None}
    if spec.port is None:
        return record
    holders = by_port.get(spec.port, [])
    own = [s for s in holders if s["pid"] is not None and s["pid"] in pids]
    others = [s for s in holders if s["pid"] is not None and s["pid"] not in pids]
    if own:
        record.update(state="listening", owner_pid=own[0]["pid"], owner_name=own[0]["process"])
    elif others:
        other = others[0]
        record.update(state="conflict", owner_pid=other["pid"], owner_name=other["process"] or "unknown program")
    elif holders:
        record["state"] = "listening_owner_unknown"
    else:
        record["state"] = "not_listening"
    return record


def _status(spec: ProcessSpec, pids: List[int], zombies: List[dict]) -> tuple:
    if pids:
        return "running", None
    if zombies:
        return "down", zombie_note(zombies)
    if spec.retired_in:
        return "absent", f"removed from the platform in {spec.retired_in}"
    if spec.remote:
        return "absent", "can run on another host"
    return "down", None


def _is_zombie(info: Optional[dict]) -> bool:
    return bool(info) and info.get("status") == psutil.STATUS_ZOMBIE


def zombie_record(table: Dict[int, dict], pid: int) -> dict:
    """A zombie PID and the parent that has not reaped it."""
    info = table.get(pid) or {}
    ppid = info.get("ppid")
    parent = table.get(ppid) if ppid is not None else None
    parent_name = (live.argv0_name(parent.get("cmdline")) or parent.get("name")) if parent else None
    return {"pid": pid, "ppid": ppid, "parent_name": parent_name,
            "started_at": live.iso_utc(info.get("create_time"))}


def zombie_note(zombies: List[dict]) -> str:
    """"exited; PID 1234 is a zombie that its parent 1200 (AK:akd) never reaped" (the
    record's note, and the analyzers' words for it)."""
    first = zombies[0]
    more = f" (and {len(zombies) - 1} more)" if len(zombies) > 1 else ""
    return (f"exited; PID {first.get('pid')}{more} is a zombie that its parent {first.get('ppid') or '?'} "
            f"({first.get('parent_name') or 'unknown'}) never reaped")


def _pidfile(spec: ProcessSpec, basedir: Path, table: Dict[int, dict]) -> dict:
    """The PID file's state; a "stale" file naming a zombie says so."""
    pidfile = live.pidfile_state(basedir / "pids" / spec.pidfile_name, spec.title, basedir, table)
    pid = pidfile.get("pid")
    if pidfile.get("state") == "stale" and _is_zombie(table.get(pid)):
        zombie = zombie_record(table, pid)
        pidfile["zombie"] = zombie
        pidfile["detail"] = (f"process {pid} is a zombie: it exited and its parent {zombie['ppid']} "
                             f"({zombie['parent_name'] or 'unknown'}) never reaped it")
    return pidfile


class TitleIndex:
    """The table's PIDs by title, built once: matching every catalog title against every
    row (live.matches_title) costs titles x processes calls, seconds at 5,000 processes."""

    def __init__(self, table: Dict[int, dict]):
        self._by_name: Dict[str, List[int]] = {}
        self._by_comm: Dict[str, List[int]] = {}  # rows whose argv[0] is no AK: title
        for pid, info in table.items():
            name = live.argv0_name(info.get("cmdline"))
            if name:
                self._by_name.setdefault(name, []).append(pid)
            if not (name and name.startswith("AK:")) and info.get("name") is not None:
                self._by_comm.setdefault(info["name"], []).append(pid)

    def pids(self, title: str) -> List[int]:
        """As live.matches_title decides, row by row."""
        short = title.encode()[:live.COMM_LEN].decode("utf-8", "ignore")
        found = set(self._by_name.get(title, ())) | set(self._by_comm.get(title, ()))
        return sorted(found | set(self._by_comm.get(short, ())))


def expected_record(spec: ProcessSpec, basedir: Path, table: Dict[int, dict], by_port,
                    sockets: SocketSnapshot, titles: Optional[TitleIndex] = None) -> dict:
    matched = (titles or TitleIndex(table)).pids(spec.title)
    alive = [pid for pid in matched if not _is_zombie(table[pid])]
    zombies = [zombie_record(table, pid) for pid in matched if _is_zombie(table[pid])]
    pids = matched if alive else []
    status, note = _status(spec, alive, zombies)
    pidfile = _pidfile(spec, basedir, table)
    return {
        "name": spec.binary,
        "title": spec.title,
        "description": spec.description,
        "remote_capable": spec.remote,
        "status": status,
        "note": note,
        "pids": pids,
        "pidfile": pidfile,
        "port": _port_state(spec, pids, by_port),
        "resources": [_pid_record(table[pid], sockets) for pid in pids],
        "zombies": zombies,
    }


def _table_row(info: dict) -> dict:
    return {
        "pid": info["pid"],
        "ppid": info.get("ppid"),
        "name": live.argv0_name(info.get("cmdline")) or info.get("name"),
        "user": info.get("username"),
        "status": info.get("status"),
        "cpu_percent": info.get("cpu_percent"),
        "rss": info.get("rss"),
        "threads": info.get("num_threads"),
        "started_at": live.iso_utc(info.get("create_time")),
        "cmdline": live.command_line(info.get("cmdline")),
    }


def _catalog_ports(ctx: Context, titles: TitleIndex) -> Dict[int, List[dict]]:
    """The listening sockets by port, with their processes known where the catalog's own
    hold them; only when another (or no known) process holds a catalog port are every
    process's descriptors read to find it (the run's one look, shared with ports)."""
    pids = {pid for spec in ctx.catalog.processes for pid in titles.pids(spec.title)}
    own = ctx.sockets.listening_of(pids)
    ports = {spec.port for spec in ctx.catalog.processes if spec.port is not None}
    if any(record["pid"] is None and record["port"] in ports and record["protocol"].startswith("tcp")
           for record in own):
        return live.sockets_by_port(ctx.sockets.listening())
    return live.sockets_by_port(own)


def _fill_cpu(expected: List[dict], table: Dict[int, dict]) -> None:
    for record in expected:
        for resources in record["resources"]:
            resources["cpu_percent"] = table[resources["pid"]].get("cpu_percent")


def collect(ctx: Context) -> dict:
    """The per-process work and the run's socket snapshot are done inside the CPU window,
    which starts as each process's row is read: only what is left of it is waited for."""
    table = _host_table(ctx)
    window_end = time.monotonic() + min(ctx.options.cpu_sample_seconds,
                                        ctx.deadline.bound(ctx.options.cpu_sample_seconds))
    titles = TitleIndex(table)
    by_port = _catalog_ports(ctx, titles)
    expected = [expected_record(spec, ctx.basedir, table, by_port, ctx.sockets, titles)
                for spec in ctx.catalog.processes]
    _end_cpu_window(table, window_end)
    _fill_cpu(expected, table)
    return {
        "sample_seconds": ctx.options.cpu_sample_seconds,
        "expected": expected,
        "all": [_table_row(info) for _pid, info in sorted(table.items())],
        "cmdlines_cut": ctx.processes.cmdlines.cut,  # command lines cut at their cap (they end with "[cut]")
        "errors": ctx.sockets.errors(),
    }
