"""Cluster collection over real SSH: real OpenSSH sshd processes on loopback ports, one per
simulated host, each host in its own PID namespace with its own simulated Altcraft
processes; the single-file akdiag (collector/zipapp.py) copied to each and run there.

Hosts: app1 (most processes), app2 (the remote-capable tracking processes), db1 (one
process that app1 runs too), slow (its akd sleeps past its 4 s deadline), badkey (its
authorized_keys lacks our key) and down (nothing listens on its port)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from conftest import REPO, akdiag
from sshd_lab import SshLab, build_single_file, lab_missing

from collector import tempfiles
from collector.catalog import load_catalog
from collector.cluster.analyze import ClusterReader, analyze_cluster, process_matrix
from collector.cluster.ssh import Connection, SshSettings
from collector.simulate.host import PLATFORM_VERSION

_missing = lab_missing()
pytestmark = pytest.mark.skipif(_missing is not None and os.environ.get("CI") != "true",
                                reason=f"real SSH hosts cannot be made here: {_missing}")

TRACKING = ["trkaction", "trk_amazon_sns", "trkmandrill", "trkimage", "trkread", "trksms", "trkwebversion",
            "cookie_saver", "akmtad"]  # trkpush is left out: a remote-capable process running nowhere
APP1_SKIPS = {"proctrigger", "proctask"}  # proctrigger runs nowhere; proctask runs on app2 (remote-capable)


def _app1_processes():
    catalog = load_catalog()
    return [p.binary for p in catalog.processes if not p.retired_in and not p.remote and p.binary not in APP1_SKIPS]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory):
    return build_single_file(tmp_path_factory.mktemp("single") / "akdiag.pyz")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if _missing:
        pytest.fail(f"real SSH hosts cannot be made here: {_missing}")
    lab = SshLab(tmp_path_factory.mktemp("lab"))
    try:
        lab.add_host("app1", start=_app1_processes())
        lab.add_host("app2", start=TRACKING + ["proctask"])
        lab.add_host("db1", start=["stataggregator"])
        lab.add_host("slow", start=["api"], slow_akd=30)
        lab.add_host("badkey", start=[], authorize=False)
        lab.add_unreachable("down")
        yield lab
    finally:
        lab.stop()


def _ssh_processes_of(lab: SshLab):
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if cmdline and os.path.basename(cmdline[0]) == "ssh" and str(lab.ssh_config) in cmdline:
            found.append(proc.pid)
    return found


@pytest.fixture(scope="module")
def cluster_run(lab, pyz, tmp_path_factory):
    out = tmp_path_factory.mktemp("cluster-out")
    hosts = lab.hosts_file([{"name": "app1", "roles": ["app"]}, {"name": "app2", "roles": ["tracking"]},
                            {"name": "db1", "roles": ["db"]}, {"name": "slow", "timeout": 4},
                            {"name": "badkey"}, {"name": "down"}])
    started = time.monotonic()
    done = akdiag("collect", "--hosts", str(hosts), "--ssh-config", str(lab.ssh_config), "--akdiag-file", str(pyz),
                  "--output", str(out), "--label", "e2e", "--parallel", "6", "--timeout", "60",
                  "--log-lines", "20", "--datastore-timeout", "0.5", "--quiet", timeout=180)
    elapsed = time.monotonic() - started
    assert done.returncode == 5, done.stdout + done.stderr  # EXIT_HOSTS_MISSING: written, 3 hosts missing
    archive = Path(done.stdout.strip().splitlines()[-1])
    extracted = tmp_path_factory.mktemp("cluster-x")
    subprocess.run(["7z", "x", "-y", f"-o{extracted}", str(archive)], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    (root,) = [p for p in extracted.iterdir() if p.is_dir()]
    manifest = json.loads((root / "cluster.json").read_text())
    return {"archive": archive, "out": out, "root": root, "manifest": manifest, "elapsed": elapsed,
            "hosts": {h["name"]: h for h in manifest["hosts"]}, "stderr": done.stderr}


# --------------------------------------------------------------------------- the archive

def test_cluster_archive_is_one_atomic_private_file(cluster_run):
    archive = cluster_run["archive"]
    assert re.fullmatch(r"akdiag-cluster-e2e-\d{8}T\d{6}Z\.7z", archive.name)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert [p.name for p in cluster_run["out"].iterdir()] == [archive.name]  # no temporary file left
    root = cluster_run["root"]
    assert root.name == archive.name[:-len(".7z")]
    assert {p.name for p in root.iterdir()} == {"cluster.json", "summary.html", "findings.json", "akdiag.log", "hosts"}
    assert sorted(p.name for p in (root / "hosts").iterdir()) == ["app1", "app2", "db1"]
    for name in ("app1", "app2", "db1"):
        bundle = root / "hosts" / name
        for relpath in ("manifest.json", "summary.html", "processes.json", "findings.json", "datastores.json"):
            assert (bundle / relpath).is_file(), (name, relpath)
        # every file as the host's akdiag wrote it: the sha256 its manifest gives
        record = cluster_run["hosts"][name]["bundle"]
        assert record["checked_against_manifest"] is True and record["files"] >= 10
        assert record["hostname"] == name  # the host's own name (its UTS namespace)


def test_cluster_manifest_records_each_host(cluster_run):
    manifest, hosts = cluster_run["manifest"], cluster_run["hosts"]
    assert manifest["cluster_schema"] == 1 and manifest["kind"] == "akdiag-cluster"
    assert manifest["label"] == "e2e" and manifest["counts"] == {"hosts": 6, "ok": 3, "failed": 2, "timeout": 1,
                                                                 "pending": 0, "duplicate": 0}
    assert manifest["notes"] == []
    assert [h["name"] for h in manifest["hosts"]] == ["app1", "app2", "db1", "slow", "badkey", "down"]
    for name in ("app1", "app2", "db1"):
        host = hosts[name]
        assert host["status"] == "ok" and host["error"] is None and "duplicate_of" not in host
        assert re.fullmatch(r"[0-9a-f]{20}", host["remote"]["machine"])  # a digest, never the machine id itself
        assert host["akdiag"]["source"] == "copied" and host["akdiag"]["version"]
        assert host["platform_version"] == PLATFORM_VERSION
        assert abs(host["clock"]["offset_seconds"]) < 1.0 and host["clock"]["round_trip_seconds"] < 1.0
        assert [s["name"] for s in host["steps"]] == ["connect", "clock", "probe", "copy", "catalog", "key", "collect",
                                                      "fetch", "unpack"]
        assert host["cleanup"]["status"] == "ok" and host["cleanup"]["stopped_collect"] is False
        assert 0 < host["duration"] < 60
    assert hosts["app1"]["roles"] == ["app"]


def test_some_hosts_missing_exit_5_and_say_which(cluster_run):
    assert "3 of 6 hosts not collected (slow, badkey, down)" in cluster_run["stderr"]
    assert "(exit status 5)" in cluster_run["stderr"]
    # each host of its own PID namespace is a machine of its own: none taken for another
    machines = [h["remote"]["machine"] for h in cluster_run["manifest"]["hosts"] if h["status"] == "ok"]
    assert len(set(machines)) == 3


def test_readme_documents_every_cluster_exit_status():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Cluster collection"):]
    section = section[:section.index("\n## ", 5)]
    statuses = dict(re.findall(r"^\| `([0-9+N]+)` \| (.+) \|$", section, re.M))
    assert set(statuses) == {"0", "1", "2", "3", "5", "128+N"}
    assert "every host" in statuses["0"]
    assert "not every host" in statuses["5"] and "no host" in statuses["5"]


def test_unreachable_host_is_recorded_with_the_reason(cluster_run):
    down = cluster_run["hosts"]["down"]
    assert down["status"] == "failed"
    error = down["error"]
    assert error["stage"] == "connect" and error["kind"] == "unreachable" and error["exit_status"] == 255
    assert "Connection refused" in error["stderr_tail"]
    assert down["bundle"] is None and down["cleanup"] is None  # nothing was created there


def test_refused_key_is_recorded_with_the_reason(cluster_run):
    badkey = cluster_run["hosts"]["badkey"]
    assert badkey["status"] == "failed"
    error = badkey["error"]
    assert error["stage"] == "connect" and error["kind"] == "auth_failed" and error["exit_status"] == 255
    assert "Permission denied" in error["stderr_tail"]


def test_slow_host_times_out_and_is_cleaned_up(cluster_run, lab):
    slow = cluster_run["hosts"]["slow"]
    assert slow["status"] == "timeout" and slow["deadline_seconds"] == 4
    assert slow["error"]["stage"] == "collect" and slow["error"]["kind"] == "timeout"
    assert "deadline of 4 s" in slow["error"]["message"]
    assert 3.5 < slow["duration"] < 25  # the deadline, plus the remote cleanup
    assert slow["cleanup"]["status"] == "ok" and slow["cleanup"]["stopped_collect"] is True
    # the collect that was still running there was stopped, and its folder removed
    ps = subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", "slow", "ps -eo args"],
                        capture_output=True, text=True, timeout=30)
    assert ps.returncode == 0, ps.stderr
    assert " collect " not in ps.stdout


def test_every_remote_folder_is_removed_and_no_ssh_is_left(cluster_run, lab):
    for name in ("app1", "app2", "db1", "slow"):
        assert list(lab.hosts[name].tmpdir.iterdir()) == [], name
        assert list(lab.hosts[name].home.rglob("*")) == [], name  # not even the single file's cache
    assert _ssh_processes_of(lab) == []
    assert not [p for p in Path("/tmp").glob(f".akdiag-*-{tempfiles._pid_namespace()}-ssh-*")]
    assert not [p for p in Path("/tmp").glob("akdiag-ssh-*")]


def test_each_host_saw_only_its_own_processes(cluster_run):
    root = cluster_run["root"]
    for name, mine in (("app2", set(TRACKING) | {"proctask"}), ("db1", {"stataggregator"})):
        data = json.loads((root / "hosts" / name / "processes.json").read_text())
        running = {p["name"] for p in data["expected"] if p["status"] == "running"}
        assert running == mine, name
        titles = {row["name"] for row in data["all"] if str(row.get("name", "")).startswith("AK:")}
        assert titles == {f"AK:{n}" for n in mine}


# --------------------------------------------------------------------------- matrix and findings

def test_process_matrix_by_host(cluster_run):
    matrix = process_matrix(ClusterReader(cluster_run["root"]))
    assert matrix["hosts"] == ["app1", "app2", "db1", "slow", "badkey", "down"]
    assert matrix["collected"] == ["app1", "app2", "db1"]
    rows = {r["name"]: r for r in matrix["rows"]}
    # a remote-capable process running on app2 is missing nowhere
    for name in TRACKING + ["proctask"]:
        cells = rows[name]["cells"]
        assert cells["app2"]["status"] == "running", name
        assert cells["app1"]["status"] == "elsewhere" and cells["db1"]["status"] == "elsewhere", name
        assert cells["slow"]["status"] == "no_data"
        assert rows[name]["verdict"] == "ok"
    assert rows["api"]["cells"]["app1"]["status"] == "running" and rows["api"]["cells"]["app2"]["status"] == "down"
    assert rows["proctrigger"]["verdict"] == "nowhere" and rows["proctrigger"]["running_on"] == []
    assert rows["trkpush"]["verdict"] == "nowhere"
    assert {c["status"] for h, c in rows["trkpush"]["cells"].items() if h in matrix["collected"]} == {"absent"}
    assert rows["stataggregator"]["verdict"] == "many"
    assert rows["stataggregator"]["running_on"] == ["app1", "db1"]
    assert rows["procnotify"]["verdict"] == "retired"


def test_cluster_findings(cluster_run):
    findings = json.loads((cluster_run["root"] / "findings.json").read_text())["findings"]
    by_id = {}
    for finding in findings:
        by_id.setdefault(finding["id"], set()).add(finding["subject"])
    assert by_id["cluster.process_nowhere"] == {"proctrigger", "trkpush"}
    assert by_id["cluster.process_on_many_hosts"] == {"stataggregator"}
    assert by_id["cluster.host_failed"] == {"slow", "badkey", "down"}
    assert "cluster.clock_skew" not in by_id  # one machine: one clock
    assert "cluster.platform_versions" not in by_id and "cluster.akdiag_versions" not in by_id
    nowhere = next(f for f in findings if f["subject"] == "proctrigger")
    assert nowhere["severity"] == "critical"
    assert nowhere["evidence"]["figures"]["hosts_not_collected"] == ["slow", "badkey", "down"]
    many = next(f for f in findings if f["id"] == "cluster.process_on_many_hosts")
    assert many["severity"] == "warning" and many["evidence"]["figures"]["hosts"] == ["app1", "db1"]
    failed = {f["subject"]: f for f in findings if f["id"] == "cluster.host_failed"}
    assert "Permission denied" in failed["badkey"]["title"]
    assert "authorized_keys" in failed["badkey"]["hint"]


def test_cluster_summary_shows_the_matrix_and_each_host(cluster_run):
    html = (cluster_run["root"] / "summary.html").read_text()
    row = re.search(r'<tr id="proc-trkaction".*?</tr>', html, re.S).group(0)
    assert 'data-host="app1" data-status="elsewhere"' in row
    assert 'data-host="app2" data-status="running"' in row
    assert 'data-host="slow" data-status="no_data"' in row
    assert re.search(r'<tr id="proc-proctrigger" class="verdict-nowhere"', html)
    assert re.search(r'<tr id="proc-stataggregator" class="verdict-many"', html)
    assert 'href="hosts/app1/summary.html"' in html
    assert "Permission denied" in html and "Connection refused" in html
    for section in ("findings", "hosts", "processes", "datastores", "host-findings"):
        assert f'<section id="{section}">' in html
    # app1's own info finding about trkaction is explained by app2, not shown as missing
    app1 = re.search(r'<details id="findings-app1".*?</details>', html, re.S).group(0)
    assert 'data-finding-id="process.absent_remote" data-subject="trkaction"' not in app1
    assert "explained by other hosts" in app1
    assert "shared with other hosts (above)" in app1
    # trkpush runs nowhere: the same finding on every host, shown once with the hosts
    shared = re.search(r'<h3 id="shared-findings">.*?</ol>', html, re.S).group(0)
    assert html.count('data-finding-id="process.absent_remote" data-subject="trkpush"') == 1
    assert re.search(r'data-hosts="app1,app2,db1" data-finding-id="process.absent_remote" data-subject="trkpush"',
                     shared)
    assert "every host (app1, app2, db1)" in shared


# --------------------------------------------------------------------------- one machine, two names

@pytest.fixture(scope="module")
def twice_run(lab, pyz, tmp_path_factory):
    """db1 from the hosts file and again under a second ssh name from --host, with roles."""
    lab.add_alias("db1-again", "db1")
    db1 = lab.hosts["db1"]
    out = tmp_path_factory.mktemp("twice-out")
    hosts = lab.hosts_file([{"name": "db1", "roles": ["db"]}])
    done = akdiag("collect", "--hosts", str(hosts), "--host", f"db1-again:{db1.basedir}@roles=frontend,tracker",
                  "--catalog", db1.catalog_file, "--ssh-config", str(lab.ssh_config), "--akdiag-file", str(pyz),
                  "--output", str(out), "--format", "dir", "--timeout", "60", "--log-lines", "10",
                  "--datastore-timeout", "0.5", timeout=180)
    root = Path(re.search(r"Cluster:\s+(\S+)", done.stdout).group(1))
    manifest = json.loads((root / "cluster.json").read_text())
    return {"done": done, "root": root, "manifest": manifest, "hosts": {h["name"]: h for h in manifest["hosts"]}}


def test_one_machine_under_two_names_is_collected_once(twice_run, lab):
    done, hosts = twice_run["done"], twice_run["hosts"]
    assert done.returncode == 0, done.stdout + done.stderr  # every machine was collected
    (kept,) = [h for h in hosts.values() if h["status"] == "ok"]
    (twice,) = [h for h in hosts.values() if h["status"] == "duplicate"]
    assert {kept["name"], twice["name"]} == {"db1", "db1-again"}
    assert twice["duplicate_of"] == kept["name"] and kept["also_listed_as"] == [twice["name"]]
    assert twice["remote"]["machine"] == kept["remote"]["machine"] and twice["error"] is None
    assert set(kept["roles"]) == {"db", "frontend", "tracker"}  # the machine has both names' roles
    assert [s["name"] for s in twice["steps"]] == ["connect", "clock", "probe"]  # stopped before any copy
    assert twice["cleanup"]["status"] == "ok" and list(lab.hosts["db1"].tmpdir.iterdir()) == []
    root = twice_run["root"]
    assert sorted(p.name for p in (root / "hosts").iterdir()) == [kept["name"]]
    manifest = twice_run["manifest"]
    assert manifest["counts"]["ok"] == 1 and manifest["counts"]["duplicate"] == 1
    (note,) = manifest["notes"]
    assert f"{twice['name']} (" in note and f"same machine as {kept['name']}" in note
    assert "Hosts:     1 of 1 collected (1 listed twice under another name)" in done.stdout
    assert f"the same machine as {kept['name']}" in done.stdout and "Send this file" in done.stdout


def test_one_machine_twice_gives_a_note_and_no_false_warning(twice_run):
    root, hosts = twice_run["root"], twice_run["hosts"]
    (twice,) = [h for h in hosts.values() if h["status"] == "duplicate"]
    findings = json.loads((root / "findings.json").read_text())["findings"]
    ids = [f["id"] for f in findings]
    assert "cluster.process_on_many_hosts" not in ids and "cluster.host_failed" not in ids
    (same,) = [f for f in findings if f["id"] == "cluster.same_machine"]
    assert same["severity"] == "info" and same["subject"] == twice["name"]
    html = (root / "summary.html").read_text()
    assert f"the same machine as <a href=\"#host-{twice['duplicate_of']}\">" in html
    assert f"also listed as {twice['name']}" in html and 'data-note="same-machine"' in html
    assert "1 of 1 hosts collected" in html and "<h1>Cluster of 1 host</h1>" in html
    matrix = process_matrix(ClusterReader(root))
    assert matrix["hosts"] == [twice["duplicate_of"]] and matrix["missing"] == []


def test_roles_from_the_host_option_are_shown(twice_run):
    done, root = twice_run["done"], twice_run["root"]
    kept = next(h for h in twice_run["hosts"].values() if h["status"] == "ok")
    assert f"[{', '.join(kept['roles'])}]" in done.stdout
    row = re.search(rf'<tr id="host-{kept["name"]}".*?</tr>', (root / "summary.html").read_text(), re.S).group(0)
    assert ", ".join(kept["roles"]) in row


def test_no_host_collected_exits_5_and_asks_for_nothing_to_be_sent(lab, pyz, tmp_path):
    hosts = lab.hosts_file([{"name": "down"}, {"name": "badkey"}])
    done = akdiag("collect", "--hosts", str(hosts), "--ssh-config", str(lab.ssh_config), "--output", str(tmp_path),
                  "--akdiag-file", str(pyz), timeout=120)
    assert done.returncode == 5, done.stdout + done.stderr
    assert "Send this file" not in done.stdout + done.stderr
    assert "No host could be collected (down, badkey)" in done.stdout and "nothing to send" in done.stdout
    assert "Hosts:     0 of 2 collected" in done.stdout
    (archive,) = list(tmp_path.glob("akdiag-cluster-*.7z"))  # it holds why, host by host
    assert re.search(r"Cluster:\s+" + re.escape(str(archive)), done.stdout)


# --------------------------------------------------------------------------- report and diff

def test_report_renders_a_cluster_archive(cluster_run, tmp_path):
    target = tmp_path / "c.summary.html"
    done = akdiag("report", str(cluster_run["archive"]), "--output", str(target))
    assert done.returncode == 0, done.stderr
    html = target.read_text()
    assert "Processes by host" in html and 'id="proc-trkaction"' in html
    findings = json.loads((tmp_path / "c.findings.json").read_text())
    assert {f["id"] for f in findings["findings"]} >= {"cluster.process_nowhere", "cluster.host_failed"}
    assert set(findings["hosts"]) == {"app1", "app2", "db1"}
    assert "app1: " in done.stdout or "CRITICAL" in done.stdout


def test_diff_compares_cluster_archives_host_by_host(cluster_run, tmp_path):
    same = akdiag("diff", str(cluster_run["archive"]), str(cluster_run["archive"]), "--format", "json")
    assert same.returncode == 0, same.stderr
    result = json.loads(same.stdout)
    assert result["kind"] == "cluster" and result["regression"] is False
    assert set(result["hosts"]) == {"app1", "app2", "db1", "slow", "badkey", "down"}
    assert result["hosts"]["app1"]["sections"]["processes"] == []
    assert result["hosts"]["slow"] is None
    # the new archive lost app2: a regression
    new = tmp_path / "new"
    shutil.copytree(cluster_run["root"], new)
    shutil.rmtree(new / "hosts" / "app2")
    manifest = json.loads((new / "cluster.json").read_text())
    for host in manifest["hosts"]:
        if host["name"] == "app2":
            host["status"], host["error"] = "failed", {"stage": "connect", "kind": "unreachable",
                                                       "message": "Connection refused"}
    (new / "cluster.json").write_text(json.dumps(manifest))
    changed = akdiag("diff", str(cluster_run["archive"]), str(new))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "host app2: ok -> failed" in changed.stdout and "=== app1" in changed.stdout
    html = akdiag("diff", str(cluster_run["archive"]), str(new), "--format", "html")
    assert html.returncode == 1 and 'id="diff-host-app1"' in html.stdout
    single = akdiag("diff", str(cluster_run["root"] / "hosts" / "app1"), str(cluster_run["archive"]))
    assert single.returncode == 2 and "cluster archive" in single.stderr


# --------------------------------------------------------------------------- more runs

def test_encrypted_cluster_with_host_options(lab, pyz, tmp_path):
    app1 = lab.hosts["app1"]
    done = akdiag("collect", "--host", f"app1:{app1.basedir}", "--catalog", app1.catalog_file,
                  "--ssh-config", str(lab.ssh_config), "--akdiag-file", str(pyz), "--output", str(tmp_path),
                  "--encrypt", "--timeout", "60", "--log-lines", "10", "--datastore-timeout", "0.5",
                  env={"AKDIAG_PASSWORD": "cluster-Zq-pass"}, timeout=120)
    assert "  app1  ok" in done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Hosts:     1 of 1 collected" in done.stdout
    path = Path(re.search(r"Cluster:\s+(\S+)", done.stdout).group(1))
    listing = subprocess.run(["7z", "l", "-pwrong", str(path)], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
    assert listing.returncode != 0 and "cluster.json" not in listing.stdout
    x = tmp_path / "x"
    subprocess.run(["7z", "x", "-y", f"-o{x}", "-pcluster-Zq-pass", str(path)], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    (root,) = list(x.iterdir())
    everything = "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())
    assert "cluster-Zq-pass" not in everything
    assert (root / "hosts" / "app1" / "manifest.json").is_file()
    report = akdiag("report", str(path), "--output", str(tmp_path / "r.summary.html"),
                    env={"AKDIAG_PASSWORD": "cluster-Zq-pass"})
    assert report.returncode == 0, report.stderr
    assert list(app1.tmpdir.iterdir()) == []


def _start_slow_cluster_run(lab, pyz, out: Path) -> subprocess.Popen:
    """A cluster run of the slow host, returned once the collect runs there (its akd sleeps)."""
    hosts = lab.hosts_file([{"name": "slow", "timeout": 120}])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "collector", "collect", "--hosts", str(hosts), "--ssh-config",
                             str(lab.ssh_config), "--akdiag-file", str(pyz), "--output", str(out),
                             "--timeout", "60", "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 30
    while time.monotonic() < end and not any(lab.hosts["slow"].tmpdir.glob("akdiag-cluster.*/pid")):
        time.sleep(0.1)
    time.sleep(1.5)
    return proc


def _remote_collects(lab, name: str) -> list:
    ps = subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", name, "ps -eo args"],
                        capture_output=True, text=True, timeout=30)
    assert ps.returncode == 0, ps.stderr
    return [line for line in ps.stdout.splitlines() if " collect " in line]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_interrupt_stops_every_host_and_leaves_nothing(lab, pyz, tmp_path, stop):
    proc = _start_slow_cluster_run(lab, pyz, tmp_path)
    try:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + stop, err
    assert "no cluster archive written" in err
    assert list(tmp_path.iterdir()) == []
    assert list(lab.hosts["slow"].tmpdir.iterdir()) == []
    assert _ssh_processes_of(lab) == []
    assert _remote_collects(lab, "slow") == []


def test_killed_akdiag_leaves_each_host_clean_and_no_ssh(lab, pyz, tmp_path):
    """SIGKILL cannot be handled: the hosts clean up after themselves when akdiag's end of
    their sessions goes, and the ssh processes akdiag started go with it."""
    proc = _start_slow_cluster_run(lab, pyz, tmp_path)
    assert list(lab.hosts["slow"].tmpdir.iterdir()) != []
    proc.kill()
    proc.communicate(timeout=30)
    end = time.monotonic() + 30
    while time.monotonic() < end and (list(lab.hosts["slow"].tmpdir.iterdir()) or _ssh_processes_of(lab)):
        time.sleep(0.2)
    assert list(lab.hosts["slow"].tmpdir.iterdir()) == []
    assert _ssh_processes_of(lab) == []
    assert _remote_collects(lab, "slow") == []


def test_clock_skew_and_version_findings_from_edited_figures(cluster_run, tmp_path):
    root = tmp_path / "edited"
    shutil.copytree(cluster_run["root"], root)
    manifest = json.loads((root / "cluster.json").read_text())
    offsets = {"app1": 0.01, "app2": 3.2, "db1": -0.4}
    for host in manifest["hosts"]:
        if host["name"] in offsets:
            host["clock"]["offset_seconds"] = offsets[host["name"]]
    (root / "cluster.json").write_text(json.dumps(manifest))
    bundle = root / "hosts" / "db1"
    db1 = json.loads((bundle / "manifest.json").read_text())
    db1["tool"]["version"] = "0.0.9"
    (bundle / "manifest.json").write_text(json.dumps(db1))
    akd = bundle / "commands" / "akd-processes.txt"
    akd.write_text(akd.read_text().replace(PLATFORM_VERSION, "v2024.2.68.2.2206"))
    analysis = analyze_cluster(ClusterReader(root), load_catalog().thresholds)
    found = {f["id"]: f for f in analysis.findings}
    skew = found["cluster.clock_skew"]
    assert skew["severity"] == "warning" and skew["evidence"]["figures"]["spread_seconds"] == pytest.approx(3.6)
    assert "app2 ahead of db1" in skew["title"]
    assert found["cluster.platform_versions"]["evidence"]["figures"]["version_by_host"]["db1"] == "v2024.2.68.2.2206"
    assert found["cluster.akdiag_versions"]["severity"] == "info"
    # within the threshold: no finding
    for host in manifest["hosts"]:
        if host["name"] in offsets:
            host["clock"]["offset_seconds"] = offsets[host["name"]] / 3
    (root / "cluster.json").write_text(json.dumps(manifest))
    again = analyze_cluster(ClusterReader(root), load_catalog().thresholds)
    assert "cluster.clock_skew" not in {f["id"] for f in again.findings}


def test_keep_remote_copy_copies_once_and_reuses_it(lab, pyz, tmp_path):
    app2 = lab.hosts["app2"]
    hosts = lab.hosts_file([{"name": "app2"}])
    records = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        out.mkdir()
        done = akdiag("collect", "--hosts", str(hosts), "--ssh-config", str(lab.ssh_config), "--akdiag-file", str(pyz),
                      "--output", str(out), "--keep-remote-copy", "--timeout", "60", "--log-lines", "10",
                      "--datastore-timeout", "0.5", "--quiet", timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        archive = Path(done.stdout.strip())
        manifest = subprocess.run(["7z", "x", "-so", str(archive), f"{archive.name[:-3]}/cluster.json"],
                                  capture_output=True, check=True, stdin=subprocess.DEVNULL).stdout
        records.append(json.loads(manifest)["hosts"][0])
    assert records[0]["status"] == records[1]["status"] == "ok"
    assert records[0]["akdiag"]["source"] == "copied" and records[0]["akdiag"]["kept"] is True
    assert records[1]["akdiag"]["source"] == "cached"
    cache = app2.home / ".cache" / "akdiag"
    kept = sorted(p.name for p in cache.glob("akdiag-*.pyz"))
    assert kept == [Path(records[0]["akdiag"]["path"]).name]
    assert (cache / kept[0]).stat().st_size == pyz.stat().st_size
    assert list(app2.tmpdir.iterdir()) == []  # the run's own folder is gone all the same


def test_pseudonymized_host_names_keep_the_archive_consistent(lab, pyz, tmp_path):
    hosts = tmp_path / "hosts.yaml"
    db1 = lab.hosts["db1"]
    hosts.write_text(f"hosts:\n  - {{name: db1.example.com, ssh: db1, basedir: {db1.basedir}, "
                     f"catalog: {db1.catalog_file}}}\n")
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--hosts", str(hosts), "--ssh-config", str(lab.ssh_config), "--akdiag-file", str(pyz),
                  "--output", str(out), "--pseudonymize", "ips,hosts", "--keep-mapping", "--timeout", "60",
                  "--log-lines", "10", "--datastore-timeout", "0.5", "--quiet", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    archive = Path(done.stdout.strip())
    x = tmp_path / "x"
    subprocess.run(["7z", "x", "-y", f"-o{x}", str(archive)], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    (root,) = list(x.iterdir())
    manifest = json.loads((root / "cluster.json").read_text())
    name = manifest["hosts"][0]["name"]
    assert re.fullmatch(r"host-[0-9a-f]{12}", name) and manifest["hosts"][0]["status"] == "ok"
    assert (root / "hosts" / name / "manifest.json").is_file()
    everything = "".join(p.read_text(errors="replace") for p in root.glob("*") if p.is_file())
    assert "db1.example.com" not in everything
    assert f'href="hosts/{name}/summary.html"' in (root / "summary.html").read_text()
    mapping = json.loads(archive.with_name(archive.name + ".mapping.json").read_text())
    assert mapping["cluster"][name] == "db1.example.com" and "db1.example.com" in mapping["hosts"]
    assert stat.S_IMODE(archive.with_name(archive.name + ".mapping.json").stat().st_mode) == 0o600
    report = akdiag("report", str(archive), "--output", str(tmp_path / "r.summary.html"))
    assert report.returncode == 0, report.stderr
    assert name in json.loads((tmp_path / "r.findings.json").read_text())["hosts"]


def _cluster_email_tokens(lab, pyz, tmp_path, *args):
    """Collect db1 and app2, each with a log naming the same subscriber; {host: tokens}."""
    tmp_path.mkdir()
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text("hosts:\n" + "".join(
        f"  - {{name: {n}, ssh: {n}, basedir: {lab.hosts[n].basedir}, catalog: {lab.hosts[n].catalog_file}}}\n"
        for n in ("db1", "app2")))
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--hosts", str(hosts), "--ssh-config", str(lab.ssh_config), "--akdiag-file", str(pyz),
                  "--output", str(out), "--format", "dir", "--timeout", "60", "--log-lines", "10",
                  "--datastore-timeout", "0.5", "--quiet", *args, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    root = Path(done.stdout.strip())
    return {n: set(re.findall(r"email-[0-9a-f]{12}", (root / "hosts" / n / "logs" / "zq-key.log").read_text()))
            for n in ("db1", "app2")}


def test_one_pseudonym_key_for_every_host_of_a_cluster(lab, pyz, tmp_path):
    from collector.redact import Pseudonymizer

    logs = [Path(lab.hosts[n].basedir) / "logs" / "zq-key.log" for n in ("db1", "app2")]
    for log in logs:
        log.write_text("sent to erin.subscriber@example.org\n")
    try:
        drawn = _cluster_email_tokens(lab, pyz, tmp_path / "a")  # a key drawn for the run, shared
        assert drawn["db1"] == drawn["app2"] and len(drawn["db1"]) == 1
        key = tmp_path / "cluster.key"
        given = _cluster_email_tokens(lab, pyz, tmp_path / "b", "--pseudonym-key", str(key))
        expected = Pseudonymizer(key.read_bytes().strip()).token("email", "erin.subscriber@example.org")
        assert given == {"db1": {expected}, "app2": {expected}}
        assert list(lab.hosts["db1"].tmpdir.iterdir()) == []  # the key went with the remote folder
    finally:
        for log in logs:
            log.unlink()


def test_a_single_file_akdiag_copies_itself(lab, pyz, tmp_path):
    """Run from akdiag.pyz with no --akdiag-file: the file it runs from is the one copied."""
    app1 = lab.hosts["app1"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "AKDIAG_CACHE_DIR": str(tmp_path / "cache"), "AKDIAG_STATE_DIR": os.environ["AKDIAG_STATE_DIR"]}
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([sys.executable, "-I", str(pyz), "collect", "--host", f"app1:{app1.basedir}",
                           "--catalog", app1.catalog_file, "--ssh-config", str(lab.ssh_config), "--output", str(out),
                           "--log-lines", "10", "--datastore-timeout", "0.5", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    archive = Path(done.stdout.strip())
    manifest = json.loads(subprocess.run(["7z", "x", "-so", str(archive), f"{archive.name[:-3]}/cluster.json"],
                                         capture_output=True, check=True, stdin=subprocess.DEVNULL).stdout)
    host = manifest["hosts"][0]
    assert host["status"] == "ok"
    if host["akdiag"]["source"] != "installed":  # an akdiag on the host's PATH would be used instead
        assert host["akdiag"] == dict(host["akdiag"], source="copied", file="akdiag.pyz",
                                      size=pyz.stat().st_size)


def test_host_without_python_is_recorded(lab, pyz, tmp_path):
    bare = lab.add_host("bare", start=["api"], without_python=True)
    hosts = lab.hosts_file([{"name": "bare"}])
    done = akdiag("collect", "--hosts", str(hosts), "--ssh-config", str(lab.ssh_config), "--akdiag-file", str(pyz),
                  "--output", str(tmp_path), "--quiet", timeout=120)
    assert done.returncode == 5, done.stdout + done.stderr
    assert "No host could be collected (bare)" in done.stderr
    archive = Path(done.stdout.strip())
    manifest = json.loads(subprocess.run(["7z", "x", "-so", str(archive), f"{archive.name[:-3]}/cluster.json"],
                                         capture_output=True, check=True, stdin=subprocess.DEVNULL).stdout)
    host = manifest["hosts"][0]
    assert host["status"] == "failed" and host["error"]["kind"] == "no_python"
    assert host["remote"]["machine"] is None  # no readlink there: not compared with any other host
    assert host["error"]["stage"] == "probe" and "python3 not found" in host["error"]["message"]
    assert host["remote"]["python"] is None and host["cleanup"]["status"] == "ok"
    assert list(bare.tmpdir.iterdir()) == []


def test_connection_closes_its_master_the_ssh_way(lab, tmp_path):
    """close() asks the master to exit (`ssh -O exit`) before any signal: a signalled master
    sometimes lingered for seconds, holding up the whole cluster run."""
    settings = SshSettings(config_file=str(lab.ssh_config))
    # a control socket's path must fit a Unix socket's 108 bytes, with ssh's temporary suffix:
    # tmp_path can be longer than that (a test worker's folder)
    short = Path(tempfile.mkdtemp(prefix="akc"))
    conn = Connection("app1", settings, str(short / "c0"))
    conn.open(20)
    master = conn._master
    try:
        assert conn.run("echo up", 10).text().strip() == "up"
        conn._ask_master_to_exit()
        master.wait(10)  # gone without a signal from us
    finally:
        conn.close()
    assert master.returncode is not None and not (short / "c0").exists()
    short.rmdir()
