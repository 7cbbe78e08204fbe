"""When a log line was written, in UTC.

Platform and datastore logs mostly stamp local time without a zone; the host's zone is
in the bundle (system.json `time.timezone`: its name and its UTC offset when collected).
A stamp that carries its own zone (`Z`, `+03:00`, `-0500`) is read with it; one that does
not is read in the host's zone: by the zone's rules where the analyzing machine knows the
zone's name (daylight saving time changes included), else with the recorded offset.

Stamps understood at the start of a line (within its first STAMP_COLUMN bytes):
ISO 8601 with `T` or a space (`2026-11-29T10:00:00.123Z`, `2026-11-29 10:00:00,123`),
Go's and nginx's `2026/11/29 10:00:00`, ClickHouse's `2026.11.29 10:00:00.123456`,
RabbitMQ's `2026-11-29 10:00:00.123456+03:00`, MongoDB's JSON `{"t":{"$date":"..."}`,
glog/klog's `E1129 10:00:00.123456` / `E20261129 10:00:00.123456` (Kvrocks, SSDB),
Redis's `12345:M 29 Nov 2026 10:00:00.123` and syslog's `Nov 29 10:00:00` (the last two
read by collector.logstamp, as the collection reads them).  A stamp without a year takes
the collection's, or the year before when that would put it more than a day after."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Dict, Optional, Tuple

from collector.analyzers.common import as_dict, bundle_started_at, load, number
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.lazyre import lazy
from collector.logstamp import other_stamp

STAMP_COLUMN = 64
_STAMP = lazy(
    rb"(\d{4})[-/.](\d\d)[-/.](\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    rb"(?: ?(Z|[+-]\d\d:?\d\d)(?![\d:]))?")
_OFFSET = lazy(r"^([+-])(\d\d):?(\d\d)$")


def _offset_seconds(text: str) -> Optional[int]:
    match = _OFFSET.match(text)
    if not match:
        return None
    seconds = int(match.group(2)) * 3600 + int(match.group(3)) * 60
    return -seconds if match.group(1) == "-" else seconds


def _named_zone(name: Optional[str]) -> Optional[tzinfo]:
    if not name or "/" not in name:  # "UTC", "MSK": abbreviations are not zone names
        return None
    try:
        from zoneinfo import ZoneInfo  # Python 3.9+
        return ZoneInfo(name)
    except (ImportError, ValueError, OSError, KeyError):  # unknown here, or not a zone name
        return None


@dataclass
class HostClock:
    """The host's zone as the bundle records it."""
    name: Optional[str]
    utc_offset_seconds: Optional[int]  # when collected
    zone: Optional[tzinfo]  # the named zone's rules, where this machine knows them
    year: int  # for stamps without a year (glog): the collection's
    collected_at: Optional[float]
    _minutes: Dict[bytes, Optional[float]] = field(default_factory=dict, repr=False)  # stamp's minute -> UTC

    @property
    def known(self) -> bool:
        return self.zone is not None or self.utc_offset_seconds is not None

    def describe(self) -> dict:
        return {"name": self.name, "utc_offset_seconds": self.utc_offset_seconds,
                "rules": "zone database" if self.zone is not None else
                ("fixed offset" if self.utc_offset_seconds is not None else "unknown: read as UTC")}

    def local_zone(self) -> tzinfo:
        if self.zone is not None:
            return self.zone
        return timezone(timedelta(seconds=self.utc_offset_seconds or 0))


def host_clock(reader: BundleReader) -> HostClock:
    """From system.json's time.timezone: {name, utc_offset ("+0300")} as the system
    collector writes it, or {name, utc_offset_seconds}."""
    system = load(reader, schema.SYSTEM) or {}
    zone = as_dict(as_dict(system.get("time")).get("timezone"))
    name = zone.get("name") if isinstance(zone.get("name"), str) else None
    offset = number(zone.get("utc_offset_seconds"))
    if offset is None and isinstance(zone.get("utc_offset"), str):
        offset = _offset_seconds(zone["utc_offset"].strip())
    started = bundle_started_at(reader)
    year = datetime.fromtimestamp(started, timezone.utc).year if started else datetime.now(timezone.utc).year
    return HostClock(name, int(offset) if offset is not None else None, _named_zone(name), year, started)


def _fraction(raw: Optional[bytes]) -> float:
    return float(b"0." + raw) if raw else 0.0


def _moment(clock: HostClock, fields: Tuple[int, ...], fraction: float, zone: Optional[str]) -> Optional[float]:
    try:
        naive = datetime(*fields)
    except ValueError:
        return None
    if zone == "Z":
        aware = naive.replace(tzinfo=timezone.utc)
    elif zone:
        aware = naive.replace(tzinfo=timezone(timedelta(seconds=_offset_seconds(zone) or 0)))
    else:
        aware = naive.replace(tzinfo=clock.local_zone())
    return aware.timestamp() + fraction


MINUTES_CACHED = 100_000


def _minute_start(clock: HostClock, key: bytes, fields: tuple, zone: Optional[bytes]) -> Optional[float]:
    """The UTC time of a stamp's minute, remembered by its bytes for line_time (a tail's
    lines share few minutes, and a zone's offset changes on whole minutes only)."""
    if len(clock._minutes) >= MINUTES_CACHED:
        clock._minutes.clear()
    moment = _moment(clock, tuple(int(g) for g in fields), 0.0, zone.decode() if zone else None)
    clock._minutes[key] = moment
    return moment


def line_time(data: bytes, start: int, clock: HostClock) -> Tuple[Optional[float], int]:
    """(UTC time of the line starting at `start`, where its stamp ends) or (None, start).
    Called once per error or warning line of every tail: one search, one cached minute."""
    match = _STAMP.search(data, start, start + STAMP_COLUMN)
    if match is not None and (match.start() == start or data.find(b"\n", start, match.start()) < 0):
        zone, second, fraction = match.group(8, 6, 7)
        key = data[match.start():match.end(5)] + zone if zone else data[match.start():match.end(5)]
        base = clock._minutes.get(key, -1.0)  # never -1.0: a minute starts on a multiple of 60
        if base == -1.0:
            base = _minute_start(clock, key, match.group(1, 2, 3, 4, 5), zone)
        if base is None or int(second) > 60:
            return None, start
        return base + int(second) + (float(b"0." + fraction) if fraction else 0.0), match.end()
    end = data.find(b"\n", start, start + STAMP_COLUMN)
    stamp = other_stamp(data[start:end if end >= 0 else min(len(data), start + STAMP_COLUMN)])
    if stamp is None:
        return None, start
    year = stamp.year if stamp.year is not None else clock.year
    fields = (year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    moment = _moment(clock, fields, _fraction(stamp.fraction), None)
    if moment is not None and stamp.year is None and clock.collected_at and moment > clock.collected_at + 86400:
        moment = _moment(clock, (year - 1,) + fields[1:], _fraction(stamp.fraction), None)  # last year's
    return moment, start + stamp.end
