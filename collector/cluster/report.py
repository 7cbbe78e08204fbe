"""The cluster summary.html: hosts and how their collection went, cluster-wide findings,
every catalog process by host, each datastore as each host saw it, and each host's own
findings (those the cluster explains, a remote-capable process running on another host,
set apart).  Rendered from the archive only, like a host's summary; each host's own
summary.html stays in its folder, linked from here.

`akdiag report` on a cluster archive re-analyzes every host's bundle and the cluster
with this akdiag and writes the summary and findings beside the archive."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional


from collector import TOOL_NAME, __version__
from collector.analyzers import Analysis, analyze, count_by_severity, read_findings, sort_findings, worst_severity
from collector.analyzers.findings import Thresholds
from collector.bundle import schema
from collector.check import counts_text
from collector.cluster import CLUSTER_SCHEMA_VERSION, HOSTS_DIR
from collector.plain import as_dict
from collector.cluster.analyze import (ClusterReader, analyze_cluster, datastore_matrix, explained_by_cluster,
                                       process_matrix)
from collector.cluster.shared import hosts_text, split_shared

TEMPLATE = "cluster.html.j2"


def _cluster_anchor(finding: dict) -> str:
    fid, subject = str(finding.get("id") or ""), str(finding.get("subject") or "")
    if fid.startswith("cluster.process_"):
        return f"proc-{subject}"
    if fid in ("cluster.host_failed", "cluster.cleanup_failed"):
        return f"host-{subject}"
    return "hosts"


def _host_rows(cluster: ClusterReader, platform: Dict[str, Optional[str]]) -> List[dict]:
    rows = []
    for record in cluster.hosts:
        name = str(record.get("name") or "?")
        error = as_dict(record.get("error"))
        bundle = as_dict(record.get("bundle"))
        akdiag = as_dict(record.get("akdiag"))
        clock = as_dict(record.get("clock"))
        remote = as_dict(record.get("remote"))
        reader = cluster.bundle(name)
        rows.append({
            "name": name, "destination": record.get("destination"), "roles": record.get("roles") or [],
            "basedir": record.get("basedir"), "status": record.get("status"), "error": error,
            "duration": record.get("duration"), "deadline": record.get("deadline_seconds"),
            "steps": [s for s in record.get("steps") or [] if isinstance(s, dict)],
            "clock_offset": clock.get("offset_seconds"), "clock_rtt": clock.get("round_trip_seconds"),
            "akdiag_version": akdiag.get("version"), "akdiag_source": akdiag.get("source"),
            "platform_version": platform.get(name), "remote_hostname": remote.get("hostname"),
            "python": remote.get("python_version"), "bundle": bundle,
            "summary_link": f"{HOSTS_DIR}/{name}/{schema.SUMMARY_HTML}" if reader and reader.exists(schema.SUMMARY_HTML)
            else None,
            "cleanup": as_dict(record.get("cleanup")), "duplicate_of": record.get("duplicate_of"),
            "also_listed_as": [str(n) for n in record.get("also_listed_as") or []],
        })
    return rows


def build_cluster_context(cluster: ClusterReader, analysis: Optional[dict] = None,
                          host_findings: Optional[Dict[str, List[dict]]] = None) -> dict:
    """Everything cluster.html.j2 shows.  `analysis`: the cluster's findings.json shape
    (default: the archive's own); `host_findings`: each host's findings (default: its
    bundle's findings.json)."""
    from collector.report import finding_rows, platform_version

    manifest = cluster.manifest
    if analysis is None:
        analysis = _own_findings(cluster)
    thresholds = Thresholds(as_dict(analysis).get("thresholds") if analysis else None)
    matrix = process_matrix(cluster, thresholds)
    bundles = cluster.bundles()
    platform = {name: platform_version(reader) for name, reader in bundles.items()}
    if host_findings is None:
        host_findings = {name: read_findings(reader) or [] for name, reader in bundles.items()}
    split = explained_by_cluster(cluster, host_findings, matrix)
    cluster_findings = sort_findings(f for f in (as_dict(analysis).get("findings") or []) if isinstance(f, dict))
    rows = finding_rows(cluster_findings, 1, _cluster_anchor)
    number = len(rows) + 1
    shared, own = split_shared({name: part["findings"] for name, part in split.items()})
    shared_rows = finding_rows(shared, number, lambda _f: None)
    for row, finding in zip(shared_rows, shared):
        row.update(hosts=finding["hosts"], hosts_text=hosts_text(finding), every_host=finding["every_host"])
    number += len(shared_rows)
    hosts_view = []
    everything = list(cluster_findings) + shared
    for name in cluster.names():
        part = split.get(name, {"findings": [], "explained": []})
        mine = own.get(name, [])
        link = f"{HOSTS_DIR}/{name}/{schema.SUMMARY_HTML}"
        host_rows = finding_rows(mine, number, lambda _f: None)
        number += len(host_rows)
        everything += mine
        hosts_view.append({"name": name, "rows": host_rows, "counts": count_by_severity(mine),
                           "shared": sum(1 for f in shared if name in f["hosts"]),
                           "explained": part["explained"], "collected": name in bundles, "link": link,
                           "worst": worst_severity(mine)})
    counts = count_by_severity(everything)
    records = cluster.hosts
    collected = sum(1 for r in records if r.get("status") == "ok")
    listed = sum(1 for r in records if r.get("status") != "duplicate")
    worst = worst_severity(everything)
    level = {"critical": "bad", "warning": "warn"}.get(worst or "", "ok")
    lead = next((f.get("title") for f in cluster_findings if f.get("severity") == worst), None) or next(
        (f"{hosts_text(f)}: {f.get('title')}" for f in shared if f.get("severity") == worst), None) or next(
        (f"{h['name']}: {h['rows'][0]['title']}" for h in hosts_view if h["rows"] and h["worst"] == worst), None)
    verdict = (f"{collected} of {listed} hosts collected · cluster: {counts_text(cluster_findings)} · "
               f"hosts: {counts_text(everything[len(cluster_findings):])}"
               + (f" — {lead}" if lead and level != "ok" else ""))
    return {
        "tool": {"name": TOOL_NAME, "version": __version__},
        "cluster": {"label": manifest.get("label"), "started_at": manifest.get("started_at"),
                    "finished_at": manifest.get("finished_at"), "duration": manifest.get("duration"),
                    "tool_version": as_dict(manifest.get("tool")).get("version"),
                    "command_line": manifest.get("command_line"), "local": as_dict(manifest.get("local")),
                    "options": as_dict(manifest.get("options")), "schema": manifest.get("cluster_schema"),
                    "newer_schema": isinstance(manifest.get("cluster_schema"), int)
                    and manifest.get("cluster_schema") > CLUSTER_SCHEMA_VERSION},
        "manifest_note": None if manifest else "cluster.json is missing or unreadable.",
        "verdict": {"text": verdict, "level": level},
        "counts": counts,
        "findings": rows,
        "findings_available": analysis is not None,
        "analyzers": [a for a in (as_dict(analysis).get("analyzers") or []) if isinstance(a, dict)],
        "hosts": _host_rows(cluster, platform),
        "matrix": matrix,
        "datastores": datastore_matrix(cluster),
        "host_findings": hosts_view,
        "shared_findings": shared_rows,
        "host_count": listed,
        "notes": [str(n) for n in manifest.get("notes") or [] if isinstance(n, str)],
    }


def _own_findings(cluster: ClusterReader) -> Optional[dict]:
    """The cluster's own findings.json."""
    from collector.bundle.reader import BundleReader

    data = BundleReader(cluster.root).json(schema.FINDINGS)
    return data if isinstance(data, dict) else None


def render_cluster(cluster: ClusterReader, analysis: Optional[dict] = None,
                   host_findings: Optional[Dict[str, List[dict]]] = None) -> str:
    from collector.report import render_page

    return render_page(TEMPLATE, build_cluster_context(cluster, analysis, host_findings))


def reanalyze(cluster: ClusterReader, thresholds: Optional[Dict[str, Any]]) -> tuple:
    """(the cluster's analysis, each host's analysis) with this akdiag's analyzers."""
    hosts = {name: analyze(reader, thresholds) for name, reader in cluster.bundles().items()}
    return analyze_cluster(cluster, thresholds), hosts


def combined_findings(cluster: ClusterReader, cluster_analysis: Analysis, hosts: Dict[str, Analysis]) -> List[dict]:
    """Cluster findings and every host's standing findings (titles prefixed with the
    host's name; one found on several hosts once, prefixed with their names), critical
    first: what `akdiag report` prints."""
    split = explained_by_cluster(cluster, {name: a.findings for name, a in hosts.items()})
    shared, own = split_shared({name: part["findings"] for name, part in split.items()})
    found = list(cluster_analysis.findings)
    found += [dict(f, title=f"{hosts_text(f)}: {f.get('title')}") for f in shared]
    for name, findings in own.items():
        for finding in findings:
            found.append(dict(finding, title=f"{name}: {finding.get('title')}", host=name))
    return sort_findings(found)


def rerender_cluster(root: Path, output: Path, catalog) -> "object":
    """`akdiag report` on a cluster archive's folder: today's analyzers over every host and
    the cluster; the summary to `output`, the findings beside it.  A cluster archive or a
    host bundle newer than this akdiag reads is refused (NewerSchemaError)."""
    from collector.bundle.writer import BundleWriter, json_bytes
    from collector.redact import Scrubber
    from collector.rerender import NewerSchemaError, Rerendered, check_schema, findings_path_for

    cluster = ClusterReader(root)
    version = cluster.schema_version
    if isinstance(version, int) and not isinstance(version, bool) and version > CLUSTER_SCHEMA_VERSION:
        raise NewerSchemaError(f"this cluster archive has schema version {version}, newer than akdiag "
                               f"{__version__} reads (up to {CLUSTER_SCHEMA_VERSION}): upgrade akdiag to re-render it")
    for reader in cluster.bundles().values():
        check_schema(reader.schema_version)
    cluster_analysis, hosts = reanalyze(cluster, catalog.thresholds)
    host_findings = {name: a.findings for name, a in hosts.items()}
    html = render_cluster(cluster, cluster_analysis.as_dict(), host_findings)
    document = dict(cluster_analysis.as_dict(), hosts={name: a.as_dict() for name, a in hosts.items()})
    output = Path(output)
    findings_path = findings_path_for(output)
    # Made of the archive's own (scrubbed) files and akdiag's words, like a host's report.
    writer = BundleWriter(output.parent, Scrubber(()))
    writer.write_unscrubbed_bytes(output.name, html.encode("utf-8", "surrogateescape"), "report")
    writer.write_unscrubbed_bytes(findings_path.name, json_bytes(document), "report")
    shown = Analysis(combined_findings(cluster, cluster_analysis, hosts), cluster_analysis.analyzers,
                     cluster_analysis.thresholds)
    return Rerendered(version if isinstance(version, int) else None, output, findings_path, shown)
