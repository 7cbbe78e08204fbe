"""The summary's timeline section, from timeline.json (collector/analyzers/timeline.py):
a chart of errors per minute per process as inline SVG (drawn here as plain shapes, no
script: it prints as it shows), the first error of the incident marked, and the first
distinct events of the incident, kernel kills and unit failures standing out.

Bounded: at most CHART_BARS bars (minutes grouped by BUCKETS when the incident is longer)
and CHART_SERIES series (the processes with the most errors; the rest as one grey "other"
series); at most FIRST_EVENTS events listed, plus up to STAND_OUT_LATER kernel or unit
errors that come after them.  The section says what it left out."""

from __future__ import annotations

import math
from typing import Dict, List, Optional

from collector.analyzers.common import as_dict, dicts, number, parse_time
from collector.live import iso_utc

CHART_BARS = 120
CHART_SERIES = 8
BUCKETS = (1, 2, 5, 10, 15, 30, 60)  # minutes per bar
FIRST_EVENTS = 20
STAND_OUT_LATER = 10
WIDTH, HEIGHT = 900, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 22, 34
# Okabe-Ito's colour-blind-safe palette, then two more; grey is "other"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
OTHER = "#9a9a9a"
STAND_OUT_KINDS = {"oom_kill", "segfault", "trap", "failed", "killed"}


def timeline_view(data: object) -> dict:
    if not isinstance(data, dict):
        return {"available": False, "note": "timeline.json is missing from this bundle (an older akdiag wrote it, "
                "or it could not be built): run `akdiag report` on the bundle to build it."}
    first = as_dict(data.get("first_error")) or None
    events = dicts(data.get("events"))
    return {
        "available": True, "note": None,
        "first_error": _event(first) if first else None,
        "incident": as_dict(data.get("incident")) or None,
        "clock": as_dict(data.get("clock")),
        "chart": chart(as_dict(data.get("errors_per_minute")) or None, first),
        "events": _first_events(events, first),
        "counts": as_dict(data.get("counts")),
        "total": number(data.get("total")) or 0,
        "left_out": number(data.get("left_out")) or 0,
        "untimed": sum(n for n in as_dict(data.get("untimed_lines")).values() if number(n) is not None),
        "errors": [str(e) for e in data.get("errors") or []][:5],
    }


def _event(event: dict) -> dict:
    kind = event.get("kind")
    return {"time": event.get("time"), "source": event.get("source"), "subject": event.get("subject"),
            "severity": event.get("severity"), "message": event.get("message"), "file": event.get("file"),
            "line": event.get("line"), "kind": kind,
            "stand_out": event.get("source") in ("kernel", "unit") and kind in STAND_OUT_KINDS}


def _first_events(events: List[dict], first: Optional[dict]) -> dict:
    """The first distinct events from the incident's start (a message repeated by the same
    subject is one row, with how many times it came); the kernel and unit errors after them."""
    since = parse_time(first.get("time")) if first else None
    during = [e for e in events if since is None or (parse_time(e.get("time")) or 0) >= since]
    rows: Dict[tuple, dict] = {}
    later: List[dict] = []
    for event in during:
        key = (event.get("source"), event.get("subject"), event.get("message"))
        if key in rows:
            rows[key]["repeats"] += 1
        elif len(rows) < FIRST_EVENTS:
            rows[key] = dict(_event(event), repeats=1)
        elif _event(event)["stand_out"]:
            later.append(_event(event))
    shown = list(rows.values())
    return {"shown": shown, "later": later[:STAND_OUT_LATER],
            "more": max(0, len(during) - sum(row["repeats"] for row in shown)),
            "later_left_out": max(0, len(later) - STAND_OUT_LATER)}


def _bucket(minutes: int) -> int:
    for size in BUCKETS:
        if math.ceil(minutes / size) <= CHART_BARS:
            return size
    return BUCKETS[-1]


def chart(per_minute: Optional[dict], first: Optional[dict]) -> Optional[dict]:
    """Stacked bars of errors per bucket of minutes, one colour per process, as shapes."""
    start = parse_time((per_minute or {}).get("start"))
    minutes = int(number((per_minute or {}).get("minutes")) or 0)
    series = dicts((per_minute or {}).get("series"))
    if start is None or minutes <= 0 or not series:
        return None
    size = _bucket(minutes)
    bars = min(CHART_BARS, math.ceil(minutes / size))
    shown, rest = series[:CHART_SERIES], series[CHART_SERIES:]
    layers = [(s, PALETTE[i % len(PALETTE)]) for i, s in enumerate(shown)]
    if rest:  # the analyzer's own "others" and the processes beyond CHART_SERIES: one grey series
        layers.append(({"subject": f"other ({len(rest)} processes)", "errors": 0,
                        "counts": [c for s in rest for c in s.get("counts") or []]}, OTHER))
    totals = [[0] * bars for _ in layers]
    for row, (s, _colour) in zip(totals, layers):
        for pair in s.get("counts") or []:
            if isinstance(pair, list) and len(pair) == 2 and number(pair[0]) is not None and number(pair[1]):
                index = int(pair[0]) // size
                if 0 <= index < bars:
                    row[index] += int(pair[1])
    peak = max(sum(row[i] for row in totals) for i in range(bars)) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / bars
    rects = []
    for i in range(bars):
        base = 0
        for row, (s, colour) in zip(totals, layers):
            if row[i]:
                height = plot_h * row[i] / peak
                y = TOP + plot_h - plot_h * base / peak - height
                rects.append({"x": round(LEFT + i * step + 0.5, 1), "y": round(y, 1), "w": round(max(step - 1, 1), 1),
                              "h": round(height, 1), "fill": colour,
                              "title": f"{s.get('subject')}: {row[i]} error{'s' if row[i] > 1 else ''} at "
                                       f"{_hhmm(start + i * size * 60)} UTC"})
                base += row[i]
    return {
        "width": WIDTH, "height": HEIGHT, "rects": rects, "peak": peak, "bucket": size,
        "plot": {"left": LEFT, "right": WIDTH - RIGHT, "top": TOP, "bottom": TOP + plot_h},
        "x_labels": _x_labels(start, size, bars, step),
        "legend": [{"name": s.get("subject"), "fill": colour, "errors": sum(row)} for row, (s, colour) in
                   zip(totals, layers)],
        "marker": _marker(first, start, size, bars, step),
        "start": iso_utc(start), "end": iso_utc(start + bars * size * 60),
        "minutes_left_out": max(0, minutes - bars * size),
    }


def _hhmm(moment: float) -> str:
    return iso_utc(moment)[11:16]


def _x_labels(start: float, size: int, bars: int, step: float) -> List[dict]:
    every = max(1, math.ceil(bars / 8))
    return [{"x": round(LEFT + i * step, 1), "text": _hhmm(start + i * size * 60)} for i in range(0, bars, every)]


def _marker(first: Optional[dict], start: float, size: int, bars: int, step: float) -> Optional[dict]:
    moment = parse_time(first.get("time")) if first else None
    if moment is None:
        return None
    position = (moment - start) / (size * 60.0)
    if not 0 <= position <= bars:
        return None
    x = round(LEFT + position * step, 1)
    return {"x": x, "label": f"first error {iso_utc(moment)[11:19]} UTC", "anchor": "start" if x < WIDTH / 2 else "end",
            "text_x": x + 4 if x < WIDTH / 2 else x - 4}
