"""Peak memory and the packing phase of `akdiag collect` on the reference host
(bench/reference_host.py: every catalog process, 40 full logs, one of them 3 GB sparse),
built for the run inside private PID, network and mount namespaces and removed after.

In one interleaved loop (this checkout, the baseline checkout, sos, again and again, after
one warm-up round of each) every command runs as a child whose peak RSS comes from wait4;
akdiag's `-v` lines are timed as they arrive, which gives its phases: the collectors (to
"analyzing"), the analysis (to "writing the summary"), the summary (to "packing"), and
the packing (to the exit).  Medians are printed, with the ratios to sos's
`sos report --batch -o process,logs,networking,memory,filesys` when sos is installed
(issue 14: collect <= 1.0x its peak RSS).

    python bench/bench_rss.py [--runs 7] [--baseline ../akdiag-main] [--no-sos]

Run it as root (unshare(1)); it re-executes itself inside the namespaces.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
INSIDE = "--inside-namespace"
SOS = "sos report --batch -o process,logs,networking,memory,filesys --tmp-dir {tmp}"
PHASES = (("collectors", "analyzing the bundle"), ("analysis", "writing the summary"), ("summary", "packing"))


def run_timed(argv: List[str], env: dict, cwd: Path) -> dict:
    """Wall, peak RSS (MB) and the arrival time of each stderr line of one command."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(cwd))
    lines: List[tuple] = []

    def read_stderr() -> None:
        for raw in child.stderr:
            lines.append((time.perf_counter() - started, raw.decode("utf-8", "replace")))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    stdout = child.stdout.read().decode()
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed ({child.returncode}): "
                         f"{''.join(text for _t, text in lines)[-800:]}")
    return {"wall": wall, "rss": usage.ru_maxrss / 1024.0, "lines": lines, "stdout": stdout}


def phases(result: dict) -> Dict[str, float]:
    """Seconds of each phase, from the `-v` lines' arrival."""
    marks = [0.0]
    for _name, words in PHASES:
        marks.append(next((t for t, text in result["lines"] if words in text), float("nan")))
    marks.append(result["wall"])
    names = ["collectors", "analysis", "summary", "packing"]
    return {name: marks[i + 1] - marks[i] for i, name in enumerate(names)}


class Loop:
    def __init__(self, host, root: Path, baseline: Optional[Path], sos: bool):
        self.host = host
        self.out = root / "out"
        self.out.mkdir()
        self.root = root
        self.checkouts = {"this": HERE.parent}
        if baseline:
            self.checkouts["baseline"] = baseline
        self.sos = sos and shutil.which("sos")

    def collect(self, name: str) -> dict:
        checkout = self.checkouts[name]
        # compiled modules kept, as an installed akdiag keeps them
        env = dict(os.environ, PYTHONPATH=str(checkout), PYTHONPYCACHEPREFIX=str(self.root / f"pycache-{name}"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        result = run_timed([sys.executable, "-m", "collector", "collect", "--basedir", str(self.host.basedir),
                            "--catalog", str(self.host.catalog_file), "--output", str(self.out), "-v"],
                           env, checkout)
        for made in self.out.iterdir():
            made.unlink()
        return result

    def floor(self) -> dict:
        tmp = tempfile.mkdtemp(dir=str(self.out))
        try:
            return run_timed(["sh", "-c", SOS.format(tmp=tmp) + " >/dev/null 2>&1"], dict(os.environ), self.out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def round(self) -> Dict[str, dict]:
        results = {name: self.collect(name) for name in self.checkouts}
        if self.sos:
            results["sos"] = self.floor()
        return results


def report(rounds: List[Dict[str, dict]]) -> None:
    names = list(rounds[0])
    print("| command | wall s | peak RSS MB | collectors s | analysis s | summary s | packing s | RSS runs (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    medians = {}
    for name in names:
        walls = [r[name]["wall"] for r in rounds]
        peaks = [r[name]["rss"] for r in rounds]
        medians[name] = (statistics.median(walls), statistics.median(peaks))
        cells = ["", "", "", ""]
        if name != "sos":
            split = [phases(r[name]) for r in rounds]
            cells = [f"{statistics.median(p[k] for p in split):.2f}" for k in ("collectors", "analysis", "summary",
                                                                              "packing")]
        label = "sos report" if name == "sos" else f"akdiag collect ({name})"
        print(f"| {label} | {medians[name][0]:.2f} | {medians[name][1]:.1f} | {' | '.join(cells)} | "
              f"{', '.join(f'{p:.0f}' for p in peaks)} |")
    if "baseline" in medians:
        print(f"\nthis / baseline: wall {medians['this'][0] / medians['baseline'][0]:.2f}x, "
              f"peak RSS {medians['this'][1] / medians['baseline'][1]:.2f}x")
        pairs = [r["this"]["rss"] - r["baseline"]["rss"] for r in rounds]
        print(f"peak RSS, this minus baseline, round by round (MB): {', '.join(f'{d:+.1f}' for d in pairs)}")
    if "sos" in medians:
        for name in (n for n in names if n != "sos"):
            print(f"{name} / sos: wall {medians[name][0] / medians['sos'][0]:.2f}x (target <= 0.3x), "
                  f"peak RSS {medians[name][1] / medians['sos'][1]:.2f}x (target <= 1.0x)")


def main_inside(args) -> None:
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    from reference_host import build_reference_host

    from collector.trust import trusted_temp_parent

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    root = Path(tempfile.mkdtemp(prefix="akdiag-rss-", dir=trusted_temp_parent()))
    try:
        host = build_reference_host(root / "host")
        try:
            loop = Loop(host, root, Path(args.baseline).resolve() if args.baseline else None, not args.no_sos)
            loop.round()  # warm-up: compiled modules, the page cache
            load_before = os.getloadavg()[0]
            rounds = []
            for number in range(args.runs):
                rounds.append(loop.round())
                print(f"round {number + 1}/{args.runs}: " + ", ".join(
                    f"{name} {r['wall']:.2f} s {r['rss']:.0f} MB" for name, r in rounds[-1].items()), flush=True)
            print(f"\n## the reference host ({len(host.processes)} AK: processes, 40 logs), {args.runs} rounds; "
                  f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
            report(rounds)
        finally:
            host.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    inside = INSIDE in sys.argv
    if inside:
        sys.argv.remove(INSIDE)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="measured rounds (after one warm-up round)")
    parser.add_argument("--baseline", help="another checkout of akdiag, run in the same loop")
    parser.add_argument("--no-sos", action="store_true", help="leave sos out of the loop")
    args = parser.parse_args()
    if inside:
        main_inside(args)
        return
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise SystemExit("bench_rss needs root and unshare(1): the reference host is built in private namespaces")
    raise SystemExit(subprocess.call(["unshare", "--pid", "--net", "--mount", "--fork", "--mount-proc",
                                      sys.executable, str(Path(__file__).resolve()), INSIDE, *sys.argv[1:]]))


if __name__ == "__main__":
    main()
