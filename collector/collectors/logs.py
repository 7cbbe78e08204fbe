"""Every file under BASEDIR/logs and the datastores' log folders, with a tail of each live log.

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
                                       # with --since also "bytes_read" (what the seek and read cost),
                                       # and for a compressed part "compressed", "decompressed_bytes"
          },
          "window": {"since", "first_time", "last_time", "cut"}   # --since only (collector.logwindow)
        }
      ],
      "totals": {"files": <entries listed>, "tailed": int, "tail_bytes": int,
                 "left_out": int},         # entries past the listing's cap (MAX_ENTRIES): the oldest
      "roots": [                       # the datastores' own log folders (collector.datastore_logs)
        {"name": "mongodb", "path": "/var/log/mongodb", "source": "<config> <key>" | "standard place",
         "names": [file names] | null, "prefix": str | null, "owner": uid | null, "exists": bool,
         "bundle_dir": "logs/_datastores/<name>", "files": [entries as above, paths relative to "path"],
         "totals": {...}, "errors": [str, ...]}
      ],
      "notes": [str, ...],             # datastore configs that could not be used to find their logs
      "errors": [str, ...]             # non-empty: the runner marks the collector partial
    }

The datastores' folders are read with the same rules as BASEDIR/logs (opened once, no
link followed out of them, regular files only, the same byte budget: BASEDIR's logs
first); a folder that does not exist is no root; one that cannot be listed is an error.
With ``--since`` (options.since) each live log is read back to that time instead of its
tail, into its rotations: see collector.logwindow.

States: ``tailed`` - a tail is in the bundle; ``listed`` - only listed, on
purpose (see reason); ``skipped`` - it vanished before it could be read (normal
with log rotation; ``error`` says so, not counted in ``errors``); ``error`` - it
could not be read (permission, I/O); ``error`` holds the message and a line is
added to ``errors``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Set, Tuple

from collector.bundle import schema
from collector.context import CollectOptions, Context, Deadline
from collector import safeopen
from collector.datastore_logs import LogRoot, datastore_log_roots
from collector.live import iso_utc
from collector.logrotated import base_name
from collector.proctable import ProcUnreadable
from collector.logtail import (  # noqa: F401  (re-exported: the tail reader's names)
    BLOCK_SIZE, FileShrank, Tail, bundle_path_for, count_lines, read_tail, record_tail, tail_file)
from collector.logwalk import (  # noqa: F401  (the listing's names, re-exported for the collector's users)
    MAX_ENTRIES, REASON_BECAME_LINK, REASON_DEPTH, REASON_NOT_REGULAR, REASON_ROTATED, REASON_SYMLINK_DIR,
    REASON_SYMLINK_LOOP, REASON_VANISHED, Candidate, Listing, describe_os_error, file_type,
    is_rotated_or_compressed, list_folder, list_logs, mark_read_error, new_entry, newest_first, open_candidate)
from collector.logwindow import Budget, take_windows
from collector.safeopen import SafeRoot, escaped_name

if TYPE_CHECKING:  # pragma: no cover
    from collector.bundle.writer import CollectorWriter

REASON_DEADLINE = "deadline"
DATASTORES_DIR = f"{schema.LOGS_DIR}/_datastores"


# -- tailing ---------------------------------------------------------------------


def take_tails(listing: Listing, writer: "CollectorWriter", options: CollectOptions, deadline: Deadline,
               budget: Optional[Budget] = None, taken: Optional[Set[str]] = None,
               folder: str = schema.LOGS_DIR) -> List[str]:
    """Tail the listing's candidates newest first within the total budget (shared by
    every log root when given), writing each tail into the bundle under `folder` and
    filling in its entry; with --since, each log's time window instead
    (collector.logwindow).  Returns error lines."""
    budget = budget if budget is not None else Budget.for_listings(options, [listing])
    taken = taken if taken is not None else set()
    if options.since is not None:
        return take_windows(listing, writer, options, deadline, budget, taken, folder)
    errors: List[str] = []
    missed_by_deadline = 0
    for cand in newest_first(listing.candidates):
        entry = cand.entry
        budget.pending -= 1
        if deadline.expired():
            entry["reason"] = REASON_DEADLINE
            missed_by_deadline += 1
            continue
        if budget.left <= 0:
            entry["reason"] = f"total tail budget of {options.log_total_bytes} bytes used up"
            continue
        cap = min(options.log_bytes, budget.left)
        tail = _tail_candidate(listing.root, cand, options.log_lines, cap, errors)
        if tail is None:
            continue
        record_tail(entry, tail, bundle_path_for(entry["path"], taken, folder), writer)
        if cap < options.log_bytes and len(tail.data) == cap and tail.start_offset > 0:
            entry["reason"] = f"tail shortened to fit the total tail budget of {options.log_total_bytes} bytes"
        budget.left -= len(tail.data)
    if missed_by_deadline:
        errors.append(f"run deadline reached: {missed_by_deadline} log file(s) listed without a tail")
    return errors


def _tail_candidate(root: SafeRoot, cand: Candidate, max_lines: int, max_bytes: int,
                    errors: List[str]) -> Optional[Tail]:
    """The tail, or None with the entry marked (and `errors` extended) on a per-file problem.
    The file is opened from its root along the place it was listed at, following no link:
    a folder or file swapped for a symlink since is refused, not followed."""
    opened = open_candidate(root, cand, errors)
    if opened is None:
        return None
    fd, st = opened
    try:
        return read_tail(fd, st.st_size, max_lines, max_bytes)
    except OSError as exc:
        mark_read_error(cand, exc, errors)
        return None
    finally:
        os.close(fd)


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
            "since": iso_utc(options.since),  # --since: each log read back to this time
        },
        "files": [],
        "totals": {"files": 0, "tailed": 0, "tail_bytes": 0},
        "roots": [],  # the datastores' own log folders (see above)
        "notes": [],
        "errors": [],
    }


def _totals(entries: List[dict], left_out: int = 0) -> dict:
    tails = [e["tail"] for e in entries if e["tail"] is not None]
    return {"files": len(entries), "tailed": len(tails), "tail_bytes": sum(t["bytes"] for t in tails),
            "left_out": left_out}


def _root_problem(exc: OSError) -> str:
    """Why BASEDIR/logs cannot be walked."""
    if isinstance(exc, safeopen.LeavesBasedir):
        return f"is not read: {exc.strerror}"
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    if isinstance(exc, NotADirectoryError):
        return "is not a folder"
    return f"cannot be examined ({describe_os_error(exc)})"


def _platform_listing(ctx: Context, index: dict) -> Optional[Listing]:
    root = ctx.basedir / "logs"
    try:
        listing = list_logs(ctx.basedir, ctx.options.log_depth, ctx.deadline)
    except OSError as exc:
        index["errors"].append(f"log folder {root} {_root_problem(exc)}: check BASEDIR ({ctx.basedir}, "
                               f"from {ctx.basedir_source}) and akdiag's permissions")
        return None
    index["exists"] = True
    if listing.logs_parts != ["logs"]:
        index["root_target"] = escaped_name(listing.root.display(listing.logs_parts))
    index["errors"].extend(listing.errors)
    return listing


def _datastore_listing(root: LogRoot, record: dict, deadline: Deadline) -> Optional[Listing]:
    """The root's folder listed (its own files only), or None with the problem recorded."""
    try:
        listing = list_folder(root.local(), "", 1, deadline)
    except FileNotFoundError:
        return None
    except OSError as exc:
        record["errors"].append(f"{root.path}: cannot be listed ({describe_os_error(exc)})")
        return None
    listing.entries = [e for e in listing.entries if _in_root(root, e["path"])]
    listing.candidates = [c for c in listing.candidates
                          if _in_root(root, c.entry["path"]) and _owner_ok(listing, root, c)]
    listing.rotated = [c for c in listing.rotated
                       if _in_root(root, c.entry["path"]) and _owner_ok(listing, root, c)]
    record["exists"] = True
    record["errors"].extend(listing.errors)
    return listing


def _in_root(root: LogRoot, path: str) -> bool:
    """Whether an entry of the root's folder is one of that datastore's logs (or their rotations)."""
    return "/" not in path and root.owns(path, base_name(path))


def _owner_ok(listing: Listing, root: LogRoot, cand: Candidate) -> bool:
    """A root named by a user's own config: only that user's files are read."""
    if root.owner is None:
        return True
    try:
        uid = listing.root.stat(cand.parts)[0].st_uid
    except OSError:
        return True  # the reading step meets the problem and records it
    if uid == root.owner:
        return True
    cand.entry["reason"] = (f"owned by uid {uid}, not by uid {root.owner} whose config named this folder: "
                            f"not read")
    return False


def _datastore_roots(ctx: Context, index: dict) -> List[Tuple[dict, Listing]]:
    try:
        comms: Optional[Dict[str, List[int]]] = ctx.processes.pids_by_name()
    except ProcUnreadable:
        comms = None  # read apart, name by name
    roots, notes = datastore_log_roots(comms)
    index["notes"] = notes
    found = []
    for root in roots:
        record = {"name": root.name, "path": root.path, "source": root.source, "names": root.names,
                  "prefix": root.prefix, "owner": root.owner, "exists": False, "bundle_dir": f"{DATASTORES_DIR}/{root.name}",
                  "files": [], "totals": _totals([]), "errors": []}
        index["roots"].append(record)
        listing = _datastore_listing(root, record, ctx.deadline)
        if listing is not None:
            found.append((record, listing))
        index["errors"].extend(record["errors"])
    return found


def collect(ctx: Context) -> dict:
    index = _new_index(ctx.basedir / "logs", ctx.options)
    listing = _platform_listing(ctx, index)
    datastores = _datastore_roots(ctx, index)
    listings = ([listing] if listing else []) + [found for _record, found in datastores]
    budget, taken = Budget.for_listings(ctx.options, listings), set()
    try:
        if listing is not None:
            index["errors"].extend(take_tails(listing, ctx.writer, ctx.options, ctx.deadline, budget, taken))
            index["files"] = listing.entries
            index["totals"] = _totals(listing.entries, listing.left_out)
        for record, found in datastores:
            errors = take_tails(found, ctx.writer, ctx.options, ctx.deadline, budget, taken, record["bundle_dir"])
            record["errors"].extend(errors)
            index["errors"].extend(errors)  # each names its file
            record["files"], record["totals"] = found.entries, _totals(found.entries, found.left_out)
    finally:
        for found in listings:
            found.close()
    return index
