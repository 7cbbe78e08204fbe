"""`akdiag collect --hosts FILE` / `--host DEST`: the command-line side of a cluster run
(the options' checks, the run, the printout; stop signals are handled as in collector.interrupt)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import List, Optional, Sequence

import click

from collector import interrupt
from collector.console import (EXIT_HOSTS_MISSING, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE, error, human_size,
                               progress_printer)
from collector.cluster.hosts import HostsError, HostSpec, combine, load_hosts_file, parse_host_option
from collector.cluster.ssh import SshSettings

DEFAULT_PARALLEL = 8


def hosts_from_options(hosts_file: Optional[str], host_options: Sequence[str]) -> List[HostSpec]:
    """Raises HostsError (the message names the file and line, or the option)."""
    from_file = load_hosts_file(Path(hosts_file)) if hosts_file else []
    from_options = [parse_host_option(text) for text in host_options]
    return combine(from_file, from_options)


def cluster_collect(*, hosts_file, host_options, parallel, host_timeout, connect_timeout, ssh_config, ssh_options,
                    akdiag_file, keep_remote_copy, basedir, output_dir, label, fmt, timeout, options, catalog, catalog_file,
                    patterns, pii_kinds, keep_mapping, password, command_line, quiet, pseudonym_key=None,
                    case_id="") -> int:
    """Run a cluster collection from the `collect` command's options; the exit code."""
    from collector.cluster.run import ClusterRequest, OutputError, collect_cluster

    try:
        hosts = hosts_from_options(hosts_file, host_options)
    except HostsError as exc:
        error(str(exc))
        return EXIT_USAGE
    if not hosts:
        error("no host to collect")
        return EXIT_USAGE
    if basedir and not str(basedir).startswith("/"):
        error(f"--basedir {basedir} must be an absolute path on the hosts")
        return EXIT_USAGE
    settings = SshSettings.from_environment(ssh_config, ssh_options, connect_timeout)
    if shutil.which(settings.program) is None:
        error("the OpenSSH client (ssh) is not installed here")
        return EXIT_USAGE
    if akdiag_file and not Path(akdiag_file).is_file():
        error(f"--akdiag-file {akdiag_file} does not exist")
        return EXIT_USAGE
    request = ClusterRequest(
        hosts=hosts, catalog=catalog, output_dir=Path(output_dir),
        catalog_file=Path(catalog_file) if catalog_file else None, label=label, fmt=fmt, timeout=timeout,
        host_timeout=host_timeout, parallel=parallel or min(DEFAULT_PARALLEL, len(hosts)), options=options,
        basedir=basedir, command_line=command_line, extra_redact_patterns=patterns, pii_kinds=pii_kinds,
        keep_mapping=keep_mapping, password=password, akdiag_file=Path(akdiag_file) if akdiag_file else None,
        ssh=settings, keep_remote_copy=keep_remote_copy, pseudonym_key=pseudonym_key,
        case_id=case_id)
    try:
        result = collect_cluster(request, progress=progress_printer(quiet))
    except BaseException as exc:  # a stop signal, or what it turned into (interrupt.stopped_by)
        status = interrupt.finish_if_stopped(exc, "no cluster archive written (the hosts were cleaned up)")
        if status is not None:
            return status
        if not isinstance(exc, OutputError):
            raise
        error(f"no cluster archive written: {exc}")
        return EXIT_OUTPUT
    _print(result, quiet)
    return exit_status(result.hosts)


COLLECTED = ("ok", "duplicate")  # a duplicate's machine is collected under its first name


def exit_status(records: List[dict]) -> int:
    """0 when every host was collected; EXIT_HOSTS_MISSING (5) when the archive was written
    but some host, or every host, could not be."""
    return EXIT_OK if all(r["status"] in COLLECTED for r in records) else EXIT_HOSTS_MISSING


def _missing_line(records: List[dict]) -> Optional[str]:
    missing = [r["name"] for r in records if r["status"] not in COLLECTED]
    if not missing:
        return None
    if len(missing) == len(records) or not any(r["status"] == "ok" for r in records):
        return (f"No host could be collected ({', '.join(missing)}): the archive holds only why, host by host "
                "(its summary.html and cluster.json); fix that and run again, there is nothing to send yet "
                f"(exit status {EXIT_HOSTS_MISSING}).")
    return (f"{len(missing)} of {len(records)} hosts not collected ({', '.join(missing)}): the archive holds "
            f"the others; collect those by hand or run again (exit status {EXIT_HOSTS_MISSING}).")


def _print(result, quiet: bool) -> None:
    from collector.check import counts_text, top_findings_lines

    missing = _missing_line(result.hosts)
    if quiet:
        click.echo(str(result.path.resolve()))
        if missing:
            click.echo(f"akdiag: {missing}", err=True)
        return
    ok = [h for h in result.hosts if h["status"] == "ok"]
    twice = [h for h in result.hosts if h["status"] == "duplicate"]
    click.echo(f"Cluster:   {result.path.resolve()}")
    click.echo(f"Size:      {human_size(result.size)}")
    if result.mapping_path:
        click.echo(f"Mapping:   {result.mapping_path} (keep it: it is not in the archive, do not send it)")
    click.echo(f"Duration:  {result.duration:.1f} s")
    click.echo(f"Hosts:     {len(ok)} of {len(result.hosts) - len(twice)} collected"
               + (f" ({len(twice)} listed twice under another name)" if twice else ""))
    width = max(len(h["name"]) for h in result.hosts)
    for host in result.hosts:
        clock = host.get("clock") or {}
        line = f"  {host['name']:<{width}}  {host['status']:<9} {host.get('duration') or 0:6.1f} s"
        if host["status"] == "ok":
            if clock.get("offset_seconds") is not None:
                line += f"  clock {clock['offset_seconds']:+.3f} s"
            if host.get("also_listed_as"):
                line += f"  also listed as {', '.join(host['also_listed_as'])}"
        elif host["status"] == "duplicate":
            line += f"  the same machine as {host.get('duplicate_of')} (collected once, as {host.get('duplicate_of')})"
        else:
            error = host.get("error") or {}
            line += f"  at {error.get('stage')}: {error.get('message')}"
            if error.get("exit_status") is not None:
                line += f" (exit status {error['exit_status']})"
        if host.get("roles"):
            line += f"  [{', '.join(host['roles'])}]"
        click.echo(line)
    findings = result.findings
    if findings:
        click.echo(f"Cluster findings: {counts_text(findings)} (all in summary.html and findings.json)")
        for line in top_findings_lines(findings):
            click.echo(line)
    else:
        click.echo("Cluster findings: none (each host's own are in its bundle and in summary.html)")
    if missing:
        click.echo(missing)
    if any(h["status"] == "ok" for h in result.hosts):
        click.echo("Send this file to Altcraft support.")
