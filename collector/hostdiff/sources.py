"""What a bundle lacks: the files a section compares, missing or written by a failed collector."""

from __future__ import annotations

from typing import Iterable, List, Optional

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.plain import as_dict, as_list

# the collector that writes each file a section compares (collector/collectors/__init__.py)
SOURCE_COLLECTORS = {schema.SYSTEM: "system", schema.PROCESSES: "processes", schema.PIDFILES: "pidfiles",
                     schema.PORTS: "ports", schema.LOGS_INDEX: "logs", schema.AKD: "akd",
                     schema.CONFIG_INDEX: "config", schema.DATASTORES: "datastores", schema.KERNEL: "kernel",
                     schema.SERVICES: "services", schema.NETWORK: "network", schema.HISTORY: "history"}
# the files a section compares: when one is missing from a bundle, or its collector failed
# there, the section compares nothing (an empty side would read as "everything is gone")
SECTION_SOURCES = {"processes": (schema.PROCESSES,), "pidfiles": (schema.PIDFILES,), "ports": (schema.PORTS,),
                   "config": (schema.CONFIG_INDEX,), "datastores": (schema.DATASTORES,), "host": (schema.SYSTEM,),
                   "logs": (schema.LOGS_INDEX,)}


def _collector_failure(reader: BundleReader, relpath: str) -> Optional[str]:
    """How the collector that writes `relpath` failed in this bundle, or None."""
    name = SOURCE_COLLECTORS.get(relpath)
    records = [as_dict(r) for r in as_list(reader.manifest.get("collectors"))]
    record = next((r for r in records if r.get("name") == name), {})
    if record.get("status") not in ("failed", "timeout"):
        return None
    words = "failed" if record.get("status") == "failed" else "timed out"
    return f"the {name} collector {words}" + (f" ({record['error']})" if record.get("error") else "")


def readable(reader: BundleReader, relpath: str) -> bool:
    return reader.exists(relpath) and _collector_failure(reader, relpath) is None


def source_problems(old: BundleReader, new: BundleReader, relpaths: Iterable[str]) -> List[str]:
    """Why files cannot be compared: missing from a bundle, or their collector failed there."""
    problems = []
    for relpath in relpaths:
        missing = []
        for side, reader in (("old", old), ("new", new)):
            failure = _collector_failure(reader, relpath)
            if failure:
                problems.append(f"{failure} in the {side} bundle, so it has no usable {relpath}")
            elif not reader.exists(relpath):
                missing.append(side)
        if missing:
            problems.append(f"{relpath} is missing from the {' and '.join(missing)} bundle")
    return problems

