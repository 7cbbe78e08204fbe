"""The bundles `akdiag watch` keeps in its --output folder: at most --keep of them and
--max-disk bytes together, the oldest removed first, and only files watch recognises as
its own (a regular file of this user named akdiag-<this host>-watch-<trigger>-<stamp>.7z
or .tar.gz); nothing else in the folder is ever touched.

Before a bundle is taken the folder's filesystem must have room: at least --min-free, and
twice the largest bundle kept.  After a full disk (ENOSPC) watch takes no bundle until the
free space is back above what it needs and above twice what was free when the disk filled."""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from collector.units import format_size

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
ARCHIVE_SUFFIXES = (".7z", ".tar.gz")


@dataclass(frozen=True)
class KeptBundle:
    path: Path
    size: int
    mtime: float


def own_name_pattern(hostname: str) -> "re.Pattern[str]":
    from collector.bundle.archive import bundle_name

    start = bundle_name(hostname, "watch", "")[:-1]  # akdiag-<safe host>-watch
    return re.compile(re.escape(start) + r"-[A-Za-z0-9._-]+-\d{8}T\d{6}Z(?:-\d+)?(?:\.7z|\.tar\.gz)")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ENOSPC (or a quota) is behind `exc`, anywhere in its chain of causes."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(folder: Path) -> Optional[int]:
    try:
        info = os.statvfs(str(folder))
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


class BundleShelf:
    def __init__(self, folder: Path, keep: int, max_disk: int, min_free: int, hostname: Optional[str] = None):
        self.folder = Path(folder)
        self.keep = max(1, int(keep))
        self.max_disk = int(max_disk)
        self.min_free = int(min_free)
        self._own = own_name_pattern(hostname or socket.gethostname())
        self._resume_free = 0  # set by a full disk

    def bundles(self) -> List[KeptBundle]:
        """watch's own bundles in the folder, oldest first."""
        kept = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return []
        for entry in entries:
            if not self._own.fullmatch(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                kept.append(KeptBundle(Path(entry.path), info.st_size, info.st_mtime))
        return sorted(kept, key=lambda b: (b.mtime, b.path.name))

    def needed_free(self) -> int:
        largest = max((b.size for b in self.bundles()), default=0)
        return max(self.min_free, 2 * largest, self._resume_free)

    def room_problem(self) -> Optional[str]:
        """Why no bundle may be taken now (too little free space), or None."""
        free, needed = free_bytes(self.folder), self.needed_free()
        if free is None:
            return f"cannot read the free space of {self.folder}"
        if free >= needed:
            self._resume_free = 0
            return None
        why = "after a full disk" if self._resume_free and needed == self._resume_free else \
            "--min-free, or twice the largest bundle kept"
        return f"only {format_size(free)} free in {self.folder}; a bundle needs {format_size(needed)} ({why})"

    def disk_filled(self) -> str:
        """Remember a full disk; the log line's end."""
        free = free_bytes(self.folder) or 0
        self._resume_free = max(2 * free, free + 16 * 1024 * 1024)
        return (f"no more bundles until {format_size(self.needed_free())} are free in {self.folder}; "
                "sampling goes on")

    def prune(self) -> List[str]:
        """Remove the oldest bundles over --keep or --max-disk; one line per removal.  The
        newest bundle is removed too when it alone is larger than --max-disk."""
        removed = []
        kept = self.bundles()
        while kept and (len(kept) > self.keep or sum(b.size for b in kept) > self.max_disk):
            oldest = kept[0]
            why = f"--keep {self.keep}" if len(kept) > self.keep else f"--max-disk {format_size(self.max_disk)}"
            try:
                os.unlink(str(oldest.path))
                removed.append(f"removed {oldest.path.name} ({format_size(oldest.size)}, {why})")
            except FileNotFoundError:
                pass
            except OSError as exc:
                removed.append(f"could not remove {oldest.path.name}: {exc.strerror or exc}")
                break
            kept = kept[1:]
        return removed
