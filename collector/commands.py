"""What the host commands do once collector.cli has parsed their options: run, print,
and the exit code.  Host layer only: a cluster archive is handed to the cluster package
by collector.cli, never from here."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import click

from collector import interrupt
from collector.console import (EXIT_INTERRUPTED, EXIT_OK, EXIT_OUTPUT, close_progress, error, print_collect_summary,
                               progress_printer, quiet_closed_stdout)


def seconds_since_start() -> float:
    """How long this process has run (start-up, the catalog's reading): the deadline's share
    already spent when the collection begins."""
    try:
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())
    except Exception:  # no /proc: the deadline starts with the collection
        return 0.0


def run_collect(request, quiet: bool, verbose: bool = False, for_support: bool = True, after=None) -> int:
    """`after(bundle path)`, if given, runs once the bundle is written and gives the exit code
    (collect --upload)."""
    from collector.heap import COLLECT_ARENAS, limit_arenas
    from collector.run import OutputError, collect

    limit_arenas(COLLECT_ARENAS)  # before the collectors' threads start
    progress = progress_printer(quiet, verbose, bar=True)
    try:
        try:
            result = collect(request, progress=progress)
        finally:  # the progress line is gone before anything else is printed
            close_progress(progress)
    except KeyboardInterrupt:  # a caller that installed no handler (collect() used as a library)
        click.echo("akdiag: interrupted: no bundle written", err=True)
        return EXIT_INTERRUPTED
    except BaseException as exc:  # a stop signal, or what it turned into (interrupt.stopped_by)
        status = interrupt.finish_if_stopped(exc, "no bundle written, nothing left behind")
        if status is not None:
            return status
        if not isinstance(exc, OutputError):
            raise
        error(f"no bundle written: {exc}")
        return getattr(exc, "exit_code", EXIT_OUTPUT)  # 2 for a --max-size the records do not fit
    try:
        print_collect_summary(result, quiet, for_support)
    except BrokenPipeError:  # `akdiag collect | head -1`: the bundle is written all the same
        quiet_closed_stdout()
    return EXIT_OK if after is None else after(result.path)


def run_check(checking, basedir, catalog_file, skip, with_logs, timeout, datastore_timeout, bundle_path):
    from collector.basedir import resolve_basedir
    from collector.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(Path(catalog_file) if catalog_file else None)
    except CatalogError as exc:
        return checking.unknown(f"catalog: {exc}")
    if bundle_path:
        return _check_bundle(checking, Path(bundle_path), catalog)
    path, source = resolve_basedir(basedir)
    return checking.check_host(path, source, catalog, skip=skip, with_logs=with_logs, timeout=timeout,
                               datastore_timeout=datastore_timeout)


def _check_bundle(checking, path: Path, catalog):
    from collector.bundle.reader import BundleError, open_bundle
    from collector.rerender import check_schema

    started = time.monotonic()
    try:
        with open_bundle(path) as reader:
            check_schema(reader.schema_version)
            return checking.check_reader(reader, catalog, started, source=str(path))
    except BundleError as exc:
        return checking.unknown(str(exc), started, source=str(path))


def check_text(checking, result, fmt: str) -> str:
    """`check`'s output: the text table fits the terminal (or $COLUMNS) with its severities
    coloured there; json and nagios lines are never cut nor coloured."""
    if fmt != "text":
        return checking.RENDERERS[fmt](result)
    from collector.console import colour_wanted, severity_style, table_width

    style = severity_style if colour_wanted() else None
    return checking.render_text(result, width=table_width(), style=style)


def diff_text(result, fmt: str, output_file: Optional[str]) -> str:
    """A diff (one host's or, rendered by itself, a cluster's) in the format asked for."""
    from collector.diff import render_html, render_text

    if fmt == "json":
        return json.dumps(result.as_dict(), indent=1, ensure_ascii=False, default=str) + "\n"
    if fmt == "html":
        return render_html(result)
    on_terminal = not output_file and sys.stdout.isatty()  # a file or a pipe keeps every line whole
    return render_text(result, width=shutil.get_terminal_size((100, 20)).columns if on_terminal else None)


def write_outside_bundle(path: Path, text: str) -> None:
    """A file the user asked for (a diff), written beside their bundles: made of the
    bundles' scrubbed files and akdiag's words, like `report`'s output."""
    from collector.bundle.writer import BundleWriteError, BundleWriter
    from collector.redact import Scrubber

    try:
        BundleWriter(path.parent, Scrubber(())).write_unscrubbed_bytes(path.name, text.encode("utf-8"), "diff")
    except BundleWriteError as exc:
        error(str(exc))
        sys.exit(EXIT_OUTPUT)
