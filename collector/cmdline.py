"""Command lines of the host's processes, read with a cap per process and in total: a
host where every process carries 100 KB of arguments must not make akdiag hold (and
write) hundreds of megabytes.  A cut command line ends with the word CUT."""

from __future__ import annotations

import os
import sys
import threading
from typing import List, Optional

PER_PROCESS_BYTES = 4 * 1024
TOTAL_BYTES = 4 * 1024 * 1024
MIN_BYTES = 256  # even past the total: argv[0], which holds the process title, is kept
CUT = "[cut]"


def read_cmdline(pid: int, limit: int = PER_PROCESS_BYTES) -> Optional[List[str]]:
    """The process's arguments from its first `limit` bytes (CUT last when there were
    more), [] for a kernel thread, None when it cannot be read.  Split as psutil does: at
    NUL bytes, or at spaces for a process that rewrote its title into one string."""
    try:
        fd = os.open(f"/proc/{pid}/cmdline", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        data = b""
        while len(data) <= limit:
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    cut = len(data) > limit
    text = data[:limit].decode(sys.getfilesystemencoding(), "surrogateescape")
    if not text:
        return [CUT] if cut else []
    separator = "\0" if "\0" in text else " "
    if text.endswith(separator) and not cut:
        text = text[:-1]
    words = text.split(separator)
    if separator == "\0" and len(words) == 1 and " " in text:
        words = text.split(" ")
    return words + [CUT] if cut else words


class CmdlineReader:
    """Reads command lines within one total: past it, each gets MIN_BYTES."""

    def __init__(self, per_process: int = PER_PROCESS_BYTES, total: int = TOTAL_BYTES):
        self.per_process = per_process
        self.left = total
        self.cut = 0  # command lines that were cut
        self._lock = threading.Lock()

    def read(self, pid: int) -> Optional[List[str]]:
        with self._lock:
            limit = max(MIN_BYTES, min(self.per_process, self.left))
        words = read_cmdline(pid, limit)
        with self._lock:
            if words:
                self.left -= sum(len(w) + 1 for w in words)
                self.cut += words[-1] == CUT
        return words
