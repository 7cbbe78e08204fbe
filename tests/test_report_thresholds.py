"""The summary's colours come from the catalog's thresholds, the numbers the analyzers
judge by: a site that changes a threshold sees the table mark exactly what a finding
names, whether it re-renders with `akdiag report --catalog` or the bundle's own
findings.json recorded the thresholds at collection time."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collector import analyzers, report
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.report.limits import PageThresholds
from conftest import akdiag
from test_report import _write_full_bundle
from triage_helpers import edit_json

# Below the built-in thresholds, above the site's: 15 % free space, 15 % memory
# available, load 1.5 times the CPUs, 68 % of a process's open-files limit.
SITE = {"filesystem_free_percent_warning": 20, "memory_available_percent_warning": 20,
        "load_per_cpu_warning": 1, "process_open_files_percent_warning": 60}


def _between_the_limits(system: dict) -> None:
    system["filesystems"][0].update(used=85 * 2**30, free=15 * 2**30, percent_used=85.0, percent_free=15.0)
    system["memory"].update(available=int(2.4 * 2**30), percent_available=15.0)
    system["cpu"]["count"] = 4
    system["load_average"] = [6.0, 5.0, 4.0]


def _fds(processes: dict) -> None:
    for record in processes["expected"]:
        for resource in record["resources"]:
            resource.update(open_files=700, open_files_limit=1024, open_files_percent=68.4)


@pytest.fixture
def bundle(tmp_path) -> BundleReader:
    reader = _write_full_bundle(tmp_path / "bundle")
    edit_json(reader, schema.SYSTEM, _between_the_limits)
    edit_json(reader, schema.PROCESSES, _fds)
    return reader


def _marks(html: str) -> dict:
    """Which figures the page marks: the / filesystem row, api's open files, memory, load."""
    fs = re.search(r'<tr id="fs-0" class="([^"]*)">', html).group(1)
    api = re.search(r'<tr id="proc-api"[^>]*>(.*?)</tr>', html, re.S).group(1)
    fd = re.search(r'<div class="([^"]*)">700 / 1,024', api).group(1)
    memory = re.search(r"<th>Memory</th><td class=\"([^\"]*)\">", html).group(1)
    load = re.search(r"<th>Load \(1, 5, 15 min\)</th><td class=\"([^\"]*)\">", html).group(1)
    return {"disk": fs == "hot", "fd": fd == "hot", "memory": memory == "hot", "load": load == "hot"}


def _fs_bar(html: str) -> str:
    row = re.search(r'<tr id="fs-0".*?</tr>', html, re.S).group(0)
    return re.search(r'<rect class="bar-(\w+)" x="0" y="0" width="85.0"', row).group(1)


def _found(findings: list) -> dict:
    subjects = {(f["id"], f["subject"]) for f in findings}
    return {"disk": ("disk.space_low", "/") in subjects, "fd": ("process.open_files", "api") in subjects,
            "memory": ("memory.low", "memory") in subjects, "load": ("load.high", "load") in subjects}


def _report(bundle: BundleReader, tmp_path: Path, *catalog: str) -> tuple:
    output = tmp_path / "out" / "summary.html"
    done = akdiag("report", str(bundle.root), "--output", str(output), *catalog)
    assert done.returncode == 0, done.stderr
    findings = json.loads(output.with_name("summary.findings.json").read_text())["findings"]
    return output.read_text(), findings


def test_built_in_thresholds_mark_nothing_and_find_nothing(bundle, tmp_path):
    html, findings = _report(bundle, tmp_path)
    assert _marks(html) == _found(findings) == {"disk": False, "fd": False, "memory": False, "load": False}
    assert "open files marked when at or above 80 % of the limit" in html
    assert _fs_bar(html) == "ok"


def test_a_site_threshold_marks_the_table_where_the_finding_is(bundle, tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("thresholds:\n" + "".join(f"  {k}: {v}\n" for k, v in SITE.items()))
    html, findings = _report(bundle, tmp_path, "--catalog", str(site))
    assert _marks(html) == _found(findings) == {"disk": True, "fd": True, "memory": True, "load": True}
    assert "open files marked when at or above 60 % of the limit" in html
    assert _fs_bar(html) == "warn"  # 85 % used: 100 - 20 % free


def test_the_thresholds_recorded_in_findings_json_colour_the_collected_summary(bundle):
    from collector.catalog import load_catalog

    site = dict(load_catalog().thresholds, **SITE)
    analysis = analyzers.analyze(bundle, site)
    bundle.path(schema.FINDINGS).write_text(json.dumps(analysis.as_dict()))
    html = report.render_bundle(BundleReader(bundle.root))
    assert _marks(html) == _found(analysis.findings) == {"disk": True, "fd": True, "memory": True, "load": True}


def test_a_recorded_threshold_that_is_missing_or_malformed_is_the_built_in_one():
    limits = PageThresholds({"thresholds": {"process_open_files_percent_warning": "lots",
                                            "memory_available_percent_warning": 25,
                                            "filesystem_types_ignored": "squashfs"}})
    assert limits.number("process_open_files_percent_warning") == 80
    assert limits.number("memory_available_percent_warning") == 25
    assert "squashfs" in limits.words("filesystem_types_ignored")
    assert limits.number("filesystem_free_percent_critical") == 5
    assert PageThresholds(None).number("load_per_cpu_warning") == 2
