"""One timeline of the bundle (timeline.json): the error and warning lines of every log
tail, the kernel's events (kernel.json) and the service manager's unit transitions
(services.json), merged by time in UTC.

Built from the bundle only, like the findings.  Log lines are read in the host's zone
(collector/analyzers/logtime.py); a line without a time stamp cannot be placed and is
counted in `untimed_lines`.  Unit starts are left out (only stops, restarts, kills and
failures are errors or warnings).

The incident: the last dense run of errors, i.e. the errors from the first one after the
last quiet gap of QUIET_GAP_SECONDS or more before the newest error.  `first_error` is its
first error: an unrelated error three days before, followed by hours of quiet, is not it.

Bounded: at most MAX_EVENTS events.  When there are more, the incident's first half and its
newest half are kept (the start of the incident and the end, where the collection found the
host); when the incident holds fewer, the rest is filled with the events just before it.
`counts` keeps every event's source and severity, `left_out` how many were not kept.
Of one log, at most MAX_EVENTS_PER_LOG lines are placed, its newest (the default tail of
5000 lines never reaches it; a long --since window can): `lines_left_out_per_log` says how
many more each such log had, and they are in no count.
Order: time, then source (unit, kernel, log), file, line: the same bundle gives the same file."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Dict, List, NamedTuple, Optional, Tuple

from collector.analyzers import logs
from collector.analyzers.common import dicts, load, parse_time
from collector.analyzers.logscan import TailScan, scan_tail
from collector.analyzers.logtime import HostClock, host_clock, line_time
from collector.bundle import schema
from collector.bundle.reader import BundleReader

MAX_EVENTS = 5000
MAX_EVENTS_PER_LOG = 20_000  # lines of one tail placed: its newest (a 64 MB --since tail stays bounded)
CHART_SUBJECTS = 12  # series in errors_per_minute; the rest summed as one
CHART_MINUTES = 1440  # errors_per_minute covers at most the incident's last day
CHART_LEAD_MINUTES = 10  # and the quiet minutes before it
QUIET_GAP_SECONDS = 600.0
MESSAGE_LIMIT = 240
ERROR, WARNING = "error", "warning"
SOURCES = ("unit", "kernel", "log")  # the order of events at the same time
KERNEL_SEVERITY = {"oom_kill": ERROR, "segfault": ERROR, "trap": ERROR, "io_error": ERROR,
                   "conntrack_full": ERROR, "hung_task": WARNING, "syn_flood": WARNING}
UNIT_SEVERITY = {"failed": ERROR, "killed": ERROR, "restarting": WARNING, "stopped": WARNING}


class Event(NamedTuple):
    """One event; the fields in sorting order, so that plain tuple comparison sorts them."""
    time: float
    rank: int  # SOURCES.index(source)
    file: str
    line: int  # 0: not a line of a file
    severity: str
    subject: str
    message: str  # a log line's is read from the tail only for the events kept (materialized)
    kind: str  # the kernel's or the unit's event kind; "" for a log line
    start: int = 0  # a log line's offset in its tail, and where its time stamp ends
    stamp_end: int = 0

    def as_dict(self) -> dict:
        record = {"time": iso_precise(self.time), "source": SOURCES[self.rank], "subject": self.subject,
                  "severity": self.severity, "message": self.message, "file": self.file, "line": self.line or None}
        if self.kind:
            record["kind"] = self.kind
        return record


_new = tuple.__new__
_LOG = SOURCES.index("log")


def iso_precise(moment: float) -> str:
    """ISO 8601 UTC, with microseconds where the time has a fraction."""
    stamp = datetime.fromtimestamp(moment, timezone.utc)
    if stamp.year >= 1000:  # isoformat: the same text as strftime below, in half the time
        return stamp.isoformat()[:-len("+00:00")] + "Z"
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if stamp.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def _one_line(text: object) -> str:
    return " ".join(str(text or "").split())[:MESSAGE_LIMIT]


# --------------------------------------------------------------------------- sources

def process_of_log(path: str) -> str:
    """A log's process: its file name without `.log` ("procworkflow.log" -> "procworkflow")."""
    name = PurePosixPath(path).name
    return name[:-4] if name.endswith(".log") and len(name) > 4 else name


def _line_marks(scan: TailScan) -> Dict[int, Tuple[int, str]]:
    """{line start: (line number, severity)} of the lines worth an event: errors (error
    and fatal levels, panics, "too many open files") and warnings (the warning level,
    "connection refused"), from the tail's one scan (shared with the logs analyzer)."""
    marks = {start: (number, WARNING) for start, number in scan.warnings}
    marks.update((line.offset, (line.number, WARNING)) for line in scan.refused)
    for lines in (scan.errors, scan.fatal, scan.panic_lines, scan.too_many_files):
        marks.update((line.offset, (line.number, ERROR)) for line in lines)
    return marks


def log_events(reader: BundleReader, clock: HostClock, untimed: Dict[str, int],
               capped: Optional[Dict[str, int]] = None, per_log: int = MAX_EVENTS_PER_LOG) -> List[Event]:
    """The error and warning lines of every tail, without their messages (see materialized):
    at most `per_log` lines of each tail, its newest (how many more: `capped`)."""
    events: List[Event] = []
    add = events.append
    for entry, tail in logs.tail_entries(reader):
        data = logs.read_tail(reader, tail)
        if data is None:
            continue
        relpath, subject = str(tail.get("bundle_path")), process_of_log(logs.subject_of(entry, tail))
        marks = _line_marks(scan_tail(data))
        starts = sorted(marks)
        if len(starts) > per_log:
            if capped is not None:
                capped[relpath] = len(starts) - per_log
            starts = starts[len(starts) - per_log:]
        for start in starts:
            moment, stamp_end = line_time(data, start, clock)
            if moment is None:
                untimed[relpath] = untimed.get(relpath, 0) + 1
            else:
                number, severity = marks[start]  # tuple.__new__: Event(...) without its Python-level __new__
                add(_new(Event, (moment, _LOG, relpath, number, severity, subject, "", "", start, stamp_end)))
    return events


def materialized(reader: BundleReader, events: List[Event]) -> List[Event]:
    """The events with their log lines' messages, read from the tails once more (only the
    events kept are, so the timeline never holds every tail in memory)."""
    by_file: Dict[str, List[int]] = {}
    for index, event in enumerate(events):
        if event.rank == _LOG:
            by_file.setdefault(event.file, []).append(index)
    result = list(events)
    for relpath, indexes in by_file.items():
        data = logs.read_tail(reader, {"bundle_path": relpath}) or b""
        for index in indexes:
            event = events[index]
            end = data.find(b"\n", event.stamp_end)
            raw = data[event.stamp_end:end if end >= 0 else len(data)][:MESSAGE_LIMIT * 4]
            result[index] = _new(Event, event[:6] + (_one_line(raw.decode("utf-8", "replace")),) + event[7:])
    return result


def kernel_events(reader: BundleReader, problems: List[str]) -> List[Event]:
    data = load(reader, schema.KERNEL)
    if data is None:
        return []
    file = data.get("messages_file") if isinstance(data.get("messages_file"), str) else schema.KERNEL
    events = []
    for event in dicts(data.get("events")):
        moment, kind = parse_time(event.get("time")), str(event.get("kind") or "")
        if moment is None:
            problems.append(f"{schema.KERNEL}: an event without a readable time ({kind or 'no kind'})")
            continue
        subject = event.get("process") or event.get("device") or "kernel"
        events.append(Event(moment, SOURCES.index("kernel"), file, 0, KERNEL_SEVERITY.get(kind, WARNING),
                            _one_line(subject), _one_line(event.get("message") or kind), kind))
    return events


def unit_events(reader: BundleReader, problems: List[str]) -> List[Event]:
    data = load(reader, schema.SERVICES)
    if data is None:
        return []
    events = []
    for event in dicts(data.get("events")):
        moment, kind = parse_time(event.get("time")), str(event.get("kind") or "")
        if kind not in UNIT_SEVERITY:
            continue  # started, or a kind this akdiag does not know
        if moment is None:
            problems.append(f"{schema.SERVICES}: a {kind} event without a readable time")
            continue
        events.append(Event(moment, SOURCES.index("unit"), schema.SERVICES, 0, UNIT_SEVERITY[kind],
                            _one_line(event.get("unit") or "?"), _one_line(event.get("message") or kind), kind))
    return events


# --------------------------------------------------------------------------- the incident and the bound

def incident_of(events: List[Event], gap: float = QUIET_GAP_SECONDS) -> Optional[Tuple[int, int, int]]:
    """(index of the incident's first error, of its last, how many errors) in the sorted
    events, or None without errors."""
    errors = [i for i, event in enumerate(events) if event.severity == ERROR]
    if not errors:
        return None
    first = len(errors) - 1
    while first > 0 and events[errors[first]].time - events[errors[first - 1]].time < gap:
        first -= 1
    return errors[first], errors[-1], len(errors) - first


def bounded(events: List[Event], start: int, limit: int = MAX_EVENTS) -> List[Event]:
    """At most `limit` events: see the module's docstring."""
    before, during = events[:start], events[start:]
    if len(during) >= limit:
        return during[:limit // 2] + during[len(during) - (limit - limit // 2):]
    return before[len(before) - (limit - len(during)):] + during if len(events) > limit else events


def _counts(events: List[Event]) -> Dict[str, Dict[str, int]]:
    counts: Dict[str, Dict[str, int]] = {source: {ERROR: 0, WARNING: 0} for source in SOURCES}
    for event in events:
        counts[SOURCES[event.rank]][event.severity] += 1
    return counts


def errors_per_minute(events: List[Event], incident: Optional[Tuple[int, int, int]]) -> Optional[dict]:
    """Errors per minute per subject over the incident, from every event (the kept ones
    and the left out): {start, minutes, series: [{subject, errors, counts: [[minute, n]]}],
    others: [subjects summed in the last series]}."""
    if incident is None:
        return None
    end = int(events[incident[1]].time // 60)
    start = max(int(events[incident[0]].time // 60) - CHART_LEAD_MINUTES, end - CHART_MINUTES + 1)
    counts: Dict[str, Dict[int, int]] = {}
    for event in events:
        minute = int(event.time // 60)
        if event.severity == ERROR and start <= minute <= end:
            by_minute = counts.setdefault(event.subject, {})
            by_minute[minute - start] = by_minute.get(minute - start, 0) + 1
    ranked = sorted(counts, key=lambda subject: (-sum(counts[subject].values()), subject))
    shown, others = ranked[:CHART_SUBJECTS], ranked[CHART_SUBJECTS:]
    merged: Dict[int, int] = {}
    for subject in others:
        for minute, n in counts[subject].items():
            merged[minute] = merged.get(minute, 0) + n
    series = [{"subject": subject, "errors": sum(counts[subject].values()),
               "counts": sorted([m, n] for m, n in counts[subject].items())} for subject in shown]
    if others:
        series.append({"subject": f"{len(others)} others", "errors": sum(merged.values()),
                       "counts": sorted([m, n] for m, n in merged.items())})
    return {"start": iso_precise(start * 60.0), "minutes": end - start + 1, "series": series,
            "others": others[:100]}


def build_timeline(reader: BundleReader, limit: int = MAX_EVENTS, per_log: int = MAX_EVENTS_PER_LOG) -> dict:
    """timeline.json's content."""
    clock = host_clock(reader)
    problems: List[str] = []
    untimed: Dict[str, int] = {}
    capped: Dict[str, int] = {}
    events = log_events(reader, clock, untimed, capped, per_log)
    events += kernel_events(reader, problems) + unit_events(reader, problems)
    events.sort()
    incident = incident_of(events)
    kept = bounded(events, incident[0] if incident else len(events), limit)
    shown = materialized(reader, kept + ([events[incident[0]]] if incident else []))
    return {
        "clock": clock.describe(),
        "events": [event.as_dict() for event in shown[:len(kept)]],
        "first_error": shown[-1].as_dict() if incident else None,
        "incident": {"started_at": iso_precise(events[incident[0]].time),
                     "last_error_at": iso_precise(events[incident[1]].time), "errors": incident[2],
                     "quiet_gap_seconds": QUIET_GAP_SECONDS} if incident else None,
        "errors_per_minute": errors_per_minute(events, incident),
        "counts": _counts(events),
        "total": len(events),
        "left_out": len(events) - len(kept),
        "max_events": limit,
        "untimed_lines": dict(sorted(untimed.items())),
        "max_events_per_log": per_log,
        "lines_left_out_per_log": dict(sorted(capped.items())),
        "errors": problems[:20],
    }
