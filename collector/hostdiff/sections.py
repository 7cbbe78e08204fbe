"""The platform, processes, PID files, host resources and logs sections of a diff."""

from __future__ import annotations

from typing import Dict, List, Optional

from collector.bundle import schema
from collector.bundle.reader import MAX_INDEX_ENTRIES, MAX_TEXT_MEMBER, BundleReader
from collector.hostdiff.model import DISK_NOISE_POINTS, MEMORY_NOISE_POINTS, Change, change_kind
from collector.hostdiff.sources import readable
from collector.logindex import log_records
from collector.plain import as_dict, as_list, is_number


def compare_platform(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    from collector.report import platform_version

    before, after = platform_version(old), platform_version(new)
    if before == after:
        return []
    unknown = [side for side, version, reader in (("old", before, old), ("new", after, new))
               if version is None and not readable(reader, schema.AKD)]
    if unknown:
        not_compared.append(f"platform: version not compared: {schema.AKD} cannot be read in the "
                            f"{' and '.join(unknown)} bundle")
        return []
    return [Change("platform", "platform", "version", "changed", before, after,
                   text=f"platform version {before or 'unknown'} -> {after or 'unknown'}")]


def compare_processes(old: BundleReader, new: BundleReader) -> List[Change]:
    before = {p.get("name"): p for p in as_list(as_dict(old.json(schema.PROCESSES)).get("expected"))}
    after = {p.get("name"): p for p in as_list(as_dict(new.json(schema.PROCESSES)).get("expected"))}
    changes: List[Change] = []
    for name in sorted(set(before) | set(after), key=str):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            changes.append(Change("processes", name, "catalog", "added" if a is None else "removed",
                                  text=f"{name} {'is new in' if a is None else 'is gone from'} the catalog"))
            continue
        changes += _process_changes(name, a, b)
    return changes


def _started(record: dict) -> Optional[str]:
    starts = [r.get("started_at") for r in as_list(record.get("resources")) if r.get("started_at")]
    return min(starts) if starts else None


def _process_changes(name: str, a: dict, b: dict) -> List[Change]:
    changes = []
    if a.get("status") != b.get("status"):
        lost = a.get("status") == "running"
        kind = "removed" if lost else ("added" if b.get("status") == "running" else "changed")
        changes.append(Change("processes", name, "status", kind, a.get("status"), b.get("status"),
                              regression=lost and b.get("status") == "down",
                              text=f"{name}: {a.get('status')} -> {b.get('status')}"))
    elif a.get("status") == "running":
        if _started(a) != _started(b):
            changes.append(Change("processes", name, "started_at", "changed", _started(a), _started(b),
                                  text=f"{name} restarted: started {_started(a)} -> {_started(b)}"))
        elif a.get("pids") != b.get("pids"):
            changes.append(Change("processes", name, "pids", "changed", a.get("pids"), b.get("pids"),
                                  text=f"{name}: PIDs {a.get('pids')} -> {b.get('pids')}"))
    pa, pb = as_dict(a.get("port")), as_dict(b.get("port"))
    if pa.get("expected") != pb.get("expected"):
        changes.append(Change("processes", name, "port", "changed", pa.get("expected"), pb.get("expected"),
                              text=f"{name}: port {pa.get('expected')} -> {pb.get('expected')}"))
    if pa.get("state") != pb.get("state"):
        # listening_owner_unknown (the holder's PID hidden from the collecting user) is no
        # regression: a bundle collected by another user says so for the same listener
        worse = pb.get("state") in ("not_listening", "conflict") and pa.get("state") == "listening"
        owner = {"conflict": f" (held by {pb.get('owner_name')})",
                 "listening_owner_unknown": " (its owner not visible to the collecting user)"}.get(pb.get("state"), "")
        changes.append(Change("processes", name, "port_state", "changed", pa.get("state"), pb.get("state"),
                              regression=worse, text=f"{name}: port {pa.get('state')} -> {pb.get('state')}{owner}"))
    return changes


def compare_pidfiles(old: BundleReader, new: BundleReader) -> List[Change]:
    before = {f.get("name"): f.get("state") for f in as_list(as_dict(old.json(schema.PIDFILES)).get("files"))}
    after = {f.get("name"): f.get("state") for f in as_list(as_dict(new.json(schema.PIDFILES)).get("files"))}
    return [Change("pidfiles", name, "state", change_kind(before.get(name), after.get(name)), before.get(name),
                   after.get(name), text=f"PID file {name}: {before.get(name) or 'none'} -> {after.get(name) or 'none'}")
            for name in sorted(set(before) | set(after), key=str) if before.get(name) != after.get(name)]


def compare_host(old: BundleReader, new: BundleReader) -> List[Change]:
    a, b = as_dict(old.json(schema.SYSTEM)), as_dict(new.json(schema.SYSTEM))
    changes = []
    mem_a = as_dict(a.get("memory")).get("percent_available")
    mem_b = as_dict(b.get("memory")).get("percent_available")
    if is_number(mem_a) and is_number(mem_b) and abs(mem_b - mem_a) >= MEMORY_NOISE_POINTS:
        changes.append(Change("host", "memory", "percent_available", "rose" if mem_b > mem_a else "fell",
                              mem_a, mem_b, text=f"available memory {mem_a}% -> {mem_b}%"))
    disks_a = {f.get("mountpoint"): f for f in as_list(a.get("filesystems"))}
    disks_b = {f.get("mountpoint"): f for f in as_list(b.get("filesystems"))}
    for mount in sorted(set(disks_a) & set(disks_b), key=str):
        fa, fb = disks_a[mount].get("percent_free"), disks_b[mount].get("percent_free")
        if is_number(fa) and is_number(fb) and abs(fb - fa) >= DISK_NOISE_POINTS:
            changes.append(Change("host", f"disk {mount}", "percent_free", "rose" if fb > fa else "fell", fa, fb,
                                  text=f"free space on {mount} {fa}% -> {fb}%"))
    return changes


def _log_error_counts(reader: BundleReader) -> Dict[str, int]:
    from collector.analyzers.logs import scan_tail

    counts = {}
    for entry in log_records(reader.json(schema.LOGS_INDEX), MAX_INDEX_ENTRIES):
        tail = as_dict(entry.get("tail"))
        path = tail.get("bundle_path")
        if not path or not reader.exists(path):
            continue
        try:
            counts[entry.get("path")] = len(scan_tail(reader.read(path, MAX_TEXT_MEMBER)).errors)
        except OSError:
            continue
    return counts


def compare_logs(old: BundleReader, new: BundleReader) -> List[Change]:
    before, after = _log_error_counts(old), _log_error_counts(new)
    return [Change("logs", path, "errors", "rose", before.get(path, 0), count,
                   text=f"{path}: error lines {before.get(path, 0)} -> {count}")
            for path, count in sorted(after.items()) if count > before.get(path, 0)]

