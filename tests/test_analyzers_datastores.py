"""The datastores analyzer.  An unreachable and a silent server are made for real; a
refused login, a slow ping, an unhealthy replica member or a deep queue cannot be made
here, so those records are written into a real bundle's datastores.json with the
shapes the datastore checks produce (built by their own functions)."""

from __future__ import annotations

import datetime
import json
import socket

import pytest

from collector.datastores.common import Endpoint, base_record
from collector.datastores.mongodb import _repl_status
from collector.datastores.rabbitmq import _families
from conftest import collect_bundle
from triage_helpers import edit_json, findings_of, free_port, matching, one


def _only_controldb(host, port: int) -> None:
    """main.json naming one MongoDB at `port` and nothing else."""
    main = host.basedir / "config" / "main.json"
    config = json.loads(main.read_text())
    for key in list(config):
        if key.startswith(("SSDB_", "RABBITMQ_", "CLICKHOUSE", "CAMP_", "FILEDB", "CONTROLDB")):
            del config[key]
    config.update(CONTROLDB_IP="127.0.0.1", CONTROLDB_PORT=port, CONTROLDB_NAME="altcraft_system")
    main.write_text(json.dumps(config))


def _collect(host, tmp_path, timeout=0.5):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("datastores", "system"),
                                     datastore_timeout=timeout, cpu_sample_seconds=0.05)
    # Only the datastores of main.json: the HTTP status handlers go to the catalog's ports,
    # where another test's simulated processes may be running right now.
    edit_json(reader, "datastores.json", lambda data: data.update(
        endpoints=[e for e in data["endpoints"] if e["kind"] != "http"]))
    return reader


def _record(name: str, kind: str, status: str = "ok", host: str = "127.0.0.1", port: int = 27017, **fields) -> dict:
    record = base_record(Endpoint(name, kind, host, port, "test"))
    record.update(dict(dict(status=status, reachable=status != "unreachable", connect_ms=0.4, latency_ms=1.2,
                            version="7.0.1", duration=0.01), **fields))
    return record


@pytest.fixture
def bundle(host, tmp_path):
    _only_controldb(host, free_port())
    return _collect(host, tmp_path)


def _with_endpoints(reader, *records):
    edit_json(reader, "datastores.json", lambda data: data.update(endpoints=list(records)))
    return findings_of(reader)


def _area(findings):
    return [f for f in findings if f["area"] == "datastores"]


# -- made for real ---------------------------------------------------------------------------

def test_unreachable_datastore_is_critical(bundle):
    findings = findings_of(bundle)
    finding = one(findings, "datastore.unreachable", "mongodb_control")
    assert finding["severity"] == "critical"
    assert finding["evidence"]["file"] == "datastores.json"
    assert "connection refused" in finding["title"]


def test_silent_datastore_is_a_timeout(host, tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        _only_controldb(host, silent.getsockname()[1])
        reader = _collect(host, tmp_path, timeout=0.5)
    finally:
        silent.close()
    assert one(findings_of(reader), "datastore.timeout", "mongodb_control")["severity"] == "critical"


def test_datastore_that_answers_has_no_finding(bundle):
    assert _area(_with_endpoints(bundle, _record("mongodb_control", "mongodb"))) == []


def test_not_configured_datastore_has_no_finding(bundle):
    record = _record("ssdb_stats", "ssdb", status="not_configured")
    assert _area(_with_endpoints(bundle, record)) == []


# -- written into the bundle -------------------------------------------------------------------

@pytest.mark.parametrize("status,severity", [("auth_failed", "critical"), ("error", "warning"),
                                             ("timeout", "critical"), ("unreachable", "critical")])
def test_failed_statuses(bundle, status, severity):
    record = _record("rabbitmq", "rabbitmq", status=status, error="as the check said")
    finding = one(_with_endpoints(bundle, record), f"datastore.{status}", "rabbitmq")
    assert finding["severity"] == severity and "as the check said" in finding["title"]


@pytest.mark.parametrize("address,ms,slow", [("127.0.0.1", 250.0, True), ("127.0.0.1", 40.0, False),
                                             ("10.1.2.3", 250.0, False), ("10.1.2.3", 700.0, True)])
def test_slow_ping(bundle, address, ms, slow):
    record = _record("ssdb_hb", "ssdb", host=address, latency_ms=ms)
    found = matching(_with_endpoints(bundle, record), "datastore.slow", "ssdb_hb")
    assert bool(found) == slow
    if slow:
        assert found[0]["severity"] == "warning"


def test_slow_ping_on_the_hosts_own_name_counts_as_local(bundle):
    own = bundle.json("system.json")["hostname"]
    record = _record("ssdb_hb", "ssdb", host=own, latency_ms=250.0)
    assert one(_with_endpoints(bundle, record), "datastore.slow", "ssdb_hb")["evidence"]["figures"]["local"]


def _replica_set(states, lag_seconds=0, health=1):
    primary_time = datetime.datetime(2024, 5, 2, 8, 0, 0)
    members = []
    for index, state in enumerate(states):
        member = {"_id": index, "name": f"db{index + 1}:27017", "stateStr": state, "health": 1,
                  "optimeDate": primary_time, "uptime": 1000}
        if state == "SECONDARY":
            member["optimeDate"] = primary_time - datetime.timedelta(seconds=lag_seconds)
            member["health"] = health
        members.append(member)
    return _repl_status({"set": "rs0", "myState": 1, "members": members})


def _mongo_with(replica):
    return _record("mongodb_control", "mongodb", details={"replica_set": replica})


def test_healthy_replica_set_has_no_finding(bundle):
    replica = _replica_set(["PRIMARY", "SECONDARY", "SECONDARY"], lag_seconds=2)
    assert _area(_with_endpoints(bundle, _mongo_with(replica))) == []


def test_lagging_secondary(bundle):
    replica = _replica_set(["PRIMARY", "SECONDARY", "SECONDARY"], lag_seconds=45)
    findings = matching(_with_endpoints(bundle, _mongo_with(replica)), "mongodb.replica_lag")
    assert [f["subject"] for f in findings] == ["mongodb_control/db2:27017", "mongodb_control/db3:27017"]
    assert findings[0]["severity"] == "warning" and findings[0]["evidence"]["figures"]["lag_s"] == 45


def test_member_down_and_recovering(bundle):
    replica = _replica_set(["PRIMARY", "SECONDARY", "RECOVERING"], health=0)
    findings = _with_endpoints(bundle, _mongo_with(replica))
    assert one(findings, "mongodb.member_unhealthy", "mongodb_control/db2:27017")["severity"] == "critical"
    assert one(findings, "mongodb.member_unhealthy", "mongodb_control/db3:27017")["severity"] == "warning"


def test_replica_set_without_primary(bundle):
    replica = _replica_set(["SECONDARY", "SECONDARY"])
    assert one(_with_endpoints(bundle, _mongo_with(replica)), "mongodb.no_primary")["severity"] == "critical"


def _rabbit(exact=None, api_queues=None):
    queues = {name: {"exists": True, "messages": 0, "consumers": 1} for name in ("oxy_triggers", "oxy_triggers_prior")}
    for name, (messages, consumers) in (exact or {}).items():
        queues[name] = {"exists": True, "messages": messages, "consumers": consumers}
    api = [{"name": name, "messages": m, "messages_ready": m, "messages_unacknowledged": 0, "consumers": c,
            "state": "running"} for name, (m, c) in (api_queues or {}).items()]
    return _record("rabbitmq", "rabbitmq", port=5672, details={"vhost": "altcraft", "queues": queues,
                                                               "queue_families": _families(api)})


def test_quiet_queues_have_no_finding(bundle):
    record = _rabbit({"oxy_triggers": (9999, 2)}, {"trk_actions": (4999, 1), "akmta_main": (10, 1)})
    assert _area(_with_endpoints(bundle, record)) == []


@pytest.mark.parametrize("queue,messages,exact", [("oxy_triggers", 10000, True), ("oxy_triggers_prior", 5000, True),
                                                  ("trk_actions", 6000, False)])
def test_queue_above_the_vendor_threshold(bundle, queue, messages, exact):
    record = _rabbit({queue: (messages, 1)}) if exact else _rabbit(api_queues={queue: (messages, 1)})
    finding = one(_with_endpoints(bundle, record), "rabbitmq.queue_depth", queue)
    assert finding["severity"] == "warning" and finding["evidence"]["figures"]["messages"] == messages


def test_monitored_queue_without_consumer(bundle):
    record = _rabbit({"oxy_triggers": (12, 0)}, {"akmta_main": (3, 0), "other_queue": (5, 0)})
    findings = _with_endpoints(bundle, record)
    assert one(findings, "rabbitmq.no_consumer", "oxy_triggers")["severity"] == "warning"
    assert one(findings, "rabbitmq.no_consumer", "akmta_main")
    assert not matching(findings, "rabbitmq.no_consumer", "other_queue")


def test_queue_threshold_from_the_catalog(bundle):
    record = _rabbit({"oxy_triggers": (600, 1)})
    findings = _with_endpoints(bundle, record)
    assert not matching(findings, "rabbitmq.queue_depth")
    lowered = findings_of(bundle, rabbitmq_queue_depth_warning={"oxy_*": 500})
    assert one(lowered, "rabbitmq.queue_depth", "oxy_triggers")["evidence"]["figures"]["rule"] == "oxy_*"
