"""Benchmark of the timeline (timeline.json) and of the logs analyzer (with its
same-message grouping) on a bundle of large tails.

Builds a bundle folder of LOGS tails of TAIL_LINES platform-shaped lines each (the
collector's default tail: 5000 lines, at most 2 MB), in two shapes: "ordinary" (every
97th line an error, a sixth of the others warnings, as the simulator writes them) and
"incident" (every line an error: 31 processes refusing the same MongoDB address, the
worst case for the timeline's bound and the grouping).  Reports the median of RUNS runs.

    python bench/bench_timeline.py [--runs 5] [--logs 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collector.analyzers import logs as logs_analyzer  # noqa: E402
from collector.analyzers.findings import Thresholds  # noqa: E402
from collector.analyzers.timeline import build_timeline  # noqa: E402
from collector.bundle.reader import BundleReader  # noqa: E402
from collector.catalog import load_catalog  # noqa: E402
from collector.simulate.host import sample_log_lines  # noqa: E402

TAIL_LINES = 5000
START = 1_795_950_000.0


def _incident_lines(name: str, count: int) -> list:
    return [time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(START + i * 0.2)) + f".{i % 1000:03d} ERROR [{name}] "
            f"dial tcp 127.0.0.1:27017: connect: connection refused (attempt {i})" for i in range(count)]


def build_bundle(root: Path, logs: int, shape: str) -> tuple:
    (root / "logs").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"schema_version": 1, "started_at": "2026-11-29T12:00:00Z"}))
    (root / "system.json").write_text(json.dumps({"time": {"timezone": {"name": "Europe/Moscow",
                                                                        "utc_offset": "+0300"}}}))
    entries, total = [], 0
    for n in range(logs):
        name = f"proc{n:02d}"
        lines = sample_log_lines(name, TAIL_LINES, START, seed=n) if shape == "ordinary" else \
            _incident_lines(name, TAIL_LINES)
        data = ("\n".join(lines) + "\n").encode()[-2 * 1024 * 1024:]
        (root / "logs" / f"{name}.log").write_bytes(data)
        total += len(data)
        entries.append({"path": f"{name}.log", "type": "file", "tail": {"bundle_path": f"logs/{name}.log"}})
    (root / "logs" / "index.json").write_text(json.dumps({"files": entries}))
    return BundleReader(root), total


def _median(work, runs: int) -> str:
    """Median wall and CPU time (the CPU time is the steadier figure on a shared machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return f"median {statistics.median(wall):.3f} s wall, {statistics.median(cpu):.3f} s CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--logs", type=int, default=40)
    args = parser.parse_args()
    thresholds = Thresholds(load_catalog().thresholds)
    for shape in ("ordinary", "incident"):
        with tempfile.TemporaryDirectory() as folder:
            reader, total = build_bundle(Path(folder) / "bundle", args.logs, shape)
            timeline = build_timeline(reader)
            found = logs_analyzer.analyze(reader, thresholds)
            print(f"{shape}: {args.logs} tails, {total / 1e6:.1f} MB, {timeline['total']} events "
                  f"({timeline['left_out']} left out), {len(found)} log findings")
            print(f"  timeline       {_median(lambda: build_timeline(reader), args.runs)}")
            print(f"  logs analyzer  {_median(lambda: logs_analyzer.analyze(reader, thresholds), args.runs)}")


if __name__ == "__main__":
    main()
