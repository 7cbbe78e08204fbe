"""The collection itself: a BASEDIR that is not there, collectors that failed, timed out
or had gaps.  Reads the manifest and system.json."""

from __future__ import annotations

from typing import List

from collector.analyzers.common import as_dict, dicts, load
from collector.analyzers.findings import CRITICAL, INFO, WARNING, Finding, Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    manifest = as_dict(reader.manifest)
    findings = _basedir(reader, manifest)
    for outcome in dicts(manifest.get("collectors")):
        findings += _collector(outcome)
    return findings


def _basedir(reader: BundleReader, manifest: dict) -> List[Finding]:
    basedir = as_dict((load(reader, schema.SYSTEM) or {}).get("basedir"))
    if basedir.get("exists") is not False:
        return []
    path = basedir.get("path") or manifest.get("basedir")
    source = basedir.get("source") or manifest.get("basedir_source")
    return [Finding(
        "basedir.missing", CRITICAL, str(path), f"BASEDIR {path} (from {source}) is not a folder on this host",
        schema.SYSTEM, {"path": path, "source": source},
        "The platform's files were not found: collect again with --basedir set to the platform's folder "
        "(the one holding akd, pids, logs and config).")]


def _collector(outcome: dict) -> List[Finding]:
    name, status, error = outcome.get("name"), outcome.get("status"), outcome.get("error")
    figures = {"collector": name, "status": status, "error": error, "duration": outcome.get("duration")}
    if status in ("failed", "timeout") and name != "processes":  # processes.not_checked says it, as critical
        words = "failed" if status == "failed" else "timed out"
        return [Finding(
            "collector.failed", WARNING, str(name), f"The {name} collector {words}" + (f": {error}" if error else ""),
            schema.MANIFEST, figures,
            "Its part of the bundle is missing, so findings about it cannot be made: see akdiag.log in the "
            "bundle, and collect again (with a longer --timeout if it timed out).")]
    if status == "partial":
        return [Finding(
            "collector.partial", INFO, str(name), f"The {name} collector had gaps: {error}", schema.MANIFEST,
            figures, "The rest of its data is in the bundle; the gaps are listed in its file's errors.")]
    return []
