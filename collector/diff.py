"""`akdiag diff OLD NEW`: what changed between two bundles of one host (before and after
an upgrade).  Reads only the two bundles; reports, by section, only what changed.

The JSON form (schema documented in the README):
{"diff_schema": 1, "old": {bundle facts}, "new": {...}, "regression": bool,
 "sections": {"platform"|"processes"|"pidfiles"|"ports"|"config"|"datastores"|"host"|
              "findings"|"logs": [change, ...]},
 "findings": {"new": [...], "resolved": [...], "unchanged": n},
 "not_compared": [reason, ...]}
change: {"subject", "field", "change": added|removed|changed|rose|fell, "old", "new",
         "delta" (numbers), "regression": bool, "text": one line for a person}

The parts live in collector/hostdiff/ (model, pseudonyms, sources, one module per section);
this module puts them together and renders the result.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.hostdiff.config import compare_config
from collector.hostdiff.datastores import compare_datastores
from collector.hostdiff.findings import URGENT, compare_findings, compare_findings_section
from collector.hostdiff.model import (DIFF_SCHEMA, DISK_NOISE_POINTS, MEMORY_NOISE_POINTS, SECRET_CHANGED, SECTIONS,
                                      SIZE_NOISE_FRACTION, Change, Diff, DifferentHostsError, bundle_facts)
from collector.hostdiff.ports import compare_ports
from collector.hostdiff.pseudonyms import PSEUDONYM, is_pseudonym
from collector.hostdiff.sections import (compare_host, compare_logs, compare_pidfiles, compare_platform,
                                         compare_processes)
from collector.hostdiff.sources import SECTION_SOURCES, SOURCE_COLLECTORS, source_problems

__all__ = ["DIFF_SCHEMA", "DISK_NOISE_POINTS", "MEMORY_NOISE_POINTS", "PSEUDONYM", "SECRET_CHANGED", "SECTIONS",
           "SECTION_SOURCES", "SIZE_NOISE_FRACTION", "SOURCE_COLLECTORS", "URGENT", "Change", "Diff",
           "DifferentHostsError", "compare_findings", "diff_bundles", "is_pseudonym", "render_html", "render_text"]


# -- the whole diff --------------------------------------------------------------------

def _comparable(old: BundleReader, new: BundleReader, allow_different_hosts: bool, not_compared: List[str]) -> None:
    _same_host(old.manifest.get("hostname"), new.manifest.get("hostname"), allow_different_hosts, not_compared)
    version_a, version_b = old.schema_version, new.schema_version
    if version_a != version_b:
        not_compared.append(f"schema versions differ ({version_a} and {version_b}): only the fields both "
                            "have are compared")


def _same_host(host_a: Any, host_b: Any, allow_different_hosts: bool, not_compared: List[str]) -> None:
    """Refuses two hosts' bundles unless allowed; a pseudonymized host name (per-bundle key)
    cannot tell, so it is noted instead."""
    if host_a == host_b:
        return
    if is_pseudonym(host_a) or is_pseudonym(host_b):
        not_compared.append(f"the host names are pseudonymized ({host_a} and {host_b}): akdiag cannot tell "
                            "whether both bundles come from one host")
    elif not allow_different_hosts:
        raise DifferentHostsError(
            f"the bundles come from different hosts ({host_a} and {host_b}); "
            "compare them anyway with --allow-different-hosts")


def diff_bundles(old: BundleReader, new: BundleReader, allow_different_hosts: bool = False) -> Diff:
    result = Diff(old=bundle_facts(old), new=bundle_facts(new))
    _comparable(old, new, allow_different_hosts, result.not_compared)
    sections: List[Callable[[], List[Change]]] = [
        lambda: compare_platform(old, new, result.not_compared),
        lambda: compare_processes(old, new),
        lambda: compare_pidfiles(old, new),
        lambda: compare_ports(old, new, result.not_compared),
        lambda: compare_config(old, new, result.not_compared),
        lambda: compare_datastores(old, new, result.not_compared),
        lambda: compare_host(old, new),
        lambda: compare_findings_section(old, new, result),
        lambda: compare_logs(old, new),
    ]
    for name, section in zip(SECTIONS, sections):
        problems = source_problems(old, new, SECTION_SOURCES.get(name, ()))
        if problems:  # an empty side would read as "everything is gone"
            result.not_compared += [f"{name}: not compared: {problem}" for problem in problems]
            continue
        try:
            result.changes += section()
        except Exception as exc:  # one section that cannot be compared does not stop the rest
            result.not_compared.append(f"{name}: could not be compared ({type(exc).__name__}: {exc})")
    return result


# -- text ----------------------------------------------------------------------------------

_TITLES = {"platform": "Platform", "processes": "Processes", "pidfiles": "PID files", "ports": "Listening ports",
           "config": "Configuration", "datastores": "Datastores", "host": "Host resources",
           "findings": "Findings", "logs": "Logs"}


CUT_MARK = "\u2026"


def _fit(line: str, width: Optional[int]) -> str:
    """The line, cut to `width` columns with a mark where it was cut; whole without a width."""
    if width is None or len(line) <= width:
        return line
    return line[:max(0, width - 1)] + CUT_MARK


def render_text(diff: Diff, width: Optional[int] = None) -> str:
    """The diff for a person.  `width`: a terminal's columns, to which longer lines are cut
    (ending in "…"); None (a file, a pipe, a ticket) keeps every line whole."""
    if getattr(diff, "is_cluster", False):
        return diff.render_text(width)
    old, new = diff.old, diff.new
    lines = [f"akdiag diff: {old.get('hostname')}",
             f"  old: {old.get('started_at')} {old.get('label') or ''}".rstrip(),
             f"  new: {new.get('started_at')} {new.get('label') or ''}".rstrip(),
             "Verdict: " + ("REGRESSION" if diff.regression else "no regression")
             + f" ({len(diff.changes)} changes, {len(diff.new_findings)} new findings, "
               f"{len(diff.resolved_findings)} resolved, {diff.unchanged_findings} unchanged)"]
    for name in SECTIONS:
        changes = diff.section(name)
        if not changes:
            continue
        lines.append("")
        lines.append(f"{_TITLES[name]} ({len(changes)})")
        for change in changes:
            mark = "!" if change.regression else "-"
            lines.append(_fit(f"  {mark} {change.text}", width))
    if diff.not_compared:
        lines.append("")
        lines.append("Not compared")
        lines.extend(_fit(f"  - {reason}", width) for reason in diff.not_compared)
    if not diff.changes:
        lines.append("")
        lines.append("Nothing changed.")
    return "\n".join(lines) + "\n"


def render_html(diff: Diff) -> str:
    if getattr(diff, "is_cluster", False):
        return diff.render_html()
    from collector.report import render_page

    return render_page("diff.html.j2", {"diff": diff.as_dict(), "titles": _TITLES})
