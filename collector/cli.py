"""akdiag's command line: click commands and their options only.  The options' values are
checked in collector.cli_options, the commands run in collector.commands (host) and
collector.cluster.command (cluster), and print through collector.console."""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

import click

from collector import __version__, interrupt
from collector.bundle.schema import FORMATS
from collector.cli_options import (checked_pii_kinds, collect_options, command_line, load_catalog_or_exit,
                                   pseudonym_key, valid_patterns)
from collector.commands import diff_text, run_check, run_collect, seconds_since_start, write_outside_bundle
from collector.console import (EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_OUTPUT,  # noqa: F401 (public)
                               EXIT_USAGE, error, open_in_browser, print_report, report_exit_code, usage_error)
from collector.handoff_cli import (case_id_option, checked_handoff, dry_run_option, max_size_option, pack_command,
                                   run_dry, split_option)
from collector.interrupt import Interrupted
from collector.password import asking_password, bundle_password, open_bundles


_positive = click.IntRange(min=1)
_basedir_option = click.option(
    # Neither existence, type nor readability is checked here: a BASEDIR that cannot be
    # read still gives a bundle that says what could not be read and why.
    "--basedir", type=click.Path(readable=False),
    help="Platform folder [default: $AKDIAG_BASEDIR, else the folder of a running AK: process, else /opt/akd].")


class _Akdiag(click.Group):
    """The command group; an exception no command expected is a bug: its traceback and a
    one-line message go to stderr and the exit code is 1, never a bare traceback."""

    def invoke(self, ctx: click.Context):
        from collector import bounded, tempfiles

        try:
            # What akdiag writes (bundles, decrypted files) is its owner's only; its clean-up,
            # too, runs with the stop signals handled.
            with bounded.private_umask(), interrupt.stop_on_signals():
                try:
                    tempfiles.sweep_temporary_folder()
                    return super().invoke(ctx)
                except Interrupted as exc:
                    ctx.exit(interrupt.finish(exc, "nothing left behind"))
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            click.echo(traceback.format_exc().rstrip(), err=True)
            click.echo(f"akdiag: internal error: {type(exc).__name__}: {exc} (a bug in akdiag: please report "
                       "it with the lines above)", err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=_Akdiag, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="akdiag")
def main() -> None:
    """Collect a diagnostics bundle from an Altcraft platform host for Altcraft support.

    \b
    Exit codes of `collect` and `demo`:
      0  a bundle was written (even if some collectors failed: see its manifest)
      1  internal error (a bug in akdiag: please report it)
      2  bad option or catalog file
      3  no bundle could be written (output folder missing, not writable, disk full)
      128+N stopped by signal N (130 Ctrl-C, 129 SIGHUP, 143 SIGTERM, 131 SIGQUIT): no bundle
          written, nothing left behind
    """


@main.command()
@_basedir_option
@click.option("--output", "output_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to write the bundle into.")
@click.option("--label", default="", help="A word to put in the bundle's name, e.g. pre-upgrade.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="7z", show_default=True)
@click.option("--log-lines", type=_positive, default=5000, show_default=True, help="Lines of each log's tail.")
@click.option("--log-bytes", type=_positive, default=2 * 1024 * 1024, show_default=True,
              help="Bytes at most of each log's tail.")
@click.option("--log-total-bytes", type=_positive, default=100 * 1024 * 1024, show_default=True,
              help="Bytes at most of all log tails together (newest logs first).")
@click.option("--since", metavar="TIME", help="Read each log back to this time instead of its tail: 2h, 90m, 3d, "
              "2026-11-30T14:00 or \"2026-11-30 14:00\" (this host's local time unless it ends in Z or +03:00); "
              "rotated and compressed logs too, within --log-total-bytes.")
@click.option("--timeout", type=click.FloatRange(min=5), default=300, show_default=True,
              help="Deadline of the whole run, in seconds.")
@click.option("--datastore-timeout", type=click.FloatRange(min=0.1), default=3.0, show_default=True,
              help="Each datastore check's budget in seconds, from its client library being loaded; "
                   "an answer after it is slow, none by twice it a timeout.")
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="YAML file merged over the built-in platform catalog.")
@click.option("--pseudonymize", "pseudonymize_more", default="", metavar="ips,hosts",
              help="Also replace IP addresses and/or host names by pseudonyms (e-mails and phones are by default).")
@click.option("--no-pseudonymize", is_flag=True,
              help="Keep subscribers' e-mails and phones as they are (secrets are always redacted).")
@click.option("--keep-mapping", is_flag=True,
              help="Write the pseudonym -> original table beside the bundle (never inside it), mode 0600.")
@click.option("--pseudonym-key", "pseudonym_key_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Key file that makes pseudonyms the same in every run (created, mode 0600, if missing; "
                   "never put in a bundle).")
@click.option("--redact-pattern", "redact_patterns", multiple=True, metavar="REGEX",
              help="Mask whatever this regular expression matches, in every file (repeatable).")
@click.option("--encrypt", is_flag=True, help="Encrypt the 7z archive (AES-256, file names hidden too).")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="File holding the archive password [else $AKDIAG_PASSWORD, else a prompt].")
@click.option("--quiet", is_flag=True, help="No progress; print only the bundle's path.")
@click.option("--hosts", "hosts_file", type=click.Path(dir_okay=False),
              help="Cluster: collect every host of this YAML file over SSH into one cluster archive.")
@click.option("--host", "host_options", multiple=True, metavar="USER@ADDRESS[:BASEDIR]",
              help="Cluster: a host to collect over SSH (repeatable; with or without --hosts).")
@click.option("--parallel", type=_positive, help="Cluster: hosts collected at once [default: up to 8].")
@click.option("--host-timeout", type=click.FloatRange(min=1), help="Cluster: each host's deadline in seconds "
              "(connect, copy, collect, fetch) [default: --timeout + 120].")
@click.option("--connect-timeout", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Cluster: seconds to wait for each host's SSH connection.")
@click.option("--ssh-config", type=click.Path(dir_okay=False), help="Cluster: ssh -F FILE [default: ~/.ssh/config].")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPTION",
              help="Cluster: an ssh -o option, e.g. --ssh-option Port=2222 (repeatable).")
@click.option("--akdiag-file", type=click.Path(dir_okay=False),
              help="Cluster: the single-file akdiag to copy to the hosts [default: an installed akdiag not older "
                   "than this one, else this akdiag's single file].")
@click.option("--keep-remote-copy", is_flag=True,
              help="Cluster: keep the single file and what it unpacks in each host's ~/.cache/akdiag for the next "
                   "run (default: remove everything akdiag put on the host).")
@case_id_option
@max_size_option
@split_option
@dry_run_option
def collect(basedir, output_dir, label, fmt, log_lines, log_bytes, log_total_bytes, since, timeout, datastore_timeout,
            catalog_file, pseudonymize_more, no_pseudonymize, keep_mapping, pseudonym_key_file, redact_patterns,
            encrypt, password_file, quiet, hosts_file, host_options, parallel, host_timeout, connect_timeout,
            ssh_config, ssh_options, akdiag_file, keep_remote_copy, case_id, max_size, split_size, dry_run):
    """Collect a diagnostics bundle from this host, or with --hosts/--host from every host of
    a cluster over SSH into one cluster archive."""
    from collector.basedir import resolve_basedir
    from collector.run import CollectRequest

    catalog = load_catalog_or_exit(catalog_file)
    options = collect_options(log_lines, log_bytes, log_total_bytes, datastore_timeout, since)
    patterns = valid_patterns(redact_patterns)
    pii_kinds = checked_pii_kinds(pseudonymize_more, no_pseudonymize)
    if encrypt and fmt != "7z":
        usage_error("--encrypt needs --format 7z")
    if not (hosts_file or host_options) and (parallel or host_timeout or ssh_config or ssh_options or akdiag_file
                                             or keep_remote_copy):
        usage_error("--parallel, --host-timeout, --ssh-config, --ssh-option, --akdiag-file and --keep-remote-copy "
                    "need --hosts or --host")
    handoff = checked_handoff(case_id, max_size, split_size, fmt, bool(hosts_file or host_options), dry_run)
    password = bundle_password(password_file, confirm=True) if encrypt and not dry_run else None
    if hosts_file or host_options:
        from collector.cluster.command import cluster_collect

        sys.exit(cluster_collect(
            hosts_file=hosts_file, host_options=host_options, parallel=parallel, host_timeout=host_timeout,
            connect_timeout=connect_timeout, ssh_config=ssh_config, ssh_options=ssh_options,
            akdiag_file=akdiag_file, keep_remote_copy=keep_remote_copy, basedir=basedir, output_dir=output_dir,
            label=label, fmt=fmt, timeout=timeout,
            options=options, catalog=catalog,
            catalog_file=catalog_file, patterns=patterns, pii_kinds=pii_kinds, keep_mapping=keep_mapping,
            password=password, command_line=command_line(), quiet=quiet,
            pseudonym_key=pseudonym_key(pseudonym_key_file, pii_kinds), case_id=case_id))
    path, source = resolve_basedir(basedir)
    request = CollectRequest(basedir=path, basedir_source=source, catalog=catalog, output_dir=Path(output_dir),
                             label=label, fmt=fmt, timeout=timeout,
                             options=options,
                             command_line=command_line(), extra_redact_patterns=patterns, pii_kinds=pii_kinds,
                             keep_mapping=keep_mapping, password=password,
                             spent_before=seconds_since_start(), handoff=handoff,
                             pseudonym_key=None if dry_run else pseudonym_key(pseudonym_key_file, pii_kinds, path))
    sys.exit(run_dry(request, encrypt) if dry_run else run_collect(request, quiet))


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
    from collector import tempfiles
    from collector.run import CollectRequest
    from collector.simulate import SimulatedHost

    from collector.trust import trusted_temp_parent

    with tempfile.TemporaryDirectory(prefix=tempfiles.prefix("demo"), dir=trusted_temp_parent()) as root:
        with SimulatedHost(Path(root)) as host:
            if not quiet:
                click.echo(f"Simulated Altcraft host in {host.basedir}", err=True)
            host.build().start().break_like_production()
            catalog = load_catalog_or_exit(str(host.catalog_file))
            request = CollectRequest(basedir=host.basedir, basedir_source="demo", catalog=catalog,
                                     output_dir=Path(output_dir), label="demo", fmt=fmt, timeout=120,
                                     command_line=command_line(), options=_demo_options())
            code = run_collect(request, quiet)
    if not quiet and code == EXIT_OK:
        click.echo("Open summary.html inside the bundle first (7z x <bundle>).")
        click.echo("The demo's faults are proctrigger (down, stale PID file) and trkread (port taken); the "
                   "simulated host runs no datastores, so their findings are expected here. This machine's "
                   f"own kernel messages and systemd units are left out ({', '.join(_NOT_SIMULATED)}).")
    sys.exit(code)


# the machine's kernel log and service manager are not the simulated host's: their kills,
# crashes and units would read as the demo's
_NOT_SIMULATED = ("kernel", "services")


def _demo_options():
    from collector.collectors import names
    from collector.context import CollectOptions

    return CollectOptions(only=tuple(name for name in names() if name not in _NOT_SIMULATED))


# --------------------------------------------------------------------------- check and report

class _MonitoringCommand(click.Command):
    """A bad option is "could not check" (3) for a monitoring system, not CRITICAL (2)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            exc.exit_code = 3
            raise


def _valid_skip(_ctx, _param, names) -> tuple:
    """Collector names for --skip, checked when used (the registry imports every collector)."""
    from collector.collectors import registry

    known = [spec.name for spec in registry().values() if spec.quick]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a quick collector (known: {', '.join(known)})")
    return tuple(names)


@main.command(cls=_MonitoringCommand)
@_basedir_option
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="YAML file merged over the built-in catalog (processes, thresholds).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "nagios"]), default="text", show_default=True)
@click.option("--skip", multiple=True, callback=_valid_skip, metavar="COLLECTOR",
              help="Leave a collector out, e.g. --skip datastores (repeatable).")
@click.option("--logs", "with_logs", is_flag=True, help="Also read the log tails (slower).")
@click.option("--timeout", type=click.FloatRange(min=2), default=30, show_default=True,
              help="Deadline of the whole check, in seconds.")
@click.option("--datastore-timeout", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Each datastore check's budget in seconds, from its client library being loaded; "
                   "an answer after it is slow, none by twice it a timeout.")
@click.option("--bundle", "bundle_path", type=click.Path(exists=True),
              help="Judge an existing bundle (folder or unencrypted archive) instead of this host.")
def check(basedir, catalog_file, fmt, skip, with_logs, timeout, datastore_timeout, bundle_path):
    """Check this host quickly and exit as monitoring expects.

    \b
    Runs the quick collectors (no log tails unless --logs, no archive) and the
    analyzers, prints the findings, and exits:
      0  OK        nothing above info
      1  WARNING   a warning, nothing critical
      2  CRITICAL  a critical finding
      3  UNKNOWN   could not check (no BASEDIR, no process data, bad option or catalog)
      128+N        stopped by signal N (143 SIGTERM from a monitoring timeout)
    --format nagios prints one status line with performance data (processes_down=...).
    """
    from collector import check as checking

    try:
        result = run_check(checking, basedir, catalog_file, skip, with_logs, timeout, datastore_timeout,
                           bundle_path)
    except Interrupted as exc:
        sys.exit(interrupt.finish(exc, "no verdict"))
    except Exception as exc:  # a monitoring system needs a status line, not a traceback
        result = checking.unknown(f"internal error: {type(exc).__name__}: {exc}")
    click.echo(checking.RENDERERS[fmt](result))
    sys.exit(result.code)


@main.command()
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--output", "output_file", type=click.Path(dir_okay=False),
              help="Where to write the summary [default: ./<bundle name>.summary.html]; the findings go "
                   "beside it as <name>.findings.json.")
@click.option("--open", "open_it", is_flag=True, help="Open the summary in a web browser.")
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="YAML file merged over the built-in catalog (thresholds).")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="File holding an encrypted bundle's password [else $AKDIAG_PASSWORD, else a prompt].")
def report(bundle, output_file, open_it, catalog_file, password_file):
    """Re-render the summary and findings of an existing bundle with this akdiag.

    BUNDLE is a bundle folder, .7z or .tar.gz.  Nothing inside it is changed.

    \b
    Exit codes:
      0  the summary and findings were written
      2  bad option or catalog; not a bundle, a wrong password, or a bundle newer than this akdiag
      3  the summary could not be written; or it was, but the bundle holds no usable process
         (or port) data, so the verdict is unknown, as `check` says it
    """
    from collector.bundle.reader import BundleError
    from collector.bundle.writer import BundleWriteError
    from collector.cluster.report import rerender_cluster
    from collector.rerender import NewerSchemaError, default_output, rerender

    catalog = load_catalog_or_exit(catalog_file)
    output = Path(output_file) if output_file else default_output(Path(bundle))
    try:
        done = asking_password(lambda password: rerender(Path(bundle), output, catalog, password,
                                                         render_cluster=rerender_cluster), password_file)
    except NewerSchemaError as exc:
        usage_error(f"{bundle}: {exc}")
    except BundleError as exc:
        usage_error(str(exc))
    except BundleWriteError as exc:
        error(str(exc))
        sys.exit(EXIT_OUTPUT)
    print_report(done)
    if open_it:
        open_in_browser(done.html_path)
    sys.exit(report_exit_code(done.analysis.findings))


@main.command()
@click.argument("old", type=click.Path(exists=True))
@click.argument("new", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option("--allow-different-hosts", is_flag=True, help="Compare bundles of two different hosts.")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="File holding encrypted bundles' password [else $AKDIAG_PASSWORD, else a prompt].")
def diff(old, new, fmt, output_file, allow_different_hosts, password_file):
    """What changed between two bundles of one host (e.g. before and after an upgrade).

    OLD and NEW are bundle folders, .7z (encrypted too) or .tar.gz archives.

    \b
    Exit codes:
      0  no regression (no new critical or warning finding, no process lost)
      1  a regression
      2  error: a bundle that cannot be read, a wrong password, different hosts
    """
    from collector.bundle.reader import BundleError
    from collector.diff import DifferentHostsError

    try:
        with open_bundles([Path(old), Path(new)], password_file) as (old_reader, new_reader):
            result = _diff_readers(old_reader, new_reader, allow_different_hosts)
    except (BundleError, DifferentHostsError) as exc:
        usage_error(str(exc))
    text = diff_text(result, fmt, output_file)
    if output_file:
        write_outside_bundle(Path(output_file), text)
        click.echo(f"Diff: {Path(output_file).resolve()}", err=True)
    else:
        click.echo(text, nl=False)
    sys.exit(1 if result.regression else EXIT_OK)



def _diff_readers(old, new, allow_different_hosts: bool):
    """Two cluster archives (or one and a bundle) are compared host by host by the cluster
    package; two bundles by collector.diff."""
    from collector.bundle import schema

    if old.exists(schema.CLUSTER_MANIFEST) or new.exists(schema.CLUSTER_MANIFEST):
        from collector.cluster.diff import diff_clusters

        return diff_clusters(old, new, allow_different_hosts)
    from collector.diff import diff_bundles

    return diff_bundles(old, new, allow_different_hosts)


main.add_command(pack_command)


if __name__ == "__main__":  # pragma: no cover
    main()
