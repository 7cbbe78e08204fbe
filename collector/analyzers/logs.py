"""The logs: error and fatal lines in each tail (how many, the first and the last with
their line numbers), Go panics, "too many open files", bursts of "connection refused",
and a process's log not written for a long time while the process runs.

Reads logs/index.json (see collector/collectors/logs.py) and the tails it points to.
Line numbers are those of the tail in the bundle (logs/<path>), counted from 1.
Each tail is scanned as one buffer with anchored regular expressions, so the cost
stays small on a bundle of many 2 MB tails."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Dict, Iterator, List, Optional, Pattern, Tuple

from collector.analyzers.common import bundle_started_at, dicts, load, parse_time, processes_by_name
from collector.analyzers.findings import CRITICAL, INFO, WARNING, Finding, Thresholds
from collector.bundle import schema
from collector.bundle.reader import MAX_INDEX_ENTRIES, MAX_TEXT_MEMBER, BundleReader
from collector.untrusted import read_regular

SOURCE = schema.LOGS_INDEX
LINE_TEXT_LIMIT = 300
PANIC_TRACE_WINDOW = 4096  # bytes after "panic:" in which the goroutine trace must start

# Level words, found where they stand near the start of a line ("2024-.. ERROR [api] ..",
# "[FATAL] .."), as structured fields (level=error, "level":"fatal", severity: crit), as
# nginx writes them ([error], [crit]) and as glog/klog does (E0102 15:04:05.000000).
# Every search starts from a literal (fast in the regex engine), never from "^" alone.
LEVEL_COLUMN = 60  # a level word further into the line is a message's word, not a level
_ERROR_WORDS = {b"ERROR", b"ERR"}
_FATAL_WORDS = {b"FATAL", b"CRITICAL", b"CRIT", b"PANIC", b"EMERG", b"ALERT"}
_LEVEL_LITERALS = (b"ERR", b"FATAL", b"CRIT", b"PANIC", b"EMERG", b"ALERT")
_WORD_TAIL = re.compile(rb"[A-Z]*")
_WORD_CHAR = re.compile(rb"[\w.\-]")
_STRUCTURED = re.compile(rb'(?:level|lvl|severity)"?\s*[=:]\s*"?(error|err|fatal|panic|critical|crit)\b')
_STRUCTURED_LITERALS = (b"level", b"lvl", b"severity")
_BRACKETED = re.compile(rb"\[(error|crit|alert|emerg|fatal)\]")
_GLOG = re.compile(rb"\n([EF])\d{4} \d\d:\d\d:\d\d")
_GLOG_FIRST = re.compile(rb"([EF])\d{4} \d\d:\d\d:\d\d")
_PANIC = re.compile(rb"panic: ")
_GOROUTINE = re.compile(rb"^goroutine \d+ \[", re.M)
_TOO_MANY_FILES = re.compile(rb"too many open files")  # searched in the lower-cased text
_REFUSED = re.compile(rb"connection refused")
_TIMESTAMP = re.compile(rb"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)")


def classify_lines(text: str) -> Dict[int, str]:
    """{line number (from 1): 'panic', 'fatal', 'error', 'files' or 'refused'} for the
    lines of `text` worth highlighting: the same rules as the scan of a whole tail.
    The report uses it on the lines it shows."""
    scan = scan_tail(text.encode("utf-8", "surrogateescape"))
    kinds: Dict[int, str] = {}
    for kind, found in (("refused", scan.refused), ("files", scan.too_many_files), ("error", scan.errors),
                        ("fatal", scan.fatal), ("panic", scan.panic_lines)):
        kinds.update((line.number, kind) for line in found)  # the worse kind wins: it comes later
    return kinds


def classify_line(line: str) -> Optional[str]:
    return classify_lines(line).get(1)


# --------------------------------------------------------------------------- scanning a tail

@dataclass
class Line:
    number: int
    text: str
    offset: int

    def as_dict(self) -> dict:
        return {"line": self.number, "text": self.text}


class _Lines:
    """Line numbers and text of byte offsets in one buffer, for offsets given in
    increasing order (counting newlines only between consecutive offsets)."""

    def __init__(self, data: bytes):
        self.data = data
        self._pos = 0
        self._number = 1

    def at(self, offset: int) -> Line:
        start = self.data.rfind(b"\n", 0, offset) + 1
        if start < self._pos:
            self._pos, self._number = 0, 1
        self._number += self.data.count(b"\n", self._pos, start)
        self._pos = start
        end = self.data.find(b"\n", start)
        raw = self.data[start:end if end >= 0 else len(self.data)]
        text = raw[:LINE_TEXT_LIMIT * 4].decode("utf-8", "replace")[:LINE_TEXT_LIMIT]
        return Line(self._number, text, start)


@dataclass
class TailScan:
    errors: List[Line] = field(default_factory=list)
    fatal: List[Line] = field(default_factory=list)
    panic_lines: List[Line] = field(default_factory=list)  # "panic: " starting a line
    panics: List[Line] = field(default_factory=list)  # ... followed by a goroutine trace
    too_many_files: List[Line] = field(default_factory=list)
    refused: List[Line] = field(default_factory=list)


def _line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


def _level_words(data: bytes) -> Iterator[Tuple[int, bool]]:
    """(line start, fatal?) of every level word near the start of its line."""
    for literal in _LEVEL_LITERALS:
        position = data.find(literal)
        while position >= 0:
            end = _WORD_TAIL.match(data, position + len(literal)).end()
            word = data[position:end]
            start = _line_start(data, position)
            bounded = (position == 0 or not _WORD_CHAR.match(data, position - 1)) and \
                not _WORD_CHAR.match(data, end)
            if bounded and position - start <= LEVEL_COLUMN and (word in _ERROR_WORDS or word in _FATAL_WORDS):
                yield start, word in _FATAL_WORDS
            position = data.find(literal, end)


def _structured_levels(data: bytes, lowered: bytes) -> Iterator[Tuple[int, bool]]:
    for literal in _STRUCTURED_LITERALS:
        position = lowered.find(literal)
        while position >= 0:
            match = _STRUCTURED.match(lowered, position)
            if match and (position == 0 or not _WORD_CHAR.match(lowered, position - 1)):
                yield _line_start(data, position), match.group(1) not in (b"error", b"err")
            position = lowered.find(literal, position + len(literal))
    for match in _BRACKETED.finditer(lowered):
        start = _line_start(data, match.start())
        if match.start() - start <= LEVEL_COLUMN:
            yield start, match.group(1) != b"error"
    first = _GLOG_FIRST.match(data)
    if first:
        yield 0, first.group(1) == b"F"
    for match in _GLOG.finditer(data):
        yield match.start() + 1, match.group(1) == b"F"


def _starts(pattern: Pattern, data: bytes) -> List[int]:
    """The start of every line holding a match, once each, in order."""
    starts: List[int] = []
    for match in pattern.finditer(data):
        start = _line_start(data, match.start())
        if not starts or starts[-1] != start:
            starts.append(start)
    return starts


def scan_tail(data: bytes) -> TailScan:
    """Every line worth a finding in one tail, with its number."""
    lowered = data.lower()
    levels: Dict[int, bool] = {}  # line start -> fatal?
    for start, fatal in list(_level_words(data)) + list(_structured_levels(data, lowered)):
        levels[start] = levels.get(start, False) or fatal
    scan = TailScan()
    lines = _Lines(data)
    for start in sorted(levels):
        (scan.fatal if levels[start] else scan.errors).append(lines.at(start))
    panics = [s for s in _starts(_PANIC, data) if data.startswith(b"panic: ", s)]
    scan.panic_lines = _at(data, panics)
    scan.panics = [line for line in scan.panic_lines
                   if _GOROUTINE.search(data, line.offset, line.offset + PANIC_TRACE_WINDOW)]
    scan.refused = _at(data, _starts(_REFUSED, lowered))
    scan.too_many_files = _at(data, _starts(_TOO_MANY_FILES, lowered))
    return scan


def _at(data: bytes, starts: List[int]) -> List[Line]:
    lines = _Lines(data)
    return [lines.at(start) for start in starts]


def _timestamp(line: Line, data: bytes) -> Optional[float]:
    match = _TIMESTAMP.search(data, line.offset, line.offset + 48)
    if not match:
        return None
    return parse_time(f"{match.group(1).decode()}T{match.group(2).decode()}Z")


def densest_window(times: List[float], window: float) -> Tuple[int, Optional[float]]:
    """The most events within `window` seconds of each other, and when that window starts."""
    times = sorted(times)
    best, best_start, first = 0, None, 0
    for last, moment in enumerate(times):
        while moment - times[first] > window:
            first += 1
        if last - first + 1 > best:
            best, best_start = last - first + 1, times[first]
    return best, best_start


# --------------------------------------------------------------------------- findings

def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    index = load(reader, SOURCE)
    if index is None:
        return []
    findings: List[Finding] = []
    files = dicts(index.get("files"))[:MAX_INDEX_ENTRIES]  # a longer index is not akdiag's
    for entry in files:
        tail = entry.get("tail") if isinstance(entry.get("tail"), dict) else None
        if tail:
            findings += _tail_findings(reader, entry, tail, thresholds)
    findings += _stale_logs(reader, files, thresholds)
    return findings


def _tail_findings(reader: BundleReader, entry: dict, tail: dict, t: Thresholds) -> List[Finding]:
    path, _problem = reader.member(tail.get("bundle_path"), schema.LOGS_DIR + "/")
    if path is None:
        return []
    try:
        data = read_regular(path, MAX_TEXT_MEMBER)
    except OSError:
        return []
    scan = scan_tail(data)
    subject, relpath = str(entry.get("path") or tail.get("bundle_path")), str(tail.get("bundle_path"))
    findings = _errors(subject, relpath, scan, t)
    findings += _panics(subject, relpath, scan)
    findings += _too_many_files(subject, relpath, scan)
    findings += _refused_burst(subject, relpath, scan, data, t)
    return findings


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


def _refused_burst(subject: str, relpath: str, scan: TailScan, data: bytes, t: Thresholds) -> List[Finding]:
    lines = scan.refused
    minimum = t.number("log_connection_refused_burst_lines")
    if len(lines) < minimum:
        return []
    window = t.number("log_connection_refused_burst_seconds")
    times = [moment for moment in (_timestamp(line, data) for line in lines) if moment is not None]
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
    findings = []
    for entry in files:
        process = _process_of(entry, running)
        modified = parse_time(entry.get("mtime"))
        if process is None or modified is None or started - modified <= limit:
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
    path = PurePosixPath(str(entry.get("path") or ""))
    stem = path.name[:-4] if path.name.endswith(".log") else None
    return stem if stem in running else None
