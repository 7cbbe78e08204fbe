"""The rules one snapshot cannot judge, over the bundle's history.json (the samples `akdiag
watch` kept; collector/history_file.py): the vendor's queue persistence rules.  Memory
growth and restarts are in history_processes.py; both use the window read here.

A bundle without history.json gets no finding from these rules: history is optional
evidence, and its absence says nothing about the host.  The rules judge the hour before
the collection, and only a history that reaches the collection (its newest sample within a
few intervals of it): a ring watch stopped filling yesterday says nothing about now.  A gap
in the samples (watch was not running) breaks a run: "over the threshold for 10 minutes"
is said only of minutes the samples cover.

Thresholds (catalog.yaml, thresholds:; the defaults below when a catalog leaves them out):
rabbitmq_queue_depth_warning (the vendor's per-queue limits, also used for one snapshot),
queue_depth_sustained_minutes_warning / _critical, queue_not_draining_patterns,
queue_not_draining_minutes, history_max_gap_intervals."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import List, Optional, Tuple

from collector.analyzers.common import as_dict, bundle_started_at, limit_for
from collector.analyzers.findings import CRITICAL, WARNING, Finding, ThresholdError, Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.history_file import column, median_interval, names, times_of
from collector.live import iso_utc

SOURCE = schema.HISTORY
WINDOW_SECONDS = 3600.0
Point = Tuple[float, Optional[float]]


@dataclass
class Window:
    """The hour of history before the collection: history.json's columns from `start` on."""
    document: dict
    times: List[float]
    start: int  # the index of the window's first sample
    interval: float  # how far apart the samples usually are
    max_gap: float  # two samples further apart than this: watch was not running between them

    @property
    def first(self) -> float:
        return self.times[self.start]

    @property
    def newest(self) -> float:
        return self.times[-1]

    def points(self, section: str, name: str, field: Optional[str]) -> List[Point]:
        return column(self.document, section, name, field)[self.start:]

    def names(self, section: str) -> List[str]:
        return names(self.document, section)


def load_window(reader: BundleReader, t: Thresholds) -> Optional[Window]:
    """The hour of history before the collection, or None when the bundle has none that
    reaches the collection."""
    document = as_dict(reader.json(SOURCE))
    times = times_of(document)
    if len(times) < 2:
        return None
    collected = bundle_started_at(reader) or times[-1]
    start = next((i for i, when in enumerate(times) if when >= collected - WINDOW_SECONDS), len(times))
    interval = median_interval(times[start:])  # the kept samples' own pace (a fast watch's hour is thinned)
    if not interval:
        return None
    max_gap = interval * t.number("history_max_gap_intervals")
    if collected - times[-1] > max(max_gap, 300.0):  # the history stopped before the collection
        return None
    return Window(document, times, start, interval, max_gap)


def run_to_newest(window: Window, points: List[Point], holds) -> List[Tuple[float, float]]:
    """The unbroken run of points ending at the newest sample for which `holds(value)`:
    oldest first; empty when the newest does not hold.  A gap ends the run."""
    run: List[Tuple[float, float]] = []
    later: Optional[float] = None
    for when, value in reversed(points):
        if value is None or not holds(value) or (later is not None and later - when > window.max_gap):
            break
        run.append((when, value))
        later = when
    if not run or run[0][0] != window.newest:
        return []
    return list(reversed(run))


def minutes(seconds: float) -> int:
    return int(seconds // 60)


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    window = load_window(reader, thresholds)
    if window is None:
        return []
    return _sustained(window, thresholds) + _not_draining(window, thresholds)


def _sustained(window: Window, t: Thresholds) -> List[Finding]:
    try:
        limits = t.mapping("rabbitmq_queue_depth_warning")
    except ThresholdError:
        return []  # the datastores analyzer names the broken threshold
    warn_s = t.number("queue_depth_sustained_minutes_warning") * 60.0
    crit_s = t.number("queue_depth_sustained_minutes_critical") * 60.0
    found = []
    for queue in window.names("queues"):
        matched = limit_for(queue, limits)
        if matched is None:
            continue
        run = run_to_newest(window, window.points("queues", queue, None), lambda v: v >= matched[1])
        held = run[-1][0] - run[0][0] if run else 0.0
        if held < warn_s:
            continue
        peak = max(v for _t, v in run)
        severity = CRITICAL if held >= crit_s else WARNING
        found.append(Finding(
            "rabbitmq.queue_depth_sustained", severity, queue,
            f"RabbitMQ queue {queue} has held {int(run[-1][1]):,} messages or more over the vendor threshold "
            f"{matched[1]:,.0f} for {minutes(held)} minutes (peak {int(peak):,})",
            SOURCE, {"queue": queue, "threshold": matched[1], "rule": matched[0], "minutes": minutes(held),
                     "peak": peak, "messages": run[-1][1], "since": iso_utc(run[0][0]),
                     "samples": len(run), "interval_seconds": window.interval},
            "The vendor alerts on this: the queue's consumer is not keeping up or has stopped. Check that it "
            "runs, is connected to RabbitMQ, and read its log from the time the depth started to climb."))
    return found


def _not_draining(window: Window, t: Thresholds) -> List[Finding]:
    patterns = t.words("queue_not_draining_patterns")
    span = t.number("queue_not_draining_minutes") * 60.0
    found = []
    for queue in window.names("queues"):
        if not any(fnmatch.fnmatchcase(queue, p) for p in patterns):
            continue
        run = run_to_newest(window, window.points("queues", queue, None), lambda v: v > 0)
        if not run or run[-1][0] - run[0][0] < span:
            continue
        start = next(i for i, (when, _v) in reversed(list(enumerate(run))) if run[-1][0] - when >= span)
        judged = run[start:]
        first = judged[0][1]
        if min(v for _t, v in judged) < first:
            continue
        found.append(Finding(
            "rabbitmq.queue_not_draining", WARNING, queue,
            f"RabbitMQ queue {queue} has not drained for {minutes(judged[-1][0] - judged[0][0])} minutes: "
            f"{int(first):,} messages at {iso_utc(judged[0][0])}, never fewer since, {int(judged[-1][1]):,} now",
            SOURCE, {"queue": queue, "minutes": minutes(judged[-1][0] - judged[0][0]), "first": first,
                     "messages": judged[-1][1], "peak": max(v for _t, v in judged), "since": iso_utc(judged[0][0]),
                     "samples": len(judged), "interval_seconds": window.interval},
            "The vendor's rule for akmta_* queues: the sending daemon (akmtad) takes nothing from it. Check that "
            "akmtad runs and is connected, and read its log for delivery errors."))
    return found
