"""Benchmark of `akdiag check` (and `collect`) on the reference host.

Reports, in one interleaved loop on the same host, the wall time of a whole `akdiag
check` (a child process, as a monitoring system runs it: interpreter start, imports,
quick collectors, analyzers, output) against akdiag's own start-up (`akdiag
--version`), and with --collect the wall time and peak RSS of a whole `akdiag collect`
(7z) and `akdiag report` of its bundle.  Targets: check <= 4x start-up and <= 2 s.

    python bench/bench_check.py [--runs 5] [--collect] [--source] [--code DIR] [--versus DIR] [-- extra check options]
    python bench/bench_check.py --templates          the summary's templates: compiled vs cached
    python bench/bench_check.py --many-logs 20000    summary.html's size on a host with that many logs

--code runs another checkout's collector package (e.g. the code before a change) on
the same reference host, for before/after figures.  Run it inside a private PID and
network namespace so that no other simulated platform mixes with this one.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from reference_host import build_reference_host  # noqa: E402
from collector.trust import trusted_temp_parent  # noqa: E402  (akd is run only from a folder others cannot write to)

SOURCE_ONLY = False  # --source: no compiled modules kept between runs
TARGET_SECONDS = 2.0
TARGET_STARTUP_RATIO = 4.0


PYCACHE = Path(tempfile.mkdtemp(prefix="akdiag-bench-pyc-", dir=trusted_temp_parent()))


def run_timed(argv, code: Path) -> tuple:
    """(wall seconds, peak RSS in MiB, exit code, stdout, CPU seconds) of one child process.  Its
    compiled modules (.pyc) are kept in a folder of this bench's (removed at its end),
    so that after the warm-up every run loads them as an installed akdiag does, even
    where the environment says not to write bytecode: otherwise each run would time
    the compiling of every module it imports, which `check` imports four times more
    of than `--version`.  --source times that case (a checkout that cannot write)."""
    env = dict(os.environ, PYTHONPATH=str(code))
    if not SOURCE_ONLY:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)  # it mirrors each checkout's own path inside
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(code))
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    return (elapsed, usage.ru_maxrss / 1024, child.returncode, out.decode("utf-8", "replace").strip(),
            usage.ru_utime + usage.ru_stime)


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


TEMPLATE_PROBE = ("import sys, time; from collector.report import page; started = time.perf_counter(); "
                  "page.environment().get_template(page.TEMPLATE); print(time.perf_counter() - started)")


def time_templates(code: Path, state: Path, runs: int) -> tuple:
    """(compile, load from the cache): the summary's templates made ready in a new process,
    without and with the compiled templates' cache (a first run fills it)."""
    def one(state_dir: str) -> float:
        env = dict(os.environ, PYTHONPATH=str(code), AKDIAG_STATE_DIR=state_dir)
        done = subprocess.run([sys.executable, "-c", TEMPLATE_PROBE], capture_output=True, text=True, env=env,
                              check=True)
        return float(done.stdout)

    unusable = str(state / "unusable")
    Path(unusable).mkdir(parents=True)
    os.chmod(unusable, 0o777)  # others may write there: never used as a cache (templatecache.py)
    one(str(state / "cache"))
    pairs = [(one(unusable + "/x"), one(str(state / "cache"))) for _ in range(runs)]
    return _median(p[0] for p in pairs), _median(p[1] for p in pairs)


def add_many_logs(host, count: int) -> None:
    """`count` small log files more, in logs/many/ (issue 14's 20,000-file host)."""
    from collector.simulate.host import sample_log_lines

    folder = host.basedir / "logs" / "many"
    folder.mkdir()
    for n in range(count):
        lines = sample_log_lines("api", 20, 1_790_000_000.0 + n, n)
        (folder / f"worker-{n:05d}.log").write_text("\n".join(lines) + "\n")


def page_of_collect(host, code: Path, output: Path) -> tuple:
    """(wall, peak RSS MiB, summary.html bytes) of a collect into a bundle folder."""
    argv = [sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
            "--catalog", str(host.catalog_file), "--output", str(output), "--quiet", "--format", "dir"]
    wall, rss, code_exit, out, _cpu = run_timed(argv, code)
    bundle = Path(out.splitlines()[-1]) if out else None
    if bundle is None or not (bundle / "summary.html").is_file():
        raise SystemExit(f"collect wrote no summary (exit {code_exit}): {out[-2000:]}")
    size = (bundle / "summary.html").stat().st_size
    shutil.rmtree(bundle)
    return wall, rss, size


def _loop(host, codes, runs: int, extra, output: Path, with_collect: bool) -> dict:
    """Every code's figures, measured in one interleaved loop: a busy moment of the
    machine weighs on each alike."""
    figures = {code: {"startup": [], "check": [], "collect": [], "report": []} for code in codes}
    for code in codes:  # warm the page cache: the first run reads every module
        time_check(host, extra, code)
        if with_collect:
            time_collect(host, code, output)
    for _ in range(runs):
        for code in codes:
            mine = figures[code]
            mine["startup"].append(run_timed([sys.executable, "-m", "collector", "--version"], code))
            mine["check"].append(time_check(host, extra, code))
            if with_collect:
                collect, report = time_collect(host, code, output)
                mine["collect"].append(collect)
                mine["report"].append(report)
    return figures


def _print(code: Path, mine: dict, runs: int) -> None:
    startup = _median(r[0] for r in mine["startup"])
    wall = _median(r[0] for r in mine["check"])
    print(f"== {code}")
    print(f"akdiag --version wall (median of {runs}): {startup:.3f} s")
    print(f"check wall (median of {runs}): {wall:.3f} s = {wall / startup:.1f}x start-up "
          f"(target <= {TARGET_STARTUP_RATIO:g}x, <= {TARGET_SECONDS:g} s); peak RSS "
          f"{_median(r[1] for r in mine['check']):.1f} MiB; runs: " + ", ".join(f"{r[0]:.2f}" for r in mine["check"]))
    cpu_startup = _median(r[4] for r in mine["startup"])
    cpu_check = _median(r[4] for r in mine["check"])
    print(f"CPU (user + system, median): --version {cpu_startup:.3f} s, check {cpu_check:.3f} s = "
          f"{cpu_check / cpu_startup:.1f}x (steadier than wall on a busy machine)")
    print(f"check exit code {mine['check'][-1][2]}: {mine['check'][-1][3][:160]}")
    if mine["collect"]:
        print(f"collect wall (median): {_median(r[0] for r in mine['collect']):.3f} s; peak RSS median "
              f"{_median(r[1] for r in mine['collect']):.1f} MiB, max {max(r[1] for r in mine['collect']):.1f} MiB; "
              "runs: " + ", ".join(f"{r[0]:.2f}s/{r[1]:.0f}M" for r in mine["collect"]))
        print(f"report wall (median): {_median(r[0] for r in mine['report']):.3f} s; peak RSS median "
              f"{_median(r[1] for r in mine['report']):.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--collect", action="store_true", help="also time collect and report (wall, peak RSS)")
    parser.add_argument("--code", type=Path, default=HERE.parent, help="the checkout whose collector package runs")
    parser.add_argument("--versus", type=Path, help="another checkout, run in the same interleaved loop")
    parser.add_argument("--many-logs", type=int, default=0,
                        help="add this many small log files and report summary.html's size after a collect")
    parser.add_argument("--templates", action="store_true", help="time the templates: compiled vs cached")
    parser.add_argument("--source", action="store_true",
                        help="keep no compiled modules between runs (times compiling every imported module too)")
    parser.add_argument("extra", nargs="*", help="options passed to akdiag check (after --)")
    args = parser.parse_args()
    global SOURCE_ONLY
    SOURCE_ONLY = args.source
    try:
        run(args)
    finally:
        shutil.rmtree(PYCACHE, ignore_errors=True)


def run(args) -> None:
    codes = [args.code.resolve()] + ([args.versus.resolve()] if args.versus else [])
    if args.templates:
        with tempfile.TemporaryDirectory(prefix="akdiag-bench-", dir=trusted_temp_parent()) as root:
            compiled, cached = time_templates(codes[0], Path(root), args.runs)
        print(f"summary templates ready in a new process (median of {args.runs}): compiled {compiled * 1000:.0f} ms, "
              f"from the cache {cached * 1000:.1f} ms")
        return
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-", dir=trusted_temp_parent()) as root:
        print(f"building the reference host ... (code: {', '.join(map(str, codes))})", file=sys.stderr)
        output = Path(root) / "out"
        output.mkdir(mode=0o700)
        os.environ["AKDIAG_STATE_DIR"] = str(Path(root) / "state")  # the compiled templates' cache, this run's own
        with build_reference_host(Path(root) / "host") as host:
            if args.many_logs:
                add_many_logs(host, args.many_logs)
                for code in codes:
                    wall, rss, size = page_of_collect(host, code, output)
                    print(f"== {code}: {args.many_logs} more log files: collect {wall:.1f} s, peak RSS {rss:.0f} MiB, "
                          f"summary.html {size / 1e6:.2f} MB (target <= 5 MB)")
                return
            figures = _loop(host, codes, args.runs, args.extra, output, args.collect)
    for code in codes:
        _print(code, figures[code], args.runs)


if __name__ == "__main__":
    main()
