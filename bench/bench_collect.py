"""Benchmark of `akdiag collect` on the reference host.

Reports the wall time and peak RSS of a whole `akdiag collect` (a child process,
measured with wait4), and the tail time of a 10 MB log against a 3 GB sparse log.
Targets on a 2-core machine: collect <= 3 s, peak RSS <= 150 MB, tail times within 20%.

    python bench/bench_collect.py [--runs 3]
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

from collector.collectors.logs import tail_file  # noqa: E402
from collector.trust import trusted_temp_parent  # noqa: E402  (akd is run only from a folder others cannot write to)


def time_collect(host, out: Path) -> tuple:
    argv = [sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
            "--catalog", str(host.catalog_file), "--output", str(out), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    stdout = proc.stdout.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"collect failed: {proc.stderr.read().decode()}")
    bundle = Path(stdout.strip())
    return elapsed, usage.ru_maxrss / 1024.0, bundle.stat().st_size


def time_tail(path: Path, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        tail_file(str(path), 5000, 2 * 1024 * 1024)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-", dir=trusted_temp_parent()) as root:
        print("building the reference host ...", file=sys.stderr)
        with build_reference_host(Path(root) / "host") as host:
            out = Path(root) / "out"
            out.mkdir()
            runs = [time_collect(host, out) for _ in range(args.runs)]
            for bundle in out.iterdir():
                bundle.unlink()
            logs = host.basedir / "logs"
            ten, sparse = time_tail(logs / "ten-mb.log"), time_tail(logs / "huge-sparse.log")
    wall = statistics.median(r[0] for r in runs)
    rss = max(r[1] for r in runs)
    print(f"collect wall time (median of {args.runs}): {wall:.2f} s   (target <= 3 s)   runs: "
          + ", ".join(f"{r[0]:.2f}" for r in runs))
    print(f"collect peak RSS (max of {args.runs}):   {rss:.0f} MB   (target <= 150 MB)")
    print(f"bundle size: {runs[0][2] / 1e6:.1f} MB")
    print(f"tail of 10 MB log:  {ten * 1000:.2f} ms (median of 20)")
    print(f"tail of 3 GB log:   {sparse * 1000:.2f} ms (median of 20)   ratio {sparse / ten:.2f} (target 0.8-1.2)")


if __name__ == "__main__":
    main()
