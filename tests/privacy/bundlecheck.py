"""Checks on a bundle folder that need no corpus: every JSON and YAML file parses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, List, Tuple

import yaml

MAX_PARSED_BYTES = 4 * 1024 * 1024  # larger files are skipped: the check stays cheap
STRUCTURED_SUFFIXES = (".json", ".yaml", ".yml")


def bundle_folders(root: Path) -> Iterator[Path]:
    """Every folder under `root` that holds a manifest.json (a bundle, or an extracted one)."""
    for manifest in sorted(Path(root).rglob("manifest.json")):
        if manifest.is_file():
            yield manifest.parent


def unparsable_files(bundle: Path) -> List[Tuple[str, str]]:
    """(path inside the bundle, parse error) of every .json/.yaml/.yml file that does not parse."""
    failures = []
    for path in sorted(Path(bundle).rglob("*")):
        if path.suffix.lower() not in STRUCTURED_SUFFIXES or not path.is_file() or path.is_symlink():
            continue
        if path.stat().st_size > MAX_PARSED_BYTES:
            continue
        try:
            text = path.read_bytes().decode("utf-8")
            if path.suffix.lower() == ".json":
                json.loads(text)
            else:
                list(yaml.safe_load_all(text))
        except (ValueError, yaml.YAMLError) as exc:
            failures.append((path.relative_to(bundle).as_posix(), str(exc).splitlines()[0][:200]))
    return failures
