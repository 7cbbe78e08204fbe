"""--since's seek over a line far longer than any real log line (a binary blob, a line
with no newline): one pass over it, never a copy of it per chunk."""

from __future__ import annotations

import os
import tracemalloc

from collector.logtime import MAX_PROBE_SCAN, CountingReader, seek_since

OLD = b"2026-11-30T10:00:00Z old line\n"
NEW = b"2026-11-30T12:00:00Z new line\n"
SINCE = 1796036400.0  # 2026-11-30T11:00:00Z


def _seek(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = CountingReader(fd)
        seek = seek_since(reader, os.fstat(fd).st_size, SINCE, SINCE)
        return seek, reader.bytes_read
    finally:
        os.close(fd)


def test_a_huge_untimed_line_is_passed_over_once(tmp_path):
    path = tmp_path / "blob.log"
    blob = b"x" * (40 * MAX_PROBE_SCAN) + b"\n"
    path.write_bytes(OLD * 3 + blob + NEW)
    tracemalloc.start()
    try:
        seek, read = _seek(path)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seek.start == len(OLD) * 3 + len(blob)  # the new line, not the blob
    assert read < 3 * path.stat().st_size  # each byte read about once
    assert peak < 4 * MAX_PROBE_SCAN, peak  # never held whole (40 MiB here)


def test_a_huge_line_stamped_after_since_is_where_the_window_starts(tmp_path):
    path = tmp_path / "late.log"
    late = b"2026-11-30T11:30:00Z " + b"y" * (4 * MAX_PROBE_SCAN) + b"\n"
    path.write_bytes(OLD * 3 + late + NEW)
    seek, _read = _seek(path)
    assert seek.start == len(OLD) * 3
