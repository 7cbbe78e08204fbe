"""The findings section of a diff: new and resolved findings, matched by id and subject."""

from __future__ import annotations

from typing import List, Tuple

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.hostdiff.model import Change, Diff
from collector.hostdiff.pseudonyms import pair_names


def _findings_of(reader: BundleReader) -> List[dict]:
    data = reader.json(schema.FINDINGS)
    if isinstance(data, dict) and isinstance(data.get("findings"), list):
        return data["findings"]
    from collector.analyzers import analyze  # an older bundle without findings: today's analyzers

    return analyze(reader).findings


def _finding_key(finding: dict) -> Tuple[str, str]:
    return str(finding.get("id")), str(finding.get("subject"))


URGENT = ("critical", "warning")  # a new finding of these severities is a regression


def compare_findings(old: List[dict], new: List[dict], not_compared: List[str]) -> Tuple[List[dict], List[dict], int]:
    """(new findings, resolved findings, how many stayed), matched by id and subject; a
    subject that differs only by pseudonyms (a per-bundle key) is noted, not guessed."""
    before = {_finding_key(f): f for f in old}
    after = {_finding_key(f): f for f in new}
    pairs, unpaired = pair_names(before, after)
    if unpaired:
        not_compared.append(f"{unpaired} finding(s) about pseudonymized subjects (a per-bundle key): "
                            "cannot tell whether they are new or resolved")
    paired = set(pairs)
    return ([after[k] for k in after if (None, k) in paired], [before[k] for k in before if (k, None) in paired],
            sum(1 for pair in pairs if None not in pair))


def compare_findings_section(old: BundleReader, new: BundleReader, diff: Diff) -> List[Change]:
    diff.new_findings, diff.resolved_findings, diff.unchanged_findings = compare_findings(
        _findings_of(old), _findings_of(new), diff.not_compared)
    changes = [Change("findings", f"{f.get('id')} {f.get('subject')}", "finding", "added", None, f.get("severity"),
                      regression=f.get("severity") in URGENT,
                      text=f"new {f.get('severity')}: {f.get('title')}") for f in diff.new_findings]
    changes += [Change("findings", f"{f.get('id')} {f.get('subject')}", "finding", "removed", f.get("severity"), None,
                       text=f"resolved: {f.get('title')}") for f in diff.resolved_findings]
    return changes

