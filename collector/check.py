"""`akdiag check`: the quick collectors into a temporary folder, the analyzers over it,
and a verdict with the monitoring convention's exit code (Nagios, Icinga, Zabbix):

    0 OK        nothing above info
    1 WARNING   a warning, nothing critical
    2 CRITICAL  a critical finding
    3 UNKNOWN   the check could not be made (no BASEDIR, no process data, a failed
                analyzer, a bad option or catalog), unless something critical was found

Also over an existing bundle (`--bundle`), with today's analyzers."""

from __future__ import annotations

import json
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from collector.analyzers import analyze, count_by_severity, worst_severity
from collector.analyzers.evidence import NOT_CHECKED_PORTS, makes_unknown, not_checked_reason, process_records
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.catalog import Catalog
from collector.checkformats import RENDERERS as MONITORING_RENDERERS, snapshot as monitoring_snapshot
from collector.plain import as_dict, dicts

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
STATUS = {EXIT_OK: "OK", EXIT_WARNING: "WARNING", EXIT_CRITICAL: "CRITICAL", EXIT_UNKNOWN: "UNKNOWN"}
# The analyzers do not use CPU %: the window is as short as leaves the monitoring formats' CPU %
# meaningful (5 clock ticks), and the collectors' work hides it (0.1 s sat on a quiet host's path).
CHECK_CPU_SAMPLE_SECONDS = 0.05
SEVERITY_WORDS = {"critical": "CRITICAL", "warning": "WARNING", "info": "info"}


@dataclass
class CheckResult:
    """The verdict of one check: its exit code, findings and why it could not check."""

    code: int
    findings: List[dict] = field(default_factory=list)
    reasons: List[str] = field(default_factory=list)  # why the check could not be made
    figures: Dict[str, int] = field(default_factory=dict)
    duration: float = 0.0
    host: str = ""
    source: str = "live"
    snapshot: dict = field(default_factory=dict)  # the bundle's figures for the monitoring formats
    analyzers: List[dict] = field(default_factory=list)  # each analyzer's run: name, status, duration

    @property
    def status(self) -> str:
        return STATUS[self.code]

    def as_dict(self) -> dict:
        return {"status": self.status, "exit_code": self.code, "host": self.host, "source": self.source,
                "duration": round(self.duration, 3), "counts": count_by_severity(self.findings),
                "reasons": self.reasons, "figures": self.figures, "findings": self.findings,
                "analyzers": self.analyzers}


def exit_code(findings: Sequence[dict], reasons: Sequence[str]) -> int:
    """Critical beats unknown (what was found stands); unknown beats warning.  What could
    not be checked (processes or ports `.not_checked`) is unknown, not something found."""
    worst = worst_severity([f for f in findings if not makes_unknown(f)])
    if worst == "critical":
        return EXIT_CRITICAL
    if reasons:
        return EXIT_UNKNOWN
    return EXIT_WARNING if worst == "warning" else EXIT_OK


def unknown(reason: str, started: Optional[float] = None, source: str = "live") -> CheckResult:
    duration = time.monotonic() - started if started is not None else 0.0
    return CheckResult(EXIT_UNKNOWN, reasons=[reason], duration=duration, host=socket.gethostname(), source=source)


def _reasons(reader: BundleReader, findings: List[dict]) -> List[str]:
    """What keeps the check from speaking for the platform."""
    reasons = []
    basedir = as_dict(as_dict(reader.json(schema.SYSTEM)).get("basedir"))
    if basedir.get("exists") is False:
        reasons.append(f"BASEDIR {basedir.get('path')} (from {basedir.get('source')}) is not a folder")
    usable, problem = process_records(reader)
    if problem:
        reasons.append(f"{'no process data' if not usable else 'not every process could be checked'} ({problem})")
    elif any(f.get("id") == NOT_CHECKED_PORTS for f in findings):
        reasons += [f"ports: {not_checked_reason(f)}" for f in findings if f.get("id") == NOT_CHECKED_PORTS]
    for finding in findings:
        if finding.get("id") == "analyzer.failed":
            reasons.append(str(finding.get("title")))
    return reasons


def figures(reader: BundleReader, findings: List[dict]) -> Dict[str, int]:
    """The performance data: counts a monitoring system can graph."""
    expected = dicts(as_dict(reader.json(schema.PROCESSES)).get("expected"))
    counts = count_by_severity(findings)
    ids = [f.get("id") for f in findings]
    return {
        "processes_running": sum(1 for p in expected if p.get("status") == "running"),
        "processes_down": sum(1 for p in expected if p.get("status") == "down"),
        "processes_expected": len(expected),
        "port_problems": sum(1 for i in ids if str(i).startswith("port.")),
        "pidfile_problems": sum(1 for i in ids if str(i).startswith("pidfile.")),
        "datastores_failing": sum(1 for f in findings if str(f.get("id")).startswith("datastore.")
                                  and f.get("severity") == "critical"),
        "critical": counts["critical"],
        "warning": counts["warning"],
        "info": counts["info"],
    }


def check_reader(reader: BundleReader, catalog: Catalog, started: float, source: str = "live") -> CheckResult:
    """The verdict on one bundle folder, with today's analyzers and the catalog's thresholds."""
    reader.keep_parsed_json()  # nothing below changes what it reads: each JSON member parsed once
    analysis = analyze(reader, catalog.thresholds)
    reasons = _reasons(reader, analysis.findings)
    manifest = as_dict(reader.manifest)
    return CheckResult(exit_code(analysis.findings, reasons), analysis.findings, reasons,
                       figures(reader, analysis.findings), time.monotonic() - started,
                       str(manifest.get("hostname") or socket.gethostname()), source,
                       snapshot=monitoring_snapshot(reader), analyzers=analysis.analyzers)


def quick_collectors(skip: Sequence[str] = (), with_logs: bool = False) -> tuple:
    from collector.collectors import registry

    return tuple(spec.name for spec in registry().values()
                 if (spec.quick or (with_logs and spec.name == "logs")) and spec.name not in skip)


def check_host(basedir: Path, basedir_source: str, catalog: Catalog, skip: Sequence[str] = (),
               with_logs: bool = False, timeout: float = 30.0, datastore_timeout: float = 3.0) -> CheckResult:
    """Run the quick collectors into a temporary folder (no archive, no summary page, no
    analysis of its own) and judge it: the analyzers run once, here."""
    from collector.context import CollectOptions
    from collector.run import CollectRequest, OutputError, collect

    started = time.monotonic()
    if not Path(basedir).is_dir():
        return unknown(f"BASEDIR {basedir} (from {basedir_source}) is not a folder", started)
    options = CollectOptions(only=quick_collectors(skip, with_logs), cpu_sample_seconds=CHECK_CPU_SAMPLE_SECONDS,
                             datastore_timeout=datastore_timeout, log_lines=1000, log_bytes=256 * 1024,
                             log_total_bytes=8 * 1024 * 1024)
    from collector import tempfiles

    with tempfile.TemporaryDirectory(prefix=tempfiles.prefix("check")) as folder:
        request = CollectRequest(basedir=Path(basedir), basedir_source=basedir_source, catalog=catalog,
                                 output_dir=Path(folder), label="check", fmt="dir", timeout=timeout,
                                 options=options, command_line="akdiag check", judged=False)
        try:
            result = collect(request)
        except OutputError as exc:
            return unknown(f"cannot make the check's temporary bundle: {exc}", started)
        return check_reader(BundleReader(result.path), catalog, started)


# --------------------------------------------------------------------------- output

def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def counts_text(findings: Sequence[dict]) -> str:
    counts = count_by_severity(findings)
    return f"{counts['critical']} critical, {_plural(counts['warning'], 'warning')}, {counts['info']} info"


def top_findings_lines(findings: Sequence[dict], limit: int = 5) -> List[str]:
    """The most urgent findings, one line each (info ones only when nothing is worse)."""
    urgent = [f for f in findings if f.get("severity") in ("critical", "warning")]
    shown = (urgent or list(findings))[:limit]
    lines = [f"  {SEVERITY_WORDS.get(str(f.get('severity')), '?'):<8}  {f.get('title')}  [{f.get('id')}]"
             for f in shown]
    rest = len(urgent or findings) - len(shown)
    if rest > 0:
        lines.append(f"  ... and {rest} more")
    return lines


def render_text(result: CheckResult, width: Optional[int] = None, style=None) -> str:
    """The findings' table and the verdict line; with `width` the table keeps to it (cells
    wrapped at word boundaries), with `style(word)` the severities are styled."""
    from collector import texttable

    rows = [(SEVERITY_WORDS.get(str(f.get("severity")), "?"), str(f.get("id")), str(f.get("subject")),
             str(f.get("title"))) for f in result.findings]
    lines = []
    if rows:
        lines += texttable.render([("SEVERITY", "ID", "SUBJECT", "TITLE")] + rows, width, styles=(style,))
        lines.append("")
    words = [f"Could not check: {reason}" for reason in result.reasons]
    words.append(f"akdiag check: {result.status} (exit {result.code}) on {result.host}: "
                 f"{counts_text(result.findings)} in {result.duration:.1f} s")
    for text in words:
        lines += texttable.wrap_cell(text, width) if width else [text]
    return "\n".join(lines)


def render_json(result: CheckResult) -> str:
    return json.dumps(result.as_dict(), indent=1, ensure_ascii=False, default=str)


def _nagios_clean(text: str) -> str:
    """A status text safe in Nagios's line: no '|' (it starts the performance data)."""
    return " ".join(str(text).replace("|", "/").split())


def render_nagios(result: CheckResult) -> str:
    urgent = [f for f in result.findings if f.get("severity") in ("critical", "warning") and not makes_unknown(f)]
    if result.code == EXIT_UNKNOWN and not urgent:
        summary = "; ".join(result.reasons) or "could not check"
    elif urgent:
        titles = [str(f.get("title")) for f in urgent[:3]]
        more = f" (+{len(urgent) - 3} more)" if len(urgent) > 3 else ""
        summary = f"{counts_text(result.findings)}: " + "; ".join(titles) + more
    else:
        summary = f"{result.figures.get('processes_running', 0)} processes running, no problem found"
    perf = dict(result.figures)
    expected = perf.pop("processes_expected", 0)
    data = [f"processes_down={perf.pop('processes_down', 0)};;;0;{expected}",
            f"processes_running={perf.pop('processes_running', 0)};;;0;{expected}"]
    data += [f"{name}={value};;;0;" for name, value in perf.items()]
    data.append(f"time={result.duration:.2f}s;;;0;")
    return f"AKDIAG {result.status} - {_nagios_clean(summary)} | {' '.join(data)}"


RENDERERS = {"text": render_text, "json": render_json, "nagios": render_nagios, **MONITORING_RENDERERS}
