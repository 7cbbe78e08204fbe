"""The logs section: the log index, and the tail of each log with its lines numbered as
in the bundle's tail file, the ones worth reading (errors, panics, ...) marked and
given an anchor that a finding links to.  All tails together stay within a budget so
that the page stays openable."""

from __future__ import annotations

from typing import Collection, Dict, List, Optional, Tuple

from collector.bundle import schema
from collector.bundle.reader import MAX_INDEX_ENTRIES, BundleReader
from collector.logindex import count_records, log_records
from collector.plain import as_dict
from collector.report.format import human_bytes, left_out, strings
from collector.report.sources import MAX_TABLE_ROWS, count_lines, read_tail

TAIL_LINES = 200  # the last lines of each log tail shown in the HTML
TAIL_BYTES = 64 * 1024
# All tails together, their markup counted (LINE_MARKUP_BYTES a line), and how many
# tails and index rows the page lists at most: summary.html stays under 5 MB whatever
# the host (test_report_size.py), the rest is named in the page and kept in the bundle.
TAILS_TOTAL_BYTES = 1280 * 1024
LINE_MARKUP_BYTES = 64
MAX_TAILS = 150
MAX_INDEX_ROWS = 1000


def _number_lines(entry: dict, text: str, first_number: int) -> None:
    """The shown lines with their numbers in the bundle's tail file, the ones worth
    highlighting (errors, panics, ...) marked and given an anchor."""
    from collector.analyzers.logs import classify_lines

    kinds = classify_lines(text) if text else {}
    numbered = []
    for offset, line in enumerate(text.split("\n") if text else []):
        number = first_number + offset
        kind = kinds.get(offset + 1)
        anchor = f"{entry['anchor']}-L{number}" if kind else None
        if anchor:
            entry["marked"][number] = anchor
        numbered.append({"n": number, "text": line, "kind": kind, "anchor": anchor})
    entry["numbered"] = numbered
    entry["marked_count"] = len(entry["marked"])


def _tail_entry(record: dict, tail: dict, index: int) -> dict:
    return {"path": record.get("path"), "bundle_path": tail.get("bundle_path"), "lines": tail.get("lines"),
            "bytes": tail.get("bytes"), "first_line_cut": tail.get("first_line_cut"),
            "window": as_dict(record.get("window")) or None,  # --since: {since, first_time, last_time, cut}
            "anchor": f"log-{index}", "numbered": [], "marked": {}, "marked_count": 0,
            "text": None, "shown_lines": 0, "capped": False, "note": None}


def _show_tail(reader: BundleReader, entry: dict, budget: int) -> int:
    """Fills the entry with the tail's last lines, or a note why not; the budget left."""
    bundle_path = entry["bundle_path"]
    path, problem = reader.member(bundle_path, schema.LOGS_DIR + "/")
    if not path:
        entry["note"] = problem
        return budget
    if budget <= 0:
        entry["note"] = (f"not shown: the summary already holds {human_bytes(TAILS_TOTAL_BYTES)} of log tails; "
                         f"read {bundle_path} in the bundle")
        return budget
    try:
        text, shown, capped = read_tail(path, TAIL_LINES, min(TAIL_BYTES, budget))
        total = count_lines(path)
    except OSError as exc:
        entry["note"] = f"cannot read {bundle_path}: {exc.strerror or exc}"
        return budget
    entry.update(text=text, shown_lines=shown, capped=capped)
    _number_lines(entry, text, total - shown + 1)
    return budget - len(text.encode("utf-8", "replace")) - LINE_MARKUP_BYTES * shown


def _count_by(records: List[dict], key: str) -> List[Tuple[str, int]]:
    counts: Dict[str, int] = {}
    for record in records:
        value = str(record.get(key) or "unknown")
        counts[value] = counts.get(value, 0) + 1
    return sorted(counts.items())


def _tail_records(files: List[dict], wanted: Collection[str]) -> List[dict]:
    """The records with a tail in the bundle, those a finding names first (the page links
    them), then in the index's order."""
    with_tail = [r for r in files if as_dict(r.get("tail")).get("bundle_path")]
    return sorted(with_tail, key=lambda r: str(r.get("path")) not in wanted)  # stable: the index's order


def logs_view(reader: BundleReader, data: Optional[dict], wanted: Collection[str] = ()) -> dict:
    """`wanted`: log paths the findings name, whose tails are shown first."""
    data = data or {}
    files = log_records(data, MAX_INDEX_ENTRIES + 1)  # BASEDIR's logs, then the datastores' own
    errors = strings(data.get("errors"), schema.LOGS_INDEX)
    if len(files) > MAX_INDEX_ENTRIES:  # akdiag's own index stops there: a damaged or crafted one
        errors.append(f"{schema.LOGS_INDEX} lists {count_records(data)} files, more than akdiag ever lists; "
                      f"only the first {MAX_INDEX_ENTRIES} are read")
        files = files[:MAX_INDEX_ENTRIES]
    budget = TAILS_TOTAL_BYTES
    tails = []
    records = _tail_records(files, set(wanted))
    for record in records[:MAX_TAILS]:
        tails.append(_tail_entry(record, as_dict(record.get("tail")), len(tails)))
        budget = _show_tail(reader, tails[-1], budget)
    rows = min(len(files), MAX_INDEX_ROWS, MAX_TABLE_ROWS)
    return {
        "root": data.get("root"),
        "exists": data.get("exists"),
        "limits": as_dict(data.get("limits")),
        "totals": as_dict(data.get("totals")),
        "files": files[:rows],
        "files_total": len(files),
        "files_left_out": left_out(len(files) - rows, "log files", "every file is listed in", schema.LOGS_INDEX),
        "states": _count_by(files, "state"),
        "tails": tails,
        "tails_left_out": left_out(len(records) - len(tails), "log tails",
                                   f"they are in the {schema.LOGS_DIR}/ folder, each named in", schema.LOGS_INDEX),
        "errors": errors,
    }
