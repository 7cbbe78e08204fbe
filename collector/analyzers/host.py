"""The host: disk space and inodes, memory, swap, load, system-wide open files, the
clock, and secrets still set to a placeholder (the vendor's documented one or a common
one such as changeme) or shorter than the minimum length.

Reads system.json and config/index.json: its `weak_secrets` (key name, reason, and the
length of a short one; the values were judged in memory when the bundle was collected),
or in a bundle from before them, `placeholder_secrets` (key names only)."""

from __future__ import annotations

from typing import Dict, List, Optional

from collector.analyzers.common import as_dict, dicts, fmt_bytes, load, number
from collector.analyzers.findings import CRITICAL, WARNING, Finding, Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader

SOURCE = schema.SYSTEM
# Filesystems held in memory (/run, /dev/shm, /dev, a tmpfs /tmp): one smaller than the
# `filesystem_memory_min_bytes` threshold is not judged: /run/lock, /run/user/N or a
# container's /dev are a few MB and may be full.
MEMORY_FSTYPES = ("tmpfs", "devtmpfs", "ramfs")
_DISK_HINT = ("Free space before it runs out: old rotated logs under BASEDIR/logs, database dumps, core files; "
              "a full disk stops the datastores and the platform's processes.")
_MEMORY_HINT = ("This filesystem lives in memory and empties at a reboot: find what fills it (`du -x`), such as "
                "shared memory left by a dead process in /dev/shm, or raise its size= mount option.")


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    findings: List[Finding] = []
    system = load(reader, SOURCE)
    if system is not None:
        findings += _filesystems(system, thresholds)
        findings += _memory(system, thresholds)
        findings += _swap(system, thresholds)
        findings += _load(system, thresholds)
        findings += _system_open_files(system, thresholds)
        findings += _clock(system)
    config = load(reader, schema.CONFIG_INDEX)
    if config is not None:
        findings += _placeholder_secrets(config)
    return findings


def _level(free_percent: float, warning: float, critical: float) -> Optional[str]:
    if free_percent < critical:
        return CRITICAL
    if free_percent < warning:
        return WARNING
    return None


def _filesystems(system: dict, t: Thresholds) -> List[Finding]:
    """Each filesystem once: bind mounts and overlays of one filesystem report the same
    figures, so they are judged together under the shortest mount point."""
    same: Dict[tuple, List[dict]] = {}
    for fs in dicts(system.get("filesystems")):
        if judged(fs, t):
            same.setdefault(_identity(fs), []).append(fs)
    out = []
    for mounts in same.values():
        fs = min(mounts, key=lambda m: len(str(m.get("mountpoint"))))
        others = [m.get("mountpoint") for m in mounts if m is not fs]
        out += _space(fs, t, others) + _inodes(fs, t, others)
    return out


def judged(fs: dict, t: Thresholds) -> bool:
    """Whether a filesystem is judged at all: not a read-only image, not a small one in
    memory, not one without a size."""
    return (_fstype(fs) not in t.words("filesystem_types_ignored") and bool(number(fs.get("total")))
            and not _small_in_memory(fs, t.number("filesystem_memory_min_bytes")))


def filesystem_severity(fs: dict, t: Thresholds) -> Optional[str]:
    """The worst severity of a judged filesystem's space and inodes (None: neither is
    low), as the findings and the report's filesystems table both tell it."""
    severities = {space_severity(fs, t), inodes_severity(fs, t)}
    return CRITICAL if CRITICAL in severities else (WARNING if WARNING in severities else None)


def space_severity(fs: dict, t: Thresholds) -> Optional[str]:
    free = number(fs.get("percent_free"))
    if free is None:
        return None
    return _level(free, t.number("filesystem_free_percent_warning"), t.number("filesystem_free_percent_critical"))


def inodes_severity(fs: dict, t: Thresholds) -> Optional[str]:
    free = number(fs.get("inodes_percent_free"))
    if free is None or not number(fs.get("inodes_total")):
        return None
    return _level(free, t.number("inodes_free_percent_warning"), t.number("inodes_free_percent_critical"))


def _fstype(fs: dict) -> str:
    fstype = fs.get("fstype")
    return fstype if isinstance(fstype, str) else ""


def _small_in_memory(fs: dict, memory_min: float) -> bool:
    return _fstype(fs) in MEMORY_FSTYPES and number(fs.get("total")) < memory_min


def _identity(fs: dict) -> tuple:
    """A filesystem's figures, which its bind mounts and overlays share (two distinct
    filesystems alike to the block and inode are equally full: one finding fits both)."""
    return tuple(number(fs.get(k)) for k in ("total", "free", "inodes_total", "inodes_free"))


def _space(fs: dict, t: Thresholds, others: List) -> List[Finding]:
    severity = space_severity(fs, t)
    if severity is None:
        return []
    free = number(fs.get("percent_free"))
    mount = fs.get("mountpoint")
    return [Finding(
        "disk.space_low", severity, str(mount),
        f"Filesystem {mount} has {free:.1f} % free ({fmt_bytes(fs.get('free'))} of {fmt_bytes(fs.get('total'))})",
        SOURCE, {"mountpoint": mount, "device": fs.get("device"), "percent_free": free, "free": fs.get("free"),
                 "total": fs.get("total"), "fstype": fs.get("fstype"), "also_mounted_at": others,
                 "warning_below": t.number("filesystem_free_percent_warning"),
                 "critical_below": t.number("filesystem_free_percent_critical")},
        _MEMORY_HINT if _fstype(fs) in MEMORY_FSTYPES else _DISK_HINT)]


def _inodes(fs: dict, t: Thresholds, others: List) -> List[Finding]:
    severity = inodes_severity(fs, t)
    if severity is None:
        return []
    free = number(fs.get("inodes_percent_free"))
    mount = fs.get("mountpoint")
    return [Finding(
        "disk.inodes_low", severity, str(mount),
        f"Filesystem {mount} has {free:.1f} % of its inodes free ({fs.get('inodes_free')} of {fs.get('inodes_total')})",
        SOURCE, {"mountpoint": mount, "inodes_percent_free": free, "inodes_free": fs.get("inodes_free"),
                 "inodes_total": fs.get("inodes_total"), "fstype": fs.get("fstype"), "also_mounted_at": others},
        "Many small files use the inodes up (queues spilled to disk, session or cache files): find the folder "
        "holding them (`du --inodes`) and clean it.")]


def _memory(system: dict, t: Thresholds) -> List[Finding]:
    memory = as_dict(system.get("memory"))
    available = number(memory.get("percent_available"))
    limit = t.number("memory_available_percent_warning")
    if available is None or available >= limit:
        return []
    return [Finding(
        "memory.low", WARNING, "memory",
        f"Only {available:.1f} % of memory is available ({fmt_bytes(memory.get('available'))} of "
        f"{fmt_bytes(memory.get('total'))})", SOURCE,
        {"percent_available": available, "available": memory.get("available"), "total": memory.get("total"),
         "warning_below": limit},
        "Find the largest processes (the processes table, RSS column); the kernel's OOM killer may stop a "
        "platform process or a datastore.")]


def _swap(system: dict, t: Thresholds) -> List[Finding]:
    swap = as_dict(system.get("swap"))
    used, percent = number(swap.get("used")), number(swap.get("percent"))
    limit = t.number("swap_used_percent_warning")
    if not used or percent is None or percent <= limit:
        return []
    return [Finding(
        "swap.in_use", WARNING, "swap",
        f"Swap is in use: {fmt_bytes(used)} ({percent:.1f} % of {fmt_bytes(swap.get('total'))})", SOURCE,
        {"used": used, "percent": percent, "total": swap.get("total"), "warning_above": limit},
        "Swapping slows the datastores down badly: add memory or move a datastore to another host.")]


def _load(system: dict, t: Thresholds) -> List[Finding]:
    load = system.get("load_average") if isinstance(system.get("load_average"), list) else []
    cpus = number(as_dict(system.get("cpu")).get("count"))
    load1 = number(load[0]) if load else None
    factor = t.number("load_per_cpu_warning")
    if load1 is None or not cpus or load1 <= factor * cpus:
        return []
    return [Finding(
        "load.high", WARNING, "load",
        f"Load average {load1:g} is above {factor:g} times the {int(cpus)} CPUs", SOURCE,
        {"load_average": load, "cpus": cpus, "warning_above": factor * cpus},
        "Find what uses the CPU or waits on the disk (the processes table's CPU column; iowait in top).")]


def _system_open_files(system: dict, t: Thresholds) -> List[Finding]:
    files = as_dict(system.get("open_files"))
    percent = number(files.get("percent"))
    warning = t.number("system_open_files_percent_warning")
    critical = t.number("system_open_files_percent_critical")
    if percent is None or percent < warning:
        return []
    return [Finding(
        "files.system_limit", CRITICAL if percent >= critical else WARNING, "file-max",
        f"{files.get('allocated')} files are open host-wide, {percent:.1f} % of fs.file-max ({files.get('max')})",
        SOURCE, {"allocated": files.get("allocated"), "max": files.get("max"), "percent": percent,
                 "warning_at": warning, "critical_at": critical},
        "Raise fs.file-max (sysctl) or find the process holding the descriptors (the processes table's "
        "open files column).")]


def _clock(system: dict) -> List[Finding]:
    if as_dict(system.get("time")).get("clock_synchronized") is not False:
        return []
    return [Finding(
        "clock.unsynchronized", WARNING, "clock", "The system clock is not synchronized (adjtimex reports "
        "TIME_ERROR)", SOURCE, {"clock_synchronized": False, "host_time": as_dict(system.get("time")).get("utc")},
        "Enable time synchronization (chrony or systemd-timesyncd): MongoDB replicas, tokens and "
        "schedules need a right clock.")]


_SECRET_HINT = ("Set a secret of your own (32 random characters or more) where the platform and the datastore "
                "expect it, and restart the platform: a placeholder or a short secret is the first thing anyone tries.")


def _placeholder_secrets(config: dict) -> List[Finding]:
    """Every weak secret by key name and reason; the value is never in the bundle."""
    weak = dicts(config.get("weak_secrets"))
    if not weak and isinstance(config.get("placeholder_secrets"), list):  # a bundle from before weak_secrets
        weak = [{"name": key, "reason": "documented_placeholder"} for key in config["placeholder_secrets"] if key]
    out = []
    for entry in weak:
        key, why = str(entry.get("name") or "?"), _weakness_words(entry)
        if why is None:
            continue
        out.append(Finding("config.placeholder_secret", WARNING, key, f"{key} is {why}", schema.CONFIG_INDEX,
                           {"key": key, "reason": entry.get("reason"), "length": entry.get("length"),
                            "minimum": entry.get("minimum")}, _SECRET_HINT))
    return out


def _weakness_words(entry: dict) -> Optional[str]:
    reason = entry.get("reason")
    if reason == "documented_placeholder":
        return "still the documented placeholder secret"
    if reason == "placeholder":
        return "still a common placeholder, not a secret"
    length, minimum = number(entry.get("length")), number(entry.get("minimum"))
    if reason == "short" and length is not None and minimum is not None:
        return f"{length:.0f} characters, under the minimum {minimum:.0f}"
    return None
