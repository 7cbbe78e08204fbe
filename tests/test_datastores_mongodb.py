"""The MongoDB check: the real pymongo against mockupdb answering as MongoDB's reference
documentation shows (serverStatus, buildInfo, replSetGetStatus with a member 45 s
behind, listDatabases, currentOp, hostInfo, getCmdLineOpts, Unauthorized)."""

from __future__ import annotations

import json
import threading
import time

from collector.datastores.checks import GRACE_SECONDS, check_endpoints, hard_limit
from collector.datastores.common import Endpoint
from servers import mongo
from servers.mongo import MongoStandIn

TIMEOUT = 3.0


def _check(port, **kwargs) -> dict:
    endpoint = Endpoint("mongodb_control", "mongodb", "127.0.0.1", port, "test",
                        options={"auth_source": "admin"}, **kwargs)
    return check_endpoints([endpoint], TIMEOUT)[0]


def test_every_figure_from_a_healthy_replica_set_member():
    with MongoStandIn() as server:
        record = _check(server.port)
    assert record["status"] == "ok", record["error"]
    assert record["reachable"] is True and record["connect_ms"] >= 0 and record["latency_ms"] >= 0
    assert record["version"] == "7.0.14"
    assert record["command_errors"] == {}
    details = record["details"]
    assert details["build_info"]["git_version"] == mongo.BUILD_INFO["gitVersion"]
    status = details["server_status"]
    assert status["uptime_s"] == 86400.0
    assert status["connections"] == {"current": 25, "available": 838835, "totalCreated": 1200, "active": 5,
                                     "rejected": 0}
    assert status["memory_mb"]["resident"] == 1024
    assert status["opcounters"]["command"] == 10000
    assert status["asserts"]["user"] == 12
    assert status["wiredtiger_cache"] == {"used_bytes": 734003200, "dirty_bytes": 1048576,
                                          "max_bytes": 8053063680}
    assert status["global_lock"]["current_queue"] == {"total": 3, "readers": 1, "writers": 2}
    repl = details["replica_set"]
    assert repl["set"] == "rs0" and repl["primary"] == "db1:27017"
    members = {m["name"]: m for m in repl["members"]}
    assert members["db1:27017"]["lag_s"] == 0.0 and members["db1:27017"]["self"] is True
    assert members["db2:27017"]["lag_s"] == mongo.LAG_SECONDS and members["db2:27017"]["state"] == "SECONDARY"
    assert members["db3:27017"]["health"] == 0 and members["db3:27017"]["lag_s"] is None
    assert "time limit" in members["db3:27017"]["last_heartbeat_message"]
    assert repl["max_lag_s"] == mongo.LAG_SECONDS
    dbs = details["databases"]
    assert dbs["count"] == 4 and dbs["total_size_bytes"] == 2684469248
    assert dbs["databases"][0] == {"name": "altcraft_system", "size_on_disk": 2147483648, "empty": False}
    ops = details["long_operations"]
    assert ops["count"] == 1 and ops["inspected"] == 2
    op = ops["operations"][0]
    assert (op["opid"], op["secs_running"], op["ns"], op["command"]) == (4567, 95.0, "altcraft_system.subscribers",
                                                                         "find")
    assert op["filter_fields"] == ["email", "status"] and op["plan_summary"] == "COLLSCAN"
    host = details["host_info"]
    assert host["system"]["numCores"] == 8 and host["os"]["name"] == "Ubuntu"
    assert host["extra"]["maxOpenFiles"] == 64000
    cmdline = details["command_line"]
    assert cmdline["argv"][-2:] == ["--sslPEMKeyPassword", "<redacted>"]
    assert cmdline["parsed"]["net"]["tls"]["certificateKeyFilePassword"] == "<redacted>"
    assert cmdline["parsed"]["security"]["keyFile"] == "/etc/mongo.key"
    text = json.dumps(record)
    for secret in (mongo.SECRET_EMAIL, mongo.PEM_SECRET, mongo.TLS_SECRET):
        assert secret not in text


def test_refused_commands_are_recorded_one_by_one_and_the_rest_go_on():
    with MongoStandIn(refuse=["hostInfo", "getCmdLineOpts"], replica_set=False) as server:
        record = _check(server.port)
    assert record["status"] == "ok"
    errors = record["command_errors"]
    assert set(errors) == {"hostInfo", "getCmdLineOpts", "replSetGetStatus"}
    assert errors["hostInfo"].startswith("not authorized on admin") and "(Unauthorized, code 13)" in errors["hostInfo"]
    assert errors["replSetGetStatus"] == "not running with --replSet (NoReplicationEnabled, code 76)"
    details = record["details"]
    assert "host_info" not in details and "command_line" not in details and "replica_set" not in details
    assert details["databases"]["count"] == 4 and details["long_operations"]["count"] == 1


def test_authentication_failure_names_the_user_not_the_password():
    with MongoStandIn() as server:
        started = time.monotonic()
        record = _check(server.port, user="altcraft", secrets={"password": "ctl-very-secret"})
    assert record["status"] == "auth_failed"
    assert record["error"] == (f"authentication failed for user altcraft (authSource admin) "
                               f"on 127.0.0.1:{server.port}")
    assert "ctl-very-secret" not in json.dumps(record)
    assert time.monotonic() - started < TIMEOUT


def test_a_command_nobody_answers_ends_in_timeout_within_the_bound():
    release = threading.Event()

    def never(request):
        release.wait(TIMEOUT + 5)  # holds mockupdb's thread for this connection
        return {}

    replies = mongo.default_replies()
    replies["serverstatus"] = never
    with MongoStandIn(replies=replies) as server:
        started = time.monotonic()
        record = _check(server.port)
        elapsed = time.monotonic() - started
        release.set()
    assert record["status"] == "timeout"
    assert record["error"] == f"no reply within 6 s from 127.0.0.1:{server.port} (serverStatus)"
    assert record["version"] == "7.0.14"  # what came before is kept
    assert elapsed < hard_limit(TIMEOUT) + GRACE_SECONDS + 0.5
