"""The ticket summary's plain text (collector/report/ticket.py), on the page rendered from
a written bundle: host, versions, time, case id, the bundle's file name, the verdict and
the worst findings with their severity; escaped on the page, plain in its text."""

from __future__ import annotations

import html as htmllib
import re

from collector import report
from collector.bundle.reader import BundleReader
from collector.bundle.writer import BundleWriter
from collector.redact import Scrubber
from collector.report.ticket import TICKET_FINDINGS, bundle_file_name, ticket_text

MANIFEST = {"schema_version": 1, "tool": {"name": "akdiag", "version": "9.8.7"}, "hostname": "mail-01",
            "label": "night", "started_at": "2026-11-30T21:04:05Z", "finished_at": "2026-11-30T21:05:00Z",
            "options": {"format": "7z"}, "collectors": [], "files": []}


def _finding(n: int, severity: str, subject: str = "api") -> dict:
    return {"id": f"process.check{n}", "severity": severity, "subject": subject,
            "title": f"problem {n} <b>of</b> {subject}", "evidence": {"file": "processes.json"}}


def _page(tmp_path, manifest: dict, findings) -> str:
    writer = BundleWriter(tmp_path, Scrubber())
    writer.write_json("manifest.json", manifest, "test")
    if findings is not None:
        writer.write_json("findings.json", {"findings": findings, "analyzers": []}, "test")
    writer.close()
    return report.render_bundle(BundleReader(tmp_path))


def _ticket(page: str) -> str:
    return htmllib.unescape(re.search(r'<pre id="ticket-text"[^>]*>(.*?)</pre>', page, re.S).group(1))


def test_ticket_names_the_bundle_and_the_worst_findings(tmp_path):
    findings = [_finding(n, "info") for n in range(3)] + [_finding(10, "warning")]
    findings += [_finding(20 + n, "critical", f"svc{n}") for n in range(TICKET_FINDINGS + 2)]
    page = _page(tmp_path, dict(MANIFEST, case_id="CASE-1234"), findings)
    ticket = _ticket(page)
    lines = ticket.splitlines()
    assert lines[0] == "akdiag bundle of mail-01 (label night)"
    assert "Case: CASE-1234" in lines
    assert "Collected: 2026-11-30 21:04:05 UTC by akdiag 9.8.7" in lines
    assert "Bundle: akdiag-mail-01-night-case-CASE-1234-20261130T210405Z.7z" in lines  # as --case-id names it
    assert any(line.startswith("Verdict: 7 critical, 1 warning, 3 info") for line in lines)
    worst = [line for line in lines if line.startswith("- ")]
    assert worst[0] == "- CRITICAL process.check20 [svc0]: problem 20 <b>of</b> svc0"  # plain text, not markup
    assert len(worst) == TICKET_FINDINGS + 1 and worst[-1].startswith("- … and 3 more")
    assert "problem 20 &lt;b&gt;of&lt;/b&gt; svc0" in page and "problem 20 <b>" not in page


def test_ticket_without_findings_case_or_format(tmp_path):
    manifest = {k: v for k, v in MANIFEST.items() if k not in ("options", "label")}
    ticket = _ticket(_page(tmp_path, manifest, None))
    assert "Case:" not in ticket
    assert "Bundle: akdiag-mail-01-20261130T210405Z" in ticket.splitlines()
    assert ticket.splitlines()[-1] == "Findings: none recorded in this bundle"


def test_ticket_lists_info_findings_when_nothing_is_worse():
    rows = [{"severity": "info", "id": "platform.restarted", "subject": None, "title": "restarted"}]
    text = ticket_text(MANIFEST, {"host": "h"}, {"text": "1 info: nothing needs action"},
                       {"available": True, "rows": rows})
    assert text.splitlines()[-1] == "- INFO platform.restarted: restarted"
    assert "Platform: Altcraft platform (version unknown)" in text


def test_bundle_file_name_needs_host_and_time():
    assert bundle_file_name({"hostname": "h"}) is None
    assert bundle_file_name({"started_at": "2026-11-30T21:04:05Z"}) is None
    assert bundle_file_name({"hostname": "a b/c", "started_at": "2026-11-30T21:04:05Z",
                             "options": {"format": "tar.gz"}}) == "akdiag-a-b-c-20261130T210405Z.tar.gz"


def test_bundle_file_name_of_a_manifest_with_wrong_types():
    manifest = {"hostname": "h", "started_at": "2026-11-30T21:04:05Z", "label": 7, "case_id": ["x"]}
    assert bundle_file_name(manifest) == "akdiag-h-20261130T210405Z"
