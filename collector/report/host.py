"""The host section: OS, load, memory, swap, filesystems, open files, TCP states and
the clock; a figure is marked where the host analyzer finds it low or high."""

from __future__ import annotations

from typing import Any, Optional

from collector.analyzers.findings import Thresholds
from collector.analyzers.host import filesystem_severity, judged
from collector.bundle import schema
from collector.plain import as_dict, as_list, dicts, number
from collector.report.format import strings

_GAUGE_WARN, _GAUGE_BAD = 90.0, 95.0  # a bar's colour where no threshold tells


def bar(used_percent: Any, warn_at: float = _GAUGE_WARN, bad_at: float = _GAUGE_BAD) -> Optional[dict]:
    """An inline SVG bar's figures: the used part's width (0-100) and its colour class."""
    used = number(used_percent)
    if used is None:
        return None
    used = max(0.0, min(100.0, float(used)))
    return {"used": round(used, 1), "level": "bad" if used >= bad_at else ("warn" if used >= warn_at else "ok")}


def _used_percent(available_percent: Any) -> Optional[float]:
    available = number(available_percent)
    return None if available is None else round(100.0 - available, 1)


def _filesystems(data: dict, t: Thresholds) -> list:
    warn_at = 100.0 - t.number("filesystem_free_percent_warning")
    bad_at = 100.0 - t.number("filesystem_free_percent_critical")
    return [dict(fs, anchor=f"fs-{index}", bar=bar(fs.get("percent_used"), warn_at, bad_at),
                 full=judged(fs, t) and filesystem_severity(fs, t) is not None)
            for index, fs in enumerate(dicts(data.get("filesystems")))]


def _load_high(load: list, cpu: dict, t: Thresholds) -> bool:
    cpus = number(cpu.get("count"))
    load1 = number(load[0]) if load else None
    return load1 is not None and bool(cpus) and load1 > t.number("load_per_cpu_warning") * cpus


def host_view(data: Optional[dict], t: Thresholds) -> dict:
    data = data or {}
    cpu = as_dict(data.get("cpu"))
    load = list(as_list(data.get("load_average")))
    tcp = as_dict(data.get("tcp_states"))
    memory = as_dict(data.get("memory"))
    memory_warning = t.number("memory_available_percent_warning")
    available = number(memory.get("percent_available"))
    swap = as_dict(data.get("swap"))
    time_ = as_dict(data.get("time"))
    return {
        "os": as_dict(data.get("os")),
        "hostname": data.get("hostname"),
        "fqdn": data.get("fqdn"),
        "kernel": data.get("kernel"),
        "architecture": data.get("architecture"),
        "python": data.get("python"),
        "boot_time": data.get("boot_time"),
        "uptime_seconds": data.get("uptime_seconds"),
        "load": load,
        "load_high": _load_high(load, cpu, t),
        "cpu": cpu,
        "memory": memory,
        "memory_low": available is not None and available < memory_warning,
        "memory_bar": bar(_used_percent(available), 100.0 - memory_warning, max(_GAUGE_BAD, 100.0 - memory_warning)),
        "swap_bar": bar(number(swap.get("percent"))),
        "swap": swap,
        "filesystems": _filesystems(data, t),
        "open_files": as_dict(data.get("open_files")),
        "tcp_states": sorted(tcp.items(), key=lambda kv: (-(number(kv[1]) or 0), str(kv[0]))),
        "time": time_,
        "timezone": as_dict(time_.get("timezone")),
        "clock_synchronized": time_.get("clock_synchronized"),
        "errors": strings(data.get("errors"), schema.SYSTEM),
    }
