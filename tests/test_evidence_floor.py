"""Absence of evidence is never health: real bundles, written by a real collection, then
edited to hold nulls, wrong types or missing files; and real collections whose processes
collector fails (a /proc it cannot parse) or runs on psutil 5.9.  The findings, the
terminal text and the exit codes of `check --bundle` and `report` must say "could not
check", never "none down"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collector.analyzers import analyze
from collector.bundle.reader import BundleReader
from collector.check import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING
from conftest import REPO, akdiag
import triage_helpers
from triage_helpers import findings_of, matching, one


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    """A bundle of a host with one process of its own running for an hour, nothing wrong."""
    return triage_helpers.quiet_bundle(tmp_path_factory.mktemp("quiet"))


@pytest.fixture
def bundle(quiet, tmp_path):
    reader, _lone = quiet
    shutil.copytree(reader.root, tmp_path / "bundle")
    return BundleReader(tmp_path / "bundle")


def _write(reader: BundleReader, relpath: str, text: str) -> None:
    reader.path(relpath).write_text(text)


def _processes(reader: BundleReader, change) -> None:
    data = json.loads(reader.path("processes.json").read_text())
    _write(reader, "processes.json", json.dumps(change(data)))


def _report(reader: BundleReader, tmp_path: Path):
    return akdiag("report", str(reader.root), "--output", str(tmp_path / "summary.html"))


def test_the_quiet_bundle_is_checked_and_clean(bundle, tmp_path):
    """The baseline the edits below break: no not_checked finding, exits 0."""
    assert not [f for f in findings_of(bundle) if f["id"].endswith(".not_checked")]
    assert akdiag("check", "--bundle", str(bundle.root)).returncode == EXIT_OK
    done = _report(bundle, tmp_path)
    assert done.returncode == EXIT_OK and "Could not check" not in done.stdout, done.stdout + done.stderr


UNUSABLE = [
    ("null", lambda r: _write(r, "processes.json", "null"), "processes.json holds null or is not valid JSON"),
    ("not json", lambda r: _write(r, "processes.json", "{\"expected\": ["), "not valid JSON"),
    ("missing", lambda r: r.path("processes.json").unlink(), "processes.json is missing from the bundle"),
    ("a list", lambda r: _write(r, "processes.json", "[]"), "processes.json holds a list, not an object"),
    ("expected null", lambda r: _processes(r, lambda d: dict(d, expected=None)),
     "processes.json's 'expected' is null, not a list"),
    ("expected a string", lambda r: _processes(r, lambda d: dict(d, expected="api")),
     "processes.json's 'expected' is a string, not a list"),
    ("no expected", lambda r: _processes(r, lambda d: {k: v for k, v in d.items() if k != "expected"}),
     "processes.json has no 'expected'"),
    ("expected empty", lambda r: _processes(r, lambda d: dict(d, expected=[])),
     "processes.json lists no expected process"),
    ("records of wrong types", lambda r: _processes(r, lambda d: dict(d, expected=[None, 7, {"name": 5}])),
     "3 of 3 records in processes.json are unusable: record 0 is null; record 1 is a number; record 2 has no name"),
]


@pytest.mark.malformed_bundle  # one case is a processes.json that is not JSON at all
@pytest.mark.parametrize("edit, reason", [case[1:] for case in UNUSABLE], ids=[case[0] for case in UNUSABLE])
def test_unusable_process_data_is_not_checked_never_healthy(bundle, tmp_path, edit, reason):
    edit(bundle)
    findings = findings_of(bundle)
    assert all(f["id"] != "analyzer.failed" for f in findings), findings
    finding = one(findings, "processes.not_checked")
    assert finding["severity"] == "critical" and reason in finding["title"], finding["title"]
    assert one(findings, "ports.not_checked")["severity"] == "critical"
    assert not matching(findings, "process.down")

    done = akdiag("check", "--bundle", str(bundle.root))
    assert done.returncode == EXIT_UNKNOWN, done.stdout
    assert f"Could not check: no process data ({finding['evidence']['figures']['reason']})" in done.stdout
    nagios = akdiag("check", "--bundle", str(bundle.root), "--format", "nagios")
    assert nagios.returncode == EXIT_UNKNOWN and nagios.stdout.startswith("AKDIAG UNKNOWN - no process data ("), \
        nagios.stdout

    done = _report(bundle, tmp_path)
    assert done.returncode == EXIT_UNKNOWN, done.stdout + done.stderr
    assert "Could not check: processes (" in done.stdout and reason in done.stdout
    html = (tmp_path / "summary.html").read_text()
    assert "Processes could not be checked" in html
    assert "All expected processes running" not in html and "No problems found" not in html
    assert "Expected processes: 0 running · 0 down" not in html


def test_one_unusable_record_is_named_and_the_rest_still_judged(bundle, quiet):
    _reader, lone = quiet

    def garble(data):
        good = data["expected"][0]
        return dict(data, expected=[good, dict(good, name="ghost", status=None), dict(good, name="odd", status="zzz")])
    _processes(bundle, garble)
    finding = one(findings_of(bundle), "processes.not_checked")
    assert finding["title"] == ("Processes could not be checked: 2 of 3 records in processes.json are unusable: "
                                "ghost's status is null; odd's status is 'zzz'")
    done = akdiag("check", "--bundle", str(bundle.root))
    assert done.returncode == EXIT_UNKNOWN, done.stdout
    assert "Could not check: not every process could be checked (2 of 3 records" in done.stdout

    def down(data):
        data["expected"][0].update(status="down", pids=[], resources=[])
        return data
    _processes(bundle, down)
    findings = findings_of(bundle)
    assert one(findings, "process.down", lone.name("main"))
    assert akdiag("check", "--bundle", str(bundle.root)).returncode == EXIT_CRITICAL  # what was found stands


@pytest.mark.parametrize("port, words", [(None, "'s port record is null"), ("listening", "'s port record is a string"),
                                         ({"state": 7}, "'s port state is 7")])
def test_unusable_port_records_are_not_checked(bundle, quiet, tmp_path, port, words):
    _reader, lone = quiet

    def change(data):
        data["expected"][0]["port"] = port
        return data
    _processes(bundle, change)
    findings = findings_of(bundle)
    finding = one(findings, "ports.not_checked")
    assert finding["severity"] == "critical" and f"{lone.name('main')}{words}" in finding["title"]
    assert not matching(findings, "processes.not_checked")
    done = akdiag("check", "--bundle", str(bundle.root))
    assert done.returncode == EXIT_UNKNOWN and "Could not check: ports: " in done.stdout, done.stdout
    assert _report(bundle, tmp_path).returncode == EXIT_UNKNOWN


@pytest.mark.parametrize("relpath, text, fid, reason", [
    ("system.json", "null", "system.not_checked", "system.json holds null or is not valid JSON"),
    ("system.json", "[1, 2]", "system.not_checked", "system.json holds a list, not an object"),
    ("config/index.json", '{"files": {"a": 1}}', "config.not_checked",
     "config/index.json's 'files' is an object, not a list"),
    ("ports.json", "{}", "sockets.not_checked", "ports.json has no 'listening'"),
])
def test_other_unusable_files_are_warnings(bundle, tmp_path, relpath, text, fid, reason):
    _write(bundle, relpath, text)
    findings = findings_of(bundle)
    assert all(f["id"] != "analyzer.failed" for f in findings), findings
    finding = one(findings, fid)
    assert finding["severity"] == "warning" and reason in finding["title"], finding["title"]
    done = akdiag("check", "--bundle", str(bundle.root))
    assert done.returncode == EXIT_WARNING, done.stdout
    assert _report(bundle, tmp_path).returncode == EXIT_OK


BAD_VALUES = [None, "x", 7, True, [], {}, [None], [7], {"a": None}]


def _key_paths(value, path=(), depth=0):
    yield path
    if depth >= 5:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _key_paths(item, path + (key,), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            yield from _key_paths(item, path + (index,), depth + 1)


def _replaced(data, path, value):
    if not path:
        return value
    data = json.loads(json.dumps(data))
    here = data
    for key in path[:-1]:
        here = here[key]
    here[path[-1]] = value
    return data


@pytest.mark.parametrize("relpath", ["processes.json", "system.json", "pidfiles.json", "ports.json",
                                     "config/index.json", "manifest.json"])
def test_no_analyzer_or_the_report_crashes_on_nulls_and_wrong_types(quiet, tmp_path, relpath):
    """Every value (five levels down, two list items) of a real bundle's file replaced by
    null and wrong types: every analyzer ends ok and the summary's data is built (the whole
    page rendered for nulls near the top)."""
    from collector import report
    from collector.catalog import load_catalog

    thresholds = load_catalog().thresholds
    source, _lone = quiet
    original = json.loads(source.path(relpath).read_text())
    target = tmp_path / "b"
    shutil.copytree(source.root, target)
    reader = BundleReader(target)
    cases = 0
    for path in _key_paths(original):
        for value in BAD_VALUES:
            reader.path(relpath).write_text(json.dumps(_replaced(original, path, value)))
            analysis = analyze(reader, thresholds)
            failed = [a for a in analysis.analyzers if a["status"] != "ok"]
            assert not failed, (path, value, failed)
            report.build_context(reader, analysis.as_dict())   # where the page normalizes the data
            if value is None and len(path) <= 1:  # a whole page takes 0.5 s (its templates are compiled)
                report.render_bundle(reader, analysis.as_dict())
            cases += 1
    assert cases > 50


# --------------------------------------------------------------------------- real collections

def test_a_processes_collector_that_fails_reads_could_not_check(host, tmp_path):
    """A /proc the collector cannot parse (a container's faked one, say): the process
    table's reader raises, the collector fails, and the terminal, check and report all
    say "could not check"."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to mount a broken /proc in a private namespace")
    host.start(["api"])
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # a network of its own too: a real RabbitMQ may listen on the machine's 5672
    script = ("ip link set lo up\nmount -t tmpfs tmpfs /proc\nmkdir /proc/1\necho garbage > /proc/1/stat\n"
              "echo 'btime 1700000000' > /proc/stat\n"
              f"exec {sys.executable} -m collector collect --basedir {host.basedir} --catalog {host.catalog_file} "
              f"--output {out} --format dir --timeout 60\n")
    done = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "sh", "-ec", script],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Processes: could not check (the processes collector failed: ProcUnreadable" in done.stdout, done.stdout
    assert "Processes down" not in done.stdout
    (bundle,) = list(out.iterdir())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {c["name"]: c["status"] for c in manifest["collectors"]}["processes"] == "failed"
    findings = json.loads((bundle / "findings.json").read_text())["findings"]
    assert one(findings, "processes.not_checked")["severity"] == "critical"
    assert not matching(findings, "collector.failed", "processes")      # said once, as critical

    checked = akdiag("check", "--bundle", str(bundle))
    # The simulated host's datastores do not answer: critical, and that stands; the
    # processes are named as not checked all the same.
    assert checked.returncode == EXIT_CRITICAL, checked.stdout
    assert one(findings, "datastore.unreachable", "rabbitmq")["severity"] == "critical"
    assert "Could not check: no process data (the processes collector failed: ProcUnreadable" in checked.stdout
    reported = _report(BundleReader(bundle), tmp_path)
    assert reported.returncode == EXIT_UNKNOWN, reported.stdout + reported.stderr
    assert "Could not check: processes (the processes collector failed: ProcUnreadable" in reported.stdout


@pytest.fixture(scope="session")
def psutil59(tmp_path_factory):
    """psutil 5.9.8 (Debian 12 ships 5.9.4) installed with pip into a folder of its own."""
    target = tmp_path_factory.mktemp("psutil59")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--target", str(target), "psutil==5.9.8"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"pip could not install psutil 5.9.8 here: {done.stderr.strip()[-300:]}")
    return target


def test_collect_works_with_psutil_59(psutil59, host, tmp_path):
    """psutil 5.9 has Process.connections only (net_connections came in 6.0)."""
    host.start(["api"])
    out = tmp_path / "out"
    env = {"PYTHONPATH": f"{psutil59}{os.pathsep}{REPO}"}
    version = subprocess.run([sys.executable, "-c", "import psutil; print(psutil.__version__)"],
                             capture_output=True, text=True, env=dict(os.environ, **env))
    assert version.stdout.strip() == "5.9.8", version.stdout + version.stderr
    out.mkdir()
    done = akdiag("collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file),
                  "--output", str(out), "--format", "dir", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "could not check" not in done.stdout and "Processes down (" in done.stdout, done.stdout
    (bundle,) = list(out.iterdir())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {c["name"]: c["status"] for c in manifest["collectors"]}["processes"] == "ok", manifest["collectors"]
    expected = {p["name"]: p for p in json.loads((bundle / "processes.json").read_text())["expected"]}
    assert expected["api"]["status"] == "running"
    assert expected["api"]["resources"][0]["connections"].get("LISTEN") == 1
