"""Benchmark of the crash-loop evidence (collector/analyzers/crashloop.py) over a bundle
whose every catalog process has a 5000-line log (a start line every 500 lines).

Two cases: every process down or just started (every log is read: the worst case), and
every process running for an hour (no log is read: a healthy host).  Reports the best
of --runs of `crash_loops` over the same bundle.

    python bench/bench_crashloop.py [--runs 5] [--lines 5000]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collector.analyzers.common import bundle_started_at  # noqa: E402
from collector.analyzers.crashloop import crash_loops  # noqa: E402
from collector.analyzers.findings import Thresholds  # noqa: E402
from collector.bundle.reader import BundleReader  # noqa: E402
from collector.catalog import load_catalog  # noqa: E402
from collector.context import CollectOptions  # noqa: E402
from collector.live import iso_utc  # noqa: E402
from collector.run import CollectRequest, collect  # noqa: E402
from collector.simulate import SimulatedHost  # noqa: E402


def _bundle(root: Path, lines: int) -> BundleReader:
    sim = SimulatedHost(root / "host", log_lines=lines).build()
    for log in (sim.basedir / "logs").glob("*.log"):
        text = log.read_text().splitlines()
        for i in range(0, len(text), 500):
            text[i] = text[i][:24] + f" INFO  [{log.stem}] starting {log.stem} v2025.1"
        log.write_text("\n".join(text) + "\n")
    (root / "out").mkdir()
    request = CollectRequest(basedir=sim.basedir, basedir_source="bench", catalog=load_catalog(sim.catalog_file),
                             output_dir=root / "out", fmt="dir", timeout=120,
                             options=CollectOptions(only=("processes", "logs"), cpu_sample_seconds=0.05))
    return BundleReader(collect(request).path)


def _best(runs: int, call) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        reader = _bundle(Path(folder), args.lines)
        thresholds = Thresholds(load_catalog().thresholds)
        collected = bundle_started_at(reader)
        down = reader.json("processes.json")["expected"]
        settled = copy.deepcopy(down)
        for record in settled:
            record.update(status="running", resources=[{"pid": 1, "started_at": iso_utc(collected - 3600)}])
        index = reader.json("logs/index.json")
        print(f"{sum(1 for f in index['files'] if f.get('tail'))} log tails, {index['totals']['tail_bytes']} bytes")
        for label, records in (("every process down (every log read)", down),
                               ("every process running for an hour (no log read)", settled)):
            seconds = _best(args.runs, lambda: crash_loops(reader, records, collected, thresholds))
            print(f"{label}: {seconds * 1000:.1f} ms (best of {args.runs})")


if __name__ == "__main__":
    main()
