"""The datastores section: each endpoint the catalog and main.json name, its status and
latency, a replica set's members, RabbitMQ's queues, and the rest of its details."""

from __future__ import annotations

import json
from typing import List, Optional

from collector.bundle import schema
from collector.plain import as_dict, dicts
from collector.report.format import strings
from collector.report.sources import MAX_TABLE_ROWS

MAX_OTHER_DETAILS = 16000  # characters of an endpoint's remaining details shown as JSON
_QUEUE_FIELDS = ("messages", "messages_ready", "messages_unacknowledged", "consumers", "state")
_ENDPOINT_FIELDS = ("name", "kind", "group", "description", "host", "port", "source", "user", "status", "reachable",
                    "connect_ms", "latency_ms", "version", "error", "duration")


def _queue_rows(details: dict) -> List[dict]:
    rows = []
    for name, queue in sorted(as_dict(details.get("queues")).items()):
        queue = as_dict(queue)
        rows.append({"name": name, "family": None, "exists": queue.get("exists"), "messages": queue.get("messages"),
                     "consumers": queue.get("consumers"), "state": queue.get("error")})
    for family, group in sorted(as_dict(details.get("queue_families")).items()):
        for queue in dicts(as_dict(group).get("queues")):
            rows.append(dict({f: queue.get(f) for f in _QUEUE_FIELDS}, name=queue.get("name"), family=family,
                             exists=True))
    return rows[:MAX_TABLE_ROWS]


def _other_details(details: dict) -> Optional[str]:
    rest = {k: v for k, v in details.items() if k not in ("replica_set", "queues", "queue_families")}
    if not rest:
        return None
    text = json.dumps(rest, indent=1, sort_keys=True, default=str, ensure_ascii=False)
    if len(text) <= MAX_OTHER_DETAILS:
        return text
    return text[:MAX_OTHER_DETAILS] + "\n… (cut; the whole record is in datastores.json)"


def _row(index: int, record: dict) -> dict:
    details = as_dict(record.get("details"))
    replica = as_dict(details.get("replica_set"))
    return dict(
        {k: record.get(k) for k in _ENDPOINT_FIELDS},
        anchor=f"ds-{index}", notes=strings(record.get("notes")),
        command_errors=sorted(as_dict(record.get("command_errors")).items()),
        replica_set=replica.get("set"), primary=replica.get("primary"), members=dicts(replica.get("members")),
        queues=_queue_rows(details), other=_other_details(details))


def datastores_view(data: Optional[dict]) -> dict:
    data = data or {}
    rows = [_row(index, record) for index, record in enumerate(dicts(data.get("endpoints")))]
    configured = [r for r in rows if r["status"] != "not_configured"]
    return {"rows": rows, "configured": configured, "not_configured": [r for r in rows if r not in configured],
            "counts": sorted(as_dict(data.get("counts")).items()), "timeout_s": data.get("timeout_s"),
            "main_json": as_dict(data.get("main_json")), "errors": strings(data.get("errors"), schema.DATASTORES)}
