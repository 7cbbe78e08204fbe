"""How fast a stop signal ends a run, and what an endless `akd` costs in memory.

Runs `akdiag collect` against a simulated host (with enough log text that packing takes a
moment), sends SIGHUP/SIGINT/SIGTERM/SIGQUIT at a random moment, and reports the time from
the signal to the exit (clean-up included) and what was left in the output folder; then
one run whose `akd` prints without end, with the run's peak RSS.  Run it in a private PID
namespace (the simulated host's processes are machine-wide by title):

    unshare --pid --fork --mount-proc python bench/bench_signals.py [--runs 20] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from collector.simulate import SimulatedHost  # noqa: E402

STOP = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


def _collect(host: SimulatedHost, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
                             "--output", str(out), "--quiet", *extra], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))


def signal_latency(host: SimulatedHost, root: Path, runs: int, rng: random.Random) -> None:
    took, left = [], 0
    for run in range(runs):
        out = root / f"out{run}"
        out.mkdir()
        proc = _collect(host, out, "--log-lines", "60000", "--log-bytes", "8000000")
        time.sleep(rng.uniform(0.5, 6.0))
        sent = time.monotonic()
        proc.send_signal(STOP[run % len(STOP)])
        proc.wait()
        took.append(time.monotonic() - sent)
        left += sum(1 for p in out.iterdir() if p.name.startswith(".akdiag-"))
    print(f"signal to exit over {runs} runs: median {statistics.median(took) * 1000:.0f} ms, "
          f"max {max(took) * 1000:.0f} ms; staging or .partial left: {left}")


def endless_akd(host: SimulatedHost, root: Path) -> None:
    akd = host.basedir / "akd"
    saved = akd.read_text()
    akd.write_text("#!/bin/sh\nexec yes 'AK:api 12345 running and printing a long line without end'\n")
    out = root / "endless"
    out.mkdir()
    started = time.monotonic()
    proc = _collect(host, out, "--format", "dir", "--timeout", "30")
    _pid, status, usage = os.wait4(proc.pid, 0)
    print(f"endless akd: peak RSS {usage.ru_maxrss / 1024:.0f} MB, exit {os.waitstatus_to_exitcode(status)}, "
          f"{time.monotonic() - started:.1f} s")
    akd.write_text(saved)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-signals-") as folder:
        root = Path(folder)
        with SimulatedHost(root / "host") as host:
            host.build().start(["api", "stataggregator"])
            rng = random.Random(args.seed)
            logs = host.basedir / "logs" / "big"
            logs.mkdir(parents=True, exist_ok=True)
            for index in range(6):  # incompressible lines: packing takes a moment
                (logs / f"big{index}.log").write_text("".join(f"{rng.getrandbits(256):064x}\n" for _ in range(60000)))
            signal_latency(host, root, args.runs, rng)
            endless_akd(host, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
