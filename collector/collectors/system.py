"""Host facts: OS, kernel, uptime, load, CPU, memory and swap, filesystems, open
files, TCP connections by state, time and time zone, clock synchronization.

system.json: see the README's bundle layout.
"""

from __future__ import annotations

import ctypes
import os
import platform
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import psutil

from collector import live
from collector.bounded import CallTimeout, call_with_timeout
from collector.context import Context

STATVFS_TIMEOUT = 2.0
# Kernel interfaces mounted as filesystems: nothing to run out of, and statvfs on some
# (autofs) would trigger the mount it stands for.  tmpfs, devtmpfs and overlay are kept.
PSEUDO_FSTYPES = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "efivarfs",
    "fuse.lxcfs", "fusectl", "hugetlbfs", "mqueue", "nfsd", "nsfs", "proc", "pstore", "rpc_pipefs",
    "securityfs", "selinuxfs", "sysfs", "tracefs", "usbfs", "xenfs",
})
PSEUDO_ROOTS = ("/proc", "/sys")  # whatever is mounted below them is a kernel interface
_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronized


def _os_release() -> dict:
    fields = {}
    try:
        with open("/etc/os-release", encoding="utf-8", errors="replace") as handle:
            for line in handle.read(65536).splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    fields[key] = value.strip().strip('"')
    except OSError:
        pass
    return {"name": fields.get("PRETTY_NAME") or fields.get("NAME"), "id": fields.get("ID"),
            "version_id": fields.get("VERSION_ID")}


def _is_pseudo(part) -> bool:
    mount = part.mountpoint
    return part.fstype in PSEUDO_FSTYPES or any(mount == r or mount.startswith(r + "/") for r in PSEUDO_ROOTS)


def _mounts() -> list:
    """Every mount but the kernel's pseudo filesystems, once per mount point: a later
    mount on the same point hides the earlier one, and statvfs sees the later."""
    by_point: dict = {}
    for part in psutil.disk_partitions(all=True):
        by_point.pop(part.mountpoint, None)
        by_point[part.mountpoint] = part
    return [part for part in by_point.values() if not _is_pseudo(part)]


def _filesystem(part, errors: list, timeout: float = STATVFS_TIMEOUT) -> Optional[dict]:
    """One mount's space and inodes; None for one of no size (an empty pseudo
    filesystem such as a FUSE control mount)."""
    try:
        st = call_with_timeout(lambda: os.statvfs(part.mountpoint), timeout, f"statvfs {part.mountpoint}")
    except CallTimeout as exc:
        errors.append(f"filesystem {part.mountpoint}: {exc}")
        return {"mountpoint": part.mountpoint, "device": part.device, "fstype": part.fstype, "error": str(exc)}
    except OSError as exc:
        return {"mountpoint": part.mountpoint, "device": part.device, "fstype": part.fstype,
                "error": exc.strerror or str(exc)}
    total = st.f_blocks * st.f_frsize
    if not total:
        return None
    free = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return {
        "mountpoint": part.mountpoint, "device": part.device, "fstype": part.fstype,
        "total": total, "used": used, "free": free,
        "percent_used": round(100.0 * used / (used + free), 1) if used + free else None,
        "percent_free": round(100.0 * free / total, 1) if total else None,
        "inodes_total": st.f_files, "inodes_free": st.f_favail,
        "inodes_percent_free": round(100.0 * st.f_favail / st.f_files, 1) if st.f_files else None,
    }


def _open_files() -> dict:
    nr = live.read_first_line("/proc/sys/fs/file-nr")
    maximum = live.read_first_line("/proc/sys/fs/file-max")
    allocated = int(nr.split()[0]) if nr else None
    file_max = int(maximum) if maximum and maximum.isdigit() else None
    return {"allocated": allocated, "max": file_max,
            "percent": round(100.0 * allocated / file_max, 2) if allocated is not None and file_max else None}


def _clock_synchronized() -> Optional[bool]:
    """From adjtimex(2) with no changes requested (read-only); None where unknown."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buffer = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0
        state = libc.adjtimex(buffer)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


def _timezone() -> dict:
    now = datetime.now(timezone.utc).astimezone()
    name = None
    try:
        link = os.readlink("/etc/localtime")
        name = link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else None
    except OSError:
        name = live.read_first_line("/etc/timezone")
    return {"name": name or time.tzname[0], "utc_offset": now.strftime("%z")}


def collect(ctx: Context) -> dict:
    """The CPU is sampled over a window that the rest of the work runs inside: only what
    is left of the window is waited for at the end."""
    errors: list = []
    sample = ctx.deadline.bound(ctx.options.cpu_sample_seconds)
    psutil.cpu_percent(interval=None)  # the window starts here
    window_started = time.monotonic()
    data = _host_facts(ctx, errors, sample)
    time.sleep(max(0.0, sample - (time.monotonic() - window_started)))
    data["cpu"]["percent"] = psutil.cpu_percent(interval=None)
    return data


def _host_facts(ctx: Context, errors: list, sample: float) -> dict:
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    boot = psutil.boot_time()
    uname = platform.uname()
    partitions = _mounts()
    return {
        "hostname": socket.gethostname(),
        "fqdn": socket.getfqdn() if ctx.deadline.remaining() > 1 else None,
        "os": _os_release(),
        "kernel": uname.release,
        "architecture": uname.machine,
        "python": platform.python_version(),
        "boot_time": live.iso_utc(boot),
        "uptime_seconds": int(time.time() - boot),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu": {"count": psutil.cpu_count(), "physical": psutil.cpu_count(logical=False),
                "percent": None, "sample_seconds": round(sample, 2)},
        "memory": {"total": memory.total, "available": memory.available, "used": memory.used,
                   "percent_available": round(100.0 * memory.available / memory.total, 1)},
        "swap": {"total": swap.total, "used": swap.used, "free": swap.free, "percent": swap.percent},
        "filesystems": [fs for fs in (_filesystem(p, errors, ctx.deadline.bound(STATVFS_TIMEOUT))
                                      for p in partitions) if fs],
        "open_files": _open_files(),
        "tcp_states": ctx.sockets.tcp_states(),  # the run's one socket snapshot
        "time": {"utc": live.iso_utc(time.time()), "timezone": _timezone(),
                 "clock_synchronized": _clock_synchronized()},
        "basedir": {"path": str(ctx.basedir), "source": ctx.basedir_source,
                    "exists": Path(ctx.basedir).is_dir()},
        "errors": errors + ctx.sockets.errors(),
    }
