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

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from collector.bundle import schema
from collector.bundle.reader import MAX_INDEX_ENTRIES, MAX_TEXT_MEMBER, BundleReader
from collector.plain import as_dict, as_list, is_number

DIFF_SCHEMA = 1
SECTIONS = ("platform", "processes", "pidfiles", "ports", "config", "datastores", "host", "findings", "logs")
MEMORY_NOISE_POINTS = 10.0  # percentage points of available memory
DISK_NOISE_POINTS = 2.0  # percentage points of free space
SIZE_NOISE_FRACTION = 0.10  # a memory or disk size that moved less than this share of itself
SECRET_CHANGED = "<secret changed>"
# collector.redact.Pseudonymizer.token: "<kind>-<first 12 hex digits of an HMAC>", with a
# random key per bundle, so one value has a different token in every bundle
PSEUDONYM = re.compile(r"\b(email|phone|ip|host)-[0-9a-f]{12}\b")
# the collector that writes each file a section compares (collector/collectors/__init__.py)
SOURCE_COLLECTORS = {schema.SYSTEM: "system", schema.PROCESSES: "processes", schema.PIDFILES: "pidfiles",
                     schema.PORTS: "ports", schema.LOGS_INDEX: "logs", schema.AKD: "akd",
                     schema.CONFIG_INDEX: "config", schema.DATASTORES: "datastores"}
# the files a section compares: when one is missing from a bundle, or its collector failed
# there, the section compares nothing (an empty side would read as "everything is gone")
SECTION_SOURCES = {"processes": (schema.PROCESSES,), "pidfiles": (schema.PIDFILES,), "ports": (schema.PORTS,),
                   "config": (schema.CONFIG_INDEX,), "datastores": (schema.DATASTORES,), "host": (schema.SYSTEM,),
                   "logs": (schema.LOGS_INDEX,)}


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
        if is_number(self.old) and is_number(self.new):
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


def _facts(reader: BundleReader) -> dict:
    manifest = reader.manifest
    return {"hostname": manifest.get("hostname"), "label": manifest.get("label"),
            "started_at": manifest.get("started_at"), "schema_version": manifest.get("schema_version"),
            "tool_version": as_dict(manifest.get("tool")).get("version"), "basedir": manifest.get("basedir")}


# -- pseudonyms ------------------------------------------------------------------------

def is_pseudonym(value: Any) -> bool:
    """A value that is one pseudonym token as a whole (a pseudonymized host name)."""
    return isinstance(value, str) and PSEUDONYM.fullmatch(value) is not None


def _without_pseudonyms(value: Any) -> Any:
    """The value with each pseudonym token reduced to its kind, so that two bundles'
    values that differ only by their (per-bundle) pseudonyms become equal."""
    if isinstance(value, str):
        return PSEUDONYM.sub(lambda match: f"{match.group(1)}-?", value)
    if isinstance(value, (list, tuple)):
        return type(value)(_without_pseudonyms(item) for item in value)
    if isinstance(value, dict):
        return {_without_pseudonyms(k): _without_pseudonyms(v) for k, v in value.items()}
    return value


def _only_pseudonyms_differ(old: Any, new: Any) -> bool:
    return old != new and _without_pseudonyms(old) == _without_pseudonyms(new)


def _pseudonymized_note(count: int, one: str, many: str) -> str:
    """E.g. "3 configuration values are pseudonymized with a per-bundle key: cannot tell
    whether they changed"."""
    if count == 1:
        return f"1 {one} is pseudonymized with a per-bundle key: cannot tell whether it changed"
    return f"{count} {many} are pseudonymized with a per-bundle key: cannot tell whether they changed"


def _pair_names(before: Iterable, after: Iterable) -> Tuple[List[tuple], int]:
    """Pairs (old name, new name) of the things two bundles name: the same name, else the
    same name once its pseudonyms are left out (None for a name of one side only); and
    how many names could not be paired: several names of a side that look alike without
    their pseudonyms, facing some on the other side."""
    before, after = set(before), set(after)
    pairs = [(name, name) for name in before & after]
    alike: Dict[Any, Tuple[list, list]] = {}
    for side, names in ((0, before - after), (1, after - before)):
        for name in names:
            alike.setdefault(_without_pseudonyms(name), ([], []))[side].append(name)
    unpaired = 0
    for olds, news in alike.values():
        if olds and news and len(olds) + len(news) > 2:
            unpaired += max(len(olds), len(news))
        elif olds and news:
            pairs.append((olds[0], news[0]))
        else:
            pairs += [(name, None) for name in olds] + [(None, name) for name in news]
    return pairs, unpaired


def _either(pair: tuple) -> Any:
    """The new name of a pair, else the old one."""
    return pair[0] if pair[1] is None else pair[1]


# -- what a bundle lacks -------------------------------------------------------------------

def _collector_failure(reader: BundleReader, relpath: str) -> Optional[str]:
    """How the collector that writes `relpath` failed in this bundle, or None."""
    name = SOURCE_COLLECTORS.get(relpath)
    records = [as_dict(r) for r in as_list(reader.manifest.get("collectors"))]
    record = next((r for r in records if r.get("name") == name), {})
    if record.get("status") not in ("failed", "timeout"):
        return None
    words = "failed" if record.get("status") == "failed" else "timed out"
    return f"the {name} collector {words}" + (f" ({record['error']})" if record.get("error") else "")


def _readable(reader: BundleReader, relpath: str) -> bool:
    return reader.exists(relpath) and _collector_failure(reader, relpath) is None


def _source_problems(old: BundleReader, new: BundleReader, relpaths: Iterable[str]) -> List[str]:
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


# -- sections ------------------------------------------------------------------------

def _platform(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    from collector.report import platform_version

    before, after = platform_version(old), platform_version(new)
    if before == after:
        return []
    unknown = [side for side, version, reader in (("old", before, old), ("new", after, new))
               if version is None and not _readable(reader, schema.AKD)]
    if unknown:
        not_compared.append(f"platform: version not compared: {schema.AKD} cannot be read in the "
                            f"{' and '.join(unknown)} bundle")
        return []
    return [Change("platform", "platform", "version", "changed", before, after,
                   text=f"platform version {before or 'unknown'} -> {after or 'unknown'}")]


def _processes(old: BundleReader, new: BundleReader) -> List[Change]:
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


def _pidfiles(old: BundleReader, new: BundleReader) -> List[Change]:
    before = {f.get("name"): f.get("state") for f in as_list(as_dict(old.json(schema.PIDFILES)).get("files"))}
    after = {f.get("name"): f.get("state") for f in as_list(as_dict(new.json(schema.PIDFILES)).get("files"))}
    return [Change("pidfiles", name, "state", _kind(before.get(name), after.get(name)), before.get(name),
                   after.get(name), text=f"PID file {name}: {before.get(name) or 'none'} -> {after.get(name) or 'none'}")
            for name in sorted(set(before) | set(after), key=str) if before.get(name) != after.get(name)]


def _kind(old: Any, new: Any) -> str:
    return "added" if old is None else "removed" if new is None else "changed"


LINUX_EPHEMERAL_RANGE = (32768, 60999)  # the kernel's default, for bundles that do not record theirs


def _ports(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    owners = _platform_owners(old, new, not_compared)
    before, skipped_before = _fixed_listeners(old, *owners[0])
    after, skipped_after = _fixed_listeners(new, *owners[1])
    skipped = skipped_before + skipped_after
    if skipped:
        not_compared.append(f"{skipped} listening socket(s) of non-platform programs on ephemeral ports "
                            "(chosen by the kernel, different on every start)")
    pairs, unpaired = _pair_names(before, after)
    renamed = [pair for pair in pairs if None not in pair and pair[0] != pair[1]]
    if unpaired + len(renamed):
        not_compared.append(_pseudonymized_note(unpaired + len(renamed), "listening address",
                                                "listening addresses"))
    changes = []
    for key_a, key_b in sorted(pairs, key=lambda pair: _port_order(_either(pair))):
        if None not in (key_a, key_b):
            continue  # on both sides (a pseudonymized address is counted above)
        key, added = _either((key_a, key_b)), key_a is None
        process = after.get(key) if added else before.get(key)
        changes.append(Change("ports", f"{key[0]} {key[1]}:{key[2]}", "listening", "added" if added else "removed",
                              None if added else process, process if added else None,
                              text=f"{'new' if added else 'gone'}: {key[0]} {key[1]}:{key[2]} ({process or 'unknown'})"))
    return changes


def _port_order(key: tuple) -> tuple:
    return key[2] if is_number(key[2]) else 0, str(key[0]), str(key[1])


def _platform_owners(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Tuple[set, set]]:
    """(the platform's PIDs, the catalog's ports) of each bundle, from processes.json.  When
    one bundle cannot tell its platform PIDs, neither side uses PIDs (a platform process's
    ephemeral socket would be kept on one side and left out on the other)."""
    owners = [_platform_pids_and_ports(old), _platform_pids_and_ports(new)]
    if all(_readable(reader, schema.PROCESSES) for reader in (old, new)):
        return owners
    not_compared.append(f"ports: {schema.PROCESSES} cannot be read in both bundles, so a socket on an ephemeral "
                        "port is compared only when it is on a catalog port")
    catalog_ports = owners[0][1] | owners[1][1]
    return [(set(), catalog_ports), (set(), catalog_ports)]


def _platform_pids_and_ports(reader: BundleReader) -> Tuple[set, set]:
    expected = as_list(as_dict(reader.json(schema.PROCESSES)).get("expected"))
    pids = {pid for p in expected for pid in as_list(as_dict(p).get("pids"))}
    catalog_ports = {as_dict(as_dict(p).get("port")).get("expected") for p in expected} - {None}
    return pids, catalog_ports


def _fixed_listeners(reader: BundleReader, platform_pids: set, catalog_ports: set) -> Tuple[Dict[tuple, Any], int]:
    """The listening sockets worth comparing, and how many were left out: a socket on an
    ephemeral port is noise unless a platform process holds it or the catalog names the port."""
    ports = as_dict(reader.json(schema.PORTS))
    recorded = as_list(ports.get("ephemeral_range"))
    low, high = recorded if len(recorded) == 2 and all(is_number(v) for v in recorded) else LINUX_EPHEMERAL_RANGE
    kept: Dict[tuple, Any] = {}
    skipped = 0
    for sock in as_list(ports.get("listening")):
        sock = as_dict(sock)
        port = sock.get("port")
        ephemeral = is_number(port) and low <= port <= high
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
    index = as_dict(reader.json(schema.CONFIG_INDEX))
    files = {}
    for entry in as_list(index.get("files")):
        path = entry.get("bundle_path")
        if path and entry.get("valid_json"):
            files[path] = _flatten(reader.json(path))
    return files


def _digests(reader: BundleReader) -> Dict[Tuple[str, str], str]:
    index = as_dict(reader.json(schema.CONFIG_INDEX))
    return {(d.get("file"), d.get("key")): d.get("digest") for d in as_list(index.get("secret_digests"))}


def _config(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    before, after = _config_files(old), _config_files(new)
    digests = (_digests(old), _digests(new))
    changes = []
    pseudonymized = 0
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path, {}), after.get(path, {})
        pairs, unpaired = _pair_names(a, b)
        pseudonymized += unpaired
        for key_a, key_b in sorted(pairs, key=lambda pair: str(_either(pair))):
            old_value, new_value = a.get(key_a), b.get(key_b)
            if _pseudonymized_pair((key_a, key_b), (old_value, new_value)):
                pseudonymized += 1
                continue
            change = _config_change(path, (key_a, key_b), (old_value, new_value), digests, not_compared)
            if change is not None:
                changes.append(change)
    if pseudonymized:
        not_compared.append(_pseudonymized_note(pseudonymized, "configuration value", "configuration values"))
    return changes


def _pseudonymized_pair(keys: tuple, values: tuple) -> bool:
    """Both bundles have the key, and only pseudonyms differ (in its name or its value):
    a secret is left to its digest."""
    from collector.redact import MASK

    (key_a, key_b), (value_a, value_b) = keys, values
    return None not in keys and MASK not in values and _only_pseudonyms_differ((key_a, value_a), (key_b, value_b))


def _config_change(path: str, keys: tuple, values: tuple, digests: tuple, not_compared: List[str]) -> Optional[Change]:
    """The change of one configuration key (old and new name, None where absent), if any."""
    from collector.redact import MASK

    (key_a, key_b), (value_a, value_b) = keys, values
    key = _either(keys)
    both = None not in keys
    if both and value_a == value_b != MASK:
        return None
    secret = MASK in values
    if secret and both:
        digest_a, digest_b = digests[0].get((path, key_a)), digests[1].get((path, key_b))
        if digest_a is None or digest_b is None:
            not_compared.append(f"{path} {key}: a secret without a digest in one bundle")
            return None
        if digest_a == digest_b:
            return None
        return Change("config", f"{path} {key}", key, "changed", SECRET_CHANGED, SECRET_CHANGED,
                      text=f"{path}: {key} changed (a secret: values not shown)")
    kind = "added" if key_a is None else "removed" if key_b is None else "changed"
    shown_a, shown_b = (MASK, MASK) if secret else (value_a, value_b)
    return Change("config", f"{path} {key}", key, kind, shown_a, shown_b,
                  text=f"{path}: {key} {kind}" + (f": {shown_a!r} -> {shown_b!r}" if kind == "changed" else ""))


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


def _datastore_change(name: str, figure: str, old: Any, new: Any) -> Optional[Change]:
    if old == new:
        return None
    numbers = is_number(old) and is_number(new)
    if numbers and figure in NOISY_SIZES and abs(new - old) < SIZE_NOISE_FRACTION * max(abs(old), abs(new)):
        return None
    kind = ("rose" if new > old else "fell") if numbers else _kind(old, new)
    delta = f" ({new - old:+g})" if numbers else ""
    return Change("datastores", name, figure, kind, old, new, text=f"{name}: {figure} {old} -> {new}{delta}")


def _datastores(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    def endpoints(reader):
        return {e.get("name"): e for e in as_list(as_dict(reader.json(schema.DATASTORES)).get("endpoints"))}

    before, after = endpoints(old), endpoints(new)
    changes = []
    pseudonymized = 0
    for name in sorted(set(before) | set(after), key=str):
        a, b = _datastore_figures(as_dict(before.get(name))), _datastore_figures(as_dict(after.get(name)))
        pairs, unpaired = _pair_names(a, b)
        pseudonymized += unpaired
        for figure_a, figure_b in sorted(pairs, key=lambda pair: str(_either(pair))):
            if None not in (figure_a, figure_b) and figure_a != figure_b and a[figure_a] == b[figure_b]:
                pseudonymized += 1  # e.g. a replica member's pseudonymized host, with the same lag
                continue
            change = _datastore_change(name, _either((figure_a, figure_b)), a.get(figure_a), b.get(figure_b))
            if change is not None:
                changes.append(change)
    if pseudonymized:
        not_compared.append(_pseudonymized_note(pseudonymized, "datastore figure name", "datastore figure names"))
    return changes


def _host(old: BundleReader, new: BundleReader) -> List[Change]:
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


def _findings_of(reader: BundleReader) -> List[dict]:
    data = reader.json(schema.FINDINGS)
    if isinstance(data, dict) and isinstance(data.get("findings"), list):
        return data["findings"]
    from collector.analyzers import analyze  # an older bundle without findings: today's analyzers

    return analyze(reader).findings


def _finding_key(finding: dict) -> Tuple[str, str]:
    return str(finding.get("id")), str(finding.get("subject"))


URGENT = ("critical", "warning")  # a new finding of these severities is a regression


def compare_findings(old: List[dict], new: List[dict], not_compared: List[str]) -> Tuple[List[dict], List[dict], int]:
    """(new findings, resolved findings, how many stayed), matched by id and subject; a
    subject that differs only by pseudonyms (a per-bundle key) is noted, not guessed."""
    before = {_finding_key(f): f for f in old}
    after = {_finding_key(f): f for f in new}
    pairs, unpaired = _pair_names(before, after)
    if unpaired:
        not_compared.append(f"{unpaired} finding(s) about pseudonymized subjects (a per-bundle key): "
                            "cannot tell whether they are new or resolved")
    paired = set(pairs)
    return ([after[k] for k in after if (None, k) in paired], [before[k] for k in before if (k, None) in paired],
            sum(1 for pair in pairs if None not in pair))


def _findings(old: BundleReader, new: BundleReader, diff: Diff) -> List[Change]:
    diff.new_findings, diff.resolved_findings, diff.unchanged_findings = compare_findings(
        _findings_of(old), _findings_of(new), diff.not_compared)
    changes = [Change("findings", f"{f.get('id')} {f.get('subject')}", "finding", "added", None, f.get("severity"),
                      regression=f.get("severity") in URGENT,
                      text=f"new {f.get('severity')}: {f.get('title')}") for f in diff.new_findings]
    changes += [Change("findings", f"{f.get('id')} {f.get('subject')}", "finding", "removed", f.get("severity"), None,
                       text=f"resolved: {f.get('title')}") for f in diff.resolved_findings]
    return changes


def _log_error_counts(reader: BundleReader) -> Dict[str, int]:
    from collector.analyzers.logs import scan_tail

    counts = {}
    for entry in as_list(as_dict(reader.json(schema.LOGS_INDEX)).get("files"))[:MAX_INDEX_ENTRIES]:
        tail = as_dict(entry.get("tail"))
        path = tail.get("bundle_path")
        if not path or not reader.exists(path):
            continue
        try:
            counts[entry.get("path")] = len(scan_tail(reader.read(path, MAX_TEXT_MEMBER)).errors)
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
    _same_host(old.manifest.get("hostname"), new.manifest.get("hostname"), allow_different_hosts, not_compared)
    version_a, version_b = old.schema_version, new.schema_version
    if version_a != version_b:
        not_compared.append(f"schema versions differ ({version_a} and {version_b}): only the fields both "
                            "have are compared")


def _same_host(host_a: Any, host_b: Any, allow_different_hosts: bool, not_compared: List[str]) -> None:
    """Refuses two hosts' bundles unless allowed; a pseudonymized host name (per-bundle key)
    cannot tell, so it is noted instead."""
    if host_a == host_b:
        return
    if is_pseudonym(host_a) or is_pseudonym(host_b):
        not_compared.append(f"the host names are pseudonymized ({host_a} and {host_b}): akdiag cannot tell "
                            "whether both bundles come from one host")
    elif not allow_different_hosts:
        raise DifferentHostsError(
            f"the bundles come from different hosts ({host_a} and {host_b}); "
            "compare them anyway with --allow-different-hosts")


def diff_bundles(old: BundleReader, new: BundleReader, allow_different_hosts: bool = False) -> Diff:
    result = Diff(old=_facts(old), new=_facts(new))
    _comparable(old, new, allow_different_hosts, result.not_compared)
    sections: List[Callable[[], List[Change]]] = [
        lambda: _platform(old, new, result.not_compared),
        lambda: _processes(old, new),
        lambda: _pidfiles(old, new),
        lambda: _ports(old, new, result.not_compared),
        lambda: _config(old, new, result.not_compared),
        lambda: _datastores(old, new, result.not_compared),
        lambda: _host(old, new),
        lambda: _findings(old, new, result),
        lambda: _logs(old, new),
    ]
    for name, section in zip(SECTIONS, sections):
        problems = _source_problems(old, new, SECTION_SOURCES.get(name, ()))
        if problems:  # an empty side would read as "everything is gone"
            result.not_compared += [f"{name}: not compared: {problem}" for problem in problems]
            continue
        try:
            result.changes += section()
        except Exception as exc:  # one section that cannot be compared does not stop the rest
            result.not_compared.append(f"{name}: could not be compared ({type(exc).__name__}: {exc})")
    return result


# -- text ----------------------------------------------------------------------------------

_TITLES = {"platform": "Platform", "processes": "Processes", "pidfiles": "PID files", "ports": "Listening ports",
           "config": "Configuration", "datastores": "Datastores", "host": "Host resources",
           "findings": "Findings", "logs": "Logs"}


CUT_MARK = "\u2026"


def _fit(line: str, width: Optional[int]) -> str:
    """The line, cut to `width` columns with a mark where it was cut; whole without a width."""
    if width is None or len(line) <= width:
        return line
    return line[:max(0, width - 1)] + CUT_MARK


def render_text(diff: Diff, width: Optional[int] = None) -> str:
    """The diff for a person.  `width`: a terminal's columns, to which longer lines are cut
    (ending in "…"); None (a file, a pipe, a ticket) keeps every line whole."""
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
            lines.append(_fit(f"  {mark} {change.text}", width))
    if diff.not_compared:
        lines.append("")
        lines.append("Not compared")
        lines.extend(_fit(f"  - {reason}", width) for reason in diff.not_compared)
    if not diff.changes:
        lines.append("")
        lines.append("Nothing changed.")
    return "\n".join(lines) + "\n"


def render_html(diff: Diff) -> str:
    if getattr(diff, "is_cluster", False):
        return diff.render_html()
    from collector.report import render_page

    return render_page("diff.html.j2", {"diff": diff.as_dict(), "titles": _TITLES})
