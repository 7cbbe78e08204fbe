"""One collection run: resolve BASEDIR, run every collector under its time bound,
render the summary from the bundle's own files, write the manifest, pack atomically."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from collector import TOOL_NAME, __version__
from collector.bundle import archive, schema
from collector.bundle.reader import BundleReader
from collector.bundle.writer import BundleWriter, BundleWriteError, file_records_as_dicts, json_bytes
from collector.catalog import Catalog
from collector.collectors import CollectorSpec, registry
from collector.context import CollectOptions, Context, Deadline
from collector.live import iso_utc, path_inside
from collector.redact import DEFAULT_PII_KINDS, Scrubber

Progress = Callable[[str], None]


class OutputError(Exception):
    """No bundle could be written (output folder missing or not writable, disk full)."""


@dataclass
class CollectRequest:
    basedir: Path
    basedir_source: str
    catalog: Catalog
    output_dir: Path
    label: str = ""
    fmt: str = "7z"
    timeout: float = 300.0
    options: CollectOptions = field(default_factory=CollectOptions)
    command_line: str = ""
    extra_redact_patterns: tuple = ()
    pii_kinds: tuple = DEFAULT_PII_KINDS  # empty with --no-pseudonymize
    keep_mapping: bool = False
    password: Optional[str] = None  # set: the 7z archive is AES-256 encrypted, names included


@dataclass
class CollectorOutcome:
    name: str
    status: str
    duration: float
    error: Optional[str]
    output: Optional[str]

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "duration": round(self.duration, 3),
                "error": self.error, "output": self.output}


@dataclass
class CollectResult:
    path: Path
    size: int
    duration: float
    outcomes: List[CollectorOutcome]
    processes_down: Optional[List[str]]  # None: could not check
    mapping_path: Optional[Path] = None
    findings: List[dict] = field(default_factory=list)  # findings.json's, critical first


class ToolLog:
    """The tool's own log, kept in memory and written into the bundle (scrubbed) at the end.
    A message also goes to the progress line unless `show` is false or it spans several
    lines (a traceback belongs in the log, not on the administrator's terminal)."""

    def __init__(self, progress: Optional[Progress]):
        self._lines: List[str] = []
        self._lock = threading.Lock()
        self._progress = progress

    def __call__(self, message: str, show: bool = True) -> None:
        with self._lock:
            self._lines.append(f"{iso_utc(time.time())} {message}")
        if show and self._progress and "\n" not in message.strip():
            self._progress(message)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines) + "\n"


def _run_one(spec: CollectorSpec, ctx: Context, box: dict) -> None:
    started = time.monotonic()
    try:
        box["data"] = spec.run(ctx)
    except BaseException as exc:  # recorded, never propagated: the run goes on
        box["error"] = f"{type(exc).__name__}: {exc}"
        box["traceback"] = traceback.format_exc()
    box["duration"] = time.monotonic() - started


def _outcome_from(spec: CollectorSpec, box: dict, writer: BundleWriter, log: ToolLog) -> CollectorOutcome:
    duration = box.get("duration", 0.0)
    if "error" in box:
        log(f"collector {spec.name} failed: {box['error']}")
        log(box.get("traceback", ""), show=False)
        return CollectorOutcome(spec.name, "failed", duration, box["error"], None)
    data = box.get("data") or {}
    errors = data.get("errors") or []
    writer.write_json(spec.output, data, spec.name)
    status = "partial" if errors else "ok"
    error = "; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else "") if errors else None
    return CollectorOutcome(spec.name, status, duration, error, spec.output)


def run_collectors(specs: List[CollectorSpec], make_ctx: Callable[[CollectorSpec], Context],
                   deadline: Deadline, writer: BundleWriter, log: ToolLog) -> List[CollectorOutcome]:
    """Start every collector at once, each in its own thread; wait for each until its
    own timeout (never past the deadline).  A late collector's writer is closed."""
    started = time.monotonic()
    running = []
    for spec in specs:
        ctx = make_ctx(spec)
        box: dict = {}
        thread = threading.Thread(target=_run_one, args=(spec, ctx, box), name=f"collector:{spec.name}", daemon=True)
        thread.start()
        running.append((spec, ctx, box, thread))
        log(f"collecting {spec.name}")
    outcomes = []
    for spec, ctx, box, thread in running:
        limit = min(spec.timeout, deadline.remaining() + (time.monotonic() - started))
        thread.join(max(0.0, started + limit - time.monotonic()))
        if thread.is_alive():
            ctx.writer.close()
            message = f"did not finish within {limit:.1f} s; its results were left out"
            log(f"collector {spec.name} {message}")
            outcomes.append(CollectorOutcome(spec.name, "timeout", limit, message, None))
            continue
        try:
            outcomes.append(_outcome_from(spec, box, writer, log))
        except BundleWriteError:
            raise
        except Exception as exc:  # data that cannot be serialized: recorded
            outcomes.append(CollectorOutcome(spec.name, "failed", box.get("duration", 0.0),
                                             f"{type(exc).__name__}: {exc}", None))
    return outcomes


def _selected(options: CollectOptions) -> List[CollectorSpec]:
    specs = list(registry().values())
    return [s for s in specs if (options.only is None or s.name in options.only)]


def _skipped(options: CollectOptions) -> List[CollectorOutcome]:
    return [CollectorOutcome(s.name, "skipped", 0.0, "not selected for this run", None)
            for s in registry().values() if options.only is not None and s.name not in options.only]


def make_staging(output_dir: Path, name: str, basedir: Optional[Path] = None) -> Path:
    """A private working folder in the output folder, where the bundle is built before
    it is packed under its final name."""
    if basedir is not None and path_inside(output_dir, basedir):
        raise OutputError(f"output folder {output_dir} is inside BASEDIR {basedir}, where akdiag never writes: "
                          "choose another with --output (e.g. --output /var/tmp)")
    if not output_dir.is_dir():
        raise OutputError(f"output folder {output_dir} does not exist")
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {output_dir} is not writable")
    try:
        return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=str(output_dir)))
    except OSError as exc:
        raise OutputError(f"cannot create a working folder in {output_dir}: {exc.strerror or exc}") from exc


def collect_into(staging: Path, request: CollectRequest, log: ToolLog, started_wall: float,
                 deadline: Deadline, scrubber: Scrubber) -> List[CollectorOutcome]:
    """Fill `staging` with a complete bundle (everything but the archive step)."""
    writer = BundleWriter(staging, scrubber)
    reserve = min(15.0, request.timeout * 0.2)
    collectors_deadline = deadline.child(max(1.0, deadline.remaining() - reserve))

    def make_ctx(spec: CollectorSpec) -> Context:
        return Context(basedir=request.basedir, basedir_source=request.basedir_source, catalog=request.catalog,
                       deadline=collectors_deadline.child(spec.timeout), writer=writer.for_collector(spec.name),
                       options=request.options)

    if not request.basedir.is_dir():
        log(f"BASEDIR {request.basedir} (from {request.basedir_source}) is not a readable folder; "
            "collecting host facts anyway")
    outcomes = run_collectors(_selected(request.options), make_ctx, collectors_deadline, writer, log)
    outcomes += _skipped(request.options)
    _write_redactions(writer, scrubber, request)  # provisional, so the report can show the counts
    manifest = _manifest(request, outcomes, started_wall, writer)
    writer.write_json(schema.MANIFEST, manifest)  # provisional, so the report can read it
    try:
        log("analyzing the bundle")
        from collector import analyzers

        analyzers.write_findings(analyzers.analyze(BundleReader(staging), request.catalog.thresholds), writer)
    except BundleWriteError:
        raise
    except Exception as exc:  # the analyzers catch their own crashes; this is the last resort
        log(f"findings.json could not be written: {type(exc).__name__}: {exc}")
        log(traceback.format_exc(), show=False)
    try:
        log("writing the summary")
        from collector import report

        html = report.render_bundle(BundleReader(staging))
        writer.write_text(schema.SUMMARY_HTML, html)
    except BundleWriteError:
        raise
    except Exception as exc:  # a report that cannot be rendered is recorded, the bundle stays
        log(f"summary.html could not be rendered: {type(exc).__name__}: {exc}")
        log(traceback.format_exc(), show=False)
    writer.write_text(schema.TOOL_LOG, log.text())
    writer.write_json(schema.MANIFEST, _manifest(request, outcomes, started_wall, writer))
    _write_redactions(writer, scrubber, request)  # final: the manifest's, summary's and log's counts too
    writer.write_json(schema.MANIFEST, _manifest(request, outcomes, started_wall, writer))  # its final hash
    return outcomes


def _write_redactions(writer: BundleWriter, scrubber: Scrubber, request: CollectRequest) -> None:
    # Counts and rule names the tool computed itself: nothing in it can be a secret, and
    # scrubbing it would mask counts whose rule names sound like secret keys.
    writer.write_unscrubbed_bytes(schema.REDACTIONS, json_bytes(
        {"total": scrubber.counts.total(), "by_rule": scrubber.counts.by_rule(),
         "by_file": scrubber.counts.as_records(), "pseudonymized": list(request.pii_kinds)}))


def _manifest(request: CollectRequest, outcomes: List[CollectorOutcome], started_wall: float,
              writer: BundleWriter) -> dict:
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "hostname": socket.gethostname(),
        "basedir": str(request.basedir),
        "basedir_source": request.basedir_source,
        "label": request.label or None,
        "started_at": iso_utc(started_wall),
        "finished_at": iso_utc(time.time()),
        "command_line": request.command_line,
        "options": {"format": request.fmt, "timeout": request.timeout,
                    "log_lines": request.options.log_lines, "log_bytes": request.options.log_bytes,
                    "log_total_bytes": request.options.log_total_bytes},
        "catalog_sources": list(request.catalog.sources),
        "collectors": [o.as_dict() for o in outcomes],
        "files": [f for f in file_records_as_dicts(writer.files()) if f["path"] != schema.MANIFEST],
    }


def collect(request: CollectRequest, progress: Optional[Progress] = None) -> CollectResult:
    started = time.monotonic()
    started_wall = time.time()
    deadline = Deadline(request.timeout)
    log = ToolLog(progress)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_wall))
    name = archive.bundle_name(socket.gethostname(), request.label, stamp)
    staging = make_staging(request.output_dir, name, request.basedir)
    try:
        log(f"{TOOL_NAME} {__version__}: BASEDIR {request.basedir} ({request.basedir_source})")
        scrubber = Scrubber.for_bundle(request.pii_kinds,
                                       tuple(request.catalog.redact) + tuple(request.extra_redact_patterns))
        outcomes = collect_into(staging, request, log, started_wall, deadline, scrubber)
        down = _processes_down(staging)
        findings = _findings(staging)
        if progress:
            progress(f"packing {request.fmt}" + (" (encrypted)" if request.password else ""))
        path = archive.pack(staging, request.output_dir, name, request.fmt, request.password)
        mapping = None
        if request.keep_mapping and scrubber.pseudonymizer is not None:
            mapping = archive.write_mapping_beside(path, scrubber.pseudonymizer.mapping)
    except BundleWriteError as exc:
        raise OutputError(str(exc)) from exc
    except OSError as exc:
        raise OutputError(f"cannot write the bundle into {request.output_dir}: {exc.strerror or exc}") from exc
    finally:
        archive.remove_tree(staging)  # gone already when a `dir` bundle was renamed into place
    return CollectResult(path, archive.size_of(path), time.monotonic() - started, outcomes, down, mapping, findings)


def _processes_down(staging: Path) -> Optional[List[str]]:
    """The processes down, or None when the bundle holds no usable process data."""
    from collector.analyzers.evidence import processes_down

    return processes_down(BundleReader(staging))


def _findings(staging: Path) -> List[dict]:
    from collector.analyzers import read_findings

    return read_findings(BundleReader(staging)) or []

