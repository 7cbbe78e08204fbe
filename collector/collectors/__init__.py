"""The registry of collectors.  Each collector is one module with a function that
takes a Context and returns plain data, declared here with what it produces.

A collector's module is imported when the run selects it (`load`), not when the registry
is read: `akdiag check` runs the quick collectors only and need not import the others
(the logs', services' and history's modules and what they import)."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Tuple

from collector.bundle import schema
from collector.context import Context


@dataclass(frozen=True)
class CollectorSpec:
    """One collector: its name, its function, its bundle file, its time limit."""

    name: str
    run: Callable[[Context], dict]
    output: str  # the bundle file the returned data is written to
    timeout: float  # seconds; never beyond the run's deadline
    quick: bool  # cheap enough for `akdiag check`
    description: str


class _Deferred:
    """A collector's `collect`, its module imported on first use."""

    _lock = threading.Lock()  # imports from several threads at once could deadlock on a cycle

    def __init__(self, module: str):
        self.module = f"collector.collectors.{module}"

    def load(self) -> Callable[[Context], dict]:
        with self._lock:
            return importlib.import_module(self.module).collect  # type: ignore[no-any-return]

    def __call__(self, ctx: Context) -> dict:
        return self.load()(ctx)

    def __repr__(self) -> str:
        return f"{self.module}.collect"


def _registry() -> Dict[str, CollectorSpec]:
    akd, config, datastores, history, kernel, logs, network, pidfiles, ports, processes, services, system = (
        _Deferred(name) for name in ("akd", "config", "datastores", "history", "kernel", "logs", "network",
                                     "pidfiles", "ports", "processes", "services", "system"))
    specs = (
        CollectorSpec("system", system, schema.SYSTEM, 10, True,
                      "host facts: OS, CPU, memory, filesystems, open files, TCP states"),
        CollectorSpec("processes", processes, schema.PROCESSES, 20, True,
                      "every catalog process with PID file, port and resources; the host's process table"),
        CollectorSpec("pidfiles", pidfiles, schema.PIDFILES, 5, True,
                      "every file in BASEDIR/pids with its state"),
        CollectorSpec("ports", ports, schema.PORTS, 10, True,
                      "every listening socket with its process"),
        CollectorSpec("logs", logs, schema.LOGS_INDEX, 60, False,
                      "every file under BASEDIR/logs, with tails of the live ones"),
        CollectorSpec("akd", akd, schema.AKD, 15, True,
                      "output of BASEDIR/akd --processes"),
        CollectorSpec("config", config, schema.CONFIG_INDEX, 10, True,
                      "main.json and json_consts overrides, secrets redacted"),
        CollectorSpec("datastores", datastores, schema.DATASTORES, 30, True,
                      "MongoDB, SSDB, Kvrocks, RabbitMQ, ClickHouse and the HTTP status handlers, each bounded"),
        CollectorSpec("kernel", kernel, schema.KERNEL, 15, True,
                      "the kernel's messages of the window (OOM kills, segfaults, I/O errors, conntrack, SYN floods)"),
        CollectorSpec("services", services, schema.SERVICES, 30, False,
                      "systemd units of the platform and its datastores, their journals; core dumps"),
        CollectorSpec("network", network, schema.NETWORK, 10, True,
                      "interfaces, routes, resolver, datastore host names resolved, TCP and conntrack counters"),
        CollectorSpec("history", history, schema.HISTORY, 15, False,
                      "the recent history akdiag watch kept (process figures, queues, latency, disk), bounded"),
    )
    return {spec.name: spec for spec in specs}


def registry() -> Dict[str, CollectorSpec]:
    return _registry()


def load(specs: Iterable[CollectorSpec]) -> List[CollectorSpec]:
    """`specs`, their modules imported now, in this thread: before the run starts each
    collector in a thread of its own (imports from several threads at once can deadlock)."""
    specs = list(specs)
    for spec in specs:
        if isinstance(spec.run, _Deferred):
            spec.run.load()
    return specs


def names() -> Tuple[str, ...]:
    return tuple(_registry())
