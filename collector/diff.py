"""`akdiag diff OLD NEW`: what changed between two bundles of one host (before and after
an upgrade).  Reads only the two bundles; reports, by section, only what changed.

The JSON form (schema documented in the README):
{"diff_schema": 1, "old": {bundle facts}, "new": {...}, "regression": bool,
 "sections": {"platform"|"processes"|"pidfiles"|"ports"|"config"|"datastores"|"host"|
              "findings"|"logs": [change, ...]},
 "findings": {"new": [...], "resolved": [...], "unchanged": n},
 "not_compared": [reason, ...]}
change: {"subject", "field", "change": added|removed|changed|rose|fell, "old", "new",
         "delta" (numbers), "regression": bool, "text": one line for a person}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from collector.bundle import schema
from collector.bundle.reader import BundleReader

DIFF_SCHEMA = 1
SECTIONS = ("platform", "processes", "pidfiles", "ports", "config", "datastores", "host", "findings", "logs")
MEMORY_NOISE_POINTS = 10.0  # percentage points of available memory
DISK_NOISE_POINTS = 2.0  # percentage points of free space
SECRET_CHANGED = "<secret changed>"


class DifferentHostsError(Exception):
    """Two bundles of different hosts, without --allow-different-hosts."""


@dataclass
class Change:
    section: str
    subject: str
    field: str
    change: str
    old: Any = None
    new: Any = None
    regression: bool = False
    text: str = ""

    def as_dict(self) -> dict:
        record = {"subject": self.subject, "field": self.field, "change": self.change, "old": self.old,
                  "new": self.new, "regression": self.regression, "text": self.text}
        if _is_number(self.old) and _is_number(self.new):
            record["delta"] = round(self.new - self.old, 3)
        return record


@dataclass
class Diff:
    old: dict
    new: dict
    changes: List[Change] = field(default_factory=list)
    new_findings: List[dict] = field(default_factory=list)
    resolved_findings: List[dict] = field(default_factory=list)
    unchanged_findings: int = 0
    not_compared: List[str] = field(default_factory=list)

    @property
    def regression(self) -> bool:
        return any(c.regression for c in self.changes)

    def section(self, name: str) -> List[Change]:
        return [c for c in self.changes if c.section == name]

    def as_dict(self) -> dict:
        return {
            "diff_schema": DIFF_SCHEMA,
            "old": self.old,
            "new": self.new,
            "regression": self.regression,
            "sections": {name: [c.as_dict() for c in self.section(name)] for name in SECTIONS},
            "findings": {"new": self.new_findings, "resolved": self.resolved_findings,
                         "unchanged": self.unchanged_findings},
            "not_compared": self.not_compared,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _facts(reader: BundleReader) -> dict:
    manifest = reader.manifest
    return {"hostname": manifest.get("hostname"), "label": manifest.get("label"),
            "started_at": manifest.get("started_at"), "schema_version": manifest.get("schema_version"),
            "tool_version": _dict(manifest.get("tool")).get("version"), "basedir": manifest.get("basedir")}


# -- sections ------------------------------------------------------------------------

def _platform(old: BundleReader, new: BundleReader) -> List[Change]:
    from collector.report import platform_version

    before, after = platform_version(old), platform_version(new)
    if before == after:
        return []
    return [Change("platform", "platform", "version", "changed", before, after,
                   text=f"platform version {before or 'unknown'} -> {after or 'unknown'}")]


def _processes(old: BundleReader, new: BundleReader) -> List[Change]:
    before = {p.get("name"): p for p in _list(_dict(old.json(schema.PROCESSES)).get("expected"))}
    after = {p.get("name"): p for p in _list(_dict(new.json(schema.PROCESSES)).get("expected"))}
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
    starts = [r.get("started_at") for r in _list(record.get("resources")) if r.get("started_at")]
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
    pa, pb = _dict(a.get("port")), _dict(b.get("port"))
    if pa.get("expected") != pb.get("expected"):
        changes.append(Change("processes", name, "port", "changed", pa.get("expected"), pb.get("expected"),
                              text=f"{name}: port {pa.get('expected')} -> {pb.get('expected')}"))
    if pa.get("state") != pb.get("state"):
        worse = pb.get("state") in ("not_listening", "conflict") and pa.get("state") == "listening"
        owner = f" (held by {pb.get('owner_name')})" if pb.get("state") == "conflict" else ""
        changes.append(Change("processes", name, "port_state", "changed", pa.get("state"), pb.get("state"),
                              regression=worse, text=f"{name}: port {pa.get('state')} -> {pb.get('state')}{owner}"))
    return changes


def _pidfiles(old: BundleReader, new: BundleReader) -> List[Change]:
    before = {f.get("name"): f.get("state") for f in _list(_dict(old.json(schema.PIDFILES)).get("files"))}
    after = {f.get("name"): f.get("state") for f in _list(_dict(new.json(schema.PIDFILES)).get("files"))}
    return [Change("pidfiles", name, "state", _kind(before.get(name), after.get(name)), before.get(name),
                   after.get(name), text=f"PID file {name}: {before.get(name) or 'none'} -> {after.get(name) or 'none'}")
            for name in sorted(set(before) | set(after), key=str) if before.get(name) != after.get(name)]


def _kind(old: Any, new: Any) -> str:
    return "added" if old is None else "removed" if new is None else "changed"


LINUX_EPHEMERAL_RANGE = (32768, 60999)  # the kernel's default, for bundles that do not record theirs


def _ports(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    before, skipped_before = _fixed_listeners(old)
    after, skipped_after = _fixed_listeners(new)
    skipped = skipped_before + skipped_after
    if skipped:
        not_compared.append(f"{skipped} listening socket(s) of non-platform programs on ephemeral ports "
                            "(chosen by the kernel, different on every start)")
    changes = []
    for key in sorted(set(before) ^ set(after), key=lambda k: (k[2] or 0, str(k[0]), str(k[1]))):
        added = key in after
        process = after.get(key) if added else before.get(key)
        changes.append(Change("ports", f"{key[0]} {key[1]}:{key[2]}", "listening", "added" if added else "removed",
                              None if added else process, process if added else None,
                              text=f"{'new' if added else 'gone'}: {key[0]} {key[1]}:{key[2]} ({process or 'unknown'})"))
    return changes


def _fixed_listeners(reader: BundleReader) -> Tuple[Dict[tuple, Any], int]:
    """The listening sockets worth comparing, and how many were left out: a socket on an
    ephemeral port is noise unless a platform process holds it or the catalog names the port."""
    ports = _dict(reader.json(schema.PORTS))
    expected = _list(_dict(reader.json(schema.PROCESSES)).get("expected"))
    platform_pids = {pid for p in expected for pid in _list(_dict(p).get("pids"))}
    catalog_ports = {_dict(_dict(p).get("port")).get("expected") for p in expected} - {None}
    recorded = _list(ports.get("ephemeral_range"))
    low, high = recorded if len(recorded) == 2 and all(_is_number(v) for v in recorded) else LINUX_EPHEMERAL_RANGE
    kept: Dict[tuple, Any] = {}
    skipped = 0
    for sock in _list(ports.get("listening")):
        sock = _dict(sock)
        port = sock.get("port")
        ephemeral = _is_number(port) and low <= port <= high
        if ephemeral and sock.get("pid") not in platform_pids and port not in catalog_ports:
            skipped += 1
            continue
        kept[(sock.get("protocol"), sock.get("address"), port)] = sock.get("process")
    return kept, skipped


def _flatten(data: Any, prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        for index, item in enumerate(data):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
    else:
        flat[prefix] = data
    return flat


def _config_files(reader: BundleReader) -> Dict[str, dict]:
    index = _dict(reader.json(schema.CONFIG_INDEX))
    files = {}
    for entry in _list(index.get("files")):
        path = entry.get("bundle_path")
        if path and entry.get("valid_json"):
            files[path] = _flatten(reader.json(path))
    return files


def _digests(reader: BundleReader) -> Dict[Tuple[str, str], str]:
    index = _dict(reader.json(schema.CONFIG_INDEX))
    return {(d.get("file"), d.get("key")): d.get("digest") for d in _list(index.get("secret_digests"))}


def _config(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    from collector.redact import MASK

    before, after = _config_files(old), _config_files(new)
    digests_before, digests_after = _digests(old), _digests(new)
    changes = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path, {}), after.get(path, {})
        for key in sorted(set(a) | set(b)):
            if key in a and key in b and a[key] == b[key] != MASK:
                continue
            secret = MASK in (a.get(key), b.get(key))
            if secret and key in a and key in b:
                da, db = digests_before.get((path, key)), digests_after.get((path, key))
                if da is None or db is None:
                    not_compared.append(f"{path} {key}: a secret without a digest in one bundle")
                elif da != db:
                    changes.append(Change("config", f"{path} {key}", key, "changed", SECRET_CHANGED, SECRET_CHANGED,
                                          text=f"{path}: {key} changed (a secret: values not shown)"))
                continue
            kind = "added" if key not in a else "removed" if key not in b else "changed"
            shown_old, shown_new = (MASK if secret else a.get(key)), (MASK if secret else b.get(key))
            changes.append(Change("config", f"{path} {key}", key, kind, shown_old, shown_new,
                                  text=f"{path}: {key} {kind}" + ("" if kind != "changed" else
                                                                  f": {shown_old!r} -> {shown_new!r}")))
    return changes


def _datastore_figures(endpoint: dict) -> Dict[str, Any]:
    """The figures support compares across an upgrade, by a stable name."""
    details = _dict(endpoint.get("details"))
    figures: Dict[str, Any] = {"status": endpoint.get("status"), "version": endpoint.get("version")}
    status = _dict(details.get("server_status"))
    figures["connections"] = _dict(status.get("connections")).get("current")
    for member in _list(_dict(details.get("replica_set")).get("members")):
        figures[f"replica lag {member.get('name')}"] = member.get("lag_s")
    databases = _dict(details.get("databases"))
    for database in _list(databases.get("databases")):
        figures[f"database size {database.get('name')}"] = database.get("size_on_disk")
    for name, queue in sorted(_dict(details.get("queues")).items()):
        figures[f"queue {name}"] = _dict(queue).get("messages")
    for family in _dict(details.get("queue_families")).values():
        for queue in _list(_dict(family).get("queues")):
            figures[f"queue {queue.get('name')}"] = queue.get("messages")
    return {k: v for k, v in figures.items() if v is not None}


def _datastores(old: BundleReader, new: BundleReader) -> List[Change]:
    def endpoints(reader):
        return {e.get("name"): e for e in _list(_dict(reader.json(schema.DATASTORES)).get("endpoints"))}

    before, after = endpoints(old), endpoints(new)
    changes = []
    for name in sorted(set(before) | set(after), key=str):
        a, b = _datastore_figures(_dict(before.get(name))), _datastore_figures(_dict(after.get(name)))
        for figure in sorted(set(a) | set(b)):
            va, vb = a.get(figure), b.get(figure)
            if va == vb:
                continue
            kind = ("rose" if vb > va else "fell") if _is_number(va) and _is_number(vb) else _kind(va, vb)
            delta = f" ({vb - va:+g})" if _is_number(va) and _is_number(vb) else ""
            changes.append(Change("datastores", name, figure, kind, va, vb,
                                  text=f"{name}: {figure} {va} -> {vb}{delta}"))
    return changes


def _host(old: BundleReader, new: BundleReader) -> List[Change]:
    a, b = _dict(old.json(schema.SYSTEM)), _dict(new.json(schema.SYSTEM))
    changes = []
    mem_a = _dict(a.get("memory")).get("percent_available")
    mem_b = _dict(b.get("memory")).get("percent_available")
    if _is_number(mem_a) and _is_number(mem_b) and abs(mem_b - mem_a) >= MEMORY_NOISE_POINTS:
        changes.append(Change("host", "memory", "percent_available", "rose" if mem_b > mem_a else "fell",
                              mem_a, mem_b, text=f"available memory {mem_a}% -> {mem_b}%"))
    disks_a = {f.get("mountpoint"): f for f in _list(a.get("filesystems"))}
    disks_b = {f.get("mountpoint"): f for f in _list(b.get("filesystems"))}
    for mount in sorted(set(disks_a) & set(disks_b), key=str):
        fa, fb = disks_a[mount].get("percent_free"), disks_b[mount].get("percent_free")
        if _is_number(fa) and _is_number(fb) and abs(fb - fa) >= DISK_NOISE_POINTS:
            changes.append(Change("host", f"disk {mount}", "percent_free", "rose" if fb > fa else "fell", fa, fb,
                                  text=f"free space on {mount} {fa}% -> {fb}%"))
    return changes


def _findings_of(reader: BundleReader) -> List[dict]:
    data = reader.json(schema.FINDINGS)
    if isinstance(data, dict) and isinstance(data.get("findings"), list):
        return data["findings"]
    from collector.analyzers import analyze  # an older bundle without findings: today's analyzers

    return analyze(reader).findings


def _finding_key(finding: dict) -> Tuple[str, str]:
    return str(finding.get("id")), str(finding.get("subject"))


def _findings(old: BundleReader, new: BundleReader, diff: Diff) -> List[Change]:
    before = {_finding_key(f): f for f in _findings_of(old)}
    after = {_finding_key(f): f for f in _findings_of(new)}
    diff.new_findings = [after[k] for k in after if k not in before]
    diff.resolved_findings = [before[k] for k in before if k not in after]
    diff.unchanged_findings = len(set(before) & set(after))
    changes = [Change("findings", f"{f.get('id')} {f.get('subject')}", "finding", "added", None, f.get("severity"),
                      regression=f.get("severity") in ("critical", "warning"),
                      text=f"new {f.get('severity')}: {f.get('title')}") for f in diff.new_findings]
    changes += [Change("findings", f"{f.get('id')} {f.get('subject')}", "finding", "removed", f.get("severity"), None,
                       text=f"resolved: {f.get('title')}") for f in diff.resolved_findings]
    return changes


def _log_error_counts(reader: BundleReader) -> Dict[str, int]:
    from collector.analyzers.logs import scan_tail

    counts = {}
    for entry in _list(_dict(reader.json(schema.LOGS_INDEX)).get("files")):
        tail = _dict(entry.get("tail"))
        path = tail.get("bundle_path")
        if not path or not reader.exists(path):
            continue
        try:
            counts[entry.get("path")] = len(scan_tail(reader.path(path).read_bytes()).errors)
        except OSError:
            continue
    return counts


def _logs(old: BundleReader, new: BundleReader) -> List[Change]:
    before, after = _log_error_counts(old), _log_error_counts(new)
    return [Change("logs", path, "errors", "rose", before.get(path, 0), count,
                   text=f"{path}: error lines {before.get(path, 0)} -> {count}")
            for path, count in sorted(after.items()) if count > before.get(path, 0)]


# -- the whole diff --------------------------------------------------------------------

def _comparable(old: BundleReader, new: BundleReader, allow_different_hosts: bool, not_compared: List[str]) -> None:
    host_a, host_b = old.manifest.get("hostname"), new.manifest.get("hostname")
    if host_a != host_b and not allow_different_hosts:
        raise DifferentHostsError(
            f"the bundles come from different hosts ({host_a} and {host_b}); "
            "compare them anyway with --allow-different-hosts")
    version_a, version_b = old.schema_version, new.schema_version
    if version_a != version_b:
        not_compared.append(f"schema versions differ ({version_a} and {version_b}): only the fields both "
                            "have are compared")
    for relpath in (schema.PROCESSES, schema.PIDFILES, schema.PORTS, schema.CONFIG_INDEX, schema.DATASTORES,
                    schema.SYSTEM, schema.LOGS_INDEX):
        missing = [side for side, r in (("old", old), ("new", new)) if not r.exists(relpath)]
        if missing:
            not_compared.append(f"{relpath} is missing from the {' and '.join(missing)} bundle")


def diff_bundles(old: BundleReader, new: BundleReader, allow_different_hosts: bool = False) -> Diff:
    if old.exists(schema.CLUSTER_MANIFEST) or new.exists(schema.CLUSTER_MANIFEST):
        from collector.cluster.diff import diff_clusters  # host by host: a ClusterDiff

        return diff_clusters(old, new, allow_different_hosts)
    result = Diff(old=_facts(old), new=_facts(new))
    _comparable(old, new, allow_different_hosts, result.not_compared)
    sections: List[Callable[[], List[Change]]] = [
        lambda: _platform(old, new),
        lambda: _processes(old, new),
        lambda: _pidfiles(old, new),
        lambda: _ports(old, new, result.not_compared),
        lambda: _config(old, new, result.not_compared),
        lambda: _datastores(old, new),
        lambda: _host(old, new),
        lambda: _findings(old, new, result),
        lambda: _logs(old, new),
    ]
    for name, section in zip(SECTIONS, sections):
        try:
            result.changes += section()
        except Exception as exc:  # one section that cannot be compared does not stop the rest
            result.not_compared.append(f"{name}: could not be compared ({type(exc).__name__}: {exc})")
    return result


# -- text ----------------------------------------------------------------------------------

_TITLES = {"platform": "Platform", "processes": "Processes", "pidfiles": "PID files", "ports": "Listening ports",
           "config": "Configuration", "datastores": "Datastores", "host": "Host resources",
           "findings": "Findings", "logs": "Logs"}


def render_text(diff: Diff, width: int = 100) -> str:
    if getattr(diff, "is_cluster", False):
        return diff.render_text(width)
    old, new = diff.old, diff.new
    lines = [f"akdiag diff: {old.get('hostname')}",
             f"  old: {old.get('started_at')} {old.get('label') or ''}".rstrip(),
             f"  new: {new.get('started_at')} {new.get('label') or ''}".rstrip(),
             "Verdict: " + ("REGRESSION" if diff.regression else "no regression")
             + f" ({len(diff.changes)} changes, {len(diff.new_findings)} new findings, "
               f"{len(diff.resolved_findings)} resolved, {diff.unchanged_findings} unchanged)"]
    for name in SECTIONS:
        changes = diff.section(name)
        if not changes:
            continue
        lines.append("")
        lines.append(f"{_TITLES[name]} ({len(changes)})")
        for change in changes:
            mark = "!" if change.regression else "-"
            lines.append(f"  {mark} {change.text}"[:width])
    if diff.not_compared:
        lines.append("")
        lines.append("Not compared")
        lines.extend(f"  - {reason}"[:width] for reason in diff.not_compared)
    if not diff.changes:
        lines.append("")
        lines.append("Nothing changed.")
    return "\n".join(lines) + "\n"


def render_html(diff: Diff) -> str:
    if getattr(diff, "is_cluster", False):
        return diff.render_html()
    from collector.report import environment

    return environment().get_template("diff.html.j2").render(diff=diff.as_dict(), titles=_TITLES)
