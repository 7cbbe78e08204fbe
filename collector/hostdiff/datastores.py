"""The datastores section of a diff: each endpoint's figures by a stable name."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.hostdiff.model import SIZE_NOISE_FRACTION, Change, change_kind
from collector.hostdiff.pseudonyms import compare_pairs, either, pseudonymized_note
from collector.plain import as_dict, as_list, is_number


def _datastore_figures(endpoint: dict) -> Dict[str, Any]:
    """The figures support compares across an upgrade, by a stable name."""
    details = as_dict(endpoint.get("details"))
    figures: Dict[str, Any] = {"status": endpoint.get("status"), "version": endpoint.get("version")}
    for figures_of in (_mongodb_figures, _rabbitmq_figures, _resp_figures):
        figures.update(figures_of(details))
    return {k: v for k, v in figures.items() if v is not None}


def _mongodb_figures(details: dict) -> Dict[str, Any]:
    figures = {"connections": as_dict(as_dict(details.get("server_status")).get("connections")).get("current")}
    for member in as_list(as_dict(details.get("replica_set")).get("members")):
        figures[f"replica lag {member.get('name')}"] = member.get("lag_s")
    for database in as_list(as_dict(details.get("databases")).get("databases")):
        figures[f"database size {database.get('name')}"] = database.get("size_on_disk")
    return figures


def _rabbitmq_figures(details: dict) -> Dict[str, Any]:
    figures = {f"queue {name}": as_dict(queue).get("messages") for name, queue in as_dict(details.get("queues")).items()}
    for family in as_dict(details.get("queue_families")).values():
        for queue in as_list(as_dict(family).get("queues")):
            figures[f"queue {queue.get('name')}"] = queue.get("messages")
    return figures


def _resp_figures(details: dict) -> Dict[str, Any]:
    """SSDB's and Kvrocks/Redis's figures, from the INFO their checks keep."""
    info = as_dict(details.get("info"))
    if "links" in info:  # SSDB's INFO summary (collector.datastores.resp.ssdb_summary)
        size = details.get("dbsize_bytes")  # leveldb's estimate of bytes on disk, as INFO's dbsize
        return {"connections": info.get("links"), "database size": info.get("dbsize") if size is None else size}
    # Kvrocks's kept INFO sections; or Redis's whole parsed INFO, kept by the SSDB check
    sections = as_dict(info.get("sections")) if info.get("format") == "redis" else info
    figures = {"connections": as_dict(sections.get("clients")).get("connected_clients"),
               "used memory": as_dict(sections.get("memory")).get("used_memory")}
    for database, keyspace in as_dict(sections.get("keyspace")).items():
        figures[f"keys {database}"] = as_dict(keyspace).get("keys")
    return figures


NOISY_SIZES = ("used memory", "database size")  # they move a little between any two bundles


def _renamed_alike(figures: tuple, values: tuple) -> bool:
    """A figure named differently on each side with the same value: e.g. a replica member's
    pseudonymized host, with the same lag."""
    return None not in figures and figures[0] != figures[1] and values[0] == values[1]


def _datastore_change(name: str, figure: str, old: Any, new: Any) -> Optional[Change]:
    if old == new:
        return None
    numbers = is_number(old) and is_number(new)
    if numbers and figure in NOISY_SIZES and abs(new - old) < SIZE_NOISE_FRACTION * max(abs(old), abs(new)):
        return None
    kind = ("rose" if new > old else "fell") if numbers else change_kind(old, new)
    delta = f" ({new - old:+g})" if numbers else ""
    return Change("datastores", name, figure, kind, old, new, text=f"{name}: {figure} {old} -> {new}{delta}")


def compare_datastores(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    def endpoints(reader):
        return {e.get("name"): e for e in as_list(as_dict(reader.json(schema.DATASTORES)).get("endpoints"))}

    before, after = endpoints(old), endpoints(new)
    changes = []
    pseudonymized = 0
    for name in sorted(set(before) | set(after), key=str):
        a, b = _datastore_figures(as_dict(before.get(name))), _datastore_figures(as_dict(after.get(name)))
        found, unknown = compare_pairs(
            a, b, _renamed_alike,
            lambda figures, values: _datastore_change(name, either(figures), *values))
        changes += found
        pseudonymized += unknown
    if pseudonymized:
        not_compared.append(pseudonymized_note(pseudonymized, "datastore figure name", "datastore figure names"))
    return changes

