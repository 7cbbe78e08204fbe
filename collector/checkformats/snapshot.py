"""What the monitoring formats (Prometheus, Zabbix) report, read from the check's bundle
while it exists: each catalog process's figures, its port, each datastore, the queues the
vendor watches and each mount.  Plain data, never the live host; a value the bundle does
not hold stays None (a monitoring system must see "no data", not 0)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from collector.analyzers.common import parse_time
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.plain import as_dict, dicts, number

RUNNING, DOWN = "running", "down"  # "absent": not expected on this host (remote-capable, retired)
DATASTORE_UP = ("ok",)


def epoch_seconds(iso: Any) -> Optional[float]:
    """'2026-12-01T18:19:10Z' as seconds since the epoch, or None (a number is no time here)."""
    return parse_time(iso) if isinstance(iso, str) else None


def _total(values: List[Any]) -> Optional[float]:
    """The sum of the numbers, or None when any of them is missing (a partial sum would lie)."""
    numbers = [number(v) for v in values]
    if not numbers or any(n is None for n in numbers):
        return None
    return sum(numbers)


def _least(values: List[Any]) -> Optional[float]:
    numbers = [number(v) for v in values if number(v) is not None]
    return min(numbers) if numbers else None


def _connections(resources: List[dict]) -> Dict[str, int]:
    states: Dict[str, int] = {}
    for resource in resources:
        for state, count in as_dict(resource.get("connections")).items():
            if number(count) is not None:
                states[str(state)] = states.get(str(state), 0) + int(count)
    return states


def process_figures(record: dict) -> dict:
    """One catalog process (all its PIDs together: sums, the tightest file limit, the
    oldest start)."""
    resources = dicts(record.get("resources"))
    running = record.get("status") == RUNNING
    figures = {"name": str(record.get("name")), "up": 1 if running else 0, "pids": len(resources)}
    if running and resources:
        figures.update({
            "resident_memory_bytes": _total([r.get("rss") for r in resources]),
            "virtual_memory_bytes": _total([r.get("vms") for r in resources]),
            "cpu_seconds": _total([r.get("cpu_seconds") for r in resources]),
            "cpu_percent": _total([r.get("cpu_percent") for r in resources]),
            "open_fds": _total([r.get("open_files") for r in resources]),
            "max_fds": _least([r.get("open_files_limit") for r in resources]),
            "threads": _total([r.get("threads") for r in resources]),
            "start_time_seconds": _least([epoch_seconds(r.get("started_at")) for r in resources]),
            "connections": _connections(resources),
        })
    return figures


def _port(record: dict) -> Optional[dict]:
    port = as_dict(record.get("port"))
    if number(port.get("expected")) is None or port.get("state") in (None, "none"):
        return None
    return {"process": str(record.get("name")), "port": int(port["expected"]), "address": port.get("address"),
            "state": str(port.get("state")),
            "listening": 1 if port.get("state") in ("listening", "listening_owner_unknown") else 0}


def _seconds(ms: Any) -> Optional[float]:
    return None if number(ms) is None else round(number(ms) / 1000.0, 6)


def _datastore(endpoint: dict) -> dict:
    return {"name": str(endpoint.get("name")), "kind": str(endpoint.get("kind") or ""),
            "host": endpoint.get("host"), "port": endpoint.get("port"), "status": str(endpoint.get("status")),
            "up": 1 if endpoint.get("status") in DATASTORE_UP else 0,
            "latency_seconds": _seconds(endpoint.get("latency_ms")),
            "connect_seconds": _seconds(endpoint.get("connect_ms"))}


def _queues(endpoints: List[dict]) -> Dict[str, dict]:
    """RabbitMQ's watched queues, by name: messages and consumers (None when not counted)."""
    queues: Dict[str, dict] = {}
    for endpoint in endpoints:
        if endpoint.get("kind") != "rabbitmq":
            continue
        details = as_dict(endpoint.get("details"))
        for name, queue in as_dict(details.get("queues")).items():
            queue = as_dict(queue)
            if queue.get("exists"):
                queues[str(name)] = {"messages": number(queue.get("messages")),
                                     "consumers": number(queue.get("consumers"))}
        for family in as_dict(details.get("queue_families")).values():
            for queue in dicts(as_dict(family).get("queues")):
                if isinstance(queue.get("name"), str):
                    queues[queue["name"]] = {"messages": number(queue.get("messages")),
                                             "consumers": number(queue.get("consumers"))}
    return queues


def _mount(filesystem: dict) -> dict:
    return {"mountpoint": str(filesystem.get("mountpoint")), "fstype": str(filesystem.get("fstype") or ""),
            "size_bytes": number(filesystem.get("total")), "free_bytes": number(filesystem.get("free")),
            "files": number(filesystem.get("inodes_total")), "files_free": number(filesystem.get("inodes_free"))}


def snapshot(reader: BundleReader) -> dict:
    """Everything the monitoring formats print, from one bundle folder."""
    records = [r for r in dicts(as_dict(reader.json(schema.PROCESSES)).get("expected"))
               if r.get("status") in (RUNNING, DOWN)]
    endpoints = [e for e in dicts(as_dict(reader.json(schema.DATASTORES)).get("endpoints"))
                 if e.get("status") not in (None, "not_configured")]
    filesystems = dicts(as_dict(reader.json(schema.SYSTEM)).get("filesystems"))
    ports = [_port(r) for r in records]
    return {
        "processes": [process_figures(r) for r in records],
        "ports": [p for p in ports if p],
        "datastores": [_datastore(e) for e in endpoints],
        "queues": _queues(endpoints),
        "mounts": [_mount(f) for f in filesystems if f.get("mountpoint")],
    }
