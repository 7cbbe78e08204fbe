"""The logs: error and fatal lines in each tail (how many, the first and the last with
their line numbers), Go panics, "too many open files", bursts of "connection refused",
the same failing message in many logs at once (collector/analyzers/samemessage.py), and a
process's log not written for a long time while the process runs.

Reads logs/index.json (see collector/collectors/logs.py) and the tails it points to.
Line numbers are those of the tail in the bundle (logs/<path>), counted from 1; a line's
time is read in the host's zone (collector/analyzers/logtime.py).  The scanning itself is
collector/analyzers/logscan.py."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Dict, List, Optional, Set, Tuple

from collector.analyzers import samemessage
from collector.analyzers.common import bundle_started_at, dicts, load, parse_time, processes_by_name
from collector.analyzers.findings import CRITICAL, INFO, WARNING, Finding, Thresholds
from collector.analyzers.logscan import (  # noqa: F401  (classify_line(s), scan_tail: imported from here)
    Line, TailScan, classify_line, classify_lines, densest_window, scan_tail)
from collector.analyzers.logtime import HostClock, host_clock
from collector.bundle import schema
from collector.bundle.reader import MAX_INDEX_ENTRIES, MAX_TEXT_MEMBER, BundleReader
from collector.logindex import log_records
from collector.untrusted import read_regular

SOURCE = schema.LOGS_INDEX


def tail_entries(reader: BundleReader, index: Optional[dict] = None) -> List[Tuple[dict, dict]]:
    """(index entry, its tail record) of every tail logs/index.json lists: BASEDIR's logs
    and the datastores' own (their paths shown "<datastore>: <path>").  `index`: the
    index already read (20,000 entries are not parsed twice)."""
    index = load(reader, SOURCE) if index is None else index
    if index is None:
        return []
    files = log_records(index, MAX_INDEX_ENTRIES)  # a longer index is not akdiag's
    return [(entry, entry["tail"]) for entry in files if isinstance(entry.get("tail"), dict) and entry["tail"]]


def read_tail(reader: BundleReader, tail: dict) -> Optional[bytes]:
    path, _problem = reader.member(tail.get("bundle_path"), schema.LOGS_DIR + "/")
    if path is None:
        return None
    try:
        return read_regular(path, MAX_TEXT_MEMBER)
    except OSError:
        return None


def subject_of(entry: dict, tail: dict) -> str:
    return str(entry.get("path") or tail.get("bundle_path"))


# --------------------------------------------------------------------------- findings

def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    index = load(reader, SOURCE)
    if index is None:
        return []
    clock = host_clock(reader)
    per_log: List[Tuple[samemessage.LogMessages, List[Finding]]] = []
    for entry, tail in tail_entries(reader, index):
        data = read_tail(reader, tail)
        if data is not None:
            per_log.append(_tail_findings(entry, tail, data, clock, thresholds))
    groups = samemessage.groups_of([messages for messages, _found in per_log])
    covered = samemessage.folded(groups)
    findings: List[Finding] = []
    for messages, found in per_log:
        folded = {kind: samemessage.fully_covered(messages, covered.get(messages.subject), kind)
                  for kind in ("error", "refused")}
        findings += [f for f in found if not (f.id == "log.errors" and folded["error"]) and
                     not (f.id == "log.connection_refused" and folded["refused"])]
    findings += [group.finding() for group in groups]
    findings += _stale_logs(reader, dicts(index.get("files"))[:MAX_INDEX_ENTRIES], thresholds)
    return findings


def _tail_findings(entry: dict, tail: dict, data: bytes, clock: HostClock,
                   t: Thresholds) -> Tuple[samemessage.LogMessages, List[Finding]]:
    scan = scan_tail(data)
    subject, relpath = subject_of(entry, tail), str(tail.get("bundle_path"))
    findings = _errors(subject, relpath, scan, t)
    findings += _panics(subject, relpath, scan)
    findings += _too_many_files(subject, relpath, scan)
    messages, times = _messages(subject, relpath, scan, data, clock)
    findings += _refused_burst(subject, relpath, scan, times, t)
    return messages, findings


def _messages(subject: str, relpath: str, scan: TailScan, data: bytes,
              clock: HostClock) -> Tuple[samemessage.LogMessages, Dict[int, Optional[float]]]:
    """The failing lines' messages of one log, for the same-message grouping, and each
    line's UTC time by its number."""
    kinds: Dict[int, Tuple[Line, Set[str]]] = {}
    for kind, lines in (("error", scan.errors + scan.fatal), ("refused", scan.refused)):
        for line in lines:
            kinds.setdefault(line.number, (line, set()))[1].add(kind)
    messages = samemessage.LogMessages(subject, relpath)
    times = {}
    for number in sorted(kinds):
        line, found = kinds[number]
        times[number] = messages.add(line, data, clock, found)
    return messages, times


def _first_last(lines: List[Line]) -> dict:
    return {"first": lines[0].as_dict(), "last": lines[-1].as_dict()} if lines else {}


def _errors(subject: str, relpath: str, scan: TailScan, t: Thresholds) -> List[Finding]:
    lines = sorted(scan.errors + scan.fatal, key=lambda line: line.number)
    if not lines:
        return []
    limit = t.number("log_error_lines_warning")
    severity = WARNING if scan.fatal or len(lines) >= limit else INFO
    kinds = f"{len(scan.errors)} error" + (f" and {len(scan.fatal)} fatal" if scan.fatal else "")
    return [Finding(
        "log.errors", severity, subject,
        f"{subject}: {kinds} line{'s' if len(lines) > 1 else ''} in the tail (first at line {lines[0].number}, "
        f"last at line {lines[-1].number})", relpath,
        {"errors": len(scan.errors), "fatal": len(scan.fatal), **_first_last(lines), "warning_at": limit,
         "fatal_lines": [line.as_dict() for line in scan.fatal[:5]]},
        "Read the lines around the first and the last one: a message repeated since a given time points at "
        "what changed then.")]


def _panics(subject: str, relpath: str, scan: TailScan) -> List[Finding]:
    if not scan.panics:
        return []
    return [Finding(
        "log.panic", CRITICAL, subject,
        f"{subject}: {len(scan.panics)} Go panic{'s' if len(scan.panics) > 1 else ''} with a goroutine trace "
        f"(last at line {scan.panics[-1].number}: {scan.panics[-1].text})", relpath,
        {"count": len(scan.panics), **_first_last(scan.panics)},
        "The process crashed: send this bundle to Altcraft support; the trace after the panic line shows where.")]


def _too_many_files(subject: str, relpath: str, scan: TailScan) -> List[Finding]:
    if not scan.too_many_files:
        return []
    lines = scan.too_many_files
    return [Finding(
        "log.too_many_open_files", CRITICAL, subject,
        f"{subject}: \"too many open files\" {len(lines)} time{'s' if len(lines) > 1 else ''} "
        f"(last at line {lines[-1].number})", relpath, {"count": len(lines), **_first_last(lines)},
        "The process ran out of file descriptors and refused work: raise its open-files limit "
        "(LimitNOFILE) and look for a leak.")]


def _refused_burst(subject: str, relpath: str, scan: TailScan, times_by_line: Dict[int, Optional[float]],
                   t: Thresholds) -> List[Finding]:
    lines = scan.refused
    minimum = t.number("log_connection_refused_burst_lines")
    if len(lines) < minimum:
        return []
    window = t.number("log_connection_refused_burst_seconds")
    times = [moment for moment in (times_by_line.get(line.number) for line in lines) if moment is not None]
    if len(times) == len(lines):
        peak, peak_start = densest_window(times, window)
        if peak < minimum:
            return []
        when = f"{peak} within {window:g} s"
    else:  # no timestamps to tell a burst from a trickle: the count alone
        peak, peak_start, when = len(lines), None, f"{len(lines)} in the tail"
    return [Finding(
        "log.connection_refused", WARNING, subject,
        f"{subject}: burst of \"connection refused\" ({when}; {len(lines)} in all, last at line "
        f"{lines[-1].number})", relpath,
        {"count": len(lines), "peak": peak, "window_seconds": window, "peak_started_at": peak_start,
         **_first_last(lines), "warning_at": minimum},
        "The process could not reach a datastore or another service: see the datastores section and the "
        "address in these lines.")]


def _stale_logs(reader: BundleReader, files: List[dict], t: Thresholds) -> List[Finding]:
    started = bundle_started_at(reader)
    if started is None:
        return []
    limit = t.number("log_stale_hours") * 3600.0
    running = {name for name, p in processes_by_name(reader).items() if p.get("status") == "running"}
    findings: List[Finding] = []
    if not running:
        return findings
    for entry in files:
        process = _process_of(entry, running)
        if process is None:  # most entries: their time is not read
            continue
        modified = parse_time(entry.get("mtime"))
        if modified is None or started - modified <= limit:
            continue
        hours = (started - modified) / 3600.0
        findings.append(Finding(
            "log.stale", WARNING, str(entry.get("path")),
            f"{entry.get('path')} was last written {hours:.0f} h before the collection while {process} runs",
            SOURCE, {"path": entry.get("path"), "mtime": entry.get("mtime"), "hours": round(hours, 1),
                     "process": process, "warning_above_hours": limit / 3600.0},
            f"{process} may be hung, or logging somewhere else (log level, a full disk, a rotated file it still "
            "holds open): look at the process and restart it if it does no work."))
    return findings


def _process_of(entry: dict, running: set) -> Optional[str]:
    """The running process whose main log this entry is (<binary>.log), if any."""
    if entry.get("type") not in ("file", "symlink") or entry.get("reason") == schema.LOG_REASON_ROTATED:
        return None
    path = str(entry.get("path") or "")
    name = path.rsplit("/", 1)[-1]
    if name in ("", "."):  # an odd path (not akdiag's): named as pathlib names it
        name = PurePosixPath(path).name
    stem = name[:-4] if name.endswith(".log") else None
    return stem if stem in running else None
