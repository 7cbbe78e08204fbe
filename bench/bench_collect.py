"""Benchmark of `akdiag collect` on the reference host.

Reports the wall time and peak RSS of a whole `akdiag collect` (a child process,
measured with wait4), and the tail time of a 10 MB log against a 3 GB sparse log.
Targets on a 2-core machine: collect <= 3 s, peak RSS <= 150 MB, tail times within 20%.

    python bench/bench_collect.py [--runs 3]
    python bench/bench_collect.py --baseline ../akdiag-before [--runs 5]

With --baseline (another checkout of akdiag, e.g. `git worktree add ../akdiag-before v0.1`)
both are run on the same reference host in one interleaved loop (baseline, this, baseline,
this, ...) and the medians and their difference are printed: the way to show what a change
costs on a shared, noisy machine.  The CPU time (user + system, from wait4) is printed
beside the wall: on a loaded machine it moves far less than the wall does.
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


def time_collect(host, out: Path, checkout: Path = HERE.parent) -> tuple:
    argv = [sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
            "--catalog", str(host.catalog_file), "--output", str(out), "--quiet"]
    # The compiled modules (.pyc) are kept beside the output, outside both checkouts, and
    # removed with it: every run after the warm-up loads them as an installed akdiag does,
    # even where the environment says not to write bytecode (which would time the
    # compiling of every module instead).
    env = dict(os.environ, PYTHONPATH=str(checkout), PYTHONPYCACHEPREFIX=str(out.parent / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    # cwd too: `python -m` puts the working folder first on sys.path
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(checkout))
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    stdout = proc.stdout.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"collect failed: {proc.stderr.read().decode()}")
    bundle = Path(stdout.strip())
    return elapsed, usage.ru_maxrss / 1024.0, bundle.stat().st_size, usage.ru_utime + usage.ru_stime


def time_tail(path: Path, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        tail_file(str(path), 5000, 2 * 1024 * 1024)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def compare(baseline: Path, runs: int) -> None:
    """Baseline and this checkout, interleaved on one reference host."""
    checkouts = {"baseline": baseline.resolve(), "this": HERE.parent}
    times: dict = {name: [] for name in checkouts}
    rss: dict = {name: [] for name in checkouts}
    cpu: dict = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-", dir=trusted_temp_parent()) as root:
        print("building the reference host ...", file=sys.stderr)
        with build_reference_host(Path(root) / "host") as host:
            for name in checkouts:  # one warm-up each: page cache, .pyc files
                time_collect(host, _out(root, name), checkouts[name])
            for _ in range(runs):
                for name, checkout in checkouts.items():
                    wall, peak, _size, used = time_collect(host, _out(root, name), checkout)
                    times[name].append(wall)
                    rss[name].append(peak)
                    cpu[name].append(used)
    base, this = statistics.median(times["baseline"]), statistics.median(times["this"])
    for name in checkouts:
        print(f"{name:8} collect wall (median of {runs}): {statistics.median(times[name]):.2f} s   "
              f"CPU (median): {statistics.median(cpu[name]):.2f} s   "
              f"peak RSS (median): {statistics.median(rss[name]):.0f} MB   runs: "
              + ", ".join(f"{t:.2f}" for t in times[name]))
    base_cpu, this_cpu = statistics.median(cpu["baseline"]), statistics.median(cpu["this"])
    print(f"difference: {this - base:+.2f} s wall ({this / base:.2f}x the baseline), "
          f"{this_cpu - base_cpu:+.2f} s CPU ({this_cpu / base_cpu:.2f}x)")


def _out(root: str, name: str) -> Path:
    out = Path(root) / f"out-{name}"
    out.mkdir(exist_ok=True)
    for bundle in out.iterdir():
        bundle.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout of akdiag to compare with, interleaved")
    args = parser.parse_args()
    if args.baseline:
        compare(args.baseline, args.runs)
        return
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
