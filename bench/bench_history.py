"""Benchmark of a bundle's history: a ring as `akdiag watch` leaves it after a day at one
sample every 30 s on a host of the catalog's size (33 processes, the watched queues, the
datastores, 8 mounts), then what a collection adds: the time to read the ring and cut it
to history.json, history.json's size (plain and gzip), and summary.html's size and render
time with and without the History section.

    python bench/bench_history.py [--hours 24] [--interval 30] [--processes 33]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def snapshot(i: int, processes: int) -> dict:
    return {
        "processes": [{"name": f"proc{n:02d}", "up": 1, "pids": 1, "resident_memory_bytes": 2e8 + n * 1e7 + i * 1e3,
                       "cpu_seconds": i * 0.3 * (n % 5), "open_fds": 40 + n, "max_fds": 65536, "threads": 12,
                       "start_time_seconds": 1.7e9, "connections": {"ESTABLISHED": 5, "LISTEN": 1}}
                      for n in range(processes)],
        "queues": {name: {"messages": float(i % 300), "consumers": 1.0}
                   for name in ("oxy_triggers", "oxy_triggers_prior", "trk_actions", "trk_pixel", "akmta_1")},
        "datastores": [{"name": name, "up": 1, "latency_seconds": 0.002}
                       for name in ("mongodb", "rabbitmq", "ssdb-4420", "clickhouse", "kvrocks", "redis")],
        "mounts": [{"mountpoint": f"/m{n}", "free_bytes": 5e10 - i * 1e5, "files_free": 10 ** 6} for n in range(8)],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=33)
    args = parser.parse_args()
    private = Path.home() / ".cache"  # the ring refuses a folder others can write to, such as /tmp
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=str(private)) as work:
        os.environ["AKDIAG_STATE_DIR"] = str(Path(work) / "state")
        from collector import report
        from collector.bundle import schema
        from collector.bundle.reader import BundleReader
        from collector.bundle.writer import BundleWriter
        from collector.history import HistoryRing, history_folder, make_sample
        from collector.history_file import read_history
        from collector.redact import Scrubber

        basedir = Path(work) / "basedir"
        basedir.mkdir()
        ring = HistoryRing(history_folder(basedir), basedir=basedir)
        now = time.time()
        count = int(args.hours * 3600 / args.interval)
        for i in range(count):
            ring.append(make_sample(snapshot(i, args.processes), [], "OK", when=now - (count - i) * args.interval))
        started = time.perf_counter()
        history = read_history(basedir)
        cut = time.perf_counter() - started
        bundle = Path(work) / "bundle"
        writer = BundleWriter(bundle, Scrubber.for_bundle(()))
        writer.write_json(schema.MANIFEST, {"schema_version": 1, "collectors": []})
        started = time.perf_counter()
        writer.write_json(schema.HISTORY, history)
        written = time.perf_counter() - started
        raw = (bundle / schema.HISTORY).read_bytes()
        reader = BundleReader(bundle)
        report.render_bundle(reader)  # templates compiled once
        started = time.perf_counter()
        with_history = report.render_bundle(reader)
        render = time.perf_counter() - started
        (bundle / schema.HISTORY).unlink()
        without = report.render_bundle(reader)
        print(f"ring: {count} samples, {ring.disk_bytes() / 1e6:.1f} MB on disk")
        print(f"read + cut: {cut:.2f} s; written through the scrubbing writer: {written:.2f} s")
        print(f"history.json: {history['samples_kept']} of {history['samples_total']} samples, "
              f"{len(raw) / 1e6:.2f} MB, gzip {len(gzip.compress(raw)) / 1e3:.0f} KB")
        print(f"summary.html: {len(with_history) / 1e3:.0f} KB with the History section, "
              f"{len(without) / 1e3:.0f} KB without (+{(len(with_history) - len(without)) / 1e3:.0f} KB); "
              f"render {render:.2f} s")
        print(json.dumps({"bounds": history["bounds"], "window_hours": round(history["window"]["seconds"] / 3600, 2)}))


if __name__ == "__main__":
    main()
