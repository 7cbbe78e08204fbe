"""The collectors section (each collector's outcome, from the manifest) and the
redactions section (how many values were redacted, by rule and by file)."""

from __future__ import annotations

from typing import List, Optional

from collector.bundle import schema
from collector.plain import as_dict, dicts, number
from collector.report.format import left_out
from collector.report.sources import MAX_TABLE_ROWS

MAX_BY_FILE_ROWS = 1000  # the page's "by file" table; all are in redactions.json


def collectors_view(manifest: dict) -> List[dict]:
    return dicts(manifest.get("collectors"))


def collectors_note(manifest: dict) -> Optional[str]:
    return None if manifest else "No collector results: manifest.json is missing."


def redactions_view(data: Optional[dict]) -> dict:
    data = data or {}
    by_rule = sorted(as_dict(data.get("by_rule")).items(), key=lambda kv: (-(number(kv[1]) or 0), str(kv[0])))
    by_file = sorted(dicts(data.get("by_file")), key=lambda r: -(number(r.get("count")) or 0))
    return {"total": data.get("total"), "by_rule": by_rule[:MAX_TABLE_ROWS], "by_file": by_file[:MAX_BY_FILE_ROWS],
            "by_file_left_out": left_out(len(by_file) - MAX_BY_FILE_ROWS, "files with redactions", "all are in",
                                         schema.REDACTIONS)}


def redactions_note(data: Optional[dict]) -> Optional[str]:
    if isinstance(data, dict):
        return None
    return (f"{schema.REDACTIONS} is missing or unreadable: the number of values "
            "redacted is unknown (the redaction itself happened as each file was written).")
