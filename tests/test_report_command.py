"""`akdiag report BUNDLE`: today's analyzers and summary over an existing bundle, and the
summary's triage parts (findings first with links to their evidence, datastores, bars,
numbered log tails, the one script allowed by the page's policy)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from html import unescape
from pathlib import Path

import pytest

from collector import report
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from conftest import akdiag, collect_bundle
from triage_helpers import LoneHost, edit_json, free_port


@pytest.fixture(scope="module")
def broken_bundles(tmp_path_factory):
    """A .7z and a folder bundle of a simulated host whose own processes (names no other
    test uses) have faults: `main` down with a stale PID file, `web`'s port held by
    another program."""
    root = tmp_path_factory.mktemp("bundles")
    lone = LoneHost(root / "lone", {"main": {}, "web": {"port": free_port()}}, log_lines=300)
    try:
        lone.start("main")
        lone.sim.stop_process(lone.name("main"))
        lone.sim.start_foreign(lone.port("web"), title="nginx-test")
        lone.start("web")
        folder = lone.collect(root / "dir", only=None, log_lines=300)
        archive = lone.collect(root / "7z", only=None, fmt="7z", log_lines=300)
    finally:
        lone.stop()
    return archive, folder, lone


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_of_an_archive(broken_bundles, tmp_path):
    archive, _folder, lone = broken_bundles
    output = tmp_path / "out" / "ticket.html"
    done = akdiag("report", str(archive), "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert f"Bundle schema version {schema.SCHEMA_VERSION} (this akdiag reads up to {schema.SCHEMA_VERSION})" \
        in done.stdout
    assert "Verdict:" in done.stdout and "[process.down]" in done.stdout
    findings = json.loads((tmp_path / "out" / "ticket.findings.json").read_text())
    html = output.read_text()
    assert html.count('<li id="finding-') == len(findings["findings"]) > 0
    name = lone.name("main")
    assert f'data-finding-id="process.down" data-subject="{name}"' in html
    assert f'id="proc-{name}"' in html


def test_report_defaults_beside_the_current_folder_and_leaves_the_bundle_alone(broken_bundles, tmp_path):
    _archive, folder, _lone = broken_bundles
    before = _digest(folder.root)
    done = akdiag("report", str(folder.root), cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    name = folder.root.name
    assert (tmp_path / f"{name}.summary.html").is_file()
    assert (tmp_path / f"{name}.findings.json").is_file()
    assert _digest(folder.root) == before


def test_report_analyzes_a_bundle_that_has_no_findings(broken_bundles, tmp_path):
    _archive, folder, lone = broken_bundles
    old = tmp_path / "old"
    shutil.copytree(folder.root, old)
    (old / schema.FINDINGS).unlink()
    (old / schema.SUMMARY_HTML).unlink()
    assert "findings.json is missing" in report.render_bundle(BundleReader(old))
    done = akdiag("report", str(old), "--output", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "r.html").read_text()
    assert "findings.json is missing" not in html
    assert f'data-finding-id="port.conflict" data-subject="{lone.name("web")}"' in html


def test_report_refuses_a_newer_bundle(broken_bundles, tmp_path):
    _archive, folder, _lone = broken_bundles
    newer = tmp_path / "newer"
    shutil.copytree(folder.root, newer)
    edit_json(BundleReader(newer), schema.MANIFEST, lambda m: m.update(schema_version=schema.SCHEMA_VERSION + 1))
    done = akdiag("report", str(newer), "--output", str(tmp_path / "r.html"))
    assert done.returncode == 2
    assert f"schema version {schema.SCHEMA_VERSION + 1}, newer than akdiag" in done.stderr
    assert "upgrade akdiag" in done.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_of_something_that_is_no_bundle(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    done = akdiag("report", str(junk), "--output", str(tmp_path / "r.html"))
    assert done.returncode == 2 and "is not a bundle" in done.stderr
    assert akdiag("report", str(tmp_path / "absent.7z")).returncode == 2


def test_report_opens_the_browser(broken_bundles, tmp_path):
    _archive, folder, _lone = broken_bundles
    seen = tmp_path / "seen.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {seen}\n")
    browser.chmod(0o755)
    done = akdiag("report", str(folder.root), "--output", str(tmp_path / "r.html"), "--open",
                  env={"BROWSER": str(browser)})
    assert done.returncode == 0, done.stderr
    assert seen.read_text().strip() == (tmp_path / "r.html").resolve().as_uri()


def test_report_of_an_encrypted_bundle(host, tmp_path):
    host.start(["api"])
    env = {"AKDIAG_PASSWORD": "report-pw-Zq"}
    made = akdiag("collect", "--basedir", str(host.basedir), "--output", str(tmp_path), "--encrypt", "--quiet",
                  "--log-lines", "5", env=env)
    assert made.returncode == 0, made.stderr
    bundle = made.stdout.strip()
    without = akdiag("report", bundle, "--output", str(tmp_path / "r.html"), env={"AKDIAG_PASSWORD": ""})
    assert without.returncode == 2 and "password" in without.stderr
    done = akdiag("report", bundle, "--output", str(tmp_path / "r.html"), env=env)
    assert done.returncode == 0, done.stderr
    assert "report-pw-Zq" not in (tmp_path / "r.html").read_text()


# -- the summary's triage parts ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def page(broken_bundles):
    _archive, folder, lone = broken_bundles
    return folder, report.render_bundle(folder), lone


def test_findings_come_first_most_urgent_first_each_linking_to_an_existing_section(page):
    folder, html, lone = page
    assert html.index('id="findings"') < html.index('id="processes"') < html.index('id="datastores"') \
        < html.index('id="host"') < html.index('id="logs"')
    severities = re.findall(r'<li id="finding-\d+" class="finding sev-(\w+)"', html)
    order = {"critical": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=order.get) and severities[0] == "critical"
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    links = re.findall(r'evidence: <a href="#([^"]+)">', html)
    assert len(links) == len(severities)
    assert set(links) <= ids, set(links) - ids
    assert f'evidence: <a href="#proc-{lone.name("main")}">processes.json</a>' in html


def test_header_has_host_platform_version_label_time_and_verdict_in_one_line(page):
    folder, html, lone = page
    headline = re.search(r'<div class="headline">(.*?)</div>\n</div>', html, re.S).group(1)
    assert f"<h1>{folder.manifest['hostname']}</h1>" in headline
    assert "Altcraft platform v2025.1.71.3.1003" in headline
    assert 'id="verdict"' in headline and "critical" in headline


def test_datastores_host_bars_and_numbered_tails(page):
    folder, html, lone = page
    datastores = re.search(r'<section id="datastores">(.*?)</section>', html, re.S).group(1)
    for record in folder.json("datastores.json")["endpoints"]:
        assert record["name"] in datastores
    host = re.search(r'<section id="host">(.*?)</section>', html, re.S).group(1)
    assert host.count('<svg class="bar"') >= 2  # memory and every filesystem
    assert 'aria-label="' in host
    tail = re.search(r'<details class="tail" id="log-0">(.*?)</details>', html, re.S).group(1)
    numbers = [int(n) for n in re.findall(r'<span class="ln">(\d+)</span>', tail)]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and numbers[-1] == 300
    marked = re.findall(r'<span class="line mark mark-error" id="log-0-L(\d+)"><span class="ln">(\d+)</span>', tail)
    assert marked and all(a == b for a, b in marked)
    assert all("ERROR" in line for line in re.findall(r'mark-error"[^>]*>(.*?)</span>\n', tail))


def test_the_one_script_is_allowed_by_its_hash_and_nothing_else(page):
    _folder, html, lone = page
    policy = unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1))
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy.split("script-src")[1]
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert html.count("<script") == 1


def test_processes_table_carries_sort_keys(page):
    _folder, html, lone = page
    assert '<table class="processes sortable" id="processes-table">' in html
    row = re.search(rf'<tr id="proc-{lone.name("main")}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert 'data-sort="0"' in row  # down sorts first by status
