"""Every file under BASEDIR/logs, with a tail of each live log.

The collector works in two phases:

1. `list_logs` walks BASEDIR/logs (depth-limited, never following a symlinked
   directory) through open folder descriptors and lstat's every entry.  Nothing
   but folders is opened in this phase.
2. `take_tails` reads the tail of each live regular file, newest first by mtime,
   within a total byte budget, and writes it into the bundle at
   ``logs/<path relative to BASEDIR/logs>``.  Tails are read from the end of the
   file backwards with ``os.pread`` (`read_tail`), so their cost does not depend
   on the file's size.  Tails keep the file's bytes exactly (lines are split on
   b"\\n" only; the bundle writer scrubs secrets line by line).

Nothing outside BASEDIR is ever read: every path is opened relative to an open
BASEDIR descriptor, folder by folder with O_NOFOLLOW (collector.safeopen), so a
folder swapped for a symlink between listing and reading is refused, not followed.
Only regular files are opened (``O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW``,
re-checked with fstat).  A symlink is tailed only when it resolves, link by link,
to a regular file inside BASEDIR.  Rotated and compressed logs
(``*.gz``, ``*.bz2``, ``*.xz``, ``*.zst``, ``*.zip``, ``x.log.1``, ``x.1``,
``x.log.2.gz``, ``x.log-20260101``, ``x-20260101.log.gz``) are listed, not read.

Depth: entries directly in BASEDIR/logs are at depth 1; a directory at depth
``log_depth`` is listed with reason ``depth limit`` and not descended.

BASEDIR/logs may itself be a symlink to a folder inside BASEDIR (``root_target``
then holds where it leads); one that leaves BASEDIR is refused and recorded.

A file name that is not valid UTF-8 (or holds a backslash) is stored escaped (``%XX``
for each such byte, safeopen.escaped_name) in ``path`` and in the bundle path, and the
entry has ``"path_escaped": true``.

The returned index (written by the runner to logs/index.json)::

    {
      "root": "<BASEDIR>/logs",
      "root_target": "<resolved path>" | null,   # set when the root is a symlink inside BASEDIR
      "exists": bool,
      "limits": {"lines": int, "bytes": int, "total_bytes": int, "depth": int},
      "files": [                                  # sorted by path
        {
          "path": "<path relative to BASEDIR/logs>",  # escaped when not UTF-8
          "path_escaped": true,        # only when it was
          "type": "file" | "symlink" | "dir" | "fifo" | "socket" | "device" | "other",
          "size": int | null,          # regular files (and symlinks to them) only
          "mtime": "YYYY-MM-DDTHH:MM:SSZ" | null,
          "state": "tailed" | "listed" | "skipped" | "error",
          "reason": str | null,        # why it was only listed, e.g.
                                       #  "rotated or compressed: listed only",
                                       #  "total tail budget of N bytes used up",
                                       #  "not a regular file", "depth limit", "deadline",
                                       #  "symlink points outside BASEDIR: <target>",
                                       #  "symlinked directory: not descended", "symlink loop",
                                       #  "became a symlink after it was listed: not followed"
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
from pathlib import Path
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Set

from collector.bundle import schema
from collector.context import CollectOptions, Context, Deadline
from collector import safeopen
from collector.live import open_regular
from collector.logwalk import (  # noqa: F401  (the listing's names, re-exported for the collector's users)
    MAX_ENTRIES, REASON_BECAME_LINK, REASON_DEPTH, REASON_NOT_REGULAR, REASON_ROTATED, REASON_SYMLINK_DIR,
    REASON_SYMLINK_LOOP, REASON_VANISHED, Candidate, Listing, describe_os_error, file_type,
    is_rotated_or_compressed, list_logs, new_entry)
from collector.safeopen import SafeRoot, escaped_name

if TYPE_CHECKING:  # pragma: no cover
    from collector.bundle.writer import CollectorWriter

BLOCK_SIZE = 64 * 1024
SHRINK_RETRIES = 3


REASON_DEADLINE = "deadline"


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
    fd, st = open_regular(path)
    try:
        return read_tail(fd, st.st_size, max_lines, max_bytes)
    finally:
        os.close(fd)


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
        tail = _tail_candidate(listing.root, cand, options.log_lines, cap, errors)
        if tail is None:
            continue
        _record_tail(entry, tail, bundle_path_for(entry["path"], taken), writer)
        if cap < options.log_bytes and len(tail.data) == cap and tail.start_offset > 0:
            entry["reason"] = f"tail shortened to fit the total tail budget of {options.log_total_bytes} bytes"
        budget -= len(tail.data)
    if missed_by_deadline:
        errors.append(f"run deadline reached: {missed_by_deadline} log file(s) listed without a tail")
    return errors


def _tail_candidate(root: SafeRoot, cand: Candidate, max_lines: int, max_bytes: int,
                    errors: List[str]) -> Optional[Tail]:
    """The tail, or None with the entry marked (and `errors` extended) on a per-file problem.
    The file is opened from BASEDIR along the place it was listed at, following no link:
    a folder or file swapped for a symlink since is refused, not followed."""
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
    try:
        return read_tail(fd, st.st_size, max_lines, max_bytes)
    except OSError as exc:
        entry.update(state="error", error=describe_os_error(exc))
        errors.append(f"{cand.open_path}: {entry['error']}")
        return None
    finally:
        os.close(fd)


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


def _root_problem(exc: OSError) -> str:
    """Why BASEDIR/logs cannot be walked."""
    if isinstance(exc, safeopen.LeavesBasedir):
        return f"is not read: {exc.strerror}"
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    if isinstance(exc, NotADirectoryError):
        return "is not a folder"
    return f"cannot be examined ({describe_os_error(exc)})"


def collect(ctx: Context) -> dict:
    root = ctx.basedir / "logs"
    index = _new_index(root, ctx.options)
    try:
        listing = list_logs(ctx.basedir, ctx.options.log_depth, ctx.deadline)
    except OSError as exc:
        index["errors"].append(f"log folder {root} {_root_problem(exc)}: check BASEDIR ({ctx.basedir}, "
                               f"from {ctx.basedir_source}) and akdiag's permissions")
        return index
    try:
        index["exists"] = True
        if listing.logs_parts != ["logs"]:
            index["root_target"] = escaped_name(listing.root.display(listing.logs_parts))
        index["errors"].extend(listing.errors)
        index["errors"].extend(take_tails(listing, ctx.writer, ctx.options, ctx.deadline))
    finally:
        listing.close()
    index["files"] = listing.entries
    index["totals"] = _totals(listing.entries)
    return index
