"""Small helpers the analyzers share: reading a bundle file whatever its shape, numbers
that may be missing, and the bundle's timestamps.  Nothing here looks at the live host."""

from __future__ import annotations

import fnmatch
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Tuple

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.plain import as_dict, dicts, number  # noqa: F401  (the analyzers import them from here)


def load(reader: BundleReader, relpath: str) -> Optional[dict]:
    """The JSON object in a bundle file, or None when it is missing or not an object."""
    data = reader.json(relpath)
    return data if isinstance(data, dict) else None


def parse_time(value: Any) -> Optional[float]:
    """A Unix time from an ISO 8601 UTC string as the collectors write it
    ("2024-05-02T08:00:00Z"), or from a number; None otherwise."""
    if number(value) is not None:
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def bundle_started_at(reader: BundleReader) -> Optional[float]:
    """When the collection started (the manifest's started_at), as a Unix time."""
    manifest = reader.manifest
    return parse_time(manifest.get("started_at")) if isinstance(manifest, dict) else None


def processes_by_name(reader: BundleReader) -> dict:
    """processes.json's expected records by process name."""
    data = load(reader, schema.PROCESSES) or {}
    return {str(p.get("name")): p for p in dicts(data.get("expected")) if p.get("name")}


def fmt_bytes(value: Any) -> str:
    n = number(value)
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} TiB"  # pragma: no cover


def limit_for(name: str, limits: Dict[str, float]) -> Optional[Tuple[str, float]]:
    """(the key, its limit) of a per-name threshold (`rabbitmq_queue_depth_warning`): the
    name itself, else the first shell pattern it matches; None when none applies."""
    if name in limits:
        return name, limits[name]
    return next(((pattern, limit) for pattern, limit in limits.items() if fnmatch.fnmatchcase(name, pattern)), None)
