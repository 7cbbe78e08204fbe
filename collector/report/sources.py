"""Reading the bundle for the page: its JSON files, each missing or unreadable one
remembered with a sentence saying why, and bounded reads of the text files it shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.plain import dicts

MAX_TABLE_ROWS = 5000  # rows of one table in the page: log index rows, host process table rows, ...

# which collector writes which file, for "missing because ..." notes
_PRODUCERS = {
    schema.SYSTEM: "system",
    schema.PROCESSES: "processes",
    schema.PIDFILES: "pidfiles",
    schema.PORTS: "ports",
    schema.LOGS_INDEX: "logs",
    schema.AKD: "akd",
    schema.CONFIG_INDEX: "config",
    schema.DATASTORES: "datastores",
}


class Sources:
    """Loads the bundle's JSON files and remembers, for each one that is missing or
    unreadable, a sentence saying so and what its collector reported."""

    def __init__(self, reader: BundleReader, manifest: dict):
        self.reader = reader
        self.has_manifest = bool(manifest)
        self.outcomes = {c.get("name"): c for c in dicts(manifest.get("collectors")) if isinstance(c.get("name"), str)}
        self.missing: List[Dict[str, str]] = []

    def load(self, relpath: str, kind: type = dict) -> Tuple[Any, Optional[str]]:
        data = self.reader.json(relpath)
        if isinstance(data, kind):
            return data, None
        present = self.reader.exists(relpath)
        note = self._note(relpath, present, data is not None)
        self.missing.append({"path": relpath, "note": note})
        return None, note

    def _note(self, relpath: str, present: bool, parsed: bool) -> str:
        if not present:
            what = f"{relpath} is missing from this bundle"
        elif parsed:
            what = f"{relpath} does not hold the expected data"
        else:
            what = f"{relpath} is not valid JSON"
        name = _PRODUCERS.get(relpath)
        outcome = self.outcomes.get(name) if name else None
        if outcome:
            status = str(outcome.get("status") or "unknown")
            error = outcome.get("error")
            if status == "skipped":
                return f"{relpath} was not collected: the {name} collector was skipped ({error or 'not selected'})."
            said = {"failed": "failed", "timeout": "timed out"}.get(status, f"ended with status {status}")
            return f"{what}: the {name} collector {said}" + (f": {error}." if error else ".")
        if name and self.has_manifest:
            return f"{what}; the manifest records no run of the {name} collector."
        return f"{what}."


def read_head(path: Path, cap: int) -> Tuple[str, bool, int]:
    """(text of the first `cap` bytes, capped?, file size)."""
    with open(path, "rb") as handle:
        data = handle.read(cap + 1)
        size = max(len(data), path.stat().st_size)
    return data[:cap].decode("utf-8", "replace"), len(data) > cap, size


def read_tail(path: Path, max_lines: int, max_bytes: int) -> Tuple[str, int, bool]:
    """(the last lines of a file within both limits, lines shown, capped?)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        start = max(0, size - max_bytes)
        handle.seek(start)
        data = handle.read(max_bytes)
    capped = start > 0
    if capped and b"\n" in data:
        data = data.split(b"\n", 1)[1]  # drop the partial first line
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
        capped = True
    return "\n".join(lines), len(lines), capped


def count_lines(path: Path) -> int:
    """Lines in a file as the log collector counts them (a last line without a newline counts)."""
    count, last = 0, b""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block
    return count + (1 if last and not last.endswith(b"\n") else 0)
