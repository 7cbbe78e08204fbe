"""The ticket block: a short plain-text summary of the bundle (host, versions, time,
case id, the bundle's file name, the verdict and the worst findings) for pasting into
the support ticket's text.  Plain text only: the page shows it in a <pre> and copies it
as it stands."""

from __future__ import annotations

from typing import List, Optional

from collector.bundle.handoff import case_bundle_name
from collector.plain import as_dict, one_line
from collector.report.format import human_time

TICKET_FINDINGS = 5
_LINE = 160  # one finding per line, however long its title or subject


def bundle_file_name(manifest: dict) -> Optional[str]:
    """The bundle's file name as akdiag wrote it (host, label, start time, format);
    None when the manifest does not tell.  A second run in the same second adds -2
    to the real file's name, which the manifest cannot know."""
    host, started = manifest.get("hostname"), manifest.get("started_at")
    if not isinstance(host, str) or not isinstance(started, str) or len(started) < 19:
        return None
    stamp = started[:19].replace("-", "").replace(":", "") + "Z"
    fmt = as_dict(manifest.get("options")).get("format")
    label, case_id = manifest.get("label"), manifest.get("case_id")
    name = case_bundle_name(host, label if isinstance(label, str) else "", stamp,
                            case_id if isinstance(case_id, str) else "")
    return name if fmt in (None, "dir") else f"{name}.{fmt}"


def _worst(rows: List[dict]) -> List[str]:
    urgent = [r for r in rows if r["severity"] != "info"] or rows
    lines = [one_line(f"- {r['severity'].upper()} {r['id']}"
                      + (f" [{r['subject']}]" if r.get("subject") else "") + f": {r.get('title') or ''}", _LINE)
             for r in urgent[:TICKET_FINDINGS]]
    if len(urgent) > TICKET_FINDINGS:
        lines.append(f"- … and {len(urgent) - TICKET_FINDINGS} more (see summary.html)")
    return lines


def ticket_text(manifest: dict, header: dict, verdict: dict, findings: dict) -> str:
    """The ticket summary, a few lines of plain text."""
    host = header.get("host") or "unknown host"
    lines = [f"akdiag bundle of {host}" + (f" (label {header['label']})" if header.get("label") else "")]
    case_id = manifest.get("case_id")
    if isinstance(case_id, (str, int)) and str(case_id).strip():
        lines.append(f"Case: {one_line(case_id, 80)}")
    lines.append(f"Platform: Altcraft platform {header.get('platform_version') or '(version unknown)'}")
    lines.append(f"Collected: {human_time(header.get('started_at'))} by {header.get('tool_name') or 'akdiag'} "
                 f"{header.get('tool_version') or '(version unknown)'}")
    name = bundle_file_name(manifest)
    if name:
        lines.append(f"Bundle: {name}")
    lines.append(f"Verdict: {one_line(verdict.get('text') or '', _LINE)}")
    if findings.get("available") and findings.get("rows"):
        lines.append("Worst findings:")
        lines.extend(_worst(findings["rows"]))
    elif not findings.get("available"):
        lines.append("Findings: none recorded in this bundle")
    return "\n".join(lines)
