"""Soak benchmark of `akdiag watch` (issue 17 part 5): its memory stays flat and a sample
costs under 0.3 s of CPU on the reference host.

One process runs watch's own loop step (collector.watch.Watch.step: the light sample,
the history ring's append, the triggers) --samples times back to back, on the reference
host (bench/reference_host.py), with the default trigger (a new critical finding) and no
room for bundles (a trigger that fires is refused, so only the sampling path is measured).
It reports:

  - VmRSS (/proc/self/status) after the first sample, at the middle and at the end, and
    the growth per 1,000 samples over the second half (the first half includes warm-up);
  - CPU seconds per sample: this process's user+system time (every thread) plus its
    children's (the `akd --processes` run of each sample), divided by the samples;
  - with --profile N, the top functions of N more samples (cProfile, cumulative);
  - with --stops N, N real `akdiag watch` processes (interval 1 s) each sent SIGTERM at a
    random moment, every other one while it takes a bundle: the seconds until each ended.

    python bench/bench_watch.py [--samples 1000] [--profile 20] [--stops 10]

Run it inside a private PID and network namespace so that no other simulated platform
mixes with this one, e.g. `unshare --pid --net --mount --fork --mount-proc`."""

from __future__ import annotations

import argparse
import os
import random
import resource
import signal
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
from collector.trust import trusted_temp_parent  # noqa: E402

TARGET_CPU_SECONDS = 0.3


def vm_rss_kib() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def make_watch(host, work: Path):
    os.environ["AKDIAG_STATE_DIR"] = str(work / "state")
    from collector.catalog import load_catalog
    from collector.watch import Watch, WatchSettings, parse_triggers, prepare

    settings = WatchSettings(basedir=host.basedir, basedir_source="bench", catalog=load_catalog(host.catalog_file),
                             output_dir=work / "bundles", triggers=parse_triggers(()), interval=1.0,
                             min_free=1 << 60)
    prepare(settings)
    return Watch(settings, say=lambda line: print(f"  watch: {line[:160]}", file=sys.stderr))


def soak(watch, samples: int) -> dict:
    from collector.heap import limit_arenas

    limit_arenas()
    watch.step()  # imports and caches: the first sample is not the steady state
    rss = {"start": vm_rss_kib()}
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    for number in range(1, samples + 1):
        watch.step()
        if number == samples // 2:
            rss["middle"] = vm_rss_kib()
    rss["end"] = vm_rss_kib()
    cpu, wall = cpu_seconds() - cpu_before, time.perf_counter() - wall_before
    return {"rss": rss, "cpu_per_sample": cpu / samples, "wall_per_sample": wall / samples,
            "growth_per_1000": (rss["end"] - rss["middle"]) * 1000.0 / (samples - samples // 2),
            "samples_kept": watch.samples, "ring_bytes": watch.ring.disk_bytes()}


def profile(watch, samples: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(samples):
        watch.step()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def stop_latency(host, work: Path, runs: int) -> list:
    """Seconds from SIGTERM to the end of a real `akdiag watch`, `runs` times."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), AKDIAG_STATE_DIR=str(work / "stop-state"))
    took = []
    for run in range(runs):
        trigger = ["--on", "memory:api>1", "--min-free", "0"] if run % 2 else []
        argv = [sys.executable, "-m", "collector", "watch", "--basedir", str(host.basedir), "--catalog",
                str(host.catalog_file), "--output", str(work / "stop-bundles"), "--interval", "1s", *trigger]
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        child.stderr.readline()  # "watching ...": the loop has started
        if trigger:
            while "taking a bundle" not in child.stderr.readline():
                pass
        time.sleep(random.uniform(0.1, 1.5))
        started = time.perf_counter()
        child.send_signal(signal.SIGTERM)
        child.communicate(60)
        took.append(time.perf_counter() - started)
        if child.returncode != 128 + signal.SIGTERM:
            raise SystemExit(f"watch ended with {child.returncode}, not 143")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--profile", type=int, default=0, help="profile this many more samples")
    parser.add_argument("--stops", type=int, default=0, help="SIGTERM this many real watch processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=trusted_temp_parent()) as folder:
        work = Path(folder)
        host = build_reference_host(work / "ref")
        try:
            watch = make_watch(host, work)
            figures = soak(watch, args.samples)
            if args.profile:
                profile(watch, args.profile)
            stops = stop_latency(host, work, args.stops) if args.stops else []
        finally:
            host.stop()
    rss = figures["rss"]
    print(f"samples: {args.samples} (+1 warm-up) in one process; ring {figures['ring_bytes']} bytes on disk")
    print(f"VmRSS KiB: start {rss['start']}, middle {rss['middle']}, end {rss['end']}; "
          f"growth over the second half: {figures['growth_per_1000']:+.0f} KiB per 1,000 samples")
    verdict = "OK" if figures["cpu_per_sample"] < TARGET_CPU_SECONDS else "OVER"
    print(f"CPU per sample: {figures['cpu_per_sample']:.3f} s (target < {TARGET_CPU_SECONDS} s: {verdict}); "
          f"wall per sample: {figures['wall_per_sample']:.3f} s")
    if stops:
        print(f"SIGTERM to exit over {len(stops)} runs (half of them inside a bundle): median "
              f"{statistics.median(stops):.2f} s, max {max(stops):.2f} s")


if __name__ == "__main__":
    main()
