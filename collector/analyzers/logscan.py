"""Scanning one log tail: the error, fatal and warning lines by their level words, Go
panics, "too many open files" and "connection refused", each with its line number.
Each tail is scanned as one buffer with searches that start from literals, so the cost
stays small on a bundle of many 2 MB tails.  The logs analyzer, the timeline, the
summary's highlighted lines and the bundle diff all classify lines here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Pattern, Tuple

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
# nginx's [error] and ClickHouse's <Error>: two expressions, each starting from a literal
_BRACKETED = (re.compile(rb"\[(error|crit|alert|emerg|fatal|critical)\]"),
              re.compile(rb"<(error|crit|alert|emerg|fatal|critical)>"))
_MONGO = b'"s":"'  # MongoDB 4.4+ JSON logs: {"t":..., "s":"E", ...}: E, F (W: a warning)
_GLOG = re.compile(rb"\n([EF])(?:\d{4})?\d{4} \d\d:\d\d:\d\d")  # E1129 or E20261129 (glog with the year)
_GLOG_FIRST = re.compile(rb"([EF])(?:\d{4})?\d{4} \d\d:\d\d:\d\d")
_PANIC = re.compile(rb"panic: ")
_GOROUTINE = re.compile(rb"^goroutine \d+ \[", re.M)
_TOO_MANY_FILES = re.compile(rb"too many open files")  # searched in the lower-cased text
_REFUSED = re.compile(rb"connection refused")


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
    for match in (m for pattern in _BRACKETED for m in pattern.finditer(lowered)):
        start = _line_start(data, match.start())
        if match.start() - start <= LEVEL_COLUMN:
            yield start, match.group(1) != b"error"
    for position, level in _mongo_levels(data):
        if level != b"W":
            yield _line_start(data, position), level == b"F"
    first = _GLOG_FIRST.match(data)
    if first:
        yield 0, first.group(1) == b"F"
    for match in _GLOG.finditer(data):
        yield match.start() + 1, match.group(1) == b"F"


def _mongo_levels(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """(position, severity letter) of MongoDB's "s" field near the start of its line."""
    position = data.find(_MONGO)
    while position >= 0:
        level = data[position + len(_MONGO):position + len(_MONGO) + 2]
        if len(level) == 2 and level[1:] == b'"' and position - _line_start(data, position) <= LEVEL_COLUMN:
            yield position, level[:1]
        position = data.find(_MONGO, position + len(_MONGO))


def _starts(pattern: Pattern, data: bytes) -> List[int]:
    """The start of every line holding a match, once each, in order."""
    starts: List[int] = []
    for match in pattern.finditer(data):
        start = _line_start(data, match.start())
        if not starts or starts[-1] != start:
            starts.append(start)
    return starts


# The logs analyzer and then the timeline scan the same tails: the second scan of a tail
# is the first one's result.  Bounded by the lines held (a scan keeps only the lines it
# found, never the tail).
_SCANS: Dict[Tuple[int, int], TailScan] = {}
_SCANNED_LINES_KEPT = 100_000


def scan_tail(data: bytes) -> TailScan:
    """Every line worth a finding in one tail, with its number (the same tail's bytes are
    scanned once; the result is shared, never to be changed by its users)."""
    key = (len(data), hash(data))
    scan = _SCANS.get(key)
    if scan is None:
        scan = _scan(data)
        held = sum(_line_count(kept) for kept in _SCANS.values())
        if held + _line_count(scan) > _SCANNED_LINES_KEPT:
            _SCANS.clear()
        _SCANS[key] = scan
    return scan


def _line_count(scan: TailScan) -> int:
    return (len(scan.errors) + len(scan.fatal) + len(scan.panic_lines) + len(scan.too_many_files)
            + len(scan.refused))


def _scan(data: bytes) -> TailScan:
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




# Warning lines: the same places as the error levels (a word near the line's start, a
# structured field, nginx's brackets, glog's W), for the timeline only.
_WARN_LITERALS = (b"WARN",)
_WARN_WORDS = {b"WARN", b"WARNING"}
_WARN_STRUCTURED = re.compile(rb'(?:level|lvl|severity)"?\s*[=:]\s*"?(warn|warning)\b')
_WARN_BRACKETED = (re.compile(rb"\[(warn|warning)\]"), re.compile(rb"<(warn|warning)>"))
# "\n" first, not "(?:^|\n)": a pattern that starts with a literal is searched for fast
_WARN_GLOG = re.compile(rb"\nW(?:\d{4})?\d{4} \d\d:\d\d:\d\d")
_WARN_GLOG_FIRST = re.compile(rb"W(?:\d{4})?\d{4} \d\d:\d\d:\d\d")


def scan_warnings(data: bytes) -> List[Line]:
    """The lines whose level is a warning (the same column rule as the error levels)."""
    return _at(data, warning_starts(data))


def warning_starts(data: bytes) -> List[int]:
    """Where each warning line starts, in order."""
    lowered = data.lower()
    starts = set()
    for literal in _WARN_LITERALS:
        position = data.find(literal)
        while position >= 0:
            end = _WORD_TAIL.match(data, position + len(literal)).end()
            start = _line_start(data, position)
            bounded = (position == 0 or not _WORD_CHAR.match(data, position - 1)) and not _WORD_CHAR.match(data, end)
            if bounded and data[position:end] in _WARN_WORDS and position - start <= LEVEL_COLUMN:
                starts.add(start)
            position = data.find(literal, end)
    for position in _literal_positions(lowered, _STRUCTURED_LITERALS):
        if _WARN_STRUCTURED.match(lowered, position) and (position == 0 or not _WORD_CHAR.match(lowered, position - 1)):
            starts.add(_line_start(data, position))
    starts.update(_line_start(data, position) for position, level in _mongo_levels(data) if level == b"W")
    for match in (m for pattern in _WARN_BRACKETED for m in pattern.finditer(lowered)):
        start = _line_start(data, match.start())
        if match.start() - start <= LEVEL_COLUMN:
            starts.add(start)
    starts.update(match.start() + 1 for match in _WARN_GLOG.finditer(data))
    if _WARN_GLOG_FIRST.match(data):
        starts.add(0)
    return sorted(starts)


def _literal_positions(text: bytes, literals: Tuple[bytes, ...]) -> Iterator[int]:
    for literal in literals:
        position = text.find(literal)
        while position >= 0:
            yield position
            position = text.find(literal, position + len(literal))
