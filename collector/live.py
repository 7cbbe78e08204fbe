"""Read-only helpers over the live host shared by several collectors:
finding processes by title the way pidof does, PID file states, listening sockets."""

from __future__ import annotations

import errno
import os
import shlex
import socket
import stat
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import psutil

from collector import safeopen
from collector.safeopen import NotRegularFile

COMM_LEN = 15  # Linux keeps 15 bytes of a process's comm
PIDFILE_MAX_BYTES = 64


def iso_utc(timestamp: Optional[float]) -> Optional[str]:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))  # 3x datetime's speed


def read_text(path: str, limit: int = 1024 * 1024) -> Tuple[Optional[str], Optional[str]]:
    """A small text file (a /proc table or setting, a resolver file): (text, None), or
    (None, why it could not be read); at most `limit` bytes."""
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace"), None
    except PermissionError:
        return None, f"cannot read {path}: permission denied (run as root to read it)"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"


def read_first_line(path: str, limit: int = 4096) -> Optional[str]:
    """The first line of a small text file (a /proc/sys setting, /etc/timezone), stripped;
    None when it cannot be read."""
    text, _why = read_text(path, limit)
    return None if text is None else text.split("\n", 1)[0].strip()


def path_inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or below it, symlinks resolved."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except (ValueError, OSError):
        return False


def argv0_name(cmdline: Optional[List[str]]) -> Optional[str]:
    """The program name in argv[0]: a title set by the process itself ("AK:api",
    possibly followed by arguments in the same string) or the basename of a path."""
    if not cmdline:
        return None
    argv0 = cmdline[0]
    first = argv0.split(" ", 1)[0]
    return first if first.startswith("AK:") else os.path.basename(first)


def matches_title(title: str, cmdline: Optional[List[str]], comm: Optional[str]) -> bool:
    """Whether a process carries `title`, as pidof decides: argv[0] first, else the
    comm, which the kernel truncates to 15 bytes (AK:trk_amazon_sns -> AK:trk_amazon_s)."""
    name = argv0_name(cmdline)
    if name == title:
        return True
    if name and name.startswith("AK:"):
        return False  # another AK: title whose comm may share the first 15 bytes
    if comm is None:
        return False
    return comm == title or comm == title.encode()[:COMM_LEN].decode("utf-8", "ignore")


def command_line(cmdline: Optional[List[str]]) -> Optional[str]:
    """One string, so that every secret flag and its value stand on one line of the
    bundle where the scrubber sees them together; an argument with a space in it is
    quoted, so that the scrubber sees where a value with spaces ends."""
    if cmdline is None:
        return None
    return " ".join(shlex.quote(arg) if any(c.isspace() for c in arg) else arg for arg in cmdline)


def process_name(pid: int) -> Optional[str]:
    try:
        proc = psutil.Process(pid)
        return argv0_name(proc.cmdline()) or proc.name()
    except (psutil.Error, OSError):
        return None


def pidfile_state(path: Path, expected_title: Optional[str], basedir: Optional[Path] = None,
                  table: Optional[Dict[int, dict]] = None) -> dict:
    """State of one PID file: ok, missing, unreadable, invalid, stale or reused.  With
    `basedir`, the file is opened from BASEDIR folder by folder (collector.safeopen):
    links that leave BASEDIR are refused.  With `table` (the run's read of /proc,
    context.ProcessSnapshot), a PID in it is judged by its row, not read again."""
    record = {"path": str(path), "state": None, "pid": None, "detail": None, "owner_name": None}
    try:
        raw, too_long = _read_pidfile(Path(path), basedir)
    except FileNotFoundError:
        record["state"] = "missing"
        return record
    except NotRegularFile as exc:
        record.update(state="unreadable", detail=exc.strerror)
        return record
    except OSError as exc:
        record.update(state="unreadable", detail=safeopen.describe_error(exc))
        return record
    text = raw.decode("ascii", "replace").strip()
    if too_long or not text.isdigit() or int(text) <= 0:
        record.update(state="invalid", detail=f"not a process number: {text[:32]!r}")
        return record
    pid = int(text)
    record["pid"] = pid
    row = table.get(pid) if table else None
    try:
        if row is not None and row.get("cmdline") is not None and row.get("name") is not None:
            status, cmdline, comm = row.get("status"), row["cmdline"], row["name"]
        else:
            proc = psutil.Process(pid)
            status, cmdline, comm = proc.status(), None, None
        # a zombie has exited: stale, whatever its (kept) name; psutil before 5.9.1 or so
        # still gives a zombie's name and an empty command line instead of raising
        if status == psutil.STATUS_ZOMBIE:
            raise psutil.ZombieProcess(pid)
        if cmdline is None:
            cmdline = proc.cmdline()
            comm = proc.name()
    except psutil.NoSuchProcess:
        record.update(state="stale", detail=f"no process {pid}")
        return record
    except (psutil.Error, OSError) as exc:
        record.update(state="ok", detail=f"process {pid} exists but cannot be inspected: {exc}")
        return record
    record["owner_name"] = argv0_name(cmdline) or comm
    if expected_title and not matches_title(expected_title, cmdline, comm):
        record.update(state="reused", detail=f"process {pid} is {record['owner_name']!r}, not {expected_title}")
        return record
    record["state"] = "ok"
    return record


def _read_pidfile(path: Path, basedir: Optional[Path]) -> Tuple[bytes, bool]:
    root_path, rel = path.parent, [path.name]
    if basedir is not None:
        try:
            rel = list(path.relative_to(basedir).parts)
            root_path = Path(basedir)
        except ValueError:
            pass
    with safeopen.SafeRoot(root_path) as root:
        st, _parts = root.stat(rel)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, "directory" if stat.S_ISDIR(st.st_mode) else "not a regular file")
        return root.read_small(rel, PIDFILE_MAX_BYTES)


def listening_sockets() -> List[dict]:
    """Every listening TCP socket and bound UDP socket, with its process when known.
    A collection run reads them once for all its collectors (context.SocketSnapshot)."""
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        connections = []
    return listening_records([conn for conn in connections if is_listening(conn)])


def is_listening(conn) -> bool:
    """A listening TCP socket, or a bound UDP socket with no peer."""
    if not conn.laddr:
        return False
    if conn.type == socket.SOCK_STREAM:
        return conn.status == psutil.CONN_LISTEN
    return not conn.raddr


def listening_records(connections) -> List[dict]:
    """The records of listening sockets (is_listening), sorted by port, each with its process's name."""
    sockets = []
    names: Dict[int, Optional[str]] = {}  # a server's many sockets: its name read once
    for conn in connections:
        is_tcp = conn.type == socket.SOCK_STREAM
        if conn.pid and conn.pid not in names:
            names[conn.pid] = process_name(conn.pid)
        sockets.append(
            {
                "protocol": ("tcp" if is_tcp else "udp") + ("6" if conn.family == socket.AF_INET6 else ""),
                "address": conn.laddr.ip,
                "port": conn.laddr.port,
                "pid": conn.pid,
                "process": names.get(conn.pid),
            }
        )
    sockets.sort(key=lambda s: (s["port"], s["protocol"], s["address"]))
    return sockets


def sockets_by_port(sockets: Iterable[dict]) -> Dict[int, List[dict]]:
    by_port: Dict[int, List[dict]] = {}
    for sock in sockets:
        if sock["protocol"].startswith("tcp"):
            by_port.setdefault(sock["port"], []).append(sock)
    return by_port


def open_regular(path, follow_symlink: bool = False) -> Tuple[int, os.stat_result]:
    """A descriptor on `path`, opened without blocking on a FIFO or taking a controlling
    terminal, and by default without following a final symlink; anything but a regular
    file is refused (NotRegularFile)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | (0 if follow_symlink else os.O_NOFOLLOW)
    fd = os.open(str(path), flags)
    return fd, safeopen.fstat_regular(fd, str(path))
