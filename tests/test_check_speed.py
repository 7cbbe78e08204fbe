"""`check`'s cost-only changes keep its verdict: each JSON member parsed once per check
(the analyzers share the parsed objects), with the same findings, reasons, figures and
monitoring snapshot as a reader that parses every time, and nothing changed in what
they share."""

from __future__ import annotations

import json
import time

import pytest

from collector.analyzers import analyze
from collector.bundle.reader import BundleReader
from collector.catalog import load_catalog
from collector.check import _reasons, check_reader, exit_code, figures
from collector.checkformats import snapshot
from conftest import collect_bundle


@pytest.fixture(scope="module")
def judged(full_host, tmp_path_factory):
    """A whole bundle of the broken simulated platform (every analyzer has data) and its catalog."""
    _result, reader = collect_bundle(full_host, tmp_path_factory.mktemp("speed"), log_lines=200)
    return reader.root, load_catalog(full_host.catalog_file)


def _parsed_every_time(root, catalog) -> dict:
    reader = BundleReader(root)
    analysis = analyze(reader, catalog.thresholds)
    reasons = _reasons(reader, analysis.findings)
    return {"findings": analysis.findings, "reasons": reasons, "code": exit_code(analysis.findings, reasons),
            "figures": figures(reader, analysis.findings), "snapshot": snapshot(reader),
            "analyzers": [(a["name"], a["status"]) for a in analysis.analyzers]}


def test_parsed_once_gives_the_same_verdict(judged):
    root, catalog = judged
    before = _parsed_every_time(root, catalog)
    assert len(before["findings"]) >= 5 and before["code"] == 2  # the platform's faults are found
    result = check_reader(BundleReader(root), catalog, time.monotonic())
    after = {"findings": result.findings, "reasons": result.reasons, "code": result.code,
             "figures": result.figures, "snapshot": result.snapshot,
             "analyzers": [(a["name"], a["status"]) for a in result.analyzers]}
    assert json.dumps(after, sort_keys=True, default=str) == json.dumps(before, sort_keys=True, default=str)


def test_the_judges_change_nothing_they_share(judged):
    root, catalog = judged
    reader = BundleReader(root)
    check_reader(reader, catalog, time.monotonic())
    kept = reader._parsed
    assert "processes.json" in kept and "manifest.json" in kept
    for relpath, data in kept.items():
        assert data == BundleReader(root).json(relpath), f"{relpath} was changed by a judge"


def test_a_member_is_parsed_once_only_when_asked(judged):
    root, _catalog = judged
    plain = BundleReader(root)
    assert plain.json("processes.json") is not plain.json("processes.json")
    keeping = BundleReader(root).keep_parsed_json()
    assert keeping.json("processes.json") is keeping.json("processes.json")
    assert keeping.json("no-such.json") is None and keeping.json("no-such.json") is None
