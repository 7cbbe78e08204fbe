"""What could not be checked, and why: a collector that failed, or a bundle file whose
data has an unusable shape (null, wrong types, missing keys).  Absence of evidence is
never health: without usable process data the processes and their ports are
`processes.not_checked` / `ports.not_checked` (critical); another file that its collector
says it wrote but that cannot be used is `<area>.not_checked` (a warning: system, datastores,
logs, config, pidfiles, sockets; a collector that failed is already `collector.failed`).

`process_records` is the one judge of processes.json's shape: the terminal summary,
`check` and `report` ask it too, so none of them can say "none down" over missing data."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from collector.analyzers.common import as_dict, dicts
from collector.analyzers.findings import CRITICAL, WARNING, Finding, Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader

NOT_CHECKED_PROCESSES = "processes.not_checked"
NOT_CHECKED_PORTS = "ports.not_checked"

# file, its collector, the finding's area, what it lets akdiag check, the key that must
# hold a list (or None)
OTHER_AREAS = (
    (schema.SYSTEM, "system", "system", "the host's disks, memory, load and clock", None),
    (schema.DATASTORES, "datastores", "datastores", "the datastores", "endpoints"),
    (schema.LOGS_INDEX, "logs", "logs", "the platform's logs", "files"),
    (schema.CONFIG_INDEX, "config", "config", "the platform's configuration", "files"),
    (schema.PIDFILES, "pidfiles", "pidfiles", "the PID files", None),
    (schema.PORTS, "ports", "sockets", "the host's listening sockets", "listening"),
)
_FAILED = {"failed": "failed", "timeout": "timed out", "skipped": "was skipped"}


def kind_of(value: Any) -> str:
    """A JSON value's kind in words: null, a list, a string, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _outcome(reader: BundleReader, name: str) -> dict:
    for outcome in dicts(as_dict(reader.manifest).get("collectors")):
        if outcome.get("name") == name:
            return outcome
    return {}


def _collector_words(outcome: dict) -> Optional[str]:
    status = outcome.get("status")
    if not isinstance(status, str) or status not in _FAILED:
        return None
    name, error = outcome.get("name"), outcome.get("error")
    return f"the {name} collector {_FAILED[status]}" + (f": {error}" if error else "")


def _file_problem(reader: BundleReader, relpath: str, list_key: Optional[str]) -> Optional[str]:
    data = reader.json(relpath)
    if data is None:
        if not reader.exists(relpath):
            return f"{relpath} is missing from the bundle"
        return f"{relpath} holds null or is not valid JSON"
    if not isinstance(data, dict):
        return f"{relpath} holds {kind_of(data)}, not an object"
    if list_key and not isinstance(data.get(list_key), list):
        if list_key not in data:
            return f"{relpath} has no {list_key!r}"
        return f"{relpath}'s {list_key!r} is {kind_of(data.get(list_key))}, not a list"
    return None


def _record_problem(index: int, record: Any) -> Optional[str]:
    if not isinstance(record, dict):
        return f"record {index} is {kind_of(record)}"
    name = record.get("name")
    if not isinstance(name, str) or not name:
        return f"record {index} has no name"
    status = record.get("status")
    if status not in schema.PROCESS_STATUSES:
        return f"{name}'s status is {status!r}" if isinstance(status, str) else f"{name}'s status is {kind_of(status)}"
    return None


def process_records(reader: BundleReader) -> Tuple[List[dict], Optional[str]]:
    """(the usable records of processes.json's `expected`, why some or all could not be
    checked, or None when every record is usable)."""
    failed = _collector_words(_outcome(reader, "processes"))
    problem = _file_problem(reader, schema.PROCESSES, "expected")
    if problem:
        return [], f"{failed} ({problem})" if failed else problem
    records = reader.json(schema.PROCESSES)["expected"]
    if not records:
        return [], f"{schema.PROCESSES} lists no expected process"
    usable, bad = [], []
    for index, record in enumerate(records):
        why = _record_problem(index, record)
        (bad if why else usable).append(why or record)
    if bad:
        return usable, f"{len(bad)} of {len(records)} records in {schema.PROCESSES} are unusable: {_listed(bad)}"
    return usable, None


def _listed(reasons: List[str], shown: int = 3) -> str:
    more = f" and {len(reasons) - shown} more" if len(reasons) > shown else ""
    return "; ".join(reasons[:shown]) + more


def processes_down(reader: BundleReader) -> Optional[List[str]]:
    """The names of the processes down, or None when the process data cannot say."""
    records, problem = process_records(reader)
    if problem:
        return None
    return [r["name"] for r in records if r.get("status") == "down"]


def _ports_reason(records: List[dict], problem: Optional[str]) -> Optional[str]:
    """Why the ports cannot be judged: their states are in processes.json's records."""
    if problem and not records:
        return f"the port states come from {schema.PROCESSES}: {problem}"
    bad = []
    for record in records:
        port = record.get("port")
        if not isinstance(port, dict):
            bad.append(f"{record['name']}'s port record is {kind_of(port)}")
        elif port.get("state") not in schema.PORT_STATES:
            bad.append(f"{record['name']}'s port state is {port.get('state')!r}")
    return _listed(bad) if bad else None


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    records, problem = process_records(reader)
    findings = []
    if problem:
        findings.append(Finding(
            NOT_CHECKED_PROCESSES, CRITICAL, "processes", f"Processes could not be checked: {problem}",
            schema.PROCESSES, {"reason": problem, "usable_records": len(records)},
            "Whether the platform's processes run is unknown: this is not a sign of health. See akdiag.log in "
            "the bundle for why, and collect again (with a longer --timeout if the collector timed out).",
            area="processes"))
    ports = _ports_reason(records, problem)
    if ports:
        findings.append(Finding(
            NOT_CHECKED_PORTS, CRITICAL, "ports", f"Ports could not be checked: {ports}", schema.PROCESSES,
            {"reason": ports}, "Whether the platform's ports are held by its processes is unknown: this is not "
            "a sign of health. Collect again; see akdiag.log in the bundle.", area="ports"))
    return findings + _other_areas(reader)


def _other_areas(reader: BundleReader) -> List[Finding]:
    findings = []
    for relpath, collector, area, what, list_key in OTHER_AREAS:
        status = _outcome(reader, collector).get("status")
        if not isinstance(status, str) or status not in ("ok", "partial"):
            continue  # failed or timed out: collector.failed says it; skipped: nobody asked
        problem = _file_problem(reader, relpath, list_key)
        if problem:
            findings.append(Finding(
                f"{area}.not_checked", WARNING, area, f"{what[0].upper()}{what[1:]} could not be "
                f"checked: {problem}", relpath, {"reason": problem, "collector": collector,
                                                 "collector_status": status},
                "The collector reported success, yet its file cannot be used (an edited or damaged bundle?): "
                "collect again.", area=area))
    return findings


def makes_unknown(finding: dict) -> bool:
    """A finding that says the processes or ports could not be checked: the verdict is
    unknown, not critical (nothing was found)."""
    return finding.get("id") in (NOT_CHECKED_PROCESSES, NOT_CHECKED_PORTS)


def not_checked_reason(finding: dict) -> str:
    """The reason a `*.not_checked` finding gives, whatever the finding's shape."""
    reason = as_dict(as_dict(finding.get("evidence")).get("figures")).get("reason")
    return str(reason) if reason else str(finding.get("title") or "unknown")
