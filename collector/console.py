"""What the commands print and how they end, shared by the host commands (collector.cli)
and the cluster command (collector.cluster.command): exit codes, error lines, sizes, the
progress printer and the summaries printed after a run.  Stop signals are handled in
collector.interrupt."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3
# 4 is the single file's own (collector.zipapp_main): it cannot run on this interpreter.
EXIT_HOSTS_MISSING = 5  # cluster: the bundle was written, but not every host could be collected
EXIT_UPLOAD_FAILED = 6  # the bundle was written (its path printed) but could not be sent
EXIT_INTERRUPTED = 130


def error(message: str) -> None:
    click.echo(f"akdiag: error: {message}", err=True)


def usage_error(message: str) -> NoReturn:
    error(message)
    sys.exit(EXIT_USAGE)


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024.0
    return f"{size} B"


def progress_printer(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    return lambda message: click.echo(f"akdiag: {message}", err=True)


def print_collect_summary(result, quiet: bool) -> None:
    """What `collect` prints once a bundle is written."""
    from collector.bundle.handoff import handoff_lines

    if quiet:
        click.echo(str(result.path.resolve()))
        return
    failed = [o for o in result.outcomes if o.status in ("failed", "timeout")]
    partial = [o for o in result.outcomes if o.status == "partial"]
    click.echo(f"Bundle:    {result.path.resolve()}")
    click.echo(f"Size:      {human_size(result.size)}")
    for line in handoff_lines(result):  # --split volumes, the .sha256 file, what --max-size trimmed
        click.echo(line)
    if result.mapping_path:
        click.echo(f"Mapping:   {result.mapping_path} (keep it: it is not in the bundle, do not send it)")
    click.echo(f"Duration:  {result.duration:.1f} s")
    if getattr(result, "cut", None):
        click.echo(f"Cut short: {result.cut} (what was collected is in the bundle; "
                   "`akdiag report` on it completes the summary)")
    click.echo(processes_line(result.processes_down, getattr(result, "findings", None) or []))
    if failed:
        click.echo("Collectors failed: " + "; ".join(f"{o.name} ({o.status}: {o.error})" for o in failed))
    if partial:
        click.echo("Collectors with gaps: " + ", ".join(o.name for o in partial)
                   + " (see manifest.json in the bundle)")
    print_top_findings(getattr(result, "findings", None) or [])
    click.echo("Send this file to Altcraft support.")


def processes_line(down, findings) -> str:
    """"none down" only when the process data says so; otherwise why it could not."""
    from collector.analyzers.evidence import NOT_CHECKED_PROCESSES, not_checked_reason

    not_checked = [f for f in findings if f.get("id") == NOT_CHECKED_PROCESSES]
    if down is None or not_checked:
        reason = not_checked_reason(not_checked[0]) if not_checked else None
        return f"Processes: could not check ({reason or 'no usable process data in the bundle'})"
    if down:
        return f"Processes down ({len(down)}): {', '.join(down)}"
    return "Processes down: none"


def print_top_findings(findings) -> None:
    from collector.check import counts_text, top_findings_lines

    if not findings:
        click.echo("Findings:  none")
        return
    click.echo(f"Findings:  {counts_text(findings)} (all in summary.html and findings.json)")
    for line in top_findings_lines(findings):
        click.echo(line)


def print_report(done) -> None:
    """What `report` prints once the summary and findings are written."""
    from collector.bundle import schema
    from collector.check import counts_text, top_findings_lines

    version = "unknown (no manifest)" if done.schema_version is None else done.schema_version
    click.echo(f"Bundle schema version {version} (this akdiag reads up to {schema.SCHEMA_VERSION})")
    click.echo(f"Summary:   {done.html_path.resolve()}")
    click.echo(f"Findings:  {done.findings_path.resolve()}")
    if getattr(done, "timeline_path", None) is not None:
        click.echo(f"Timeline:  {done.timeline_path.resolve()}")
    findings = done.analysis.findings
    click.echo(f"Verdict:   {counts_text(findings)}")
    for line in top_findings_lines(findings):
        click.echo(line)


def report_exit_code(findings) -> int:
    """As `check`: no usable process (or port) data is unknown (3), not a clean bill."""
    from collector.analyzers.evidence import NOT_CHECKED_PORTS, NOT_CHECKED_PROCESSES, not_checked_reason
    from collector.check import EXIT_UNKNOWN

    unchecked = [f for f in findings if f.get("id") in (NOT_CHECKED_PROCESSES, NOT_CHECKED_PORTS)]
    for finding in unchecked:
        click.echo(f"Could not check: {finding.get('subject')} ({not_checked_reason(finding)})")
    return EXIT_UNKNOWN if unchecked else EXIT_OK


def open_in_browser(path: Path) -> None:
    import webbrowser

    if not webbrowser.open(path.resolve().as_uri()):
        click.echo(f"akdiag: no web browser found; open {path.resolve()} yourself", err=True)
