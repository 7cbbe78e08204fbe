"""watch's light sample: `akdiag check`'s quick collectors (no log tails, no archive, no
summary page) run in this process into a temporary folder outside BASEDIR, the analyzers
once, and the figures and findings kept as a history sample (collector.history)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Tuple

from collector.catalog import Catalog
from collector.check import CheckResult, check_host
from collector.history import make_sample

SAMPLE_TIMEOUT_RANGE = (10.0, 30.0)  # seconds: a sample's deadline, the interval within these bounds


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
