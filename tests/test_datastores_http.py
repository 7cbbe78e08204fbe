"""Checks spoken over HTTP: the services' status handlers, ClickHouse's HTTP interface,
RabbitMQ's management API (its null counts stay null)."""

from __future__ import annotations

import json

from collector.datastores import rabbitmq
from collector.datastores.checks import check_endpoints
from collector.datastores.common import Check, Endpoint
from servers.hostile import Tarpit, refused_port
from servers.httpd import FakeHTTP, health_routes

TIMEOUT = 3.0


def _health(port, service="webapi") -> dict:
    endpoint = Endpoint(service, "http", "127.0.0.1", port, "test", options={"service": service})
    return check_endpoints([endpoint], TIMEOUT)[0]


def test_healthy_service():
    with FakeHTTP(health_routes("webapi")) as server:
        record = _health(server.port)
    assert record["status"] == "ok", record["error"]
    health = record["details"]["health"]
    assert (health["status_code"], health["body"]) == (200, "OK")
    assert health["url"] == f"http://127.0.0.1:{server.port}/webapi/health"
    readiness = record["details"]["readiness"]
    assert readiness["status_code"] == 200 and readiness["ready"] is True and readiness["status"] == "OK"
    assert record["latency_ms"] == health["ms"]


def test_readiness_503_lists_what_failed():
    with FakeHTTP(health_routes("webcontrol", ready=False, failed=["mongo", "rabbitmq"])) as server:
        record = _health(server.port, "webcontrol")
    assert record["status"] == "not_ready"
    assert record["error"] == (f"webcontrol is not ready (HTTP 503 from http://127.0.0.1:{server.port}"
                               "/webcontrol/readiness; failed: mongo, rabbitmq)")
    readiness = record["details"]["readiness"]
    assert readiness["ready"] is False and readiness["failed"] == ["mongo", "rabbitmq"]
    assert readiness["status"] == "FAIL"
    assert record["details"]["not_ready"] == {
        "handler": "readiness", "url": f"http://127.0.0.1:{server.port}/webcontrol/readiness",
        "status_code": 503, "failed": ["mongo", "rabbitmq"]}


FAILING = {"status": "FAIL", "failed": ["rabbitmq_connection"]}


def test_health_503_is_not_ready_and_does_not_doubt_the_port():
    routes = {"/webcontrol/health": (503, FAILING), "/webcontrol/readiness": (503, FAILING)}
    with FakeHTTP(routes) as server:
        record = _health(server.port, "webcontrol")
    assert record["status"] == "not_ready"
    assert "does this port serve" not in record["error"]
    assert record["details"]["not_ready"]["failed"] == ["rabbitmq_connection"]
    assert record["details"]["health"]["status_code"] == 503


def test_health_503_without_a_body_is_not_ready_and_names_no_component():
    routes = {"/webapi/health": (503, "Service Unavailable"), "/webapi/readiness": (404, "not found")}
    with FakeHTTP(routes) as server:
        record = _health(server.port)
    assert record["status"] == "not_ready"
    assert record["details"]["not_ready"] == {
        "handler": "health", "url": f"http://127.0.0.1:{server.port}/webapi/health", "status_code": 503, "failed": None}
    assert record["error"].endswith("/webapi/health; Service Unavailable)")


def test_readiness_non_2xx_naming_failed_components_is_not_ready():
    routes = {"/webapi/health": (200, "OK"), "/webapi/readiness": (500, FAILING)}
    with FakeHTTP(routes) as server:
        record = _health(server.port)
    assert record["status"] == "not_ready"
    assert record["details"]["not_ready"]["status_code"] == 500
    assert record["details"]["not_ready"]["failed"] == ["rabbitmq_connection"]


def test_readiness_404_is_an_error_not_not_ready():
    routes = {"/webapi/health": (200, "OK"), "/webapi/readiness": (404, "not found")}
    with FakeHTTP(routes) as server:
        record = _health(server.port)
    assert record["status"] == "error"
    assert record["error"] == (f"webapi readiness answered HTTP 404 from http://127.0.0.1:{server.port}"
                               "/webapi/readiness: not found")


def test_a_port_that_does_not_serve_the_service():
    with FakeHTTP({}) as server:
        record = _health(server.port, "cookiesaver")
    assert record["status"] == "error"
    assert record["error"].startswith(f"HTTP 404 from http://127.0.0.1:{server.port}/cookiesaver/health")
    assert record["error"].endswith("(does this port serve cookiesaver?)")


def test_clickhouse_version_and_uptime_over_http_with_header_credentials():
    with FakeHTTP({"/": (200, "24.8.4.13\t3600\n")}) as http, Tarpit() as native:
        endpoint = Endpoint("clickhouse", "clickhouse", "127.0.0.1", native.port, "test", user="default",
                            secrets={"password": "ch-pass-77"}, options={"http_port": http.port})
        record = check_endpoints([endpoint], TIMEOUT)[0]
        request = http.requests[0]
    assert record["status"] == "ok", record["error"]
    assert record["version"] == "24.8.4.13" and record["details"]["uptime_s"] == 3600
    assert "SELECT%20version()" in request["path"] and "ch-pass-77" not in request["path"]
    assert request["headers"]["X-ClickHouse-User"] == "default"
    assert request["headers"]["X-ClickHouse-Key"] == "ch-pass-77"
    assert "ch-pass-77" not in json.dumps(record)


def test_clickhouse_wrong_password():
    body = "Code: 516. DB::Exception: default: Authentication failed: password is incorrect. (AUTHENTICATION_FAILED)"
    with FakeHTTP({"/": (516, body)}) as http, Tarpit() as native:
        endpoint = Endpoint("clickhouse", "clickhouse", "127.0.0.1", native.port, "test", user="default",
                            secrets={"password": "nope"}, options={"http_port": http.port})
        record = check_endpoints([endpoint], TIMEOUT)[0]
    assert record["status"] == "auth_failed"
    assert record["error"] == f"authentication failed for user default on 127.0.0.1:{http.port} (HTTP 516)"


def test_clickhouse_without_http_interface_is_reachable_with_a_note():
    with Tarpit() as native:
        port = refused_port()
        endpoint = Endpoint("clickhouse", "clickhouse", "127.0.0.1", native.port, "test",
                            options={"http_port": port})
        record = check_endpoints([endpoint], TIMEOUT)[0]
    assert record["status"] == "ok" and record["reachable"] is True and record["version"] is None
    assert record["notes"] == [f"HTTP interface on port {port} did not answer (connection refused on "
                               f"127.0.0.1:{port}); version unknown"]


def _api_check(port, password="mq-pass") -> Check:
    endpoint = Endpoint("rabbitmq", "rabbitmq", "127.0.0.1", 5672, "test", user="altcraft",
                        secrets={"password": password}, options={"vhost": "altcraft", "management_port": port})
    return Check(endpoint, TIMEOUT)


def test_management_api_families_keep_null_counts_null():
    queues = [
        {"name": "trk_actions", "messages": 12, "messages_ready": 10, "messages_unacknowledged": 2,
         "consumers": 3, "state": "running"},
        {"name": "trk_pixel", "messages": None, "messages_ready": None, "messages_unacknowledged": None,
         "consumers": 0, "state": None},
        {"name": "akmta_default", "messages": 5, "messages_ready": 5, "messages_unacknowledged": 0,
         "consumers": 1, "state": "running"},
        {"name": "geo_akmta_eu", "messages": 0, "messages_ready": 0, "messages_unacknowledged": 0,
         "consumers": 1, "state": "running"},
        {"name": "oxy_triggers", "messages": 1, "consumers": 1},
    ]
    with FakeHTTP({"/api/queues/altcraft": (200, queues)}) as api:
        chk = _api_check(api.port)
        found = rabbitmq._api_queues(chk, "altcraft", "altcraft")
        auth = api.requests[0]["headers"]["Authorization"]
    families = rabbitmq._families(found)
    trk = families["trk_*"]
    assert trk["count"] == 2
    assert trk["messages_total"] is None  # one of them is unknown
    assert trk["consumers_total"] == 3
    pixel = next(q for q in trk["queues"] if q["name"] == "trk_pixel")
    assert pixel["messages"] is None and pixel["messages_ready"] is None and pixel["state"] is None
    assert families["akmta_*"]["messages_total"] == 5 and families["akmta_*"]["count"] == 1
    assert [q["name"] for q in families["geo_akmta_*"]["queues"]] == ["geo_akmta_eu"]
    assert chk.record["details"]["management_api"]["status"] == "ok"
    assert auth.startswith("Basic ") and "mq-pass" not in json.dumps(chk.record)


def test_management_api_that_does_not_answer_is_noted():
    port = refused_port()
    chk = _api_check(port)
    assert rabbitmq._api_queues(chk, "altcraft", "altcraft") is None
    assert chk.record["details"]["management_api"]["status"] == "no_answer"
    assert chk.record["notes"] == [
        f"management API http://127.0.0.1:{port}/api/queues/altcraft did not answer (connection refused on "
        f"127.0.0.1:{port}); queues trk_*, akmta_*, geo_akmta_* not counted"]


def test_management_api_refusing_the_user_is_noted():
    with FakeHTTP({"/api/queues/altcraft": (401, {"error": "not_authorised"})}) as api:
        chk = _api_check(api.port)
        assert rabbitmq._api_queues(chk, "altcraft", "altcraft") is None
    assert chk.record["details"]["management_api"]["status"] == "refused"
    assert "refused user altcraft (HTTP 401)" in chk.record["notes"][0]
