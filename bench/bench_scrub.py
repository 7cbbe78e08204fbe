"""Benchmark of the scrubber: throughput on platform log text (target: default scrubbing
at least 60 MB/s), on text dense with secrets and personal data, and what scrubbing adds
to a whole `collect` on the reference host (target: no more than 25%).

    python bench/bench_scrub.py
    python bench/bench_scrub.py --records [--baseline ../akdiag-before] [--runs 7]

--records times akdiag's own records through the bundle writer (write_json: scrubbed as
data, then encoded): a timeline.json of 5000 events and a logs/index.json of 20,000 files,
as the reference host and the 20,000-log host have them.  With --baseline, the other
checkout's writer is timed in the same loop, interleaved (each in a process of its own),
CPU time, medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
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


def sample_records() -> dict:
    """{bundle path: a record as akdiag writes it}: the reference host's timeline and a
    20,000-file logs index (one file in three with a tail)."""
    events = [{"time": f"2026-09-21T19:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i % 1000:03d}000Z", "source": "log",
               "subject": f"proc{i % 40}", "severity": "warning" if i % 7 else "error",
               "message": f"WARN  [proc{i % 40}] queue trk_actions depth {i * 37 % 90000} above soft limit",
               "file": f"logs/proc{i % 40}.log", "line": i % 5000 + 1} for i in range(5000)]
    timeline = {"clock": {"name": "Europe/Moscow", "utc_offset_seconds": 10800, "rules": "zone database"},
                "events": events, "first_error": events[0], "counts": {"log": {"error": 715, "warning": 4285}},
                "total": 35107, "left_out": 30107, "max_events": 5000, "untimed_lines": {}, "errors": []}
    files = []
    for i in range(20000):
        path = f"app{i % 37}/sub{i % 11}/service-{i}.log"
        tail = {"bundle_path": "logs/" + path, "lines": 5000, "bytes": 612555, "first_line_cut": False,
                "started_at_offset": 1842630, "file_size_at_read": 2455185} if i % 3 == 0 else None
        files.append({"path": path, "type": "file", "size": 2455185, "mtime": "2026-12-01T22:46:09Z",
                      "state": "tailed" if tail else "listed", "reason": None if tail else "older than the newest tails",
                      "error": None, "target": None, "tail": tail})
    return {"timeline.json": timeline, "logs/index.json": {"root": "/opt/akd/logs", "exists": True, "files": files}}


# run by each checkout's Python in a process of its own: argv checkout, records file, runs
_CHILD = """
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from collector.bundle.writer import BundleWriter
from collector.redact import Scrubber
records = json.loads(Path(sys.argv[2]).read_text())
times = {name: [] for name in records}
with tempfile.TemporaryDirectory(prefix="akdiag-bench-") as root:
    writer = BundleWriter(Path(root) / "bundle", Scrubber.for_bundle())
    for run in range(int(sys.argv[3]) + 1):  # the first: a warm-up
        for name, record in records.items():
            started = time.process_time()
            writer.write_json(name, record)
            if run:
                times[name].append(time.process_time() - started)
print(json.dumps(times))
"""


def records(baseline: "Path | None", runs: int) -> None:
    checkouts = {"this": HERE.parent}
    if baseline is not None:
        checkouts = {"baseline": baseline.resolve(), **checkouts}
    times: dict = {name: {} for name in checkouts}
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-") as root:
        sample = Path(root) / "records.json"
        sample.write_text(json.dumps(sample_records()))
        for _ in range(runs):
            for name, checkout in checkouts.items():  # a process each, interleaved: the same load on both
                done = subprocess.run([sys.executable, "-c", _CHILD, str(checkout), str(sample), "3"],
                                      capture_output=True, text=True, check=True, cwd=str(checkout))
                for path, spent in json.loads(done.stdout).items():
                    times[name].setdefault(path, []).extend(spent)
    for path in times["this"]:
        line = ", ".join(f"{name} {statistics.median(times[name][path]) * 1000:.0f} ms" for name in checkouts)
        ratio = (f" ({statistics.median(times['this'][path]) / statistics.median(times['baseline'][path]):.2f}x)"
                 if "baseline" in times else "")
        print(f"write_json {path}: CPU, median of {len(times['this'][path])}: {line}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", action="store_true", help="akdiag's own records through the bundle writer")
    parser.add_argument("--baseline", type=Path, help="with --records: another checkout's writer, interleaved")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if args.records:
        records(args.baseline, args.runs)
        return
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
