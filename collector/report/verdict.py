"""The verdict line at the top of the page: the findings' counts and the worst one, or,
for a bundle without findings, what its processes and collectors tell."""

from __future__ import annotations

from typing import List, Optional

from collector.report.format import plural

ALL_RUNNING = "All expected processes running"


def findings_verdict(view: dict) -> dict:
    counts, rows = view["counts"], view["rows"]
    if not rows:
        return {"text": "No problems found", "level": "ok"}
    parts = [f"{counts.get('critical', 0)} critical"] if counts.get("critical") else []
    if counts.get("warning"):
        parts.append(plural(counts["warning"], "warning"))
    if counts.get("info"):
        parts.append(f"{counts['info']} info")
    level = "bad" if counts.get("critical") else ("warn" if counts.get("warning") else "ok")
    lead = rows[0]["title"] if level != "ok" else "nothing needs action"
    return {"text": f"{', '.join(parts)}: {lead}", "level": level}


def _counted(items: list, test, singular: str, many: str) -> List[str]:
    """["3 <many>"] for the items that pass the test, [] for none."""
    count = sum(1 for item in items if test(item))
    return [plural(count, singular, many)] if count else []


def _process_problems(processes: dict) -> tuple:
    rows, counts = processes["rows"], processes["counts"]
    bad = ([plural(counts["down"], "process down", "processes down")] if counts["down"] else [])
    bad += _counted(rows, lambda r: r["port_conflict"], "port conflict", "port conflicts")
    warn = _counted(rows, lambda r: r["port_silent"], "port not listening", "ports not listening")
    if counts["unknown"]:
        warn.append(plural(counts["unknown"], "process of unknown status", "processes of unknown status"))
    warn += _counted(rows, lambda r: r["pidfile_bad"], "PID file problem", "PID file problems")
    return bad, warn


def _lead(processes: Optional[dict], unknown_reason: str) -> Optional[str]:
    if processes is None:
        return f"Process status unknown ({unknown_reason})"
    if not processes["rows"]:
        return "No expected processes recorded"
    if not processes["counts"]["down"] and not processes["counts"]["unknown"]:
        return ALL_RUNNING
    return None


def processes_verdict(processes: Optional[dict], collectors: List[dict], missing: List[dict],
                      unknown_reason: str = "processes.json missing") -> dict:
    """The verdict of a bundle without findings.  `processes`: the processes view, None
    when they cannot be judged (`unknown_reason` says why)."""
    bad, warn = _process_problems(processes) if processes is not None else ([], [])
    bad += _counted(collectors, lambda c: c.get("status") in ("failed", "timeout"),
                    "collector failed", "collectors failed")
    warn += _counted(collectors, lambda c: c.get("status") == "partial", "collector partial", "collectors partial")
    if missing:
        warn.append(plural(len(missing), "bundle file missing", "bundle files missing"))
    lead = _lead(processes, unknown_reason)
    parts = ([lead] if lead else []) + bad + warn
    return {
        "text": "; ".join([parts[0], ", ".join(parts[1:])]) if lead and len(parts) > 1 else ", ".join(parts),
        "level": "bad" if bad else ("warn" if warn or lead != ALL_RUNNING else "ok"),
    }
