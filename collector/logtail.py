"""Reading the tail of a log file backwards from its end with os.pread (`read_tail`):
its cost does not depend on the file's size.  Tails keep the file's bytes exactly
(lines split on b"\\n" only)."""

from __future__ import annotations

import errno
import os
from typing import List, NamedTuple, Optional, Set

from collector.bundle import schema
from collector.live import open_regular

BLOCK_SIZE = 64 * 1024
SHRINK_RETRIES = 3


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


def bundle_path_for(rel: str, taken: Set[str], folder: str = schema.LOGS_DIR) -> str:
    """<folder>/<rel>, moved aside if it would overwrite the index or another tail."""
    path = f"{folder}/{rel}"
    candidate = path
    n = 1
    while candidate == schema.LOGS_INDEX or candidate in taken:
        candidate = f"{path}.akdiag-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def record_tail(entry: dict, tail: Tail, bundle_path: str, writer) -> None:
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
