"""akdiag's command line: click commands only; the work is done elsewhere."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import click

from collector import __version__
from collector.bundle.archive import FORMATS
from collector.catalog import CatalogError, load_catalog
from collector.context import CollectOptions

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3
EXIT_INTERRUPTED = 130


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that the run cleans up after itself."""


def _on_sigterm(_signum, _frame):
    raise _Terminated()


def _human_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024.0
    return f"{size} B"


def _progress_printer(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    return lambda message: click.echo(f"akdiag: {message}", err=True)


def _load_catalog_or_exit(path: Optional[str]):
    try:
        return load_catalog(Path(path) if path else None)
    except CatalogError as exc:
        click.echo(f"akdiag: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _print_summary(result, quiet: bool) -> None:
    if quiet:
        click.echo(str(result.path.resolve()))
        return
    failed = [o for o in result.outcomes if o.status in ("failed", "timeout")]
    partial = [o for o in result.outcomes if o.status == "partial"]
    click.echo(f"Bundle:    {result.path.resolve()}")
    click.echo(f"Size:      {_human_size(result.size)}")
    click.echo(f"Duration:  {result.duration:.1f} s")
    if result.processes_down:
        click.echo(f"Processes down ({len(result.processes_down)}): {', '.join(result.processes_down)}")
    else:
        click.echo("Processes down: none")
    if failed:
        click.echo("Collectors failed: " + "; ".join(f"{o.name} ({o.status}: {o.error})" for o in failed))
    if partial:
        click.echo("Collectors with gaps: " + ", ".join(o.name for o in partial)
                   + " (see manifest.json in the bundle)")
    click.echo("Send this file to Altcraft support.")


def run_collect(request, quiet: bool) -> int:
    from collector.run import OutputError, collect

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = collect(request, progress=_progress_printer(quiet))
    except OutputError as exc:
        click.echo(f"akdiag: error: no bundle written: {exc}", err=True)
        return EXIT_OUTPUT
    except (KeyboardInterrupt, _Terminated):
        click.echo("akdiag: interrupted: no bundle written", err=True)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_summary(result, quiet)
    return EXIT_OK


def _options(log_lines: int, log_bytes: int, log_total_bytes: int, datastore_timeout: float) -> CollectOptions:
    return CollectOptions(log_lines=log_lines, log_bytes=log_bytes, log_total_bytes=log_total_bytes,
                          datastore_timeout=datastore_timeout)


def _command_line() -> str:
    return shlex.join(["akdiag"] + sys.argv[1:]) if hasattr(shlex, "join") else " ".join(sys.argv)


_positive = click.IntRange(min=1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="akdiag")
def main() -> None:
    """Collect a diagnostics bundle from an Altcraft platform host for Altcraft support.

    \b
    Exit codes of `collect` and `demo`:
      0  a bundle was written (even if some collectors failed: see its manifest)
      1  internal error (a bug in akdiag: please report it)
      2  bad option or catalog file
      3  no bundle could be written (output folder missing, not writable, disk full)
      130 interrupted (Ctrl-C or SIGTERM): no bundle written, nothing left behind
    """


@main.command()
@click.option("--basedir", type=click.Path(file_okay=False), help="Platform folder [default: $AKDIAG_BASEDIR, "
              "else the folder of a running AK: process, else /opt/akd].")
@click.option("--output", "output_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to write the bundle into.")
@click.option("--label", default="", help="A word to put in the bundle's name, e.g. pre-upgrade.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="7z", show_default=True)
@click.option("--log-lines", type=_positive, default=5000, show_default=True, help="Lines of each log's tail.")
@click.option("--log-bytes", type=_positive, default=2 * 1024 * 1024, show_default=True,
              help="Bytes at most of each log's tail.")
@click.option("--log-total-bytes", type=_positive, default=100 * 1024 * 1024, show_default=True,
              help="Bytes at most of all log tails together (newest logs first).")
@click.option("--timeout", type=click.FloatRange(min=5), default=300, show_default=True,
              help="Deadline of the whole run, in seconds.")
@click.option("--datastore-timeout", type=click.FloatRange(min=0.1), default=3.0, show_default=True,
              help="Seconds each datastore check may take.")
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="YAML file merged over the built-in platform catalog.")
@click.option("--quiet", is_flag=True, help="No progress; print only the bundle's path.")
def collect(basedir, output_dir, label, fmt, log_lines, log_bytes, log_total_bytes, timeout, datastore_timeout,
            catalog_file, quiet):
    """Collect a diagnostics bundle from this host."""
    from collector.basedir import resolve_basedir
    from collector.run import CollectRequest

    catalog = _load_catalog_or_exit(catalog_file)
    path, source = resolve_basedir(basedir)
    request = CollectRequest(basedir=path, basedir_source=source, catalog=catalog, output_dir=Path(output_dir),
                             label=label, fmt=fmt, timeout=timeout,
                             options=_options(log_lines, log_bytes, log_total_bytes, datastore_timeout),
                             command_line=_command_line())
    sys.exit(run_collect(request, quiet))


@main.command()
@click.option("--output", "output_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to write the demo bundle into.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="7z", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress; print only the bundle's path.")
def demo(output_dir, fmt, quiet):
    """Start a simulated Altcraft host, collect a bundle from it, stop it.

    The simulated host runs real processes titled AK:<name> on their catalog ports
    (moved where a port is taken), with two faults: proctrigger is down with a stale
    PID file, and trkread's port is held by a foreign program.
    """
    from collector.run import CollectRequest
    from collector.simulate import SimulatedHost

    with tempfile.TemporaryDirectory(prefix="akdiag-demo-") as root:
        with SimulatedHost(Path(root)) as host:
            if not quiet:
                click.echo(f"Simulated Altcraft host in {host.basedir}", err=True)
            host.build().start().break_like_production()
            catalog = _load_catalog_or_exit(str(host.catalog_file))
            request = CollectRequest(basedir=host.basedir, basedir_source="demo", catalog=catalog,
                                     output_dir=Path(output_dir), label="demo", fmt=fmt, timeout=120,
                                     command_line=_command_line())
            code = run_collect(request, quiet)
    if not quiet and code == EXIT_OK:
        click.echo("Open summary.html inside the bundle first (7z x <bundle>).")
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
