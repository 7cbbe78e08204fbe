"""Benchmark of `akdiag check` on the reference host.

Reports the wall time of a whole `akdiag check` (a child process, as a monitoring
system runs it: interpreter start, imports, quick collectors, analyzers, output).
Target: 2 s or less.

    python bench/bench_check.py [--runs 5] [-- extra check options, e.g. --skip datastores]
"""

from __future__ import annotations

import argparse
import os
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
from collector.trust import trusted_temp_parent  # noqa: E402  (akd is run only from a folder others cannot write to)

TARGET_SECONDS = 2.0


def time_check(host, extra) -> tuple:
    argv = [sys.executable, "-m", "collector", "check", "--basedir", str(host.basedir),
            "--catalog", str(host.catalog_file), "--format", "nagios", *extra]
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1, 2):
        raise SystemExit(f"check could not check (exit {done.returncode}): {done.stdout}{done.stderr}")
    return elapsed, done.returncode, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="options passed to akdiag check (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-", dir=trusted_temp_parent()) as root:
        print("building the reference host ...", file=sys.stderr)
        with build_reference_host(Path(root) / "host") as host:
            time_check(host, args.extra)  # warm the page cache: the first run reads every module
            runs = [time_check(host, args.extra) for _ in range(args.runs)]
    wall = statistics.median(r[0] for r in runs)
    print(f"check wall time (median of {args.runs}): {wall:.2f} s   (target <= {TARGET_SECONDS:g} s)   runs: "
          + ", ".join(f"{r[0]:.2f}" for r in runs))
    print(f"exit code {runs[-1][1]}: {runs[-1][2][:300]}")


if __name__ == "__main__":
    main()
