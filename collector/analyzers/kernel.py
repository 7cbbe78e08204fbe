"""The kernel's evidence: OOM kills, crashes (segfaults, traps), hung tasks, disk I/O
errors, a full conntrack table and SYN floods, each kind and victim (or device, or port)
one finding with a count, first and last time.  A victim is a platform process when its
PID, comm or memory cgroup says so (processes.json, pidfiles.json), a datastore by its
program's name or its unit's; those are critical.

Reads kernel.json, processes.json, pidfiles.json and ports.json.  `kill_for` lets the
processes analyzer name the OOM kill behind a process that is down."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple

from collector.analyzers.common import as_dict, bundle_started_at, dicts, fmt_bytes, load, number, parse_time
from collector.analyzers.findings import CRITICAL, INFO, WARNING, Finding, Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader

SOURCE = schema.KERNEL
COMM_LEN = 15
# a datastore's program (the kernel's comm keeps 15 bytes) and the words its unit or
# cgroup carries
DATASTORES = {"mongod": "MongoDB", "beam.smp": "RabbitMQ", "redis-server": "Redis", "kvrocks": "Kvrocks",
              "ssdb-server": "SSDB", "clickhouse-serv": "ClickHouse", "clickhouse-server": "ClickHouse",
              "clickhouse": "ClickHouse"}
_UNIT_WORDS = (("mongod", "MongoDB"), ("rabbitmq", "RabbitMQ"), ("kvrocks", "Kvrocks"), ("ssdb", "SSDB"),
               ("clickhouse", "ClickHouse"), ("redis", "Redis"))
_CRASH_KINDS = ("segfault", "trap")


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    data = load(reader, SOURCE)
    unusable = _not_checked(reader, data)
    if unusable is not None or data is None:
        return [unusable] if unusable else []
    victims = Victims(reader)
    groups: Dict[tuple, List[dict]] = {}
    for event in dicts(data.get("events")):
        key = _group_key(event, victims)
        if key is not None:
            groups.setdefault(key, []).append(event)
    findings = [_finding(key, events, victims) for key, events in groups.items()]
    started = bundle_started_at(reader)
    return [_aged(f, started, thresholds) for f in findings if f is not None] + _partial(data)


_ONE_LOWER = {CRITICAL: WARNING, WARNING: INFO, INFO: INFO}


def _aged(finding: Finding, started: Optional[float], thresholds: Thresholds) -> Finding:
    """An event whose last occurrence is long before the collection is history (a monitoring
    check must not stay red for a day after a kill the host has recovered from): one
    severity lower, and the title says how long before the collection it was."""
    last = parse_time(finding.figures.get("last"))
    if started is None or last is None or started - last <= 60 * thresholds.number("kernel_event_recent_minutes"):
        return finding
    finding.severity = _ONE_LOWER[finding.severity]
    finding.title += f" ({_age(started - last)} before this collection)"
    return finding


def _age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


# -------------------------------------------------------------------------- not checked

def _not_checked(reader: BundleReader, data: Optional[dict]) -> Optional[Finding]:
    """A finding when the kernel could not be checked at all; None when it could (or the
    collector did not run: then nothing is claimed either way)."""
    outcome = next((o for o in dicts(as_dict(reader.manifest).get("collectors")) if o.get("name") == "kernel"), {})
    if data is None:
        status = outcome.get("status")
        if reader.exists(SOURCE):
            return _not_checked_finding(f"{SOURCE} is not a JSON object", None)
        if status in ("failed", "timeout"):
            return _not_checked_finding(f"the kernel collector {'timed out' if status == 'timeout' else 'failed'}",
                                        outcome.get("error"))
        return None
    if not isinstance(data.get("events"), list):
        return _not_checked_finding(f"{SOURCE}'s 'events' is not a list", None)
    if data.get("source") is None:
        error = "; ".join(_strings(data.get("errors"))) or None
        # an unprivileged run (kernel.dmesg_restrict=1) is told, not alarmed: `check` as a monitoring
        # user would otherwise warn forever
        denied = error is not None and "permission denied" in error
        return _not_checked_finding("akdiag could not read the kernel's messages" + (
            " (this user may not)" if denied else ""), error, INFO if denied else WARNING)
    return None


def _not_checked_finding(why: str, error: Optional[str], severity: str = WARNING) -> Finding:
    return Finding(
        "kernel.not_checked", severity, "kernel",
        f"The kernel's messages were not checked: {why}", SOURCE, {"error": error},
        "OOM kills, crashes and disk errors are unknown, not absent: run akdiag as root (or with CAP_SYSLOG), "
        "or attach the output of `dmesg -T` or `journalctl -k` to the report.")


def _strings(value) -> List[str]:
    return [e for e in value if isinstance(e, str)] if isinstance(value, list) else []


def _partial(data: dict) -> List[Finding]:
    errors = _strings(data.get("errors"))
    if not errors:
        return []
    return [Finding("kernel.not_checked", INFO, "kernel", "Part of the kernel's messages may be missing",
                    SOURCE, {"errors": errors}, "The events listed stand; older or newer ones may be missing.")]


# -------------------------------------------------------------------------- victims

class Victims:
    """Who a PID, comm or cgroup is: a platform process by name, a datastore, or None.
    A PID alone is not enough (PIDs are reused within hours): the kernel's comm must agree
    with the process's title, binary or program at that PID."""

    def __init__(self, reader: BundleReader):
        processes = load(reader, schema.PROCESSES) or {}
        self.records = [r for r in dicts(processes.get("expected")) if isinstance(r.get("name"), str)]
        self.by_comm: Dict[str, str] = {}
        self.by_pid: Dict[int, Tuple[str, set]] = {}  # pid -> (name, the comms it may have)
        for record in self.records:
            name = record["name"]
            comms = {_comm(w) for w in (record.get("title"), name) if isinstance(w, str) and w}
            for comm in comms:
                self.by_comm.setdefault(comm, name)
            programs = {_int(r.get("pid")): r.get("exe") for r in dicts(record.get("resources"))}
            for pid in _record_pids(record):
                exe = programs.get(pid)
                extra = {_comm(exe.rsplit("/", 1)[-1])} if isinstance(exe, str) and exe else set()
                self.by_pid.setdefault(pid, (name, comms | extra))
        pidfiles = load(reader, schema.PIDFILES) or {}
        for item in dicts(pidfiles.get("files")):
            pid, file_name = _int(item.get("pid")), item.get("name")
            if pid is not None and isinstance(file_name, str) and file_name.endswith(".pid"):
                binary = file_name[:-4]
                self.by_pid.setdefault(pid, (binary, {_comm(binary), _comm(f"AK:{binary}")}))
        self.listeners = _listeners(reader, self.records)

    def platform_name(self, event: dict) -> Optional[str]:
        pid, comm = _int(event.get("pid")), event.get("process")
        if isinstance(comm, str) and comm in self.by_comm:
            return self.by_comm[comm]
        name, comms = self.by_pid.get(pid, (None, set())) if pid is not None else (None, set())
        return name if name and (comm is None or comm in comms) else None

    def datastore(self, event: dict) -> Optional[str]:
        comm = event.get("process")
        if isinstance(comm, str) and comm in DATASTORES:
            return DATASTORES[comm]
        cgroup = event.get("cgroup")
        if isinstance(cgroup, str):
            unit = cgroup.rsplit("/", 1)[-1].lower()
            return next((label for word, label in _UNIT_WORDS if word in unit), None)
        return None

    def subject(self, event: dict) -> Tuple[str, bool]:
        """(who the event is about, whether it matters most: the platform or a datastore)."""
        name = self.platform_name(event)
        if name:
            return name, True
        store = self.datastore(event)
        if store:
            return f"{event.get('process') or store} ({store})", True
        return str(event.get("process") or "?"), False

def _comm(word: str) -> str:
    return word.encode("utf-8")[:COMM_LEN].decode("utf-8", "ignore")


def _int(value) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _record_pids(record: dict) -> List[int]:
    pids = [_int(p) for p in record.get("pids") or [] if _int(p) is not None] if isinstance(
        record.get("pids"), list) else []
    pids += [_int(r.get("pid")) for r in dicts(record.get("resources")) if _int(r.get("pid")) is not None]
    pidfile = as_dict(record.get("pidfile"))
    if _int(pidfile.get("pid")) is not None:
        pids.append(pidfile["pid"])
    return pids


def _listeners(reader: BundleReader, records: List[dict]) -> Dict[int, str]:
    """port -> who listens there: the platform process whose port it is, else the program."""
    found: Dict[int, str] = {}
    for record in records:
        port = _int(as_dict(record.get("port")).get("expected"))
        if port is not None:
            found[port] = record["name"]
    for sock in dicts(as_dict(load(reader, schema.PORTS)).get("listening")):
        port = _int(sock.get("port"))
        if port is not None and isinstance(sock.get("process"), str):
            found.setdefault(port, sock["process"])
    return found


# -------------------------------------------------------------------------- findings

def _group_key(event: dict, victims: Victims) -> Optional[tuple]:
    kind = event.get("kind")
    if kind in ("oom_kill", "segfault", "trap", "hung_task"):
        return ("crash" if kind in _CRASH_KINDS else kind, victims.subject(event)[0])
    if kind == "io_error":
        return kind, str(event.get("device") or "?")
    if kind == "conntrack_full":
        return kind, "conntrack"
    if kind == "syn_flood":
        return kind, _int(event.get("port"))
    return None


def _span(events: List[dict]) -> dict:
    times = sorted(t for t in (e.get("time") for e in events) if isinstance(t, str))
    return {"count": len(events), "first": times[0] if times else None, "last": times[-1] if times else None,
            "message": str(events[-1].get("message") or "")[:500]}


def _when(span: dict) -> str:
    count, first, last = span["count"], _clock(span["first"]), _clock(span["last"])
    if count == 1:
        return f"at {last}"
    return f"{count} times, from {first} to {last}"


def _clock(value) -> str:
    moment = parse_time(value)
    if moment is None:
        return "an unknown time"
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _finding(key: tuple, events: List[dict], victims: Victims) -> Optional[Finding]:
    kind, who = key
    span = _span(events)
    last = events[-1]
    if kind == "oom_kill":
        return _oom(who, span, events, victims)
    if kind == "crash":
        subject, vital = victims.subject(last)
        figures = dict(span, pids=sorted({e.get("pid") for e in events if _int(e.get("pid")) is not None}))
        return Finding(
            "process.crashed", CRITICAL if vital else WARNING, subject,
            f"{subject} crashed ({last.get('kind')}) {_when(span)}", SOURCE, figures,
            "A crash of the program itself: send this bundle and the program's version to its vendor; a core "
            "dump (if the host keeps them) shows where.")
    if kind == "hung_task":
        return Finding(
            "kernel.hung_task", WARNING, who, f"{who} hung, blocked in the kernel (hung task) {_when(span)}",
            SOURCE, dict(span, pid=last.get("pid")),
            "A task stuck waiting for the kernel, most often for a slow or failing disk or a hung network "
            "filesystem: read the messages around that time in kernel/messages.txt.")
    if kind == "io_error":
        return Finding(
            "kernel.io_error", CRITICAL, who, f"Disk I/O errors on {who} {_when(span)}", SOURCE,
            dict(span, device=who),
            "The disk or its filesystem fails: check the disk's health (SMART, the hypervisor's storage) and "
            "the filesystem, and move the datastores off it before data is lost.")
    if kind == "conntrack_full":
        return Finding(
            "network.conntrack_full", CRITICAL, "conntrack",
            f"The kernel's connection-tracking table was full and dropped packets {_when(span)}", SOURCE, span,
            "New connections were dropped (to the datastores too): raise net.netfilter.nf_conntrack_max, or "
            "leave the platform's local traffic out of connection tracking.")
    return _syn_flood(who, span, victims)


def _oom(who: str, span: dict, events: List[dict], victims: Victims) -> Finding:
    last = events[-1]
    _subject, vital = victims.subject(last)
    rss = number(last.get("rss_bytes"))
    figures = dict(span, pid=last.get("pid"), process=last.get("process"), rss_bytes=last.get("rss_bytes"),
                   cgroup=last.get("cgroup"))
    in_cgroup = f" in memory cgroup {last['cgroup']}" if isinstance(last.get("cgroup"), str) else ""
    return Finding(
        "process.oom_killed", CRITICAL if vital else WARNING, who,
        f"The kernel's OOM killer killed {who} (PID {last.get('pid')}"
        f"{', RSS ' + fmt_bytes(rss) if rss is not None else ''}){in_cgroup} {_when(span)}",
        SOURCE, figures,
        "The host (or the memory cgroup) ran out of memory: find what used it (kernel/messages.txt lists "
        "every process's memory at the kill), give the host or the unit more memory, and restart the victim.")


def _syn_flood(port, span: dict, victims: Victims) -> Finding:
    owner = victims.listeners.get(port) if port is not None else None
    subject = f"port {port}" if port is not None else "?"
    return Finding(
        "network.syn_flood", WARNING, subject,
        f"Possible SYN flood on port {port}{f' ({owner})' if owner else ''} {_when(span)}", SOURCE,
        dict(span, port=port, listener=owner),
        "More connection attempts than the listener accepted: a flood, or a process too slow to accept "
        "(its listen backlog full). Read the listener's log at that time and the host's connection counters.")


def kill_for(reader: BundleReader, name: str, record: dict) -> Optional[dict]:
    """The latest OOM kill in kernel.json of the platform process `name` (its processes.json
    record): {time, pid, process, rss_bytes, cgroup, hint}; None when there is none."""
    return _latest_kills(reader).get(name)


def _latest_kills(reader: BundleReader) -> Dict[str, dict]:
    """{platform process: its latest OOM kill}, kernel.json and the process records read once."""
    data = load(reader, SOURCE)
    if data is None:
        return {}
    victims = Victims(reader)
    latest: Dict[str, dict] = {}
    for event in dicts(data.get("events")):
        name = victims.platform_name(event) if event.get("kind") == "oom_kill" else None
        if name is not None:
            latest[name] = event
    return {name: _kill_record(name, kill) for name, kill in latest.items()}


def _kill_record(name: str, kill: dict) -> dict:
    rss = number(kill.get("rss_bytes"))
    hint = (f"{name} was killed by the kernel's OOM killer at {_clock(kill.get('time'))}"
            f"{f', RSS {fmt_bytes(rss)}' if rss is not None else ''}; see {SOURCE}. Find what used the memory, "
            "give the host (or its memory cgroup) more, then start it the platform's usual way "
            "(remove a stale PID file first).")
    return {"time": kill.get("time"), "pid": kill.get("pid"), "process": kill.get("process"),
            "rss_bytes": kill.get("rss_bytes"), "cgroup": kill.get("cgroup"), "hint": hint}


def name_kills(reader: BundleReader, findings: List[Finding]) -> None:
    """Each `process.down` of a process the OOM killer killed names the kill in its hint
    (instead of "read the end of its log") and its figures."""
    down = [f for f in findings if f.id == "process.down"]
    if not down:
        return
    kills = _latest_kills(reader)
    for finding in down:
        kill = dict(kills[finding.subject]) if finding.subject in kills else None
        if kill is not None:
            finding.hint = kill.pop("hint")
            finding.figures["oom_kill"] = kill
