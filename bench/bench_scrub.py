"""Benchmark of the scrubber: throughput on platform log text (target: default scrubbing
at least 60 MB/s), on text dense with secrets and personal data, and what scrubbing adds
to a whole `collect` on the reference host (target: no more than 25%).

    python bench/bench_scrub.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from reference_host import build_reference_host  # noqa: E402

from collector import run as run_module  # noqa: E402
from collector.catalog import load_catalog  # noqa: E402
from collector.redact import Scrubber  # noqa: E402
from collector.simulate.host import sample_log_lines  # noqa: E402


def log_text(megabytes: int) -> bytes:
    lines = sample_log_lines("procworkflow", 20000, 1_790_000_000.0, 1)
    lines[100] += " user=alice@example.org password=hunter2"
    block = ("\n".join(lines) + "\n").encode()
    return block * max(1, (megabytes * 1_000_000) // len(block))


def dense_text(megabytes: int) -> bytes:
    """Lines where most hold something to mask: the scrubber's slow path."""
    lines = [
        '2026-11-29T10:00:00Z ERROR db: login failed password=hunter2 mode=fast user=alice@example.org',
        '{"level":"info","msg":"{\\"token\\":\\"abc\\"}","Authorization":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"}',
        'GET /track?token=abcdef123&id=5&email=bob%40example.org 200',
        "AK:api --smtp-pass secret --port 8801 --config /opt/akd/config/main.json",
        "2026-11-29T10:00:01Z INFO delivered to +7 915 123-45-67 in 12 ms",
        "dial mongodb://altcraft:S3cret@db1:27017/admin",
        "2026-11-29T10:00:02Z INFO processed batch id=00000000deadbeef of 15 messages in 12 ms",
        "2026-11-29T10:00:03Z DEBUG worker 3 picked task 4f2a from queue trk_actions (depth 12)",
    ]
    block = ("\n".join(lines * 1000) + "\n").encode()
    return block * max(1, (megabytes * 1_000_000) // len(block))


def throughput(scrubber_factory, data: bytes, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        scrubber = scrubber_factory()
        started = time.perf_counter()
        scrubber.scrub_bytes(data, "logs/x.log")
        times.append(time.perf_counter() - started)
    return len(data) / statistics.median(times) / 1e6


class _NoScrubbing(Scrubber):
    """For the comparison only: a scrubber with no rules at all."""

    @classmethod
    def for_bundle(cls, *args, **kwargs):
        return cls(())

    def scrub_bytes(self, data, path, starts_mid_line=False):
        return data


def time_collect(host, out: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        request = run_module.CollectRequest(basedir=host.basedir, basedir_source="bench",
                                            catalog=load_catalog(host.catalog_file), output_dir=out, fmt="7z")
        started = time.perf_counter()
        result = run_module.collect(request)
        times.append(time.perf_counter() - started)
        result.path.unlink()
    return statistics.median(times)


def main() -> None:
    data = log_text(20)
    default = throughput(Scrubber.for_bundle, data)
    secrets_only = throughput(lambda: Scrubber.for_bundle(pii_kinds=()), data)
    everything = throughput(lambda: Scrubber.for_bundle(pii_kinds=("emails", "phones", "ips", "hosts")), data)
    print(f"scrub throughput on {len(data) / 1e6:.0f} MB of log text: default {default:.0f} MB/s (target >= 60), "
          f"secrets only {secrets_only:.0f} MB/s, with ips+hosts {everything:.0f} MB/s")
    dense = dense_text(5)
    print(f"on {len(dense) / 1e6:.0f} MB of text dense with secrets and personal data: default "
          f"{throughput(Scrubber.for_bundle, dense, 3):.1f} MB/s")
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-") as root:
        with build_reference_host(Path(root) / "host") as host:
            out = Path(root) / "out"
            out.mkdir()
            with_scrub = time_collect(host, out, 5)
            original = run_module.Scrubber
            run_module.Scrubber = _NoScrubbing
            try:
                without = time_collect(host, out, 5)
            finally:
                run_module.Scrubber = original
    print(f"collect on the reference host (median of 5): {with_scrub:.2f} s with scrubbing, "
          f"{without:.2f} s without: scrubbing adds {100 * (with_scrub - without) / without:.0f}% (target <= 25%)")


if __name__ == "__main__":
    main()
