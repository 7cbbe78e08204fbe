"""Analyzers: turn the facts of a bundle into findings that name the problem.

Each analyzer is a function `analyze(reader, thresholds) -> [Finding]` over a
BundleReader: it reads only the bundle, never the live host, so a live run, `akdiag
report` on last week's archive and a diff of two bundles give the same findings.
An analyzer that crashes becomes an `analyzer.failed` finding of its own.

findings.json: {"schema_version", "tool": {name, version}, "counts": {critical,
warning, info}, "findings": [{id, severity, area, subject, title, evidence: {file,
figures}, hint}], "analyzers": [{name, status: ok|failed, duration, error}],
"thresholds": {...}}; findings sorted critical, warning, info.
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from collector import TOOL_NAME, __version__
from collector.analyzers.findings import (CRITICAL, INFO, SEVERITIES, WARNING, Finding, Thresholds,
                                          count_by_severity, sort_findings, worst_severity)
from collector.bundle import schema
from collector.bundle.reader import BundleReader

Analyzer = Callable[[BundleReader, Thresholds], List[Finding]]

__all__ = ["Analysis", "Finding", "Thresholds", "analyze", "registry", "write_findings", "SEVERITIES",
           "CRITICAL", "WARNING", "INFO", "count_by_severity", "sort_findings", "worst_severity"]


def registry() -> "OrderedDict[str, Analyzer]":
    """The analyzers in the order their findings are listed within one severity."""
    from collector.analyzers import (collection, datastores, evidence, history, history_processes, host, kernel, logs,
                                     network, processes, services)

    return OrderedDict((
        ("collection", collection.analyze),  # first: a missing BASEDIR explains everything after it
        ("evidence", evidence.analyze),  # what could not be checked: never read as health
        ("processes", processes.analyze),
        ("host", host.analyze),
        ("datastores", datastores.analyze),
        ("network", network.analyze),
        ("logs", logs.analyze),
        ("kernel", kernel.analyze),
        ("services", services.analyze),
        ("history", history.analyze),  # history.json (when watch kept one): queue persistence
        ("history_processes", history_processes.analyze),  # ... memory growth, restarts
    ))


@dataclass
class Analysis:
    findings: List[dict] = field(default_factory=list)  # sorted, as in findings.json
    analyzers: List[dict] = field(default_factory=list)
    thresholds: Dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> Dict[str, int]:
        return count_by_severity(self.findings)

    @property
    def worst(self) -> Optional[str]:
        return worst_severity(self.findings)

    def as_dict(self) -> dict:
        return {
            "schema_version": schema.SCHEMA_VERSION,
            "tool": {"name": TOOL_NAME, "version": __version__},
            "counts": self.counts,
            "findings": self.findings,
            "analyzers": self.analyzers,
            "thresholds": self.thresholds,
        }


def _failure(name: str, exc: BaseException) -> Finding:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    return Finding(
        "analyzer.failed", WARNING, name, f"The {name} analyzer failed: {type(exc).__name__}: {exc}",
        schema.FINDINGS, {"error": f"{type(exc).__name__}: {exc}",
                          "at": f"{where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else None},
        "Its findings are missing from this list; the others stand. Report this to akdiag's maintainers "
        "with the bundle's manifest.json.", area=name)


def run_one(name: str, analyzer: Analyzer, reader: BundleReader, thresholds: Thresholds) -> tuple:
    """(finding dicts, outcome record); a crash is caught and becomes a finding."""
    started = time.monotonic()
    try:
        found = [f.as_dict() for f in _with_area(analyzer(reader, thresholds), name)]
        outcome = {"name": name, "status": "ok", "error": None}
    except Exception as exc:  # never a traceback: the crash is a finding of its own
        found = [_failure(name, exc).as_dict()]
        outcome = {"name": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    outcome["duration"] = round(time.monotonic() - started, 3)
    return found, outcome


def _with_area(findings: List[Finding], name: str) -> List[Finding]:
    for finding in findings:
        finding.area = finding.area or name
    return findings


def analyze(reader: BundleReader, thresholds: Optional[Dict[str, Any]] = None,
            analyzers: Optional[Dict[str, Analyzer]] = None) -> Analysis:
    """Run every analyzer over the bundle; findings sorted critical to info."""
    limits = Thresholds(thresholds)
    found: List[dict] = []
    outcomes = []
    for name, analyzer in (analyzers if analyzers is not None else registry()).items():
        findings, outcome = run_one(name, analyzer, reader, limits)
        found += findings
        outcomes.append(outcome)
    return Analysis(sort_findings(found), outcomes, limits.as_dict())


def write_findings(analysis: Analysis, writer) -> None:
    """findings.json through the bundle writer (so it is scrubbed like every file)."""
    writer.write_json(schema.FINDINGS, analysis.as_dict(), "analyzers")


def read_findings(reader: BundleReader) -> Optional[List[dict]]:
    """The findings a bundle holds, or None when it has no readable findings.json."""
    data = reader.json(schema.FINDINGS)
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        return None
    return sort_findings(f for f in data["findings"] if isinstance(f, dict))
