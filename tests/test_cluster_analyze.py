"""The cluster analyzers over a cluster archive's folder built here: cluster.json as a
cluster run writes it (a record per host, with the hosts file's `roles`) and a bundle
folder per host holding its manifest.json and processes.json, the files the process
matrix reads.  No SSH, no simulated host: the analyzers read only these files.

`cluster.process_on_many_hosts`: hosts that share a role are replicas of each other
(the vendor's fail-safe layout runs the same application processes on app1 and app2),
so a process that should run once may run on all of them; on hosts with no role in
common it is a warning, and with no roles given at all a warning that says how to tell
a fail-safe pair."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from collector import __version__
from collector.catalog import load_catalog
from collector.cluster.analyze import ClusterReader, analyze_cluster, process_matrix
from collector.cluster.report import render_cluster

MANY = "cluster.process_on_many_hosts"


def _process(name: str, running: bool, remote: bool = False) -> dict:
    """One `expected` record of processes.json, shaped as the processes collector writes it."""
    status, note = ("running", None) if running else (
        ("absent", "can run on another host") if remote else ("down", None))
    return {"name": name, "title": f"AK:{name}", "description": f"test process {name}", "remote_capable": remote,
            "status": status, "note": note, "pids": [4000 + len(name)] if running else [],
            "pidfile": {"path": f"/opt/akd/pids/{name}.pid", "state": "ok" if running else "missing", "pid": None,
                        "detail": None, "owner_name": None},
            "port": {"expected": None, "address": None, "state": "none", "owner_pid": None, "owner_name": None},
            "resources": []}


def make_cluster(root: Path, roles: Dict[str, Optional[object]], running: Dict[str, List[str]],
                 processes=("procX",), remote=()) -> ClusterReader:
    """A cluster archive's folder: each host named in `roles` (its roles, None: none given)
    collected, running the processes `running` names for it."""
    records = []
    for host, host_roles in roles.items():
        records.append({"name": host, "destination": f"root@{host}", "basedir": "/opt/akd",
                        "roles": host_roles if host_roles is not None else [], "status": "ok", "error": None,
                        "clock": {"offset_seconds": 0.0, "round_trip_seconds": 0.002,
                                  "uncertainty_seconds": 0.001, "samples": 6, "method": "date"},
                        "akdiag": {"source": "copied", "version": __version__},
                        "cleanup": {"status": "ok", "folder": "/tmp/tmp.x", "stopped_collect": False,
                                    "error": None}})
        bundle = root / "hosts" / host
        bundle.mkdir(parents=True)
        (bundle / "manifest.json").write_text(json.dumps(
            {"schema_version": 1, "tool": {"name": "akdiag", "version": __version__}, "hostname": host}))
        expected = [_process(p, p in running.get(host, []), p in remote) for p in processes]
        (bundle / "processes.json").write_text(json.dumps({"expected": expected, "all": []}))
    (root / "cluster.json").write_text(json.dumps(
        {"cluster_schema": 1, "kind": "akdiag-cluster", "label": "test", "hosts": records,
         "counts": {"hosts": len(records), "ok": len(records), "failed": 0, "timeout": 0}}))
    return ClusterReader(root)


def findings(cluster: ClusterReader, **thresholds) -> List[dict]:
    return analyze_cluster(cluster, dict(load_catalog().thresholds, **thresholds)).findings


def many(cluster: ClusterReader, **thresholds) -> List[dict]:
    return [f for f in findings(cluster, **thresholds) if f["id"] == MANY]


def row(cluster: ClusterReader, name: str = "procX") -> dict:
    return next(r for r in process_matrix(cluster)["rows"] if r["name"] == name)


BOTH = {"app1": ["procX"], "app2": ["procX"]}


# --------------------------------------------------------------------------- twins: shared role / different roles

def test_two_hosts_sharing_a_role_are_replicas_no_finding(tmp_path):
    cluster = make_cluster(tmp_path, {"app1": ["app"], "app2": ["app"]}, BOTH)
    assert many(cluster) == []
    assert row(cluster)["verdict"] == "replicas" and row(cluster)["shared_roles"] == ["app"]


def test_two_hosts_of_different_roles_get_a_warning(tmp_path):
    cluster = make_cluster(tmp_path, {"app1": ["app"], "app2": ["db"]}, BOTH)
    (finding,) = many(cluster)
    assert finding["severity"] == "warning" and finding["subject"] == "procX"
    assert "no role in common" in finding["title"] and "app1: app; app2: db" in finding["title"]
    figures = finding["evidence"]["figures"]
    assert figures["hosts"] == ["app1", "app2"] and figures["roles_given"] is True
    assert figures["roles_by_host"] == {"app1": ["app"], "app2": ["db"]}
    assert "stop it on the hosts whose role does not run it" in finding["hint"]
    assert row(cluster)["verdict"] == "many" and row(cluster)["shared_roles"] == []


def test_no_roles_given_gets_the_advisory_warning(tmp_path):
    cluster = make_cluster(tmp_path, {"app1": None, "app2": None}, BOTH)
    (finding,) = many(cluster)
    assert finding["severity"] == "warning"
    assert "the hosts file gives them no roles" in finding["title"] and "fail-safe pair" in finding["title"]
    assert "give them a shared role in the hosts file" in finding["hint"] and "roles: [app]" in finding["hint"]
    assert finding["evidence"]["figures"]["roles_given"] is False
    assert row(cluster)["verdict"] == "many"


# --------------------------------------------------------------------------- more layouts

def test_one_role_in_common_is_enough(tmp_path):
    cluster = make_cluster(tmp_path, {"app1": ["app", "tracking"], "app2": ["mta", "app"]}, BOTH)
    assert many(cluster) == []
    assert row(cluster)["shared_roles"] == ["app"]


def test_roles_compare_without_case_and_may_be_one_word(tmp_path):
    """cluster.json of a hand-edited archive may hold a role as a plain string."""
    cluster = make_cluster(tmp_path, {"app1": ["App"], "app2": "app"}, BOTH)
    assert many(cluster) == []


def test_three_hosts_must_all_share_the_role(tmp_path):
    roles = {"app1": ["app"], "app2": ["app"], "db1": ["db"]}
    running = {"app1": ["procX"], "app2": ["procX"], "db1": ["procX"]}
    (finding,) = many(make_cluster(tmp_path / "a", roles, running))
    assert finding["evidence"]["figures"]["hosts"] == ["app1", "app2", "db1"]
    # its twin: only the two replicas run it
    assert many(make_cluster(tmp_path / "b", roles, {"app1": ["procX"], "app2": ["procX"]})) == []


def test_a_host_without_roles_beside_one_with_roles_is_named(tmp_path):
    cluster = make_cluster(tmp_path, {"app1": ["app"], "app2": None}, BOTH)
    (finding,) = many(cluster)
    assert "no role in common" in finding["title"] and "app2: no roles" in finding["title"]
    assert "(app2 has none)" in finding["hint"]


def test_roles_of_hosts_not_running_it_do_not_matter(tmp_path):
    roles = {"app1": ["app"], "app2": ["app"], "db1": ["db"]}
    cluster = make_cluster(tmp_path, roles, {"app1": ["procX"], "db1": ["procX"]})
    (finding,) = many(cluster)
    assert finding["evidence"]["figures"]["roles_by_host"] == {"app1": ["app"], "db1": ["db"]}


def test_remote_capable_and_allowed_processes_never_warn(tmp_path):
    roles = {"app1": ["app"], "app2": ["db"]}
    assert many(make_cluster(tmp_path / "remote", roles, BOTH, remote=("procX",))) == []
    assert many(make_cluster(tmp_path / "allowed", roles, BOTH), cluster_processes_on_many_hosts=["proc*"]) == []
    assert len(many(make_cluster(tmp_path / "plain", roles, BOTH))) == 1


def test_one_host_running_it_is_fine_whatever_the_roles(tmp_path):
    cluster = make_cluster(tmp_path, {"app1": ["app"], "app2": ["db"]}, {"app1": ["procX"]})
    assert many(cluster) == [] and row(cluster)["verdict"] == "ok"


@pytest.mark.parametrize("roles, shown", [({"app1": ["app"], "app2": ["app"]}, "replicas (app)"),
                                          ({"app1": ["app"], "app2": ["db"]}, "on several hosts")])
def test_the_cluster_summary_shows_replicas_apart(tmp_path, roles, shown):
    cluster = make_cluster(tmp_path, roles, BOTH)
    html = render_cluster(cluster, analyze_cluster(cluster, load_catalog().thresholds).as_dict(), {})
    assert shown in html
    verdict = "replicas" if "replicas" in shown else "many"
    assert f'<tr id="proc-procX" class="verdict-{verdict}"' in html


# --------------------------------------------------------------------------- one finding on several hosts

def _host_finding(title: str, subject: str = "mongodb", severity: str = "warning", fid: str = "datastore.down"):
    return {"id": fid, "severity": severity, "subject": subject, "title": title, "hint": "check it",
            "evidence": {"file": "datastores.json", "figures": {}}}


def test_a_finding_on_every_host_is_shown_once_with_the_hosts(tmp_path):
    from collector.analyzers import Analysis
    from collector.cluster.report import combined_findings

    cluster = make_cluster(tmp_path, {"app1": ["app"], "app2": ["app"], "db1": ["db"]}, {})
    everywhere = _host_finding("mongodb does not answer at 10.0.0.9:27017")
    two = _host_finding("disk /var is 93% full", subject="/var", fid="system.disk")
    own = _host_finding("disk /var is 97% full", subject="/var", fid="system.disk")  # another figure: its own
    host_findings = {"app1": [everywhere, two], "app2": [everywhere, two], "db1": [everywhere, own]}
    html = render_cluster(cluster, analyze_cluster(cluster, load_catalog().thresholds).as_dict(), host_findings)
    assert html.count("mongodb does not answer at 10.0.0.9:27017") == 1
    shared = re.search(r'<h3 id="shared-findings">.*?</ol>', html, re.S).group(0)
    assert 'data-hosts="app1,app2,db1"' in shared and "every host (app1, app2, db1)" in shared
    assert 'data-hosts="app1,app2"' in shared and "on <strong>app1, app2</strong>" in shared
    assert html.count("disk /var is 93% full") == 1 and html.count("disk /var is 97% full") == 1
    db1 = re.search(r'<details id="findings-db1".*?</details>', html, re.S).group(0)
    assert "disk /var is 97% full" in db1 and "mongodb does not answer" not in db1
    assert "1 shared with other hosts" in db1
    app1 = re.search(r'<details id="findings-app1".*?</details>', html, re.S).group(0)
    assert "2 shared with other hosts" in app1 and "0 critical · 0 warning · 0 info" in app1
    analyses = {h: Analysis(f, [], {}) for h, f in host_findings.items()}
    printed = [f["title"] for f in combined_findings(cluster, analyze_cluster(cluster, {}), analyses)]
    assert printed.count("every host (app1, app2, db1): mongodb does not answer at 10.0.0.9:27017") == 1
    assert "app1, app2: disk /var is 93% full" in printed and "db1: disk /var is 97% full" in printed
    assert not [t for t in printed if t.startswith("app1: mongodb")]


def test_one_host_alone_has_no_shared_findings(tmp_path):
    cluster = make_cluster(tmp_path, {"app1": ["app"]}, {})
    html = render_cluster(cluster, analyze_cluster(cluster, {}).as_dict(), {"app1": [_host_finding("x down")]})
    assert 'id="shared-findings"' not in html and html.count("x down") == 1


# --------------------------------------------------------------------------- one machine listed twice

def test_a_duplicate_host_is_a_note_not_a_failure(tmp_path):
    cluster = make_cluster(tmp_path, {"app1": ["app"]}, {"app1": ["procX"]})
    manifest = json.loads((tmp_path / "cluster.json").read_text())
    manifest["hosts"][0]["also_listed_as"] = ["10.0.0.11"]
    manifest["hosts"].append({"name": "10.0.0.11", "destination": "root@10.0.0.11", "roles": [],
                              "status": "duplicate", "duplicate_of": "app1", "error": None})
    (tmp_path / "cluster.json").write_text(json.dumps(manifest))
    cluster = ClusterReader(tmp_path)
    assert cluster.names() == ["app1"]
    found = findings(cluster)
    assert [f["id"] for f in found] == ["cluster.same_machine"]
    assert found[0]["severity"] == "info" and "the same machine as app1" in found[0]["title"]
    assert process_matrix(cluster)["missing"] == []
