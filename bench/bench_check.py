"""Benchmark of `akdiag check` (and `collect`) on the reference host.

Reports, in one interleaved loop on the same host, the wall time of a whole `akdiag
check` (a child process, as a monitoring system runs it: interpreter start, imports,
quick collectors, analyzers, output) against akdiag's own start-up (`akdiag
--version`), and with --collect the wall time and peak RSS of a whole `akdiag collect`
(7z) and `akdiag report` of its bundle.  Targets: check <= 4x start-up and <= 2 s.

    python bench/bench_check.py [--runs 5] [--collect] [--code DIR] [-- extra check options]

--code runs another checkout's collector package (e.g. the code before a change) on
the same reference host, for before/after figures.  Run it inside a private PID and
network namespace so that no other simulated platform mixes with this one.
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
TARGET_STARTUP_RATIO = 4.0


def run_timed(argv, code: Path) -> tuple:
    """(wall seconds, peak RSS in MiB, exit code, stdout) of one child process."""
    env = dict(os.environ, PYTHONPATH=str(code))
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(code))
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    return elapsed, usage.ru_maxrss / 1024, child.returncode, out.decode("utf-8", "replace").strip()


def check_argv(host, extra):
    return [sys.executable, "-m", "collector", "check", "--basedir", str(host.basedir),
            "--catalog", str(host.catalog_file), "--format", "nagios", *extra]


def time_check(host, extra, code: Path) -> tuple:
    done = run_timed(check_argv(host, extra), code)
    if done[2] not in (0, 1, 2):
        raise SystemExit(f"check could not check (exit {done[2]}): {done[3]}")
    return done


def time_collect(host, code: Path, output: Path) -> tuple:
    argv = [sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
            "--catalog", str(host.catalog_file), "--output", str(output), "--quiet"]
    done = run_timed(argv, code)
    bundles = sorted(output.glob("*.7z"))
    if not bundles:
        raise SystemExit(f"collect wrote no bundle (exit {done[2]}): {done[3][-2000:]}")
    report = run_timed([sys.executable, "-m", "collector", "report", str(bundles[-1]), "--output",
                        str(output / "report.html")], code)
    for path in output.iterdir():
        path.unlink()
    return done, report


def _median(values) -> float:
    return statistics.median(list(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--collect", action="store_true", help="also time collect and report (wall, peak RSS)")
    parser.add_argument("--code", type=Path, default=HERE.parent, help="the checkout whose collector package runs")
    parser.add_argument("extra", nargs="*", help="options passed to akdiag check (after --)")
    args = parser.parse_args()
    code = args.code.resolve()
    version_argv = [sys.executable, "-m", "collector", "--version"]
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-", dir=trusted_temp_parent()) as root:
        print(f"building the reference host ... (code: {code})", file=sys.stderr)
        output = Path(root) / "out"
        output.mkdir(mode=0o700)
        with build_reference_host(Path(root) / "host") as host:
            time_check(host, args.extra, code)  # warm the page cache: the first run reads every module
            run_timed(version_argv, code)
            if args.collect:
                time_collect(host, code, output)
            startups, checks, collects, reports = [], [], [], []
            for _ in range(args.runs):  # interleaved: a busy moment weighs on every figure alike
                startups.append(run_timed(version_argv, code))
                checks.append(time_check(host, args.extra, code))
                if args.collect:
                    collect, report = time_collect(host, code, output)
                    collects.append(collect)
                    reports.append(report)
    startup = _median(r[0] for r in startups)
    wall = _median(r[0] for r in checks)
    print(f"akdiag --version wall (median of {args.runs}): {startup:.3f} s")
    print(f"check wall (median of {args.runs}): {wall:.3f} s = {wall / startup:.1f}x start-up "
          f"(target <= {TARGET_STARTUP_RATIO:g}x, <= {TARGET_SECONDS:g} s); peak RSS "
          f"{_median(r[1] for r in checks):.1f} MiB; runs: " + ", ".join(f"{r[0]:.2f}" for r in checks))
    print(f"check exit code {checks[-1][2]}: {checks[-1][3][:300]}")
    if args.collect:
        print(f"collect wall (median): {_median(r[0] for r in collects):.3f} s; peak RSS median "
              f"{_median(r[1] for r in collects):.1f} MiB, max {max(r[1] for r in collects):.1f} MiB; runs: "
              + ", ".join(f"{r[0]:.2f}s/{r[1]:.0f}M" for r in collects))
        print(f"report wall (median): {_median(r[0] for r in reports):.3f} s; peak RSS median "
              f"{_median(r[1] for r in reports):.1f} MiB")


if __name__ == "__main__":
    main()
