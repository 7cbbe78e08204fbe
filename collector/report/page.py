"""The page: the Jinja2 set-up every akdiag page shares (host summary, diff, cluster),
its inline script and output hygiene, and the summary's assembly from the sections."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple

import jinja2

from collector import TOOL_NAME, __version__
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.plain import as_dict
from collector.report.akd import MAX_AKD_STDOUT_BYTES, akd_view
from collector.report.charts import history_view
from collector.report.collectors import collectors_note, collectors_view, redactions_note, redactions_view
from collector.report.config import config_view
from collector.report.datastores import datastores_view
from collector.report.findings import Anchors, findings_view, logs_named
from collector.report.format import FILTERS
from collector.report.header import akd_platform_version, header_view, manifest_note
from collector.report.host import host_view
from collector.report.limits import PageThresholds
from collector.report.logs import TAIL_BYTES, TAIL_LINES, logs_view
from collector.report.processes import pidfiles_view, ports_view, processes_problem, processes_view
from collector.report.sources import Sources
from collector.report.ticket import ticket_text
from collector.report.templatecache import bytecode_cache, cache_folder
from collector.report.timeline import timeline_view
from collector.report.verdict import findings_verdict, processes_verdict

TEMPLATE = "summary.html.j2"
SCRIPT = "script.js.j2"  # plain JavaScript; named .j2 so that it ships with the templates
TEMPLATES_PACKAGE = "collector.report_templates"


def templates_dir() -> Path:
    """The folder holding the report templates and style: the ones beside this code (a
    wheel's `collector/report_templates/`, a source checkout's `report_templates/`), else
    the package `collector.report_templates` wherever it is found (a zip).  The code's own
    come first: an editable install of another checkout must not lend its templates."""
    here = Path(__file__).resolve().parents[1]
    for own in (here / "report_templates", here.parent / "report_templates"):
        if (own / TEMPLATE).is_file():
            return own
    try:
        from importlib.resources import files

        candidate = files(TEMPLATES_PACKAGE)
        path = candidate if isinstance(candidate, Path) else Path(str(candidate))
        if (path / TEMPLATE).is_file():
            return path
    except (ImportError, TypeError, ValueError, OSError):
        pass
    return Path(__file__).resolve().parents[2] / "report_templates"


_ENVIRONMENTS: Dict[Optional[Path], jinja2.Environment] = {}
_ENVIRONMENTS_LOCK = threading.Lock()


def environment(basedir: Optional[str] = None) -> jinja2.Environment:
    """The Jinja2 environment of every akdiag page: autoescaped, forgiving of
    missing values, with the formatting filters registered.  One per process (its
    templates compiled once), with the compiled code kept between runs in akdiag's
    state folder where that is safe (templatecache.py; never inside `basedir`)."""
    folder = cache_folder((basedir,))
    with _ENVIRONMENTS_LOCK:
        env = _ENVIRONMENTS.get(folder)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(templates_dir())),
                autoescape=True,
                undefined=jinja2.ChainableUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                bytecode_cache=bytecode_cache(folder),
            )
            env.filters.update(FILTERS)
            _ENVIRONMENTS[folder] = env
        return env


def _script(env: jinja2.Environment) -> Tuple[str, str]:
    """(the page's script, its CSP hash source)."""
    source = env.loader.get_source(env, SCRIPT)[0].strip() + "\n"
    digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
    return source, f"'sha256-{digest}'"


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_C1_OR_SURROGATE = re.compile("[\x80-\x9f\ud800-\udfff]")


def _clean_output(html: str) -> str:
    """Control characters from logs and command lines shown as visible symbols
    (ESC as U+241B), lone surrogates and C1 controls as U+FFFD: the page stays valid
    UTF-8 and valid HTML whatever bytes the host had."""
    html = html.replace("\r\n", "\n").replace("\r", "\u240d")
    html = _CONTROL.sub(lambda m: "\u2421" if m.group() == "\x7f" else chr(0x2400 + ord(m.group())), html)
    return _C1_OR_SURROGATE.sub("\ufffd", html)


def _own_findings(reader: BundleReader, findings: Optional[dict]) -> Optional[dict]:
    if findings is None:
        findings = reader.json(schema.FINDINGS)
    return findings if isinstance(findings, dict) else None


def _findings_note(view: dict) -> Optional[str]:
    if view["available"]:
        return None
    return (f"{schema.FINDINGS} is missing from this bundle (an older akdiag wrote it, or its analysis failed): "
            "run `akdiag report` on the bundle to analyze it with this akdiag.")


def build_context(reader: BundleReader, findings: Optional[dict] = None, timeline: Optional[dict] = None) -> dict:
    """Everything the summary template shows, normalized from the bundle.  `findings`:
    a findings.json-shaped dict to show instead of the bundle's own findings.json; the
    thresholds it records colour the tables.  `timeline`: likewise for timeline.json."""
    manifest = as_dict(reader.manifest)
    sources = Sources(reader, manifest)
    findings = _own_findings(reader, findings)
    thresholds = PageThresholds(findings)
    system, system_note = sources.load(schema.SYSTEM)
    processes_data, processes_note = sources.load(schema.PROCESSES)
    problem = processes_problem(reader)
    processes_note = processes_note or (f"The processes could not be checked: {problem}." if problem else None)
    pidfiles_data, pidfiles_note = sources.load(schema.PIDFILES)
    ports_data, ports_note = sources.load(schema.PORTS)
    akd_data, akd_note = sources.load(schema.AKD)
    config_data, config_note = sources.load(schema.CONFIG_INDEX)
    logs_data, logs_note = sources.load(schema.LOGS_INDEX)
    datastores_data, datastores_note = sources.load(schema.DATASTORES)
    redactions_data = reader.json(schema.REDACTIONS)
    redactions_data = redactions_data if isinstance(redactions_data, dict) else None

    processes = processes_view(processes_data, thresholds)
    collectors = collectors_view(manifest)
    host, datastores = host_view(system, thresholds), datastores_view(datastores_data)
    logs = logs_view(reader, logs_data, logs_named(findings))
    found = findings_view(findings, Anchors(processes, host, datastores, logs))
    if found["available"]:
        verdict = findings_verdict(found)
    else:
        verdict = processes_verdict(processes if processes_data is not None and not problem else None, collectors,
                                    sources.missing, problem or "processes.json missing")
    header = header_view(manifest, system, akd_platform_version(reader, akd_data))
    return {
        "tool": {"name": TOOL_NAME, "version": __version__},
        "header": header, "ticket": ticket_text(manifest, header, verdict, found),
        "manifest_note": manifest_note(manifest),
        "verdict": verdict,
        "findings": found, "findings_note": _findings_note(found),
        "timeline": timeline_view(timeline if timeline is not None else reader.json(schema.TIMELINE)),
        "history": history_view(reader),
        "datastores": datastores, "datastores_note": datastores_note,
        "missing_files": sources.missing,
        "processes": processes, "processes_note": processes_note,
        "host": host, "host_note": system_note,
        "pidfiles": pidfiles_view(pidfiles_data), "pidfiles_note": pidfiles_note,
        "ports": ports_view(ports_data, processes), "ports_note": ports_note,
        "akd": akd_view(reader, akd_data), "akd_note": akd_note,
        "config": config_view(config_data), "config_note": config_note,
        "logs": logs, "logs_note": logs_note,
        "collectors": collectors, "collectors_note": collectors_note(manifest),
        "redactions": redactions_view(redactions_data), "redactions_note": redactions_note(redactions_data),
        "limits": {"akd_stdout": MAX_AKD_STDOUT_BYTES, "tail_lines": TAIL_LINES, "tail_bytes": TAIL_BYTES,
                   "fd_warn": thresholds.number("process_open_files_percent_warning")},
    }


def render_page(template_name: str, context: dict, basedir: Optional[str] = None) -> str:
    """A self-contained page from one of the report templates, with the inline script
    (and its Content-Security-Policy hash) every page shares.  `basedir`: a BASEDIR the
    compiled templates' cache must not be inside."""
    env = environment(basedir)
    try:
        template = env.get_template(template_name)
        script, script_hash = _script(env)
    except jinja2.TemplateNotFound as exc:
        raise FileNotFoundError(f"report template {exc.name} not found in {templates_dir()}") from exc
    return _clean_output(template.render(script=script, script_hash=script_hash, **context))


def render_bundle(reader: BundleReader, findings: Optional[dict] = None, timeline: Optional[dict] = None) -> str:
    """The summary.html of a bundle, as text.  `findings` (findings.json's shape) replaces
    the bundle's own findings.json, e.g. today's analysis of an old bundle; the
    thresholds it records are the colour limits of the tables."""
    basedir = as_dict(reader.manifest).get("basedir")
    return render_page(TEMPLATE, build_context(reader, findings, timeline),
                       basedir if isinstance(basedir, str) else None)
