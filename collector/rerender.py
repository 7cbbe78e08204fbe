"""`akdiag report BUNDLE`: today's analyzers and summary over an existing bundle (a
folder, a .7z or a .tar.gz), written beside it, never into it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from collector import __version__
from collector.analyzers import Analysis, analyze
from collector.analyzers.timeline import build_timeline
from collector.bundle import schema
from collector.bundle.reader import BundleError, open_bundle
from collector.bundle.writer import BundleWriter, json_bytes
from collector.catalog import Catalog
from collector.redact import Scrubber

_BUNDLE_SUFFIX = re.compile(r"(\.tar\.gz|\.tgz|\.tar|\.7z)$")


class NewerSchemaError(BundleError):
    """The bundle was written by a newer akdiag whose files this one may misread."""


@dataclass
class Rerendered:
    schema_version: Optional[int]
    html_path: Path
    findings_path: Path
    analysis: Analysis
    timeline_path: Optional[Path] = None


def default_output(bundle: Path, folder: Optional[Path] = None) -> Path:
    """<bundle name>.summary.html in `folder` (default: the current folder)."""
    stem = _BUNDLE_SUFFIX.sub("", Path(bundle).resolve().name) or "bundle"
    return (folder or Path.cwd()) / f"{stem}.summary.html"


def findings_path_for(html: Path) -> Path:
    name = html.name[:-len(".summary.html")] if html.name.endswith(".summary.html") else html.stem
    return html.with_name(f"{name}.findings.json")


def timeline_path_for(html: Path) -> Path:
    findings = findings_path_for(html)
    return findings.with_name(findings.name[:-len(".findings.json")] + ".timeline.json")


def check_schema(version: object) -> None:
    if isinstance(version, int) and not isinstance(version, bool) and version > schema.SCHEMA_VERSION:
        raise NewerSchemaError(
            f"this bundle has schema version {version}, newer than akdiag {__version__} reads "
            f"(up to {schema.SCHEMA_VERSION}): upgrade akdiag to re-render it")


def rerender(bundle: Path, output: Path, catalog: Catalog, password: Optional[str] = None,
             render_cluster: Optional[Callable[[Path, Path, Catalog], Rerendered]] = None) -> Rerendered:
    """Analyze the bundle, build its timeline and render its summary; write the summary
    to `output`, the findings and the timeline beside it.
    A cluster archive goes to `render_cluster(root, output, catalog)`, which the command
    line passes in (collector.cluster.report.rerender_cluster): this host-level module
    never imports the cluster package.
    Raises BundleError (NewerSchemaError for a newer bundle) and BundleWriteError."""
    from collector import report

    with open_bundle(Path(bundle), password) as reader:
        if reader.exists(schema.CLUSTER_MANIFEST):
            if render_cluster is None:
                raise BundleError(f"{bundle} is a cluster archive: render it with `akdiag report`")
            return render_cluster(reader.root, output, catalog)
        version = reader.schema_version
        check_schema(version)
        analysis = analyze(reader, catalog.thresholds)
        timeline = build_timeline(reader)
        html = report.render_bundle(reader, analysis.as_dict(), timeline)
    output = Path(output)
    findings = findings_path_for(output)
    # Both are made of the bundle's own files, scrubbed when it was collected, and of
    # akdiag's words: scrubbing again would only change pseudonyms that were already made.
    writer = BundleWriter(output.parent, Scrubber(()))
    writer.write_unscrubbed_bytes(output.name, html.encode("utf-8", "surrogateescape"), "report")
    writer.write_unscrubbed_bytes(findings.name, json_bytes(analysis.as_dict()), "report")
    timeline_file = timeline_path_for(output)
    writer.write_unscrubbed_bytes(timeline_file.name, json_bytes(timeline), "report")
    return Rerendered(version if isinstance(version, int) else None, output, findings, analysis, timeline_file)
