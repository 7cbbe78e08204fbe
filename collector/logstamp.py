"""The log stamps that are not ISO 8601, read at the start of a line: glog/klog's
(`E1129 10:00:00.123456`, `E20261129 10:00:00.123456`: Kvrocks, SSDB), Redis's
(`12345:M 29 Nov 2026 10:00:00.123`) and syslog's (`Nov 29 10:00:00`, no year).

One reader of their fields for the collection (collector.logtime: `--since` windows, in
the live host's clock) and for the analysis (collector.analyzers.logtime: in the zone the
bundle records); each turns the fields into a time its own way, and reads ISO 8601 stamps,
most of a platform's lines, on a fast path of its own."""

from __future__ import annotations

from typing import NamedTuple, Optional

from collector.lazyre import lazy

MONTHS = {name: n for n, name in enumerate(
    (b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"), 1)}
_GLOG = lazy(rb"[IWEF](\d{4})?(\d\d)(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?")
# at the line's start, after Redis's optional `PID:ROLE ` (a date inside a message is no stamp)
_REDIS = lazy(rb"(?:\d{1,10}:[XCSM] )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?")
_SYSLOG = lazy(rb"([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d)")


class Stamp(NamedTuple):
    year: Optional[int]  # None: the stamp gives none (glog's short form, syslog)
    month: int
    day: int
    hour: int
    minute: int
    second: int
    fraction: Optional[bytes]  # the digits after the point, as written
    end: int  # where the stamp ends in the text it was read from


def other_stamp(head: bytes) -> Optional[Stamp]:
    """The glog, Redis or syslog stamp at the start of `head` (a line's first bytes;
    Redis's comes after its `PID:ROLE` prefix), or None."""
    match = _GLOG.match(head)
    if match:
        year, month, day, hour, minute, second, fraction = match.groups()
        return Stamp(int(year) if year else None, int(month), int(day), int(hour), int(minute), int(second),
                     fraction, match.end())
    match = _REDIS.match(head)
    if match and match.group(2).lower() in MONTHS:
        day, month, year, hour, minute, second, fraction = match.groups()
        return Stamp(int(year), MONTHS[month.lower()], int(day), int(hour), int(minute), int(second),
                     fraction, match.end())
    match = _SYSLOG.match(head)
    if match and match.group(1).lower() in MONTHS:
        month, day, hour, minute, second = match.groups()
        return Stamp(None, MONTHS[month.lower()], int(day), int(hour), int(minute), int(second), None, match.end())
    return None
