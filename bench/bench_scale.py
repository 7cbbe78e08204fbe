"""Benchmark of `akdiag collect` and `akdiag check` on a large host, built for the run
inside private PID, network and mount namespaces (nothing of it is seen by, or left on,
the machine): the platform's AK: processes (collector.simulate), filler processes up to
500 then 5,000 processes, established loopback TCP connections (both ends on the host,
held by a few helper processes) up to 5,000 then 50,000 (10,000 then 100,000 sockets),
and last 20,000 files under BASEDIR/logs.

At each scale, in one interleaved loop (collect, floor, check, collect, floor, check, ...),
it measures the wall time and peak RSS of each command as a child process (wait4), and
prints the medians, their ratio to the floor, and each collector's duration against its
time limit (from the bundle's manifest).  The floor is `sos report -o process,logs,
networking,memory,filesys` when sos is installed, else the shell floor
`ps aux; ss -tanp; df; free`.

Targets (5,000 processes, 50,000 connections): collect <= 3 s and <= 120 MB, check <= 2 s
and <= 100 MB, no collector past half its limit; the cost linear in processes and
connections (the large scale about 10x the small one at most); 20,000 log files:
collect <= 4 s.

    python bench/bench_scale.py [--runs 3] [--skip-logs] [--baseline ../akdiag-before]
    python bench/bench_scale.py --logs-only --runs 5    # only the 20,000 log files
    python bench/bench_scale.py --reference --runs 7   # the reference host against sos

Run it as root (it creates the namespaces with unshare(1)); it re-executes itself inside
them.  Everything it starts dies with the namespace's first process, itself, and its
temporary folder is removed on the way out.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

INSIDE = "--inside-namespace"
SCALES = ((500, 5000), (5000, 50000))  # (processes, established connections)
LOG_FILES = 20000
CONNECTIONS_PER_HELPER = 5000
TARGETS = {"collect": (3.0, 120.0), "check": (2.0, 100.0)}  # seconds, MB at the large scale
LOGS_TARGET = 4.0
SHELL_FLOOR = "ps aux; ss -tanp; df; free"
SOS_FLOOR = "sos report --batch -o process,logs,networking,memory,filesys --tmp-dir {tmp}"

# A helper holding `count` established loopback connections (both ends): it says "ready"
# and holds them until its stdin closes (the bench ends) or it is killed.
_HELPER = r"""
import os, socket, sys
count = int(sys.argv[1])
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(4096)
held = []
for _ in range(count):
    client = socket.create_connection(server.getsockname())
    accepted, _peer = server.accept()
    held += [client.detach(), accepted.detach()]
print("ready", flush=True)
sys.stdin.read()
"""


# -- the namespace ---------------------------------------------------------------------------


def reexec_inside(argv: List[str]) -> int:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise SystemExit("bench_scale needs root and unshare(1): it builds the large host in private namespaces")
    command = ["unshare", "--pid", "--net", "--mount", "--fork", "--mount-proc",
               sys.executable, str(Path(__file__).resolve()), INSIDE, *argv]
    return subprocess.call(command)


def prepare_namespace() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # this network namespace's own range: 50,000 connections need more ephemeral ports
    Path("/proc/sys/net/ipv4/ip_local_port_range").write_text("1024 65000\n")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * CONNECTIONS_PER_HELPER + 100:
        raise SystemExit(f"a helper holds {2 * CONNECTIONS_PER_HELPER} sockets; the open files limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the helpers inherit it


def reap_orphans() -> None:
    """This process is the namespace's init: the processes orphaned by a killed group are its to reap."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _pids() -> List[str]:
    return [name for name in os.listdir("/proc") if name.isdigit()]


# -- the large host --------------------------------------------------------------------------


class Load:
    """Filler processes and connection helpers, each group in a session of its own."""

    def __init__(self) -> None:
        self.fillers: List[subprocess.Popen] = []
        self.helpers: List[subprocess.Popen] = []

    def processes_to(self, total: int) -> None:
        missing = total - len(_pids())
        if missing <= 0:
            return
        script = f"i=0; while [ $i -lt {missing} ]; do sleep 100000 & i=$((i+1)); done; echo ready; wait"
        filler = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, start_new_session=True, text=True)
        self.fillers.append(filler)
        assert filler.stdout.readline().strip() == "ready"
        while len(_pids()) < total:
            time.sleep(0.05)

    def connections_to(self, total: int) -> None:
        held = len(self.helpers) * CONNECTIONS_PER_HELPER
        started = []
        while held < total:
            count = min(CONNECTIONS_PER_HELPER, total - held)
            helper = subprocess.Popen([sys.executable, "-c", _HELPER, str(count)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True, text=True)
            started.append(helper)
            held += count
        for helper in started:
            if helper.stdout.readline().strip() != "ready":
                raise SystemExit("a connection helper could not open its connections")
        self.helpers += started

    def stop(self) -> None:
        for group in self.fillers + self.helpers:
            try:
                os.killpg(group.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for group in self.fillers + self.helpers:
            group.wait()
        self.fillers.clear()
        self.helpers.clear()
        time.sleep(0.2)
        reap_orphans()


def established() -> int:
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            count += sum(1 for line in handle if line.split()[3:4] == ["01"])
    return count


def write_log_files(logs: Path, count: int) -> None:
    """`count` small files: one in ten a live log (tailed), the others rotated ones
    (listed), spread over a year of modification times."""
    now = time.time()
    for index in range(count):
        live = index % 10 == 0
        path = logs / ("live" if live else "old") / f"app-{index:05d}.log{'' if live else '.1'}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"2026-11-30 10:00:00 INFO request served in 12 ms\n" * 4)
        stamp = now - (count - index) * 1500
        os.utime(path, (stamp, stamp))


# -- measuring -------------------------------------------------------------------------------


_WAITER = r"""
import os, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
elapsed = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.buffer.write(done.stderr[-2000:])
print(f"{elapsed} {usage.ru_maxrss / 1024.0} {done.returncode} {usage.ru_utime + usage.ru_stime}")
sys.stdout.buffer.write(done.stdout[-4000:])
"""


Sample = Tuple[float, float, float]  # wall seconds, peak RSS MB, CPU seconds (user + system)


def measure(argv: List[str], env: dict, ok=(0,), cwd: Path = HERE.parent) -> Tuple[float, float, str, float]:
    """(wall seconds, peak RSS MB, stdout, CPU seconds) of `argv`, run under a fresh waiter
    so that its RUSAGE_CHILDREN peak is this command's alone (a shell floor's largest
    program).  The CPU time (user + system, the command's and its children's) moves less
    with the machine's load than the wall does."""
    done = subprocess.run([sys.executable, "-c", _WAITER, *argv], capture_output=True, env=env,
                          cwd=str(cwd))  # `python -m` puts the working folder first on sys.path
    first, _, rest = done.stdout.decode().partition("\n")
    elapsed, peak, code, cpu = first.split()
    if int(code) not in ok:
        raise SystemExit(f"{' '.join(argv[:5])} ... failed (exit {code}): {done.stderr.decode()[-800:]}")
    return float(elapsed), float(peak), rest, float(cpu)


def sample(measured: tuple) -> Sample:
    return measured[0], measured[1], measured[3]


class Bench:
    def __init__(self, host, out: Path, runs: int, baseline: Optional[Path] = None):
        self.host = host
        self.out = out
        self.runs = runs
        self.baseline = baseline  # another checkout of akdiag, run in the same loop
        # compiled modules kept as an installed akdiag keeps them (bench_collect does the
        # same): with PYTHONDONTWRITEBYTECODE set, each run would time the compiler too
        self.env = dict(os.environ, PYTHONPATH=str(HERE.parent), PYTHONPYCACHEPREFIX=str(out.parent / "pycache"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.sos = shutil.which("sos")

    def _akdiag(self, args: List[str], checkout: Path, ok) -> Tuple[float, float, str, float]:
        env = dict(self.env, PYTHONPATH=str(checkout))
        return measure([sys.executable, "-m", "collector", *args, "--basedir", str(self.host.basedir),
                        "--catalog", str(self.host.catalog_file)], env, ok, cwd=checkout)

    def collect(self, checkout: Path = HERE.parent) -> Tuple[float, float, str, float]:
        return self._akdiag(["collect", "--output", str(self.out), "--quiet"], checkout, (0,))

    def check(self, checkout: Path = HERE.parent) -> Tuple[float, float, str, float]:
        return self._akdiag(["check", "--format", "nagios"], checkout, (0, 1, 2))

    def floor(self) -> Tuple[float, float, str, float]:
        if self.sos:
            tmp = tempfile.mkdtemp(dir=str(self.out))
            try:
                return measure(["sh", "-c", SOS_FLOOR.format(tmp=tmp) + " >/dev/null 2>&1"], self.env)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return measure(["sh", "-c", f"({SHELL_FLOOR}) >/dev/null 2>&1"], self.env)

    def loop(self) -> Tuple[Dict[str, List[Sample]], List[dict]]:
        """Interleaved: collect, floor, check (and the baseline's collect and check), again
        and again, after one warm-up round."""
        self.collect_and_clean()
        results: Dict[str, List[Sample]] = {name: [] for name in self.names()}
        manifests = []
        for _ in range(self.runs):
            wall, rss, manifest, cpu = self.collect_and_clean()
            results["collect"].append((wall, rss, cpu))
            manifests.append(manifest)
            results["floor"].append(sample(self.floor()))
            results["check"].append(sample(self.check()))
            if self.baseline:
                results["collect (baseline)"].append(sample(self.collect_and_clean(self.baseline)))
                results["check (baseline)"].append(sample(self.check(self.baseline)))
        return results, manifests

    def names(self) -> List[str]:
        return ["collect", "check"] + (["collect (baseline)", "check (baseline)"] if self.baseline else []) + ["floor"]

    def collect_and_clean(self, checkout: Path = HERE.parent) -> Tuple[float, float, dict, float]:
        from collector.bundle.reader import open_bundle

        wall, rss, stdout, cpu = self.collect(checkout)
        bundle = Path(stdout.strip().splitlines()[-1])
        with open_bundle(bundle) as reader:
            manifest = reader.manifest
        bundle.unlink()
        return wall, rss, manifest, cpu


# -- the report ------------------------------------------------------------------------------


def median(samples: List[Sample]) -> Sample:
    return tuple(statistics.median(s[i] for s in samples) for i in range(3))  # type: ignore[return-value]


def print_scale(title: str, results: Dict[str, List[Sample]], manifests: List[dict],
                floor_name: str, targets: Optional[dict] = None) -> Dict[str, Sample]:
    medians = {name: median(pairs) for name, pairs in results.items()}
    floor_wall, floor_rss, _floor_cpu = medians["floor"]
    print(f"\n## {title}")
    print("| command | wall s (median) | CPU s (median) | peak RSS MB | wall / floor | RSS / floor | target | "
          "runs (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in results:
        wall, rss, cpu = medians[name]
        target = (targets or {}).get(name)
        shown = f"<= {target[0]:g} s, <= {target[1]:g} MB" if target else ""
        label = floor_name if name == "floor" else f"akdiag {name}"
        runs = ", ".join(f"{w:.2f}" for w, _r, _c in results[name])
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {wall / floor_wall:.2f}x | {rss / floor_rss:.2f}x | "
              f"{shown} | {runs} |")
    print_limits(manifests)
    return medians


def print_limits(manifests: List[dict]) -> None:
    from collector.collectors import registry

    limits = {name: spec.timeout for name, spec in registry().items()}
    worst: Dict[str, float] = {}
    for manifest in manifests:
        for record in manifest.get("collectors", []):
            worst[record["name"]] = max(worst.get(record["name"], 0.0), record.get("duration") or 0.0)
    snapshot = [m.get("socket_snapshot") for m in manifests if m.get("socket_snapshot")]
    phase = statistics.median(max((r.get("duration") or 0.0) for r in m.get("collectors", [{}])) for m in manifests)
    print(f"\ncollectors' phase of collect (its slowest collector, median): {phase:.2f} s")
    print("\n| collector | slowest run s | limit s | share of limit | within half |")
    print("|---|---|---|---|---|")
    for name, duration in sorted(worst.items(), key=lambda kv: -kv[1] / limits.get(kv[0], 1)):
        limit = limits.get(name)
        share = duration / limit if limit else 0.0
        print(f"| {name} | {duration:.2f} | {limit:g} | {100 * share:.0f}% | {'yes' if share < 0.5 else 'NO'} |")
    if snapshot:
        last = snapshot[-1]
        print(f"\nsocket snapshot: read {last['reads']} time(s) per run, {last['sockets']} sockets in "
              f"{last['seconds']:.2f} s (by {last['source']}), {last['hidden_processes']} processes hidden; "
              f"listeners' processes: {last.get('owners_missed') or 'all found'}")


def main_inside(args) -> None:
    from collector.simulate import SimulatedHost
    from collector.trust import trusted_temp_parent

    prepare_namespace()
    load = Load()
    root = tempfile.mkdtemp(prefix="akdiag-scale-", dir=trusted_temp_parent())
    try:
        if args.reference:
            run_reference(Path(root), args)
            return
        host = SimulatedHost(Path(root) / "host", log_lines=200).build().start()
        out = Path(root) / "out"
        out.mkdir()
        bench = Bench(host, out, args.runs, Path(args.baseline).resolve() if args.baseline else None)
        floor_name = "sos report -o process,logs,networking,memory,filesys" if bench.sos else \
            f"shell floor `{SHELL_FLOOR}`"
        if not bench.sos:
            print("sos is not installed here (`which sos` finds nothing): the floor is the shell floor "
                  f"`{SHELL_FLOOR}`")
        print(f"{len(host.processes)} AK: processes of the simulated platform running")
        by_scale = {}
        try:
            for processes, connections in () if args.logs_only else SCALES:
                load.connections_to(connections)
                load.processes_to(processes)
                title = (f"{len(_pids())} processes, {established() // 2} established loopback connections "
                         f"({established()} sockets)")
                large = (processes, connections) == SCALES[-1]
                results, manifests = bench.loop()
                by_scale[(processes, connections)] = print_scale(title, results, manifests, floor_name,
                                                                 TARGETS if large else None)
            if by_scale:
                print_linearity(by_scale)
        finally:
            host.stop()
            load.stop()
        if not args.skip_logs:
            host.start()
            write_log_files(host.basedir / "logs", LOG_FILES)
            results, manifests = bench.loop()
            print_scale(f"{LOG_FILES} log files under BASEDIR/logs (one in ten live), {len(_pids())} processes",
                        results, manifests, floor_name, {"collect": (LOGS_TARGET, 150.0)})
            host.stop()
    finally:
        load.stop()
        shutil.rmtree(root, ignore_errors=True)


def run_reference(root: Path, args) -> None:
    """The reference host (bench/reference_host.py: every catalog process, 40 full logs, one
    of them 3 GB sparse) against the floor, in one interleaved loop: issue 14's first target
    is collect <= 0.3x `sos report -o process,logs,networking,memory,filesys` in wall time
    and <= 1.0x in peak RSS."""
    sys.path.insert(0, str(HERE))
    from reference_host import build_reference_host

    host = build_reference_host(root / "host")
    out = root / "out"
    out.mkdir()
    bench = Bench(host, out, args.runs, Path(args.baseline).resolve() if args.baseline else None)
    floor_name = "sos report -o process,logs,networking,memory,filesys" if bench.sos else \
        f"shell floor `{SHELL_FLOOR}` (sos is not installed)"
    try:
        results, manifests = bench.loop()
        print_scale(f"the reference host ({len(host.processes)} AK: processes, 40 logs); "
                    "target: collect <= 0.3x the floor's wall, <= 1.0x its RSS", results, manifests, floor_name, None)
    finally:
        host.stop()


def print_linearity(by_scale: Dict[tuple, Dict[str, Sample]]) -> None:
    small, large = (by_scale[s] for s in SCALES)
    print(f"\n## cost from {SCALES[0]} to {SCALES[1]} (processes, connections): 10x the host")
    print("| command | wall large / small | RSS large / small |")
    print("|---|---|---|")
    for name in large:
        print(f"| {name} | {large[name][0] / small[name][0]:.2f}x | {large[name][1] / small[name][1]:.2f}x |")


def main() -> None:
    if INSIDE in sys.argv:
        sys.argv.remove(INSIDE)
        inside = True
    else:
        inside = False
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="measured rounds per scale (after one warm-up)")
    parser.add_argument("--skip-logs", action="store_true", help="leave out the 20,000 log files")
    parser.add_argument("--logs-only", action="store_true",
                        help="only the 20,000 log files (not the process and connection scales)")
    parser.add_argument("--reference", action="store_true",
                        help="only the reference host (bench/reference_host.py) against the floor")
    parser.add_argument("--baseline", help="another checkout of akdiag (e.g. `git worktree add ../before main`): "
                                           "its collect and check run in the same loop")
    args = parser.parse_args()
    if args.logs_only and args.skip_logs:
        parser.error("--logs-only and --skip-logs leave nothing to measure")
    if not inside:
        raise SystemExit(reexec_inside(sys.argv[1:]))
    main_inside(args)


if __name__ == "__main__":
    main()
