"""Time in logs: the `--since` value, the timestamp at the start of a log line, and
the offset in a log file where a time window starts, found by a binary search over
probe offsets (`seek_since`): the cost is a few small reads whatever the file's size.

Timestamps recognised near the start of a line (the first LINE_PREFIX bytes):
ISO 8601 and its relatives ``2026-11-30T14:00:00Z``, ``2026-11-30 14:00:00,123``,
``2026-11-30 14:00:00.123456+00:00`` (RabbitMQ), mongod's JSON
``{"t":{"$date":"2026-11-30T14:00:00.123+00:00"}``, ``2026/11/30 14:00:00`` (nginx,
Go's log), ``2026.11.30 14:00:00.123456`` (ClickHouse); Redis's
``12345:M 30 Nov 2026 14:00:00.123``; glog's ``I20261130 14:00:00.123`` and
``E1130 14:00:00.123`` (Kvrocks); syslog's ``Nov 30 14:00:00``.  A time without a zone
is local time on this host; a year the line does not give is the reference time's
(a log file's mtime), or the one before when that would put the line in the future.

A log is taken to be in time order; lines with no timestamp (a stack trace, a
continued message) belong to the timestamped line above them.
"""

from __future__ import annotations

import calendar
import os
import re
import time
from datetime import datetime
from typing import NamedTuple, Optional, Tuple

from collector.logstamp import other_stamp

LINE_PREFIX = 100  # a line's timestamp is looked for in its first bytes only
PROBE_BYTES = 16 * 1024  # read at each probe offset
MAX_PROBE_SCAN = 1024 * 1024  # past this many bytes without a timestamp, a probe gives up
_SINCE_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_ISO = re.compile(rb"(\d{4})[-/.](\d\d)[-/.](\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(Z|[+-]\d\d:?\d\d)?")


class BadSince(ValueError):
    """A --since value that is not a duration or a time in the past."""


def parse_since(text: str, now: Optional[float] = None) -> float:
    """Epoch seconds of `2h`, `90m`, `3d`, `2026-11-30T14:00`, `2026-11-30 14:00:00`,
    `2026-11-30T14:00Z` or `...+03:00` (local time without a zone).  Raises BadSince."""
    now = time.time() if now is None else now
    match = _SINCE_RELATIVE.match(text)
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds <= 0:
            raise BadSince(f"{text!r} is not a duration back from now")
        return now - seconds
    moment = _parse_absolute(text.strip())
    if moment is None:
        raise BadSince(f"{text!r} is neither a duration (2h, 90m, 3d) nor a time (2026-11-30T14:00, "
                       f"2026-11-30 14:00, with Z or +03:00 for a zone other than this host's)")
    if moment > now + 60:
        raise BadSince(f"{text!r} is in the future")
    return moment


def _parse_absolute(text: str) -> Optional[float]:
    value = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    for pattern in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z",
                    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(value.replace("+00:00", "+0000"), pattern)
        except ValueError:
            continue
        return parsed.timestamp()  # naive: this host's local time
    return None


# -- a line's time -----------------------------------------------------------------


def _epoch(year: int, month: int, day: int, hh: int, mm: int, ss: int, fraction: Optional[bytes],
           zone: Optional[bytes]) -> Optional[float]:
    try:
        if zone:
            text = zone.decode()
            sign = -1 if text[0] == "-" else 1
            digits = text[1:].replace(":", "") if text != "Z" else "0000"
            offset = sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60) if text != "Z" else 0
            moment = calendar.timegm((year, month, day, hh, mm, ss, 0, 0, 0)) - offset
        else:
            moment = time.mktime((year, month, day, hh, mm, ss, 0, 0, -1))
    except (ValueError, OverflowError):
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and hh < 24 and mm < 60 and ss < 61):
        return None
    return moment + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _with_year(month: int, day: int, hh: int, mm: int, ss: int, fraction: Optional[bytes],
               reference: float) -> Optional[float]:
    year = time.localtime(reference).tm_year
    moment = _epoch(year, month, day, hh, mm, ss, fraction, None)
    if moment is not None and moment > reference + 86400:
        moment = _epoch(year - 1, month, day, hh, mm, ss, fraction, None)
    return moment


def line_time(line: bytes, reference: Optional[float] = None) -> Optional[float]:
    """Epoch seconds of the timestamp at the start of `line`, or None."""
    head = line[:LINE_PREFIX]
    match = _ISO.search(head)
    if match:
        y, mo, d, hh, mi, ss, frac, zone = match.groups()
        return _epoch(int(y), int(mo), int(d), int(hh), int(mi), int(ss), frac, zone)
    stamp = other_stamp(head)
    if stamp is None:
        return None
    if stamp.year is not None:
        return _epoch(stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second, stamp.fraction,
                      None)
    reference = time.time() if reference is None else reference
    return _with_year(stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second, stamp.fraction, reference)


def first_and_last_time(data: bytes, reference: Optional[float] = None,
                        scan: int = PROBE_BYTES) -> Tuple[Optional[float], Optional[float]]:
    """The first and the last timestamp among the lines of `data` (looked for within
    `scan` bytes of either end)."""
    first = next((t for t in (line_time(l, reference) for l in data[:scan].split(b"\n")) if t is not None), None)
    tail_lines = data[-scan:].split(b"\n")
    if len(data) > scan:
        tail_lines = tail_lines[1:]  # the first piece is a partial line
    last = next((t for t in (line_time(l, reference) for l in reversed(tail_lines)) if t is not None), None)
    return first, last


def window_start_in(data: bytes, since: float, reference: Optional[float] = None) -> Optional[int]:
    """The index in `data` (whole lines) of the first line stamped at or after `since`;
    None when no line is.  Untimed lines before it belong to an older line."""
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        moment = line_time(data[pos:end], reference)
        if moment is not None and moment >= since:
            return pos
        pos = end
    return None


# -- seeking in a plain file -------------------------------------------------------------


class CountingReader:
    """os.pread on one descriptor, counting the bytes it read (what the seek cost)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.bytes_read = 0

    def pread(self, length: int, offset: int) -> bytes:
        data = os.pread(self.fd, length, offset)
        self.bytes_read += len(data)
        return data


class Seek(NamedTuple):
    start: Optional[int]  # offset of the window's first line; None: the file has no timestamps
    first_time: Optional[float]  # the file's first timestamp: <= since means the window starts here
    covered: bool  # the window's start lies in this file (or after it)


def _timed_line_after(reader: CountingReader, offset: int, limit: int, reference: float
                      ) -> Optional[Tuple[int, float]]:
    """(offset, time) of the first timestamped line that starts at or after `offset`
    (at `offset` itself only when it is 0) and before `limit`; None when there is none
    within MAX_PROBE_SCAN bytes."""
    pos, scanned, carry, need_line_start = offset, 0, b"", offset > 0
    while pos < limit and scanned < MAX_PROBE_SCAN:
        chunk = reader.pread(min(PROBE_BYTES, limit - pos), pos)
        if not chunk:
            return None
        scanned += len(chunk)
        data, base = carry + chunk, pos - len(carry)
        pos += len(chunk)
        index = 0
        if need_line_start:
            newline = data.find(b"\n")
            if newline < 0:
                carry = b""
                continue
            index, need_line_start = newline + 1, False
        while True:
            newline = data.find(b"\n", index)
            if newline < 0 and pos < limit:
                carry = data[index:]
                break
            line = data[index:] if newline < 0 else data[index:newline]
            moment = line_time(line, reference)
            if moment is not None:
                return base + index, moment
            if newline < 0:
                return None
            index = newline + 1
    return None


def seek_since(reader: CountingReader, size: int, since: float, reference: float) -> Seek:
    """Where the window [since, ...) starts in the file of `size` bytes: the smallest line
    start whose first timestamped line at or after it is stamped at or after `since`."""
    first = _timed_line_after(reader, 0, size, reference)
    if first is None:
        return Seek(None, None, False)
    if first[1] >= since:
        return Seek(0, first[1], False)
    lo, hi = 0, size  # the answer lies in (lo, hi]: the timed line after lo is older
    while hi - lo > PROBE_BYTES:
        mid = (lo + hi) // 2
        found = _timed_line_after(reader, mid, hi, reference)
        if found is None or found[1] >= since:
            hi = mid
        else:
            lo = found[0]
    return Seek(_scan_to_since(reader, lo, size, since, reference), first[1], True)


def _scan_to_since(reader: CountingReader, offset: int, size: int, since: float, reference: float) -> int:
    """From the line start `offset` on, the start of the first line stamped at or after `since`.
    A line longer than MAX_PROBE_SCAN is judged by its start and never held whole: a file
    of one endless line costs one pass, not a copy of it per chunk."""
    pos, carry, skipping = offset, b"", False
    while pos < size:
        chunk = reader.pread(min(PROBE_BYTES, size - pos), pos)
        if not chunk:
            break
        if skipping:  # inside a long line already judged older than `since`
            newline = chunk.find(b"\n")
            pos, skipping = (pos + len(chunk), True) if newline < 0 else (pos + newline + 1, False)
            continue
        data, base = carry + chunk, pos - len(carry)
        pos += len(chunk)
        whole = len(data) if pos >= size else data.rfind(b"\n") + 1
        found = window_start_in(data[:whole], since, reference)
        if found is not None:
            return base + found
        carry = data[whole:]
        if len(carry) > MAX_PROBE_SCAN:
            moment = line_time(carry, reference)
            if moment is not None and moment >= since:
                return base + whole
            carry, skipping = b"", True
    return size


def line_start_at_or_after(reader: CountingReader, offset: int, size: int) -> int:
    """The first line start at or after `offset` (`size` when there is none)."""
    if offset <= 0:
        return 0
    pos = offset - 1
    while pos < size:
        chunk = reader.pread(min(PROBE_BYTES, size - pos), pos)
        if not chunk:
            return size
        newline = chunk.find(b"\n")
        if newline >= 0:
            return pos + newline + 1
        pos += len(chunk)
    return size
