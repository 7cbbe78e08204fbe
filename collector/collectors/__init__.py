"""The registry of collectors.  Each collector is one module with a function that
takes a Context and returns plain data, declared here with what it produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from collector.bundle import schema
from collector.context import Context


@dataclass(frozen=True)
class CollectorSpec:
    name: str
    run: Callable[[Context], dict]
    output: str  # the bundle file the returned data is written to
    timeout: float  # seconds; never beyond the run's deadline
    quick: bool  # cheap enough for `akdiag check`
    description: str


def _registry() -> Dict[str, CollectorSpec]:
    from collector.collectors import akd, config, logs, pidfiles, ports, processes, system
    from collector.collectors import datastores, history, kernel, network, services

    specs = (
        CollectorSpec("system", system.collect, schema.SYSTEM, 10, True,
                      "host facts: OS, CPU, memory, filesystems, open files, TCP states"),
        CollectorSpec("processes", processes.collect, schema.PROCESSES, 20, True,
                      "every catalog process with PID file, port and resources; the host's process table"),
        CollectorSpec("pidfiles", pidfiles.collect, schema.PIDFILES, 5, True,
                      "every file in BASEDIR/pids with its state"),
        CollectorSpec("ports", ports.collect, schema.PORTS, 10, True,
                      "every listening socket with its process"),
        CollectorSpec("logs", logs.collect, schema.LOGS_INDEX, 60, False,
                      "every file under BASEDIR/logs, with tails of the live ones"),
        CollectorSpec("akd", akd.collect, schema.AKD, 15, True,
                      "output of BASEDIR/akd --processes"),
        CollectorSpec("config", config.collect, schema.CONFIG_INDEX, 10, True,
                      "main.json and json_consts overrides, secrets redacted"),
        CollectorSpec("datastores", datastores.collect, schema.DATASTORES, 30, True,
                      "MongoDB, SSDB, Kvrocks, RabbitMQ, ClickHouse and the HTTP status handlers, each bounded"),
        CollectorSpec("kernel", kernel.collect, schema.KERNEL, 15, True,
                      "the kernel's messages of the window (OOM kills, segfaults, I/O errors, conntrack, SYN floods)"),
        CollectorSpec("services", services.collect, schema.SERVICES, 30, False,
                      "systemd units of the platform and its datastores, their journals; core dumps"),
        CollectorSpec("network", network.collect, schema.NETWORK, 10, True,
                      "interfaces, routes, resolver, datastore host names resolved, TCP and conntrack counters"),
        CollectorSpec("history", history.collect, schema.HISTORY, 15, False,
                      "the recent history akdiag watch kept (process figures, queues, latency, disk), bounded"),
    )
    return {spec.name: spec for spec in specs}


def registry() -> Dict[str, CollectorSpec]:
    return _registry()


def names() -> Tuple[str, ...]:
    return tuple(_registry())
