"""The services analyzer over a real bundle whose services.json is written by hand: no
service manager runs on the test machines, so a failed, restarting or healthy unit is
the file systemd's state would give (the contract in services.json's docs)."""

from __future__ import annotations

import pytest

from conftest import collect_bundle
from triage_helpers import edit_json, findings_of, matching, one


@pytest.fixture
def bundle(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("services",))
    return reader


def _unit(name: str, component: str, **state) -> dict:
    unit = {"unit": name, "component": component, "load_state": "loaded", "active_state": "active",
            "sub_state": "running", "result": "success", "restarts": 0, "exit_code": None, "exit_status": None,
            "signal": None, "main_pid": 812, "started_at": "2026-12-01T03:00:00Z", "exited_at": None,
            "journal": {"bundle_path": f"services/{name}.journal.txt", "lines": 12}}
    unit.update(state)
    return unit


def _services(reader, units, events=(), dumps=(), errors=(), manager="systemd"):
    def change(data: dict) -> None:
        data.update(manager=manager, units=list(units), events=list(events), errors=list(errors))
        data["coredumps"] = {"source": "coredumpctl", "core_pattern": "|/lib/systemd/systemd-coredump %P",
                             "dumps": list(dumps)}
    edit_json(reader, "services.json", change)
    return [f for f in findings_of(reader) if f["area"] == "services"]


def test_healthy_units_say_nothing(bundle):
    units = [_unit("mongod.service", "mongodb"), _unit("akd.service", "platform"),
             _unit("rabbitmq-server.service", "rabbitmq")]
    assert _services(bundle, units) == []


def test_a_failed_datastore_unit_is_critical_and_names_result_and_status(bundle):
    failed = _unit("mongod.service", "mongodb", active_state="failed", sub_state="failed", result="oom-kill",
                   exit_code="killed", exit_status=9, signal="SIGKILL", main_pid=None,
                   exited_at="2026-12-01T03:12:07Z")
    finding = one(_services(bundle, [failed, _unit("akd.service", "platform")]), "service.failed", "mongod.service")
    assert finding["severity"] == "critical"
    assert finding["title"] == ("mongod.service failed (result oom-kill, status 9/KILL) at 2026-12-01 03:12 UTC "
                                "(MongoDB)")
    assert "OOM killer" in finding["hint"] and "services/mongod.service.journal.txt" in finding["hint"]
    assert finding["evidence"]["file"] == "services.json"
    assert finding["evidence"]["figures"]["component"] == "mongodb"


def test_a_restarting_unit_is_a_warning_with_its_last_failure(bundle):
    looping = _unit("akd.service", "platform", active_state="activating", sub_state="auto-restart", restarts=28,
                    exit_code="exited", exit_status=1)
    events = [{"time": "2026-12-01T03:12:07.600000Z", "unit": "akd.service", "kind": "failed",
               "message": "akd.service: Failed with result 'exit-code'."},
              {"time": "2026-12-01T03:12:08.000000Z", "unit": "akd.service", "kind": "restarting",
               "message": "akd.service: Scheduled restart job, restart counter is at 28."}]
    finding = one(_services(bundle, [looping], events), "service.restarting", "akd.service")
    assert finding["severity"] == "warning"
    assert finding["title"] == ("akd.service restarted 28 times by systemd (waiting to restart now); "
                                "last exit: exit status 1 (the platform (akd))")
    assert finding["evidence"]["figures"]["restarts"] == 28
    assert finding["evidence"]["figures"]["last_failure"]["message"] == "akd.service: Failed with result 'exit-code'."


def test_units_are_not_judged_without_a_manager(bundle):
    failed = _unit("mongod.service", "mongodb", active_state="failed")
    assert _services(bundle, [failed], manager=None) == []


def test_systemctl_errors_are_not_checked_never_healthy(bundle):
    errors = ["systemctl list-units --all exited with code 1: Failed to connect to bus: No such file or directory"]
    finding = one(_services(bundle, [], errors=errors), "services.not_checked", "services")
    assert finding["severity"] == "warning"
    assert "Failed to connect to bus" in finding["title"]


def test_core_dumps_of_platform_and_datastores(bundle):
    started = bundle.manifest["started_at"]
    dumps = [{"time": started, "pid": 4242, "process": "api", "signal": "SIGSEGV", "size": 1 << 20, "path": None,
              "component": "platform"},
             {"time": "2026-01-01T00:00:00Z", "pid": 40, "process": "api", "signal": "SIGABRT", "size": 10,
              "path": None, "component": "platform"},
             {"time": "2020-01-01T00:00:00Z", "pid": 812, "process": "mongod", "signal": "SIGABRT", "size": 10,
              "path": None, "component": "mongodb"},
             {"time": started, "pid": 9, "process": "vim", "signal": "SIGSEGV", "size": 10, "path": None,
              "component": None}]
    findings = _services(bundle, [], dumps=dumps)
    api = one(findings, "process.core_dumped", "api")
    assert api["severity"] == "critical"  # the newest of its two is recent
    assert "(SIGSEGV, PID 4242)" in api["title"] and "2 dumps listed" in api["title"]
    mongod = one(findings, "process.core_dumped", "mongod")
    assert mongod["severity"] == "warning" and "MongoDB" in mongod["title"]
    assert matching(findings, "process.core_dumped", "vim") == []
