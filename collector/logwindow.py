"""`collect --since`: each log read back to a time instead of its last lines.

For each live log, newest first by mtime: its window is found by seeking
(collector.logtime), then its rotations are read newest first (collector.logrotated)
until the window's start is covered, a rotation last written before the window is
met, or the log's byte cap is used up.  A log not written since the window's start
is not opened at all; one whose lines carry no timestamp the collector recognises
gets its plain tail (--log-lines/--log-bytes) and a note.

Byte bounds: --log-lines and --log-bytes do not cut a window; each log (all its parts
together) may take max(--log-bytes, budget left / logs left), never more than
MAX_WINDOW_BYTES (what is held in memory at once), and all of them together never more
than --log-total-bytes.  When a window is bigger, its newest part is kept and the
entry says so: ``window.cut`` true, ``window.first_time`` where it really starts.

Each part read gets, beside its ``tail``, ``window``: {"since", "first_time",
"last_time", "cut"} (times as ISO 8601 UTC, null when no line had one), and a
compressed part's tail also ``compressed`` ("gzip", "bzip2", "xz") and
``decompressed_bytes``; its bundle path drops the compression suffix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Set, Tuple

from collector.bundle import schema
from collector.context import CollectOptions, Deadline
from collector.live import iso_utc
from collector.logrotated import (Window, WindowStopped, compressed_window, compression_of, plain_window,
                                  rotations_by_log, rotations_of)
from collector.logtail import bundle_path_for, count_lines, read_tail, record_tail
from collector.logwalk import Candidate, Listing, mark_read_error, newest_first, open_candidate

if TYPE_CHECKING:  # pragma: no cover
    from collector.bundle.writer import CollectorWriter

MAX_WINDOW_BYTES = 64 * 1024 * 1024
COMPRESSION_NAMES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}
REASON_NOT_SINCE = "not written since the window's start (--since)"
REASON_OLDER = "rotated before the window's start (--since): not read"
REASON_COVERED = "the window's start was found in a newer part: not read"
REASON_NO_TIMES = "no timestamps recognised in its lines: its tail is taken instead of the window"


@dataclass
class Budget:
    """The byte budget all log roots share, and how many live logs still wait for it."""

    total: int
    left: int
    pending: int

    @classmethod
    def for_listings(cls, options: CollectOptions, listings: List[Listing]) -> "Budget":
        pending = sum(len(listing.candidates) for listing in listings)
        return cls(options.log_total_bytes, options.log_total_bytes, pending)

    def window_cap(self, options: CollectOptions) -> int:
        share = self.left // max(1, self.pending + 1)
        return max(0, min(self.left, MAX_WINDOW_BYTES, max(options.log_bytes, share)))


def new_window(since: float) -> dict:
    return {"since": iso_utc(since), "first_time": None, "last_time": None, "cut": False}


class _LogRun:
    """One live log and its rotations read into the bundle."""

    def __init__(self, listing: Listing, writer: "CollectorWriter", options: CollectOptions, deadline: Deadline,
                 taken: Set[str], folder: str, errors: List[str]):
        self.listing, self.writer, self.options, self.deadline = listing, writer, options, deadline
        self.taken, self.folder, self.errors = taken, folder, errors
        self.since: float = options.since
        self._rotations: Optional[Dict[Tuple[str, str], List[Candidate]]] = None  # built once, on first use

    def read_log(self, cand: Candidate, cap: int) -> int:
        """Reads the live file then rotations; returns the bytes put in the bundle."""
        window, used = self._read_part(cand, cap, live=True)
        if window is None:  # no timestamps, or it could not be read: its rotations are only listed
            return used
        covered = window.covered
        if self._rotations is None:
            self._rotations = rotations_by_log(self.listing.rotated)
        for rotation in rotations_of(cand, self.listing.rotated, self._rotations):
            if covered or used >= cap or self.deadline.expired():
                if covered:
                    rotation.entry["reason"] = REASON_COVERED
                continue
            if rotation.mtime < self.since:
                rotation.entry["reason"] = REASON_OLDER
                covered = True
                continue
            window, got = self._read_part(rotation, cap - used, live=False)
            used += got
            covered = window is None or window.covered
        return used

    def _read_part(self, cand: Candidate, cap: int, live: bool):
        entry = cand.entry
        entry["window"] = new_window(self.since)
        opened = open_candidate(self.listing.root, cand, self.errors)
        if opened is None:
            return None, 0
        fd, st = opened
        kind = compression_of(cand.parts[-1])
        try:
            if kind:
                window = compressed_window(fd, kind, self.since, cap, st.st_mtime, self.deadline)
            else:
                window = plain_window(fd, st.st_size, self.since, cap, st.st_mtime)
                if window is None:
                    return None, self._fallback(cand, fd, st.st_size, cap) if live else 0
        except WindowStopped as exc:
            entry["reason"] = f"{exc}: this part and older ones not read"
            self.errors.append(f"{cand.open_path}: {exc}")
            return None, 0
        except OSError as exc:
            mark_read_error(cand, exc, self.errors)
            return None, 0
        finally:
            os.close(fd)
        self._record(cand, window, st.st_size, kind)
        return window, len(window.data)

    def _fallback(self, cand: Candidate, fd: int, size: int, cap: int) -> int:
        tail = read_tail(fd, size, self.options.log_lines, min(self.options.log_bytes, cap))
        record_tail(cand.entry, tail, bundle_path_for(cand.entry["path"], self.taken, self.folder), self.writer)
        cand.entry["reason"] = REASON_NO_TIMES
        return len(tail.data)

    def _record(self, cand: Candidate, window: Window, size: int, kind: Optional[str]) -> None:
        entry = cand.entry
        rel = entry["path"][:-len(kind)] if kind else entry["path"]
        record = self.writer.write_bytes(bundle_path_for(rel, self.taken, self.folder), window.data)
        entry["state"] = "tailed"
        entry["reason"] = None
        entry["tail"] = {"bundle_path": record.path, "lines": count_lines(window.data), "bytes": len(window.data),
                         "first_line_cut": False, "started_at_offset": window.start_offset,
                         "file_size_at_read": size, "bytes_read": window.bytes_read}
        if kind:
            entry["tail"].update(compressed=COMPRESSION_NAMES[kind], decompressed_bytes=window.decompressed)
        entry["window"].update(first_time=iso_utc(window.first_time), last_time=iso_utc(window.last_time),
                               cut=window.cut)
        if window.cut:
            entry["reason"] = (f"window cut to its newest {len(window.data)} bytes by the byte budget: "
                               f"it starts at {entry['window']['first_time']}")


def take_windows(listing: Listing, writer: "CollectorWriter", options: CollectOptions, deadline: Deadline,
                 budget: Budget, taken: Set[str], folder: str = schema.LOGS_DIR) -> List[str]:
    """Each live log of the listing (newest first) and its rotations read back to
    options.since; entries filled in.  Returns error lines."""
    errors: List[str] = []
    run = _LogRun(listing, writer, options, deadline, taken, folder, errors)
    missed_by_deadline = 0
    for cand in newest_first(listing.candidates):
        budget.pending -= 1
        entry = cand.entry
        if deadline.expired():
            entry["reason"] = "deadline"
            missed_by_deadline += 1
            continue
        if cand.mtime < options.since:
            entry.update(reason=REASON_NOT_SINCE, window=new_window(options.since))
            continue
        cap = budget.window_cap(options)
        if cap <= 0:
            entry["reason"] = f"total tail budget of {options.log_total_bytes} bytes used up"
            continue
        budget.left -= run.read_log(cand, cap)
    if missed_by_deadline:
        errors.append(f"run deadline reached: {missed_by_deadline} log file(s) listed without a tail")
    return errors
