"""history.json: the recent history a bundle carries, cut from the ring (collector.history)
so that it stays small whatever the ring holds.

The last hour (RECENT_SECONDS) is kept sample by sample, as the analyzers judge it (a queue
over its threshold for 10 and 50 minutes, memory growth, restarts); the older samples are
thinned evenly to fill the rest of MAX_SAMPLES; the newest sample is always kept.  When the
kept samples are still over MAX_BYTES (a host with very many processes or mounts), every
part is thinned further.  The file says its bounds and how much was left out:

    {"schema": 1,
     "window": {"start": 1796150000.0, "end": 1796155200.0, "seconds": 5200.0},
     "interval_seconds": 30.0,            # the median time between the ring's samples
     "bounds": {"max_samples": 1000, "max_bytes": 4194304, "recent_seconds": 3600},
     "samples_total": 2880, "samples_kept": 1000, "samples_dropped": 1880,
     "samples": [<a sample, collector.history's shape>, ...]}   # oldest first
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import List, Optional

from collector.history import HistoryRing, history_folder
from collector.plain import as_dict, dicts, number

SCHEMA = 1
MAX_SAMPLES = 1000
MAX_BYTES = 4 * 1024 * 1024
RECENT_SECONDS = 3600.0
RECENT_MAX_SAMPLES = 720  # the last hour whole down to a 5 s interval; a faster watch is thinned


def read_history(basedir: Path, now: Optional[float] = None) -> Optional[dict]:
    """history.json's content for BASEDIR's ring, or None when the ring holds no sample.
    Raises collector.history.HistoryError when the ring cannot be read (unsafe, unreadable)."""
    samples = HistoryRing(history_folder(basedir), basedir=basedir).read(now=now)
    return history_document(samples) if samples else None


def history_document(samples: List[dict], max_samples: int = MAX_SAMPLES, max_bytes: int = MAX_BYTES) -> dict:
    """The file's content from the ring's samples (oldest first)."""
    samples = [s for s in dicts(samples) if number(s.get("t")) is not None]
    kept = _within_points(samples, max_samples)
    while len(kept) > 1 and _size(kept) > max_bytes:
        kept = _within_points(kept, max(1, len(kept) * 2 // 3))
    start, end = (samples[0]["t"], samples[-1]["t"]) if samples else (None, None)
    return {
        "schema": SCHEMA,
        "window": {"start": start, "end": end,
                   "seconds": round(end - start, 3) if samples else 0.0},
        "interval_seconds": median_interval(samples),
        "bounds": {"max_samples": max_samples, "max_bytes": max_bytes, "recent_seconds": RECENT_SECONDS},
        "samples_total": len(samples),
        "samples_kept": len(kept),
        "samples_dropped": len(samples) - len(kept),
        "samples": kept,
    }


def _within_points(samples: List[dict], limit: int) -> List[dict]:
    """At most `limit` samples: the last hour whole (up to RECENT_MAX_SAMPLES, or `limit`),
    the older ones thinned evenly into what is left."""
    if len(samples) <= limit:
        return list(samples)
    newest = samples[-1]["t"]
    older = [s for s in samples if s["t"] < newest - RECENT_SECONDS]
    recent = samples[len(older):]
    recent = thin(recent, min(limit, RECENT_MAX_SAMPLES))
    return thin(older, limit - len(recent)) + recent


def thin(samples: List[dict], keep: int) -> List[dict]:
    """`keep` samples spread evenly over `samples`, the newest always among them."""
    count = len(samples)
    if keep <= 0:
        return []
    if count <= keep:
        return list(samples)
    if keep == 1:
        return [samples[-1]]
    step = (count - 1) / (keep - 1)
    return [samples[round(count - 1 - i * step)] for i in reversed(range(keep))]


def _size(samples: List[dict]) -> int:
    """The bytes the samples take in the bundle's JSON (indented by one, as its writer does)."""
    return len(json.dumps(samples, indent=1, ensure_ascii=False, default=str).encode("utf-8", "surrogateescape"))


def median_interval(samples: List[dict]) -> Optional[float]:
    """The usual time between two samples (a gap while watch was stopped does not count)."""
    steps = [b["t"] - a["t"] for a, b in zip(samples, samples[1:]) if b["t"] > a["t"]]
    return round(statistics.median(steps), 3) if steps else None


def samples_of(document: object) -> List[dict]:
    """A history.json's samples with a time, oldest first, whatever else the file holds."""
    samples = [s for s in dicts(as_dict(document).get("samples")) if number(s.get("t")) is not None]
    return sorted(samples, key=lambda s: s["t"])
