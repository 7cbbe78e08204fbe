"""The RabbitMQ and Kvrocks/Redis checks against real servers (.ci/services.sh starts
them on loopback and prints their addresses).  Each test creates the vhost, users,
queues and keys it needs and removes them afterwards."""

from __future__ import annotations

import json
import secrets
import time

import pytest
import redis

from collector.datastores.checks import check_endpoints
from collector.datastores.common import Endpoint
from conftest import collect_bundle
from servers import real_server
from servers.rabbit import rabbit  # noqa: F401  (a fixture)
from servers.hostile import refused_port
from servers.redisd import RedisServer

pytestmark = pytest.mark.servers
TIMEOUT = 3.0
BOUND = TIMEOUT + 1.5


# -- RabbitMQ -------------------------------------------------------------------------------


def _rabbit_endpoint(rabbit, password=None, vhost=None, api_port=None, user=None) -> Endpoint:
    return Endpoint("rabbitmq", "rabbitmq", rabbit["host"], rabbit["port"], "test", user=user or rabbit["user"],
                    secrets={"password": password or rabbit["password"]},
                    options={"vhost": vhost or rabbit["vhost"], "management_port": api_port or rabbit["api_port"]})


def test_rabbitmq_broker_queues_and_families(rabbit):
    record = check_endpoints([_rabbit_endpoint(rabbit)], TIMEOUT)[0]
    assert record["status"] == "ok", record["error"]
    details = record["details"]
    assert details["server"]["product"] == "RabbitMQ"
    assert record["version"] and record["version"] == details["server"]["version"]
    assert details["server"]["cluster_name"]
    assert record["latency_ms"] is not None and record["connect_ms"] is not None
    assert details["queues"]["oxy_triggers"] == {"exists": True, "messages": 3, "consumers": 0}
    assert details["queues"]["oxy_triggers_prior"] == {"exists": False, "messages": None, "consumers": None}
    assert details["management_api"]["status"] == "ok"
    families = details["queue_families"]
    assert families["trk_*"]["count"] == 2 and families["trk_*"]["messages_total"] == 2
    assert {q["name"] for q in families["trk_*"]["queues"]} == {"trk_actions", "trk_pixel"}
    assert families["akmta_*"]["count"] == 1 and families["akmta_*"]["messages_total"] == 1
    assert [q["name"] for q in families["geo_akmta_*"]["queues"]] == ["geo_akmta_eu"]
    assert rabbit["password"] not in json.dumps(record)


def test_rabbitmq_wrong_password(rabbit):
    started = time.monotonic()
    record = check_endpoints([_rabbit_endpoint(rabbit, password="wrong-password")], TIMEOUT)[0]
    assert record["status"] == "auth_failed"
    assert record["error"] == (f"authentication failed for user {rabbit['user']} on "
                               f"{rabbit['host']}:{rabbit['port']}")
    assert time.monotonic() - started < BOUND


def test_rabbitmq_missing_vhost(rabbit):
    record = check_endpoints([_rabbit_endpoint(rabbit, vhost="no-such-vhost")], TIMEOUT)[0]
    assert record["status"] == "auth_failed"
    assert "may not use vhost 'no-such-vhost'" in record["error"]


def test_rabbitmq_without_management_api_counts_exact_queues_and_notes_it(rabbit):
    port = refused_port()
    record = check_endpoints([_rabbit_endpoint(rabbit, api_port=port)], TIMEOUT)[0]
    assert record["status"] == "ok"
    assert record["details"]["queues"]["oxy_triggers"]["messages"] == 3
    assert record["details"]["queue_families"] is None
    assert any(f":{port}/api/queues/" in note and "not counted" in note for note in record["notes"])


def test_rabbitmq_user_the_management_api_refuses(rabbit):
    record = check_endpoints([_rabbit_endpoint(rabbit, user=rabbit["plain_user"])], TIMEOUT)[0]
    assert record["status"] == "ok"
    assert record["details"]["queues"]["oxy_triggers"]["messages"] == 3
    assert record["details"]["management_api"]["status"] == "refused"
    assert record["details"]["queue_families"] is None
    assert any(f"refused user {rabbit['plain_user']} (HTTP 401)" in note for note in record["notes"])


def test_rabbitmq_through_main_json_in_a_whole_collection(rabbit, host, tmp_path):
    path = host.basedir / "config" / "main.json"
    config = json.loads(path.read_text())
    config.update(RABBITMQ_HOST=f"{rabbit['host']}:{rabbit['port']}", RABBITMQ_USER=rabbit["user"],
                  RABBITMQ_PASS=rabbit["password"], RABBITMQ_VHOST=rabbit["vhost"])
    path.write_text(json.dumps(config))
    host.catalog_file.write_text(host.catalog_file.read_text() +
                                 f"components:\n  - {{name: rabbitmq, management_port: {rabbit['api_port']}}}\n")
    result, reader = collect_bundle(host, tmp_path / "out", only=("datastores",))
    record = next(r for r in reader.json("datastores.json")["endpoints"] if r["name"] == "rabbitmq")
    assert record["status"] == "ok" and record["source"] == "main.json RABBITMQ_HOST"
    assert record["user"] == rabbit["user"]
    assert record["details"]["queue_families"]["trk_*"]["count"] == 2
    raw = b"".join(p.read_bytes() for p in result.path.rglob("*") if p.is_file())
    assert rabbit["password"].encode() not in raw


# -- Redis (standing in for Kvrocks) ------------------------------------------------------------


@pytest.fixture
def redis_server():
    host, port = real_server("AKDIAG_TEST_REDIS")
    client = redis.Redis(host=host, port=port, protocol=2, socket_timeout=5)
    key = f"akdiag:test:{secrets.token_hex(4)}"
    client.set(key, "1")
    yield {"host": host, "port": port, "client": client, "key": key}
    client.delete(key)
    client.close()


def _redis_endpoint(server, password=None) -> Endpoint:
    return Endpoint("kvrocks_duplicates", "kvrocks", server["host"], server["port"], "test",
                    secrets={"password": password} if password else {},
                    options={"password_from": "main.json CAMP_DUPLICATESDB.PASSWORD"})


def test_redis_info_sections(redis_server):
    record = check_endpoints([_redis_endpoint(redis_server)], TIMEOUT)[0]
    assert record["status"] == "ok", record["error"]
    info = record["details"]["info"]
    assert set(info) == {"server", "clients", "memory", "persistence", "keyspace"}
    assert record["version"] == info["server"]["redis_version"]
    assert info["clients"]["connected_clients"] >= 1
    assert info["memory"]["used_memory"] > 0
    assert "rdb_last_bgsave_status" in info["persistence"]
    assert info["keyspace"]["db0"]["keys"] >= 1
    assert record["details"]["auth"] == "no password configured"


def test_redis_with_a_password(redis_server):
    client = redis_server["client"]
    password = f"kv-{secrets.token_hex(16)}"
    client.config_set("requirepass", password)
    try:
        good = check_endpoints([_redis_endpoint(redis_server, password)], TIMEOUT)[0]
        bad = check_endpoints([_redis_endpoint(redis_server, "wrong-password")], TIMEOUT)[0]
        none = check_endpoints([_redis_endpoint(redis_server)], TIMEOUT)[0]
    finally:
        admin = redis.Redis(host=redis_server["host"], port=redis_server["port"], password=password,
                            protocol=2, socket_timeout=5)
        admin.config_set("requirepass", "")
        admin.close()
    assert good["status"] == "ok" and good["details"]["auth"] == "ok"
    where = f"{redis_server['host']}:{redis_server['port']}"
    assert bad["status"] == "auth_failed"
    assert bad["error"] == (f"authentication failed on {where}: the password from "
                            "main.json CAMP_DUPLICATESDB.PASSWORD was refused")
    assert none["status"] == "auth_failed"
    assert none["error"] == f"{where} requires a password and main.json CAMP_DUPLICATESDB.PASSWORD gives none"
    assert password not in json.dumps([good, bad, none])


def _own_redis_endpoint(server: RedisServer, password, kind="kvrocks") -> Endpoint:
    key = "main.json CAMP_DUPLICATESDB.PASSWORD" if kind == "kvrocks" else "main.json SSDB_HBSUPP_PASS"
    return Endpoint(f"{kind}-{server.port}", kind, server.host, server.port, "test",
                    secrets={"password": password} if password else {}, options={"password_from": key})


def test_a_password_the_server_does_not_require_is_noted_not_refused():
    """Two redis-servers of this test's own: one without a password, which refuses AUTH
    with "called without any password configured", and one with requirepass."""
    password = f"kv-{secrets.token_hex(16)}"
    wrong = f"wrong-{secrets.token_hex(16)}"
    with RedisServer() as open_server, RedisServer(password=password) as locked:
        records = check_endpoints([
            _own_redis_endpoint(open_server, password),
            _own_redis_endpoint(open_server, password, kind="ssdb"),
            _own_redis_endpoint(locked, wrong),
            _own_redis_endpoint(locked, password),
        ], TIMEOUT)
    kvrocks, ssdb, refused, accepted = records
    for record, key in ((kvrocks, "CAMP_DUPLICATESDB.PASSWORD"), (ssdb, "SSDB_HBSUPP_PASS")):
        assert record["status"] == "ok", record["error"]
        assert record["error"] is None and record["details"]["auth"] == "not needed"
        note = next(n for n in record["notes"] if n.startswith("main.json"))
        # the server's own words, as redis-server 7 says them
        assert note.startswith(f"main.json {key} gives a password, but 127.0.0.1:{open_server.port} has none set: "
                               "checked without it (AUTH: AUTH <password> called without any password configured")
        # the check went on, unauthenticated, on a new connection
        assert record["latency_ms"] is not None and record["version"]
    assert kvrocks["details"]["info"]["server"]["redis_version"] == kvrocks["version"]
    assert any("Redis's text form" in n for n in ssdb["notes"])
    assert refused["status"] == "auth_failed"
    assert refused["error"] == (f"authentication failed on 127.0.0.1:{locked.port}: the password from "
                                "main.json CAMP_DUPLICATESDB.PASSWORD was refused")
    assert accepted["status"] == "ok" and accepted["details"]["auth"] == "ok"
    text = json.dumps(records)
    assert password not in text and wrong not in text


# -- a real server that answers late -------------------------------------------------------------

_BUSY = """local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
while true do
  local n = redis.call('TIME')
  if n[1] * 1000000 + n[2] - start >= tonumber(ARGV[1]) * 1000 then return 1 end
end"""


def _while_busy(server: RedisServer, busy_ms: int, budget: float) -> dict:
    """The check of a redis-server that a Lua script keeps busy for `busy_ms`: every
    command sent meanwhile is answered only when the script ends."""
    import threading

    blocker = redis.Redis(host=server.host, port=server.port, socket_timeout=10)
    thread = threading.Thread(target=blocker.eval, args=(_BUSY, 0, busy_ms), daemon=True)
    thread.start()
    time.sleep(0.1)  # the script runs
    try:
        return check_endpoints([_own_redis_endpoint(server, None)], budget)[0]
    finally:
        thread.join(10)
        blocker.close()


def test_a_busy_server_answering_after_the_budget_is_late_not_silent():
    with RedisServer() as server:
        record = _while_busy(server, 800, 0.5)
    assert record["status"] == "ok", record
    assert record["late"] is True and 0.5 < record["answered_s"] < 1.0


def test_a_server_busy_past_twice_the_budget_is_a_timeout():
    with RedisServer() as server:
        record = _while_busy(server, 1600, 0.5)
    assert record["status"] == "timeout", record
    assert record["late"] is None and record["error"].startswith("no reply within 1 s from")
