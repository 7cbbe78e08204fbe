"""The processes section (each expected process: status, PIDs, PID file, port and
resources; the host's own process table) and the PID files and listening ports
sections that detail it."""

from __future__ import annotations

from typing import Any, List, Optional

from collector.analyzers.findings import Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.plain import as_dict, as_list, dicts, number
from collector.report.format import left_out, strings
from collector.report.sources import MAX_TABLE_ROWS

_PIDFILE_PROBLEMS = ("stale", "reused", "invalid", "unreadable")
# What the page lists (the rest is named in it and kept in the bundle's file)
MAX_HOST_ROWS = min(1000, MAX_TABLE_ROWS)  # the host's process table
MAX_CMDLINE_CHARS = 200  # a command line in that table
MAX_FILE_ROWS = min(1000, MAX_TABLE_ROWS)  # PID files, listening sockets
_STATUS_RANK = {"down": 0, "unknown": 1, "running": 2, "absent": 3}


def _percent_of(part: Any, whole: Any) -> Optional[float]:
    p, w = number(part), number(whole)
    return round(100.0 * p / w, 1) if p is not None and w else None


def _resource(record: dict, fd_warning: float) -> dict:
    percent = number(record.get("open_files_percent"))
    if percent is None:
        percent = _percent_of(record.get("open_files"), record.get("open_files_limit"))
    return {
        "pid": record.get("pid"),
        "rss": record.get("rss"),
        "vms": record.get("vms"),
        "cpu_percent": record.get("cpu_percent"),
        "threads": record.get("threads"),
        "open_files": record.get("open_files"),
        "open_files_limit": record.get("open_files_limit"),
        "open_files_percent": percent,
        "fd_high": percent is not None and percent >= fd_warning,
        "connections": as_dict(record.get("connections")),
        "started_at": record.get("started_at"),
        "user": record.get("user"),
        "exe": record.get("exe"),
        "cmdline": record.get("cmdline"),
    }


def _sort_keys(resources: List[dict]) -> dict:
    """What the processes table sorts a row by: the largest figure of its PIDs."""
    def most(key: str) -> Any:
        values = [number(r.get(key)) for r in resources]
        values = [v for v in values if v is not None]
        return max(values) if values else ""

    started = sorted(str(r["started_at"]) for r in resources if isinstance(r.get("started_at"), str))
    return {"rss": most("rss"), "cpu": most("cpu_percent"), "threads": most("threads"),
            "fd": most("open_files_percent"), "started": started[0] if started else ""}


def _host_row(record: dict) -> dict:
    """A row of the host's process table, its command line cut for the page."""
    cmdline = record.get("cmdline")
    if isinstance(cmdline, str) and len(cmdline) > MAX_CMDLINE_CHARS:
        return dict(record, cmdline=cmdline[:MAX_CMDLINE_CHARS - 1] + "…")
    return record


def processes_problem(reader: BundleReader) -> Optional[str]:
    """Why processes.json cannot be judged, as the analyzers say it (None: it can): the
    rows stay shown, but no verdict may read "all running" over them."""
    from collector.analyzers.evidence import process_records

    return process_records(reader)[1]


def _row(index: int, record: dict, fd_warning: float) -> dict:
    status = record.get("status")
    status = status if status in schema.PROCESS_STATUSES else "unknown"
    pidfile = as_dict(record.get("pidfile"))
    port = as_dict(record.get("port"))
    port_state = port.get("state") or "none"
    pidfile_state = pidfile.get("state")
    resources = [_resource(r, fd_warning) for r in dicts(record.get("resources"))]
    return {
        "name": str(record.get("name") or f"unknown-{index}"),
        "title": record.get("title"),
        "description": record.get("description"),
        "status": status,
        "note": record.get("note"),
        "pids": [p for p in as_list(record.get("pids")) if number(p) is not None],
        "pidfile": pidfile,
        "pidfile_bad": pidfile_state in _PIDFILE_PROBLEMS or (pidfile_state == "missing" and status == "running"),
        "port": port,
        "port_state": port_state,
        "port_conflict": port_state == "conflict",
        "port_owner_hidden": port_state == "listening_owner_unknown",
        "port_silent": port_state == "not_listening" and status == "running",
        "resources": resources,
        "status_rank": _STATUS_RANK.get(status, 1),
        "sort": _sort_keys(resources),
    }


def processes_view(data: Optional[dict], thresholds: Thresholds) -> dict:
    data = data or {}
    fd_warning = thresholds.number("process_open_files_percent_warning")
    rows = [_row(index, record, fd_warning) for index, record in enumerate(dicts(data.get("expected")))]
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in schema.PROCESS_STATUSES + ("unknown",)}
    everything = dicts(data.get("all"))
    table = [_host_row(r) for r in everything[:MAX_HOST_ROWS]]
    return {
        "rows": rows,
        "counts": counts,
        "sample_seconds": data.get("sample_seconds"),
        "errors": strings(data.get("errors"), schema.PROCESSES),
        "host_table": table,
        "host_table_total": len(everything),
        "host_table_left_out": left_out(len(everything) - len(table), "processes of the host", "all are in",
                                        schema.PROCESSES),
    }


def pidfiles_view(data: Optional[dict]) -> dict:
    data = data or {}
    records = dicts(data.get("files"))
    files = [dict(f, bad=f.get("state") in _PIDFILE_PROBLEMS) for f in records[:MAX_FILE_ROWS]]
    return {"folder": data.get("folder"), "exists": data.get("exists"), "files": files,
            "files_left_out": left_out(len(records) - len(files), "PID files", "all are in", schema.PIDFILES),
            "errors": strings(data.get("errors"), schema.PIDFILES)}


def ports_view(data: Optional[dict], processes: dict) -> dict:
    data = data or {}
    expected = {}
    for row in processes["rows"]:
        port = number(row["port"].get("expected"))
        if port is not None:
            expected.setdefault(port, []).append(row["name"])
    sockets = dicts(data.get("listening"))
    listening = [dict(s, expected_for=expected.get(number(s.get("port")), [])) for s in sockets[:MAX_FILE_ROWS]]
    return {"listening": listening, "errors": strings(data.get("errors"), schema.PORTS),
            "listening_left_out": left_out(len(sockets) - len(listening), "listening sockets", "all are in",
                                           schema.PORTS)}
