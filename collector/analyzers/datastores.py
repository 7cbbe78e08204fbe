"""The datastores and status handlers: unreachable, timed out, refused credentials,
errors, late answers and slow pings; services that answer "not ready"; MongoDB replica
sets without a primary, members that are unhealthy or lag (once per set, however many
endpoints saw it); RabbitMQ queues above the vendor's thresholds or without a consumer.

Reads datastores.json: {"endpoints": [{name, kind, group, host, port, status,
latency_ms, connect_ms, budget_s, answered_s, late, error, details: {not_ready: {...},
replica_set: {set, primary, members: [...]}, queues: {...}, queue_families: {...}}}]}."""

from __future__ import annotations

import fnmatch
from typing import Dict, Iterable, List, Optional, Tuple

from collector.analyzers import network
from collector.analyzers.common import as_dict, dicts, limit_for, load, number
from collector.analyzers.findings import CRITICAL, WARNING, Finding, Thresholds, severity_rank
from collector.bundle import schema
from collector.bundle.reader import BundleReader

SOURCE = schema.DATASTORES
LOCAL_HOSTS = ("localhost", "::1", "[::1]", "0.0.0.0", "::")
HEALTHY_MEMBER_STATES = ("PRIMARY", "SECONDARY", "ARBITER")

_STATUS_FINDINGS = {
    "unreachable": (CRITICAL, "is unreachable",
                    "Check that the server runs and listens on this address (and that no firewall is in the way); "
                    "the platform cannot work without it."),
    "timeout": (CRITICAL, "did not answer in time",
                "The server accepted the connection but did not answer: it may be overloaded, swapping or "
                "stuck; look at its own log and load."),
    "auth_failed": (CRITICAL, "refused the login configured in main.json",
                    "The user or password in main.json does not match the server's: fix one of them."),
    "error": (WARNING, "answered with an error",
              "Read the error: the server answers, but not as the platform expects."),
}

# which platform process consumes a monitored queue (the vendor's monitoring page)
_CONSUMERS = (("oxy_triggers*", "proctrigger"), ("trk_*", "procactions and procpixel"),
              ("akmta_*", "akmtad"), ("geo_akmta_*", "akmtad"))


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    data = load(reader, SOURCE)
    if data is None:
        return []
    own_names = _own_host_names(reader)
    findings: List[Finding] = []
    replica_views: List[Finding] = []
    for endpoint in dicts(data.get("endpoints")):
        findings += _status(endpoint, reader)
        findings += _not_ready(endpoint)
        findings += _late(endpoint) or _slow(endpoint, own_names, thresholds)
        details = as_dict(endpoint.get("details"))
        if endpoint.get("kind") == "mongodb":
            replica_views += _replica_set(endpoint, as_dict(details.get("replica_set")), thresholds)
        if endpoint.get("kind") == "rabbitmq":
            queues = list(_rabbit_queues(details))
            findings += _queue_depths(endpoint, queues, thresholds)
            findings += _queue_consumers(endpoint, queues, thresholds)
    return findings + once_per_set(replica_views)


def _own_host_names(reader: BundleReader) -> Tuple[str, ...]:
    system = load(reader, schema.SYSTEM) or {}
    return tuple(str(n).lower() for n in (system.get("hostname"), system.get("fqdn")) if n)


def _address(endpoint: dict) -> str:
    return f"{endpoint.get('host') or '?'}:{endpoint.get('port') or '?'}"


def _status(endpoint: dict, reader: Optional[BundleReader] = None) -> List[Finding]:
    status = endpoint.get("status")
    if not isinstance(status, str) or status not in _STATUS_FINDINGS:
        return []
    severity, words, hint = _STATUS_FINDINGS[status]
    name = str(endpoint.get("name") or "?")
    what = "service" if endpoint.get("kind") == "http" else str(endpoint.get("kind") or "datastore")
    error = endpoint.get("error")
    address = _address(endpoint)
    said = _without_address(str(error), address) if error else ""
    title = f"{name} ({what} at {address}) {words}" + (f": {said}" if said else "")
    why = network.explain_unreachable(reader, endpoint) if reader is not None else None  # the network's fact
    hint = f"Why: {why}. {hint}" if why else hint
    return [Finding(f"datastore.{status}", severity, name, title, SOURCE,
                    {"kind": endpoint.get("kind"), "host": endpoint.get("host"), "port": endpoint.get("port"),
                     "source": endpoint.get("source"), "status": status, "error": error,
                     "duration": endpoint.get("duration")}, hint)]


def _not_ready(endpoint: dict) -> List[Finding]:
    """A platform service that answers its status handler with "not ready" (a 503, or the
    JSON body naming failed components): it runs, but cannot serve."""
    if endpoint.get("status") != "not_ready":
        return []
    name = str(endpoint.get("name") or "?")
    said = as_dict(as_dict(endpoint.get("details")).get("not_ready"))
    failed = [str(f) for f in said.get("failed") or [] if f is not None] if isinstance(said.get("failed"), list) else []
    code = said.get("status_code")
    title = (f"{name} is not ready: its {said.get('handler') or 'status'} handler answered HTTP {code or '?'}"
             + (f", failed: {', '.join(failed)}" if failed else ""))
    return [Finding("service.not_ready", CRITICAL, name, title, SOURCE,
                    {"service": name, "host": endpoint.get("host"), "port": endpoint.get("port"),
                     "handler": said.get("handler"), "url": said.get("url"), "status_code": code,
                     "failed": failed, "error": endpoint.get("error")},
                    "The service runs but refuses work until what it names is back: read the findings about those "
                    "components (a datastore down or refusing the login) and the service's log; it becomes ready "
                    "by itself once they are.")]


def _late(endpoint: dict) -> List[Finding]:
    """An answer that came after the check's budget (but before it stopped waiting): slow,
    not silent."""
    answered, budget = number(endpoint.get("answered_s")), number(endpoint.get("budget_s"))
    if endpoint.get("status") != "ok" or endpoint.get("late") is not True or answered is None:
        return []
    name = str(endpoint.get("name") or "?")
    return [Finding(
        "datastore.slow", WARNING, name,
        f"{name} answered in {answered:.1f} s, after its {budget or 0:g} s budget (at {_address(endpoint)})",
        SOURCE, {"answered_s": answered, "budget_s": budget, "host": endpoint.get("host"),
                 "port": endpoint.get("port"), "late": True, "duration": endpoint.get("duration")},
        "It answers, but slowly enough to hold up every platform process that asks it: look at its load, its "
        "disk and swap, and its own log.")]


def _without_address(error: str, address: str) -> str:
    """The check's one-line error without the address the title already gives
    ("connection refused on 127.0.0.1:27017" -> "connection refused")."""
    for joint in (" on ", " from ", " to "):
        error = error.replace(joint + address, "")
    return error


def is_local(host: Optional[str], own_names: Iterable[str] = ()) -> bool:
    if not host:
        return False
    host = host.lower()
    return host.startswith("127.") or host in LOCAL_HOSTS or host in tuple(own_names)


def _slow(endpoint: dict, own_names: Tuple[str, ...], t: Thresholds) -> List[Finding]:
    if endpoint.get("status") != "ok":
        return []
    ms = number(endpoint.get("latency_ms"))
    if ms is None:
        ms = number(endpoint.get("connect_ms"))
    local = is_local(endpoint.get("host"), own_names)
    limit = t.number("datastore_ping_ms_local_warning" if local else "datastore_ping_ms_remote_warning")
    if ms is None or ms <= limit:
        return []
    name = str(endpoint.get("name") or "?")
    where = "on this host" if local else "on another host"
    return [Finding(
        "datastore.slow", WARNING, name, f"{name} answered a ping in {ms:.0f} ms ({where}; expected under {limit:g} ms)",
        SOURCE, {"latency_ms": endpoint.get("latency_ms"), "connect_ms": endpoint.get("connect_ms"),
                 "host": endpoint.get("host"), "local": local, "warning_above_ms": limit},
        "A slow answer from a datastore slows every platform process: look at its load, its disk and swap.")]


def _replica_set(endpoint: dict, replica: dict, t: Thresholds) -> List[Finding]:
    """What one endpoint saw of its replica set; once_per_set merges the views of all."""
    members = dicts(replica.get("members"))
    if not members:
        return []
    name = str(endpoint.get("name") or "?")
    set_name = replica.get("set")
    where = {"component": endpoint.get("group") or name, "seen_from": [name]}
    subject = str(set_name) if set_name else name
    findings = []
    if not replica.get("primary"):
        findings.append(Finding(
            "mongodb.no_primary", CRITICAL, subject, f"Replica set {set_name or '?'} of {where['component']} has no "
            "primary", SOURCE, dict(where, set=set_name, members=[m.get("name") for m in members]),
            "Without a primary nothing can be written: bring the members back so that one is elected."))
    lag_limit = t.number("mongodb_replica_lag_seconds_warning")
    for member in members:
        findings += _member(subject, where, set_name, member, lag_limit)
    return findings


def _member(set_subject: str, where: dict, set_name: object, member: dict, lag_limit: float) -> List[Finding]:
    subject = f"{set_subject}/{member.get('name')}"
    state, health = member.get("state"), member.get("health")
    figures = dict(where, set=set_name, member=member.get("name"), state=state, health=health,
                   lag_s=member.get("lag_s"), last_heartbeat_message=member.get("last_heartbeat_message"))
    out = []
    if (number(health) is not None and health != 1) or (state and state not in HEALTHY_MEMBER_STATES):
        severity = CRITICAL if number(health) == 0 else WARNING
        message = member.get("last_heartbeat_message")
        out.append(Finding(
            "mongodb.member_unhealthy", severity, subject,
            f"Replica member {member.get('name')} of {set_name} is {state or 'unknown'} (health {health})"
            + (f": {message}" if message else ""), SOURCE, figures,
            "Look at that member's mongod log and its host: a member that stays down or recovering leaves the "
            "set without a spare."))
    lag = number(member.get("lag_s"))
    if lag is not None and lag > lag_limit:
        out.append(Finding(
            "mongodb.replica_lag", WARNING, subject,
            f"Replica member {member.get('name')} of {set_name} is {lag:.0f} s behind the primary", SOURCE,
            dict(figures, warning_above_s=lag_limit),
            "A lagging secondary reads stale data and may fall off the oplog: check its disk, network and load."))
    return out


def once_per_set(views: List[Finding]) -> List[Finding]:
    """One finding per replica-set problem, however many endpoints of the set saw it: the
    worst view (severity, then lag) is kept, with every endpoint that saw it in
    `seen_from`."""
    merged: Dict[Tuple[str, str, str], Finding] = {}
    seen: Dict[Tuple[str, str, str], List[str]] = {}
    for view in views:
        key = (view.id, str(view.figures.get("component")), view.subject)
        seen.setdefault(key, [])
        seen[key] += [n for n in view.figures.get("seen_from") or [] if n not in seen[key]]
        kept = merged.get(key)
        if kept is None or _worse(view, kept):
            merged[key] = view
    out = []
    for key, finding in merged.items():
        finding.figures = dict(finding.figures, seen_from=seen[key])
        if len(seen[key]) > 1:
            finding.title += f" (seen from {len(seen[key])} endpoints)"
        out.append(finding)
    return out


def _worse(view: Finding, kept: Finding) -> bool:
    if severity_rank(view.severity) != severity_rank(kept.severity):
        return severity_rank(view.severity) < severity_rank(kept.severity)
    return (number(view.figures.get("lag_s")) or 0) > (number(kept.figures.get("lag_s")) or 0)


def _rabbit_queues(details: dict) -> Iterable[dict]:
    """Every queue the record counts: the exact ones and those of the wildcard families."""
    for queue_name, queue in as_dict(details.get("queues")).items():
        queue = as_dict(queue)
        if queue.get("exists"):
            yield {"name": queue_name, "messages": queue.get("messages"), "consumers": queue.get("consumers")}
    for family in as_dict(details.get("queue_families")).values():
        for queue in dicts(as_dict(family).get("queues")):
            if isinstance(queue.get("name"), str):
                yield queue


def _consumer_of(queue: str) -> str:
    return next((who for pattern, who in _CONSUMERS if fnmatch.fnmatchcase(queue, pattern)), "its consumer")


def _queue_depths(endpoint: dict, queues: List[dict], t: Thresholds) -> List[Finding]:
    limits = t.mapping("rabbitmq_queue_depth_warning")
    out = []
    for queue in queues:
        matched, depth = limit_for(queue["name"], limits), number(queue.get("messages"))
        if matched is None or depth is None or depth < matched[1]:
            continue
        out.append(Finding(
            "rabbitmq.queue_depth", WARNING, queue["name"],
            f"RabbitMQ queue {queue['name']} holds {int(depth):,} messages (vendor threshold {matched[1]:,.0f})",
            SOURCE, {"endpoint": endpoint.get("name"), "queue": queue["name"], "messages": depth,
                     "consumers": queue.get("consumers"), "threshold": matched[1], "rule": matched[0]},
            f"{_consumer_of(queue['name'])} is not keeping up: check that it runs and read its log. The vendor "
            "alerts when the depth stays there for 10 minutes: collect again to see whether it drains."))
    return out


def _queue_consumers(endpoint: dict, queues: List[dict], t: Thresholds) -> List[Finding]:
    monitored = t.words("rabbitmq_queues_needing_consumers")
    out = []
    for queue in queues:
        consumers = queue.get("consumers")
        if consumers != 0 or not any(fnmatch.fnmatchcase(queue["name"], p) for p in monitored):
            continue
        out.append(Finding(
            "rabbitmq.no_consumer", WARNING, queue["name"],
            f"RabbitMQ queue {queue['name']} has no consumer ({queue.get('messages')} messages waiting)",
            SOURCE, {"endpoint": endpoint.get("name"), "queue": queue["name"], "consumers": 0,
                     "messages": queue.get("messages")},
            f"Nothing reads this queue: {_consumer_of(queue['name'])} should; check that it runs and is connected."))
    return out
