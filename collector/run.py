"""One collection run: resolve BASEDIR, run every collector under its time bound,
render the summary from the bundle's own files, write the manifest, pack atomically."""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from collector import TOOL_NAME, __version__, interrupt, tempfiles
from collector.basedir import basedir_problem
from collector.bundle import archive, prepack, schema
from collector.bundle.reader import BundleReader
from collector.bundle.budget import BudgetTooSmall
from collector.bundle.handoff import Handoff, case_bundle_name, place
from collector.bundle.writer import BundleWriter, BundleWriteError, file_records_as_dicts, json_bytes
from collector.catalog import Catalog
from collector.collectors import CollectorSpec, load, registry
from collector.context import CollectOptions, Context, Deadline, ProcessSnapshot, SocketSnapshot
from collector.live import iso_utc, path_inside
from collector.redact import DEFAULT_PII_KINDS, Scrubber
from collector.run_steps import analyze_into, phase_deadlines, render_into
from collector.userpattern import timed_out

Progress = Callable[[str], None]


class OutputError(Exception):
    """No bundle could be written (output folder missing or not writable, disk full)."""

    exit_code = 3  # collector.console.EXIT_OUTPUT; 2 (bad input) for a --max-size too small


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
    spent_before: float = 0.0  # seconds of the deadline spent before collect() (start-up, the catalog)
    pseudonym_key: Optional[bytes] = None  # --pseudonym-key: the same pseudonyms in every run
    handoff: Handoff = field(default_factory=Handoff)  # --case-id, --max-size, --split
    judged: bool = True  # False: the facts only, no findings/timeline/summary (`check` judges them itself)
    socket_snapshot: Optional[dict] = None  # set by the run: how the host's sockets were read (manifest)


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
    cut: Optional[str] = None  # why the run was cut short by its deadline (what it had is in the bundle)
    volumes: List[Path] = field(default_factory=list)  # --split: every volume, first one first
    checksum: Optional[Path] = None  # the .sha256 file beside the archive (hand-off options)
    trimmed: List[dict] = field(default_factory=list)  # --max-size: the log tails cut, and by how much


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
        interrupt.checkpoint()
        if thread.is_alive():
            ctx.writer.close()
            message = f"did not finish within {limit:.1f} s; its results were left out"
            log(f"collector {spec.name} {message}")
            outcomes.append(CollectorOutcome(spec.name, "timeout", limit, message, None))
            _log_ended(outcomes[-1], log)
            continue
        try:
            outcomes.append(_outcome_from(spec, box, writer, log))
        except BundleWriteError:
            raise
        except Exception as exc:  # data that cannot be serialized: recorded
            outcomes.append(CollectorOutcome(spec.name, "failed", box.get("duration", 0.0),
                                             f"{type(exc).__name__}: {exc}", None))
        _log_ended(outcomes[-1], log)
    return outcomes


def _log_ended(outcome: CollectorOutcome, log: ToolLog) -> None:
    """The progress line counts these (collector.console_progress): keep the words."""
    log(f"collected {outcome.name}: {outcome.status} ({outcome.duration:.1f} s)")


def _selected(options: CollectOptions) -> List[CollectorSpec]:
    specs = list(registry().values())
    return [s for s in specs if (options.only is None or s.name in options.only)]


def _skipped(options: CollectOptions) -> List[CollectorOutcome]:
    return [CollectorOutcome(s.name, "skipped", 0.0, "not selected for this run", None)
            for s in registry().values() if options.only is not None and s.name not in options.only]


def make_staging(output_dir: Path, name: str, basedir: Optional[Path] = None) -> Path:
    """A private working folder in the output folder, where the bundle is built before
    it is packed under its final name (`name`).  Its name carries this run's PID, so that a
    later run removes it if this one is killed; such leftovers of dead runs are removed here."""
    if basedir is not None and path_inside(output_dir, basedir):
        raise OutputError(f"output folder {output_dir} is inside BASEDIR {basedir}, where akdiag never writes: "
                          "choose another with --output (e.g. --output /var/tmp)")
    if not output_dir.is_dir():
        raise OutputError(f"output folder {output_dir} does not exist")
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {output_dir} is not writable")
    tempfiles.sweep(output_dir, ("stage", "partial"))
    try:
        return tempfiles.make_folder("stage", str(output_dir))
    except OSError as exc:
        raise OutputError(f"cannot create a working folder in {output_dir}: {exc.strerror or exc}") from exc


def collect_into(staging: Path, request: CollectRequest, log: ToolLog, started_wall: float,
                 deadline: Deadline, scrubber: Scrubber, writer: Optional[BundleWriter] = None,
                 after_collectors: Optional[Callable[[], None]] = None) -> Tuple[List[CollectorOutcome], Optional[str]]:
    """Fill `staging` with a complete bundle (everything but the archive step); with the
    outcomes, why the run was cut short (None when it was not).  `after_collectors` runs
    once the collectors' files are written (the archive's early part starts there)."""
    writer = writer or BundleWriter(staging, scrubber)
    steps = phase_deadlines(deadline, request.timeout)
    collectors_deadline = steps["collectors"]
    sockets = SocketSnapshot()  # the host's sockets, read once for every collector of the run
    processes = ProcessSnapshot()  # and its process table

    def make_ctx(spec: CollectorSpec) -> Context:
        return Context(basedir=request.basedir, basedir_source=request.basedir_source, catalog=request.catalog,
                       deadline=collectors_deadline.child(spec.timeout), writer=writer.for_collector(spec.name),
                       options=request.options, sockets=sockets, processes=processes)

    problem = basedir_problem(request.basedir)
    if problem:
        log(f"BASEDIR {request.basedir} (from {request.basedir_source}) {problem}; collecting host facts "
            "anyway, and each collector records what it could not read")
    # the modules imported here, not in the collectors' threads (nor by a dry run's plan)
    outcomes = run_collectors(load(_selected(request.options)), make_ctx, collectors_deadline, writer, log)
    outcomes += _skipped(request.options)
    if after_collectors is not None:
        after_collectors()
    request.socket_snapshot = sockets.summary()
    _write_redactions(writer, scrubber, request)  # provisional, so the report can show the counts
    writer.write_json(schema.MANIFEST, _manifest(request, outcomes, started_wall, writer))  # provisional, read by both
    cut = analyze_into(staging, writer, request.catalog.thresholds, steps["analysis"], log) if request.judged else None
    if cut:  # for the summary to say so
        writer.write_json(schema.MANIFEST, _manifest(request, outcomes, started_wall, writer, cut))
    if request.judged:
        cut = render_into(staging, writer, steps["rendering"], log) or cut
    if cut:
        log(f"run cut short: {cut}; what was collected is in the bundle")
    _log_timed_out_patterns(scrubber, log)
    writer.write_text(schema.TOOL_LOG, log.text())
    writer.write_json(schema.MANIFEST, _manifest(request, outcomes, started_wall, writer, cut))
    _write_redactions(writer, scrubber, request)  # final: the manifest's, summary's and log's counts too
    writer.write_json(schema.MANIFEST, _manifest(request, outcomes, started_wall, writer, cut))  # its final hash
    return outcomes, cut


def _log_timed_out_patterns(scrubber: Scrubber, log: ToolLog) -> None:
    for rule, lines in timed_out(scrubber.rules).items():
        log(f"redaction pattern {rule} ran out of time on {lines} line(s); they were withheld")


def _write_redactions(writer: BundleWriter, scrubber: Scrubber, request: CollectRequest) -> None:
    # Counts and rule names the tool computed itself: nothing in it can be a secret, and
    # scrubbing it would mask counts whose rule names sound like secret keys.
    writer.write_unscrubbed_bytes(schema.REDACTIONS, json_bytes(
        {"total": scrubber.counts.total(), "by_rule": scrubber.counts.by_rule(),
         "by_file": scrubber.counts.as_records(), "pseudonymized": list(request.pii_kinds),
         "timed_out": timed_out(scrubber.rules)}))


def _manifest(request: CollectRequest, outcomes: List[CollectorOutcome], started_wall: float,
              writer: BundleWriter, cut: Optional[str] = None) -> dict:
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "hostname": request_hostname(request, writer.scrubber),
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
        "socket_snapshot": request.socket_snapshot,
        "cut": cut,
        **request.handoff.manifest_fields(),
        "files": [f for f in file_records_as_dicts(writer.files()) if f["path"] != schema.MANIFEST],
    }


def collect(request: CollectRequest, progress: Optional[Progress] = None) -> CollectResult:
    started = time.monotonic()
    started_wall = time.time()
    deadline = Deadline(max(0.0, request.timeout - request.spent_before))  # the catalog's reading counts
    log = ToolLog(progress)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_wall))
    scrubber = Scrubber.for_bundle(request.pii_kinds,
                                   tuple(request.catalog.redact) + tuple(request.extra_redact_patterns),
                                   pseudonym_key=request.pseudonym_key)
    name = case_bundle_name(request_hostname(request, scrubber), request.label, stamp, request.handoff.case_id)
    staging = make_staging(request.output_dir, name, request.basedir)
    writer: Optional[BundleWriter] = None
    early = None
    try:
        log(f"{TOOL_NAME} {__version__}: BASEDIR {request.basedir} ({request.basedir_source})")
        writer = BundleWriter(staging, scrubber)
        early = prepack.for_run(staging, request.output_dir, name, request.fmt, request.password, writer)
        outcomes, cut = collect_into(staging, request, log, started_wall, deadline, scrubber, writer,
                                     early.start if early is not None else None)
        writer.close()  # a collector still running (timed out) writes nothing into what is packed
        # what the printout says; `check` (not judged) judges the folder itself
        down = _processes_down(staging) if request.judged else None
        findings = _findings(staging) if request.judged else []
        if progress:
            progress(f"packing {request.fmt}" + (" (encrypted)" if request.password else ""))
        placed = place(staging, request.output_dir, name, request.fmt, request.password, request.handoff,
                               writer, lambda: _refresh(staging, writer, request, outcomes, started_wall, cut, log),
                               progress, early)
        path = placed.path
        mapping = None
        if request.keep_mapping and scrubber.pseudonymizer is not None:
            mapping = archive.write_mapping_beside(path, scrubber.pseudonymizer.mapping)
    except BudgetTooSmall as exc:
        error = OutputError(str(exc))
        error.exit_code = 2  # bad input: the budget, not the disk
        raise error from exc
    except BundleWriteError as exc:
        raise OutputError(str(exc)) from exc
    except OSError as exc:
        raise OutputError(f"cannot write the bundle into {request.output_dir}: {exc.strerror or exc}") from exc
    finally:
        if early is not None:
            early.discard()
        if writer is not None:
            writer.close()  # collector threads stop writing before the folder is removed
        archive.remove_tree(staging)  # gone already when a `dir` bundle was renamed into place
    return CollectResult(path, placed.size, time.monotonic() - started, outcomes, down, mapping, findings,
                         cut, placed.volumes, placed.checksum, list(request.handoff.trimmed))


REFRESH_SECONDS = 30.0


def _refresh(staging: Path, writer: BundleWriter, request: CollectRequest, outcomes: List[CollectorOutcome],
             started_wall: float, cut: Optional[str], log: ToolLog) -> None:
    """After --max-size trimmed log tails: the manifest and the summary say so, and the
    manifest's hashes are the files' again."""
    log(f"log tails trimmed to fit --max-size: {len(request.handoff.trimmed)} file(s)", show=False)
    writer.write_json(schema.MANIFEST, _manifest(request, outcomes, started_wall, writer, cut))
    render_into(staging, writer, Deadline(REFRESH_SECONDS), log)
    writer.write_text(schema.TOOL_LOG, log.text())
    _write_redactions(writer, writer.scrubber, request)
    writer.write_json(schema.MANIFEST, _manifest(request, outcomes, started_wall, writer, cut))


def request_hostname(request: CollectRequest, scrubber: Scrubber) -> str:
    """This host's name, or its pseudonym with --pseudonymize hosts (the bundle's name,
    its top folder and its manifest then never spell it)."""
    name = socket.gethostname()
    if "hosts" in request.pii_kinds and scrubber.pseudonymizer is not None:
        return scrubber.pseudonymizer.token("host", name)
    return name


def _processes_down(staging: Path) -> Optional[List[str]]:
    """The processes down, or None when the bundle holds no usable process data."""
    from collector.analyzers.evidence import processes_down

    return processes_down(BundleReader(staging))


def _findings(staging: Path) -> List[dict]:
    from collector.analyzers import read_findings

    return read_findings(BundleReader(staging)) or []

