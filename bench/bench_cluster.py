"""Benchmark of `akdiag collect --hosts`: wall time of a cluster run over 1, 3 and 6
simulated hosts, each a real sshd on loopback in its own PID namespace (as the tests
make them: tests/sshd_lab.py) running 13 simulated platform processes.  Two modes:
`fresh`, the default (the single file copied to and unpacked on every host in every run,
everything removed after), and `kept` (--keep-remote-copy: copied and unpacked once,
kept in each host's ~/.cache/akdiag).  All hosts share this machine's CPUs, so the
hosts' own work (unpacking, collecting) competes here as it never does on real hosts.

Target: 6 hosts within 1.5 times one host's time (the hosts run in parallel).
Needs root, openssh-server and util-linux's unshare.

    python bench/bench_cluster.py [--runs 3] [--hosts 1,3,6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from sshd_lab import SshLab, build_single_file, lab_missing  # noqa: E402

PROCESSES = ["procactions", "proceventgen", "prochook", "procpixel", "procintegras", "procleadsaver", "procpush",
             "procresume", "procsenderev", "procsmsev", "proctrigger", "procwebver", "stataggregator"]  # no ports


def run_cluster(lab: SshLab, names, pyz: Path, out: Path, keep: bool) -> tuple:
    hosts = lab.hosts_file([{"name": name} for name in names])
    argv = [sys.executable, "-m", "collector", "collect", "--hosts", str(hosts), "--ssh-config", str(lab.ssh_config),
            "--akdiag-file", str(pyz), "--output", str(out), "--datastore-timeout", "0.5", "--log-lines", "200",
            "--quiet"] + (["--keep-remote-copy"] if keep else [])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"cluster collect failed: {done.stderr}")
    archive = Path(done.stdout.strip().splitlines()[-1])
    listing = subprocess.run(["7z", "x", "-so", str(archive), f"{archive.name[:-3]}/cluster.json"],
                             capture_output=True, stdin=subprocess.DEVNULL)
    manifest = json.loads(listing.stdout)
    statuses = [h["status"] for h in manifest["hosts"]]
    if statuses != ["ok"] * len(names):
        raise SystemExit(f"not every host was collected: {statuses}")
    durations = [h["duration"] for h in manifest["hosts"]]
    collects = [s["duration"] for h in manifest["hosts"] for s in h["steps"] if s["name"] == "collect"]
    archive.unlink()
    return elapsed, durations, max(collects)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", default="1,3,6", help="host counts to time, comma-separated")
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    missing = lab_missing()
    if missing:
        print(f"bench_cluster: cannot make SSH hosts here: {missing}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-cluster-") as folder:
        root = Path(folder)
        pyz = build_single_file(root / "akdiag.pyz")
        lab = SshLab(root / "lab")
        try:
            names = [f"h{i + 1}" for i in range(max(counts))]
            started = time.perf_counter()
            for name in names:
                lab.add_host(name, start=PROCESSES)
            print(f"{len(names)} simulated hosts with {len(PROCESSES)} processes each, started in "
                  f"{time.perf_counter() - started:.1f} s; single file {pyz.stat().st_size / 1024 / 1024:.1f} MiB; "
                  f"{os.cpu_count()} CPUs")
            out = root / "out"
            out.mkdir()
            run_cluster(lab, names[:1], pyz, out, keep=False)  # warm-up (page cache, pyc of the local akdiag)
            run_cluster(lab, names, pyz, out, keep=True)  # `kept`: every host has its copy from now on
            medians, overhead = {}, {}
            for mode in ("fresh", "kept"):
                for count in counts:
                    times, host_times, overheads = [], [], []
                    for _ in range(args.runs):
                        elapsed, durations, collect = run_cluster(lab, names[:count], pyz, out, keep=mode == "kept")
                        times.append(elapsed)
                        host_times += durations
                        overheads.append(elapsed - collect)
                    medians[mode, count] = statistics.median(times)
                    overhead[mode, count] = statistics.median(overheads)
                    print(f"{mode:<5} {count} host{'s' if count > 1 else ' '}: wall {medians[mode, count]:.2f} s "
                          f"(median of {args.runs}: {', '.join(f'{t:.2f}' for t in times)}); per host "
                          f"{min(host_times):.2f}-{max(host_times):.2f} s; akdiag's own share (wall minus the "
                          f"slowest host's remote collect) {overhead[mode, count]:.2f} s")
        finally:
            lab.stop()
    if 1 in counts and max(counts) > 1:
        for mode in ("fresh", "kept"):
            ratio = medians[mode, max(counts)] / medians[mode, 1]
            verdict = "met" if ratio <= 1.5 else "missed"
            own = overhead[mode, max(counts)] / overhead[mode, 1]
            print(f"{mode}: {max(counts)} hosts / 1 host = {ratio:.2f} (target 1.5: {verdict}); "
                  f"without the hosts' own collect time {own:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
