"""Crash loops: a platform process started again and again within a short time, found
from three kinds of evidence in the bundle:

- its own log's tail (logs/<name>.log): start lines, and the FATAL, panic or non-zero
  exit lines between them.  The vendor does not publish its start message, so a start
  line is one whose message (after the time, an INFO/DEBUG/WARN level, bracketed tags
  and the process's name) opens with "start(ed|ing)"/"launch(ed|ing)" followed by
  nothing, the process's name, process/service/server/daemon/application, a version or
  a PID, or that says "<name>|server|service|process ... started"; "started batch 42"
  is no start.  Restarts are counted within `crash_loop_window_seconds` before the
  tail's last time stamp (the log's own clock), and only when a crash line follows the
  first of them: a planned restart of the platform writes no FATAL line;
- the start times of its running PIDs (one more start when the log has not said it yet);
- services.json (systemd): its unit's "restarting"/"started" events in the window, or
  its restart counter (NRestarts) with the last start within the window.

`crash_loops` gives {process name: CrashLoop} for the processes restarted at least
`crash_loop_restarts` times within the window."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional

from collector.analyzers.common import as_dict, dicts, load, number, parse_time
from collector.lazyre import lazy
from collector.plain import as_list
from collector.analyzers.findings import Thresholds
from collector.analyzers import logtime
from collector.analyzers.logs import Line, read_tail, scan_tail, tail_entries
from collector.analyzers.logtime import HostClock, host_clock
from collector.bundle import schema
from collector.bundle.reader import BundleReader

SAME_START_SECONDS = 2.0  # a PID's start time this close to a logged start is that start
CLOCK_SLACK_SECONDS = 60.0  # a systemd time this far past the collection still counts (clocks, rounding)
SAME_CLOCK_SECONDS = 120.0  # the log's clock and the collection's agree this well: the PID start times apply
TIMESTAMP_COLUMN = 64
TAIL_END_SEARCH = 16384  # bytes from the tail's end searched for its last time stamp
WINDOW_SEARCH_GRAIN = 65536  # the window's first line is looked for to within this many bytes

_TIMESTAMP = lazy(
    rb"(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\s?(Z|[+-]\d\d:?\d\d)?")
_HEADER = (rb"^[ \t]*(?:(?:\d[\d\-/T:.,+Z]*|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d)[ \t]+)*"
           rb"(?:\[?(?:INFO|INF|NOTICE|DEBUG|DBG|TRACE|WARN|WARNING|I|N)\]?:?[ \t]+)?"
           rb"(?:\[[^\]\n]{1,60}\]:?[ \t]*|\(\d+\):?[ \t]*)*")
_MSG_FIELD = rb"(?:[^\n]{0,160}?\b(?:msg|message)\"?[ \t]*[=:][ \t]*\"?)"
_START_WORD = rb"(?:start(?:ed|ing)?|launch(?:ed|ing)?)"
_AFTER_START = (rb"(?:[ \t]*(?:[.!\"]|\.\.\.|\xe2\x80\xa6)*[ \t]*(?:$|,|;|\()"
                rb"|[ \t]+(?:(?:AK:)?{name}\b|(?:the[ \t]+)?(?:process|service|server|daemon|application|app)\b"
                rb"|version\b|v?\d+\.\d+|pid\b|with\b|on\b|at\b|listening\b))")
_SUBJECT_FIRST = (rb"(?:(?:AK:)?{name}|server|service|process|daemon|application)[ \t]+"
                  rb"(?:is[ \t]+|has[ \t]+been[ \t]+)?(?:started|starting|launched)\b")
_CRASH_EXIT = lazy(
    rb"(?i)(?:exit(?:ed)?(?:[ \t]+with)?[ \t]+(?:status|code)[ \t:=]*[1-9]|exit status [1-9]"
    rb"|(?:terminated|killed)[ \t]+by[ \t]+signal|signal: (?:killed|segmentation fault|aborted)"
    rb"|segmentation fault|core dumped)")
_CRASH_LITERALS = (b"exit", b"signal", b"segmentation", b"core dumped")


@dataclass
class CrashLoop:
    restarts: int
    span_seconds: Optional[float]  # from the first to the last counted start; None: not known
    source: str  # "log", "systemd" or "systemd counter": where the count comes from
    evidence_file: str
    starts: List[str] = field(default_factory=list)  # ISO times of the counted starts (the last 10)
    last_exit: Optional[dict] = None  # {"file", "line", "text"}
    unit: Optional[str] = None
    seconds_before: Optional[int] = None  # last start, before the collection (systemd counter)

    def figures(self) -> dict:
        return {"restarts": self.restarts, "span_seconds": self.span_seconds, "source": self.source,
                "starts": self.starts[-10:], "last_exit": self.last_exit, "unit": self.unit,
                "last_start_seconds_before": self.seconds_before}


def crash_loops(reader: BundleReader, records: List[dict], collected: Optional[float],
                t: Thresholds) -> Dict[str, CrashLoop]:
    minimum = t.number("crash_loop_restarts")
    window = t.number("crash_loop_window_seconds")
    tails = _log_tails(reader)
    clock = host_clock(reader)
    services = as_dict(load(reader, schema.SERVICES))
    units, events = dicts(services.get("units")), dicts(services.get("events"))
    found: Dict[str, CrashLoop] = {}
    for record in records:
        name = str(record.get("name") or "")
        if not name:
            continue
        candidates = [_from_log(reader, tails.get(f"{name}.log"), name, record, clock, collected, window)
                      if _may_loop(record, collected, window) else None]
        unit = _unit_of(name, record, units)
        if unit is not None:
            candidates.append(_from_unit(unit, events, collected, window))
        best = max((c for c in candidates if c is not None), key=lambda c: c.restarts, default=None)
        if best is not None and best.restarts >= minimum:
            if best.last_exit is None:
                best.last_exit = next((c.last_exit for c in candidates if c is not None and c.last_exit), None)
            found[name] = best
    return found


# --------------------------------------------------------------------------- the log

def _may_loop(record: dict, collected: Optional[float], window: float) -> bool:
    """Whether the process's log is worth reading: it is down, or a PID of it started
    within the window (or when is not known).  A process running for longer than the
    window is not looping now, so a healthy host reads no log here."""
    if record.get("status") == "down" or collected is None:
        return True
    if record.get("status") != "running":
        return False
    for resource in dicts(record.get("resources")):
        began = parse_time(resource.get("started_at"))
        if resource.get("status") != "zombie" and (began is None or began >= collected - window):
            return True
    return False


def _log_tails(reader: BundleReader) -> Dict[str, dict]:
    """{path under BASEDIR/logs: its tail record}."""
    return {entry["path"]: tail for entry, tail in tail_entries(reader) if isinstance(entry.get("path"), str)}


_UTC = HostClock("UTC", 0, timezone.utc, datetime.now(timezone.utc).year, None)


def line_time(data: bytes, offset: int, clock: HostClock = _UTC) -> Optional[float]:
    """The time stamp at the start of the line at `offset`, read as the logs analyzer and
    the timeline read it (collector/analyzers/logtime.py): in the host's zone unless the
    stamp names its own."""
    return logtime.line_time(data, offset, clock)[0]


def _start_pattern(name: str):
    escaped = re.escape(name.encode())
    head = rb"(?:" + _START_WORD + _AFTER_START.replace(b"{name}", escaped) + rb"|" + \
        _SUBJECT_FIRST.replace(b"{name}", escaped) + rb")"
    return re.compile(_HEADER + rb"(?:(?:AK:)?" + escaped + rb"(?:\[\d+\])?:?[ \t]+)?(?:" + _MSG_FIELD + rb")?" + head,
                      re.M | re.I)


def start_offsets(data: bytes, name: str, begin: int = 0) -> List[int]:
    """The offsets of the start lines of process `name` in a log tail (from the line
    start `begin` on): the pattern is tried only on the lines that hold a start word
    (found as literals, fast)."""
    lowered = data[begin:].lower()
    candidates = set()
    for literal in (b"start", b"launch"):
        position = lowered.find(literal)
        if position >= 0:
            position += begin
        while position >= 0:
            candidates.add(data.rfind(b"\n", 0, position) + 1)
            line_end = data.find(b"\n", position)
            if line_end < 0:
                break
            position = lowered.find(literal, line_end + 1 - begin)
            position = position + begin if position >= 0 else -1
    if not candidates:
        return []  # no start word: the pattern (one per process name) is not even compiled
    pattern = _start_pattern(name)
    return [start for start in sorted(candidates) if pattern.match(data, start)]


def _crash_lines(data: bytes, begin: int) -> List[Line]:
    """The FATAL, panic and non-zero exit lines of the tail from offset `begin` on (a
    line start), numbered as lines of the whole tail.  The FATAL and panic lines are the
    tail's one scan (shared with the logs analyzer and the timeline)."""
    lines = {line.offset: line for line in scan_tail(data).fatal + scan_tail(data).panic_lines
             if line.offset >= begin}
    region = data[begin:]
    lowered = region.lower()
    before = data.count(b"\n", 0, begin)
    for literal in _CRASH_LITERALS:
        position = lowered.find(literal)
        while position >= 0:
            start = region.rfind(b"\n", 0, position) + 1
            end = region.find(b"\n", position)
            end = len(region) if end < 0 else end
            if start + begin not in lines and _CRASH_EXIT.search(region, start, end):
                text = region[start:end][:1200].decode("utf-8", "replace")[:300]
                lines[start + begin] = Line(region.count(b"\n", 0, start) + 1 + before, text, start + begin)
            position = lowered.find(literal, end + 1) if end < len(region) else -1
    return [lines[offset] for offset in sorted(lines)]


def _window_begin(data: bytes, since: float, clock: HostClock) -> int:
    """A line start at or before the first line stamped `since` or later, found by
    halving (a log is written in time order; a line without a stamp moves nothing)."""
    low, high = 0, len(data)
    while high - low > WINDOW_SEARCH_GRAIN:
        middle = data.find(b"\n", (low + high) // 2, high) + 1
        if middle <= 0:
            break
        moment = next((m for m in (line_time(data, o, clock) for o in _next_lines(data, middle, high, 8))
                       if m is not None), None)
        if moment is None:
            break
        if moment < since:
            low = middle
        else:
            high = middle
    return low


def _next_lines(data: bytes, start: int, stop: int, count: int) -> List[int]:
    starts = [start]
    while len(starts) < count:
        nxt = data.find(b"\n", starts[-1], stop) + 1
        if nxt <= 0 or nxt >= stop:
            break
        starts.append(nxt)
    return starts


def _tail_end(data: bytes, clock: HostClock) -> Optional[float]:
    """The last time stamp of the tail."""
    low = max(0, len(data) - TAIL_END_SEARCH)
    end = len(data)
    while end > low:
        start = max(low, data.rfind(b"\n", low, end - 1) + 1)
        moment = line_time(data, start, clock)
        if moment is not None:
            return moment
        end = start
    return None


def _from_log(reader: BundleReader, tail: Optional[dict], name: str, record: dict, clock: HostClock,
              collected: Optional[float], window: float) -> Optional[CrashLoop]:
    data = read_tail(reader, tail) if tail is not None else None
    if data is None:
        return None
    bundle_path = str(tail.get("bundle_path"))
    end = _tail_end(data, clock)
    if end is None:
        return None
    starts = [(moment, offset) for offset in start_offsets(data, name, _window_begin(data, end - window, clock))
              for moment in [line_time(data, offset, clock)] if moment is not None and end - window <= moment <= end + 1]
    if not starts:
        return None
    after_first = data.find(b"\n", starts[0][1]) + 1  # the line after the first counted start
    crashes = _crash_lines(data, after_first) if after_first > 0 else []
    if not crashes:
        return None
    times = sorted([moment for moment, _offset in starts] + _unlogged_pid_starts(record, starts, end, collected,
                                                                                    window))
    last = crashes[-1]
    return CrashLoop(
        restarts=len(times) - 1, span_seconds=round(times[-1] - times[0], 1), source="log",
        evidence_file=bundle_path, starts=[_iso(moment) for moment in times],
        last_exit={"file": bundle_path, "line": last.number, "text": last.text})


def _unlogged_pid_starts(record: dict, starts: list, end: float, collected: Optional[float],
                         window: float) -> List[float]:
    """Start times of the running PIDs that no logged start stands for, when the log's
    clock is the collection's (a log in local time without its zone is not compared)."""
    if collected is None or abs(collected - end) > SAME_CLOCK_SECONDS:
        return []
    logged = [moment for moment, _offset in starts]
    extra = []
    for resource in dicts(record.get("resources")):
        began = parse_time(resource.get("started_at"))
        if began is None or resource.get("status") == "zombie" or not collected - window <= began <= collected:
            continue
        if all(abs(began - moment) > SAME_START_SECONDS for moment in logged + extra):
            extra.append(began)
    return extra


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


# --------------------------------------------------------------------------- systemd

_UNIT_PREFIXES = ("ak:", "ak-", "ak_", "akd-", "akd_", "altcraft-", "altcraft_")


def _unit_stem(unit: str) -> str:
    stem = unit.lower()
    for suffix in (".service", ".scope"):
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
    for prefix in _UNIT_PREFIXES:
        if stem.startswith(prefix):
            return stem[len(prefix):]
    return stem


def _unit_of(name: str, record: dict, units: List[dict]) -> Optional[dict]:
    """The unit that runs this process: its main PID is one of the process's, or its
    name is the process's (procworkflow.service, akd-procworkflow.service, ...)."""
    pids = {p for p in as_list(record.get("pids")) + [z.get("pid") for z in dicts(record.get("zombies"))]
            if number(p) is not None}
    for unit in units:
        if number(unit.get("main_pid")) is not None and unit.get("main_pid") in pids:
            return unit
    for unit in units:
        if isinstance(unit.get("unit"), str) and _unit_stem(unit["unit"]) == name.lower():
            return unit
    return None


def _from_unit(unit: dict, events: List[dict], collected: Optional[float], window: float) -> Optional[CrashLoop]:
    """The unit's restarts in the window from its events, else from its restart counter
    when its last start lies in the window (the counter itself spans the unit's life)."""
    return _from_events(unit, events, collected, window) or _from_counter(unit, collected, window)


def _from_events(unit: dict, events: List[dict], collected: Optional[float], window: float) -> Optional[CrashLoop]:
    name = str(unit.get("unit"))
    if collected is None:
        return None
    recent = [(moment, e.get("kind")) for e in events if e.get("unit") == name
              for moment in [parse_time(e.get("time"))]
              if moment is not None and collected - window <= moment <= collected + CLOCK_SLACK_SECONDS]
    restarting = sorted(moment for moment, kind in recent if kind == "restarting")
    started = sorted(moment for moment, kind in recent if kind == "started")
    count, times = max((len(restarting), restarting), (len(started) - 1, started))
    if count <= 0:
        return None
    return CrashLoop(restarts=count, span_seconds=round(times[-1] - times[0], 1), source="systemd",
                     evidence_file=schema.SERVICES, starts=[_iso(m) for m in times], last_exit=_unit_exit(unit),
                     unit=name)


def _from_counter(unit: dict, collected: Optional[float], window: float) -> Optional[CrashLoop]:
    restarts, began = number(unit.get("restarts")), parse_time(unit.get("started_at"))
    if restarts is None or restarts <= 0:
        return None
    if began is None:
        if unit.get("sub_state") not in ("auto-restart", "start", "start-pre"):
            return None  # no start time, and not restarting now: no telling when it looped
    elif collected is not None and not collected - window <= began <= collected + CLOCK_SLACK_SECONDS:
        return None  # restarted long ago: no loop now
    return CrashLoop(restarts=int(restarts), span_seconds=None, source="systemd counter",
                     evidence_file=schema.SERVICES, last_exit=_unit_exit(unit), unit=str(unit.get("unit")),
                     seconds_before=None if began is None or collected is None else max(0, int(collected - began)))


def _unit_exit(unit: dict) -> Optional[dict]:
    code, status, result = unit.get("exit_code"), unit.get("exit_status"), unit.get("result")
    if code is None and status is None and result in (None, "success"):
        return None
    words = [f"{unit.get('unit')}: result {result or '?'}"]
    if code is not None or status is not None:
        words.append(f"{code or 'exited'} (status {status if status is not None else '?'})")
    return {"file": schema.SERVICES, "line": None, "text": ", ".join(words)}
