"""Reading one part of a log (the live file or one of its rotations) back to a time:
a plain file by seeking (collector.logtime.seek_since), a compressed one (gzip, bzip2,
xz) by decompressing it as a stream, in memory, keeping only the lines in the window:
never more than the byte cap of them (the newest), never more than MAX_DECOMPRESSED
bytes decompressed, never past the deadline.  Nothing decompressed is written anywhere
but into the bundle (by the caller, through the writer).

Also here: which rotated files belong to which live log (`rotations_of`), newest first.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import zlib
from collections import deque
from typing import Deque, Dict, Iterator, List, NamedTuple, Optional, Tuple

from collector.context import Deadline
from collector.logtime import (CountingReader, first_and_last_time, line_start_at_or_after, line_time, seek_since,
                               window_start_in)
from collector.logwalk import COMPRESSED_SUFFIXES, Candidate

RAW_BLOCK = 256 * 1024  # compressed bytes read at once
OUT_BLOCK = 1024 * 1024  # decompressed bytes asked for at once: a bomb cannot make more
MAX_DECOMPRESSED = 4 * 1024 ** 3  # per compressed part
READABLE_COMPRESSED = (".gz", ".bz2", ".xz")
_NUMBER = re.compile(r"\.(\d+)$")
_DATED = re.compile(r"(?:[.\-_]\d{4}-?\d{2}-?\d{2}(?:[\-_]?\d{2,6})?|\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d)$")
_DATED_BEFORE_EXT = re.compile(r"[.\-_]\d{4}-?\d{2}-?\d{2}(?:[\-_]?\d{2,6})?(?=\.log$)")


class WindowStopped(Exception):
    """A compressed part could not be read to its end (deadline, size bound, damage)."""


class Window(NamedTuple):
    data: bytes  # whole lines, the newest `cap` bytes of the window in this part
    start_offset: int  # where `data` starts in the part (decompressed offset for a compressed one)
    cut: bool  # the byte cap dropped the window's older lines
    first_time: Optional[float]  # of `data`
    last_time: Optional[float]
    covered: bool  # the window's start lies in this part: older parts need not be read
    bytes_read: int  # bytes read from the file (compressed bytes for a compressed part)
    decompressed: int  # bytes decompressed (0 for a plain part)


# -- which files are rotations of which log ------------------------------------------------


def base_name(name: str) -> str:
    """The live log a rotated file name belongs to: x.log.2.gz, x.log.1, x.log-20260101 and
    x-20260101.log.gz are all x.log's."""
    lowered = name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if lowered.endswith(suffix):
            name = name[:-len(suffix)]
            break
    stripped = _NUMBER.sub("", name)
    stripped = _DATED.sub("", stripped) if stripped == name else stripped
    return _DATED_BEFORE_EXT.sub("", stripped)


def _rotation_order(cand: Candidate):
    match = _NUMBER.search(re.sub(r"\.(gz|bz2|xz|zst|zip)$", "", cand.parts[-1], flags=re.I))
    return (-cand.mtime, int(match.group(1)) if match else 0, cand.entry["path"])


def rotations_of(live: Candidate, rotated: List[Candidate],
                 by_log: Optional[Dict[Tuple[str, str], List[Candidate]]] = None) -> List[Candidate]:
    """The rotated files in the live log's folder that belong to it, newest first (by
    mtime, then by rotation number); `by_log`: rotations_by_log(rotated), made once."""
    by_log = rotations_by_log(rotated) if by_log is None else by_log
    return by_log.get(_log_key(live.entry["path"], live.parts[-1]), [])


def rotations_by_log(rotated: List[Candidate]) -> Dict[Tuple[str, str], List[Candidate]]:
    """Every rotated file under the (folder, name) of the live log it belongs to, newest
    first: one pass over the listing for all the live logs of a run."""
    by_log: Dict[Tuple[str, str], List[Candidate]] = {}
    for cand in rotated:
        by_log.setdefault(_log_key(cand.entry["path"], base_name(cand.parts[-1])), []).append(cand)
    for parts in by_log.values():
        parts.sort(key=_rotation_order)
    return by_log


def _log_key(path: str, name: str) -> Tuple[str, str]:
    return path.rpartition("/")[0], name


def compression_of(name: str) -> Optional[str]:
    lowered = name.lower()
    return next((suffix for suffix in READABLE_COMPRESSED if lowered.endswith(suffix)), None)


# -- a plain part ------------------------------------------------------------------------


def plain_window(fd: int, size: int, since: float, cap: int, reference: float) -> Optional[Window]:
    """The window of a plain file, found by seeking; None when it has no timestamps."""
    reader = CountingReader(fd)
    seek = seek_since(reader, size, since, reference)
    if seek.start is None:
        return None
    start, cut = seek.start, False
    if size - start > cap:
        start, cut = line_start_at_or_after(reader, size - cap, size), True
    data = _pread_all(reader, start, size)
    first, last = first_and_last_time(data, reference)
    return Window(data, start, cut, first, last, seek.covered or cut, reader.bytes_read, 0)


def _pread_all(reader: CountingReader, start: int, end: int) -> bytes:
    parts, pos = [], start
    while pos < end:
        chunk = reader.pread(min(OUT_BLOCK * 8, end - pos), pos)
        if not chunk:
            break  # the file shrank: keep what there is
        parts.append(chunk)
        pos += len(chunk)
    return b"".join(parts)


# -- a compressed part -------------------------------------------------------------------


def _new_decompressor(kind: str):
    if kind == ".gz":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    return bz2.BZ2Decompressor() if kind == ".bz2" else lzma.LZMADecompressor()


def _decompressed(raw_blocks: Iterator[bytes], kind: str) -> Iterator[bytes]:
    """Decompressed blocks of at most OUT_BLOCK bytes, member after member."""
    decompressor, fed = _new_decompressor(kind), False
    for raw in raw_blocks:
        data = raw
        while data:
            fed = True
            if kind == ".gz":
                out = decompressor.decompress(data, OUT_BLOCK)
                data = decompressor.unconsumed_tail
                while not data and len(out) == OUT_BLOCK and not decompressor.eof:  # output still held
                    yield out
                    out = decompressor.decompress(b"", OUT_BLOCK)
            else:
                out = decompressor.decompress(data, OUT_BLOCK)
                data = b""
                while not decompressor.eof and not decompressor.needs_input:
                    yield out
                    out = decompressor.decompress(b"", OUT_BLOCK)
            if out:
                yield out
            if decompressor.eof:
                rest = decompressor.unused_data + data
                data = rest if rest.strip(b"\0") else b""
                decompressor, fed = _new_decompressor(kind), False
    if fed and not decompressor.eof:
        raise WindowStopped("damaged compressed data: it ends before its end (cut, or still being written)")


def _raw_blocks(fd: int, reader_count: List[int], deadline: Deadline) -> Iterator[bytes]:
    while True:
        if deadline.expired():
            raise WindowStopped("the run deadline came while it was decompressed")
        raw = os.read(fd, RAW_BLOCK)
        if not raw:
            return
        reader_count[0] += len(raw)
        yield raw


class _Keeper:
    """The window's lines met so far, at most about `cap` bytes of the newest."""

    def __init__(self, since: float, cap: int, reference: float):
        self.since, self.cap, self.reference = since, cap, reference
        self.kept: Deque[bytes] = deque()
        self.kept_bytes = 0
        self.dropped = 0  # window bytes dropped for the cap
        self.in_window = False
        self.first_seen: Optional[float] = None  # the part's first timestamp
        self.offset = 0  # decompressed bytes seen (whole lines)
        self.start = 0  # decompressed offset of the first kept byte

    def add(self, lines: bytes) -> None:
        if not lines:
            return
        if self.first_seen is None:
            self.first_seen = _first_time(lines, self.reference)
        if not self.in_window:
            index = self._window_start(lines)
            if index is None:
                self.offset += len(lines)
                return
            self.in_window, self.start = True, self.offset + index
            self.offset += index
            lines = lines[index:]
        self.kept.append(lines)
        self.kept_bytes += len(lines)
        self.offset += len(lines)
        while self.kept_bytes - len(self.kept[0]) >= self.cap:
            gone = self.kept.popleft()
            self.kept_bytes -= len(gone)
            self.dropped += len(gone)

    def _window_start(self, lines: bytes) -> Optional[int]:
        last = _last_time(lines, self.reference)
        if last is None or last < self.since:
            return None  # the whole block is older (untimed lines belong to an older one)
        return window_start_in(lines, self.since, self.reference)

    def result(self) -> Tuple[bytes, int, bool]:
        data = b"".join(self.kept)
        start, cut = self.start + self.dropped, self.dropped > 0
        if len(data) > self.cap:
            excess = len(data) - self.cap
            newline = data.find(b"\n", excess - 1)
            skip = len(data) if newline < 0 else newline + 1
            data, start, cut = data[skip:], start + skip, True
        return data, start, cut


def _first_time(data: bytes, reference: float) -> Optional[float]:
    return next((t for t in (line_time(l, reference) for l in data.split(b"\n", 64)[:64]) if t is not None), None)


def _last_time(data: bytes, reference: float) -> Optional[float]:
    end = len(data)
    for _ in range(64):
        if end <= 0:
            return None
        start = data.rfind(b"\n", 0, end - 1) + 1
        moment = line_time(data[start:end], reference)
        if moment is not None:
            return moment
        end = start
    return None


def compressed_window(fd: int, kind: str, since: float, cap: int, reference: float, deadline: Deadline,
                      limit: int = MAX_DECOMPRESSED) -> Window:
    """The window in a compressed part, decompressed as a stream.  Raises WindowStopped."""
    count = [0]
    keeper = _Keeper(since, cap, reference)
    pending, total = b"", 0
    try:
        for block in _decompressed(_raw_blocks(fd, count, deadline), kind):
            total += len(block)
            if total > limit:
                raise WindowStopped(f"more than {limit} bytes once decompressed: not read further")
            data = pending + block
            whole = data.rfind(b"\n") + 1
            keeper.add(data[:whole])
            pending = data[whole:]
            if len(pending) > cap:  # an endless line: keep its end only
                pending = pending[-cap:]
    except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
        if isinstance(exc, OSError) and exc.errno:  # a read error, not bad data (bz2 says that as OSError)
            raise
        raise WindowStopped(f"damaged compressed data: {exc}") from None
    keeper.add(pending)
    data, start, cut = keeper.result()
    first, last = first_and_last_time(data, reference)
    covered = cut or (keeper.first_seen is not None and keeper.first_seen < since)
    return Window(data, start, cut, first, last, covered, count[0], total)

