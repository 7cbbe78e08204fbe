"""The platform's processes: down (a zombie left unreaped included), crash-looping,
duplicated, just restarted, PID files, ports, open files, zombies, and remote-capable
processes that run elsewhere.

Reads processes.json (one record per catalog process: status, pids, pidfile, port,
resources per PID, zombies) and the manifest's started_at; for crash loops also each
process's log tail and services.json (collector/analyzers/crashloop.py)."""

from __future__ import annotations

from typing import List, Optional

from collector.analyzers.common import as_dict, bundle_started_at, dicts, load, number, parse_time
from collector.analyzers.crashloop import CrashLoop, crash_loops
from collector.analyzers.findings import CRITICAL, INFO, WARNING, Finding, Thresholds
from collector.analyzers.kernel import name_kills
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.collectors.processes import zombie_note

SOURCE = schema.PROCESSES

_PIDFILE_HINTS = {
    "missing": "The process runs but left no PID file: the platform's own tools (akd) may not see it. "
               "Restart it the platform's usual way so that it writes one.",
    "invalid": "The PID file does not hold a process number. Stop the process, remove the file and start it again.",
    "unreadable": "akdiag could not read the PID file (permissions?). Check the file's owner and mode.",
    "stale": "The PID file names a process that no longer exists: the process died without cleaning up. "
             "Read the end of its log for why, remove the stale file and start the process.",
    "zombie": "The PID file names a zombie: the process exited and its parent has not reaped it. Read the end "
              "of its log for why; restarting the parent clears the zombie; then start the process.",
    "reused": "The PID file's number now belongs to another program: akd may take that program for the "
              "platform process. Remove the PID file and start the process again.",
}


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    data = load(reader, SOURCE)
    if data is None:
        return []
    started = bundle_started_at(reader)
    zombie_rows = [r for r in dicts(data.get("all")) if r.get("status") == "zombie"]  # the table: only for these
    records = dicts(data.get("expected"))
    loops = crash_loops(reader, records, started, thresholds)
    findings: List[Finding] = []
    for record in records:
        findings.extend(_one_process(record, started, zombie_rows, thresholds,
                                     loops.get(str(record.get("name") or "?"))))
    findings.extend(_hidden_port_owners(records))
    name_kills(reader, findings)  # a process.down whose process the OOM killer killed says so
    return _group_restarts(findings, records, _spread_limit(thresholds))


def _spread_limit(t: Thresholds) -> float:
    """Restarts merge into one `platform.restarted` only when the processes started within
    this many seconds of each other: restarts at scattered times stay one warning each
    (a crash loop seen in the log or in systemd is `process.crash_loop` instead)."""
    return t.number("platform_restart_spread_seconds")


def _group_restarts(findings: List[Finding], records: List[dict], spread_limit: float) -> List[Finding]:
    """At least 3 and at least half of the running processes started within
    `spread_limit` seconds of each other: one start of the whole platform (an
    administrator's doing, most likely), not one crash per process.  Otherwise each
    restart stays a warning of its own."""
    restarted = [f for f in findings if f.id == "process.restarted"]
    names = sorted({f.subject for f in restarted})
    running = sum(1 for r in records if r.get("status") == "running")
    if len(names) < max(3, running / 2.0):
        return findings
    starts = [parse_time(f.figures.get("started_at")) for f in restarted]
    if None in starts or max(starts) - min(starts) > spread_limit:
        return findings
    ages = [f.figures["seconds_before"] for f in restarted]
    platform = Finding(
        "platform.restarted", INFO, "platform",
        f"{len(names)} of {running} running processes started "
        f"{min(ages) if min(ages) == max(ages) else f'{min(ages)}-{max(ages)}'} s before the collection",
        SOURCE, {"processes": names, "seconds_before_min": min(ages), "seconds_before_max": max(ages),
                 "spread_seconds": int(max(starts) - min(starts)), "spread_limit_seconds": spread_limit,
                 "window_seconds": restarted[0].figures["window_seconds"]},
        "The platform was started or restarted just before this collection: if that was not planned, read "
        "the logs around that time; collect again later to see it settled.")
    return [f for f in findings if f.id != "process.restarted"] + [platform]


def _hidden_port_owners(records: List[dict]) -> List[Finding]:
    """Ports something listens on while this user could not see which program: likely
    the platform's own processes, run by another user.  Not a conflict: one info."""
    hidden = {str(r.get("name") or "?"): as_dict(r.get("port")).get("expected") for r in records
              if as_dict(r.get("port")).get("state") == "listening_owner_unknown"}
    if not hidden:
        return []
    listed = ", ".join(f"{name} ({port})" for name, port in list(hidden.items())[:5])
    more = f" and {len(hidden) - 5} more" if len(hidden) > 5 else ""
    return [Finding(
        "ports.owner_unknown", INFO, "ports",
        f"A program listens on {len(hidden)} platform port{'s' if len(hidden) > 1 else ''} ({listed}{more}) "
        "but this user cannot see which", SOURCE, {"ports": hidden},
        "The platform's processes most likely hold them under another user; run akdiag as root or as the "
        "platform's user to tell a port held by the process from one held by another program.")]


def _one_process(record: dict, started: Optional[float], zombie_rows: List[dict], t: Thresholds,
                 loop: Optional[CrashLoop] = None) -> List[Finding]:
    """The findings about one process; a crash loop stands for its `process.down` or
    `process.restarted`."""
    name = str(record.get("name") or "?")
    status = record.get("status")
    out: List[Finding] = []
    if loop is not None:
        out.append(_crash_loop(name, record, loop))
    elif status == "down":
        out.append(_down(name, record))
    elif status == "absent" and record.get("remote_capable"):
        out.append(_absent_remote(name, record))
    if status in ("running", "down"):
        out.extend(_port(name, record, status))
    out.extend(_pidfile(name, record, status))
    if status == "running":
        roots = _root_resources(record)
        out.extend(_duplicates(name, record, roots))
        if loop is None:
            out.extend(_restarted(name, roots, started, t.number("process_restart_window_seconds")))
        out.extend(_open_files(name, record, t))
        out.extend(_zombies(name, record, zombie_rows))
    return out


def _down(name: str, record: dict) -> Finding:
    pidfile = record.get("pidfile") if isinstance(record.get("pidfile"), dict) else {}
    zombies = _zombie_records(record)
    why = zombie_note(zombies) if zombies else f"no process titled {record.get('title')}"
    hint = (f"Read the end of logs/{name}.log for why it stopped, then start it the platform's usual way "
            "(remove a stale PID file first).")
    if zombies:
        hint = (f"{name} has exited; its parent still holds its exit status. Read the end of logs/{name}.log for "
                "why it stopped; restart the parent (or the platform) to clear the zombie, then start it.")
    return Finding(
        "process.down", CRITICAL, name, f"{name} is not running ({why})",
        SOURCE, {"title": record.get("title"), "pidfile_state": pidfile.get("state"), "pidfile_pid": pidfile.get("pid"),
                 "zombies": zombies},
        hint)


def _zombie_records(record: dict) -> List[dict]:
    return [z for z in dicts(record.get("zombies")) if _pid(z.get("pid")) is not None]


def _crash_loop(name: str, record: dict, loop: CrashLoop) -> Finding:
    if loop.span_seconds is not None:
        how = f"restarted {loop.restarts} times in {loop.span_seconds:.0f} s"
    else:
        when = f", last {loop.seconds_before} s before the collection" if loop.seconds_before is not None else ""
        how = f"restarted {loop.restarts} times by systemd ({loop.unit}{when})"
    down = record.get("status") == "down"
    now = "; it is down at the moment" if down else ""
    last = f"; last exit: {loop.last_exit['text']}" if loop.last_exit else ""
    figures = dict(loop.figures(), status=record.get("status"), down=down, zombies=_zombie_records(record))
    return Finding(
        "process.crash_loop", CRITICAL, name, f"{name} {how}{now}{last}", loop.evidence_file, figures,
        f"{name} keeps crashing and being started again: the last exit line above (and the lines before it in "
        f"logs/{name}.log) says why; fix that cause, restarting it again will not help.")


def _absent_remote(name: str, record: dict) -> Finding:
    return Finding(
        "process.absent_remote", INFO, name, f"{name} does not run on this host (it may run on another one)",
        SOURCE, {"title": record.get("title"), "note": record.get("note")},
        "Nothing to do if the platform runs it on another host; otherwise start it here.")


def _port(name: str, record: dict, status: str) -> List[Finding]:
    port = record.get("port") if isinstance(record.get("port"), dict) else {}
    state, expected = port.get("state"), port.get("expected")
    figures = {"port": expected, "address": port.get("address"), "state": state}
    if state == "conflict":
        owner = port.get("owner_name") or "another program"
        figures.update(owner_name=port.get("owner_name"), owner_pid=port.get("owner_pid"))
        return [Finding(
            "port.conflict", CRITICAL, name,
            f"{name}'s port {expected} is held by {owner} (PID {port.get('owner_pid') or '?'})", SOURCE, figures,
            f"Stop {owner} or move it to another port, then restart {name}; "
            "or change the platform's port for it if the other program must stay.")]
    if state == "not_listening" and status == "running":
        return [Finding(
            "port.not_listening", CRITICAL, name, f"{name} runs but nothing listens on its port {expected}",
            SOURCE, figures,
            f"The process may be starting, hung or misconfigured: read logs/{name}.log; restart it if it stays so.")]
    return []


def _pidfile(name: str, record: dict, status: Optional[str]) -> List[Finding]:
    pidfile = record.get("pidfile") if isinstance(record.get("pidfile"), dict) else {}
    state = pidfile.get("state")
    if not isinstance(state, str) or state not in _PIDFILE_HINTS or (state == "missing" and status != "running"):
        return []
    zombie = as_dict(pidfile.get("zombie")) if state == "stale" else {}
    figures = {"path": pidfile.get("path"), "state": state, "pid": pidfile.get("pid"),
               "detail": pidfile.get("detail"), "owner_name": pidfile.get("owner_name"),
               "running_pids": record.get("pids") or [], "zombie": zombie or None}
    titles = {
        "missing": f"{name} runs without a PID file",
        "invalid": f"{name}'s PID file is invalid ({pidfile.get('detail') or 'not a number'})",
        "unreadable": f"{name}'s PID file cannot be read ({pidfile.get('detail') or 'error'})",
        "stale": f"{name}'s PID file names process {pidfile.get('pid')}, which no longer exists" if not zombie else
                 f"{name}'s PID file names process {pidfile.get('pid')}, a zombie: it exited and its parent "
                 f"{zombie.get('ppid') or '?'} ({zombie.get('parent_name') or 'unknown'}) never reaped it",
        "reused": f"{name}'s PID file names process {pidfile.get('pid')}, now "
                  f"{pidfile.get('owner_name') or 'another program'}",
    }
    hint = _PIDFILE_HINTS["zombie" if zombie else state]
    return [Finding(f"pidfile.{state}", WARNING, name, titles[state], SOURCE, figures, hint)]


def _pid(value) -> Optional[int]:
    """A process number, or None for anything else (a bundle may hold any shape)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _root_resources(record: dict) -> List[dict]:
    """The PIDs of the process that are not children of another of its PIDs (a
    process that forks workers under the same title counts once)."""
    resources = dicts(record.get("resources"))
    pids = {_pid(r.get("pid")) for r in resources}
    return [r for r in resources if _pid(r.get("ppid")) not in pids and r.get("status") != "zombie"]


def _duplicates(name: str, record: dict, roots: List[dict]) -> List[Finding]:
    if len(roots) < 2:
        return []
    pids = [r.get("pid") for r in roots]
    return [Finding(
        "process.duplicate", WARNING, name, f"{len(roots)} separate {record.get('title')} processes run where one "
        f"is expected (PIDs {', '.join(str(p) for p in pids)})", SOURCE,
        {"pids": pids, "started_at": [r.get("started_at") for r in roots]},
        "A second copy may process the same work twice: stop the copy the PID file does not name.")]


def _restarted(name: str, roots: List[dict], started: Optional[float], window: float) -> List[Finding]:
    if started is None:
        return []
    recent = [(started - began, r) for r, began in ((r, parse_time(r.get("started_at"))) for r in roots)
              if began is not None and -60 <= started - began <= window]
    out = []
    for seconds, resource in sorted(recent, key=lambda item: item[0])[:1]:
        age = max(0, int(seconds))
        out.append(Finding(
            "process.restarted", WARNING, name,
            f"{name} (PID {resource.get('pid')}) started {age} s before the collection", SOURCE,
            {"pid": resource.get("pid"), "started_at": resource.get("started_at"), "seconds_before": age,
             "window_seconds": window},
            f"A recent start may be a crash and restart: read logs/{name}.log around {resource.get('started_at')}; "
            "collect again in a few minutes to see whether it keeps restarting."))
    return out


def _open_files(name: str, record: dict, t: Thresholds) -> List[Finding]:
    warning = t.number("process_open_files_percent_warning")
    critical = t.number("process_open_files_percent_critical")
    out = []
    for resource in dicts(record.get("resources")):
        percent = number(resource.get("open_files_percent"))
        if percent is None or percent < warning:
            continue
        severity = CRITICAL if percent >= critical else WARNING
        out.append(Finding(
            "process.open_files", severity, name,
            f"{name} (PID {resource.get('pid')}) has {resource.get('open_files')} files open, "
            f"{percent:.0f} % of its limit {resource.get('open_files_limit')}", SOURCE,
            {"pid": resource.get("pid"), "open_files": resource.get("open_files"),
             "limit": resource.get("open_files_limit"), "percent": percent, "warning_at": warning,
             "critical_at": critical},
            "Raise the process's open-files limit (LimitNOFILE / ulimit -n) or look for a descriptor leak "
            "(connections piling up in its log)."))
    return out


def _zombies(name: str, record: dict, zombie_rows: List[dict]) -> List[Finding]:
    """`zombie_rows`: the host table's zombie rows (the rest of the table is no zombie's)."""
    pids = {_pid(r.get("pid")) for r in dicts(record.get("resources"))} - {None}
    own = [r.get("pid") for r in dicts(record.get("resources")) if r.get("status") == "zombie"]
    children = [r.get("pid") for r in zombie_rows if _pid(r.get("ppid")) in pids]
    zombies = own + [pid for pid in children if pid not in own]
    if not zombies:
        return []
    return [Finding(
        "process.zombie", WARNING, name,
        f"{name}: {len(zombies)} zombie process{'es' if len(zombies) > 1 else ''} (PID "
        f"{', '.join(str(p) for p in zombies)})", SOURCE,
        {"zombie_pids": zombies, "own": own, "children": [p for p in children if p not in own]},
        "A zombie has exited but its parent has not reaped it: restart the parent process if they accumulate.")]
