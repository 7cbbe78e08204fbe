"""The datastores collector in a real collection: a simulated host whose main.json
points at stand-in servers, the bundle's datastores.json, no credential anywhere in the
bundle, and the time bound of a whole collect with every datastore hanging."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from collector.bundle.reader import BundleReader
from collector.catalog import load_catalog
from collector.context import CollectOptions
from collector.datastores.checks import GRACE_SECONDS, hard_limit
from collector.run import CollectRequest, collect
from conftest import akdiag, collect_bundle
from servers.hostile import Tarpit, refused_port
from servers.httpd import FakeHTTP, health_routes
from servers.mongo import MongoStandIn
from servers.ssdb import FakeSSDB

RECORD_KEYS = {"name", "kind", "group", "description", "host", "port", "source", "user", "status", "reachable",
               "connect_ms", "latency_ms", "version", "error", "cause", "duration", "notes", "details", "command_errors",
               "budget_s", "client_ready_s", "answered_s", "late"}


def _rewrite_config(host, **changes) -> dict:
    path = host.basedir / "config" / "main.json"
    config = json.loads(path.read_text())
    config.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del config[key]
    path.write_text(json.dumps(config, indent=2))
    return config


def _bundle_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_datastores_json_from_a_simulated_host(host, tmp_path):
    ssdb_password = f"hb-{host.secret_seed}-padding-to-32-chars"
    with MongoStandIn() as mongo, FakeSSDB(password=ssdb_password) as hb, FakeSSDB() as notify, \
            Tarpit() as kvrocks, FakeHTTP(health_routes("webcontrol")) as webcontrol:
        _rewrite_config(
            host, CONTROLDB_PORT=mongo.port, CONTROLDB_USER=None, CONTROLDB_PASS=None,
            SSDB_HBSUPP_PORT=hb.port, SSDB_HBSUPP_PASS=ssdb_password, SSDB_NOTIFY_PORT=notify.port,
            RABBITMQ_HOST=f"127.0.0.1:{refused_port()}",
            CAMP_DUPLICATESDB={"MODE": "single", "PASSWORD": f"kv-{host.secret_seed}",
                               "NODES": [{"HOST": "127.0.0.1", "PORT": kvrocks.port}]},
            WEBCONTROL_PUBLIC_PORT=webcontrol.port)
        result, reader = collect_bundle(host, tmp_path / "out", only=("datastores",), datastore_timeout=1.0)
    outcome = next(o for o in result.outcomes if o.name == "datastores")
    assert outcome.status == "ok" and outcome.output == "datastores.json"
    data = reader.json("datastores.json")
    assert data["errors"] == [] and data["timeout_s"] == 1.0
    assert data["main_json"]["state"] == "ok"
    records = {r["name"]: r for r in data["endpoints"]}
    assert all(set(r) == RECORD_KEYS for r in records.values())
    assert records["mongodb_control"]["status"] == "ok"
    assert records["mongodb_control"]["details"]["replica_set"]["max_lag_s"] == 45.0
    assert records["ssdb_hb"]["status"] == "ok" and records["ssdb_hb"]["details"]["auth"] == "ok"
    assert records["ssdb_notify"]["status"] == "ok" and records["ssdb_notify"]["version"] == "1.9.8"
    assert records["rabbitmq"]["status"] == "unreachable"
    assert records["kvrocks_duplicates"]["status"] == "timeout"
    assert records["kvrocks_duplicates"]["source"] == "main.json CAMP_DUPLICATESDB.NODES[0]"
    assert records["webcontrol"]["status"] == "ok"
    assert records["clickhouse"]["status"] in ("unreachable", "ok")  # port 9000 of this machine
    for name in ("kvrocks_workflow_cache", "trkwebctrl"):
        assert records[name]["status"] == "not_configured", name
        assert records[name]["notes"], name
    # main.json has no key for these: looked for at the catalog's default ports of this machine,
    # where nothing (or a server of another test) may listen, but never "down"
    down = {f["subject"] for f in result.findings if f["id"] == "datastore.unreachable"}
    for name in ("mongodb_accounts", "ssdb_actions", "ssdb_stats"):
        assert records[name]["source"] == "catalog default (main.json has no key for it)", name
        assert records[name]["status"] != "unreachable" and name not in down, name
    assert data["counts"]["not_configured"] >= 2
    # no credential, in any file of the bundle: not even the writer's scrubber had to catch one
    raw = _bundle_bytes(result.path)
    assert host.secret_seed.encode() not in raw
    # the scrubber found nothing to mask in datastores.json but mongod's `"authorization": "enabled"`
    # (getCmdLineOpts' security.authorization), which its authorization_header rule takes for a header
    redactions = reader.json("redactions.json")
    assert {r["rule"] for r in redactions["by_file"] if r["file"] == "datastores.json"} <= {"authorization_header"}


def _whole_collect(host, out: Path, timeout: float) -> float:
    started = time.monotonic()
    collect_bundle(host, out, datastore_timeout=timeout, cpu_sample_seconds=0.1, with_logs=False)
    return time.monotonic() - started


def test_every_datastore_hanging_costs_at_most_the_timeout_plus_2_s(host, tmp_path):
    timeout = 1.5
    # nothing listens: every check ends at once
    refused = {key: refused_port() for key in ("mongo", "hb", "notify", "rabbit", "clickhouse", "kvrocks", "web")}
    _rewrite_config(host, CONTROLDB_PORT=refused["mongo"], SSDB_HBSUPP_PORT=refused["hb"],
                    SSDB_NOTIFY_PORT=refused["notify"], RABBITMQ_HOST=f"127.0.0.1:{refused['rabbit']}",
                    CLICKHOUSE_SYSTEM={"HOST": "127.0.0.1", "PORT": refused["clickhouse"]},
                    CAMP_DUPLICATESDB={"NODES": [{"HOST": "127.0.0.1", "PORT": refused["kvrocks"]}]},
                    WEBCONTROL_PUBLIC_PORT=refused["web"])
    baseline = _whole_collect(host, tmp_path / "quick", timeout)
    tarpits = [Tarpit().start() for _ in range(7)]
    try:
        ports = [t.port for t in tarpits]
        _rewrite_config(host, CONTROLDB_PORT=ports[0], SSDB_HBSUPP_PORT=ports[1], SSDB_NOTIFY_PORT=ports[2],
                        RABBITMQ_HOST=f"127.0.0.1:{ports[3]}",
                        CLICKHOUSE_SYSTEM={"HOST": "127.0.0.1", "PORT": ports[4]},
                        CAMP_DUPLICATESDB={"NODES": [{"HOST": "127.0.0.1", "PORT": ports[5]}]},
                        WEBCONTROL_PUBLIC_PORT=ports[6])
        hanging = _whole_collect(host, tmp_path / "slow", timeout)
        data = json.loads(next((tmp_path / "slow").glob("*/datastores.json")).read_text())
    finally:
        for tarpit in tarpits:
            tarpit.stop()
    statuses = {r["name"]: r["status"] for r in data["endpoints"]}
    for name in ("mongodb_control", "ssdb_hb", "ssdb_notify", "rabbitmq", "kvrocks_duplicates", "webcontrol"):
        assert statuses[name] == "timeout", (name, statuses)
    # the probe, the client libraries' import and twice the budget for a late answer, no more
    assert hanging <= baseline + hard_limit(timeout) + GRACE_SECONDS + 0.5, (baseline, hanging)


def test_cli_passes_the_datastore_timeout(host, tmp_path):
    with Tarpit() as tarpit:
        _rewrite_config(host, SSDB_HBSUPP_PORT=tarpit.port)
        out = tmp_path / "cli"
        out.mkdir()
        started = time.monotonic()
        proc = akdiag("collect", "--basedir", str(host.basedir), "--output", str(out), "--format", "dir",
                      "--datastore-timeout", "0.5", "--quiet")
        elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    bundle = Path(proc.stdout.strip())
    data = json.loads((bundle / "datastores.json").read_text())
    assert data["timeout_s"] == 0.5
    hb = next(r for r in data["endpoints"] if r["name"] == "ssdb_hb")
    assert hb["status"] == "timeout" and hb["error"] == f"no reply within 1 s from 127.0.0.1:{tarpit.port} (AUTH)"
    log = (bundle / "akdiag.log").read_text()
    assert host.secret_seed not in log and host.secret_seed not in proc.stdout + proc.stderr
    assert elapsed < 60


@pytest.mark.parametrize("state", ["missing", "invalid"])
def test_without_a_usable_main_json_the_catalog_defaults_are_checked(host, tmp_path, state):
    path = host.basedir / "config" / "main.json"
    if state == "missing":
        path.unlink()
    else:
        path.write_text('{"CONTROLDB_IP": ')
    result, reader = collect_bundle(host, tmp_path / "out", only=("datastores",), datastore_timeout=0.5)
    data = reader.json("datastores.json")
    assert data["main_json"]["state"] == state
    records = {r["name"]: r for r in data["endpoints"]}
    assert records["ssdb_actions"]["source"] == f"catalog default (main.json {state})"
    assert records["ssdb_actions"]["port"] == 4410
    outcome = next(o for o in result.outcomes if o.name == "datastores")
    assert outcome.status == ("ok" if state == "missing" else "partial")


def _collect_with_default_ports(sim, out: Path, ports: dict) -> tuple:
    """A real collection whose catalog moves these components' default ports, as a
    packager's catalog would; no --catalog file names them, and main.json has no key for them."""
    catalog = load_catalog(sim.catalog_file)
    components = tuple(replace(c, port=ports[c.name]) if c.name in ports else c for c in catalog.components)
    out.mkdir(parents=True)
    request = CollectRequest(basedir=sim.basedir, basedir_source="test",
                             catalog=replace(catalog, components=components), output_dir=out, fmt="dir", timeout=60,
                             options=CollectOptions(only=("datastores",), datastore_timeout=1.0))
    result = collect(request)
    return result, BundleReader(result.path)


def test_a_component_main_json_has_no_key_for_is_checked_at_its_default_or_not_configured(host, tmp_path):
    stats_port, accounts_port = refused_port(), refused_port()
    with FakeSSDB() as actions:
        result, reader = _collect_with_default_ports(
            host, tmp_path / "out", {"ssdb_actions": actions.port, "ssdb_stats": stats_port,
                                     "mongodb_accounts": accounts_port})
    records = {r["name"]: r for r in reader.json("datastores.json")["endpoints"]}
    source = "catalog default (main.json has no key for it)"
    # something answers at the default: checked in full, as any endpoint
    found = records["ssdb_actions"]
    assert (found["status"], found["reachable"], found["source"], found["port"]) == ("ok", True, source, actions.port)
    assert found["version"] == "1.9.8" and found["details"]["info"]["server"] == "ssdb-server"
    # nothing listens there: not configured, with why, and no error
    for name, port in (("ssdb_stats", stats_port), ("mongodb_accounts", accounts_port)):
        record = records[name]
        assert (record["status"], record["reachable"], record["error"]) == ("not_configured", False, None), name
        assert (record["source"], record["port"]) == (source, port)
        assert record["notes"] == ["nothing listens at the catalog's default address and main.json has no key "
                                   f"for it (connection refused on 127.0.0.1:{port})"]
    # no finding says either is down; the summary lists them among those not configured
    assert not [f for f in result.findings if f["subject"] in ("ssdb_stats", "mongodb_accounts", "ssdb_actions")]
    html = (result.path / "summary.html").read_text()
    listed = re.search(r"Not configured here: (.*?)</p>", html)
    assert listed and "ssdb_stats" in listed.group(1) and "mongodb_accounts" in listed.group(1)
    assert "ssdb_actions" not in listed.group(1)
