"""The analyzers' runner: order, crashes turned into findings, thresholds from the
catalog, findings.json in a collected bundle and at the end of `collect`'s output."""

from __future__ import annotations

import json
import re

import pytest

from collector.analyzers import analyze, read_findings, registry
from collector.analyzers.findings import Finding, Thresholds, ThresholdError
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.catalog import CatalogError, load_catalog
from conftest import akdiag, collect_bundle
from triage_helpers import LoneHost, edit_json, free_port, matching, one


def _finding(fid: str, severity: str, subject: str = "x") -> Finding:
    return Finding(fid, severity, subject, f"{fid} title", "processes.json", {"n": 1}, "do this")


def test_findings_are_sorted_critical_to_info_keeping_the_analyzers_order(tmp_path):
    analyzers = {
        "first": lambda reader, t: [_finding("a.info", "info"), _finding("a.warn", "warning")],
        "second": lambda reader, t: [_finding("b.crit", "critical"), _finding("b.warn", "warning")],
    }
    analysis = analyze(BundleReader(tmp_path), {}, analyzers)
    assert [f["id"] for f in analysis.findings] == ["b.crit", "a.warn", "b.warn", "a.info"]
    assert [f["area"] for f in analysis.findings] == ["second", "first", "second", "first"]
    assert analysis.counts == {"critical": 1, "warning": 2, "info": 1}
    record = analysis.findings[0]
    assert set(record) == {"id", "severity", "area", "subject", "title", "evidence", "hint"}
    assert record["evidence"] == {"file": "processes.json", "figures": {"n": 1}}


def test_a_crashing_analyzer_becomes_a_finding_and_the_others_still_run(tmp_path):
    def broken(reader, thresholds):
        raise ZeroDivisionError("division by zero in the analyzer")
    analyzers = {"broken": broken, "fine": lambda reader, t: [_finding("ok.one", "warning")]}
    analysis = analyze(BundleReader(tmp_path), {}, analyzers)
    failed = one(analysis.findings, "analyzer.failed", "broken")
    assert failed["severity"] == "warning"
    assert "ZeroDivisionError" in failed["title"]
    assert one(analysis.findings, "ok.one")
    assert [a["status"] for a in analysis.analyzers] == ["failed", "ok"]


def test_a_missing_threshold_is_named_in_the_failure(tmp_path):
    (tmp_path / "system.json").write_text(json.dumps({"memory": {"percent_available": 5.0}, "filesystems": []}))
    thresholds = {"filesystem_types_ignored": [], "filesystem_memory_min_bytes": 1}
    analysis = analyze(BundleReader(tmp_path), thresholds, {"host": registry()["host"]})
    failed = one(analysis.findings, "analyzer.failed", "host")
    assert "'memory_available_percent_warning' is missing in the catalog" in failed["title"]


def test_thresholds_type_checks():
    limits = Thresholds({"a": 5, "b": "x", "c": True, "m": {"q": 1}, "w": ["x"]})
    assert limits.number("a") == 5
    for name in ("b", "c", "missing"):
        with pytest.raises(ThresholdError, match=name):
            limits.number(name)
    assert limits.mapping("m") == {"q": 1} and limits.words("w") == ["x"]
    with pytest.raises(ThresholdError):
        limits.mapping("a")
    with pytest.raises(ValueError):
        Finding("x", "severe", "s", "t", "f")


def test_every_builtin_threshold_is_in_the_catalog_and_an_override_wins(tmp_path):
    builtin = load_catalog().thresholds
    assert builtin["filesystem_free_percent_warning"] == 10 and builtin["log_stale_hours"] == 24
    override = tmp_path / "site.yaml"
    override.write_text("thresholds:\n  filesystem_free_percent_warning: 30\n")
    merged = load_catalog(override).thresholds
    assert merged["filesystem_free_percent_warning"] == 30
    assert merged["filesystem_free_percent_critical"] == 5
    override.write_text("thresholds: [1, 2]\n")
    with pytest.raises(CatalogError, match="thresholds"):
        load_catalog(override)


def test_an_overridden_threshold_changes_the_finding(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system",), cpu_sample_seconds=0.05)

    def quarter_free(data):
        data["filesystems"] = [{"mountpoint": "/data", "fstype": "ext4", "total": 1000, "free": 250,
                                "percent_free": 25.0, "inodes_total": 10, "inodes_percent_free": 90.0}]
    edit_json(reader, "system.json", quarter_free)
    builtin = load_catalog().thresholds
    assert not matching(analyze(reader, builtin).findings, "disk.space_low")
    stricter = dict(builtin, filesystem_free_percent_warning=30)
    assert one(analyze(reader, stricter).findings, "disk.space_low", "/data")["severity"] == "warning"


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A simulated host whose own processes (names no other test uses) have faults:
    `main` down with a stale PID file, `web`'s port held by another program."""
    lone = LoneHost(tmp_path_factory.mktemp("broken"), {"main": {}, "web": {"port": free_port()}})
    lone.start("main")
    lone.sim.stop_process(lone.name("main"))
    lone.sim.start_foreign(lone.port("web"), title="nginx-test")
    lone.start("web")
    yield lone
    lone.stop()


def test_collected_bundle_holds_findings_json_in_its_manifest(broken, tmp_path):
    reader = broken.collect(tmp_path / "out", only=None, log_lines=50)
    data = reader.json(schema.FINDINGS)
    assert data["schema_version"] == schema.SCHEMA_VERSION
    assert [a["name"] for a in data["analyzers"]] == list(registry())
    assert all(a["status"] == "ok" for a in data["analyzers"])
    assert one(data["findings"], "process.down", broken.name("main"))["severity"] == "critical"
    assert one(data["findings"], "pidfile.stale", broken.name("main"))["severity"] == "warning"
    assert one(data["findings"], "port.conflict", broken.name("web"))["severity"] == "critical"
    assert "findings.json" in {f["path"] for f in reader.manifest["files"]}
    assert data["findings"][0]["severity"] == "critical"


def test_collect_result_and_output_carry_the_top_findings(broken, tmp_path):
    reader = broken.collect(tmp_path / "lib", only=("processes",))
    assert read_findings(reader)[0]["severity"] == "critical"
    done = akdiag("collect", "--basedir", str(broken.sim.basedir), "--catalog", str(broken.catalog_file),
                  "--output", str(tmp_path), "--format", "dir", "--log-lines", "20")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    summary = next(line for line in lines if line.startswith("Findings:"))
    assert re.match(r"Findings: +\d+ critical, \d+ warnings?, \d+ info", summary)
    top = lines[lines.index(summary) + 1:lines.index("Send this file to Altcraft support.")]
    assert 1 <= len(top) <= 6
    assert top[0].lstrip().startswith("CRITICAL") and re.search(r"\[[a-z_.]+\]$", top[0])
