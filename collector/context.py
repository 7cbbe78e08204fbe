"""The explicit context every collector receives: where the platform lives,
how long it may take, and the one writer through which it puts files in the bundle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from collector.bundle.writer import CollectorWriter
    from collector.catalog import Catalog


class DeadlineExceeded(Exception):
    """Raised by a collector that notices it has run out of time."""


class Deadline:
    """A point in monotonic time after which work must stop."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def bound(self, seconds: float) -> float:
        """The smaller of `seconds` and what is left, never below a few milliseconds
        so that a call given this timeout fails fast rather than blocking."""
        return max(0.01, min(seconds, self.remaining()))

    def check(self) -> None:
        if self.expired():
            raise DeadlineExceeded(f"run deadline of {self.seconds:g} s reached")

    def child(self, seconds: float) -> "Deadline":
        """A deadline of `seconds` from now that never outlives this one."""
        return Deadline(min(seconds, self.remaining()))


@dataclass(frozen=True)
class CollectOptions:
    log_lines: int = 5000
    log_bytes: int = 2 * 1024 * 1024
    log_total_bytes: int = 100 * 1024 * 1024
    log_depth: int = 6
    cpu_sample_seconds: float = 0.5
    command_timeout: float = 10.0
    datastore_timeout: float = 3.0
    with_logs: bool = True
    only: Optional[Tuple[str, ...]] = None  # collector names; None means all
    since: Optional[float] = None  # epoch seconds: read logs back to this time; None means tails


@dataclass
class Context:
    basedir: Path
    basedir_source: str
    catalog: "Catalog"
    deadline: Deadline
    writer: "CollectorWriter"
    options: CollectOptions = field(default_factory=CollectOptions)
