"""One cluster run: every host collected over SSH in parallel (collector.cluster.host),
each within its own deadline, into one cluster archive with its manifest (cluster.json),
the cluster-wide findings and summary.

- `request.py`: the run's request and result;
- `single_file.py`: the single-file akdiag copied to the hosts;
- `remote_scripts.py`: the shell scripts run on each host;
- `host.py`: one host's steps (connect, clock, probe, copy, collect, fetch, unpack, cleanup).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import List, Optional

from collector import TOOL_NAME, __version__
from collector.bundle import archive, schema
from collector.bundle.handoff import case_bundle_name
from collector.bundle.writer import BundleWriteError, BundleWriter, file_records_as_dicts
from collector.cluster import CLUSTER_MANIFEST, CLUSTER_SCHEMA_VERSION, HOSTS_DIR
from collector.cluster.host import HostRun
from collector.cluster.machines import MachineRegistry, link_duplicates
from collector.cluster.request import HOST_TIMEOUT_MARGIN, INCOMING, ClusterRequest, ClusterResult
from collector.cluster.single_file import SingleFile
from collector.cluster.ssh import SshSettings, control_folder
from collector.live import iso_utc
from collector.pseudonym_key import new_key_text
from collector.redact import Scrubber
from collector.run import OutputError, Progress, ToolLog, make_staging

__all__ = ["ClusterRequest", "ClusterResult", "OutputError", "collect_cluster"]


def _manifest(request: ClusterRequest, records: List[dict], notes: List[str], started_wall: float, started: float,
              writer: BundleWriter, ssh_version: Optional[str]) -> dict:
    import socket

    counts = {"hosts": len(records)}
    for status in ("ok", "failed", "timeout", "pending", "duplicate"):
        counts[status] = sum(1 for r in records if r["status"] == status)
    return {
        "cluster_schema": CLUSTER_SCHEMA_VERSION,
        "kind": "akdiag-cluster",
        "tool": {"name": TOOL_NAME, "version": __version__},
        "label": request.label or None,
        "case_id": request.case_id or None,
        "started_at": iso_utc(started_wall),
        "finished_at": iso_utc(time.time()),
        "duration": round(time.monotonic() - started, 3),
        "command_line": request.command_line,
        "local": {"hostname": socket.gethostname(), "ssh": ssh_version},
        "options": {"format": request.fmt, "parallel": request.parallel, "timeout": request.timeout,
                    "host_timeout": request.host_timeout or request.timeout + HOST_TIMEOUT_MARGIN,
                    "connect_timeout": request.ssh.connect_timeout, "encrypted": bool(request.password),
                    "log_lines": request.options.log_lines, "log_bytes": request.options.log_bytes,
                    "log_total_bytes": request.options.log_total_bytes,
                    "since": iso_utc(request.options.since),
                    "catalog": str(request.catalog_file) if request.catalog_file else None},
        "counts": counts,
        "notes": notes,
        "hosts": records,
        "files": [f for f in file_records_as_dicts(writer.files())
                  if f["path"] != CLUSTER_MANIFEST and not f["path"].startswith(HOSTS_DIR + "/")],
    }


def _ssh_version(settings: SshSettings) -> Optional[str]:
    from collector.bounded import run_command

    done = run_command([settings.program, "-V"], timeout=5)
    text = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
    return text.splitlines()[0][:200] if text else None


def _scrub_text(scrubber: Scrubber, text: str) -> str:
    """`text` as the writer will store it: a host's name and its folder under hosts/ stay
    the same token when names are pseudonymized."""
    return scrubber.scrub_bytes(text.encode("utf-8", "surrogateescape"), CLUSTER_MANIFEST).decode(
        "utf-8", "surrogateescape")


def _scrub_destination(scrubber: Scrubber, destination: str) -> str:
    """user@host with the host part pseudonymized like any host name (the host rule leaves
    a name after '@' alone: it takes it for an e-mail's domain)."""
    user, at, host = destination.rpartition("@")
    return f"{user}{at}{_scrub_text(scrubber, host)}" if at else _scrub_text(scrubber, destination)


def collect_cluster(request: ClusterRequest, progress: Optional[Progress] = None) -> ClusterResult:
    started = time.monotonic()
    started_wall = time.time()
    log = ToolLog(progress)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_wall))
    name = case_bundle_name("cluster", request.label, stamp, request.case_id)
    staging = make_staging(request.output_dir, name)
    control = control_folder()
    runs: List[HostRun] = []
    writer: Optional[BundleWriter] = None
    try:
        # The cluster's own files hold host names, addresses and ssh's messages, no subscriber
        # data: secrets and the customer's patterns are masked, and addresses and host names
        # pseudonymized when asked (--pseudonymize ips,hosts); e-mail and phone rules would
        # only mangle `user@host` destinations.  The hosts' bundles were scrubbed by their akdiag.
        if request.pii_kinds and not request.pseudonym_key:  # one key for all hosts, drawn for this run
            request = dataclasses.replace(request, pseudonym_key=new_key_text().strip())
        scrubber = Scrubber.for_bundle(tuple(k for k in request.pii_kinds if k in ("ips", "hosts")),
                                       tuple(request.catalog.redact) + tuple(request.extra_redact_patterns),
                                       pseudonym_key=request.pseudonym_key)
        writer = BundleWriter(staging, scrubber)
        log(f"{TOOL_NAME} {__version__}: collecting {len(request.hosts)} host(s), {request.parallel} at a time")
        single = SingleFile(request.akdiag_file)
        machines = MachineRegistry()
        runs = [HostRun(i, spec, request, writer, control, single, log, _scrub_text(scrubber, spec.name),
                        _scrub_destination(scrubber, spec.destination), machines)
                for i, spec in enumerate(request.hosts)]
        _run_all(runs, request.parallel)
        records = [run.record for run in runs]
        notes = link_duplicates(records)
        for note in notes:
            log(note)
        shutil.rmtree(staging / INCOMING, ignore_errors=True)
        ssh_version = _ssh_version(request.ssh)
        writer.write_json(CLUSTER_MANIFEST,
                          _manifest(request, records, notes, started_wall, started, writer, ssh_version))
        findings = _analyze_and_render(staging, writer, request, log)
        writer.write_text(schema.TOOL_LOG, log.text())
        writer.write_json(CLUSTER_MANIFEST,
                          _manifest(request, records, notes, started_wall, started, writer, ssh_version))
        if progress:
            progress(f"packing {request.fmt}" + (" (encrypted)" if request.password else ""))
        path = archive.pack(staging, request.output_dir, name, request.fmt, request.password)
        mapping_path = None
        if request.keep_mapping:
            mapping = {"cluster": scrubber.pseudonymizer.mapping if scrubber.pseudonymizer else {},
                       "hosts": {run.spec.name: run.mapping for run in runs if run.mapping}}
            mapping_path = archive.write_mapping_beside(path, mapping)
    except BundleWriteError as exc:
        raise OutputError(str(exc)) from exc
    except OSError as exc:
        raise OutputError(f"cannot write the cluster archive into {request.output_dir}: {exc.strerror or exc}") from exc
    finally:
        if writer is not None:
            writer.close()
        archive.remove_tree(staging)  # gone already when a `dir` archive was renamed into place
        shutil.rmtree(control, ignore_errors=True)
    return ClusterResult(path, archive.size_of(path), time.monotonic() - started, records, findings, mapping_path)


def _run_all(runs: List[HostRun], parallel: int) -> None:
    """Every host's run, `parallel` at once.  The main thread only waits (in short
    steps, so that Ctrl-C and SIGTERM reach it); on an interrupt every run is cancelled,
    which kills its ssh commands and cleans its host up, and the interrupt goes on."""
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="akdiag-host")
    futures = [pool.submit(run.run) for run in runs]
    try:
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=0.2)
    except BaseException:
        for run in runs:
            run.cancel()
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)
    for future in futures:
        future.result()  # a local write error (disk full) surfaces here


def _analyze_and_render(staging: Path, writer: BundleWriter, request: ClusterRequest, log) -> List[dict]:
    from collector.analyzers import write_findings
    from collector.cluster.analyze import ClusterReader, analyze_cluster
    from collector.cluster.report import render_cluster

    findings: List[dict] = []
    try:
        log("analyzing the cluster")
        analysis = analyze_cluster(ClusterReader(staging), request.catalog.thresholds)
        write_findings(analysis, writer)
        findings = analysis.findings
    except BundleWriteError:
        raise
    except Exception as exc:  # the analyzers catch their own crashes; this is the last resort
        log(f"the cluster's findings.json could not be written: {type(exc).__name__}: {exc}")
        log(traceback.format_exc())
    try:
        log("writing the cluster summary")
        writer.write_text(schema.SUMMARY_HTML, render_cluster(ClusterReader(staging)))
    except BundleWriteError:
        raise
    except Exception as exc:
        log(f"the cluster's summary.html could not be rendered: {type(exc).__name__}: {exc}")
        log(traceback.format_exc())
    return findings
