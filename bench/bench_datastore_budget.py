"""Benchmark of the datastore checks' budget on a host whose CPU is busy: healthy servers
(MongoDB through mockupdb, a real redis-server as Kvrocks and as a Redis, an HTTP status
handler), checked with a 1 s budget as `akdiag check` does, each run in a fresh
interpreter so that pymongo, redis and pika are imported cold.  Prints each endpoint's
status, when its client library was ready and how long the answer took from then.
Expected: every endpoint `ok`, however long the imports took.

    python bench/bench_datastore_budget.py [--runs 3] [--budget 1.0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_ONE_RUN = """
import json, sys, time
sys.path[:0] = [{root!r}, {tests!r}]
from servers.httpd import FakeHTTP, health_routes
from servers.mongo import MongoStandIn
from servers.redisd import RedisServer
with MongoStandIn() as mongo, RedisServer() as rds, FakeHTTP(health_routes("webapi")) as web:
    from collector.datastores.checks import check_endpoints
    from collector.datastores.common import Endpoint
    endpoints = [Endpoint("mongodb_control", "mongodb", "127.0.0.1", mongo.port, "bench",
                          options={{"auth_source": "admin"}}),
                 Endpoint("kvrocks", "kvrocks", "127.0.0.1", rds.port, "bench"),
                 Endpoint("redis", "redis", "127.0.0.1", rds.port, "bench"),
                 Endpoint("webapi", "http", "127.0.0.1", web.port, "bench", options={{"service": "webapi"}})]
    started = time.monotonic()
    records = check_endpoints(endpoints, {budget})
    print(json.dumps({{"elapsed": time.monotonic() - started, "records": records}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=1.0)
    args = parser.parse_args()
    bad = 0
    for run in range(1, args.runs + 1):
        code = _ONE_RUN.format(root=str(ROOT), tests=str(ROOT / "tests"), budget=args.budget)
        proc = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"run {run}: {result['elapsed']:.2f} s")
        for r in result["records"]:
            bad += r["status"] != "ok"
            print(f"  {r['name']:16} {r['status']:8} client ready at {r['client_ready_s']} s, "
                  f"answered in {r['answered_s']} s, late {r['late']}" + (f": {r['error']}" if r["error"] else ""))
    print("every healthy endpoint ok" if not bad else f"{bad} healthy endpoint(s) not ok")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
