"""watch's light sample: `akdiag check`'s quick collectors (no log tails, no archive, no
summary page) run in this process into a temporary folder outside BASEDIR, the analyzers
once, and the figures and findings kept as a history sample (collector.history)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

from collector.catalog import Catalog
from collector.check import CheckResult, check_host
from collector.history import make_sample

SAMPLE_TIMEOUT_RANGE = (10.0, 30.0)  # seconds: a sample's deadline, the interval within these bounds
M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def sample_timeout(interval: float) -> float:
    low, high = SAMPLE_TIMEOUT_RANGE
    return max(low, min(high, interval))


def take_sample(basedir: Path, basedir_source: str, catalog: Catalog, interval: float,
                datastore_timeout: float = 1.0, skip: Sequence[str] = ()) -> Tuple[dict, CheckResult]:
    """(the history sample, the check's result).  The catalog is read once by the caller
    and reused for every sample."""
    result = check_host(basedir, basedir_source, catalog, skip=skip, timeout=sample_timeout(interval),
                        datastore_timeout=datastore_timeout)
    return make_sample(result.snapshot, result.findings, result.status), result


def _glibc() -> Optional[Any]:
    try:
        import ctypes

        libc = ctypes.CDLL(None)
    except (ImportError, OSError):  # a Python built without ctypes; no C library to ask
        return None
    return libc if all(hasattr(libc, name) for name in ("malloc_trim", "mallopt")) else None  # glibc only


_LIBC = _glibc()


def limit_arenas() -> None:
    """Each sample's collector threads would otherwise spread over up to 8 malloc arenas per
    core, each keeping freed memory: over a day the process's RSS grew by megabytes with no
    Python object kept.  Called once, before the first sample's threads start."""
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, ARENAS)


def release_memory() -> None:
    """Give the memory a sample freed back to the system (glibc's malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
