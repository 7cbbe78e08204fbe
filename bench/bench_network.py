"""Cost of the network collector on this machine: its own work (interfaces, routes,
resolver files, counters, conntrack, and the resolution of the datastore host names
main.json gives), without the wait between its two counter samples (that wait runs in
its own thread beside the system collector's CPU sample and adds no CPU).

    python bench/bench_network.py [--runs 15]

main.json names its datastores by `localhost` (resolved through /etc/hosts), as hosts
that use names do; the figures are the median wall and CPU time of one collect().
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collector.catalog import load_catalog  # noqa: E402
from collector.collectors import network  # noqa: E402
from collector.context import CollectOptions, Context, Deadline  # noqa: E402


def _basedir(root: Path) -> Path:
    config = root / "config"
    config.mkdir(parents=True)
    (config / "main.json").write_text(json.dumps({
        "CONTROLDB_IP": "localhost", "CONTROLDB_PORT": 27017,
        "SSDB_HBSUPP_IP": "localhost", "SSDB_HBSUPP_PORT": 4420,
        "SSDB_NOTIFY_IP": "127.0.0.1", "SSDB_NOTIFY_PORT": 4430,
        "RABBITMQ_HOST": "localhost",
    }))
    return root


def one_run(basedir: Path, catalog) -> tuple:
    ctx = Context(basedir=basedir, basedir_source="bench", catalog=catalog, deadline=Deadline(10), writer=None,
                  options=CollectOptions(cpu_sample_seconds=0.0))
    wall, cpu = time.perf_counter(), time.process_time()
    data = network.collect(ctx)
    return time.perf_counter() - wall, time.process_time() - cpu, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    catalog = load_catalog()
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-network-") as root:
        basedir = _basedir(Path(root))
        one_run(basedir, catalog)  # warm: the first run imports the datastore modules
        runs = [one_run(basedir, catalog) for _ in range(args.runs)]
    data = runs[-1][2]
    print(f"network collector (median of {args.runs}): wall {1000 * statistics.median(r[0] for r in runs):.1f} ms, "
          f"CPU {1000 * statistics.median(r[1] for r in runs):.1f} ms   runs (ms): "
          + ", ".join(f"{1000 * r[0]:.1f}" for r in runs))
    print(f"{len(data['interfaces'])} interfaces, {len(data['routes'])} routes, "
          f"{len(data['resolution'])} names resolved, errors: {data['errors']}")


if __name__ == "__main__":
    main()
