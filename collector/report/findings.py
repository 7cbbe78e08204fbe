"""The findings section: the analyzers' findings, worst first, each linked to the part
of the page that holds its evidence.  The cluster report shows its findings with the
same rows (`finding_rows`), linked to its own anchors."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from collector.plain import as_dict, dicts

MAX_FINDINGS = 2000
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


def _figures(figures: Any) -> List[Tuple[str, str]]:
    return [(str(k).replace("_", " "), _figure_text(v)) for k, v in as_dict(figures).items()
            if v is not None and v != [] and v != ""]


def finding_rows(findings: List[dict], start: int, anchor_of) -> List[dict]:
    """The findings table's rows, numbered from `start`; `anchor_of(finding)` links each
    to its evidence (the host report's and the cluster report's own anchors)."""
    from collector.analyzers.findings import SEVERITIES

    rows = []
    for index, finding in enumerate(findings):
        evidence = as_dict(finding.get("evidence"))
        severity = finding.get("severity") if finding.get("severity") in SEVERITIES else "info"
        rows.append({"n": start + index, "id": str(finding.get("id") or "?"), "severity": severity,
                     "subject": finding.get("subject"), "title": finding.get("title"), "hint": finding.get("hint"),
                     "file": evidence.get("file"), "figures": _figures(evidence.get("figures")),
                     "anchor": anchor_of(finding)})
    return rows


def findings_view(data: Optional[dict], anchors: Anchors) -> dict:
    from collector.analyzers.findings import count_by_severity, sort_findings

    if data is None:
        return {"available": False, "rows": [], "counts": {}, "analyzers": [], "total": 0}
    findings = sort_findings(dicts(data.get("findings")))
    rows = finding_rows(findings[:MAX_FINDINGS], 1, anchors.of)
    return {"available": True, "rows": rows, "counts": count_by_severity(findings), "total": len(findings),
            "analyzers": dicts(data.get("analyzers"))}
