"""Start-up cost of the command line: `import collector.cli`, `akdiag --help` and loading
the built-in catalog, each the median of several fresh interpreters.  Every command
(`check` from a monitoring system every minute, too) pays these before doing anything.

    python bench/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CATALOG = ("import time; from collector.catalog import load_catalog; "
           "t = time.perf_counter(); load_catalog(); print(time.perf_counter() - t)")


def wall_ms(argv, runs: int, env: dict) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=env, cwd=str(REPO), check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    imported = wall_ms([sys.executable, "-c", "import collector.cli"], args.runs, env)
    helped = wall_ms([sys.executable, "-m", "collector", "--help"], args.runs, env)
    catalog = statistics.median(
        float(subprocess.run([sys.executable, "-c", CATALOG], capture_output=True, text=True, env=env,
                             cwd=str(REPO), check=True).stdout) for _ in range(args.runs)) * 1000
    print(f"import collector.cli {imported:.0f} ms, akdiag --help {helped:.0f} ms, "
          f"load_catalog {catalog:.1f} ms (medians of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
