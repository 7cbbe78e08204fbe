"""Benchmark of the datastore checks: wall time of the datastores collector alone and of
a whole collect (collector.run.collect against a SimulatedHost), with every datastore
answering, with nothing listening, and with every one of them hanging (a tarpit that
accepts and never replies on every configured port).

Answering: MongoDB through mockupdb, SSDB hb and notify through the tests' RESP2
stand-in, the services' status handlers and ClickHouse's HTTP interface through small
HTTP servers; RabbitMQ and Kvrocks (Redis) are the real servers of .ci/services.sh when
AKDIAG_TEST_RABBITMQ / AKDIAG_TEST_RABBITMQ_API / AKDIAG_TEST_REDIS are set, else
nothing listens on their ports.  Bound to meet: hanging <= answering + the checks' hard
stop (hard_limit(timeout): the probe, the client imports and twice the budget for a late answer).

    eval "$(.ci/services.sh start)"   # optional: real RabbitMQ and Redis
    python bench/bench_datastores.py [--runs 3] [--timeout 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from collector.catalog import load_catalog  # noqa: E402
from collector.context import CollectOptions  # noqa: E402
from collector.datastores.checks import hard_limit  # noqa: E402
from collector.run import CollectRequest, collect  # noqa: E402
from collector.simulate import SimulatedHost  # noqa: E402
from servers.hostile import Tarpit, refused_port  # noqa: E402
from servers.httpd import FakeHTTP, health_routes  # noqa: E402
from servers.mongo import MongoStandIn  # noqa: E402
from servers.ssdb import FakeSSDB  # noqa: E402

HEALTH = {"webcontrol": "webcontrol", "webadmin": "adminwebcontrol", "webapi": "api", "trkaction": "trkaction",
          "cookiesaver": "cookie_saver"}
SLOTS = ("mongo", "hb", "notify", "rabbit", "rabbit_api", "clickhouse", "clickhouse_http", "kvrocks")


def _env_address(name: str) -> Optional[Tuple[str, int]]:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


def configure(host: SimulatedHost, ports: Dict[str, int], health_ports: Dict[str, int],
              rabbit_host: str = "127.0.0.1") -> None:
    """main.json and the catalog override pointing every datastore at `ports`."""
    path = host.basedir / "config" / "main.json"
    config = json.loads(path.read_text())
    for key in ("CONTROLDB_USER", "CONTROLDB_PASS"):
        config.pop(key, None)  # mockupdb does not simulate SCRAM
    config.update(
        CONTROLDB_PORT=ports["mongo"], SSDB_HBSUPP_PORT=ports["hb"], SSDB_NOTIFY_PORT=ports["notify"],
        RABBITMQ_HOST=f"{rabbit_host}:{ports['rabbit']}", RABBITMQ_USER="guest", RABBITMQ_PASS="guest",
        RABBITMQ_VHOST="/",
        CLICKHOUSE_SYSTEM={"HOST": "127.0.0.1", "PORT": ports["clickhouse"], "USER": "default"},
        CAMP_DUPLICATESDB={"MODE": "single", "NODES": [{"HOST": "127.0.0.1", "PORT": ports["kvrocks"]}]},
        WEBCONTROL_PUBLIC_PORT=health_ports["webcontrol"],
    )
    config.pop("SSDB_HBSUPP_PASS", None)
    path.write_text(json.dumps(config, indent=2))
    moved = [f"  - {{binary: {binary}, port: {health_ports[service]}}}" for service, binary in HEALTH.items()]
    host.catalog_file.write_text(
        "processes:\n" + "\n".join(moved) + "\n"
        "components:\n"
        f"  - {{name: rabbitmq, management_port: {ports['rabbit_api']}}}\n"
        f"  - {{name: clickhouse, http_port: {ports['clickhouse_http']}}}\n")


def run_collect(host: SimulatedHost, out: Path, timeout: float, only=None) -> Tuple[float, dict]:
    out.mkdir(parents=True, exist_ok=True)
    request = CollectRequest(basedir=host.basedir, basedir_source="bench", catalog=load_catalog(host.catalog_file),
                             output_dir=out, fmt="dir", timeout=120,
                             options=CollectOptions(datastore_timeout=timeout, only=only))
    started = time.perf_counter()
    result = collect(request)
    elapsed = time.perf_counter() - started
    data = json.loads((result.path / "datastores.json").read_text())
    return elapsed, data


def answering(stack: contextlib.ExitStack) -> Tuple[Dict[str, int], Dict[str, int], Dict[str, bool]]:
    """Start the answering servers (closed with `stack`): (datastore ports, health ports, which are real)."""
    mongo = stack.enter_context(MongoStandIn())
    hb, notify = stack.enter_context(FakeSSDB()), stack.enter_context(FakeSSDB())
    clickhouse_http = stack.enter_context(FakeHTTP({"/": (200, "24.8.4.13\t3600\n")}))
    clickhouse_native = stack.enter_context(Tarpit())  # the native port is checked for TCP only
    rabbit, rabbit_api, kvrocks = (_env_address("AKDIAG_TEST_RABBITMQ"), _env_address("AKDIAG_TEST_RABBITMQ_API"),
                                   _env_address("AKDIAG_TEST_REDIS"))
    ports = {"mongo": mongo.port, "hb": hb.port, "notify": notify.port,
             "rabbit": rabbit[1] if rabbit else refused_port(),
             "rabbit_api": rabbit_api[1] if rabbit_api else refused_port(),
             "clickhouse": clickhouse_native.port, "clickhouse_http": clickhouse_http.port,
             "kvrocks": kvrocks[1] if kvrocks else refused_port()}
    health = {service: stack.enter_context(FakeHTTP(health_routes(service))).port for service in HEALTH}
    return ports, health, {"rabbitmq": bool(rabbit), "kvrocks": bool(kvrocks)}


def median_runs(host, root: Path, label: str, timeout: float, runs: int, only=None) -> Tuple[float, List[float], dict]:
    times, data = [], {}
    for index in range(runs):
        elapsed, data = run_collect(host, root / f"{label}-{index}", timeout, only)
        times.append(elapsed)
    return statistics.median(times), times, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=3.0, help="--datastore-timeout (default 3 s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-ds-") as tmp:
        root = Path(tmp)
        host = SimulatedHost(root / "host").build()
        # every process but those serving the status handlers (stand-ins answer on their ports)
        host.start([p.binary for p in host.catalog.processes if not p.retired_in and p.binary not in HEALTH.values()])
        try:
            scenarios = {}
            with contextlib.ExitStack() as stack:
                ports, health, real = answering(stack)
                configure(host, ports, health)
                for only, label in ((("datastores",), "alone"), (None, "whole")):
                    scenarios[("answering", label)] = median_runs(host, root, f"ok-{label}", args.timeout,
                                                                  args.runs, only)
            refused = {slot: refused_port() for slot in SLOTS}
            configure(host, refused, {service: refused_port() for service in HEALTH})
            for only, label in ((("datastores",), "alone"), (None, "whole")):
                scenarios[("nothing listening", label)] = median_runs(host, root, f"refused-{label}", args.timeout,
                                                                      args.runs, only)
            with contextlib.ExitStack() as stack:
                tarpits = {slot: stack.enter_context(Tarpit()).port for slot in SLOTS}
                configure(host, tarpits, {service: stack.enter_context(Tarpit()).port for service in HEALTH})
                for only, label in ((("datastores",), "alone"), (None, "whole")):
                    scenarios[("all hanging", label)] = median_runs(host, root, f"hang-{label}", args.timeout,
                                                                    args.runs, only)
        finally:
            host.stop()
    print(f"datastore timeout {args.timeout:g} s, {args.runs} runs each (median; every run listed)")
    print(f"real servers: RabbitMQ {'yes' if real['rabbitmq'] else 'no (port refused)'}, "
          f"Kvrocks/Redis {'yes' if real['kvrocks'] else 'no (port refused)'}")
    print(f"{'scenario':20} {'collect':10} {'median s':>9}  runs                 statuses")
    for (scenario, label), (median, times, data) in scenarios.items():
        counts = ", ".join(f"{k} {v}" for k, v in data.get("counts", {}).items())
        print(f"{scenario:20} {label:10} {median:9.2f}  {', '.join(f'{t:.2f}' for t in times):20} {counts}")
    for label in ("alone", "whole"):
        base = scenarios[("answering", label)][0]
        hang = scenarios[("all hanging", label)][0]
        bound = hard_limit(args.timeout)
        verdict = "ok" if hang <= base + bound else "OVER"
        print(f"{label}: all hanging - answering = {hang - base:+.2f} s (bound: the hard stop = "
              f"{bound:g} s) {verdict}")


if __name__ == "__main__":
    main()
