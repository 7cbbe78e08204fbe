"""`akdiag watch`: its options, their checks (bad input ends with 2 before the first
sample) and how it ends.  The loop itself is collector.watch's.

It runs until stopped.  Exit codes: 128+N when stopped by signal N (143 for systemd's
SIGTERM: the README's unit lists it in SuccessExitStatus), 2 bad input (a bad --on, the
output folder inside BASEDIR), 3 the output folder cannot be made."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from collector import interrupt
from collector.cli_help import SectionedCommand
from collector.cli_options import (DURATION, SIZE, at_least, basedir_option, collector_names, command_line,
                                   datastore_timeout_option, load_catalog_or_exit)
from collector.console import usage_error

# collector.watch (the check, the run) is imported where the command runs: `akdiag --help` stays quick

WATCH_SECTIONS = {
    "What to watch": ("basedir", "catalog_file", "interval", "skip", "datastore_timeout"),
    "Triggers": ("on",),
    "Bundles": ("output_dir", "fmt", "cooldown", "keep", "max_disk", "min_free", "timeout"),
    "History": ("history_keep", "history_size"),
}
WATCH_EXAMPLES = (
    ("akdiag watch -o /var/lib/akdiag/bundles", "Sample every 30 s; a bundle when a new critical finding appears."),
    ("akdiag watch -o /var/tmp/w --on 'process.down,queue:oxy_triggers>10000 for 10m'",
     "A bundle when a process goes down or the queue stays over 10000 messages for 10 minutes."),
    ("akdiag watch -o /var/tmp/w --on 'memory:api>2G for 5m' --cooldown 1h --keep 3",
     "api's memory over 2 GiB for 5 minutes; at most one bundle an hour, three kept."),
)


def _triggers(_ctx, _param, values):
    from collector.watch.triggers import BadTrigger, parse_triggers

    try:
        return parse_triggers(values)
    except BadTrigger as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("watch", cls=SectionedCommand, sections=WATCH_SECTIONS, examples=WATCH_EXAMPLES)
@basedir_option
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="YAML file merged over the built-in catalog (processes, thresholds).")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for the bundles (created, mode 0700; never inside BASEDIR).")
@click.option("--interval", type=DURATION, callback=at_least(1), default="30s", show_default=True,
              help="Time between two samples (30s, 1m).")
@click.option("--on", "on", multiple=True, callback=_triggers, metavar="TRIGGER[,TRIGGER]",
              help="What takes a bundle, first match naming it: 'critical' (a new critical finding; the "
                   "default), a finding id (process.down), 'queue:NAME>COUNT [for DURATION]', "
                   "'memory:PROCESS>SIZE [for DURATION]' (repeatable).")
@click.option("--cooldown", type=DURATION, callback=at_least(0), default="15m", show_default=True,
              help="At most one bundle per this time.")
@click.option("--keep", type=click.IntRange(min=1), default=10, show_default=True,
              help="Bundles kept in the output folder (the oldest of watch's own removed first).")
@click.option("--max-disk", type=SIZE, default="2G", show_default=True,
              help="Size at most of watch's bundles in the output folder together.")
@click.option("--min-free", type=SIZE, default="512M", show_default=True,
              help="Free space the output folder's disk must have (and twice the largest bundle kept) "
                   "for a bundle to be taken.")
@click.option("--format", "fmt", type=click.Choice(["7z", "tar.gz"]), default="7z", show_default=True)
@click.option("--timeout", type=DURATION, callback=at_least(5), default="5m", show_default=True,
              help="Deadline of each full bundle.")
@click.option("--history-keep", type=DURATION, callback=at_least(60), default="24h", show_default=True,
              help="How far back the history ring in akdiag's state folder reaches.")
@click.option("--history-size", type=SIZE, default="24M", show_default=True,
              help="Size at most of the history ring on disk.")
@click.option("--skip", multiple=True, callback=collector_names(quick_only=True), metavar="COLLECTOR",
              help="Leave a collector out of the samples, e.g. --skip datastores (repeatable).")
@datastore_timeout_option("1s")
def watch_command(basedir, catalog_file, output_dir, interval, on, cooldown, keep, max_disk, min_free, fmt,
                  timeout, history_keep, history_size, skip, datastore_timeout):
    """Watch this host: a light sample every --interval kept in a bounded history, and a
    full bundle into --output when a trigger fires.  Runs until stopped (SIGTERM, Ctrl-C).

    \b
    One line per event on stderr: start, triggers, bundles written or refused, errors.
    Exit codes:
      128+N  stopped by signal N (143 SIGTERM, 130 Ctrl-C); nothing left behind
      2      bad option (a bad --on, the output folder inside BASEDIR)
      3      the output folder cannot be created
    """
    from collector.basedir import resolve_basedir
    from collector.watch import Watch, WatchRefused, WatchSettings, prepare

    catalog = load_catalog_or_exit(catalog_file)
    path, source = resolve_basedir(basedir)
    settings = WatchSettings(basedir=path, basedir_source=source, catalog=catalog, output_dir=Path(output_dir),
                             triggers=on, interval=interval, cooldown=cooldown, keep=keep, max_disk=max_disk,
                             min_free=min_free, history_keep=history_keep, history_size=history_size, fmt=fmt,
                             bundle_timeout=timeout, datastore_timeout=datastore_timeout, skip=skip,
                             command_line=command_line())
    try:
        prepare(settings)
    except WatchRefused as exc:
        if exc.exit_code == 2:
            usage_error(str(exc))
        click.echo(f"akdiag: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    watch = Watch(settings)
    try:
        watch.run()
    except BaseException as exc:  # a stop signal, or what it turned into (interrupt.stopped_by)
        status = interrupt.finish_if_stopped(
            exc, f"watch stopped after {watch.samples} sample(s) and {watch.bundles} bundle(s); nothing left behind")
        if status is None:
            raise
        # click's Exit, not SystemExit: the group's handler must not report the stop a second time
        click.get_current_context().exit(status)
