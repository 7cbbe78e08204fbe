"""The archive begun while the run still works: once the collectors are done, their large
files (the log tails are most of a bundle's bytes) are deflated in a background thread,
each into a 7z folder of its own, while the main thread analyses and renders the summary
(zlib and file reads release the GIL: on two cores the two really overlap).  At packing
time the rest goes into one more folder and the header is written: the archive is whole.

A file is kept from the early part only if it is still as it was read (same inode, size,
times) and the bundle writer's last record of it has the digest of the bytes deflated;
from the first one that is not (a tail cut by --max-size, a file rewritten or removed),
the early part is cut back and the rest packed again.  The partial archive lives in the
output folder under a temporary name of this run (collector.tempfiles: a killed run's is
swept by the next one); `discard` stops the thread and removes it, on any exit."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable, Dict, Optional

from collector import tempfiles
from collector.bundle import sevenzip

MIN_BYTES = 64 * 1024  # smaller files go into the last folder, solid with the others
JOIN_SECONDS = 60.0  # the early part of a bundle that packs in well under a second


class Prepack:
    """A 7z archive of the bundle folder `staging`, names under `top/`, begun early."""

    def __init__(self, staging: Path, output_dir: Path, top: str, level: int,
                 digests: Callable[[], Dict[str, str]]):
        """`digests()`: bundle path -> sha256 of each file as the bundle writer last wrote it."""
        self.staging = Path(staging)
        self.output_dir = Path(output_dir)
        self.top = top
        self.level = level
        self.path: Optional[Path] = None  # the partial archive, once started
        self._digests = digests
        self._handle = None
        self._writer: Optional[sevenzip.Writer] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._taken = False

    def start(self) -> None:
        """Deflate the large files the bundle folder holds now, in a background thread.
        Without a partial file (the output folder's trouble shows when the bundle is packed)
        nothing is begun: the archive is then written whole at packing time."""
        if self._thread is not None or self._stop.is_set():
            return
        try:
            self._open()
        except OSError:
            return
        self._thread = threading.Thread(target=self._run, args=(str(self.staging),), name="akdiag-prepack",
                                        daemon=True)
        self._thread.start()

    def _open(self) -> None:
        fd, name = tempfile.mkstemp(prefix=tempfiles.prefix("partial"), dir=str(self.output_dir))
        self.path = Path(name)
        try:
            os.fchmod(fd, 0o600)
            self._handle = os.fdopen(fd, "w+b")
        except BaseException:
            os.close(fd)
            raise
        self._writer = sevenzip.Writer(self._handle, self.level)

    def _run(self, staging: str) -> None:
        try:
            _folders, files = sevenzip.walk(staging, self.top)
        except OSError:  # the folder gone (the run stopped): nothing to begin
            return
        for path, name in files:
            if self._stop.is_set():
                return
            try:
                if os.lstat(path).st_size >= MIN_BYTES:
                    self._writer.add_folder([(path, name)], stop=self._stop.is_set, digest=hashlib.sha256)
            except sevenzip.Stopped:
                return
            except OSError:  # gone, unreadable, a full disk: the last folder has it (or the error)
                continue
            except Exception:  # nothing of it is lost: finish() packs what the early part lacks
                return

    def finish(self, staging: Path, top: str) -> Optional[Path]:
        """The whole archive of `staging` at self.path (not yet synced), or None when this
        early part cannot serve (already used, another name, the thread still busy)."""
        usable = self._thread is not None and not self._taken and not self._stop.is_set()
        if not usable or top != self.top or Path(staging) != self.staging:
            return None
        self._thread.join(JOIN_SECONDS)
        if self._thread.is_alive():
            return None
        self._taken = True
        writer = self._writer
        writer.truncate(self._still_valid(str(staging)))
        done = {entry.name for folder in writer.folders for entry in folder.entries}
        folders, files = sevenzip.walk(str(staging), top)
        writer.close_with(folders, [(path, name) for path, name in files if name not in done])
        self._handle.close()
        return self.path

    def _still_valid(self, staging: str) -> int:
        """How many of the early folders, from the first, hold their file as it is now."""
        records = self._digests()
        prefix = self.top + "/"
        for index, folder in enumerate(self._writer.folders):
            entry = folder.entries[0]
            relpath = entry.name[len(prefix):]
            try:
                info = os.lstat(os.path.join(staging, relpath))
            except OSError:
                return index
            now = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            if now != entry.identity or records.get(relpath) != entry.digest:
                return index
        return len(self._writer.folders)

    def discard(self) -> None:
        """Stop the thread and remove the partial archive (linked under its final name by
        then, or never to be).  Idempotent; never fails."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._handle is not None and not (self._thread and self._thread.is_alive()):  # else the thread has it
            try:
                self._handle.close()
            except OSError:
                pass
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def for_run(staging: Path, output_dir: Path, top: str, fmt: str, password: Optional[str],
            writer) -> Optional[Prepack]:
    """A Prepack of the bundle `writer` (collector.bundle.writer.BundleWriter) writes, for
    a plain 7z bundle; None for the other formats and an encrypted one (py7zr writes those,
    the header encrypted)."""
    if fmt != "7z" or password:
        return None
    from collector.bundle.archive import DEFLATE_LEVEL

    return Prepack(staging, output_dir, top, DEFLATE_LEVEL, lambda: {r.path: r.sha256 for r in writer.files()})
