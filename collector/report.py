"""The HTML summary of a bundle: the page a support engineer reads first.

The summary is rendered from the bundle's own files, through a BundleReader only,
never from the live host, so that the same bundle always gives the same page and a
bundle can be re-rendered anywhere.  Every input may be missing, partial or of an
unexpected shape (a collector failed, timed out, or an older/newer akdiag wrote it):
the data is normalized here into plain dicts and lists, and each section says what
it could not show and why.

The page is self-contained (inline CSS, one small inline script, no external
reference) and is autoescaped throughout: everything in a bundle came from the host and
is untrusted.  The script only sorts tables and opens a collapsed log a link points
into; the page reads the same without it.  A Content-Security-Policy allows that one
script (by its hash) and nothing else.

Findings come first: the bundle's findings.json, or those given by the caller (`akdiag
report` passes today's analysis).  Each links to the section holding its evidence.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import jinja2

from collector import TOOL_NAME, __version__
from collector.bundle import schema
from collector.bundle.reader import MAX_INDEX_ENTRIES, BundleReader
from collector.plain import as_dict, as_list, dicts, number

TEMPLATE = "summary.html.j2"
SCRIPT = "script.js.j2"  # plain JavaScript; named .j2 so that it ships with the templates
TEMPLATES_PACKAGE = "collector.report_templates"

MAX_AKD_STDOUT_BYTES = 200 * 1024  # shown in the HTML; the full output is in the bundle
MAX_AKD_STDERR_BYTES = 64 * 1024
TAIL_LINES = 200  # the last lines of each log tail shown in the HTML
TAIL_BYTES = 64 * 1024
TAILS_TOTAL_BYTES = 4 * 1024 * 1024  # all tails together, so the page stays openable
MAX_TABLE_ROWS = 5000  # log index rows, host process table rows

FD_WARN_PERCENT = 80.0
FS_USED_WARN_PERCENT = 90.0
FS_INODES_FREE_WARN_PERCENT = 10.0
MAX_FINDINGS = 2000
PLATFORM_VERSION = re.compile(r"Altcraft platform\s+(v?\d[\w.\-]*)", re.I)

# which collector writes which file, for "missing because ..." notes
_PRODUCERS = {
    schema.SYSTEM: "system",
    schema.PROCESSES: "processes",
    schema.PIDFILES: "pidfiles",
    schema.PORTS: "ports",
    schema.LOGS_INDEX: "logs",
    schema.AKD: "akd",
    schema.CONFIG_INDEX: "config",
    schema.DATASTORES: "datastores",
}

_PIDFILE_PROBLEMS = ("stale", "reused", "invalid", "unreadable")

# the colour class of a status word (the word itself is always shown too)
_LEVELS = {
    "running": "ok", "ok": "ok", "listening": "ok", "tailed": "ok", "yes": "ok", "listening_owner_unknown": "info",
    "partial": "warn", "not_listening": "warn", "missing": "warn", "skipped": "mute",
    "down": "bad", "failed": "bad", "timeout": "bad", "conflict": "bad", "error": "bad",
    "stale": "bad", "reused": "bad", "invalid": "bad", "unreadable": "bad", "no": "bad",
    "absent": "mute", "none": "mute", "listed": "mute", "unknown": "mute",
    "unreachable": "bad", "auth_failed": "bad", "not_configured": "mute",
    "critical": "bad", "warning": "warn", "info": "info",
}


# --------------------------------------------------------------------------- templates

def templates_dir() -> Path:
    """The folder holding the report templates and style: the installed package
    `collector.report_templates`, else the source checkout's `report_templates/`."""
    try:
        from importlib.resources import files

        candidate = files(TEMPLATES_PACKAGE)
        path = candidate if isinstance(candidate, Path) else Path(str(candidate))
        if (path / TEMPLATE).is_file():
            return path
    except (ImportError, TypeError, ValueError, OSError):
        pass
    return Path(__file__).resolve().parent.parent / "report_templates"


def environment() -> jinja2.Environment:
    """The Jinja2 environment of every akdiag page: autoescaped, forgiving of
    missing values, with the formatting filters registered."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=human_bytes,
        duration=human_duration,
        num=human_number,
        pct=human_percent,
        when=human_time,
        dash=dash,
        level=level,
        words=words,
        plural=plural,
    )
    return env


# --------------------------------------------------------------------------- formatting helpers

def _blank(value: Any) -> bool:
    return value is None or isinstance(value, jinja2.Undefined) or value == ""


def dash(value: Any) -> Any:
    """The value, or an em dash where there is none."""
    return "—" if _blank(value) else value


def human_bytes(value: Any) -> str:
    """1536 -> '1.5 KiB'; None -> '—'."""
    n = number(value)
    if n is None:
        return "—" if _blank(value) else str(value)
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1024:
        return f"{sign}{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024.0
        if n < 1024 or unit == "PiB":
            return f"{sign}{n:.1f} {unit}" if n < 100 else f"{sign}{n:.0f} {unit}"
    return f"{sign}{n:.0f} PiB"  # pragma: no cover


def human_duration(value: Any) -> str:
    """Seconds as '0.42 s', '3 min 5 s', '4 h 10 min', '12 d 3 h'; None -> '—'."""
    s = number(value)
    if s is None:
        return "—" if _blank(value) else str(value)
    if s < 0:
        return f"{s:g} s"
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    s = int(round(s))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s"


def human_number(value: Any, digits: int = 1) -> str:
    n = number(value)
    if n is None:
        return "—" if _blank(value) else str(value)
    if isinstance(n, int):
        return f"{n:,}"
    return f"{n:,.{digits}f}"


def human_percent(value: Any, digits: int = 1) -> str:
    n = number(value)
    if n is None:
        return "—" if _blank(value) else str(value)
    return f"{n:.{digits}f} %"


def human_time(value: Any) -> str:
    """An ISO timestamp or a Unix time as 'YYYY-MM-DD HH:MM:SS UTC'."""
    n = number(value)
    if n is not None:
        try:
            return datetime.fromtimestamp(n, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        except (OverflowError, OSError, ValueError):
            return str(value)
    if _blank(value):
        return "—"
    text = str(value)
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|\+00:?00)", text)
    return f"{match.group(1)} {match.group(2)} UTC" if match else text


def level(value: Any) -> str:
    return _LEVELS.get(str(value), "mute") if not _blank(value) else "mute"


def words(value: Any) -> str:
    """'not_listening' -> 'not listening'."""
    return "—" if _blank(value) else str(value).replace("_", " ")


def plural(count: int, singular: str, many: Optional[str] = None) -> str:
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


# --------------------------------------------------------------------------- data normalizing



def _strings(value: Any) -> List[str]:
    return [str(item) for item in as_list(value) if not _blank(item)]


def _percent_of(part: Any, whole: Any) -> Optional[float]:
    p, w = number(part), number(whole)
    return round(100.0 * p / w, 1) if p is not None and w else None


class _Sources:
    """Loads the bundle's JSON files and remembers, for each one that is missing or
    unreadable, a sentence saying so and what its collector reported."""

    def __init__(self, reader: BundleReader, manifest: dict):
        self.reader = reader
        self.has_manifest = bool(manifest)
        self.outcomes = {c.get("name"): c for c in dicts(manifest.get("collectors")) if isinstance(c.get("name"), str)}
        self.missing: List[Dict[str, str]] = []

    def load(self, relpath: str, kind: type = dict) -> Tuple[Any, Optional[str]]:
        data = self.reader.json(relpath)
        if isinstance(data, kind):
            return data, None
        present = self.reader.exists(relpath)
        note = self._note(relpath, present, data is not None)
        self.missing.append({"path": relpath, "note": note})
        return None, note

    def _note(self, relpath: str, present: bool, parsed: bool) -> str:
        if not present:
            what = f"{relpath} is missing from this bundle"
        elif parsed:
            what = f"{relpath} does not hold the expected data"
        else:
            what = f"{relpath} is not valid JSON"
        name = _PRODUCERS.get(relpath)
        outcome = self.outcomes.get(name) if name else None
        if outcome:
            status = str(outcome.get("status") or "unknown")
            error = outcome.get("error")
            if status == "skipped":
                return f"{relpath} was not collected: the {name} collector was skipped ({error or 'not selected'})."
            said = {"failed": "failed", "timeout": "timed out"}.get(status, f"ended with status {status}")
            return f"{what}: the {name} collector {said}" + (f": {error}." if error else ".")
        if name and self.has_manifest:
            return f"{what}; the manifest records no run of the {name} collector."
        return f"{what}."


def _read_head(path: Path, cap: int) -> Tuple[str, bool, int]:
    """(text of the first `cap` bytes, capped?, file size)."""
    with open(path, "rb") as handle:
        data = handle.read(cap + 1)
        size = max(len(data), path.stat().st_size)
    return data[:cap].decode("utf-8", "replace"), len(data) > cap, size


def _read_tail(path: Path, max_lines: int, max_bytes: int) -> Tuple[str, int, bool]:
    """(the last lines of a file within both limits, lines shown, capped?)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        start = max(0, size - max_bytes)
        handle.seek(start)
        data = handle.read(max_bytes)
    capped = start > 0
    if capped and b"\n" in data:
        data = data.split(b"\n", 1)[1]  # drop the partial first line
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
        capped = True
    return "\n".join(lines), len(lines), capped


# --------------------------------------------------------------------------- sections

def _platform_version(reader: BundleReader, akd_data: Optional[dict]) -> Optional[str]:
    """The platform's version: the first line of `akd --processes` ("Altcraft platform
    vX"), else a version key of config/main.json; None when neither tells."""
    path, _problem = reader.member(as_dict(akd_data).get("stdout"), schema.COMMANDS_DIR + "/")
    if path:
        try:
            first = _read_head(path, 4096)[0].lstrip().split("\n", 1)[0]
        except OSError:
            first = ""
        match = PLATFORM_VERSION.search(first)
        if match:
            return match.group(1)
    config = as_dict(reader.json("config/main.json"))
    for key in ("PLATFORM_VERSION", "VERSION", "version"):
        if isinstance(config.get(key), str) and config[key].strip() and len(config[key]) < 64:
            return config[key].strip()
    return None


def platform_version(reader: BundleReader) -> Optional[str]:
    """The platform's version as the bundle tells it, or None."""
    return _platform_version(reader, reader.json(schema.AKD))


def _header(manifest: dict, system: Optional[dict], platform_version: Optional[str] = None) -> dict:
    system = system or {}
    basedir = as_dict(system.get("basedir"))
    tool = as_dict(manifest.get("tool"))
    return {
        "host": manifest.get("hostname") or system.get("hostname"),
        "fqdn": system.get("fqdn"),
        "basedir": manifest.get("basedir") or basedir.get("path"),
        "basedir_source": manifest.get("basedir_source") or basedir.get("source"),
        "basedir_exists": basedir.get("exists"),
        "label": manifest.get("label"),
        "platform_version": platform_version,
        "started_at": manifest.get("started_at"),
        "finished_at": manifest.get("finished_at"),
        "tool_name": tool.get("name") or TOOL_NAME,
        "tool_version": tool.get("version"),
        "command_line": manifest.get("command_line"),
        "schema_version": manifest.get("schema_version"),
        "newer_schema": isinstance(number(manifest.get("schema_version")), int)
        and manifest.get("schema_version") > schema.SCHEMA_VERSION,
    }


def _resource(record: dict) -> dict:
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
        "fd_high": percent is not None and percent >= FD_WARN_PERCENT,
        "connections": as_dict(record.get("connections")),
        "started_at": record.get("started_at"),
        "user": record.get("user"),
        "exe": record.get("exe"),
        "cmdline": record.get("cmdline"),
    }


_STATUS_RANK = {"down": 0, "unknown": 1, "running": 2, "absent": 3}


def _sort_keys(resources: List[dict]) -> dict:
    """What the processes table sorts a row by: the largest figure of its PIDs."""
    def most(key: str) -> Any:
        values = [number(r.get(key)) for r in resources]
        values = [v for v in values if v is not None]
        return max(values) if values else ""

    started = sorted(str(r["started_at"]) for r in resources if isinstance(r.get("started_at"), str))
    return {"rss": most("rss"), "cpu": most("cpu_percent"), "threads": most("threads"),
            "fd": most("open_files_percent"), "started": started[0] if started else ""}


def _processes_problem(reader: BundleReader) -> Optional[str]:
    """Why processes.json cannot be judged, as the analyzers say it (None: it can): the
    rows stay shown, but no verdict may read "all running" over them."""
    from collector.analyzers.evidence import process_records

    return process_records(reader)[1]


def _processes(data: Optional[dict]) -> dict:
    data = data or {}
    rows = []
    for index, record in enumerate(dicts(data.get("expected"))):
        status = record.get("status")
        status = status if status in schema.PROCESS_STATUSES else "unknown"
        name = str(record.get("name") or f"unknown-{index}")
        pidfile = as_dict(record.get("pidfile"))
        port = as_dict(record.get("port"))
        port_state = port.get("state") or "none"
        pidfile_state = pidfile.get("state")
        rows.append({
            "name": name,
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
            "resources": [_resource(r) for r in dicts(record.get("resources"))],
        })
        rows[-1]["status_rank"] = _STATUS_RANK.get(status, 1)
        rows[-1]["sort"] = _sort_keys(rows[-1]["resources"])
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in schema.PROCESS_STATUSES + ("unknown",)}
    table = dicts(data.get("all"))
    return {
        "rows": rows,
        "counts": counts,
        "sample_seconds": data.get("sample_seconds"),
        "errors": _strings(data.get("errors")),
        "host_table": table[:MAX_TABLE_ROWS],
        "host_table_total": len(table),
    }


def _host(data: Optional[dict]) -> dict:
    data = data or {}
    filesystems = []
    for index, fs in enumerate(dicts(data.get("filesystems"))):
        used = number(fs.get("percent_used"))
        inodes_free = number(fs.get("inodes_percent_free"))
        filesystems.append(dict(fs, anchor=f"fs-{index}", bar=_bar(used),
                                full=(used is not None and used >= FS_USED_WARN_PERCENT)
                                or (inodes_free is not None and inodes_free <= FS_INODES_FREE_WARN_PERCENT)))
    cpu = as_dict(data.get("cpu"))
    load = [x for x in as_list(data.get("load_average"))]
    cpus = number(cpu.get("count"))
    load1 = number(load[0]) if load else None
    tcp = as_dict(data.get("tcp_states"))
    memory = as_dict(data.get("memory"))
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
        "load_high": load1 is not None and bool(cpus) and load1 > cpus,
        "cpu": cpu,
        "memory": memory,
        "memory_low": (number(memory.get("percent_available")) or 100) < 10,
        "memory_bar": _bar(_used_percent(memory.get("percent_available"))),
        "swap_bar": _bar(number(swap.get("percent"))),
        "swap": swap,
        "filesystems": filesystems,
        "open_files": as_dict(data.get("open_files")),
        "tcp_states": sorted(tcp.items(), key=lambda kv: (-(number(kv[1]) or 0), str(kv[0]))),
        "time": time_,
        "timezone": as_dict(time_.get("timezone")),
        "clock_synchronized": time_.get("clock_synchronized"),
        "errors": _strings(data.get("errors")),
    }


def _pidfiles(data: Optional[dict]) -> dict:
    data = data or {}
    files = [dict(f, bad=f.get("state") in _PIDFILE_PROBLEMS) for f in dicts(data.get("files"))]
    return {"folder": data.get("folder"), "exists": data.get("exists"), "files": files,
            "errors": _strings(data.get("errors"))}


def _ports(data: Optional[dict], processes: dict) -> dict:
    data = data or {}
    expected = {}
    for row in processes["rows"]:
        port = number(row["port"].get("expected"))
        if port is not None:
            expected.setdefault(port, []).append(row["name"])
    listening = [dict(s, expected_for=expected.get(number(s.get("port")), []))
                 for s in dicts(data.get("listening"))]
    return {"listening": listening, "errors": _strings(data.get("errors"))}


def _akd(reader: BundleReader, data: Optional[dict]) -> dict:
    data = data or {}
    view = {
        "command": data.get("command"), "exists": data.get("exists"), "exit_code": data.get("exit_code"),
        "duration": data.get("duration"), "timed_out": data.get("timed_out"), "error": data.get("error"),
        "stdout_truncated": data.get("stdout_truncated"), "errors": _strings(data.get("errors")),
        "stdout": None, "stdout_path": data.get("stdout"), "stdout_capped": False, "stdout_size": None,
        "stdout_note": None, "stderr": None, "stderr_path": data.get("stderr"), "stderr_capped": False,
    }
    if data.get("stdout"):
        path, problem = reader.member(data.get("stdout"), schema.COMMANDS_DIR + "/")
        if path:
            view["stdout"], view["stdout_capped"], view["stdout_size"] = _read_head(path, MAX_AKD_STDOUT_BYTES)
        else:
            view["stdout_note"] = problem
    if data.get("stderr"):
        path, _problem = reader.member(data.get("stderr"), schema.COMMANDS_DIR + "/")
        if path:
            text, view["stderr_capped"], _size = _read_head(path, MAX_AKD_STDERR_BYTES)
            view["stderr"] = text if text.strip() else None
    return view


def _config(data: Optional[dict]) -> dict:
    data = data or {}
    return {"files": dicts(data.get("files")), "placeholder_secrets": _strings(data.get("placeholder_secrets")),
            "errors": _strings(data.get("errors"))}


def _logs(reader: BundleReader, data: Optional[dict]) -> dict:
    data = data or {}
    files = dicts(data.get("files"))
    errors = _strings(data.get("errors"))
    if len(files) > MAX_INDEX_ENTRIES:  # akdiag's own index stops there: a damaged or crafted one
        errors.append(f"{schema.LOGS_INDEX} lists {len(files)} files, more than akdiag ever lists; "
                      f"only the first {MAX_INDEX_ENTRIES} are read")
        files = files[:MAX_INDEX_ENTRIES]
    budget = TAILS_TOTAL_BYTES
    tails = []
    for record in files:
        tail = as_dict(record.get("tail"))
        if not tail.get("bundle_path"):
            continue
        entry = {"path": record.get("path"), "bundle_path": tail.get("bundle_path"), "lines": tail.get("lines"),
                 "bytes": tail.get("bytes"), "first_line_cut": tail.get("first_line_cut"),
                 "anchor": f"log-{len(tails)}", "numbered": [], "marked": {}, "marked_count": 0,
                 "text": None, "shown_lines": 0, "capped": False, "note": None}
        tails.append(entry)
        path, problem = reader.member(tail.get("bundle_path"), schema.LOGS_DIR + "/")
        if not path:
            entry["note"] = problem
            continue
        if budget <= 0:
            entry["note"] = (f"not shown: the summary already holds {human_bytes(TAILS_TOTAL_BYTES)} of log tails; "
                             f"read {tail.get('bundle_path')} in the bundle")
            continue
        try:
            text, shown, capped = _read_tail(path, TAIL_LINES, min(TAIL_BYTES, budget))
            total = _count_lines(path)
        except OSError as exc:
            entry["note"] = f"cannot read {tail.get('bundle_path')}: {exc.strerror or exc}"
            continue
        budget -= len(text.encode("utf-8", "replace"))
        entry.update(text=text, shown_lines=shown, capped=capped)
        _number_lines(entry, text, total - shown + 1)
    return {
        "root": data.get("root"),
        "exists": data.get("exists"),
        "limits": as_dict(data.get("limits")),
        "totals": as_dict(data.get("totals")),
        "files": files[:MAX_TABLE_ROWS],
        "files_total": len(files),
        "states": _count_by(files, "state"),
        "tails": tails,
        "errors": errors,
    }


def _count_by(records: List[dict], key: str) -> List[Tuple[str, int]]:
    counts: Dict[str, int] = {}
    for record in records:
        value = str(record.get(key) or "unknown")
        counts[value] = counts.get(value, 0) + 1
    return sorted(counts.items())


def _collectors(manifest: dict) -> List[dict]:
    return dicts(manifest.get("collectors"))


def _redactions(data: Optional[dict]) -> dict:
    data = data or {}
    by_rule = sorted(as_dict(data.get("by_rule")).items(), key=lambda kv: (-(number(kv[1]) or 0), str(kv[0])))
    by_file = sorted(dicts(data.get("by_file")), key=lambda r: -(number(r.get("count")) or 0))
    return {"total": data.get("total"), "by_rule": by_rule, "by_file": by_file[:MAX_TABLE_ROWS]}


def _verdict(processes: Optional[dict], collectors: List[dict], missing: List[dict],
             unknown_reason: str = "processes.json missing") -> dict:
    bad, warn = [], []
    if processes is not None:
        rows = processes["rows"]
        down = processes["counts"]["down"]
        if down:
            bad.append(plural(down, "process down", "processes down"))
        conflicts = sum(1 for r in rows if r["port_conflict"])
        if conflicts:
            bad.append(plural(conflicts, "port conflict"))
        silent = sum(1 for r in rows if r["port_silent"])
        if silent:
            warn.append(plural(silent, "port not listening", "ports not listening"))
        unknown = processes["counts"]["unknown"]
        if unknown:
            warn.append(plural(unknown, "process of unknown status", "processes of unknown status"))
        pidfiles = sum(1 for r in rows if r["pidfile_bad"])
        if pidfiles:
            warn.append(plural(pidfiles, "PID file problem"))
    failed = sum(1 for c in collectors if c.get("status") in ("failed", "timeout"))
    if failed:
        bad.append(plural(failed, "collector failed", "collectors failed"))
    partial = sum(1 for c in collectors if c.get("status") == "partial")
    if partial:
        warn.append(plural(partial, "collector partial", "collectors partial"))
    if missing:
        warn.append(plural(len(missing), "bundle file missing", "bundle files missing"))
    problems = bad + warn
    if processes is None:
        lead = f"Process status unknown ({unknown_reason})"
    elif not processes["rows"]:
        lead = "No expected processes recorded"
    elif not processes["counts"]["down"] and not processes["counts"]["unknown"]:
        lead = "All expected processes running"
    else:
        lead = None
    parts = ([lead] if lead else []) + problems
    return {
        "text": "; ".join([parts[0], ", ".join(parts[1:])]) if lead and len(parts) > 1 else ", ".join(parts),
        "level": "bad" if bad else ("warn" if warn or lead != "All expected processes running" else "ok"),
    }


# --------------------------------------------------------------------------- bars, tails, datastores

def _used_percent(available_percent: Any) -> Optional[float]:
    available = number(available_percent)
    return None if available is None else round(100.0 - available, 1)


def _bar(used_percent: Optional[float]) -> Optional[dict]:
    """An inline SVG bar's figures: the used part's width (0-100) and its colour class."""
    used = number(used_percent)
    if used is None:
        return None
    used = max(0.0, min(100.0, float(used)))
    return {"used": round(used, 1), "level": "bad" if used >= 95 else ("warn" if used >= 90 else "ok")}


def _count_lines(path: Path) -> int:
    """Lines in a file as the log collector counts them (a last line without a newline counts)."""
    count, last = 0, b""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block
    return count + (1 if last and not last.endswith(b"\n") else 0)


def _number_lines(entry: dict, text: str, first_number: int) -> None:
    """The shown lines with their numbers in the bundle's tail file, the ones worth
    highlighting (errors, panics, ...) marked and given an anchor."""
    from collector.analyzers.logs import classify_lines

    kinds = classify_lines(text) if text else {}
    numbered = []
    for offset, line in enumerate(text.split("\n") if text else []):
        number = first_number + offset
        kind = kinds.get(offset + 1)
        anchor = f"{entry['anchor']}-L{number}" if kind else None
        if anchor:
            entry["marked"][number] = anchor
        numbered.append({"n": number, "text": line, "kind": kind, "anchor": anchor})
    entry["numbered"] = numbered
    entry["marked_count"] = len(entry["marked"])


_QUEUE_FIELDS = ("messages", "messages_ready", "messages_unacknowledged", "consumers", "state")


def _queue_rows(details: dict) -> List[dict]:
    rows = []
    for name, queue in sorted(as_dict(details.get("queues")).items()):
        queue = as_dict(queue)
        rows.append({"name": name, "family": None, "exists": queue.get("exists"), "messages": queue.get("messages"),
                     "consumers": queue.get("consumers"), "state": queue.get("error")})
    for family, group in sorted(as_dict(details.get("queue_families")).items()):
        for queue in dicts(as_dict(group).get("queues")):
            rows.append(dict({f: queue.get(f) for f in _QUEUE_FIELDS}, name=queue.get("name"), family=family,
                             exists=True))
    return rows[:MAX_TABLE_ROWS]


def _other_details(details: dict) -> Optional[str]:
    rest = {k: v for k, v in details.items() if k not in ("replica_set", "queues", "queue_families")}
    if not rest:
        return None
    text = json.dumps(rest, indent=1, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= 16000 else text[:16000] + "\n… (cut; the whole record is in datastores.json)"


def _datastores(data: Optional[dict]) -> dict:
    data = data or {}
    rows = []
    for index, record in enumerate(dicts(data.get("endpoints"))):
        details = as_dict(record.get("details"))
        replica = as_dict(details.get("replica_set"))
        rows.append(dict(
            {k: record.get(k) for k in ("name", "kind", "group", "description", "host", "port", "source", "user",
                                        "status", "reachable", "connect_ms", "latency_ms", "version", "error",
                                        "duration")},
            anchor=f"ds-{index}", notes=_strings(record.get("notes")),
            command_errors=sorted(as_dict(record.get("command_errors")).items()),
            replica_set=replica.get("set"), primary=replica.get("primary"), members=dicts(replica.get("members")),
            queues=_queue_rows(details), other=_other_details(details)))
    configured = [r for r in rows if r["status"] != "not_configured"]
    return {"rows": rows, "configured": configured, "not_configured": [r for r in rows if r not in configured],
            "counts": sorted(as_dict(data.get("counts")).items()), "timeout_s": data.get("timeout_s"),
            "main_json": as_dict(data.get("main_json")), "errors": _strings(data.get("errors"))}


# --------------------------------------------------------------------------- findings

_HOST_FINDINGS = ("memory.", "swap.", "load.", "files.", "clock.")


class _Anchors:
    """Where, in the page, the evidence of a finding is shown."""

    def __init__(self, processes: dict, host: dict, datastores: dict, logs: dict):
        self.processes = {r["name"] for r in processes["rows"]}
        self.filesystems = {str(fs.get("mountpoint")): fs["anchor"] for fs in host["filesystems"]}
        self.datastores = {str(r["name"]): r["anchor"] for r in datastores["rows"]}
        self.tails = {str(t["path"]): t for t in logs["tails"]}

    def of(self, finding: dict) -> str:
        fid, subject = str(finding.get("id") or ""), str(finding.get("subject") or "")
        figures = as_dict(as_dict(finding.get("evidence")).get("figures"))
        if fid.startswith(("process.", "pidfile.", "port.")) and subject in self.processes:
            return f"proc-{subject}"
        if fid.startswith("disk."):
            return self.filesystems.get(subject, "host")
        if fid.startswith(("datastore.", "mongodb.", "rabbitmq.")):
            name = str(figures.get("endpoint") or subject.split("/", 1)[0])
            return self.datastores.get(name, "datastores")
        if fid.startswith("log."):
            return self._log_anchor(subject, figures)
        return self._section_of(fid)

    def _log_anchor(self, subject: str, figures: dict) -> str:
        tail = self.tails.get(subject)
        if tail is None:
            return "logs"
        last = as_dict(figures.get("last")).get("line")
        return tail["marked"].get(last) or tail["anchor"]

    @staticmethod
    def _section_of(fid: str) -> str:
        if fid.startswith(_HOST_FINDINGS):
            return "host"
        if fid.startswith("config."):
            return "config"
        if fid.startswith(("collector.", "analyzer.")):
            return "collectors"
        if fid.startswith("platform."):
            return "processes"
        return "header"


def _figure_text(value: Any) -> str:
    if isinstance(value, dict) and "line" in value:
        return f"line {value.get('line')}: {value.get('text')}"
    if isinstance(value, list):
        shown = ", ".join(_figure_text(v) for v in value[:10])
        return shown + (f" … (+{len(value) - 10})" if len(value) > 10 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k} {_figure_text(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _figures(figures: Any) -> List[Tuple[str, str]]:
    return [(str(k).replace("_", " "), _figure_text(v)) for k, v in as_dict(figures).items()
            if v is not None and v != [] and v != ""]


def finding_rows(findings: List[dict], start: int, anchor_of) -> List[dict]:
    """The findings table's rows, numbered from `start`; `anchor_of(finding)` links each
    to its evidence (the host report's and the cluster report's own anchors)."""
    from collector.analyzers.findings import SEVERITIES

    rows = []
    for index, finding in enumerate(findings):
        evidence = as_dict(finding.get("evidence"))
        severity = finding.get("severity") if finding.get("severity") in SEVERITIES else "info"
        rows.append({"n": start + index, "id": str(finding.get("id") or "?"), "severity": severity,
                     "subject": finding.get("subject"), "title": finding.get("title"), "hint": finding.get("hint"),
                     "file": evidence.get("file"), "figures": _figures(evidence.get("figures")),
                     "anchor": anchor_of(finding)})
    return rows


def _findings_view(data: Optional[dict], anchors: _Anchors) -> dict:
    from collector.analyzers.findings import count_by_severity, sort_findings

    if data is None:
        return {"available": False, "rows": [], "counts": {}, "analyzers": [], "total": 0}
    findings = sort_findings(dicts(data.get("findings")))
    rows = finding_rows(findings[:MAX_FINDINGS], 1, anchors.of)
    return {"available": True, "rows": rows, "counts": count_by_severity(findings), "total": len(findings),
            "analyzers": dicts(data.get("analyzers"))}


def _findings_verdict(view: dict) -> dict:
    counts, rows = view["counts"], view["rows"]
    if not rows:
        return {"text": "No problems found", "level": "ok"}
    parts = [f"{counts.get('critical', 0)} critical"] if counts.get("critical") else []
    if counts.get("warning"):
        parts.append(plural(counts["warning"], "warning"))
    if counts.get("info"):
        parts.append(f"{counts['info']} info")
    level = "bad" if counts.get("critical") else ("warn" if counts.get("warning") else "ok")
    lead = rows[0]["title"] if level != "ok" else "nothing needs action"
    return {"text": f"{', '.join(parts)}: {lead}", "level": level}


# --------------------------------------------------------------------------- the script

def _script(env: jinja2.Environment) -> Tuple[str, str]:
    """(the page's script, its CSP hash source)."""
    source = env.loader.get_source(env, SCRIPT)[0].strip() + "\n"
    digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
    return source, f"'sha256-{digest}'"


# --------------------------------------------------------------------------- output hygiene

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_C1_OR_SURROGATE = re.compile("[\x80-\x9f\ud800-\udfff]")


def _clean_output(html: str) -> str:
    """Control characters from logs and command lines shown as visible symbols
    (ESC as U+241B), lone surrogates and C1 controls as U+FFFD: the page stays valid
    UTF-8 and valid HTML whatever bytes the host had."""
    html = html.replace("\r\n", "\n").replace("\r", "\u240d")
    html = _CONTROL.sub(lambda m: "\u2421" if m.group() == "\x7f" else chr(0x2400 + ord(m.group())), html)
    return _C1_OR_SURROGATE.sub("\ufffd", html)


# --------------------------------------------------------------------------- entry point

def build_context(reader: BundleReader, findings: Optional[dict] = None) -> dict:
    """Everything the summary template shows, normalized from the bundle.  `findings`:
    a findings.json-shaped dict to show instead of the bundle's own findings.json."""
    manifest = reader.manifest
    manifest = as_dict(manifest)
    sources = _Sources(reader, manifest)
    manifest_note = None
    if not manifest:
        manifest_note = ("manifest.json is missing or unreadable: host, times and collector results "
                         "below come from the other files where they can.")
    if isinstance(manifest.get("cut"), str) and manifest["cut"]:
        manifest_note = (f"This run was cut short ({manifest['cut']}): what it collected is here, "
                         "what it had no time for is not.")
    system, system_note = sources.load(schema.SYSTEM)
    processes_data, processes_note = sources.load(schema.PROCESSES)
    processes_problem = _processes_problem(reader)
    processes_note = processes_note or (f"The processes could not be checked: {processes_problem}."
                                        if processes_problem else None)
    pidfiles_data, pidfiles_note = sources.load(schema.PIDFILES)
    ports_data, ports_note = sources.load(schema.PORTS)
    akd_data, akd_note = sources.load(schema.AKD)
    config_data, config_note = sources.load(schema.CONFIG_INDEX)
    logs_data, logs_note = sources.load(schema.LOGS_INDEX)
    datastores_data, datastores_note = sources.load(schema.DATASTORES)
    if findings is None:
        findings = reader.json(schema.FINDINGS)
        findings = findings if isinstance(findings, dict) else None
    redactions_data = reader.json(schema.REDACTIONS)
    redactions_note = None
    if not isinstance(redactions_data, dict):
        redactions_data = None
        redactions_note = (f"{schema.REDACTIONS} is missing or unreadable: the number of values "
                           "redacted is unknown (the redaction itself happened as each file was written).")

    processes = _processes(processes_data)
    collectors = _collectors(manifest)
    host, datastores, logs = _host(system), _datastores(datastores_data), _logs(reader, logs_data)
    findings_view = _findings_view(findings, _Anchors(processes, host, datastores, logs))
    if findings_view["available"]:
        verdict = _findings_verdict(findings_view)
    else:
        verdict = _verdict(processes if processes_data is not None and not processes_problem else None, collectors,
                           sources.missing, processes_problem or "processes.json missing")
    return {
        "tool": {"name": TOOL_NAME, "version": __version__},
        "header": _header(manifest, system, _platform_version(reader, akd_data)),
        "manifest_note": manifest_note,
        "verdict": verdict,
        "findings": findings_view,
        "findings_note": None if findings_view["available"] else (
            f"{schema.FINDINGS} is missing from this bundle (an older akdiag wrote it, or its analysis failed): "
            "run `akdiag report` on the bundle to analyze it with this akdiag."),
        "datastores": datastores, "datastores_note": datastores_note,
        "missing_files": sources.missing,
        "processes": processes, "processes_note": processes_note,
        "host": host, "host_note": system_note,
        "pidfiles": _pidfiles(pidfiles_data), "pidfiles_note": pidfiles_note,
        "ports": _ports(ports_data, processes), "ports_note": ports_note,
        "akd": _akd(reader, akd_data), "akd_note": akd_note,
        "config": _config(config_data), "config_note": config_note,
        "logs": logs, "logs_note": logs_note,
        "collectors": collectors,
        "collectors_note": None if manifest else "No collector results: manifest.json is missing.",
        "redactions": _redactions(redactions_data), "redactions_note": redactions_note,
        "limits": {"akd_stdout": MAX_AKD_STDOUT_BYTES, "tail_lines": TAIL_LINES, "tail_bytes": TAIL_BYTES,
                   "fd_warn": FD_WARN_PERCENT},
    }


def render_page(template_name: str, context: dict) -> str:
    """A self-contained page from one of the report templates, with the inline script
    (and its Content-Security-Policy hash) every page shares."""
    env = environment()
    try:
        template = env.get_template(template_name)
        script, script_hash = _script(env)
    except jinja2.TemplateNotFound as exc:
        raise FileNotFoundError(f"report template {exc.name} not found in {templates_dir()}") from exc
    return _clean_output(template.render(script=script, script_hash=script_hash, **context))


def render_bundle(reader: BundleReader, findings: Optional[dict] = None) -> str:
    """The summary.html of a bundle, as text.  `findings` (findings.json's shape) replaces
    the bundle's own findings.json, e.g. today's analysis of an old bundle."""
    return render_page(TEMPLATE, build_context(reader, findings))
