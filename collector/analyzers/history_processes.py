"""A process's history over the hour before the collection (history.json): resident memory
rising steadily (`process.memory_growth`) and repeated restarts (`process.restarting`),
which one snapshot cannot show.  Silent without history, as analyzers/history.py says.

Memory growth is judged since the process's last start (a restart resets it), over an
unbroken run of samples (no gap wider than history_max_gap_intervals intervals) of at least
process_memory_growth_min_minutes: it grew by process_memory_growth_percent and
process_memory_growth_min_bytes, and most steps (process_memory_growth_rising_share) did not
fall.  Restarts: the process started afresh process_restarts_per_hour_warning times or more
within the hour (a restart while watch was not running still shows as a new start time; the
oldest of several PIDs ending, the others running on, is none)."""

from __future__ import annotations

from typing import List, Optional, Tuple

from collector.analyzers.common import fmt_bytes
from collector.analyzers.findings import WARNING, Finding, Thresholds
from collector.analyzers.history import SOURCE, Window, load_window, minutes, run_to_newest
from collector.bundle.reader import BundleReader
from collector.live import iso_utc

SAME_START_SECONDS = 1.0  # start times this close are one start (several PIDs, rounding)
FALL_TOLERANCE = 0.02  # a step down of less than 2 % is noise, not a fall


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    window = load_window(reader, thresholds)
    if window is None:
        return []
    found: List[Finding] = []
    for name in window.names("processes"):
        starts = _starts(window, name)
        found += _restarting(name, starts, window, thresholds)
        found += _memory_growth(name, starts, window, thresholds)
    return found


def _starts(window: Window, name: str) -> List[Tuple[float, float]]:
    """[(first sample seen with it, start time)] for each start the samples show, oldest
    first.  A sample's start time is its process's oldest PID's: a later one counts as a new
    start only when it is after the last sample that showed the one before.  One that was
    running at that sample already is another PID of the same run, the oldest left once a
    worker ended: no restart."""
    starts: List[Tuple[float, float]] = []
    current = last_seen = 0.0
    for when, started in window.points("processes", name, "started"):
        if started is None:
            continue
        if not starts or (abs(started - current) > SAME_START_SECONDS and started > last_seen + SAME_START_SECONDS):
            starts.append((when, started))
        current, last_seen = started, when
    return starts


def _restarting(name: str, starts: List[Tuple[float, float]], window: Window, t: Thresholds) -> List[Finding]:
    restarts = starts[1:]  # the first start seen is where the window begins, not a restart
    if len(restarts) < t.number("process_restarts_per_hour_warning"):
        return []
    times = [iso_utc(started) for _seen, started in restarts]
    span = minutes(window.newest - window.first)
    shown = ", ".join(times[-10:]) + (f" (and {len(times) - 10} earlier)" if len(times) > 10 else "")
    return [Finding(
        "process.restarting", WARNING, name,
        f"{name} restarted {len(restarts)} times in the last {span} minutes: {shown}",
        SOURCE, {"process": name, "restarts": len(restarts), "times": times, "minutes": span},
        "Something stops this process again and again: read its log around these times (the last lines "
        "before each start), the kernel's messages (OOM kills) and its unit's journal.")]


def _memory_growth(name: str, starts: List[Tuple[float, float]], window: Window, t: Thresholds) -> List[Finding]:
    since = starts[-1][0] if starts else window.first
    points = [(when, rss) for when, rss in window.points("processes", name, "rss") if when >= since]
    run = run_to_newest(window, points, lambda v: v > 0)
    if len(run) < 3:
        return []
    span = run[-1][0] - run[0][0]
    first, last = run[0][1], run[-1][1]
    grown = last - first
    if (span < t.number("process_memory_growth_min_minutes") * 60.0
            or grown < t.number("process_memory_growth_min_bytes")
            or grown < first * t.number("process_memory_growth_percent") / 100.0
            or _rising_share(run) < t.number("process_memory_growth_rising_share")):
        return []
    percent = round(100.0 * grown / first, 1)
    return [Finding(
        "process.memory_growth", WARNING, name,
        f"{name}'s resident memory grew steadily from {fmt_bytes(first)} to {fmt_bytes(last)} (+{percent:g} %) "
        f"in {minutes(span)} minutes",
        SOURCE, {"process": name, "rss_first": first, "rss_last": last, "grown_bytes": grown, "percent": percent,
                 "minutes": minutes(span), "since": iso_utc(run[0][0]), "peak": _peak(run),
                 "samples": len(run), "rising_share": round(_rising_share(run), 3)},
        "A leak or an ever-growing cache: at this pace it will run the host out of memory (then the kernel's "
        "OOM killer stops it). Note its memory now, read its log, and restart it in a quiet hour if it keeps "
        "growing; report the figures to the vendor.")]


def _rising_share(run: List[Tuple[float, float]]) -> float:
    steps = list(zip(run, run[1:]))
    steady = sum(1 for (_a, before), (_b, after) in steps if after >= before * (1 - FALL_TOLERANCE))
    return steady / len(steps) if steps else 0.0


def _peak(run: List[Tuple[float, float]]) -> Optional[float]:
    return max((v for _t, v in run), default=None)
