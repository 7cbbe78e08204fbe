"""The service manager's units of the platform and its datastores, and core dumps.

Reads services.json.  Where no service manager was found (`manager` null) nothing is
said about units: they could not be checked, which is neither a fault nor health (the
file's note says why).  A systemd whose tools failed is `services.not_checked`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple

from collector.analyzers.common import as_dict, bundle_started_at, dicts, load, number, parse_time
from collector.analyzers.findings import CRITICAL, WARNING, Finding, Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader

SOURCE = schema.SERVICES
RECENT_DUMP_SECONDS = 24 * 3600  # a platform or datastore dump this recent is critical
_WHAT = {"platform": "the platform (akd)", "mongodb": "MongoDB", "rabbitmq": "RabbitMQ", "ssdb": "SSDB",
         "kvrocks": "Kvrocks", "clickhouse": "ClickHouse", "redis": "Redis"}
_RESULT_HINTS = {
    "oom-kill": "The kernel's OOM killer ended it: see kernel.json for the kill and what held the memory.",
    "core-dump": "Its main process crashed and dumped core: see services.json's coredumps.",
    "signal": "Its main process was killed by a signal.",
    "exit-code": "Its main process exited with an error: the end of its journal says why.",
    "timeout": "It did not start or stop within its time limit.",
    "start-limit-hit": "It failed to start too often in a row: systemd stopped trying.",
}


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    data = load(reader, SOURCE)
    if data is None:
        return []
    findings: List[Finding] = []
    errors = [str(e) for e in data.get("errors") or [] if e]
    if errors:
        findings.append(_not_checked(errors))
    if data.get("manager"):
        for unit in dicts(data.get("units")):
            findings += _unit(unit, dicts(data.get("events")))
    findings += _coredumps(as_dict(data.get("coredumps")), bundle_started_at(reader))
    return findings


def _not_checked(errors: List[str]) -> Finding:
    shown = "; ".join(errors[:3]) + (f" (+{len(errors) - 3} more)" if len(errors) > 3 else "")
    return Finding(
        "services.not_checked", WARNING, "services",
        f"Units or core dumps could not be fully checked: {shown}", SOURCE, {"errors": errors[:20]},
        "What is missing here is unknown, not healthy: run `systemctl status` and `journalctl -u <unit>` for the "
        "platform's and datastores' units by hand, look for core files where core_pattern puts them, or collect "
        "again as root.")


def _when(value) -> Optional[str]:
    moment = parse_time(value)
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _exit_words(unit: dict) -> Optional[str]:
    code, status, sig = unit.get("exit_code"), unit.get("exit_status"), unit.get("signal")
    if code in ("killed", "dumped") and status is not None:
        return f"status {status}/{str(sig or '').replace('SIG', '') or '?'}"
    if code == "exited" and status is not None:
        return f"exit status {status}"
    return None


def _label(unit: dict) -> Tuple[str, str]:
    name = str(unit.get("unit") or "?")
    component = str(unit.get("component") or "")
    return name, _WHAT.get(component, component or "a service")


def _last_event(unit: str, events: List[dict], kinds: Tuple[str, ...]) -> Optional[dict]:
    mine = [e for e in events if e.get("unit") == unit and e.get("kind") in kinds]
    return mine[-1] if mine else None


def _unit(unit: dict, events: List[dict]) -> List[Finding]:
    name, what = _label(unit)
    figures = {key: unit.get(key) for key in ("unit", "component", "active_state", "sub_state", "result",
                                               "restarts", "exit_code", "exit_status", "signal", "main_pid",
                                               "started_at", "exited_at")}
    journal = as_dict(unit.get("journal")).get("bundle_path")
    if journal:
        figures["journal"] = journal
    if unit.get("active_state") == "failed":
        return [_failed(unit, name, what, figures)]
    restarts = number(unit.get("restarts"))
    looping = unit.get("active_state") == "activating" and unit.get("sub_state") == "auto-restart"
    if (restarts or 0) > 0 or looping:
        return [_restarting(unit, name, what, figures, events, restarts, looping)]
    return []


def _failed(unit: dict, name: str, what: str, figures: dict) -> Finding:
    details = ", ".join(part for part in (f"result {unit.get('result')}" if unit.get("result") else None,
                                          _exit_words(unit)) if part)
    when = _when(unit.get("exited_at"))
    title = f"{name} failed" + (f" ({details})" if details else "") + (f" at {when}" if when else "")
    hint = " ".join(filter(None, (
        f"{what} is not running under its service manager.",
        _RESULT_HINTS.get(str(unit.get("result"))),
        f"Read {figures['journal']} (the unit's journal) or `journalctl -u {name}`; start it again with "
        f"`systemctl start {name}` once the cause is fixed." if figures.get("journal") else
        f"Read `journalctl -u {name}`; start it again with `systemctl start {name}` once the cause is fixed.")))
    return Finding("service.failed", CRITICAL, name, f"{title} ({what})", SOURCE, figures, hint)


def _restarting(unit: dict, name: str, what: str, figures: dict, events: List[dict],
                restarts: Optional[float], looping: bool) -> Finding:
    count = f"restarted {int(restarts)} times by systemd" if restarts else "is being restarted by systemd"
    now = " (waiting to restart now)" if looping else ""
    last = _last_event(name, events, ("killed", "failed"))
    exit_words = _exit_words(unit)
    tail = f"; last exit: {exit_words}" if exit_words else ""
    if last:
        figures["last_failure"] = {"time": last.get("time"), "message": last.get("message")}
    return Finding(
        "service.restarting", WARNING, name, f"{name} {count}{now}{tail} ({what})", SOURCE, figures,
        f"Something ends {what} and systemd starts it again: read the unit's journal"
        + (f" ({figures['journal']})" if figures.get("journal") else f" (`journalctl -u {name}`)")
        + " and kernel.json for OOM kills around its restarts.")


# --------------------------------------------------------------------------- core dumps

def _coredumps(record: dict, started: Optional[float]) -> List[Finding]:
    groups: Dict[tuple, List[dict]] = {}
    for dump in dicts(record.get("dumps")):
        component = dump.get("component")
        if component:
            groups.setdefault((component, dump.get("process") or dump.get("path") or "?"), []).append(dump)
    return [_dumped(component, subject, dumps, record, started)
            for (component, subject), dumps in groups.items()]


def _dumped(component: str, subject: str, dumps: List[dict], record: dict, started: Optional[float]) -> Finding:
    dumps = sorted(dumps, key=lambda d: parse_time(d.get("time")) or 0.0, reverse=True)
    newest = dumps[0]
    moment = parse_time(newest.get("time"))
    recent = moment is not None and started is not None and started - moment <= RECENT_DUMP_SECONDS
    what = _WHAT.get(component, component)
    signal = newest.get("signal")
    pid = newest.get("pid")
    details = ", ".join(part for part in (signal, f"PID {pid}" if pid else None) if part)
    count = f"; {len(dumps)} dumps listed" if len(dumps) > 1 else ""
    where = f" ({newest.get('path')})" if newest.get("path") and newest.get("path") != subject else ""
    title = (f"{subject} dumped core" + (f" ({details})" if details else "") +
             (f" at {_when(newest.get('time'))}" if newest.get("time") else "") + f"{count}{where} ({what})")
    figures = {"component": component, "process": newest.get("process"), "count": len(dumps),
               "newest": newest, "source": record.get("source"), "core_pattern": record.get("core_pattern")}
    return Finding(
        "process.core_dumped", CRITICAL if recent else WARNING, subject, title, SOURCE, figures,
        f"A program of {what} crashed. Keep the dump (never send it to anyone but the vendor: it holds the "
        "process's memory, secrets and subscribers' data included) and tell the vendor's support the time, "
        "the signal and the version; the process's log around that time says what it was doing.")
