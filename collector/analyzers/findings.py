"""The finding record every analyzer returns, and the thresholds it is given.

A finding names one problem: a stable `id` (what kind of problem, e.g. `process.down`),
its `severity`, the `subject` it is about (a process, a filesystem, a datastore, a log
file), a one-line `title`, the `evidence` (the figures and the bundle file they came
from) and a `hint` of what to do.  Findings are plain data: they go into findings.json
and the report as dicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITIES = (CRITICAL, WARNING, INFO)  # worst first
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


@dataclass
class Finding:
    id: str
    severity: str
    subject: str
    title: str
    evidence_file: str
    figures: Dict[str, Any] = field(default_factory=dict)
    hint: str = ""
    area: str = ""  # the analyzer that found it; set by the runner

    def __post_init__(self) -> None:
        if self.severity not in _RANK:
            raise ValueError(f"finding {self.id}: unknown severity {self.severity!r}")

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "severity": self.severity,
            "area": self.area,
            "subject": self.subject,
            "title": self.title,
            "evidence": {"file": self.evidence_file, "figures": self.figures},
            "hint": self.hint,
        }


def severity_rank(severity: Any) -> int:
    return _RANK.get(str(severity), len(SEVERITIES))


def sort_findings(findings: Iterable[dict]) -> List[dict]:
    """Critical first, then warning, then info; within one severity the order the
    analyzers gave (their registry order, then their own order) is kept."""
    return sorted(findings, key=lambda f: severity_rank(f.get("severity")))


def count_by_severity(findings: Iterable[dict]) -> Dict[str, int]:
    counts = {severity: 0 for severity in SEVERITIES}
    for finding in findings:
        severity = finding.get("severity")
        if severity in counts:
            counts[severity] += 1
    return counts


def worst_severity(findings: Iterable[dict]) -> Optional[str]:
    ranks = [severity_rank(f.get("severity")) for f in findings]
    ranks = [r for r in ranks if r < len(SEVERITIES)]
    return SEVERITIES[min(ranks)] if ranks else None


class ThresholdError(ValueError):
    """A threshold the analyzers need is missing from the catalog or not of the right type."""


class Thresholds:
    """The catalog's `thresholds:` mapping, read with checks: an analyzer asking for a
    missing or malformed threshold fails with a message naming it (and the runner turns
    that into an `analyzer.failed` finding)."""

    def __init__(self, values: Optional[Dict[str, Any]] = None):
        self.values = dict(values or {})

    def number(self, name: str) -> float:
        value = self.values.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ThresholdError(f"threshold {name!r} is {'missing' if value is None else repr(value)} "
                                 "in the catalog (thresholds:); it must be a number")
        return value

    def mapping(self, name: str) -> Dict[str, float]:
        value = self.values.get(name)
        if not isinstance(value, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
            raise ThresholdError(f"threshold {name!r} must be a mapping of names to numbers in the catalog")
        return {str(k): v for k, v in value.items()}

    def words(self, name: str) -> List[str]:
        value = self.values.get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ThresholdError(f"threshold {name!r} must be a list of words in the catalog")
        return list(value)

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.values)
