"""`akdiag diff OLD NEW` of two cluster archives: host by host (hosts matched by their
name in the hosts file), plus what changed for the cluster itself: hosts added, removed,
no longer collected, and cluster-wide findings new or resolved.

JSON form: {"diff_schema": 1, "kind": "cluster", "old": {cluster facts}, "new": {...},
"regression": bool, "cluster": [change, ...], "findings": {"new", "resolved", "unchanged"},
"hosts": {name: a host diff (collector/diff.py's shape) or null}, "not_compared": [...]}
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import List, Optional

from collector.bundle.reader import BundleError, BundleReader
from collector.cluster.analyze import ClusterReader
from collector.diff import DIFF_SCHEMA, URGENT, Change, Diff, DifferentHostsError, compare_findings
from collector.plain import as_dict



@dataclass
class ClusterDiff:
    old: dict
    new: dict
    hosts: "OrderedDict[str, Optional[Diff]]" = field(default_factory=OrderedDict)
    changes: List[Change] = field(default_factory=list)
    new_findings: List[dict] = field(default_factory=list)
    resolved_findings: List[dict] = field(default_factory=list)
    unchanged_findings: int = 0
    not_compared: List[str] = field(default_factory=list)
    is_cluster = True

    @property
    def regression(self) -> bool:
        return any(c.regression for c in self.changes) or any(d.regression for d in self.hosts.values() if d)

    def as_dict(self) -> dict:
        return {
            "diff_schema": DIFF_SCHEMA,
            "kind": "cluster",
            "old": self.old,
            "new": self.new,
            "regression": self.regression,
            "cluster": [c.as_dict() for c in self.changes],
            "findings": {"new": self.new_findings, "resolved": self.resolved_findings,
                         "unchanged": self.unchanged_findings},
            "hosts": {name: (d.as_dict() if d else None) for name, d in self.hosts.items()},
            "not_compared": self.not_compared,
        }

    def render_text(self, width: Optional[int] = None) -> str:
        from collector.diff import _fit, render_text

        lines = [f"akdiag diff of two cluster archives ({len(self.hosts)} hosts compared)",
                 f"  old: {self.old.get('started_at')} {self.old.get('label') or ''}".rstrip(),
                 f"  new: {self.new.get('started_at')} {self.new.get('label') or ''}".rstrip(),
                 "Verdict: " + ("REGRESSION" if self.regression else "no regression")]
        if self.changes:
            lines += ["", f"Cluster ({len(self.changes)})"]
            lines += [_fit(f"  {'!' if c.regression else '-'} {c.text}", width) for c in self.changes]
        for name, diff in self.hosts.items():
            if diff is None:
                continue
            lines += ["", f"=== {name} " + "=" * max(3, min(width or 80, 80) - len(name) - 5)]
            inner = render_text(diff, width - 2 if width else None)
            lines += ["  " + line if line else line for line in inner.rstrip("\n").split("\n")]
        if self.not_compared:
            lines += ["", "Not compared"] + [_fit(f"  - {reason}", width) for reason in self.not_compared]
        return "\n".join(lines) + "\n"

    def render_html(self) -> str:
        from collector.diff import _TITLES
        from collector.report import render_page

        return render_page("cluster_diff.html.j2", {"diff": self.as_dict(), "titles": _TITLES})


def _facts(cluster: ClusterReader) -> dict:
    manifest = cluster.manifest
    return {"label": manifest.get("label"), "started_at": manifest.get("started_at"),
            "cluster_schema": manifest.get("cluster_schema"),
            "tool_version": as_dict(manifest.get("tool")).get("version"), "hosts": cluster.names()}


def _cluster_findings(reader: BundleReader) -> List[dict]:
    from collector.analyzers import read_findings

    return read_findings(reader) or []


def diff_clusters(old: BundleReader, new: BundleReader, allow_different_hosts: bool = False) -> ClusterDiff:
    from collector.diff import diff_bundles
    from collector.bundle import schema

    if not (old.exists(schema.CLUSTER_MANIFEST) and new.exists(schema.CLUSTER_MANIFEST)):
        raise BundleError("one of the two is a cluster archive and the other a single host's bundle: compare "
                          "the host's bundle with hosts/<name>/ of the extracted cluster archive instead")
    a, b = ClusterReader(old.root), ClusterReader(new.root)
    result = ClusterDiff(old=_facts(a), new=_facts(b))
    status_a = {h.get("name"): h.get("status") for h in a.hosts}
    status_b = {h.get("name"): h.get("status") for h in b.hosts}
    names = list(OrderedDict.fromkeys(a.names() + b.names()))
    for name in names:
        if name not in status_a:
            result.changes.append(Change("cluster", name, "host", "added", None, status_b.get(name),
                                         text=f"host {name} added ({status_b.get(name)})"))
            continue
        if name not in status_b:
            result.changes.append(Change("cluster", name, "host", "removed", status_a.get(name), None,
                                         text=f"host {name} is not in the new archive"))
            continue
        if status_a[name] != status_b[name]:
            worse = status_a[name] == "ok" and status_b[name] != "duplicate"  # collected under its other name
            result.changes.append(Change("cluster", name, "status", "changed", status_a[name], status_b[name],
                                         regression=worse,
                                         text=f"host {name}: {status_a[name]} -> {status_b[name]}"))
        old_bundle, new_bundle = a.bundle(name), b.bundle(name)
        if old_bundle is None or new_bundle is None:
            missing = [side for side, r in (("old", old_bundle), ("new", new_bundle)) if r is None]
            result.not_compared.append(f"{name}: no bundle in the {' and '.join(missing)} archive")
            result.hosts[name] = None
            continue
        try:
            result.hosts[name] = diff_bundles(old_bundle, new_bundle, allow_different_hosts)
        except DifferentHostsError as exc:
            result.not_compared.append(f"{name}: {exc}")
            result.hosts[name] = None
    result.new_findings, result.resolved_findings, result.unchanged_findings = compare_findings(
        _cluster_findings(old), _cluster_findings(new), result.not_compared)
    for finding in result.new_findings:
        result.changes.append(Change("cluster", str(finding.get("subject")), str(finding.get("id")), "added", None,
                                     finding.get("severity"), regression=finding.get("severity") in URGENT,
                                     text=f"new {finding.get('severity')} finding: {finding.get('title')}"))
    for finding in result.resolved_findings:
        result.changes.append(Change("cluster", str(finding.get("subject")), str(finding.get("id")), "removed",
                                     finding.get("severity"), None, text=f"resolved: {finding.get('title')}"))
    return result
