"""The findings section: the analyzers' findings, worst first, each linked to the part
of the page that holds its evidence.  The cluster report shows its findings with the
same rows (`finding_rows`), linked to its own anchors."""

from __future__ import annotations

from typing import Any, List, Optional, Set, Tuple

from collector.bundle import schema
from collector.plain import as_dict, dicts

# What the page shows of the findings (the rest is named in it; all are in findings.json),
# so that summary.html stays under 5 MB whatever the host (test_report_size.py).
MAX_FINDINGS = 500
MAX_FIGURES = 12  # figures of one finding
MAX_FIGURE_CHARS = 300  # one figure's text
MAX_TEXT_CHARS = 1000  # a finding's title, subject and hint, each
_HOST_FINDINGS = ("memory.", "swap.", "load.", "files.", "clock.")


class Anchors:
    """Where, in the page, the evidence of a finding is shown."""

    def __init__(self, processes: dict, host: dict, datastores: dict, logs: dict):
        self.processes = {r["name"] for r in processes["rows"]}
        self.filesystems = {str(fs.get("mountpoint")): fs["anchor"] for fs in host["filesystems"]}
        self.datastores = {str(r["name"]): r["anchor"] for r in datastores["rows"]}
        self.tails = {str(t["path"]): t for t in logs["tails"]}

    def of(self, finding: dict) -> str:
        fid, subject = str(finding.get("id") or ""), str(finding.get("subject") or "")
        figures = as_dict(as_dict(finding.get("evidence")).get("figures"))
        if fid.startswith(("process.", "pidfile.", "port.")) and subject in self.processes:
            return f"proc-{subject}"
        if fid.startswith("disk."):
            return self.filesystems.get(subject, "host")
        if fid.startswith(("datastore.", "mongodb.", "rabbitmq.")):
            name = str(figures.get("endpoint") or subject.split("/", 1)[0])
            return self.datastores.get(name, "datastores")
        if fid == "log.same_error":  # many logs: the timeline shows them together
            return "timeline"
        if fid.startswith("log."):
            return self._log_anchor(subject, figures)
        return self._section_of(fid)

    def _log_anchor(self, subject: str, figures: dict) -> str:
        tail = self.tails.get(subject)
        if tail is None:
            return "logs"
        last = as_dict(figures.get("last")).get("line")
        return tail["marked"].get(last) or tail["anchor"]

    @staticmethod
    def _section_of(fid: str) -> str:
        if fid.startswith(_HOST_FINDINGS):
            return "host"
        if fid.startswith("config."):
            return "config"
        if fid.startswith(("collector.", "analyzer.")):
            return "collectors"
        if fid.startswith("platform."):
            return "processes"
        return "header"


def _figure_text(value: Any) -> str:
    if isinstance(value, dict) and "line" in value:
        return f"line {value.get('line')}: {value.get('text')}"
    if isinstance(value, list):
        shown = ", ".join(_figure_text(v) for v in value[:10])
        return shown + (f" … (+{len(value) - 10})" if len(value) > 10 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k} {_figure_text(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_FIGURE_CHARS else text[:MAX_FIGURE_CHARS - 1] + "…"


def _figures(figures: Any) -> List[Tuple[str, str]]:
    shown = [(str(k).replace("_", " "), _cut(_figure_text(v))) for k, v in as_dict(figures).items()
             if v is not None and v != [] and v != ""]
    if len(shown) > MAX_FIGURES:
        shown = shown[:MAX_FIGURES - 1] + [("…", f"{len(shown) - MAX_FIGURES + 1} more in {schema.FINDINGS}")]
    return shown


def _text(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        return value[:MAX_TEXT_CHARS - 1] + "…"
    return value


def finding_rows(findings: List[dict], start: int, anchor_of) -> List[dict]:
    """The findings table's rows, numbered from `start`; `anchor_of(finding)` links each
    to its evidence (the host report's and the cluster report's own anchors)."""
    from collector.analyzers.findings import SEVERITIES

    rows = []
    for index, finding in enumerate(findings):
        evidence = as_dict(finding.get("evidence"))
        severity = finding.get("severity") if finding.get("severity") in SEVERITIES else "info"
        rows.append({"n": start + index, "id": str(finding.get("id") or "?"), "severity": severity,
                     "subject": _text(finding.get("subject")), "title": _text(finding.get("title")),
                     "hint": _text(finding.get("hint")),
                     "file": evidence.get("file"), "figures": _figures(evidence.get("figures")),
                     "anchor": anchor_of(finding)})
    return rows


def logs_named(data: Optional[dict]) -> Set[str]:
    """The logs the findings name (log.* subjects): their tails come first in the page."""
    return {str(f.get("subject")) for f in dicts(as_dict(data).get("findings"))
            if str(f.get("id") or "").startswith("log.")}


def findings_view(data: Optional[dict], anchors: Anchors) -> dict:
    from collector.analyzers.findings import count_by_severity, sort_findings

    if data is None:
        return {"available": False, "rows": [], "counts": {}, "analyzers": [], "total": 0}
    findings = sort_findings(dicts(data.get("findings")))
    rows = finding_rows(findings[:MAX_FINDINGS], 1, anchors.of)
    return {"available": True, "rows": rows, "counts": count_by_severity(findings), "total": len(findings),
            "analyzers": dicts(data.get("analyzers"))}
