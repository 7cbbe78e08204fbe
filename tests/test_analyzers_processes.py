"""The processes analyzer: each fault made on the simulated host (or, where it cannot be
made here, written into the bundle), and its healthy twin."""

from __future__ import annotations

import os
import resource
import time

import psutil
import pytest

from collector.live import iso_utc
from procfaults import unreaped_child
from triage_helpers import LoneHost, about, edit_json, findings_of, free_port, matching, one



@pytest.fixture
def lone(tmp_path):
    roles = {"main": {}, "web": {"port": free_port()}, "far": {"port": free_port(), "remote": True}}
    host = LoneHost(tmp_path / "lone", roles)
    yield host
    host.stop()


def _collect(lone, tmp_path, name="out"):
    """Collect, keeping only this test's own processes: those of another test running at
    the same time (the built-in catalog's names) must not change these findings."""
    reader = lone.collect(tmp_path / name)
    edit_json(reader, "processes.json", lambda data: data.update(
        expected=[p for p in data["expected"] if p["name"].startswith(f"zt{lone.tag}")]))
    return reader, findings_of(reader)


# -- down, and a PID file left behind ----------------------------------------------------

def test_process_down_is_critical_with_its_stale_pidfile(lone, tmp_path):
    lone.start("main")
    lone.sim.stop_process(lone.name("main"))
    _reader, findings = _collect(lone, tmp_path)
    down = one(findings, "process.down", lone.name("main"))
    assert down["severity"] == "critical"
    assert down["evidence"]["file"] == "processes.json"
    assert down["evidence"]["figures"]["pidfile_state"] == "stale"
    assert one(findings, "pidfile.stale", lone.name("main"))["severity"] == "warning"
    assert down["hint"]


def test_running_process_has_no_finding_but_its_recent_start(lone, tmp_path):
    lone.start("main", "web")
    _reader, findings = _collect(lone, tmp_path)
    for role in ("main", "web"):
        assert about(findings, lone.name(role)) == ["process.restarted"]


# -- several processes where one is expected ----------------------------------------------

def test_second_copy_is_a_duplicate(lone, tmp_path):
    lone.start("main")
    lone.sim.start_extra(lone.name("main"))
    _reader, findings = _collect(lone, tmp_path)
    duplicate = one(findings, "process.duplicate", lone.name("main"))
    assert duplicate["severity"] == "warning"
    assert len(duplicate["evidence"]["figures"]["pids"]) == 2


def test_single_copy_is_no_duplicate(lone, tmp_path):
    lone.start("main")
    _reader, findings = _collect(lone, tmp_path)
    assert not matching(findings, "process.duplicate", lone.name("main"))


# -- restarted ------------------------------------------------------------------------------

def test_process_started_minutes_ago_is_restarted(lone, tmp_path):
    lone.start("main")
    _reader, findings = _collect(lone, tmp_path)
    restarted = one(findings, "process.restarted", lone.name("main"))
    assert restarted["severity"] == "warning"
    assert restarted["evidence"]["figures"]["seconds_before"] < 600


def test_process_started_an_hour_ago_is_not_restarted(lone, tmp_path):
    """A process cannot be made an hour old here: the bundle says so instead."""
    lone.start("main")
    reader, _findings = _collect(lone, tmp_path)

    def an_hour_old(data):
        for record in data["expected"]:
            for resource_ in record["resources"]:
                resource_["started_at"] = iso_utc(time.time() - 3600)
    edit_json(reader, "processes.json", an_hour_old)
    assert not matching(findings_of(reader), "process.restarted", lone.name("main"))


def test_most_of_the_platform_starting_together_is_one_info(tmp_path):
    roles = {f"p{i}": {} for i in range(4)}
    host = LoneHost(tmp_path / "lone", roles)
    try:
        host.start(*roles)
        _reader, findings = _collect(host, tmp_path)
    finally:
        host.stop()
    platform = one(findings, "platform.restarted")
    assert platform["severity"] == "info"
    assert sorted(platform["evidence"]["figures"]["processes"]) == sorted(host.name(r) for r in roles)
    assert not matching(findings, "process.restarted")


# -- PID files ------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["missing", "invalid", "reused", "stale"])
def test_pidfile_problems_of_a_running_process(lone, tmp_path, state):
    lone.start("main")
    name = lone.name("main")
    if state == "missing":
        (lone.sim.basedir / "pids" / f"{name}.pid").unlink()
    elif state == "invalid":
        lone.sim.write_pidfile(name, "not-a-pid")
    elif state == "reused":
        lone.sim.write_pidfile(name, str(os.getpid()))  # the test runner: not AK:<name>
    else:
        lone.sim.write_pidfile(name, str(lone.sim.dead_pid()))
    _reader, findings = _collect(lone, tmp_path)
    finding = one(findings, f"pidfile.{state}", name)
    assert finding["severity"] == "warning"
    assert finding["evidence"]["figures"]["state"] == state


def test_good_pidfile_has_no_finding(lone, tmp_path):
    lone.start("main")
    _reader, findings = _collect(lone, tmp_path)
    assert not [f for f in findings if f["id"].startswith("pidfile.") and f["subject"] == lone.name("main")]


# -- ports ----------------------------------------------------------------------------------

def test_port_held_by_another_program_names_it(lone, tmp_path):
    lone.sim.start_foreign(lone.port("web"), title="nginx-test")
    lone.start("web")  # cannot bind: the foreign program holds the port
    _reader, findings = _collect(lone, tmp_path)
    conflict = one(findings, "port.conflict", lone.name("web"))
    assert conflict["severity"] == "critical"
    assert "nginx-test" in conflict["title"]
    assert conflict["evidence"]["figures"]["owner_name"] == "nginx-test"


def test_running_process_not_listening_on_its_port(lone, tmp_path):
    lone.sim.start_extra(lone.name("web"), extra_args=["--port", "0"])  # runs, listens nowhere
    _reader, findings = _collect(lone, tmp_path)
    silent = one(findings, "port.not_listening", lone.name("web"))
    assert silent["severity"] == "critical"
    assert silent["evidence"]["figures"]["port"] == lone.port("web")


def test_process_listening_on_its_port_has_no_port_finding(lone, tmp_path):
    lone.start("web")
    _reader, findings = _collect(lone, tmp_path)
    assert not [f for f in findings if f["id"].startswith("port.") and f["subject"] == lone.name("web")]


# -- open files -----------------------------------------------------------------------------

@pytest.mark.parametrize("share,severity", [(0.85, "warning"), (0.97, "critical")])
def test_open_files_near_the_limit(lone, tmp_path, share, severity):
    proc = lone.sim.start_extra(lone.name("main"), open_files=84)
    process = psutil.Process(proc.pid)
    limit = int(process.num_fds() / share) + 1  # its own limit, lowered so that it is this full
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    process.rlimit(resource.RLIMIT_NOFILE, (limit, hard))
    _reader, findings = _collect(lone, tmp_path)
    finding = one(findings, "process.open_files", lone.name("main"))
    assert finding["severity"] == severity
    assert finding["evidence"]["figures"]["limit"] == limit


def test_few_open_files_have_no_finding(lone, tmp_path):
    lone.sim.start_extra(lone.name("main"), open_files=84)
    _reader, findings = _collect(lone, tmp_path)
    assert not matching(findings, "process.open_files", lone.name("main"))


# -- zombies --------------------------------------------------------------------------------

def test_exited_unreaped_process_is_a_zombie(lone, tmp_path):
    lone.start("main")
    zombie = lone.sim.start_extra(lone.name("main"), extra_args=["--max-seconds", "0.05"])
    deadline = time.monotonic() + 10
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    _reader, findings = _collect(lone, tmp_path)
    finding = one(findings, "process.zombie", lone.name("main"))
    assert finding["severity"] == "warning"
    assert zombie.pid in finding["evidence"]["figures"]["zombie_pids"]
    assert not matching(findings, "process.duplicate", lone.name("main"))


def test_a_process_whose_only_pid_is_a_zombie_is_down_naming_it_and_its_parent(lone, tmp_path):
    """A real platform process (AK:<far>) whose child titled AK:<main> exited and was never reaped."""
    name = lone.name("main")
    parent, zombie = unreaped_child(lone.sim.basedir, lone.name("far"), name)
    try:
        lone.sim.write_pidfile(name, str(zombie))
        reader, findings = _collect(lone, tmp_path)
    finally:
        parent.stop()
    down = one(findings, "process.down", name)
    assert down["severity"] == "critical"
    assert down["title"] == (f"{name} is not running (exited; PID {zombie} is a zombie that its parent {parent.pid} "
                             f"(AK:{lone.name('far')}) never reaped)")
    assert [z["pid"] for z in down["evidence"]["figures"]["zombies"]] == [zombie]
    assert not matching(findings, "process.zombie", name)
    stale = one(findings, "pidfile.stale", name)
    assert f"{zombie}, a zombie: it exited and its parent {parent.pid}" in stale["title"]
    assert "zombie" in stale["hint"]
    html = reader.path("summary.html").read_text()
    assert f'<tr id="proc-{name}" class="status-down">' in html


def test_live_process_is_no_zombie(lone, tmp_path):
    lone.start("main")
    _reader, findings = _collect(lone, tmp_path)
    assert not matching(findings, "process.zombie", lone.name("main"))


# -- remote-capable processes -----------------------------------------------------------------

def test_absent_remote_process_is_info_only(lone, tmp_path):
    _reader, findings = _collect(lone, tmp_path)
    absent = one(findings, "process.absent_remote", lone.name("far"))
    assert absent["severity"] == "info"
    assert not matching(findings, "process.down", lone.name("far"))


def test_remote_process_running_here_is_not_absent(lone, tmp_path):
    lone.start("far")
    _reader, findings = _collect(lone, tmp_path)
    assert not matching(findings, "process.absent_remote", lone.name("far"))
