"""Every file under BASEDIR/logs, with a tail of each live log.

The collector works in two phases:

1. `list_logs` walks BASEDIR/logs (depth-limited, never following a symlinked
   directory) and lstat's every entry.  Nothing is opened in this phase.
2. `take_tails` reads the tail of each live regular file, newest first by mtime,
   within a total byte budget, and writes it into the bundle at
   ``logs/<path relative to BASEDIR/logs>``.  Tails are read from the end of the
   file backwards with ``os.pread`` (`read_tail`), so their cost does not depend
   on the file's size.  Tails keep the file's bytes exactly (lines are split on
   b"\\n" only; the bundle writer scrubs secrets line by line).

Only regular files are ever opened: entries are lstat'ed first, opened with
``O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW`` and re-checked with fstat.
A symlink is tailed only when it resolves to a regular file inside BASEDIR (the
resolved path is opened, with O_NOFOLLOW).  Rotated and compressed logs
(``*.gz``, ``*.bz2``, ``*.xz``, ``*.zst``, ``*.zip``, ``x.log.1``, ``x.1``,
``x.log.2.gz``, ``x.log-20260101``, ``x-20260101.log.gz``) are listed, not read.

Depth: entries directly in BASEDIR/logs are at depth 1; a directory at depth
``log_depth`` is listed with reason ``depth limit`` and not descended.

If BASEDIR/logs itself is a symlink to a directory it is followed (it is the
platform's log folder, wherever the operator put it); ``root_target`` then holds
the resolved path, and symlinks inside may point into it as well as into BASEDIR.

The returned index (written by the runner to logs/index.json)::

    {
      "root": "<BASEDIR>/logs",
      "root_target": "<resolved path>" | null,   # set when the root is a symlink
      "exists": bool,
      "limits": {"lines": int, "bytes": int, "total_bytes": int, "depth": int},
      "files": [                                  # sorted by path
        {
          "path": "<path relative to BASEDIR/logs>",
          "type": "file" | "symlink" | "dir" | "fifo" | "socket" | "device" | "other",
          "size": int | null,          # regular files (and symlinks to them) only
          "mtime": "YYYY-MM-DDTHH:MM:SSZ" | null,
          "state": "tailed" | "listed" | "skipped" | "error",
          "reason": str | null,        # why it was only listed, e.g.
                                       #  "rotated or compressed: listed only",
                                       #  "total tail budget of N bytes used up",
                                       #  "not a regular file", "depth limit", "deadline",
                                       #  "symlink points outside BASEDIR: <target>",
                                       #  "symlinked directory: not descended", "symlink loop"
          "error": str | null,         # the per-file problem met while reading it
          "target": str | null,        # symlinks: what the link resolves to
          "tail": null | {
            "bundle_path": "logs/<rel>",
            "lines": int,              # lines in the tail (a last line without "\\n" counts)
            "bytes": int,              # bytes read from the file (before scrubbing)
            "first_line_cut": bool,    # the first line was cut by the byte cap
            "started_at_offset": int,  # file offset of the tail's first byte
            "file_size_at_read": int   # the size the tail was read against
          }
        }
      ],
      "totals": {"files": <entries listed>, "tailed": int, "tail_bytes": int},
      "errors": [str, ...]             # non-empty: the runner marks the collector partial
    }

States: ``tailed`` - a tail is in the bundle; ``listed`` - only listed, on
purpose (see reason); ``skipped`` - it vanished before it could be read (normal
with log rotation; ``error`` says so, not counted in ``errors``); ``error`` - it
could not be read (permission, I/O); ``error`` holds the message and a line is
added to ``errors``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Sequence, Set, Tuple

from collector.bundle import schema
from collector.context import CollectOptions, Context, Deadline
from collector import live
from collector.live import iso_utc

if TYPE_CHECKING:  # pragma: no cover
    from collector.bundle.writer import CollectorWriter

BLOCK_SIZE = 64 * 1024
MAX_ENTRIES = 20000  # bounds the index on a folder holding millions of files
SHRINK_RETRIES = 3


COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip")
# x.log.1, x.1, x.log-20260101, x.log.2026-01-01, x-20260101 (before any compressed suffix)
_ROTATION_SUFFIX = re.compile(r"(?:\.\d+|[.\-_]\d{4}-?\d{2}-?\d{2}(?:[\-_]?\d{2,6})?)$")

REASON_ROTATED = schema.LOG_REASON_ROTATED
REASON_NOT_REGULAR = "not a regular file"
REASON_DEPTH = "depth limit"
REASON_DEADLINE = "deadline"
REASON_SYMLINK_DIR = "symlinked directory: not descended"
REASON_SYMLINK_LOOP = "symlink loop"
REASON_VANISHED = "vanished before it could be read (rotated or deleted)"


# -- the tail reader ---------------------------------------------------------------


class Tail(NamedTuple):
    data: bytes
    first_line_cut: bool
    start_offset: int
    file_size: int  # the size the tail was read against


class FileShrank(OSError):
    """The file kept shrinking under the reader; no consistent tail could be taken."""


class _ShortRead(Exception):
    pass


def read_tail(fd: int, size: int, max_lines: int, max_bytes: int, block_size: int = BLOCK_SIZE) -> Tail:
    """The last `max_lines` lines of the open file `fd`, at most `max_bytes` bytes,
    read backwards from offset `size` in blocks with os.pread.

    At most max_bytes + 1 bytes (plus one block) are read whatever the file's size.
    Lines end at b"\\n" only.  When the byte cap falls inside a line, that partial
    first line is kept and `first_line_cut` is true.  Bytes appended after `size`
    are ignored; if the file shrank below `size` (a read comes back short), the
    tail is taken again against the new size.
    """
    for _ in range(SHRINK_RETRIES):
        try:
            return _read_tail_once(fd, size, max_lines, max_bytes, block_size)
        except _ShortRead:
            size = os.fstat(fd).st_size
    raise FileShrank(errno.EAGAIN, "the file kept shrinking while its tail was read")


def _read_tail_once(fd: int, size: int, max_lines: int, max_bytes: int, block_size: int) -> Tail:
    if size <= 0 or max_lines <= 0 or max_bytes <= 0:
        return Tail(b"", False, max(size, 0), max(size, 0))
    floor = max(0, size - max_bytes - 1)  # one byte more than the cap: is the first line whole?
    chunks: List[bytes] = []
    pos = size
    newlines = 0
    start: Optional[int] = None
    while pos > floor and start is None:
        length = min(block_size, pos - floor)
        pos -= length
        chunk = _pread_exact(fd, length, pos)
        chunks.append(chunk)
        # the file's last byte ends the last line; it does not start a new one
        search_end = length - 1 if pos + length == size else length
        newlines, start = _find_line_start(chunk, search_end, pos, newlines, max_lines)
    window = b"".join(reversed(chunks))  # the bytes [pos, size)
    if start is None:
        start = max(pos, size - max_bytes)
    cut = start > 0 and window[start - pos - 1: start - pos] != b"\n"
    return Tail(window[start - pos:], cut, start, size)


def _find_line_start(chunk: bytes, end: int, chunk_offset: int, newlines: int, max_lines: int):
    """Count newlines in chunk[:end] from its end; once `max_lines` are seen, return
    the file offset just after that newline (where the tail starts)."""
    in_chunk = chunk.count(b"\n", 0, end)
    if newlines + in_chunk < max_lines:
        return newlines + in_chunk, None
    index = end
    while True:
        index = chunk.rfind(b"\n", 0, index)
        newlines += 1
        if newlines == max_lines:
            return newlines, chunk_offset + index + 1


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    parts = []
    while length > 0:
        data = os.pread(fd, length, offset)
        if not data:
            raise _ShortRead()
        parts.append(data)
        length -= len(data)
        offset += len(data)
    return b"".join(parts)


def count_lines(data: bytes) -> int:
    """Lines in `data`, split on b"\\n"; a last line without a newline counts."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def tail_file(path: str, max_lines: int, max_bytes: int) -> Tail:
    """Open `path` (a regular file, not a symlink) and read its tail."""
    fd, st = live.open_regular(path)
    try:
        return read_tail(fd, st.st_size, max_lines, max_bytes)
    finally:
        os.close(fd)


# -- naming ----------------------------------------------------------------------


def is_rotated_or_compressed(name: str) -> bool:
    """Whether a file name looks like a compressed or rotated (numbered, dated) log."""
    lowered = name.lower()
    if lowered.endswith(COMPRESSED_SUFFIXES):
        return True
    return bool(_ROTATION_SUFFIX.search(name))


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


def is_inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _describe_os_error(exc: OSError) -> str:
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
    open_path: str
    mtime: float


@dataclass
class Listing:
    entries: List[dict] = field(default_factory=list)
    candidates: List[Candidate] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)


class _ListingStopped(Exception):
    pass


class _Walker:
    def __init__(self, root: str, allowed_roots: Sequence[str], max_depth: int, deadline: Deadline):
        self.root = root
        self.allowed_roots = tuple(allowed_roots)
        self.max_depth = max_depth
        self.deadline = deadline
        self.listing = Listing()

    def walk(self) -> Listing:
        try:
            problem = self._scan(self.root, "", 1)
        except _ListingStopped:
            problem = None
        if problem:
            self.listing.errors.append(f"{self.root}: {problem}")
        return self.listing

    def _scan(self, dirpath: str, reldir: str, depth: int) -> Optional[str]:
        """List one directory; returns an error message if it cannot be listed."""
        try:
            with os.scandir(dirpath) as it:
                dirents = sorted(it, key=lambda d: d.name)
        except OSError as exc:
            return f"cannot list: {_describe_os_error(exc)}"
        for dirent in dirents:
            self._check_limits(dirpath)
            rel = f"{reldir}/{dirent.name}" if reldir else dirent.name
            self._add(dirent.path, rel, depth)
        return None

    def _check_limits(self, dirpath: str) -> None:
        if self.deadline.expired():
            self.listing.errors.append(
                f"run deadline reached while listing {dirpath}: the log listing is incomplete")
            raise _ListingStopped()
        if len(self.listing.entries) >= MAX_ENTRIES:
            self.listing.errors.append(
                f"more than {MAX_ENTRIES} entries under {self.root}: listing stopped at {dirpath}")
            raise _ListingStopped()

    def _add(self, path: str, rel: str, depth: int) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._append(self._vanished(rel, "other"))
            return
        except OSError as exc:
            self._append(self._failed(rel, "other", None, exc))
            return
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            self._add_symlink(path, rel, st)
        elif stat.S_ISDIR(mode):
            self._add_dir(path, rel, st, depth)
        elif stat.S_ISREG(mode):
            self._add_regular(path, rel, "file", st, os.path.basename(path))
        else:
            self._append(new_entry(rel, file_type(mode), st, reason=REASON_NOT_REGULAR))

    def _add_dir(self, path: str, rel: str, st: os.stat_result, depth: int) -> None:
        if depth >= self.max_depth:
            self._append(new_entry(rel, "dir", st, reason=REASON_DEPTH))
            return
        entry = self._append(new_entry(rel, "dir", st))
        problem = self._scan(path, rel, depth + 1)
        if problem:
            entry.update(state="error", error=problem)
            self.listing.errors.append(f"{path}: {problem}")

    def _add_regular(self, open_path: str, rel: str, kind: str, st: os.stat_result, *names: str) -> dict:
        if any(is_rotated_or_compressed(name) for name in names):
            return self._append(new_entry(rel, kind, st, reason=REASON_ROTATED))
        entry = self._append(new_entry(rel, kind, st))
        self.listing.candidates.append(Candidate(entry, open_path, st.st_mtime))
        return entry

    def _add_symlink(self, path: str, rel: str, lst: os.stat_result) -> None:
        resolved = os.path.realpath(path)
        if not is_inside(resolved, self.allowed_roots):
            entry = self._append(new_entry(rel, "symlink", lst,
                                           reason=f"symlink points outside BASEDIR: {resolved}"))
            entry["target"] = resolved
            return
        try:
            st = os.stat(path)
        except OSError as exc:
            entry = self._broken_symlink(path, rel, lst, exc)
        else:
            entry = self._followed_symlink(path, rel, resolved, st)
        entry["target"] = resolved

    def _followed_symlink(self, path: str, rel: str, resolved: str, st: os.stat_result) -> dict:
        if stat.S_ISDIR(st.st_mode):
            return self._append(new_entry(rel, "symlink", st, reason=REASON_SYMLINK_DIR))
        if not stat.S_ISREG(st.st_mode):
            return self._append(new_entry(rel, "symlink", st, reason=REASON_NOT_REGULAR))
        return self._add_regular(resolved, rel, "symlink", st,
                                 os.path.basename(path), os.path.basename(resolved))

    def _broken_symlink(self, path: str, rel: str, lst: os.stat_result, exc: OSError) -> dict:
        if exc.errno == errno.ELOOP:
            return self._append(new_entry(rel, "symlink", lst, reason=REASON_SYMLINK_LOOP))
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            target = _readlink(path)
            return self._append(new_entry(rel, "symlink", lst,
                                          reason=f"broken symlink: {target} does not exist"))
        return self._append(self._failed(rel, "symlink", lst, exc))

    def _vanished(self, rel: str, kind: str) -> dict:
        entry = new_entry(rel, kind, state="skipped")
        entry["error"] = REASON_VANISHED
        return entry

    def _failed(self, rel: str, kind: str, st: Optional[os.stat_result], exc: OSError) -> dict:
        entry = new_entry(rel, kind, st, state="error")
        entry["error"] = _describe_os_error(exc)
        self.listing.errors.append(f"{os.path.join(self.root, rel)}: {entry['error']}")
        return entry

    def _append(self, entry: dict) -> dict:
        self.listing.entries.append(entry)
        return entry


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def list_logs(root: Path, allowed_roots: Sequence[str], max_depth: int, deadline: Deadline) -> Listing:
    """Every entry under `root` (an existing directory), lstat'ed, nothing opened."""
    return _Walker(str(root), allowed_roots, max_depth, deadline).walk()


def allowed_roots(basedir: Path, root: Path) -> Tuple[str, ...]:
    """Where a symlink may point to be followed: BASEDIR, and the log folder's
    real location when BASEDIR/logs is itself a symlink."""
    roots = [os.path.realpath(basedir), os.path.realpath(root)]
    return tuple(dict.fromkeys(roots))


# -- tailing ---------------------------------------------------------------------


def bundle_path_for(rel: str, taken: Set[str]) -> str:
    """logs/<rel>, moved aside if it would overwrite the index or another tail."""
    path = f"{schema.LOGS_DIR}/{rel}"
    candidate = path
    n = 1
    while candidate == schema.LOGS_INDEX or candidate in taken:
        candidate = f"{path}.akdiag-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def take_tails(listing: Listing, writer: "CollectorWriter", options: CollectOptions,
               deadline: Deadline) -> List[str]:
    """Tail the listing's candidates newest first within the total budget, writing
    each tail into the bundle and filling in its entry.  Returns error lines."""
    errors: List[str] = []
    budget = options.log_total_bytes
    taken: Set[str] = set()
    missed_by_deadline = 0
    for cand in sorted(listing.candidates, key=lambda c: (-c.mtime, c.entry["path"])):
        entry = cand.entry
        if deadline.expired():
            entry["reason"] = REASON_DEADLINE
            missed_by_deadline += 1
            continue
        if budget <= 0:
            entry["reason"] = f"total tail budget of {options.log_total_bytes} bytes used up"
            continue
        cap = min(options.log_bytes, budget)
        tail = _tail_candidate(cand, options.log_lines, cap, errors)
        if tail is None:
            continue
        _record_tail(entry, tail, bundle_path_for(entry["path"], taken), writer)
        if cap < options.log_bytes and len(tail.data) == cap and tail.start_offset > 0:
            entry["reason"] = f"tail shortened to fit the total tail budget of {options.log_total_bytes} bytes"
        budget -= len(tail.data)
    if missed_by_deadline:
        errors.append(f"run deadline reached: {missed_by_deadline} log file(s) listed without a tail")
    return errors


def _tail_candidate(cand: Candidate, max_lines: int, max_bytes: int, errors: List[str]) -> Optional[Tail]:
    """The tail, or None with the entry marked (and `errors` extended) on a per-file problem."""
    entry = cand.entry
    try:
        return tail_file(cand.open_path, max_lines, max_bytes)
    except FileNotFoundError:
        entry.update(state="skipped", error=REASON_VANISHED)
    except live.NotRegularFile:
        entry.update(reason=REASON_NOT_REGULAR)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            message = "became a symlink after it was listed: not followed"
        else:
            message = _describe_os_error(exc)
        entry.update(state="error", error=message)
        errors.append(f"{cand.open_path}: {message}")
    return None


def _record_tail(entry: dict, tail: Tail, bundle_path: str, writer: "CollectorWriter") -> None:
    record = writer.write_bytes(bundle_path, tail.data, starts_mid_line=tail.first_line_cut)
    entry["state"] = "tailed"
    entry["size"] = tail.file_size
    entry["tail"] = {
        "bundle_path": record.path,  # as the writer named it (a name is scrubbed like any text)
        "lines": count_lines(tail.data),
        "bytes": len(tail.data),
        "first_line_cut": tail.first_line_cut,
        "started_at_offset": tail.start_offset,
        "file_size_at_read": tail.file_size,
    }


# -- the collector ----------------------------------------------------------------


def _new_index(root: Path, options: CollectOptions) -> dict:
    return {
        "root": str(root),
        "root_target": None,
        "exists": False,
        "limits": {
            "lines": options.log_lines,
            "bytes": options.log_bytes,
            "total_bytes": options.log_total_bytes,
            "depth": options.log_depth,
        },
        "files": [],
        "totals": {"files": 0, "tailed": 0, "tail_bytes": 0},
        "errors": [],
    }


def _totals(entries: List[dict]) -> dict:
    tails = [e["tail"] for e in entries if e["tail"] is not None]
    return {"files": len(entries), "tailed": len(tails), "tail_bytes": sum(t["bytes"] for t in tails)}


def _root_problem(root: Path) -> Optional[str]:
    """Why BASEDIR/logs cannot be walked, or None when it is a folder."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be examined ({_describe_os_error(exc)})"
    return None if stat.S_ISDIR(st.st_mode) else "is not a folder"


def collect(ctx: Context) -> dict:
    root = ctx.basedir / "logs"
    index = _new_index(root, ctx.options)
    problem = _root_problem(root)
    if problem:
        index["errors"].append(f"log folder {root} {problem}: check BASEDIR ({ctx.basedir}, "
                               f"from {ctx.basedir_source}) and akdiag's permissions")
        return index
    index["exists"] = True
    if root.is_symlink():
        index["root_target"] = os.path.realpath(root)
    listing = list_logs(root, allowed_roots(ctx.basedir, root), ctx.options.log_depth, ctx.deadline)
    index["errors"].extend(listing.errors)
    index["errors"].extend(take_tails(listing, ctx.writer, ctx.options, ctx.deadline))
    index["files"] = listing.entries
    index["totals"] = _totals(listing.entries)
    return index
