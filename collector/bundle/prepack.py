"""The archive begun while the run still works: once the collectors are done, their large
files (the log tails are most of a bundle's bytes) are deflated in a background thread,
each into a 7z folder of its own, while the main thread analyses and renders the summary
(zlib and file reads release the GIL: on two cores the two really overlap).  The thread
runs at the lowest CPU priority: on a busy host it takes only what the run leaves idle.
At packing time it is stopped where it is, the rest goes into one more folder, deflated by
the main thread, and the header is written: the archive is whole.

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
JOIN_SECONDS = 10.0  # for the thread to see the stop: it looks between two 1 MiB chunks
LOWEST_PRIORITY = 19  # the thread's nice value


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
        self._taken = False  # finish() or discard() came: the early part serves no other archive

    def start(self) -> None:
        """Deflate the large files the bundle folder holds now, in a background thread.
        Without a partial file (the output folder's trouble shows when the bundle is packed)
        nothing is begun: the archive is then written whole at packing time."""
        if self._thread is not None or self._taken:
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
        _lowest_priority()
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
        early part cannot serve (never begun, used already, another name).  The thread is
        stopped where it is (the file it was deflating dropped): what it had not done yet
        is packed here, at the run's own priority, not the thread's lowest one."""
        if self._thread is None or self._taken or top != self.top or Path(staging) != self.staging:
            return None
        self._taken = True
        self._stop.set()
        self._thread.join(JOIN_SECONDS)
        if self._thread.is_alive():
            return None
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
        self._taken = True
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


def _lowest_priority() -> None:
    """The calling thread at the lowest CPU priority (Linux keeps a nice value per thread):
    it runs on a core the run leaves idle, and never slows the analysis on a busy host."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except (AttributeError, OSError):  # not Linux: the thread keeps the run's priority
        pass


def for_run(staging: Path, output_dir: Path, top: str, fmt: str, password: Optional[str],
            writer) -> Optional[Prepack]:
    """A Prepack of the bundle `writer` (collector.bundle.writer.BundleWriter) writes, for
    a plain 7z bundle; None for the other formats and an encrypted one (py7zr writes those,
    the header encrypted)."""
    if fmt != "7z" or password:
        return None
    from collector.bundle.archive import DEFLATE_LEVEL

    return Prepack(staging, output_dir, top, DEFLATE_LEVEL, lambda: {r.path: r.sha256 for r in writer.files()})
