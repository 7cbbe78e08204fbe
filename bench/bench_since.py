"""Benchmark of `collect --since 24h` over ~2 GB of rotated logs: the logs collector
must stay within --log-total-bytes whatever the history's size, and within its time.

Eight platform logs with a week of history each, rotated every 10 hours: the live file
and .1 plain, every older part gzip-compressed (.2.gz ... .16.gz), ~2 GB once
decompressed, generated in a temporary folder (~0.5 GB on disk) and removed afterwards.
The window (24 h) starts inside each log's .2.gz.  Measured in a child process (its
peak memory is its own): the logs collector alone, bundle written and scrubbed, once
with the default --log-total-bytes (100 MiB: windows cut, newest kept) and once with
1 GiB (whole windows, the gzip parts decompressed).  The datastores' log folders of the
machine running the bench are left out (an empty host root).

    python bench/bench_since.py [--gigabytes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LOGS = ("api", "procworkflow", "proctrigger", "webcontrol", "procactions", "trkaction", "proctask", "akmtad")
DAYS = 7
ROTATE_HOURS = 10


def _lines(name: str, start: float, end: float, step: float) -> bytes:
    out, n, moment = [], 0, start
    while moment < end:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
        out.append(f"{stamp}.{int(moment * 1000) % 1000:03d}Z INFO [{name}] request {n} served in {n % 97} ms "
                   f"account={n % 113} campaign={n % 1009} queue=oxy_triggers\n")
        n += 1
        moment += step
    return "".join(out).encode()


def generate(logs_dir: Path, gigabytes: float) -> dict:
    now = time.time()
    hours = DAYS * 24
    line_bytes = 120
    step = (hours * 3600 * len(LOGS) * line_bytes) / (gigabytes * 1e9)  # seconds between two lines of one log
    sizes = {"decompressed": 0, "on_disk": 0, "files": 0}
    for name in LOGS:
        parts = hours // ROTATE_HOURS + 1
        for number in range(parts):
            end = now - number * ROTATE_HOURS * 3600
            data = _lines(name, end - ROTATE_HOURS * 3600, end, step)
            suffix = "" if number == 0 else f".{number}"
            path = logs_dir / f"{name}.log{suffix}"
            if number >= 2:
                path = path.with_name(path.name + ".gz")
                compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                path.write_bytes(compressor.compress(data) + compressor.flush())
            else:
                path.write_bytes(data)
            os.utime(path, (end, end))
            sizes["decompressed"] += len(data)
            sizes["on_disk"] += path.stat().st_size
            sizes["files"] += 1
    return sizes


def measure(basedir: str, since: str, total_bytes: int) -> dict:
    from collector import datastore_logs
    from collector.bundle.writer import BundleWriter
    from collector.catalog import load_catalog
    from collector.collectors import logs
    from collector.context import CollectOptions, Context, Deadline
    from collector.logtime import parse_since
    from collector.redact import Scrubber

    with tempfile.TemporaryDirectory(prefix="akdiag-bench-bundle-") as bundle, \
            tempfile.TemporaryDirectory(prefix="akdiag-bench-hostroot-") as hostroot:
        datastore_logs.HOST_ROOT = hostroot
        writer = BundleWriter(Path(bundle), Scrubber())
        options = CollectOptions(since=parse_since(since), log_total_bytes=total_bytes)
        ctx = Context(basedir=Path(basedir), basedir_source="bench", catalog=load_catalog(), deadline=Deadline(300),
                      writer=writer.for_collector("logs"), options=options)
        started = time.perf_counter()
        index = logs.collect(ctx)
        elapsed = time.perf_counter() - started
        writer.close()
        tails = [e["tail"] for e in index["files"] if e.get("tail")]
        on_disk = sum(p.stat().st_size for p in Path(bundle).rglob("*") if p.is_file())
    return {"seconds": round(elapsed, 2), "tail_bytes": index["totals"]["tail_bytes"], "bundle_bytes": on_disk,
            "parts_read": len(tails), "bytes_read": sum(t.get("bytes_read", 0) for t in tails),
            "decompressed": sum(t.get("decompressed_bytes", 0) for t in tails),
            "cut": sum(1 for e in index["files"] if (e.get("window") or {}).get("cut")),
            "errors": index["errors"], "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--measure", nargs=3, metavar=("BASEDIR", "SINCE", "TOTAL_BYTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], int(args.measure[2]))))
        return
    root = Path(tempfile.mkdtemp(prefix="akdiag-bench-since-"))
    try:
        logs_dir = root / "akd" / "logs"
        logs_dir.mkdir(parents=True)
        started = time.perf_counter()
        sizes = generate(logs_dir, args.gigabytes)
        print(f"generated {sizes['files']} log parts: {sizes['decompressed'] / 1e9:.2f} GB of lines "
              f"({sizes['on_disk'] / 1e9:.2f} GB on disk) in {time.perf_counter() - started:.0f} s")
        env = dict(os.environ, PYTHONPATH=str(HERE.parent))
        for total in (100 * 1024 ** 2, 1024 ** 3):
            done = subprocess.run([sys.executable, __file__, "--measure", str(root / "akd"), "24h", str(total)],
                                  capture_output=True, text=True, env=env, timeout=900)
            if done.returncode:
                raise SystemExit(done.stderr)
            result = json.loads(done.stdout)
            within = "within" if result["tail_bytes"] <= total else "OVER"
            print(f"--since 24h --log-total-bytes {total}: {result['seconds']} s, {result['tail_bytes']} bytes of "
                  f"windows ({within} the bound), {result['parts_read']} parts read, {result['bytes_read']} bytes "
                  f"read from files ({result['bytes_read'] / max(1, sizes['on_disk']):.1%} of what is on disk), "
                  f"{result['decompressed']} bytes decompressed, {result['cut']} windows cut, "
                  f"peak RSS {result['max_rss_mb']} MB, errors: {result['errors'] or 'none'}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
