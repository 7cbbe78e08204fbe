"""Listing BASEDIR/logs for the logs collector (collector.collectors.logs): every entry
lstat'ed through open folder descriptors, nothing but folders opened, symlinks resolved
by collector.safeopen from BASEDIR and refused when they leave it.  The index entries
it makes are described in the logs collector's docstring."""

from __future__ import annotations

import errno
import heapq
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from collector import safeopen
from collector.bundle import schema
from collector.context import Deadline
from collector.live import iso_utc
from collector.safeopen import SafeRoot, escaped_name

MAX_ENTRIES = 20000  # bounds the index on a folder holding millions of files: the newest are kept
MAX_EXAMINED = 10 * MAX_ENTRIES  # bounds the walk's time: entries lstat'ed before it stops

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip")
# x.log.1, x.1, x.log-20260101, x.log.2026-01-01, x-20260101 (before any compressed suffix)
# and mongod's own x.log.2026-11-30T10-00-00
_ROTATION_SUFFIX = re.compile(r"(?:\.\d+|[.\-_]\d{4}-?\d{2}-?\d{2}(?:[\-_]?\d{2,6})?"
                              r"|\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d)$")

REASON_ROTATED = schema.LOG_REASON_ROTATED
REASON_NOT_REGULAR = "not a regular file"
REASON_DEPTH = "depth limit"
REASON_SYMLINK_DIR = "symlinked directory: not descended"
REASON_SYMLINK_LOOP = "symlink loop"
REASON_VANISHED = "vanished before it could be read (rotated or deleted)"
REASON_BECAME_LINK = "became a symlink after it was listed: not followed"


# -- naming ----------------------------------------------------------------------


def is_rotated_or_compressed(name: str) -> bool:
    """Whether a file name looks like a compressed or rotated (numbered, dated) log."""
    if name.lower().endswith(COMPRESSED_SUFFIXES):
        return True
    # every rotation suffix ends in a digit: most names are decided without the pattern
    return name[-1:].isdigit() and bool(_ROTATION_SUFFIX.search(name))


def file_type(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "other"


def describe_os_error(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied: run akdiag as root or as the user the platform runs as"
    return exc.strerror or str(exc)


# -- listing ---------------------------------------------------------------------


def new_entry(rel: str, kind: str, st: Optional[os.stat_result] = None, state: str = "listed",
              reason: Optional[str] = None) -> dict:
    regular = st is not None and stat.S_ISREG(st.st_mode)
    return {
        "path": rel,
        "type": kind,
        "size": st.st_size if regular else None,
        "mtime": iso_utc(st.st_mtime) if st is not None else None,
        "state": state,
        "reason": reason,
        "error": None,
        "target": None,
        "tail": None,
    }


@dataclass
class Candidate:
    """A regular file (or a symlink to one inside BASEDIR) whose tail may be taken."""

    entry: dict
    parts: List[str]  # its canonical place below BASEDIR, as found while listing: no link on the way
    mtime: float
    root: SafeRoot

    @property
    def open_path(self) -> str:
        """Its place, for messages (made only for one: a listing holds thousands)."""
        return escaped_name(self.root.display(self.parts))


def newest_first(candidates: List[Candidate]) -> List[Candidate]:
    """The order tails are taken in: newest first, then by path."""
    return sorted(candidates, key=lambda c: (-c.mtime, c.entry["path"]))


@dataclass
class Listing:
    entries: List[dict] = field(default_factory=list)
    candidates: List[Candidate] = field(default_factory=list)
    rotated: List[Candidate] = field(default_factory=list)  # rotated or compressed regular files (for --since)
    errors: List[str] = field(default_factory=list)
    root: Optional[SafeRoot] = None  # BASEDIR, open: the tails are opened from it
    logs_parts: List[str] = field(default_factory=lambda: ["logs"])  # BASEDIR/logs, links resolved
    examined: int = 0  # entries met by the walk
    left_out: int = 0  # the oldest of them, left out of `entries` by the cap of MAX_ENTRIES

    def close(self) -> None:
        if self.root is not None:
            self.root.close()


class _ListingStopped(Exception):
    pass


class _Walker:
    """Lists BASEDIR/logs through open folder descriptors: each sub-folder is opened
    from its parent with O_NOFOLLOW, so a folder swapped for a symlink while it is
    listed is never entered; symlinks are resolved by collector.safeopen from BASEDIR."""

    def __init__(self, listing: Listing, max_depth: int, deadline: Deadline):
        self.root = listing.root
        self.display_root = self.root.display(listing.logs_parts)
        self.max_depth = max_depth
        self.deadline = deadline
        self.listing = listing

    def walk(self, logs_fd: int) -> Listing:
        try:
            problem = self._scan(logs_fd, [], 1)
        except _ListingStopped:
            problem = None
        if problem:
            self.listing.errors.append(f"{self.display_root}: {problem}")
        if len(self.listing.entries) > MAX_ENTRIES:
            self._keep_newest(MAX_ENTRIES)
        if self.listing.left_out:
            self.listing.errors.append(
                f"{self.listing.examined} entries under {self.display_root}: the {MAX_ENTRIES} newest (by "
                f"modification time) are listed, {self.listing.left_out} older ones left out")
        return self.listing

    def _keep_newest(self, count: int) -> None:
        """Only the `count` newest entries (and their files to read) stay, in the walk's order."""
        listing = self.listing
        kept = {id(entry) for entry in heapq.nlargest(count, listing.entries, key=_recency)}
        listing.left_out += len(listing.entries) - len(kept)
        listing.entries = [entry for entry in listing.entries if id(entry) in kept]
        listing.candidates = [cand for cand in listing.candidates if id(cand.entry) in kept]
        listing.rotated = [cand for cand in listing.rotated if id(cand.entry) in kept]

    def _scan(self, dir_fd: int, relparts: List[str], depth: int) -> Optional[str]:
        """List one directory; returns an error message if it cannot be listed."""
        try:
            names = sorted(os.listdir(dir_fd))
        except OSError as exc:
            return f"cannot list: {describe_os_error(exc)}"
        for name in names:
            self._check_limits(relparts)
            self._add(dir_fd, relparts + [name], depth)
        return None

    def _shown(self, relparts: List[str]) -> str:
        return escaped_name(os.path.join(self.display_root, *relparts))

    def _check_limits(self, relparts: List[str]) -> None:
        if self.deadline.expired():
            self.listing.errors.append(
                f"run deadline reached while listing {self._shown(relparts)}: the log listing is incomplete")
            raise _ListingStopped()
        if len(self.listing.entries) >= 2 * MAX_ENTRIES:  # memory stays bounded however many there are
            self._keep_newest(MAX_ENTRIES)
        if self.listing.examined >= MAX_EXAMINED:
            self.listing.errors.append(f"more than {MAX_EXAMINED} entries under {self.display_root}: "
                                       f"listing stopped at {self._shown(relparts)}")
            raise _ListingStopped()

    def _add(self, dir_fd: int, relparts: List[str], depth: int) -> None:
        name = relparts[-1]
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            self._append(self._vanished(relparts, "other"))
            return
        except OSError as exc:
            self._append(self._failed(relparts, "other", None, exc))
            return
        mode = st.st_mode
        if stat.S_ISREG(mode):  # most entries
            self._add_regular(self.listing.logs_parts + relparts, relparts, "file", st, name)
        elif stat.S_ISLNK(mode):
            self._add_symlink(dir_fd, relparts, st)
        elif stat.S_ISDIR(mode):
            self._add_dir(dir_fd, relparts, st, depth)
        else:
            self._append(new_log_entry(relparts, file_type(mode), st, reason=REASON_NOT_REGULAR))

    def _add_dir(self, dir_fd: int, relparts: List[str], st: os.stat_result, depth: int) -> None:
        if depth >= self.max_depth:
            self._append(new_log_entry(relparts, "dir", st, reason=REASON_DEPTH))
            return
        entry = self._append(new_log_entry(relparts, "dir", st))
        try:
            child = os.open(relparts[-1], safeopen.DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            problem = (REASON_BECAME_LINK if exc.errno in (errno.ELOOP, errno.ENOTDIR)
                       else f"cannot list: {describe_os_error(exc)}")
        else:
            try:
                problem = self._scan(child, relparts, depth + 1)
            finally:
                os.close(child)
        if problem:
            entry.update(state="error", error=problem)
            self.listing.errors.append(f"{self._shown(relparts)}: {problem}")

    def _add_regular(self, parts: List[str], relparts: List[str], kind: str, st: os.stat_result,
                     *names: str) -> dict:
        rotated = any(map(is_rotated_or_compressed, names))
        entry = self._append(new_log_entry(relparts, kind, st, reason=REASON_ROTATED if rotated else None))
        candidate = Candidate(entry, parts, st.st_mtime, self.root)
        (self.listing.rotated if rotated else self.listing.candidates).append(candidate)
        return entry

    def _add_symlink(self, dir_fd: int, relparts: List[str], lst: os.stat_result) -> None:
        try:
            st, parts = self.root.stat(self.listing.logs_parts + relparts)
        except safeopen.LeavesBasedir as exc:
            shown = escaped_name(_where_it_leads(os.path.join(self.display_root, *relparts), exc.target))
            entry = self._append(new_log_entry(relparts, "symlink", lst,
                                               reason=f"symlink points outside BASEDIR: {shown}"))
            entry["target"] = shown
            return
        except OSError as exc:
            self._broken_symlink(dir_fd, relparts, lst, exc)
            return
        entry = self._followed_symlink(relparts, parts, st)
        entry["target"] = escaped_name(os.path.join(self.root.real, *parts))

    def _followed_symlink(self, relparts: List[str], parts: List[str], st: os.stat_result) -> dict:
        if stat.S_ISDIR(st.st_mode):
            return self._append(new_log_entry(relparts, "symlink", st, reason=REASON_SYMLINK_DIR))
        if not stat.S_ISREG(st.st_mode):
            return self._append(new_log_entry(relparts, "symlink", st, reason=REASON_NOT_REGULAR))
        return self._add_regular(parts, relparts, "symlink", st, relparts[-1], parts[-1] if parts else "")

    def _broken_symlink(self, dir_fd: int, relparts: List[str], lst: os.stat_result, exc: OSError) -> dict:
        if exc.errno == errno.ELOOP:
            return self._append(new_log_entry(relparts, "symlink", lst, reason=REASON_SYMLINK_LOOP))
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            target = escaped_name(_readlink_at(dir_fd, relparts[-1]))
            return self._append(new_log_entry(relparts, "symlink", lst,
                                              reason=f"broken symlink: {target} does not exist"))
        return self._append(self._failed(relparts, "symlink", lst, exc))

    def _vanished(self, relparts: List[str], kind: str) -> dict:
        entry = new_log_entry(relparts, kind, state="skipped")
        entry["error"] = REASON_VANISHED
        return entry

    def _failed(self, relparts: List[str], kind: str, st: Optional[os.stat_result], exc: OSError) -> dict:
        entry = new_log_entry(relparts, kind, st, state="error")
        entry["error"] = describe_os_error(exc)
        self.listing.errors.append(f"{self._shown(relparts)}: {entry['error']}")
        return entry

    def _append(self, entry: dict) -> dict:
        self.listing.entries.append(entry)
        self.listing.examined += 1
        return entry


def _recency(entry: dict) -> tuple:
    """Newest first: the entry's mtime ("YYYY-MM-DDTHH:MM:SSZ" sorts as time does); one
    without (it vanished or could not be read) is kept, its problem is news."""
    return (entry["mtime"] or "~", entry["path"])


def _where_it_leads(path: str, target: str) -> str:
    """For the record only (nothing is opened): the resolved path of a link that leaves
    BASEDIR, or the link's own text when it changed meanwhile."""
    try:
        return os.path.realpath(path)
    except OSError:
        return target


def _readlink_at(dir_fd: int, name: str) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return "?"


def new_log_entry(relparts: List[str], kind: str, st: Optional[os.stat_result] = None, state: str = "listed",
                  reason: Optional[str] = None) -> dict:
    """An index entry for the path `relparts` below BASEDIR/logs; a name that is not
    UTF-8 is stored escaped (safeopen.escaped_name), and `path_escaped` says so."""
    rel = "/".join(relparts)
    shown = escaped_name(rel)
    entry = new_entry(shown, kind, st, state, reason)
    if shown != rel:
        entry["path_escaped"] = True
    return entry


def list_logs(basedir: Path, max_depth: int, deadline: Deadline) -> Listing:
    """Every entry under BASEDIR/logs, lstat'ed, nothing but folders opened.  Raises
    OSError when BASEDIR or its log folder cannot be opened (LeavesBasedir when `logs`
    is a symlink that leaves BASEDIR).  The caller closes the listing."""
    return list_folder(basedir, "logs", max_depth, deadline)


def list_folder(top, sub: str, max_depth: int, deadline: Deadline) -> Listing:
    """Every entry under top/sub (sub "" for top itself), opened as BASEDIR/logs is:
    nothing below `top` is followed out of it."""
    listing = Listing(root=SafeRoot(top))
    try:
        logs_fd, listing.logs_parts = listing.root.open_dir(sub)
    except BaseException:
        listing.close()
        raise
    try:
        return _Walker(listing, max_depth, deadline).walk(logs_fd)
    finally:
        os.close(logs_fd)


def open_candidate(root: SafeRoot, cand: Candidate, errors: List[str]):
    """(descriptor, fstat) of a listed file opened again from its root along the place it
    was listed at, following no link; None with the entry marked (and `errors` extended
    for a real problem) when it vanished, is no longer a regular file or cannot be read."""
    entry = cand.entry
    try:
        fd, st, _parts = root.open_file(cand.parts, follow=False)
    except FileNotFoundError:
        entry.update(state="skipped", error=REASON_VANISHED)
        return None
    except safeopen.NotRegularFile:
        entry.update(reason=REASON_NOT_REGULAR)
        return None
    except OSError as exc:
        message = REASON_BECAME_LINK if exc.errno == errno.ELOOP else describe_os_error(exc)
        entry.update(state="error", error=message)
        errors.append(f"{cand.open_path}: {message}")
        return None
    return fd, st


def mark_read_error(cand: Candidate, exc: OSError, errors: List[str]) -> None:
    cand.entry.update(state="error", error=describe_os_error(exc))
    errors.append(f"{cand.open_path}: {cand.entry['error']}")
