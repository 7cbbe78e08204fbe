"""Scanning one log tail: the error, fatal and warning lines by their level words, Go
panics, "too many open files" and "connection refused", each with its line number.
Each tail is scanned as one buffer with searches that start from literals, so the cost
stays small on a bundle of many 2 MB tails.  The logs analyzer, the timeline, the
summary's highlighted lines and the bundle diff all classify lines here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from collector.lazyre import lazy

LINE_TEXT_LIMIT = 300
PANIC_TRACE_WINDOW = 4096  # bytes after "panic:" in which the goroutine trace must start

# Level words, found where they stand near the start of a line ("2024-.. ERROR [api] ..",
# "[FATAL] .."), as structured fields (level=error, "level":"fatal", severity: crit), as
# nginx writes them ([error], [crit]), as ClickHouse does (<Error>), as MongoDB's JSON logs
# do ("s":"E") and as glog/klog does (E0102 15:04:05.000000); warnings the same ways.
# Every expression starts from a literal (searched for fast in the regex engine, never a
# character class nor "^" alone), and a tail is searched once per literal, for all kinds.
LEVEL_COLUMN = 60  # a level word further into the line is a message's word, not a level
ERROR, FATAL, WARN = 0, 1, 2  # the level a search found
_NOT_AFTER = rb"(?![\w.\-])"  # a whole word: no word character, dot or dash follows ...
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")  # ... nor precedes
_LEVEL_WORDS = ((lazy(rb"ERR(?:OR)?" + _NOT_AFTER), ERROR), (lazy(rb"WARN(?:ING)?" + _NOT_AFTER), WARN),
                (lazy(rb"FATAL" + _NOT_AFTER), FATAL), (lazy(rb"CRIT(?:ICAL)?" + _NOT_AFTER), FATAL),
                (lazy(rb"PANIC" + _NOT_AFTER), FATAL), (lazy(rb"EMERG" + _NOT_AFTER), FATAL),
                (lazy(rb"ALERT" + _NOT_AFTER), FATAL))
_LEVELS = {b"error": ERROR, b"err": ERROR, b"warn": WARN, b"warning": WARN}  # any other level word: FATAL
_STRUCTURED = tuple(lazy(key + rb'"?\s*[=:]\s*"?(error|err|fatal|panic|critical|crit|warning|warn)\b')
                    for key in (rb"level", rb"lvl", rb"severity"))  # searched in the lower-cased text
# nginx's [error] and ClickHouse's <Error>, searched in the lower-cased text
_BRACKETED = (lazy(rb"\[(error|crit|alert|emerg|fatal|critical|warn|warning)\]"),
              lazy(rb"<(error|crit|alert|emerg|fatal|critical|warn|warning)>"))
_MONGO = b'"s":"'  # MongoDB 4.4+ JSON logs: {"t":..., "s":"E", ...}
_MONGO_LEVELS = {b'E"': ERROR, b'F"': FATAL, b'W"': WARN}  # I and D1..D5 are information
_GLOG_LEVELS = {b"E": ERROR, b"F": FATAL, b"W": WARN}
_GLOG = lazy(rb"\n([EFW])(?:\d{4})?\d{4} \d\d:\d\d:\d\d")  # E1129 or E20261129 (glog with the year)
_GLOG_FIRST = lazy(rb"([EFW])(?:\d{4})?\d{4} \d\d:\d\d:\d\d")
_PANIC = b"panic: "  # starting a line
_GOROUTINE = lazy(rb"^goroutine \d+ \[", re.M)
_TOO_MANY_FILES = b"too many open files"  # searched in the lower-cased text
_REFUSED = b"connection refused"


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
    """The Line at each line start of one buffer, numbered beforehand."""

    def __init__(self, data: bytes, numbers: Dict[int, int]):
        self.data = data
        self.numbers = numbers

    def at(self, start: int) -> Line:
        end = self.data.find(b"\n", start)
        raw = self.data[start:end if end >= 0 else len(self.data)]
        text = raw[:LINE_TEXT_LIMIT * 4].decode("utf-8", "replace")[:LINE_TEXT_LIMIT]
        return Line(self.numbers[start], text, start)


@dataclass
class TailScan:
    errors: List[Line] = field(default_factory=list)
    fatal: List[Line] = field(default_factory=list)
    panic_lines: List[Line] = field(default_factory=list)  # "panic: " starting a line
    panics: List[Line] = field(default_factory=list)  # ... followed by a goroutine trace
    too_many_files: List[Line] = field(default_factory=list)
    refused: List[Line] = field(default_factory=list)
    warnings: List[Tuple[int, int]] = field(default_factory=list)  # (line start, line number) of warning lines


def _line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


class _Levels:
    """The level of each line found so far: fatal over error; a warning apart (a line can
    be both: the timeline and the findings each take what they need)."""

    def __init__(self) -> None:
        self.failing: Dict[int, int] = {}  # line start -> ERROR or FATAL
        self.warnings = set()

    def note(self, start: int, level: int) -> None:
        if level == WARN:
            self.warnings.add(start)
        elif level == FATAL:
            self.failing[start] = FATAL
        else:
            self.failing.setdefault(start, ERROR)


def _level_words(data: bytes, found: _Levels) -> None:
    """The level words near the start of their line."""
    for pattern, level in _LEVEL_WORDS:
        for match in pattern.finditer(data):
            position = match.start()
            if position and data[position - 1] in _WORD_BYTES:
                continue
            start = data.rfind(b"\n", 0, position) + 1
            if position - start <= LEVEL_COLUMN:
                found.note(start, level)


def _marked_levels(data: bytes, lowered: bytes, found: _Levels) -> None:
    """Structured fields, brackets, MongoDB's and glog's letters."""
    for pattern in _STRUCTURED:
        for match in pattern.finditer(lowered):
            position = match.start()
            if not position or lowered[position - 1] not in _WORD_BYTES:
                found.note(_line_start(data, position), _LEVELS.get(match.group(1), FATAL))
    for pattern in _BRACKETED:
        for match in pattern.finditer(lowered):
            start = _line_start(data, match.start())
            if match.start() - start <= LEVEL_COLUMN:
                found.note(start, _LEVELS.get(match.group(1), FATAL))
    position = data.find(_MONGO)
    while position >= 0:
        letter = data[position + len(_MONGO):position + len(_MONGO) + 2]
        start = _line_start(data, position)
        level = _MONGO_LEVELS.get(letter)
        if level is not None and position - start <= LEVEL_COLUMN:
            found.note(start, level)
        position = data.find(_MONGO, position + len(_MONGO))
    first = _GLOG_FIRST.match(data)
    if first:
        found.note(0, _GLOG_LEVELS[first.group(1)])
    for match in _GLOG.finditer(data):
        found.note(match.start() + 1, _GLOG_LEVELS[match.group(1)])


def _literal_lines(text: bytes, literal: bytes) -> List[int]:
    """The start of every line of `text` holding `literal`, once each, in order."""
    starts: List[int] = []
    position = text.find(literal)
    while position >= 0:
        starts.append(text.rfind(b"\n", 0, position) + 1)
        end = text.find(b"\n", position + len(literal))
        if end < 0:
            break
        position = text.find(literal, end + 1)
    return starts


def _panic_lines(data: bytes) -> List[int]:
    starts = [0] if data.startswith(_PANIC) else []
    position = data.find(b"\n" + _PANIC)
    while position >= 0:
        starts.append(position + 1)
        position = data.find(b"\n" + _PANIC, position + 1 + len(_PANIC))
    return starts


# The logs analyzer, crash-loop detection and then the timeline scan the same tails: the
# later scans of a tail are the first one's result.  Bounded by the lines held (a scan
# keeps only the lines it found, never the tail).
_SCANS: Dict[Tuple[int, int], TailScan] = {}
_SCANNED_LINES_KEPT = 150_000
_held = 0  # the lines the kept scans hold (summed as they are added: 20,000 tails stay linear)


def scan_tail(data: bytes) -> TailScan:
    """Every line worth a finding or a timeline event in one tail, with its number (the
    same tail's bytes are scanned once; the result is shared, never to be changed by its
    users)."""
    key = (len(data), hash(data))
    scan = _SCANS.get(key)
    if scan is None:
        scan = _scan(data)
        global _held
        if _held + _line_count(scan) > _SCANNED_LINES_KEPT:
            _SCANS.clear()
            _held = 0
        _SCANS[key] = scan
        _held += _line_count(scan)
    return scan


def _line_count(scan: TailScan) -> int:
    return (len(scan.errors) + len(scan.fatal) + len(scan.panic_lines) + len(scan.too_many_files)
            + len(scan.refused) + len(scan.warnings))


def _scan(data: bytes) -> TailScan:
    """One search per literal over the tail (and its lower-cased copy) for every kind of
    line; the lines found are numbered in one sweep and only they are decoded."""
    lowered = data.lower()
    levels = _Levels()
    _level_words(data, levels)
    _marked_levels(data, lowered, levels)
    panics = _panic_lines(data)
    refused, too_many = _literal_lines(lowered, _REFUSED), _literal_lines(lowered, _TOO_MANY_FILES)
    numbers = _numbers(data, levels.warnings.union(levels.failing, panics, refused, too_many))
    warnings, failing = sorted(levels.warnings), sorted(levels.failing)
    lines = _Lines(data, numbers)
    scan = TailScan(warnings=[(start, numbers[start]) for start in warnings])
    for start in failing:
        (scan.fatal if levels.failing[start] == FATAL else scan.errors).append(lines.at(start))
    scan.panic_lines = [lines.at(start) for start in panics]
    scan.panics = [line for line in scan.panic_lines
                   if _GOROUTINE.search(data, line.offset, line.offset + PANIC_TRACE_WINDOW)]
    scan.refused = [lines.at(start) for start in refused]
    scan.too_many_files = [lines.at(start) for start in too_many]
    return scan


def _numbers(data: bytes, starts: set) -> Dict[int, int]:
    """{line start: its line number, from 1}, counting the newlines once."""
    numbers: Dict[int, int] = {}
    number, position = 1, 0
    for start in sorted(starts):
        number += data.count(b"\n", position, start)
        position = start
        numbers[start] = number
    return numbers


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
