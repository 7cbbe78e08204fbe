"""The result of comparing two bundles of one host: its changes, findings and the JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List

from collector.bundle.reader import BundleReader
from collector.plain import as_dict, is_number

DIFF_SCHEMA = 1
SECTIONS = ("platform", "processes", "pidfiles", "ports", "config", "datastores", "host", "findings", "logs")
MEMORY_NOISE_POINTS = 10.0  # percentage points of available memory
DISK_NOISE_POINTS = 2.0  # percentage points of free space
SIZE_NOISE_FRACTION = 0.10  # a memory or disk size that moved less than this share of itself
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


def bundle_facts(reader: BundleReader) -> dict:
    manifest = reader.manifest
    return {"hostname": manifest.get("hostname"), "label": manifest.get("label"),
            "started_at": manifest.get("started_at"), "schema_version": manifest.get("schema_version"),
            "tool_version": as_dict(manifest.get("tool")).get("version"), "basedir": manifest.get("basedir")}


def change_kind(old: Any, new: Any) -> str:
    return "added" if old is None else "removed" if new is None else "changed"

