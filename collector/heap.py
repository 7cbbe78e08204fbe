"""glibc's malloc, told to keep less: fewer arenas for the run's threads, and the memory
freed given back.  Each thread that allocates gets an arena of its own (up to 8 per core),
and freed memory stays in the arena it came from: a run's dozen collector threads leave
megabytes that no later phase can reuse.  Elsewhere (musl, macOS) these do nothing."""

from __future__ import annotations

from typing import Any, Optional

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2  # `watch`'s: its sampler's and its bundles' threads
# a collect's: a dozen collector threads, then the analysis' and the summary's own, each
# arena keeping what its threads freed, for no other thread to reuse (reference host, peak
# RSS: glibc's default 63-65 MB, 2 arenas 59-61, 1 arena 58-60)
COLLECT_ARENAS = 1


def _glibc() -> Optional[Any]:
    try:
        import ctypes

        libc = ctypes.CDLL(None)
    except (ImportError, OSError):  # a Python built without ctypes; no C library to ask
        return None
    return libc if all(hasattr(libc, name) for name in ("malloc_trim", "mallopt")) else None  # glibc only


_LIBC = _glibc()


def limit_arenas(arenas: int = ARENAS) -> None:
    """At most `arenas` malloc arenas for the whole process; called before the threads start."""
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, arenas)


def release_memory() -> None:
    """Give the memory freed so far back to the system (glibc's malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
