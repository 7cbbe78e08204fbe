"""The page's header: the host, BASEDIR, the platform's and akdiag's versions, when the
bundle was collected, and the note on a run cut short or a manifest missing."""

from __future__ import annotations

import re
from typing import Optional

from collector import TOOL_NAME
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.plain import as_dict, number
from collector.report.sources import read_head

PLATFORM_VERSION = re.compile(r"Altcraft platform\s+(v?\d[\w.\-]*)", re.I)


def akd_platform_version(reader: BundleReader, akd_data: Optional[dict]) -> Optional[str]:
    """The platform's version: the first line of `akd --processes` ("Altcraft platform
    vX"), else a version key of config/main.json; None when neither tells."""
    path, _problem = reader.member(as_dict(akd_data).get("stdout"), schema.COMMANDS_DIR + "/")
    if path:
        try:
            first = read_head(path, 4096)[0].lstrip().split("\n", 1)[0]
        except OSError:
            first = ""
        match = PLATFORM_VERSION.search(first)
        if match:
            return match.group(1)
    config = as_dict(reader.json("config/main.json"))
    for key in ("PLATFORM_VERSION", "VERSION", "version"):
        if isinstance(config.get(key), str) and config[key].strip() and len(config[key]) < 64:
            return config[key].strip()
    return None


def platform_version(reader: BundleReader) -> Optional[str]:
    """The platform's version as the bundle tells it, or None."""
    return akd_platform_version(reader, reader.json(schema.AKD))


def header_view(manifest: dict, system: Optional[dict], platform_version: Optional[str] = None) -> dict:
    system = system or {}
    basedir = as_dict(system.get("basedir"))
    tool = as_dict(manifest.get("tool"))
    return {
        "host": manifest.get("hostname") or system.get("hostname"),
        "fqdn": system.get("fqdn"),
        "basedir": manifest.get("basedir") or basedir.get("path"),
        "basedir_source": manifest.get("basedir_source") or basedir.get("source"),
        "basedir_exists": basedir.get("exists"),
        "label": manifest.get("label"),
        "case_id": manifest.get("case_id") if isinstance(manifest.get("case_id"), str) else None,
        "trimmed": trimmed_view(manifest),
        "platform_version": platform_version,
        "started_at": manifest.get("started_at"),
        "finished_at": manifest.get("finished_at"),
        "tool_name": tool.get("name") or TOOL_NAME,
        "tool_version": tool.get("version"),
        "command_line": manifest.get("command_line"),
        "schema_version": manifest.get("schema_version"),
        "newer_schema": isinstance(number(manifest.get("schema_version")), int)
        and manifest.get("schema_version") > schema.SCHEMA_VERSION,
    }


def trimmed_view(manifest: dict) -> Optional[dict]:
    """What --max-size cut from the log tails (manifest size_budget), or None."""
    from collector.units import format_size

    budget = as_dict(manifest.get("size_budget"))
    trimmed = [t for t in budget.get("trimmed") or [] if isinstance(t, dict)]
    if not trimmed:
        return None
    removed = sum(number(t.get("bytes_removed")) or 0 for t in trimmed)
    return {"max_size": format_size(number(budget.get("max_size")) or 0), "removed": format_size(removed),
            "files": [{"path": t.get("path"), "reason": t.get("reason"),
                       "removed": format_size(number(t.get("bytes_removed")) or 0),
                       "kept": format_size(number(t.get("bytes_after")) or 0)} for t in trimmed]}


def manifest_note(manifest: dict) -> Optional[str]:
    """What the reader must know before the rest: the run was cut short, or the manifest
    is missing."""
    if isinstance(manifest.get("cut"), str) and manifest["cut"]:
        return (f"This run was cut short ({manifest['cut']}): what it collected is here, "
                "what it had no time for is not.")
    if not manifest:
        return ("manifest.json is missing or unreadable: host, times and collector results "
                "below come from the other files where they can.")
    return None
