"""`akdiag pack DIR`: pack a `--format dir` bundle an administrator has reviewed.

The folder is checked against its manifest, whose `files` list holds each file's size
and sha256 as akdiag wrote it:
- a file unchanged is copied as it is (akdiag scrubbed it when it wrote it);
- a file changed by hand is scrubbed again through the bundle writer (secrets, the
  catalog's and the given patterns, personal data as the run pseudonymized it) and named
  in the manifest's `review.changed`;
- a file removed by hand is named in `review.removed` (leaving a file out is what a
  review is for);
- a file added by hand, or anything that is not a regular file or folder (a symlink could
  lead anywhere on the host), is refused: nothing is packed, the command says which.
The folder itself is never changed: the bundle is rebuilt in a private working folder,
and packed from there through the one write point (collector/bundle/writer.py)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from collector.bundle import archive, schema
from collector.bundle.handoff import Handoff, Placed, place
from collector.bundle.split import sha256_of
from collector.bundle.structured import format_of
from collector.bundle.writer import BundleWriter
from collector.live import iso_utc
from collector.pii_kinds import DEFAULT_PII_KINDS
from collector.redact import Scrubber
from collector.untrusted import load_json_bounded

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class ReviewError(Exception):
    """The folder is not a bundle, or holds what its manifest does not list."""


@dataclass
class Review:
    unchanged: List[str] = field(default_factory=list)
    changed: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    added: List[str] = field(default_factory=list)
    odd: List[str] = field(default_factory=list)  # not a regular file or folder


@dataclass
class PackResult:
    placed: Placed
    review: Review
    manifest: dict


def read_manifest(folder: Path) -> dict:
    path = folder / schema.MANIFEST
    try:
        if os.lstat(path).st_size > MAX_MANIFEST_BYTES:
            raise ReviewError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes")
        manifest = load_json_bounded(path.read_bytes())
    except FileNotFoundError:
        raise ReviewError(f"{folder} is not an akdiag bundle folder: it has no {schema.MANIFEST} "
                          "(pack takes a bundle written with --format dir)") from None
    except (OSError, ValueError) as exc:
        raise ReviewError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ReviewError(f"{path} is not an akdiag manifest (no file list)")
    if not all(isinstance(f, dict) and {"path", "size", "sha256"} <= set(f) for f in manifest["files"]):
        raise ReviewError(f"{path} lists files without their size and sha256: a bundle of an older akdiag; "
                          "collect it again to pack it")
    return manifest


def _walk(folder: Path) -> Tuple[List[str], List[str]]:
    """Regular files (relative paths) and whatever else is there (refused), no link followed."""
    files, odd = [], []
    for top, dirs, names in os.walk(folder, followlinks=False):
        for name in sorted(dirs + names):
            path = Path(top) / name
            mode = os.lstat(path).st_mode
            rel = path.relative_to(folder).as_posix()
            if stat.S_ISREG(mode):
                files.append(rel)
            elif not stat.S_ISDIR(mode):
                odd.append(rel)
    return sorted(files), odd


def review(folder: Path, manifest: dict) -> Review:
    listed: Dict[str, dict] = {f["path"]: f for f in manifest["files"]}
    files, odd = _walk(folder)
    result = Review(odd=odd)
    for rel in files:
        if rel == schema.MANIFEST:
            continue
        record = listed.get(rel)
        if record is None:
            result.added.append(rel)
            continue
        size, digest = (folder / rel).stat().st_size, sha256_of(folder / rel)
        (result.unchanged if (size, digest) == (record["size"], record["sha256"]) else result.changed).append(rel)
    result.removed = sorted(set(listed) - set(files))
    return result


def _scrubber(folder: Path, patterns: tuple, catalog_patterns: tuple) -> Scrubber:
    """As the run scrubbed: the personal data kinds its redactions.json says it pseudonymized."""
    kinds = DEFAULT_PII_KINDS
    try:
        recorded = load_json_bounded((folder / schema.REDACTIONS).read_bytes()).get("pseudonymized")
        if isinstance(recorded, list):
            kinds = tuple(str(k) for k in recorded)
    except (OSError, ValueError, AttributeError):
        pass
    return Scrubber.for_bundle(kinds, tuple(catalog_patterns) + tuple(patterns))


def _rebuild(folder: Path, staging: Path, manifest: dict, found: Review, scrubber: Scrubber) -> BundleWriter:
    writer = BundleWriter(staging, scrubber)
    listed = {f["path"]: f for f in manifest["files"]}
    for rel in found.unchanged:
        with open(folder / rel, "rb") as handle:
            record = writer.write_unscrubbed_stream(rel, handle, collector=_collector_of(listed, rel))
        if record.sha256 != listed[rel]["sha256"]:  # changed after the review: it would go unscrubbed
            writer.close()
            raise ReviewError(f"{rel} changed while it was being packed: nothing packed. Pack again once "
                              "nobody edits the folder")
    changes = []
    for rel in found.changed:
        before = listed[rel]
        raw = (folder / rel).read_bytes()
        if format_of(rel):
            record, _result = writer.write_structured(rel, raw, rel, _collector_of(listed, rel))
        else:
            record = writer.write_bytes(rel, raw, _collector_of(listed, rel))
        changes.append({"path": rel, "stored_as": record.path, "size_before": before["size"],
                        "sha256_before": before["sha256"], "size": record.size, "sha256": record.sha256,
                        "redactions": [{"rule": c["rule"], "count": c["count"]} for c in scrubber.counts.as_records()
                                       if c["file"] == record.path]})
    manifest = dict(manifest)
    manifest["review"] = {"packed_at": iso_utc(_now()), "unchanged": len(found.unchanged), "changed": changes,
                          "removed": found.removed,
                          "note": "changed files were scrubbed again by akdiag pack; removed ones were left out "
                                  "by the administrator"}
    manifest["files"] = [{"path": r.path, "size": r.size, "sha256": r.sha256, "collector": r.collector,
                          "scrubbed": r.scrubbed} for r in writer.files()]
    writer.write_json(schema.MANIFEST, manifest)
    return writer


def _now() -> float:
    import time

    return time.time()


def _collector_of(listed: Dict[str, dict], rel: str) -> str:
    return str(listed.get(rel, {}).get("collector") or "akdiag")


def pack_reviewed(folder: Path, output_dir: Path, fmt: str = "7z", password: Optional[str] = None,
                  patterns: tuple = (), catalog_patterns: tuple = (), split: Optional[int] = None) -> PackResult:
    """Check `folder` against its manifest, rebuild it (changed files scrubbed again) and
    pack it into `output_dir` under the folder's name.  ReviewError: nothing packed."""
    from collector.run import make_staging

    folder = Path(folder)
    manifest = read_manifest(folder)
    found = review(folder, manifest)
    if found.added or found.odd:
        refused = [f"{rel} (not in the manifest)" for rel in found.added]
        refused += [f"{rel} (not a regular file)" for rel in found.odd]
        raise ReviewError(f"{folder} holds what akdiag did not write: {'; '.join(refused[:10])}"
                          + (f" (+{len(refused) - 10} more)" if len(refused) > 10 else "")
                          + ". Remove it (support gets only what akdiag collected and scrubbed), then pack again")
    staging = make_staging(output_dir, folder.name)
    writer = None
    try:
        writer = _rebuild(folder, staging, manifest, found, _scrubber(folder, patterns, catalog_patterns))
        writer.close()
        handoff = Handoff(case_id=str(manifest.get("case_id") or ""), split=split)
        placed = place(staging, output_dir, folder.name, fmt, password, handoff)
    finally:
        if writer is not None:
            writer.close()
        archive.remove_tree(staging)
    return PackResult(placed, found, manifest)
