"""akdiag's command line: click commands and their options only.  The options' values are
checked in collector.cli_options, the commands run in collector.commands (host) and
collector.cluster.command (cluster), and print through collector.console."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from collector import __version__
from collector.bundle.schema import FORMATS
from collector.cli_check import check
from collector.cli_help import SectionedCommand, format_examples
from collector.cli_options import (DURATION, SIZE, at_least, basedir_option, checked_pii_kinds, collect_options,
                                   collector_names, command_line, datastore_timeout_option, list_collectors_option,
                                   load_catalog_or_exit, pseudonym_key, selected_collectors, valid_patterns)
from collector.cli_report import diff, report
from collector.cli_upload import prepare_upload, upload_command, upload_options
from collector.cli_watch import watch_command
from collector.handoff_cli import (case_id_option, checked_handoff, dry_run_option, max_size_option, pack_command,
                                   run_dry, split_option)
from collector.console import EXIT_CLOSED_PIPE, EXIT_INTERNAL, quiet_closed_stdout, usage_error

# Only click and light modules are imported above: `akdiag --help` must start fast (issue 14:
# at most 3x `python3 -c pass`).  psutil, jinja2, py7zr, the datastore clients, the catalog
# (yaml) and the run are imported inside the commands that need them.

_positive = click.IntRange(min=1)
_quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress; print only the bundle's path.")
_verbose_option = click.option("-v", "--verbose", is_flag=True,
                               help="Each step on stderr with its time, on a terminal or not.")

# Help headings of `collect` and `demo`: heading -> option names (click's parameter names).
# A new option goes under a heading by adding its name here, or by itself with
# collector.cli_help.section_option("Heading", "--name", ...); otherwise "Other options".
COLLECT_SECTIONS = {
    "Output": ("output_dir", "label", "fmt", "quiet", "verbose", "case_id", "max_size", "split_size", "dry_run"),
    "Sending to support": ("upload_url", "upload_method", "upload_field", "ca_file", "insecure_http",
                           "max_upload_size", "upload_timeout", "upload_retries"),
    "What to collect": ("basedir", "only", "skip", "list_collectors", "catalog_file", "timeout",
                        "datastore_timeout"),
    "Logs": ("log_lines", "log_bytes", "log_total_bytes", "since"),
    "Privacy": ("pseudonymize_more", "no_pseudonymize", "keep_mapping", "pseudonym_key_file", "redact_patterns"),
    "Encryption": ("encrypt", "password_file"),
    "Cluster": ("hosts_file", "host_options", "parallel", "host_timeout", "connect_timeout", "ssh_config",
                "ssh_options", "akdiag_file", "keep_remote_copy"),
}
COLLECT_EXAMPLES = (
    ("akdiag collect", "A bundle of this host in the current folder."),
    ("akdiag collect -o /var/tmp --since 2h --label pre-upgrade",
     "Logs of the last two hours, the bundle in /var/tmp, 'pre-upgrade' in its name."),
    ("akdiag collect --log-bytes 8M --log-total-bytes 500M", "Longer log tails (sizes: 512K, 8M, 1.5GiB)."),
    ("akdiag collect --skip datastores -q", "Leave the datastore checks out; print only the bundle's path."),
    ("akdiag collect --encrypt --password-file pw.txt", "An encrypted 7z (AES-256, file names hidden)."),
    ("akdiag collect --host root@app1 --host root@app2 -o /var/tmp",
     "One cluster archive from two hosts over SSH."),
)


class _Akdiag(click.Group):
    """The command group; an exception no command expected is a bug: its traceback and a
    one-line message go to stderr and the exit code is 1, never a bare traceback.  A
    closed stdout (`akdiag check | head -1`) ends the output quietly."""

    examples = (
        ("akdiag demo", "See what a bundle holds, on a simulated platform host."),
        ("akdiag collect -o /var/tmp", "Collect this host's bundle for support."),
        ("akdiag check", "A quick verdict for monitoring (exit 0/1/2/3)."),
        ("akdiag watch -o /var/lib/akdiag/bundles", "Keep a history; a bundle when something new goes wrong."),
        ("akdiag report BUNDLE.7z --open", "Re-render an old bundle's summary with this akdiag."),
        ("akdiag COMMAND --help", "Every option of a command, by purpose."),
    )

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_examples(self.examples, formatter)
        super().format_epilog(ctx, formatter)

    def invoke(self, ctx: click.Context):
        import traceback

        from collector import bounded, interrupt, tempfiles

        try:
            # What akdiag writes (bundles, decrypted files) is its owner's only; its clean-up,
            # too, runs with the stop signals handled.
            with bounded.private_umask(), interrupt.stop_on_signals():
                try:
                    tempfiles.sweep_temporary_folder()
                    return super().invoke(ctx)
                except click.exceptions.Exit:
                    raise
                except BaseException as exc:  # a stop signal, or what it turned into (interrupt.stopped_by)
                    status = interrupt.finish_if_stopped(exc, "nothing left behind")
                    if status is None:
                        raise
                    ctx.exit(status)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # stdout's reader left: nothing to say, and no one to say it to
            quiet_closed_stdout()
            ctx.exit(EXIT_CLOSED_PIPE)
        except Exception as exc:
            click.echo(traceback.format_exc().rstrip(), err=True)
            click.echo(f"akdiag: internal error: {type(exc).__name__}: {exc} (a bug in akdiag: please report "
                       "it with the lines above)", err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=_Akdiag, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="akdiag")
def main() -> None:
    """Collect a diagnostics bundle from an Altcraft platform host for Altcraft support.

    \b
    Exit codes of `collect` and `demo`:
      0  a bundle was written (even if some collectors failed: see its manifest)
      1  internal error (a bug in akdiag: please report it)
      2  bad option or catalog file
      3  no bundle could be written (output folder missing, not writable, disk full)
      6  --upload: the bundle was written (its path printed) but could not be sent
      128+N stopped by signal N (130 Ctrl-C, 129 SIGHUP, 143 SIGTERM, 131 SIGQUIT): no bundle
          written, nothing left behind
    """


@main.command(cls=SectionedCommand, sections=COLLECT_SECTIONS, examples=COLLECT_EXAMPLES)
@basedir_option
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to write the bundle into.")
@click.option("--label", default="", help="A word to put in the bundle's name, e.g. pre-upgrade.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="7z", show_default=True)
@click.option("--only", multiple=True, callback=collector_names(), metavar="COLLECTOR",
              help="Run only this collector (repeatable; see --list-collectors).")
@click.option("--skip", multiple=True, callback=collector_names(), metavar="COLLECTOR",
              help="Leave a collector out, e.g. --skip datastores (repeatable).")
@list_collectors_option(quick_only=False)
@click.option("--log-lines", type=_positive, default=5000, show_default=True, help="Lines of each log's tail.")
@click.option("--log-bytes", type=SIZE, default="2M", show_default=True,
              help="Size at most of each log's tail (512K, 2M, 1GiB or bytes).")
@click.option("--log-total-bytes", type=SIZE, default="100M", show_default=True,
              help="Size at most of all log tails together (newest logs first).")
@click.option("--since", metavar="TIME", help="Read each log back to this time instead of its tail: 2h, 90m, 3d, "
              "2026-11-30T14:00 or \"2026-11-30 14:00\" (this host's local time unless it ends in Z or +03:00); "
              "rotated and compressed logs too, within --log-total-bytes.")
@click.option("--timeout", type=DURATION, callback=at_least(5), default="5m", show_default=True,
              help="Deadline of the whole run (300, 90s, 5m).")
@datastore_timeout_option("3s")
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
@_quiet_option
@_verbose_option
@click.option("--hosts", "hosts_file", type=click.Path(dir_okay=False),
              help="Collect every host of this YAML file over SSH into one cluster archive.")
@click.option("--host", "host_options", multiple=True, metavar="USER@ADDRESS[:BASEDIR][@roles=R1,R2]",
              help="A host to collect over SSH (repeatable; with or without --hosts).")
@click.option("--parallel", type=_positive, help="Hosts collected at once [default: up to 8].")
@click.option("--host-timeout", type=DURATION, callback=at_least(1), help="Each host's deadline "
              "(connect, copy, collect, fetch) [default: --timeout + 2m].")
@click.option("--connect-timeout", type=DURATION, callback=at_least(1), default="10s", show_default=True,
              help="Time to wait for each host's SSH connection.")
@click.option("--ssh-config", type=click.Path(dir_okay=False), help="ssh -F FILE [default: ~/.ssh/config].")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPTION",
              help="An ssh -o option, e.g. --ssh-option Port=2222 (repeatable).")
@click.option("--akdiag-file", type=click.Path(dir_okay=False),
              help="The single-file akdiag to copy to the hosts [default: an installed akdiag not older "
                   "than this one, else this akdiag's single file].")
@click.option("--keep-remote-copy", is_flag=True,
              help="Keep the single file and what it unpacks in each host's ~/.cache/akdiag for the next "
                   "run (default: remove everything akdiag put on the host).")
@upload_options
@case_id_option
@max_size_option
@split_option
@dry_run_option
def collect(basedir, output_dir, label, fmt, only, skip, log_lines, log_bytes, log_total_bytes, since, timeout,
            datastore_timeout, catalog_file, pseudonymize_more, no_pseudonymize, keep_mapping, pseudonym_key_file,
            redact_patterns, encrypt, password_file, quiet, verbose, hosts_file, host_options, parallel,
            host_timeout, connect_timeout, ssh_config, ssh_options, akdiag_file, keep_remote_copy, upload,
            case_id, max_size, split_size, dry_run):
    """Collect a diagnostics bundle from this host, or with --hosts/--host from every host of
    a cluster over SSH into one cluster archive."""
    from collector.basedir import resolve_basedir
    from collector.commands import run_collect, seconds_since_start
    from collector.password import password_for_archive
    from collector.run import CollectRequest

    catalog = load_catalog_or_exit(catalog_file)
    options = collect_options(log_lines, log_bytes, log_total_bytes, datastore_timeout, since,
                              only=selected_collectors(only, skip))
    patterns = valid_patterns(redact_patterns)
    pii_kinds = checked_pii_kinds(pseudonymize_more, no_pseudonymize)
    send_bundle = prepare_upload(upload, catalog, fmt, quiet, cluster=bool(hosts_file or host_options))
    if encrypt and fmt != "7z":
        usage_error("--encrypt needs --format 7z")
    if not (hosts_file or host_options) and (parallel or host_timeout or ssh_config or ssh_options or akdiag_file
                                             or keep_remote_copy):
        usage_error("--parallel, --host-timeout, --ssh-config, --ssh-option, --akdiag-file and --keep-remote-copy "
                    "need --hosts or --host")
    handoff = checked_handoff(case_id, max_size, split_size, fmt, bool(hosts_file or host_options), dry_run)
    # a dry run reads no password; a password file without --encrypt is refused even there
    password = None if dry_run and encrypt else password_for_archive(encrypt, password_file)
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
    if dry_run:
        sys.exit(run_dry(request, encrypt))
    sys.exit(run_collect(request, quiet, verbose, after=send_bundle))


@main.command(cls=SectionedCommand, sections=COLLECT_SECTIONS, examples=(
    ("akdiag demo", "A demo bundle in the current folder, with the simulated host's two faults."),
    ("akdiag demo -o /tmp -q", "Print only the demo bundle's path."),
))
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to write the demo bundle into.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="7z", show_default=True)
@_quiet_option
@_verbose_option
def demo(output_dir, fmt, quiet, verbose):
    """Start a simulated Altcraft host, collect a bundle from it, stop it.

    The simulated host runs real processes named AK:<name> on their catalog ports, with two
    faults: proctrigger is down with a stale PID file, and trkread's port is held by a
    foreign program.  Where it can (root, or user namespaces, and unshare), the simulated
    host runs in its own PID, network and mount namespaces, so that a platform running on
    this machine is neither shown in the demo nor disturbed by it; otherwise the demo
    says so.
    """
    from collector.commands_demo import run_demo

    sys.exit(run_demo(output_dir, fmt, quiet, verbose))


main.add_command(upload_command)
main.add_command(check)
main.add_command(report)
main.add_command(diff)
main.add_command(pack_command)
main.add_command(watch_command)

if __name__ == "__main__":  # pragma: no cover
    main()
