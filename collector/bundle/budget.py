"""--max-size: the finished archive fits a byte budget.

Only log tails (files under logs/, not its index) are given up, least useful first:
rotated parts, oldest first, then the oldest lines of the largest tails, cut down to one
common size (the smaller tails are kept whole).  Akdiag's JSON records, the summary and
the configuration are never cut.  Every cut goes through the bundle writer
(BundleWriter.trim_to_tail), before the archive is written; the manifest and the summary
say what was cut, and by how much.

Compression makes the archive's size uncertain: the size is estimated from samples of
each file, the archive written and measured, and when it is still over, more is cut and
it is written again.  The passes are bounded: the last but one cuts every tail, so the
result is either within the budget or the error that the records alone do not fit.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional

from collector.bundle import schema
from collector.bundle.archive import DEFLATE_LEVEL
from collector.logwalk import is_rotated_or_compressed
from collector.untrusted import load_json_bounded

MAX_PASSES = 5
SAMPLE_BYTES = 64 * 1024
ARCHIVE_OVERHEAD = 4096  # headers, names, the encryption's padding
REASON_ROTATED = "rotated part: oldest lines cut"
REASON_LARGEST = "largest tails: oldest lines cut"


class BudgetTooSmall(Exception):
    """The budget cannot hold the bundle's records (everything but the log tails)."""


def compressed_estimate(path: Path, size: int) -> int:
    """About how many bytes `path` takes deflated (at the archive's level): the whole file when small, else three
    samples (start, middle, end) scaled up."""
    if size <= 0:
        return 0
    with open(path, "rb") as handle:
        if size <= 3 * SAMPLE_BYTES:
            return len(zlib.compress(handle.read(), DEFLATE_LEVEL))
        packed = 0
        for offset in (0, size // 2, size - SAMPLE_BYTES):
            handle.seek(offset)
            packed += len(zlib.compress(handle.read(SAMPLE_BYTES), DEFLATE_LEVEL))
    return int(packed * size / (3 * SAMPLE_BYTES))


def _is_tail(path: str) -> bool:
    return path.startswith(schema.LOGS_DIR + "/") and path != schema.LOGS_INDEX


def _tail_facts(root: Path) -> Dict[str, dict]:
    """bundle path -> {"rotated", "mtime"} of every tail logs/index.json names."""
    try:
        index = load_json_bounded((root / schema.LOGS_INDEX).read_bytes())
    except (OSError, ValueError):  # no index: every tail counts as live, of unknown age
        index = None
    facts: Dict[str, dict] = {}
    if not isinstance(index, dict):
        return facts
    entries = list(index.get("files") or [])
    for record in index.get("roots") or []:
        entries += (record or {}).get("files") or []
    for entry in entries:
        tail = (entry or {}).get("tail") or {}
        if isinstance(tail.get("bundle_path"), str):
            rotated = bool(tail.get("compressed")) or is_rotated_or_compressed(str(entry.get("path") or ""))
            facts[tail["bundle_path"]] = {"rotated": rotated, "mtime": str(entry.get("mtime") or "")}
    return facts


def tails(writer) -> List[dict]:
    """The log tails in the bundle: path, size, rotated, mtime."""
    facts = _tail_facts(writer.root)
    found = []
    for record in writer.files():
        if _is_tail(record.path) and record.size > 0:
            fact = facts.get(record.path, {"rotated": is_rotated_or_compressed(record.path), "mtime": ""})
            found.append({"path": record.path, "size": record.size, **fact})
    return found


def plan_cuts(items: List[dict], need: int) -> Dict[str, int]:
    """bundle path -> bytes to keep, so that at least `need` bytes go (or every byte):
    rotated parts first, oldest first; then the largest tails down to one common size."""
    keep = {item["path"]: item["size"] for item in items}
    left = need
    for item in sorted((i for i in items if i["rotated"]), key=lambda i: (i["mtime"], i["path"])):
        if left <= 0:
            break
        cut = min(item["size"], left)
        keep[item["path"]] -= cut
        left -= cut
    if left > 0:
        level = _common_level(list(keep.values()), left)
        keep = {path: min(size, level) for path, size in keep.items()}
    sizes = {item["path"]: item["size"] for item in items}
    return {path: kept for path, kept in keep.items() if kept < sizes[path]}


def _common_level(sizes: List[int], need: int) -> int:
    """The largest size L such that cutting every size above L down to L frees `need`
    bytes (0 when even that is not enough)."""
    low, high = 0, max(sizes, default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if sum(max(0, s - middle) for s in sizes) >= need:
            low = middle
        else:
            high = middle - 1
    return low


def _apply(handoff, writer, cuts: Dict[str, int], items: List[dict]) -> None:
    rotated = {i["path"] for i in items if i["rotated"]}
    done = {t["path"]: t for t in handoff.trimmed}
    stored = {record.path: record for record in writer.files()}
    for path, kept in sorted(cuts.items()):
        before = stored.get(path)
        record = writer.trim_to_tail(path, kept)
        if record is None or before is None:
            continue
        entry = done.setdefault(path, {"path": path, "reason": REASON_ROTATED if path in rotated else REASON_LARGEST,
                                       "bytes_before": before.size})
        entry["bytes_after"] = record.size
        entry["bytes_removed"] = entry["bytes_before"] - record.size
    handoff.trimmed[:] = sorted(done.values(), key=lambda t: t["path"])


def _ratio(items: List[dict], root: Path) -> float:
    """Packed bytes per raw byte of the tails (never below 1%: a cut always counts)."""
    packed = sum(compressed_estimate(root / i["path"], i["size"]) for i in items)
    return _packed_ratio(packed, sum(i["size"] for i in items))


def _packed_ratio(packed: int, raw: int) -> float:
    return max(0.01, packed / raw) if raw else 1.0


def estimate(writer) -> int:
    """About how many bytes the archive of the bundle as it stands takes."""
    return ARCHIVE_OVERHEAD + sum(compressed_estimate(writer.root / r.path, r.size) for r in writer.files())


def pack_within(handoff, writer, pack_once: Callable[[], Path], refresh: Optional[Callable[[], None]],
                progress: Optional[Callable[[str], None]] = None) -> Path:
    """The archive (written by `pack_once`) within handoff.max_size, log tails trimmed as
    needed; BudgetTooSmall when the records alone do not fit."""
    from collector.units import format_size

    budget = handoff.max_size
    items = tails(writer)
    total = estimate(writer)  # each file sampled and compressed once here
    tails_packed = sum(compressed_estimate(writer.root / i["path"], i["size"]) for i in items)
    records = total - tails_packed
    if records > budget * 2:  # clearly hopeless: no archive written to find out
        raise BudgetTooSmall(f"--max-size {format_size(budget)} is too small: the bundle's records alone take "
                             f"about {format_size(records)} packed (log tails are the only part that can be cut)")
    over = total - budget
    if over > 0 and items:
        raw = sum(i["size"] for i in items)
        _trim(handoff, writer, items, int(over * 1.1 / _packed_ratio(tails_packed, raw)), refresh)
    for attempt in range(MAX_PASSES):
        packed = pack_once()
        handoff.passes += 1
        size = packed.stat().st_size
        if size <= budget:
            return packed
        items = tails(writer)
        if not items:
            raise BudgetTooSmall(f"--max-size {format_size(budget)} is too small: the bundle's records alone take "
                                 f"{format_size(size)} packed (every log tail was cut already)")
        if progress:
            progress(f"archive of {format_size(size)} is over --max-size {format_size(budget)}: trimming log tails")
        everything = attempt >= MAX_PASSES - 2
        need = sum(i["size"] for i in items) if everything else \
            int((size - budget) * (1.1 + 0.2 * attempt) / _ratio(items, writer.root)) + SAMPLE_BYTES // 16
        _trim(handoff, writer, items, need, refresh)
    raise BudgetTooSmall(f"--max-size {format_size(budget)} is too small: the bundle's records alone take "
                         f"{format_size(size)} packed")


def _trim(handoff, writer, items: List[dict], need: int, refresh: Optional[Callable[[], None]]) -> None:
    _apply(handoff, writer, plan_cuts(items, need), items)
    if refresh:
        refresh()
