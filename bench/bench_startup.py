"""Start-up cost of the command line against the interpreter's own: `python3 -c pass`,
`import collector.cli`, `akdiag --help`, `akdiag --version` and `akdiag collect --help`,
run interleaved (one of each per round, so a busy machine weighs on all alike), medians
of fresh interpreters; then loading the built-in catalog.  Every command (`check` from a
monitoring system every minute, too) pays these before doing anything.  Issue 14's target:
`akdiag --help` <= 3x `python3 -c pass`.

    python bench/bench_startup.py [--runs 21] [--source]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CATALOG = ("import time; from collector.catalog import load_catalog; "
           "t = time.perf_counter(); load_catalog(); print(time.perf_counter() - t)")
TARGET_RATIO = 3.0


def commands() -> dict:
    python = sys.executable
    return {
        "python3 -c pass": [python, "-c", "pass"],
        "import collector.cli": [python, "-c", "import collector.cli"],
        "akdiag --help": [python, "-m", "collector", "--help"],
        "akdiag --version": [python, "-m", "collector", "--version"],
        "akdiag collect --help": [python, "-m", "collector", "collect", "--help"],
    }


def interleaved_ms(argvs: dict, runs: int, env: dict) -> dict:
    times = {name: [] for name in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, env=env, cwd=str(REPO), check=True)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--source", action="store_true",
                        help="keep no compiled modules between runs (times compiling every imported module too)")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    pycache = tempfile.mkdtemp(prefix="akdiag-bench-pyc-")
    if not args.source:  # as an installed akdiag: its modules compiled once (the first round), then loaded
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    try:
        return _measure(args, env)
    finally:
        shutil.rmtree(pycache, ignore_errors=True)


def _measure(args, env: dict) -> int:
    interleaved_ms(commands(), 1, env)  # the warm-up: modules compiled (unless --source), files cached
    medians = interleaved_ms(commands(), args.runs, env)
    floor = medians["python3 -c pass"]
    for name, ms in medians.items():
        print(f"{name:<24} {ms:7.1f} ms  {ms / floor:4.2f}x python3 -c pass")
    catalog = statistics.median(
        float(subprocess.run([sys.executable, "-c", CATALOG], capture_output=True, text=True, env=env,
                             cwd=str(REPO), check=True).stdout) for _ in range(args.runs)) * 1000
    print(f"load_catalog {catalog:.1f} ms (medians of {args.runs}, interleaved)")
    ratio = medians["akdiag --help"] / floor
    print(f"akdiag --help / python3 -c pass = {ratio:.2f} (target <= {TARGET_RATIO:.0f}): "
          f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
