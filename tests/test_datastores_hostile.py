"""Servers that misbehave: each check ends in its recorded status, with a message a
person can act on, within its own time bound; and hanging servers never hold up the
others (all are checked at once)."""

from __future__ import annotations

import time

import pytest

from collector.datastores.checks import GRACE_SECONDS, check_endpoints, hard_limit
from collector.datastores.common import LATE_FACTOR, Endpoint
from servers.hostile import Closer, Garbage, Tarpit, refused_port
from servers.httpd import FakeHTTP, health_routes

TIMEOUT = 1.0
WAITED = "2"  # a silent server is waited for LATE_FACTOR x TIMEOUT once its client is ready
BOUND = hard_limit(TIMEOUT) + GRACE_SECONDS + 0.5
KINDS = ("mongodb", "ssdb", "kvrocks", "rabbitmq", "clickhouse", "http")

# (kind, server) -> (status, a fragment of the message); {port} is the server's port
EXPECTED = {
    ("mongodb", "closer"): ("error", "127.0.0.1:{port} closed the connection without a MongoDB reply"),
    ("mongodb", "garbage"): ("error", "127.0.0.1:{port} did not answer in the MongoDB wire protocol"),
    ("ssdb", "closer"): ("error", "127.0.0.1:{port} closed the connection without a reply to AUTH"),
    ("ssdb", "garbage"): ("error", "127.0.0.1:{port} did not answer in the Redis protocol (SSDB expected)"),
    ("kvrocks", "closer"): ("error", "127.0.0.1:{port} closed the connection without a reply to AUTH"),
    ("kvrocks", "garbage"): ("error", "did not answer in the Redis protocol (Kvrocks/Redis expected)"),
    ("rabbitmq", "closer"): ("error", "127.0.0.1:{port} closed the connection during the AMQP handshake"),
    ("rabbitmq", "garbage"): ("error", "127.0.0.1:{port} did not answer in AMQP 0-9-1"),
    ("http", "closer"): ("error", "127.0.0.1:{port} closed the connection without an HTTP reply"),
    ("http", "garbage"): ("error", "127.0.0.1:{port} did not answer in HTTP"),
    # ClickHouse's native port is checked for TCP only; its HTTP interface is the one that misbehaves
    ("clickhouse", "closer"): ("ok", None),
    ("clickhouse", "garbage"): ("ok", None),
}
PHASE = {"mongodb": "MongoDB handshake", "ssdb": "AUTH", "kvrocks": "AUTH", "rabbitmq": "AMQP handshake",
         "clickhouse": "HTTP interface, SELECT version(), uptime()", "http": "GET /webapi/health"}


def _endpoint(kind: str, port: int, name: str = "") -> Endpoint:
    options = {"service": "webapi", "http_port": port, "management_port": port, "vhost": "altcraft"}
    return Endpoint(name or kind, kind, "127.0.0.1", port, "test", user="altcraft",
                    secrets={"password": "pw-hostile-123"}, options=options)


def _check(kind: str, port: int) -> tuple:
    started = time.monotonic()
    record = check_endpoints([_endpoint(kind, port)], TIMEOUT)[0]
    return record, time.monotonic() - started


@pytest.mark.parametrize("kind", KINDS)
def test_tarpit_ends_in_timeout(kind):
    with Tarpit() as server:
        record, elapsed = _check(kind, server.port)
    assert record["status"] == "timeout", record
    assert record["reachable"] is True
    assert LATE_FACTOR * TIMEOUT == float(WAITED)
    assert record["error"] == f"no reply within {WAITED} s from 127.0.0.1:{server.port} ({PHASE[kind]})"
    assert record.get("late") is None  # nothing came: not a late answer
    assert elapsed < BOUND


@pytest.mark.parametrize("kind", KINDS)
def test_port_closing_at_once(kind):
    with Closer() as server:
        record, elapsed = _check(kind, server.port)
    status, fragment = EXPECTED[(kind, "closer")]
    assert record["status"] == status, record
    if fragment:
        assert fragment.format(port=server.port) in record["error"]
    else:
        assert any("closed the connection" in note for note in record["notes"])
    assert elapsed < BOUND


@pytest.mark.parametrize("kind", KINDS)
def test_random_bytes(kind):
    with Garbage() as server:
        record, elapsed = _check(kind, server.port)
    status, fragment = EXPECTED[(kind, "garbage")]
    assert record["status"] == status, record
    if fragment:
        assert fragment.format(port=server.port) in record["error"]
        assert "\n" not in record["error"]
    else:
        assert any("did not answer in HTTP" in note for note in record["notes"])
    assert elapsed < BOUND


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_listening(kind):
    port = refused_port()
    record, elapsed = _check(kind, port)
    assert record["status"] == "unreachable"
    assert record["reachable"] is False and record["connect_ms"] is None
    assert record["error"] == f"connection refused on 127.0.0.1:{port}"
    assert elapsed < TIMEOUT  # refused at once, not after a timeout


def test_unresolvable_host_is_unreachable():
    endpoint = Endpoint("ssdb_hb", "ssdb", "no-such-host.invalid", 4420, "test")
    record = check_endpoints([endpoint], TIMEOUT)[0]
    assert record["status"] == "unreachable"
    assert record["error"].startswith("cannot resolve host name 'no-such-host.invalid'")


def test_every_endpoint_hanging_at_once_takes_one_timeout():
    tarpits = [Tarpit().start() for _ in range(3)]
    try:
        endpoints = [_endpoint(kind, tarpit.port, f"{kind}-{i}") for kind in KINDS
                     for i, tarpit in enumerate(tarpits)]
        started = time.monotonic()
        records = check_endpoints(endpoints, TIMEOUT)
        elapsed = time.monotonic() - started
    finally:
        for tarpit in tarpits:
            tarpit.stop()
    assert [r["name"] for r in records] == [e.name for e in endpoints]
    assert {r["status"] for r in records} == {"timeout"}
    assert elapsed < BOUND


def test_a_check_that_ignores_its_own_timeouts_is_abandoned(monkeypatch):
    from collector.datastores import checks

    def stuck(chk):
        chk.tcp_probe()
        chk.phase = "waiting forever"
        time.sleep(TIMEOUT * 20)

    monkeypatch.setitem(checks.CHECKS, "redis", stuck)
    with Tarpit() as server:
        started = time.monotonic()
        record = check_endpoints([_endpoint("redis", server.port)], TIMEOUT)[0]
        elapsed = time.monotonic() - started
    assert record["status"] == "timeout"
    # it never said its client was ready: waited from its start until the hard stop
    waited = float(record["error"].split()[3])
    assert hard_limit(TIMEOUT) <= waited < BOUND
    assert record["error"] == f"no reply within {waited:g} s from 127.0.0.1:{server.port} (waiting forever)"
    assert record["reachable"] is True
    assert elapsed < BOUND


def test_an_endpoints_own_password_never_leaves_its_record(monkeypatch):
    from collector.datastores import checks

    def careless(chk):
        chk.tcp_probe()
        chk.note(f"connected with {chk.endpoint.password()}")
        chk.detail("uri", f"redis://:{chk.endpoint.password()}@{chk.endpoint.address}/0")

    monkeypatch.setitem(checks.CHECKS, "redis", careless)
    with Tarpit() as server:
        record = check_endpoints([_endpoint("redis", server.port)], TIMEOUT)[0]
    assert record["status"] == "ok"
    assert "pw-hostile-123" not in str(record)
    assert record["notes"] == ["connected with <redacted>"]


def _slow_client(monkeypatch, tmp_path, seconds: float) -> None:
    """The http check behind a client module that takes `seconds` to import, as pymongo,
    redis and pika do on a loaded host: a real module, really imported."""
    from collector.datastores import checks

    name = f"slow_client_{str(seconds).replace('.', '_')}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(
        f"import time\ntime.sleep({seconds})\nfrom collector.datastores.health import check\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(checks.CHECKS, "http", checks._probe_then(name))


def test_the_budget_starts_when_the_client_library_is_ready(monkeypatch, tmp_path):
    _slow_client(monkeypatch, tmp_path, 0.8)
    with FakeHTTP(health_routes("webapi")) as server:
        record = check_endpoints([_endpoint("http", server.port)], 0.5)[0]
    assert record["status"] == "ok", record  # not a timeout: the 0.8 s import is not the server's
    assert record["client_ready_s"] >= 0.8
    assert record["late"] is False and record["answered_s"] < 0.5 and record["budget_s"] == 0.5


def test_a_client_library_that_never_loads_is_cut_at_the_hard_stop(monkeypatch, tmp_path):
    _slow_client(monkeypatch, tmp_path, 2.5)
    with FakeHTTP(health_routes("webapi")) as server:
        started = time.monotonic()
        record = check_endpoints([_endpoint("http", server.port)], 0.5, limit=1.0)[0]
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + GRACE_SECONDS + 0.5
    assert record["status"] == "error" and record["reachable"] is True
    assert record["error"] == ("not asked: loading the client library did not finish within the run's limit "
                               f"for 127.0.0.1:{server.port}")
