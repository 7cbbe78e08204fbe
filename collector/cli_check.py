"""`akdiag check`: its options and help; the check runs in collector.check, its text in
collector.commands, the monitoring formats in collector.checkformats."""

from __future__ import annotations

import sys

import click

from collector.cli_help import SectionedCommand
from collector.cli_options import (DURATION, at_least, basedir_option, collector_names, datastore_timeout_option,
                                   list_collectors_option)
from collector.console import echo_out


class _MonitoringCommand(SectionedCommand):
    """A bad option is "could not check" (3) for a monitoring system, not CRITICAL (2)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            exc.exit_code = 3
            raise


@click.command(cls=_MonitoringCommand, sections={
    "What to check": ("basedir", "skip", "list_collectors", "with_logs", "catalog_file", "bundle_path"),
    "Output": ("fmt", "output_file"),
    "Time": ("timeout", "datastore_timeout"),
}, examples=(
    ("akdiag check", "A table of the findings and a verdict line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."),
    ("akdiag check --format nagios", "One status line with performance data, for NRPE, Icinga or Zabbix."),
    ("akdiag check --skip datastores --timeout 10s", "Quicker: no datastore checks, a 10 s deadline."),
    ("akdiag check --bundle BUNDLE.7z", "The verdict of today's analyzers on an existing bundle."),
))
@basedir_option
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="YAML file merged over the built-in catalog (processes, thresholds).")
@click.option("--format", "fmt", default="text", show_default=True,
              type=click.Choice(["text", "json", "nagios", "prometheus", "zabbix-discovery", "zabbix-values"]))
@click.option("-o", "--output", "output_file", type=click.Path(dir_okay=False),
              help="Write to this file atomically (mode 0644), e.g. for node_exporter's textfile collector.")
@click.option("--skip", multiple=True, callback=collector_names(quick_only=True), metavar="COLLECTOR",
              help="Leave a collector out, e.g. --skip datastores (repeatable).")
@list_collectors_option(quick_only=True)
@click.option("--logs", "with_logs", is_flag=True, help="Also read the log tails (slower).")
@click.option("--timeout", type=DURATION, callback=at_least(2), default="30s", show_default=True,
              help="Deadline of the whole check (30, 30s, 1m).")
@datastore_timeout_option("1s")
@click.option("--bundle", "bundle_path", type=click.Path(exists=True),
              help="Judge an existing bundle (folder or unencrypted archive) instead of this host.")
def check(basedir, catalog_file, fmt, output_file, skip, with_logs, timeout, datastore_timeout, bundle_path):
    """Check this host quickly and exit as monitoring expects.

    \b
    Runs the quick collectors (no log tails unless --logs, no archive) and the
    analyzers, prints the findings, and exits:
      0  OK        nothing above info
      1  WARNING   a warning, nothing critical
      2  CRITICAL  a critical finding
      3  UNKNOWN   could not check (no BASEDIR, no process data, bad option or catalog)
      128+N        stopped by signal N (143 SIGTERM from a monitoring timeout)
    --format nagios prints one status line with performance data (processes_down=...);
    prometheus, zabbix-discovery and zabbix-values feed those systems (README: Monitoring).
    """
    from collector import check as checking
    from collector import interrupt
    from collector.commands import check_text, run_check

    try:
        result = run_check(checking, basedir, catalog_file, skip, with_logs, timeout, datastore_timeout,
                           bundle_path)
    except BaseException as exc:  # a stop signal, or what it turned into (interrupt.stopped_by)
        status = interrupt.finish_if_stopped(exc, "no verdict")
        if status is not None:
            sys.exit(status)
        if not isinstance(exc, Exception):
            raise
        # a monitoring system needs a status line, not a traceback
        result = checking.unknown(f"internal error: {type(exc).__name__}: {exc}")
    if output_file:  # plain text, never coloured nor cut to a terminal's width
        from collector.checkformats import emit

        sys.exit(checking.EXIT_UNKNOWN if emit(checking.RENDERERS[fmt](result), output_file) else result.code)
    echo_out(check_text(checking, result, fmt))
    sys.exit(result.code)
