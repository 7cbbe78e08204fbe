"""What the hand-off options cost: `akdiag collect` on a simulated host with large logs,
as it is, with --max-size (how close to the budget, how many archives written), and with
--split (the volumes' extra write).

    python bench/bench_handoff.py [--log-mb 60] [--max-size 5M] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collector.simulate import SimulatedHost  # noqa: E402
from collector.trust import trusted_temp_parent  # noqa: E402
from collector.units import format_size, parse_size  # noqa: E402

WORDS = "queue message sent delivered bounce timeout connection refused campaign trigger worker retry".split()


def write_logs(logs: Path, total_mb: int) -> None:
    rng = random.Random(7)
    for number in range(4):
        with open(logs / f"big{number}.log", "w") as handle:
            written = 0
            while written < total_mb * 1024 * 1024 / 4:
                line = f"2026-12-01 10:00:{written % 60:02d} INFO {' '.join(rng.choice(WORDS) for _ in range(9))} " \
                       f"id={rng.randrange(10 ** 12)}\n"
                handle.write(line)
                written += len(line)


def run(host, out: Path, *options: str) -> tuple:
    out.mkdir()
    argv = [sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir), "--output", str(out),
            "--quiet", "--log-bytes", "100000000", "--log-lines", "10000000", *options]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(HERE.parent)))
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    size = sum(p.stat().st_size for p in out.iterdir() if not p.name.endswith(".sha256"))
    return elapsed, size, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log-mb", type=int, default=60)
    parser.add_argument("--max-size", default="5M")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=trusted_temp_parent()) as root:
        host = SimulatedHost(Path(root) / "host").build()
        write_logs(host.basedir / "logs", args.log_mb)
        times = {"plain": [], "max-size": [], "split": []}
        sizes = {}
        for number in range(args.runs):
            for name, options in (("plain", ()), ("max-size", ("--max-size", args.max_size)),
                                  ("split", ("--split", "10M"))):
                elapsed, size, _err = run(host, Path(root) / f"out-{name}-{number}", *options)
                times[name].append(elapsed)
                sizes[name] = size
        budget = parse_size(args.max_size)
        print(f"logs: 4 x {args.log_mb / 4:.0f} MB; median of {args.runs} runs")
        for name, values in times.items():
            print(f"  {name:<9} {statistics.median(values):6.2f} s   archive {format_size(sizes[name])}")
        print(f"  --max-size {args.max_size}: archive is {100 * sizes['max-size'] / budget:.1f}% of the budget")
        manifest = subprocess.run(["7z", "x", "-so", str(next((Path(root) / "out-max-size-0").glob("*.7z"))),
                                   "*/manifest.json"], capture_output=True).stdout
        trimmed = json.loads(manifest)["size_budget"]["trimmed_bytes"]
        print(f"  trimmed {format_size(trimmed)} of log tails")


if __name__ == "__main__":
    main()
