"""The report templates' compiled code, kept between runs in akdiag's state folder.

Jinja2 compiles summary.html.j2 and its macros on every run (0.2 s to 0.9 s on a busy
2-core host); loaded from this cache they take about 10 ms.  The cache holds code that
is run, so it is used only in a folder nobody else can write to (0700, every folder
above it owned by root or this user), never inside BASEDIR; a cache that cannot be made,
read or written costs the compile and nothing else, and never fails a run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import jinja2

from collector.live import path_inside
from collector.state import state_dir
from collector.trust import untrusted_reason

FOLDER = "templates"
MAX_FILES = 200  # past this (many versions or checkouts over time), the folder is emptied


class QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja2's file cache, with every failure turned into a miss."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a damaged or foreign file: compiled again, and rewritten
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:  # read-only, full or vanished: the next run compiles again
            pass


def cache_folder(avoid: Iterable[Optional[str]] = ()) -> Optional[Path]:
    """The folder for the compiled templates, made private, or None when it must not or
    cannot be used.  `avoid`: BASEDIRs (the run's, the bundle's) it must not be inside."""
    folder = state_dir() / FOLDER
    basedirs = [b for b in avoid if b] + [os.environ.get("AKDIAG_BASEDIR")]
    if any(b and path_inside(folder, Path(b)) for b in basedirs):
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if untrusted_reason(str(folder)) or (folder.stat().st_mode & 0o077):
            return None
        if len(os.listdir(folder)) > MAX_FILES:
            for name in os.listdir(folder):
                (folder / name).unlink()
    except OSError:
        return None
    return folder


def bytecode_cache(folder: Optional[Path]) -> Optional[jinja2.BytecodeCache]:
    return QuietBytecodeCache(str(folder)) if folder is not None else None
