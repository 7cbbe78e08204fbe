"""Peak RSS and time of akdiag under hostile inputs (issue: bounded in time and memory).

Each case runs the real command line as a child process, measured with wait4 (wall
time, peak RSS).  Run it as root in a private PID namespace so that the simulated
processes are the only ones (`unshare --pid --fork --mount-proc`).

    python bench/bench_hostile.py cmdlines [--count 1000] [--size 100000]
    python bench/bench_hostile.py pattern [--timeout 10]
    python bench/bench_hostile.py alias-bomb
    python bench/bench_hostile.py big-index [--entries 300000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collector.simulate import SimulatedHost  # noqa: E402


def run(argv, timeout: float = 600) -> tuple:
    """(exit code, wall seconds, peak RSS in MiB, stderr's end) of `akdiag argv`."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "collector", *argv], stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")[-400:]
    return proc.returncode, elapsed, usage.ru_maxrss / 1024, text


def cmdlines(args, root: Path) -> None:
    sim = SimulatedHost(root / "host").build()
    sleepers = [subprocess.Popen([f"long-{i}-" + "x" * args.size, "600"], executable="/bin/sleep")
                for i in range(args.count)]
    try:
        out = root / "out"
        out.mkdir()
        code, elapsed, peak, err = run(["collect", "--basedir", str(sim.basedir), "--output", str(out),
                                        "--format", "dir", "--quiet"])
        processes = next(out.iterdir()) / "processes.json"
        size = processes.stat().st_size / 2**20 if processes.exists() else -1
        print(f"cmdlines: {args.count} processes x {args.size} B argv: exit {code}, {elapsed:.1f} s, "
              f"peak RSS {peak:.0f} MiB, processes.json {size:.1f} MiB {err if code else ''}")
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait()


def pattern(args, root: Path) -> None:
    sim = SimulatedHost(root / "host").build().start()
    try:
        logs = sim.basedir / "logs"
        logs.mkdir(exist_ok=True)
        for i in range(20):  # lines on which (\w+\s?)+$ backtracks without end under `re`
            (logs / f"evil{i}.log").write_text(("word " * 2000 + "!\n") * 300 + "ok line\n")
        out = root / "out"
        out.mkdir()
        code, elapsed, peak, err = run(["collect", "--basedir", str(sim.basedir), "--output", str(out),
                                        "--format", "dir", "--timeout", str(args.timeout),
                                        "--redact-pattern", r"(\w+\s?)+$"])
        print(f"pattern: --timeout {args.timeout}: exit {code}, {elapsed:.1f} s "
              f"({elapsed - args.timeout:+.1f} s past the deadline), peak RSS {peak:.0f} MiB {err if code else ''}")
    finally:
        sim.stop()


def alias_bomb(args, root: Path) -> None:
    lines = ["thresholds:", "  a: &a [x,x,x,x,x,x,x,x,x]"]
    for i in range(8):
        prev, name = chr(97 + i), chr(98 + i)
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    catalog = root / "bomb.yaml"
    catalog.write_text("\n".join(lines) + "\n")
    code, elapsed, peak, err = run(["collect", "--basedir", str(root), "--catalog", str(catalog), "--output", str(root)])
    print(f"alias bomb ({catalog.stat().st_size} B): exit {code}, {elapsed:.1f} s, peak RSS {peak:.0f} MiB: "
          f"{err.strip().splitlines()[-1] if err.strip() else ''}")


def big_index(args, root: Path) -> None:
    bundle = root / "bundle"
    (bundle / "logs").mkdir(parents=True)
    (bundle / "manifest.json").write_text(json.dumps({"schema_version": 1, "collectors": []}))
    files = [{"path": f"/opt/ak/logs/l{i}.log", "size": i, "tail": {"bundle_path": f"logs/l{i}.log"}}
             for i in range(args.entries)]
    (bundle / "logs" / "index.json").write_text(json.dumps({"files": files}))
    code, elapsed, peak, err = run(["report", str(bundle), "--output", str(root / "r.summary.html")])
    print(f"big index ({args.entries} entries): exit {code}, {elapsed:.1f} s, peak RSS {peak:.0f} MiB "
          f"{err if code else ''}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=("cmdlines", "pattern", "alias-bomb", "big-index"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--entries", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        {"cmdlines": cmdlines, "pattern": pattern, "alias-bomb": alias_bomb,
         "big-index": big_index}[args.case](args, Path(tmp))


if __name__ == "__main__":
    main()
