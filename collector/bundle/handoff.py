"""Handing a bundle to support: the case id in its name, a size budget (--max-size,
collector/bundle/budget.py) and 7-Zip volumes with their checksums (--split,
collector/bundle/split.py).  `place` is where a finished bundle folder becomes the
file(s) the administrator sends: packed into a private folder first, checked against
the budget (trimmed and packed again when over), then linked under its final name(s),
never over another file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}\Z")
CASE_ID_RULE = "letters, digits, '-' and '.', starting with a letter or digit, at most 64 characters"


class BadCaseId(ValueError):
    pass


def checked_case_id(text: str) -> str:
    """The case id as given, or BadCaseId saying what is allowed."""
    if not CASE_ID.match(text or ""):
        raise BadCaseId(f"{text!r} is not a case id: use {CASE_ID_RULE}")
    return text


def case_bundle_name(hostname: str, label: str, stamp: str, case_id: str = "") -> str:
    """akdiag-<host>-[<label>-][case-<id>-]<stamp>: support finds the case's bundles by name."""
    from collector.bundle import archive

    return archive.bundle_name(hostname, label, f"case-{case_id}-{stamp}" if case_id else stamp)


@dataclass
class Handoff:
    """The hand-off options of a run; `trimmed` is filled in by the budget."""

    case_id: str = ""
    max_size: Optional[int] = None  # bytes the archive (all volumes together) may take
    split: Optional[int] = None  # bytes of each 7-Zip volume
    trimmed: List[dict] = field(default_factory=list)
    passes: int = 0  # archives written to fit the budget

    @property
    def active(self) -> bool:
        return bool(self.case_id or self.max_size or self.split)

    def manifest_fields(self) -> dict:
        """What the manifest records: the case id, and what the budget cost."""
        fields: dict = {"case_id": self.case_id or None}
        if self.max_size:
            fields["size_budget"] = {"max_size": self.max_size, "trimmed": list(self.trimmed),
                                     "trimmed_bytes": sum(t["bytes_removed"] for t in self.trimmed)}
        if self.split:
            fields["split"] = {"volume_size": self.split}
        return fields


@dataclass
class Placed:
    path: Path  # the archive, or its first volume
    size: int  # all volumes together
    volumes: List[Path]
    checksum: Optional[Path]  # the .sha256 file beside it


def place(staging: Path, output_dir: Path, name: str, fmt: str, password: Optional[str], handoff: Handoff,
          writer=None, refresh: Optional[Callable[[], None]] = None,
          progress: Optional[Callable[[str], None]] = None, early=None) -> Placed:
    """Pack `staging` and put it in `output_dir`: one archive, or its volumes with --split;
    with --max-size, log tails trimmed through `writer` until the archive fits (`refresh`
    rewrites the manifest and summary after each trim); a .sha256 file beside it whenever
    a hand-off option is in force.  Nothing lands in `output_dir` unless it all fits.
    `early`: the archive begun while the run worked (collector.bundle.prepack), or None."""
    from collector import tempfiles
    from collector.bundle import archive, budget, split

    if fmt == "dir" or not handoff.active:
        path = archive.pack(staging, output_dir, name, fmt, password, early)
        return Placed(path, archive.size_of(path), [path], None)
    private = tempfiles.make_folder("partial", str(output_dir))
    try:
        def pack_once() -> Path:
            for old in private.iterdir():
                old.unlink()
            return archive.pack(staging, private, name, fmt, password, early)  # `early` serves once at most

        if handoff.max_size:
            with writer.reopened():  # the runner's own trims and rewrites; the collectors' writers stay closed
                packed = budget.pack_within(handoff, writer, pack_once, refresh, progress)
        else:
            packed = pack_once()
        if handoff.split:
            volumes = split.place_volumes(packed, output_dir, name, fmt, handoff.split)
        else:
            volumes = [archive._place_file(packed, output_dir, name, fmt,
                                           taken=lambda target: split.checksum_path([target]).exists())]
        try:
            checksum = split.write_checksums(volumes)
        except BaseException:  # the bundle and its checksums come together, or not at all
            split.remove_all(volumes)
            raise
        return Placed(volumes[0], sum(v.stat().st_size for v in volumes), volumes, checksum)
    finally:
        archive.remove_tree(private)


def handoff_lines(result) -> List[str]:
    """What `collect` prints about the hand-off: the volumes, the checksum file, what
    --max-size trimmed (`result` is a collector.run.CollectResult)."""
    from collector.units import format_size

    lines = []
    volumes = getattr(result, "volumes", None) or []
    if len(volumes) > 1 or (volumes and volumes[0].suffix[1:].isdigit()):
        lines.append(f"Volumes:   {len(volumes)} ({volumes[0].name} ... {volumes[-1].name}); "
                     f"open with: 7z x {volumes[0].name}")
    if getattr(result, "checksum", None):
        lines.append(f"Checksums: {result.checksum} (sha256sum -c {result.checksum.name})")
    trimmed = getattr(result, "trimmed", None) or []
    if trimmed:
        lines.append(f"Trimmed:   {len(trimmed)} log tail(s) lost "
                     f"{format_size(sum(t['bytes_removed'] for t in trimmed))} of their oldest lines to fit "
                     "--max-size (listed in manifest.json)")
    return lines
