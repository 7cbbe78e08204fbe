"""The cluster archive as data, and the cluster-wide analyzers.

Like the host analyzers, these read only the archive (cluster.json and the hosts'
bundles under hosts/<name>/), never a live host, so that a cluster archive gives the
same findings wherever and whenever `akdiag report` reads it.

Findings (cluster findings.json, the analyzers' own shape):
  cluster.host_failed           warning   a host whose bundle could not be collected (reason given)
  cluster.cleanup_failed        info      akdiag's folder on a host may be left behind
  cluster.same_machine          info      a host listed twice under two names, collected once
  cluster.process_nowhere       critical  a catalog process that runs on none of the collected hosts
  cluster.process_on_many_hosts warning   a process that should run once runs on several hosts that
                                          share no role (the hosts file's `roles`: hosts that share one
                                          are replicas, as app1/app2 of the fail-safe layout)
  cluster.clock_skew            warning   the hosts' clocks differ by more than 2 s (threshold)
  cluster.platform_versions     warning   the hosts run different platform versions
  cluster.akdiag_versions       info      the bundles were written by different akdiag versions
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional

from collector.analyzers import Analysis, sort_findings
from collector.analyzers.common import dicts, load, number
from collector.plain import as_dict
from collector.analyzers.findings import CRITICAL, INFO, WARNING, Finding, Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.cluster import CLUSTER_MANIFEST, HOSTS_DIR

RETIRED_NOTE = "removed from the platform"


class ClusterReader:
    """A cluster archive's folder: cluster.json and a bundle per collected host."""

    def __init__(self, root: Path):
        self.root = Path(root)
        data = BundleReader(self.root).json(CLUSTER_MANIFEST)
        self.manifest: dict = as_dict(data)

    @property
    def hosts(self) -> List[dict]:
        return dicts(self.manifest.get("hosts"))

    def names(self) -> List[str]:
        """The hosts of the run, a machine listed twice counted once (its first name)."""
        return [str(h.get("name")) for h in self.hosts if h.get("name") and h.get("status") != "duplicate"]

    def bundle(self, name: str) -> Optional[BundleReader]:
        """The host's bundle, when the archive holds one (a plain name: no path tricks)."""
        if not name or "/" in name or name in (".", "..") or name.startswith("."):
            return None
        folder = self.root / HOSTS_DIR / name
        return BundleReader(folder) if (folder / schema.MANIFEST).is_file() else None

    def bundles(self) -> "OrderedDict[str, BundleReader]":
        found: "OrderedDict[str, BundleReader]" = OrderedDict()
        for name in self.names():
            reader = self.bundle(name)
            if reader is not None:
                found[name] = reader
        return found

    @property
    def schema_version(self) -> Any:
        return self.manifest.get("cluster_schema")


# --------------------------------------------------------------------------- the process matrix

def _patterns(thresholds: Thresholds) -> List[str]:
    value = thresholds.values.get("cluster_processes_on_many_hosts")
    return [str(v) for v in value] if isinstance(value, list) else []


def _retired(record: dict) -> bool:
    """Retired in the platform's newer versions: the collector says so in the note; a
    process that is neither remote-capable nor down but absent can only be retired."""
    note = str(record.get("note") or "")
    return note.startswith(RETIRED_NOTE) or (record.get("status") == "absent" and not record.get("remote_capable"))


def host_roles(cluster: ClusterReader) -> Dict[str, List[str]]:
    """Each host's roles as cluster.json records them (the hosts file's `roles`)."""
    out: Dict[str, List[str]] = {}
    for record in cluster.hosts:
        if not record.get("name"):
            continue
        value = record.get("roles")
        value = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        roles: List[str] = []
        for role in value:
            if isinstance(role, str) and role.strip() and role.strip() not in roles:
                roles.append(role.strip())
        out[str(record["name"])] = roles
    return out


def shared_roles(hosts: List[str], roles: Dict[str, List[str]]) -> List[str]:
    """The roles that every one of these hosts has (compared without regard to case), in
    the first host's order: hosts that share a role are replicas of each other."""
    if not hosts:
        return []
    common = None
    for host in hosts:
        mine = {r.casefold() for r in roles.get(host, [])}
        common = mine if common is None else common & mine
    return [r for r in roles.get(hosts[0], []) if r.casefold() in (common or set())]


def process_matrix(cluster: ClusterReader, thresholds: Optional[Thresholds] = None) -> dict:
    """Every catalog process by host.  Cell statuses: running, down, absent, `elsewhere`
    (a remote-capable process that runs on another host: not missing anywhere), and
    `no_data` (the host's bundle or its processes.json is missing).

    A process that should run once (not remote-capable, not allowed by the
    `cluster_processes_on_many_hosts` threshold) running on several hosts is `many`,
    unless all those hosts share a role (`replicas`: the fail-safe layout's app1/app2
    both run the application processes)."""
    allowed_many = _patterns(thresholds or Thresholds())
    names = cluster.names()
    roles = host_roles(cluster)
    per_host: Dict[str, Dict[str, dict]] = {}
    for name, reader in cluster.bundles().items():
        data = load(reader, schema.PROCESSES)
        if data is not None:
            per_host[name] = OrderedDict((str(p.get("name")), p) for p in dicts(data.get("expected")) if p.get("name"))
    order: List[str] = []
    for records in per_host.values():
        order += [n for n in records if n not in order]
    rows = []
    for process in order:
        records = {h: per_host[h][process] for h in per_host if process in per_host[h]}
        first = next(iter(records.values()))
        remote = any(bool(r.get("remote_capable")) for r in records.values())
        retired = all(_retired(r) for r in records.values())
        running_on = [h for h in names if records.get(h, {}).get("status") == "running"]
        cells = OrderedDict()
        for host in names:
            record = records.get(host)
            if record is None:
                cells[host] = {"status": "no_data", "pids": [], "port": None, "note": None}
                continue
            status = str(record.get("status") or "unknown")
            note = record.get("note")
            if status == "absent" and remote and not retired and running_on:
                status, note = "elsewhere", "runs on " + ", ".join(h for h in running_on if h != host)
            port = as_dict(record.get("port"))
            cells[host] = {"status": status, "pids": [p for p in record.get("pids") or [] if number(p) is not None],
                           "port": port.get("state") if port.get("expected") is not None else None,
                           "port_number": port.get("expected"), "note": note}
        once = not remote and not any(fnmatch.fnmatchcase(process, p) for p in allowed_many)
        common = shared_roles(running_on, roles) if len(running_on) > 1 else []
        if retired:
            verdict = "retired"
        elif not running_on:
            verdict = "nowhere"
        elif len(running_on) > 1 and once:
            verdict = "replicas" if common else "many"
        else:
            verdict = "ok"
        rows.append({"name": process, "title": first.get("title"), "description": first.get("description"),
                     "remote_capable": remote, "retired": retired, "once": once, "running_on": running_on,
                     "shared_roles": common, "roles_by_host": {h: roles.get(h, []) for h in running_on},
                     "cells": cells, "verdict": verdict})
    collected = list(per_host)
    return {"hosts": names, "collected": collected,
            "missing": [h for h in names if h not in per_host], "rows": rows}


def datastore_matrix(cluster: ClusterReader) -> dict:
    """Each datastore endpoint as each host saw it."""
    names = cluster.names()
    per_host: Dict[str, Dict[str, dict]] = {}
    for name, reader in cluster.bundles().items():
        data = load(reader, schema.DATASTORES)
        if data is not None:
            per_host[name] = OrderedDict((str(e.get("name")), e) for e in dicts(data.get("endpoints")) if e.get("name"))
    order: List[str] = []
    for records in per_host.values():
        order += [n for n in records if n not in order]
    rows, unconfigured = [], []
    for endpoint in order:
        cells = OrderedDict()
        for host in names:
            record = per_host.get(host, {}).get(endpoint)
            if record is None:
                cells[host] = {"status": "no_data"}
                continue
            cells[host] = {"status": str(record.get("status") or "unknown"), "host": record.get("host"),
                           "port": record.get("port"), "latency_ms": record.get("latency_ms"),
                           "error": record.get("error"), "kind": record.get("kind")}
        statuses = {c["status"] for c in cells.values()} - {"no_data"}
        if statuses <= {"not_configured"}:
            unconfigured.append(endpoint)
            continue
        kind = next((c.get("kind") for c in cells.values() if c.get("kind")), None)
        rows.append({"name": endpoint, "kind": kind, "cells": cells})
    return {"hosts": names, "rows": rows, "not_configured": unconfigured}


def explained_by_cluster(cluster: ClusterReader, findings_by_host: Dict[str, List[dict]],
                         matrix: Optional[dict] = None) -> Dict[str, Dict[str, List[dict]]]:
    """Each host's findings split into those that stand and those the cluster explains:
    `process.absent_remote` of a process that runs on another host."""
    matrix = matrix or process_matrix(cluster)
    elsewhere = {(host, row["name"]) for row in matrix["rows"] for host, cell in row["cells"].items()
                 if cell["status"] == "elsewhere"}
    out = {}
    for host, findings in findings_by_host.items():
        stand, explained = [], []
        for finding in findings:
            if finding.get("id") == "process.absent_remote" and (host, str(finding.get("subject"))) in elsewhere:
                explained.append(finding)
            else:
                stand.append(finding)
        out[host] = {"findings": sort_findings(stand), "explained": explained}
    return out


# --------------------------------------------------------------------------- analyzers

def _hosts(cluster: ClusterReader, _t: Thresholds) -> List[Finding]:
    out = []
    for record in cluster.hosts:
        name = str(record.get("name") or "?")
        error = as_dict(record.get("error"))
        status = record.get("status")
        if status == "duplicate":
            first = str(record.get("duplicate_of") or "?")
            out.append(Finding(
                "cluster.same_machine", INFO, name,
                f"{name} ({record.get('destination')}) is the same machine as {first}: collected once, as {first}",
                CLUSTER_MANIFEST, {"duplicate_of": first, "roles": record.get("roles") or []},
                f"List each machine once in the hosts file (keep {first} or {name}); akdiag found that both names "
                "reach one machine (the same machine id, boot and PID namespace)."))
            continue
        if status != "ok" or cluster.bundle(name) is None:
            reason = error.get("message") or ("its bundle is missing from the archive" if status == "ok" else status)
            out.append(Finding(
                "cluster.host_failed", WARNING, name,
                f"{name} ({record.get('destination')}) could not be collected: {reason}", CLUSTER_MANIFEST,
                {"status": status, "stage": error.get("stage"), "kind": error.get("kind"),
                 "exit_status": error.get("exit_status"), "stderr": error.get("stderr_tail"),
                 "duration": record.get("duration")},
                _HOST_HINTS.get(str(error.get("kind")), "Collect it by hand with `akdiag collect` on the host and "
                                "send its bundle with this archive.")))
        cleanup = as_dict(record.get("cleanup"))
        if cleanup.get("status") == "failed":
            out.append(Finding(
                "cluster.cleanup_failed", INFO, name,
                f"akdiag's folder {cleanup.get('folder')} on {name} may be left behind", CLUSTER_MANIFEST,
                {"folder": cleanup.get("folder"), "error": cleanup.get("error")},
                "Remove that folder on the host by hand (it holds akdiag's copy and the host's bundle)."))
    return out


_HOST_HINTS = {
    "unreachable": "Check that the host is up and that `ssh <destination>` works from here (address, port, "
                   "firewall, jump host in ~/.ssh/config); then collect again.",
    "auth_failed": "The host refused the SSH key: add your public key to the host's authorized_keys, or load the "
                   "right key into ssh-agent; akdiag never asks for a password.",
    "host_key": "The host's key is not the one known_hosts holds (or none is known): check it and accept it with a "
                "plain `ssh <destination>` first; akdiag never turns host key checking off.",
    "timeout": "The host did not finish within its deadline: give it more time with `timeout:` in the hosts file "
               "or --host-timeout, or run `akdiag collect` on it by hand.",
    "no_python": "Install python3 (3.9 or newer) on the host, or install akdiag there.",
}


def _processes(cluster: ClusterReader, t: Thresholds) -> List[Finding]:
    matrix = process_matrix(cluster, t)
    if not matrix["collected"]:
        return []
    missing = matrix["missing"]
    out = []
    for row in matrix["rows"]:
        name = row["name"]
        if row["verdict"] == "nowhere":
            where = f"none of the {len(matrix['collected'])} collected hosts"
            out.append(Finding(
                "cluster.process_nowhere", CRITICAL, name,
                f"{name} runs on {where}" + (f" ({', '.join(missing)} not collected)" if missing else ""),
                f"{HOSTS_DIR}/*/{schema.PROCESSES}",
                {"title": row["title"], "remote_capable": row["remote_capable"],
                 "status_by_host": {h: c["status"] for h, c in row["cells"].items()}, "hosts_not_collected": missing},
                f"Start {name} on the host that should run it (read logs/{name}.log there first)"
                + (f"; or check {', '.join(missing)}, which could not be collected." if missing else ".")))
        elif row["verdict"] == "many":
            out.append(_on_many_hosts(row))
    return out


def _and(words: List[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


_ALLOW_MANY = ("If this layout runs it on several hosts on purpose, list it under thresholds: "
               "cluster_processes_on_many_hosts in a --catalog file.")


def _on_many_hosts(row: dict) -> Finding:
    """A process that should run once runs on hosts that share no role.  With no roles
    given for any of them, akdiag cannot tell a fail-safe pair (app1/app2 running the
    same application processes) from a mistake: the finding says how to tell it."""
    name, hosts, roles = row["name"], row["running_on"], row["roles_by_host"]
    figures = {"title": row["title"], "hosts": hosts, "roles_by_host": roles,
               "roles_given": any(roles.get(h) for h in hosts),
               "pids_by_host": {h: row["cells"][h]["pids"] for h in hosts}}
    where = f"{HOSTS_DIR}/*/{schema.PROCESSES}"
    listed = ", ".join(hosts)
    if not figures["roles_given"]:
        return Finding(
            "cluster.process_on_many_hosts", WARNING, name,
            f"{name} runs on {len(hosts)} hosts ({listed}), and the hosts file gives them no roles: "
            "replicas of a fail-safe pair, or copies that should run once?", where, figures,
            f"If {_and(hosts)} are a fail-safe pair (replicas running the same processes), give them a shared "
            f"role in the hosts file (e.g. `roles: [app]` on each) and collect again: hosts that share a role may run "
            f"the same processes. Otherwise copies of {name} work the same queues and data twice: stop it on all "
            "hosts but one. " + _ALLOW_MANY)
    shown = "; ".join(f"{h}: {', '.join(roles.get(h) or []) or 'no roles'}" for h in hosts)
    bare = [h for h in hosts if not roles.get(h)]
    return Finding(
        "cluster.process_on_many_hosts", WARNING, name,
        f"{name} runs on {len(hosts)} hosts with no role in common ({shown}); it should run on one, "
        "or on replicas that share a role", where, figures,
        f"Copies of {name} on hosts of different roles work the same queues and data twice: stop it on the "
        "hosts whose role does not run it. If those hosts are replicas of each other, give them a shared role "
        "in the hosts file" + (f" ({_and(bare)} {'has' if len(bare) == 1 else 'have'} none)" if bare else "")
        + ". " + _ALLOW_MANY)


def _clocks(cluster: ClusterReader, t: Thresholds) -> List[Finding]:
    limit = t.number("cluster_clock_skew_seconds_warning")
    offsets, uncertainty = {}, {}
    for record in cluster.hosts:
        clock = as_dict(record.get("clock"))
        offset = number(clock.get("offset_seconds"))
        if offset is not None and record.get("name"):
            offsets[str(record["name"])] = float(offset)
            uncertainty[str(record["name"])] = float(number(clock.get("uncertainty_seconds")) or 0.0)
    if len(offsets) < 2:
        return []
    early = min(offsets, key=offsets.get)
    late = max(offsets, key=offsets.get)
    spread = offsets[late] - offsets[early]
    margin = uncertainty[early] + uncertainty[late]
    if spread - margin <= limit:
        return []
    return [Finding(
        "cluster.clock_skew", WARNING, "clocks",
        f"the hosts' clocks are {spread:.1f} s apart ({late} ahead of {early})", CLUSTER_MANIFEST,
        {"spread_seconds": round(spread, 3), "threshold_seconds": limit, "measurement_uncertainty_seconds":
         round(margin, 3), "offset_seconds_by_host": {h: round(o, 3) for h, o in sorted(offsets.items())}},
        "Hosts whose clocks differ disagree on timeouts, schedules and log times: run time synchronization "
        "(chrony or systemd-timesyncd) on every host against the same servers.")]


def _versions(cluster: ClusterReader, _t: Thresholds) -> List[Finding]:
    from collector.report import platform_version

    platform, tool = {}, {}
    for name, reader in cluster.bundles().items():
        version = platform_version(reader)
        if version:
            platform[name] = version
        manifest_tool = as_dict(reader.manifest.get("tool"))
        if manifest_tool.get("version"):
            tool[name] = str(manifest_tool["version"])
    out = []
    if len(set(platform.values())) > 1:
        out.append(Finding(
            "cluster.platform_versions", WARNING, "platform",
            f"the hosts run {len(set(platform.values()))} platform versions: "
            + ", ".join(sorted(set(platform.values()))), f"{HOSTS_DIR}/*/{schema.AKD}",
            {"version_by_host": platform},
            "All hosts of one platform should run the same version: finish the upgrade on the hosts left behind."))
    if len(set(tool.values())) > 1:
        out.append(Finding(
            "cluster.akdiag_versions", INFO, "akdiag",
            f"the bundles were written by {len(set(tool.values()))} akdiag versions: "
            + ", ".join(sorted(set(tool.values()))), f"{HOSTS_DIR}/*/{schema.MANIFEST}",
            {"version_by_host": tool},
            "Findings of different akdiag versions may differ for the same facts; run `akdiag report` on this "
            "archive to analyze every host with one version."))
    return out


def registry() -> "OrderedDict[str, Any]":
    return OrderedDict((("cluster.hosts", _hosts), ("cluster.processes", _processes),
                        ("cluster.clocks", _clocks), ("cluster.versions", _versions)))


def analyze_cluster(cluster: ClusterReader, thresholds: Optional[Dict[str, Any]] = None) -> Analysis:
    """The cluster-wide findings (each host's own are in its bundle's findings.json)."""
    from collector.analyzers import analyze

    return analyze(cluster, thresholds, registry())
