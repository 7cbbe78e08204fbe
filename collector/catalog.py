"""The platform catalog: the processes and datastores akdiag expects on a host.

The built-in catalog.yaml is merged with a user's file (--catalog).  Errors in a
user's file name the file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from yaml.constructor import SafeConstructor

from collector.userpattern import compile_error
from collector.yamlfile import compose_file, where

BUILTIN_CATALOG = Path(__file__).with_name("catalog.yaml")


class CatalogError(Exception):
    """A catalog file that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class ProcessSpec:
    """One platform process the catalog expects: its title, port and PID file."""

    binary: str
    title: str
    port: Optional[int] = None
    address: str = "127.0.0.1"
    remote: bool = False
    description: str = ""
    retired_in: Optional[str] = None
    pidfile: str = ""

    @property
    def pidfile_name(self) -> str:
        return self.pidfile or f"{self.binary}.pid"


@dataclass(frozen=True)
class ComponentSpec:
    """One datastore or service the platform uses, where the catalog says it is."""

    name: str
    kind: str
    host: Optional[str] = None
    port: Optional[int] = None
    description: str = ""
    process: Optional[str] = None  # kind http: the catalog process whose address and port serve it
    management_port: Optional[int] = None  # kind rabbitmq: the management HTTP API
    http_port: Optional[int] = None  # kind clickhouse: the HTTP interface
    defined_in: str = ""  # set by the merge, not a YAML field: the file that last gave host or port


@dataclass(frozen=True)
class Catalog:
    """The platform's processes, components, thresholds and redaction patterns."""

    processes: Tuple[ProcessSpec, ...]
    components: Tuple[ComponentSpec, ...]
    thresholds: Dict[str, Any] = field(default_factory=dict)
    redact: Tuple[str, ...] = ()
    sources: Tuple[str, ...] = ()
    upload: Dict[str, str] = field(default_factory=dict)  # the vendor's upload address: url, method, field

    def process(self, binary: str) -> Optional[ProcessSpec]:
        return next((p for p in self.processes if p.binary == binary), None)


# field name -> accepted python types (required fields are checked where entries are used)
_PROCESS_FIELDS = {
    "binary": (str,),
    "title": (str,),
    "port": (int, type(None)),
    "address": (str,),
    "remote": (bool,),
    "description": (str,),
    "retired_in": (str, type(None)),
    "pidfile": (str,),
}
_COMPONENT_FIELDS = {
    "name": (str,),
    "kind": (str,),
    "host": (str, type(None)),
    "port": (int, type(None)),
    "description": (str,),
    "process": (str, type(None)),
    "management_port": (int, type(None)),
    "http_port": (int, type(None)),
}
_COMPONENT_KINDS = ("mongodb", "ssdb", "kvrocks", "redis", "rabbitmq", "clickhouse", "http")
_TOP_FIELDS = ("schema", "processes", "components", "thresholds", "redact", "upload")
_UPLOAD_FIELDS = ("url", "method", "field")
_UPLOAD_SCHEMES = ("https://", "http://", "sftp://")


def _mapping_items(node: yaml.Node, source: str, what: str):
    if not isinstance(node, yaml.MappingNode):
        raise CatalogError(f"{where(source, node)}: {what} must be a mapping")
    for key_node, value_node in node.value:
        yield key_node.value, key_node, value_node


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a composed node (the node itself is kept for line numbers)."""
    return SafeConstructor().construct_object(node, deep=True)


def _parse_entries(
    node: yaml.Node, source: str, section: str, fields: dict, key: str
) -> List[Tuple[dict, yaml.Node]]:
    if not isinstance(node, yaml.SequenceNode):
        raise CatalogError(f"{where(source, node)}: field '{section}' must be a list")
    entries = []
    for item in node.value:
        entry: Dict[str, Any] = {}
        for name, key_node, value_node in _mapping_items(item, source, f"an entry of '{section}'"):
            if name not in fields:
                known = ", ".join(fields)
                raise CatalogError(
                    f"{where(source, key_node)}: unknown field '{section}.{name}' (known: {known})"
                )
            value = _scalar(value_node)
            types = fields[name]
            if isinstance(value, bool) and bool not in types:
                value = object()  # a bool is an int in Python; not a port
            if not isinstance(value, types):
                wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise CatalogError(
                    f"{where(source, value_node)}: field '{section}.{name}' must be {wanted}, "
                    f"got {value_node.value!r}"
                )
            if name.endswith("port") and value is not None and not 0 < value < 65536:
                raise CatalogError(f"{where(source, value_node)}: field '{section}.{name}' must be 1-65535")
            if name == "kind" and value not in _COMPONENT_KINDS:
                raise CatalogError(
                    f"{where(source, value_node)}: field '{section}.kind' must be one of "
                    f"{', '.join(_COMPONENT_KINDS)}, got {value!r}"
                )
            entry[name] = value
        if key not in entry:
            raise CatalogError(f"{where(source, item)}: an entry of '{section}' has no '{key}' field")
        entries.append((entry, item))
    return entries


def _load_document(path: Path) -> Tuple[yaml.Node, str]:
    node = compose_file(path, "catalog", CatalogError)
    if node is None:
        node = yaml.MappingNode("tag:yaml.org,2002:map", [])
    return node, str(path)


def _merge(base: Catalog, path: Path) -> Catalog:
    node, source = _load_document(path)
    processes = {p.binary: p for p in base.processes}
    components = {c.name: c for c in base.components}
    thresholds = dict(base.thresholds)
    redact = list(base.redact)
    upload = dict(base.upload)
    for name, key_node, value_node in _mapping_items(node, source, "the catalog"):
        if name not in _TOP_FIELDS:
            raise CatalogError(
                f"{where(source, key_node)}: unknown field '{name}' (known: {', '.join(_TOP_FIELDS)})"
            )
        if name == "processes":
            for entry, _item in _parse_entries(value_node, source, "processes", _PROCESS_FIELDS, "binary"):
                current = processes.get(entry["binary"])
                if current is None:
                    current = ProcessSpec(binary=entry["binary"], title=f"AK:{entry['binary']}")
                processes[entry["binary"]] = replace(current, **entry)
        elif name == "components":
            for entry, item in _parse_entries(value_node, source, "components", _COMPONENT_FIELDS, "name"):
                current = components.get(entry["name"])
                if current is None:
                    if "kind" not in entry:
                        raise CatalogError(f"{where(source, item)}: new component needs a 'kind' field")
                    current = ComponentSpec(name=entry["name"], kind=entry["kind"])
                if "host" in entry or "port" in entry or entry["name"] not in components:
                    entry["defined_in"] = source
                components[entry["name"]] = replace(current, **entry)
        elif name == "thresholds":
            value = _scalar(value_node)
            if not isinstance(value, dict):
                raise CatalogError(f"{where(source, value_node)}: field 'thresholds' must be a mapping")
            thresholds.update(value)
        elif name == "redact":
            value = _scalar(value_node)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise CatalogError(f"{where(source, value_node)}: field 'redact' must be a list of strings")
            for pattern in value:
                error = compile_error(pattern)
                if error:
                    raise CatalogError(
                        f"{where(source, value_node)}: field 'redact' has an invalid regular expression "
                        f"{pattern!r}: {error}"
                    )
            redact.extend(value)
        elif name == "upload":
            upload.update(_upload_entry(value_node, source))
    return Catalog(
        processes=tuple(processes.values()),
        components=tuple(components.values()),
        thresholds=thresholds,
        redact=tuple(redact),
        sources=base.sources + (source,),
        upload=upload,
    )


def _upload_entry(node: yaml.Node, source: str) -> Dict[str, str]:
    """`upload: {url: https://..., method: post, field: file}`; the address is checked in
    full where it is used (collector.upload), and never quoted here: it may hold a secret."""
    entry = {}
    for name, key_node, value_node in _mapping_items(node, source, "field 'upload'"):
        if name not in _UPLOAD_FIELDS:
            raise CatalogError(f"{where(source, key_node)}: unknown field 'upload.{name}' "
                               f"(known: {', '.join(_UPLOAD_FIELDS)})")
        value = _scalar(value_node)
        if not isinstance(value, str) or not value.strip():
            raise CatalogError(f"{where(source, value_node)}: field 'upload.{name}' must be a non-empty string")
        if name == "url" and not value.strip().lower().startswith(_UPLOAD_SCHEMES):
            raise CatalogError(f"{where(source, value_node)}: field 'upload.url' must start with https://, "
                               "sftp:// or http://")
        if name == "method" and value.lower() not in ("put", "post"):
            raise CatalogError(f"{where(source, value_node)}: field 'upload.method' must be put or post, "
                               f"got {value!r}")
        entry[name] = value.strip()
    return entry


def load_catalog(extra: Optional[Path] = None) -> Catalog:
    """The built-in catalog, with the user's file merged over it when given."""
    empty = Catalog(processes=(), components=(), sources=())
    catalog = _merge(empty, BUILTIN_CATALOG)
    if extra is not None:
        catalog = _merge(catalog, Path(extra))
    return catalog
