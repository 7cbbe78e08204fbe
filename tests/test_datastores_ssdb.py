"""The SSDB check end to end through redis-py against a RESP2 server that answers byte
for byte as a real SSDB 1.9.8 does (and rejects HELLO as it does)."""

from __future__ import annotations

import json
import time

import pytest
import redis

from collector.datastores.checks import check_endpoints
from collector.datastores.common import Endpoint
from servers.ssdb import FakeSSDB

PASSWORD = "hb-0123456789abcdef0123456789abcdef"  # SSDB refuses passwords under 32 characters
TIMEOUT = 3.0


def _check(port, kind="ssdb", password=None, name="ssdb_hb") -> dict:
    endpoint = Endpoint(name, kind, "127.0.0.1", port, "test", secrets={"password": password} if password else {},
                        options={"password_from": "main.json SSDB_HBSUPP_PASS"})
    return check_endpoints([endpoint], TIMEOUT)[0]


def test_the_stand_in_answers_as_the_capture_shows_and_rejects_hello():
    with FakeSSDB() as server:
        resp3 = redis.Redis(host="127.0.0.1", port=server.port, protocol=3, socket_timeout=2)
        try:
            resp3.ping()
            raise AssertionError("HELLO should have been refused")
        except redis.exceptions.ResponseError as exc:
            assert "Unknown Command: hello" in str(exc)
        finally:
            resp3.close()


def test_ssdb_with_its_password():
    with FakeSSDB(password=PASSWORD) as server:
        record = _check(server.port, password=PASSWORD)
        sent = [args[0].decode().upper() for args in server.commands]
    assert record["status"] == "ok", record["error"]
    assert record["version"] == "1.9.8"
    assert record["reachable"] is True and record["latency_ms"] is not None
    details = record["details"]
    assert details["auth"] == "ok"
    assert details["dbsize_bytes"] == 0
    info = details["info"]
    assert info["server"] == "ssdb-server" and info["links"] == 1 and info["total_calls"] == 0
    assert info["binlogs"] == {"capacity": 20000000, "min_seq": 0, "max_seq": 0}
    assert info["data_key_range"]["kv"] == '"" - ""'
    assert any("Compactions" in line for line in info["leveldb_stats"])
    # RESP2 only: no HELLO, no CLIENT SETINFO; AUTH first
    assert sent == ["AUTH", "PING", "INFO", "DBSIZE"]
    assert PASSWORD not in json.dumps(record)


def test_ssdb_without_auth():
    with FakeSSDB() as server:
        record = _check(server.port)
    assert record["status"] == "ok"
    assert record["details"]["auth"] == "no password configured"


def test_wrong_password_is_auth_failed_within_the_bound():
    with FakeSSDB(password=PASSWORD) as server:
        started = time.monotonic()
        record = _check(server.port, password="x" * 40)
    assert record["status"] == "auth_failed"
    assert record["error"] == (f"authentication failed on 127.0.0.1:{server.port}: the password from "
                               "main.json SSDB_HBSUPP_PASS was refused")
    assert "x" * 40 not in json.dumps(record)
    assert time.monotonic() - started < TIMEOUT + 1.5


def test_missing_password_is_auth_failed():
    with FakeSSDB(password=PASSWORD) as server:
        record = _check(server.port)
    assert record["status"] == "auth_failed"
    assert record["error"] == f"127.0.0.1:{server.port} requires a password and main.json SSDB_HBSUPP_PASS gives none"


def test_a_kvrocks_endpoint_that_is_really_ssdb_is_recognised():
    with FakeSSDB() as server:
        record = _check(server.port, kind="kvrocks", name="kvrocks_duplicates")
    assert record["status"] == "ok"
    assert record["version"] == "1.9.8"
    assert any("SSDB's array form" in note for note in record["notes"])


class NoPasswordSet(FakeSSDB):
    """Answers AUTH as a server with no password does in other versions than the local
    redis-server 7: Kvrocks and Redis 5 (which redis-py turns into an AuthenticationError
    and closes the connection on), Redis 6.0 (a plain error reply to redis-py)."""

    def __init__(self, reply: bytes):
        super().__init__()
        self.auth_reply = reply

    def _reply(self, args, state):
        if args and args[0].lower() == b"auth":
            return self.auth_reply
        return super()._reply(args, state)


@pytest.mark.parametrize("reply", [
    b"-ERR Client sent AUTH, but no password is set\r\n",
    b"-ERR Client sent AUTH, but no password is set. Did you mean AUTH <username> <password>?\r\n",
])
def test_a_password_the_server_has_none_for_is_not_needed(reply):
    with NoPasswordSet(reply) as server:
        record = _check(server.port, password=PASSWORD)
        sent = [args[0].decode().upper() for args in server.commands]
    assert record["status"] == "ok", record["error"]
    assert record["details"]["auth"] == "not needed" and record["version"] == "1.9.8"
    assert record["notes"] == [f"main.json SSDB_HBSUPP_PASS gives a password, but 127.0.0.1:{server.port} has none "
                               f"set: checked without it (AUTH: {reply[5:-2].decode()})"]
    assert sent == ["AUTH", "PING", "INFO", "DBSIZE"]
    assert PASSWORD not in json.dumps(record)
