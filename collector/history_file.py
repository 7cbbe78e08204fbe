"""history.json: the recent history a bundle carries, cut from the ring (collector.history)
so that it stays small whatever the ring holds.

The last hour (RECENT_SECONDS) is kept sample by sample, as the analyzers judge it (a queue
over its threshold for 10 and 50 minutes, memory growth, restarts); the older samples are
thinned evenly to fill the rest of MAX_SAMPLES; the newest sample is always kept.  When the
kept samples are still over MAX_BYTES (a host with very many processes or mounts), every
part is thinned further.  The samples are stored by column (one list of values per figure,
aligned with `t`): a day of a large host is then a few MB that scrub and parse quickly,
where the samples' own shape would repeat every key in every sample.

    {"schema": 1,
     "window": {"start": 1796150000.0, "end": 1796155200.0, "seconds": 5200.0},
     "interval_seconds": 30.0,            # the median time between the ring's samples
     "bounds": {"max_samples": 600, "max_bytes": 2097152, "recent_seconds": 3600},
     "samples_total": 2880, "samples_kept": 600, "samples_dropped": 2280,
     "t": [1796150000.0, ...],            # the kept samples' times, oldest first
     "status": ["OK", ...],
     "findings": [{"id": "process.down", "severity": "critical", "subject": "api",
                   "first": 1796151000.0, "last": 1796155200.0, "samples": 140}],
     "processes": {"api": {"rss": [52428800, ...], "cpu_seconds": [...], "open_fds": [...], "up": [...],
                           "pids": [...], "max_fds": [...], "threads": [...], "started": [...],
                           "connections": [...]}},
     "datastores": {"mongodb": {"up": [...], "latency_seconds": [...]}},
     "queues": {"oxy_triggers": [120, ...]},
     "mounts": {"/": {"free_bytes": [...], "free_inodes": [...]}}}

Every list is as long as `t`; null where a sample lacked the figure (not read, or the
process/queue/mount not there then)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from collector.bundle.writer import json_bytes
from collector.history import HistoryRing, history_folder
from collector.plain import as_dict, dicts, number

SCHEMA = 1
MAX_SAMPLES = 600  # a point every 3 minutes over a day, besides the last hour: plenty for 120-point charts
MAX_BYTES = 2 * 1024 * 1024  # as written (indented JSON); ~100 KB once the bundle is compressed
RECENT_SECONDS = 3600.0
RECENT_MAX_SAMPLES = 360  # the last hour whole down to a 10 s interval; a faster watch is thinned evenly
NESTED = ("processes", "datastores", "mounts")  # {name: {field: value}} in a sample
FLAT = ("queues",)  # {name: value}


def read_history(basedir: Path, now: Optional[float] = None) -> Optional[dict]:
    """history.json's content for BASEDIR's ring, or None when the ring holds no sample.
    Raises collector.history.HistoryError when the ring cannot be read (unsafe, unreadable)."""
    samples = HistoryRing(history_folder(basedir), basedir=basedir).read(now=now)
    return history_document(samples) if samples else None


def history_document(samples: List[dict], max_samples: int = MAX_SAMPLES, max_bytes: int = MAX_BYTES) -> dict:
    """The file's content from the ring's samples (oldest first)."""
    samples = sorted((s for s in dicts(samples) if number(s.get("t")) is not None), key=lambda s: s["t"])
    kept = _within_points(samples, max_samples)
    columns = _columns(kept)
    while len(kept) > 1 and written_size(columns) > max_bytes:
        kept = _within_points(kept, max(1, len(kept) * 2 // 3))
        columns = _columns(kept)
    start, end = (samples[0]["t"], samples[-1]["t"]) if samples else (None, None)
    return dict({
        "schema": SCHEMA,
        "window": {"start": start, "end": end, "seconds": round(end - start, 3) if samples else 0.0},
        "interval_seconds": median_interval([s["t"] for s in samples]),
        "bounds": {"max_samples": max_samples, "max_bytes": max_bytes, "recent_seconds": RECENT_SECONDS},
        "samples_total": len(samples),
        "samples_kept": len(kept),
        "samples_dropped": len(samples) - len(kept),
    }, **columns)


def _columns(samples: List[dict]) -> dict:
    count = len(samples)
    out: Dict[str, Any] = {"t": [s["t"] for s in samples], "status": [s.get("status") for s in samples],
                           "findings": _finding_spans(samples)}
    for section in NESTED + FLAT:
        table: Dict[str, Any] = {}
        for i, sample in enumerate(samples):
            for name, figures in as_dict(sample.get(section)).items():
                if section in FLAT:
                    _cell(table, name, count)[i] = figures
                    continue
                row = table.get(name)
                row = row if row is not None else table.setdefault(name, {})
                for field, value in as_dict(figures).items():
                    _cell(row, field, count)[i] = value
        out[section] = table
    return out


def _finding_spans(samples: List[dict]) -> List[dict]:
    """Each critical or warning finding once: when the kept samples first and last held it,
    and in how many (a hundred warnings repeated in every sample would be most of the file)."""
    spans: Dict[tuple, dict] = {}
    for sample in samples:
        for finding in dicts(sample.get("findings")):
            key = (finding.get("id"), finding.get("severity"), finding.get("subject"))
            span = spans.get(key)
            if span is None:
                spans[key] = {"id": key[0], "severity": key[1], "subject": key[2], "first": sample["t"],
                              "last": sample["t"], "samples": 1}
            else:
                span["last"] = sample["t"]
                span["samples"] += 1
    return list(spans.values())


def _cell(table: dict, key: str, count: int) -> list:
    values = table.get(key)
    if values is None:
        values = table[key] = [None] * count
    return values


def _within_points(samples: List[dict], limit: int) -> List[dict]:
    """At most `limit` samples: the last hour whole (up to RECENT_MAX_SAMPLES, or `limit`),
    the older ones thinned evenly into what is left."""
    if len(samples) <= limit:
        return list(samples)
    newest = samples[-1]["t"]
    older = [s for s in samples if s["t"] < newest - RECENT_SECONDS]
    recent = thin(samples[len(older):], min(limit, RECENT_MAX_SAMPLES))
    return thin(older, limit - len(recent)) + recent


def thin(items: list, keep: int) -> list:
    """`keep` items spread evenly over `items`, the last always among them."""
    count = len(items)
    if keep <= 0:
        return []
    if count <= keep:
        return list(items)
    if keep == 1:
        return [items[-1]]
    step = (count - 1) / (keep - 1)
    return [items[round(count - 1 - i * step)] for i in reversed(range(keep))]


def written_size(data: Any) -> int:
    """The bytes `data` takes as the bundle writes JSON."""
    return len(json_bytes(data))


def median_interval(times: List[float]) -> Optional[float]:
    """The usual time between two samples (a gap while watch was stopped does not count)."""
    steps = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    if not steps:
        return None
    middle = len(steps) // 2  # the median, as statistics.median (whose import costs every check ~4 ms)
    return round(steps[middle] if len(steps) % 2 else (steps[middle - 1] + steps[middle]) / 2, 3)


# --------------------------------------------------------------------------- reading it back

def times_of(document: Any) -> List[float]:
    """A history.json's sample times, or [] when the file is not usable (missing, damaged,
    times out of order)."""
    times = as_dict(document).get("t")
    if not isinstance(times, list) or not times or any(number(t) is None for t in times):
        return []
    return times if all(a <= b for a, b in zip(times, times[1:])) else []


def names(document: Any, section: str) -> List[str]:
    return sorted(str(name) for name in as_dict(as_dict(document).get(section)))


def column(document: Any, section: str, name: str, field: Optional[str] = None) -> List[Tuple[float, Optional[float]]]:
    """[(t, value)] of one figure, e.g. column(doc, "processes", "api", "rss"); a value that is
    missing or not a number is None, so a gap stays a gap."""
    times = times_of(document)
    entry = as_dict(as_dict(document).get(section)).get(name)
    values = as_dict(entry).get(field) if field else entry
    values = values if isinstance(values, list) else []
    return [(t, number(values[i]) if i < len(values) else None) for i, t in enumerate(times)]
