"""The datastores analyzer.  An unreachable and a silent server are made for real; a
refused login, a slow ping, an unhealthy replica member or a deep queue cannot be made
here, so those records are written into a real bundle's datastores.json with the
shapes the datastore checks produce (built by their own functions)."""

from __future__ import annotations

import datetime
import json
import socket
import time

import pytest

from collector.datastores.checks import check_endpoints
from collector.datastores.common import Endpoint, base_record
from collector.datastores.mongodb import _repl_status
from collector.datastores.rabbitmq import _families
from conftest import collect_bundle
from servers.httpd import FakeHTTP
from servers.mongo import MongoStandIn
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
    assert [f["subject"] for f in findings] == ["rs0/db2:27017", "rs0/db3:27017"]
    assert findings[0]["evidence"]["figures"]["seen_from"] == ["mongodb_control"]
    assert "seen from" not in findings[0]["title"]
    assert findings[0]["severity"] == "warning" and findings[0]["evidence"]["figures"]["lag_s"] == 45


def test_member_down_and_recovering(bundle):
    replica = _replica_set(["PRIMARY", "SECONDARY", "RECOVERING"], health=0)
    findings = _with_endpoints(bundle, _mongo_with(replica))
    assert one(findings, "mongodb.member_unhealthy", "rs0/db2:27017")["severity"] == "critical"
    assert one(findings, "mongodb.member_unhealthy", "rs0/db3:27017")["severity"] == "warning"


def test_replica_set_without_primary(bundle):
    replica = _replica_set(["SECONDARY", "SECONDARY"])
    assert one(_with_endpoints(bundle, _mongo_with(replica)), "mongodb.no_primary")["severity"] == "critical"


def _service_record(routes, service="webcontrol", timeout=2.0) -> dict:
    """The record of a real check of a real HTTP server on loopback."""
    with FakeHTTP(routes) as server:
        endpoint = Endpoint(service, "http", "127.0.0.1", server.port, "test", options={"service": service})
        return check_endpoints([endpoint], timeout)[0]


PLATFORM_503 = (503, {"status": "FAIL", "failed": ["rabbitmq_connection"]})


def test_readiness_503_is_service_not_ready_naming_what_failed(bundle):
    record = _service_record({"/webcontrol/health": (200, "OK"), "/webcontrol/readiness": PLATFORM_503})
    findings = _with_endpoints(bundle, record)
    finding = one(findings, "service.not_ready", "webcontrol")
    assert finding["severity"] == "critical"
    assert finding["title"] == ("webcontrol is not ready: its readiness handler answered HTTP 503, "
                                "failed: rabbitmq_connection")
    figures = finding["evidence"]["figures"]
    assert figures["status_code"] == 503 and figures["failed"] == ["rabbitmq_connection"]
    assert not [f for f in findings if f["id"].startswith("datastore.")]


def test_health_503_is_service_not_ready_without_doubting_the_port(bundle):
    record = _service_record({"/webcontrol/health": PLATFORM_503, "/webcontrol/readiness": PLATFORM_503})
    findings = _with_endpoints(bundle, record)
    finding = one(findings, "service.not_ready", "webcontrol")
    assert finding["evidence"]["figures"]["handler"] == "readiness"
    assert "does this port serve" not in json.dumps(findings)
    assert not [f for f in findings if f["id"].startswith("datastore.")]


def test_a_ready_service_and_a_stranger_on_its_port_are_not_not_ready(bundle):
    ready = _service_record({"/webcontrol/health": (200, "OK"), "/webcontrol/readiness": (200, {"status": "OK"})})
    stranger = _service_record({}, service="webapi")
    findings = _with_endpoints(bundle, ready, stranger)
    assert not matching(findings, "service.not_ready")
    error = one(findings, "datastore.error", "webapi")
    assert error["title"].endswith("(does this port serve webapi?)")


def _delayed(delay: float):
    def route(_handler):
        time.sleep(delay)
        return 200, "OK"
    return route


def test_an_answer_after_the_budget_is_slow_not_a_timeout(bundle):
    # each of the two requests takes 0.35 s: 0.7 s in all, after the 0.5 s budget, before 1 s
    record = _service_record({"/webapi/health": _delayed(0.35), "/webapi/readiness": _delayed(0.35)},
                             service="webapi", timeout=0.5)
    assert record["status"] == "ok" and record["late"] is True, record
    assert 0.5 < record["answered_s"] < 1.0
    findings = _with_endpoints(bundle, record)
    finding = one(findings, "datastore.slow", "webapi")
    assert finding["severity"] == "warning"
    assert finding["evidence"]["figures"]["answered_s"] == record["answered_s"]
    assert finding["title"].startswith(f"webapi answered in {record['answered_s']:.1f} s, after its 0.5 s budget")
    assert not matching(findings, "datastore.timeout")


def test_no_answer_by_the_hard_stop_is_a_timeout(bundle):
    record = _service_record({"/webapi/health": _delayed(1.5)}, service="webapi", timeout=0.5)
    assert record["status"] == "timeout" and record["late"] is None
    assert record["error"].startswith("no reply within 1 s from")
    findings = _with_endpoints(bundle, record)
    assert one(findings, "datastore.timeout", "webapi")["severity"] == "critical"
    assert not matching(findings, "datastore.slow")


def test_an_answer_within_the_budget_is_on_time(bundle):
    record = _service_record({"/webapi/health": _delayed(0.05), "/webapi/readiness": (200, {"status": "OK"})},
                             service="webapi", timeout=0.5)
    assert record["status"] == "ok" and record["late"] is False and record["answered_s"] < 0.5
    assert not matching(_with_endpoints(bundle, record), "datastore.slow")


def test_a_real_replica_set_of_four_members_gives_each_problem_once(host, tmp_path):
    """Four members answering replSetGetStatus as mongod does (db2 45 s behind, db3 not
    reachable/healthy), each checked through main.json's replica-set form."""
    servers = [MongoStandIn().start() for _ in range(4)]
    try:
        _only_controldb(host, servers[0].port)
        main = host.basedir / "config" / "main.json"
        config = json.loads(main.read_text())
        config.update(CONTROLDB_REPL_SET_NAME="rs0", CONTROLDB=[{"IP": "127.0.0.1", "PORT": s.port} for s in servers])
        main.write_text(json.dumps(config))
        reader = _collect(host, tmp_path, timeout=3.0)
    finally:
        for server in servers:
            server.stop()
    records = [e for e in reader.json("datastores.json")["endpoints"] if e["group"] == "mongodb_control"]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}, records
    findings = _area(findings_of(reader))
    assert sorted((f["id"], f["subject"], f["severity"]) for f in findings) == [
        ("mongodb.member_unhealthy", "rs0/db3:27017", "critical"),
        ("mongodb.replica_lag", "rs0/db2:27017", "warning")]
    for finding in findings:
        assert finding["evidence"]["figures"]["seen_from"] == [r["name"] for r in records]
        assert finding["title"].endswith("(seen from 4 endpoints)")


def _members_of(replica, count, group="mongodb_control"):
    """`count` endpoints of one component, each with its own view of the same set."""
    return [_record(f"{group}_{i + 1}", "mongodb", host=f"db{i + 1}", group=group, details={"replica_set": replica})
            for i in range(count)]


def test_lag_seen_from_four_endpoints_is_one_finding_per_member(bundle):
    replica = _replica_set(["PRIMARY", "SECONDARY", "SECONDARY", "SECONDARY"], lag_seconds=45)
    findings = matching(_with_endpoints(bundle, *_members_of(replica, 4)), "mongodb.replica_lag")
    assert [f["subject"] for f in findings] == ["rs0/db2:27017", "rs0/db3:27017", "rs0/db4:27017"]
    for finding in findings:
        assert finding["severity"] == "warning"
        assert finding["evidence"]["figures"]["seen_from"] == [f"mongodb_control_{i}" for i in range(1, 5)]
        assert finding["title"].endswith("is 45 s behind the primary (seen from 4 endpoints)")


def test_missing_primary_seen_from_eight_endpoints_is_one_critical_finding(bundle):
    replica = _replica_set(["SECONDARY"] * 8)
    findings = _with_endpoints(bundle, *_members_of(replica, 8))
    finding = one(findings, "mongodb.no_primary")
    assert finding["severity"] == "critical" and finding["subject"] == "rs0"
    assert finding["evidence"]["figures"]["seen_from"] == [f"mongodb_control_{i}" for i in range(1, 9)]
    assert finding["title"] == "Replica set rs0 of mongodb_control has no primary (seen from 8 endpoints)"


def test_views_that_differ_keep_the_worst_and_two_components_stay_apart(bundle):
    calm = _replica_set(["PRIMARY", "SECONDARY"], lag_seconds=20)
    worse = _replica_set(["PRIMARY", "SECONDARY"], lag_seconds=90, health=0)
    records = _members_of(calm, 2) + _members_of(worse, 1, group="mongodb_control_x")
    records[1]["details"] = {"replica_set": worse}  # the second member of the first set sees it worse
    findings = _with_endpoints(bundle, *records)
    lags = matching(findings, "mongodb.replica_lag")
    assert [(f["evidence"]["figures"]["component"], f["evidence"]["figures"]["lag_s"]) for f in lags] == [
        ("mongodb_control", 90.0), ("mongodb_control_x", 90.0)]
    assert lags[0]["evidence"]["figures"]["seen_from"] == ["mongodb_control_1", "mongodb_control_2"]
    unhealthy = matching(findings, "mongodb.member_unhealthy")
    assert [f["severity"] for f in unhealthy] == ["critical", "critical"]
    assert unhealthy[0]["evidence"]["figures"]["seen_from"] == ["mongodb_control_2"]


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
