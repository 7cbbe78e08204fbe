"""What the commands print and how they end, shared by the host commands (collector.cli)
and the cluster command (collector.cluster.command): exit codes, error lines, sizes, the
progress printer and the summaries printed after a run.  Stop signals are handled in
collector.interrupt."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import NoReturn, Optional

import click

from collector.console_pipe import echo_out, quiet_closed_stdout  # noqa: F401 (public)
from collector.units import format_size as human_size  # noqa: F401 (public: the cluster command's)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3
# 4 is the single file's own (collector.zipapp_main): it cannot run on this interpreter.
EXIT_HOSTS_MISSING = 5  # cluster: the bundle was written, but not every host could be collected
EXIT_UPLOAD_FAILED = 6  # the bundle was written (its path printed) but could not be sent
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, as a program the closed pipe had stopped

# a finding's severity word on a terminal; NO_COLOR (https://no-color.org) turns it off
SEVERITY_STYLES = {"CRITICAL": {"fg": "red", "bold": True}, "WARNING": {"fg": "yellow", "bold": True},
                   "UNKNOWN": {"fg": "magenta", "bold": True}, "OK": {"fg": "green"}}
_LEADING_SEVERITY = re.compile(r"^(\s*)(CRITICAL|WARNING)\b")


def error(message: str) -> None:
    click.echo(f"akdiag: error: {message}", err=True)


def usage_error(message: str) -> NoReturn:
    error(message)
    sys.exit(EXIT_USAGE)


def progress_printer(quiet: bool, verbose: bool = False, bar: bool = False):
    """Where a run's progress goes: nothing with --quiet, or off a terminal unless --verbose;
    with `bar` a self-rewriting line on a terminal (see collector.console_progress), else
    each message on a line.  Close what it returns (`close_progress`) when the run ends."""
    if quiet or not (verbose or sys.stderr.isatty()):
        return None
    from collector.console_progress import ProgressLine

    return ProgressLine(sys.stderr, bar=bar and sys.stderr.isatty(), verbose=verbose)


def close_progress(progress) -> None:
    if progress is not None:
        progress.close()


def colour_wanted(stream=None) -> bool:
    """Colours only on a terminal, and never with NO_COLOR set (to anything but "") or TERM=dumb."""
    stream = stream or sys.stdout
    try:
        on_terminal = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return on_terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def severity_style(word: str, text: Optional[str] = None) -> str:
    """`text` (default: the word) styled for the severity `word` (CRITICAL red, WARNING yellow)."""
    style = SEVERITY_STYLES.get(word.strip())
    text = word if text is None else text
    return click.style(text, **style) if style else text


def coloured_finding_line(line: str) -> str:
    """A top-findings line ("  CRITICAL  title [id]") with its severity word coloured."""
    return _LEADING_SEVERITY.sub(lambda m: m.group(1) + severity_style(m.group(2)), line)


def echo_finding_lines(lines) -> None:
    colour = colour_wanted()
    for line in lines:
        click.echo(coloured_finding_line(line) if colour else line)


def table_width() -> Optional[int]:
    """The width a table must keep to: $COLUMNS when set, else the terminal's; None (lines
    kept whole, for grep and for monitoring) when stdout is a pipe or a file."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if sys.stdout.isatty():
            return os.get_terminal_size(sys.stdout.fileno()).columns or None
    except (OSError, ValueError):
        pass
    return None


def print_collect_summary(result, quiet: bool, for_support: bool = True) -> None:
    """What `collect` prints once a bundle is written (`demo`'s is not for support)."""
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
    if for_support:
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
    echo_finding_lines(top_findings_lines(findings))


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
    echo_finding_lines(top_findings_lines(findings))


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
