"""The summary's history section: line charts of the bundle's history.json (the samples
`akdiag watch` kept), drawn server-side as inline SVG shapes (report_templates/history.html.j2).

No script, font or external resource: the page reads the same with JavaScript off, prints,
and follows the page's colours (axes and labels use its CSS variables; the series colours
are Okabe-Ito's colour-blind-safe palette, each with its own dash pattern for paper).
Each chart is bounded: at most MAX_SERIES series (the highest peaks; the others are named
as left out) and BUCKETS points per series (each point the highest value in its slice of
time; the lowest for disk free), in whole pixels, so a chart is a few KB whatever the
history holds.  A value missing from a sample, or a gap in the samples, breaks the line.
Every name comes from the host and is escaped by the template."""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Tuple

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.history_file import column, median_interval, names, times_of
from collector.live import iso_utc
from collector.plain import as_dict, number, one_line
from collector.report.timeline import PALETTE as TIMELINE_PALETTE

MAX_SERIES = 6
BUCKETS = 120
WIDTH, HEIGHT = 720, 190
PLOT = {"left": 64, "right": 708, "top": 12, "bottom": 160}
PALETTE = TIMELINE_PALETTE[:MAX_SERIES]  # the timeline chart's colour-blind-safe colours
DASHES = ("", "6 3", "2 2", "8 3 2 3", "4 4", "1 3")
NAME_CHARS = 60
Point = Tuple[float, Optional[float]]

# (id, title, section, field, unit, scale to the unit, how a slice of time is summed up)
CHARTS = (
    ("history-rss", "Resident memory per process", "processes", "rss", "MB", 1 / 1e6, max),
    ("history-cpu", "CPU per process", "processes", "cpu_seconds", "CPU s/s", 1.0, max),
    ("history-fds", "Open files per process", "processes", "open_fds", "files", 1.0, max),
    ("history-queues", "RabbitMQ queue depths", "queues", None, "messages", 1.0, max),
    ("history-latency", "Datastore latency", "datastores", "latency_seconds", "ms", 1000.0, max),
    ("history-disk", "Disk free per mount", "mounts", "free_bytes", "GB", 1 / 1e9, min),
)


def history_view(reader: BundleReader) -> Optional[dict]:
    """The section's view, or None when the bundle has no usable history.json."""
    document = as_dict(reader.json(schema.HISTORY))
    times = times_of(document)
    if not times:
        return None
    start, end = times[0], times[-1]
    frame = _Frame(start, max(end, start + 1.0), _gap(times))
    charts = [chart for chart in (_chart(document, frame, *spec) for spec in CHARTS) if chart]
    return {
        "start": _minute(start), "end": _minute(end), "span_seconds": end - start,
        "interval_seconds": number(document.get("interval_seconds")),
        "samples_total": number(document.get("samples_total")), "samples_kept": len(times),
        "samples_dropped": number(document.get("samples_dropped")),
        "charts": charts, "width": WIDTH, "height": HEIGHT, "plot": PLOT,
    }


class _Frame:
    """Time and value to pixels, and what counts as a gap."""

    def __init__(self, start: float, end: float, gap: float):
        self.start, self.end = start, end
        self.bucket = (end - start) / BUCKETS
        self.gap = max(gap, 2.0 * self.bucket)

    def x(self, when: float) -> int:
        return round(PLOT["left"] + (when - self.start) / (self.end - self.start) * (PLOT["right"] - PLOT["left"]))

    @staticmethod
    def y(value: float, top: float) -> int:
        return round(PLOT["bottom"] - value / top * (PLOT["bottom"] - PLOT["top"]))


def _gap(times: List[float]) -> float:
    """Samples further apart than three of their usual steps: watch was not running between."""
    usual = median_interval(times)
    return 3.0 * usual if usual else math.inf


def _chart(document: dict, frame: _Frame, chart_id: str, title: str, section: str, field: Optional[str],
           unit: str, scale: float, pick: Callable) -> Optional[dict]:
    lines = {}
    for name in names(document, section):
        points = column(document, section, name, field)
        points = _rates(points, frame.gap) if field == "cpu_seconds" else points
        points = [(t, v * scale if v is not None else None) for t, v in points]
        if any(v is not None for _t, v in points):
            lines[name] = _bucketed(points, frame, pick)
    if not lines:
        return None
    peaks = {name: max(v for _t, v in pts) for name, pts in lines.items()}
    ordered = _most_telling_first(lines, pick)
    shown, left_out = ordered[:MAX_SERIES], ordered[MAX_SERIES:]
    top = _nice(max(peaks[n] for n in shown))
    return {
        "id": chart_id, "title": title, "unit": unit,
        "y_labels": [{"y": frame.y(v, top), "text": _figure(v)} for v in (0.0, top / 2, top)],
        "x_labels": [{"x": frame.x(t), "text": _hhmm(t, frame.end - frame.start), "anchor": anchor}
                     for t, anchor in ((frame.start, "start"), ((frame.start + frame.end) / 2, "middle"),
                                       (frame.end, "end"))],
        "series": [{"name": _short(name), "colour": PALETTE[i], "dash": DASHES[i],
                    "d": _path(lines[name], frame, top), "peak": _figure(peaks[name]),
                    "last": _figure(lines[name][-1][1])} for i, name in enumerate(shown)],
        "left_out": [_short(n) for n in left_out],
        "left_out_why": "more free" if pick is min else "lower peaks",
    }


def _most_telling_first(lines: Dict[str, List[Tuple[float, float]]], pick: Callable) -> List[str]:
    """The series by how far they went the way the chart watches: the highest first where
    the worst is the most (memory, queues), the lowest first where it is the least (disk
    free: the fullest mounts are the ones shown)."""
    extremes = {name: pick(v for _t, v in pts) for name, pts in lines.items()}
    sign = 1 if pick is min else -1
    return sorted(lines, key=lambda n: (sign * extremes[n], n))


def _rates(points: List[Point], gap: float) -> List[Point]:
    """CPU seconds per second between consecutive samples (None across a gap or a restart)."""
    rates: List[Point] = []
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        ok = v0 is not None and v1 is not None and 0 < t1 - t0 <= gap and v1 >= v0
        rates.append((t1, (v1 - v0) / (t1 - t0) if ok else None))
    return rates


def _bucketed(points: List[Point], frame: _Frame, pick: Callable) -> List[Tuple[float, float]]:
    """One point per slice of time that has values: (the slice's last time, picked value)."""
    slices: Dict[int, List[Point]] = {}
    for when, value in points:
        if value is not None:
            index = min(BUCKETS - 1, int((when - frame.start) / frame.bucket)) if frame.bucket else 0
            slices.setdefault(index, []).append((when, value))
    return [(pts[-1][0], pick(v for _t, v in pts)) for _i, pts in sorted(slices.items())]


def _path(points: List[Tuple[float, float]], frame: _Frame, top: float) -> str:
    """SVG path data in whole pixels; a new stroke after a gap, a dot for a lone point."""
    parts: List[str] = []
    previous: Optional[float] = None
    for when, value in points:
        x, y = frame.x(when), frame.y(value, top)
        parts.append(f"{'L' if previous is not None and when - previous <= frame.gap else 'M'}{x} {y}")
        previous = when
    if len(parts) == 1:
        parts.append("h1")
    return "".join(parts)


def _nice(peak: float) -> float:
    """The axis's top: 1, 2 or 5 times a power of ten, at or above the peak."""
    if peak <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(peak))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= peak)


def _figure(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _minute(when: float) -> str:
    return iso_utc(when)[:16].replace("T", " ")  # 2026-12-01 10:15


def _hhmm(when: float, span: float) -> str:
    text = iso_utc(when)  # 2026-12-01T10:15:00Z
    return text[5:10] + " " + text[11:16] if span > 20 * 3600 else text[11:16]


def _short(name: str) -> str:
    return one_line(name, NAME_CHARS)
