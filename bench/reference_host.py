"""The reference host of the benchmarks: every catalog process running, and 40 log
files of which one is 3 GB (sparse: only its last megabytes hold data)."""

from __future__ import annotations

import os
from pathlib import Path

from collector.simulate import SimulatedHost
from collector.simulate.host import sample_log_lines

LOG_FILES = 40
LINES_PER_LOG = 20000  # about 2 MB each: every tail is full
SPARSE_SIZE = 3 * 1024 ** 3
TEN_MB = 10 * 1024 * 1024


def write_lines(path: Path, binary: str, count: int, seed: int = 0) -> None:
    path.write_text("\n".join(sample_log_lines(binary, count, 1_790_000_000.0, seed)) + "\n")


def write_sparse_log(path: Path, size: int, binary: str = "procworkflow") -> None:
    """A file of `size` bytes whose last ~2 MB are log lines and the rest a hole."""
    tail = ("\n".join(sample_log_lines(binary, 20000, 1_790_000_000.0, 7)) + "\n").encode()
    with open(path, "wb") as handle:
        handle.truncate(size - len(tail))
        handle.seek(size - len(tail))
        handle.write(tail)


def write_ten_mb_log(path: Path, binary: str = "api") -> None:
    line_block = ("\n".join(sample_log_lines(binary, 20000, 1_790_000_000.0, 3)) + "\n").encode()
    with open(path, "wb") as handle:
        written = 0
        while written < TEN_MB:
            handle.write(line_block)
            written += len(line_block)


def build_reference_host(root: Path) -> SimulatedHost:
    host = SimulatedHost(root, log_lines=10).build()
    logs = host.basedir / "logs"
    for old in logs.iterdir():
        old.unlink()
    binaries = [p.binary for p in host.catalog.processes]
    for index in range(LOG_FILES - 2):
        binary = binaries[index % len(binaries)]
        write_lines(logs / f"{binary}{'' if index < len(binaries) else '-' + str(index)}.log", binary,
                    LINES_PER_LOG, index)
    write_sparse_log(logs / "huge-sparse.log", SPARSE_SIZE)
    write_ten_mb_log(logs / "ten-mb.log")
    assert len(os.listdir(logs)) == LOG_FILES
    return host.start()
