"""Zabbix: low-level discovery and the values its item prototypes read.

`--format zabbix-discovery` prints one LLD list (Zabbix 4.2+: a JSON array of objects)
of every kind together, each object with `{#KIND}` (process, port, datastore, queue,
mount) and `{#NAME}`, plus macros of its own kind ({#PROCESS}, {#PORT}, {#ADDRESS},
{#DATASTORE}, {#DSKIND}, {#QUEUE}, {#MOUNT}, {#FSTYPE}).  One list, so that one master
item feeds every discovery rule: each rule keeps its kind with an LLD filter on {#KIND}.

`--format zabbix-values` prints one JSON object: the check's status and findings, each
kind's figures keyed by {#NAME} (`$.process['{#NAME}'].up`, `$.mount['{#NAME}'].free_bytes`
in JSONPath preprocessing) and the same discovery list under `discovery`, so that one
cached file serves the discovery rules and the items (README: Monitoring)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Dict, List

from collector.analyzers import count_by_severity


def _snapshot(result) -> dict:
    return getattr(result, "snapshot", None) or {}


def discovery(result) -> List[Dict[str, str]]:
    snap = _snapshot(result)
    found = [{"{#KIND}": "process", "{#NAME}": p["name"], "{#PROCESS}": p["name"]}
             for p in snap.get("processes", [])]
    found += [{"{#KIND}": "port", "{#NAME}": str(p["port"]), "{#PORT}": str(p["port"]),
               "{#PROCESS}": p["process"], "{#ADDRESS}": str(p.get("address") or "")}
              for p in snap.get("ports", [])]
    found += [{"{#KIND}": "datastore", "{#NAME}": d["name"], "{#DATASTORE}": d["name"], "{#DSKIND}": d["kind"]}
              for d in snap.get("datastores", [])]
    found += [{"{#KIND}": "queue", "{#NAME}": name, "{#QUEUE}": name} for name in sorted(snap.get("queues") or {})]
    found += [{"{#KIND}": "mount", "{#NAME}": m["mountpoint"], "{#MOUNT}": m["mountpoint"], "{#FSTYPE}": m["fstype"]}
              for m in snap.get("mounts", [])]
    unique = {(item["{#KIND}"], item["{#NAME}"]): item for item in reversed(found)}  # Zabbix refuses a repeat
    return [item for item in found if unique[(item["{#KIND}"], item["{#NAME}"])] is item]


def _keyed(records: List[dict], key: str) -> Dict[str, dict]:
    return {str(record[key]): {k: v for k, v in record.items() if k != key} for record in records}


def values(result) -> dict:
    snap = _snapshot(result)
    return {
        "status": result.code,
        "status_text": result.status,
        "duration_seconds": round(float(result.duration), 3),
        "timestamp": round(time.time(), 3),
        "reasons": list(result.reasons),
        "findings": count_by_severity(result.findings),
        "findings_by_id": dict(sorted(Counter(str(f.get("id")) for f in result.findings).items())),
        "process": _keyed(snap.get("processes", []), "name"),
        "port": _keyed(snap.get("ports", []), "port"),
        "datastore": _keyed(snap.get("datastores", []), "name"),
        "queue": dict(snap.get("queues") or {}),
        "mount": _keyed(snap.get("mounts", []), "mountpoint"),
        "discovery": discovery(result),
    }


def render_discovery(result) -> str:
    return json.dumps(discovery(result), ensure_ascii=False)


def render_values(result) -> str:
    return json.dumps(values(result), ensure_ascii=False, default=str)
