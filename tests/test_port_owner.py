"""A platform port that something listens on while the collecting user cannot see which
program (psutil gives the socket no PID when its owner belongs to another user): the
state `listening_owner_unknown`, not a `conflict`.  Built on real listening sockets: as
psutil lists them to root, with the PID taken away as it does for an unprivileged user,
and as the user `nobody` really sees them; each beside its twin whose owner is known."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from collector import live, report
from collector.catalog import ProcessSpec
from collector.collectors.processes import _port_state
from collector.diff import diff_bundles
from conftest import REPO
from triage_helpers import LoneHost, edit_json, findings_of, free_port, matching, one


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock
    sock.close()


def _as_psutil_lists_it(sock: socket.socket) -> dict:
    """The listening socket's record as the collector reads it from psutil (as root)."""
    port = sock.getsockname()[1]
    found = [s for s in live.listening_sockets() if s["port"] == port]
    assert len(found) == 1 and found[0]["pid"] == os.getpid(), found
    return found[0]


def _hidden(record: dict) -> dict:
    """The same socket as psutil lists it to a user who cannot read its owner's /proc/PID/fd."""
    return dict(record, pid=None, process=None)


def _spec(port: int) -> ProcessSpec:
    return ProcessSpec(binary="api", title="AK:api", port=port)


def test_every_holder_hidden_is_owner_unknown_not_conflict(listener):
    record = _as_psutil_lists_it(listener)
    port = record["port"]
    state = _port_state(_spec(port), [os.getpid()], live.sockets_by_port([_hidden(record)]))
    assert state == {"expected": port, "address": "127.0.0.1", "state": "listening_owner_unknown",
                     "owner_pid": None, "owner_name": None}
    # the process is not even seen running (hidepid): still no conflict without a known holder
    assert _port_state(_spec(port), [], live.sockets_by_port([_hidden(record)]))["state"] == "listening_owner_unknown"


def test_holder_known_to_be_the_process_is_listening(listener):
    record = _as_psutil_lists_it(listener)
    state = _port_state(_spec(record["port"]), [os.getpid()], live.sockets_by_port([record]))
    assert (state["state"], state["owner_pid"]) == ("listening", os.getpid())


def test_holder_known_and_not_the_process_is_a_conflict(listener):
    record = _as_psutil_lists_it(listener)
    state = _port_state(_spec(record["port"]), [os.getppid()], live.sockets_by_port([record]))
    assert (state["state"], state["owner_pid"]) == ("conflict", os.getpid())
    assert state["owner_name"] == live.process_name(os.getpid()) is not None


def test_a_known_foreign_holder_beside_a_hidden_one_is_a_conflict(listener):
    record = _as_psutil_lists_it(listener)
    v6 = dict(_hidden(record), protocol="tcp6", address="::1")
    by_port = live.sockets_by_port([v6, record])
    state = _port_state(_spec(record["port"]), [os.getppid()], by_port)
    assert (state["state"], state["owner_pid"]) == ("conflict", os.getpid())
    assert _port_state(_spec(record["port"]), [os.getpid()], by_port)["state"] == "listening"


def test_nothing_on_the_port_is_not_listening(listener):
    record = _as_psutil_lists_it(listener)
    other = live.sockets_by_port([dict(record, port=record["port"] + 1)])
    assert _port_state(_spec(record["port"]), [os.getpid()], other)["state"] == "not_listening"


# -- the user nobody, really ----------------------------------------------------------------------

_LIST = """
import json, sys
from collector import live
print(json.dumps([s for s in live.listening_sockets() if s["port"] == int(sys.argv[1])]))
"""


@pytest.fixture
def as_nobody():
    """Run Python as the user nobody, with akdiag and a copy of psutil it may read."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv(1) to run the socket listing as the user nobody")
    folder = Path(tempfile.mkdtemp(prefix="akdiag-nobody-"))
    try:
        shutil.copytree(Path(psutil.__file__).parent, folder / "psutil",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755)

        def run(*args: str) -> subprocess.CompletedProcess:
            env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{folder}{os.pathsep}{REPO}", "PYTHONDONTWRITEBYTECODE": "1"}
            return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   sys.executable, *args], capture_output=True, text=True, timeout=60, env=env,
                                  cwd="/")
        yield run
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_platform_process_seen_by_an_unprivileged_user(as_nobody, tmp_path):
    lone = LoneHost(tmp_path / "lone", {"web": {"port": free_port()}}).start("web")
    try:
        port, pid = lone.port("web"), lone.sim.processes[lone.name("web")].pid
        done = as_nobody("-c", _LIST, str(port))
        if done.returncode != 0 and "No module named" in done.stderr:
            pytest.skip(f"this Python cannot run as the user nobody here: {done.stderr.strip().splitlines()[-1]}")
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
        assert [s["port"] for s in seen] == [port]
        if seen[0]["pid"] is not None:
            pytest.skip("this machine shows the user nobody the owners of root's sockets")
        spec = ProcessSpec(binary=lone.name("web"), title=f"AK:{lone.name('web')}", port=port)
        assert _port_state(spec, [pid], live.sockets_by_port(seen))["state"] == "listening_owner_unknown"
        as_root = live.sockets_by_port(live.listening_sockets())  # the twin: root sees the owner
        assert _port_state(spec, [pid], as_root)["state"] == "listening"
    finally:
        lone.stop()


# -- the analyzer and the diff ----------------------------------------------------------------------

@pytest.fixture
def lone(tmp_path):
    host = LoneHost(tmp_path / "lone", {"web": {"port": free_port()}, "api": {"port": free_port()}})
    yield host.start("web", "api")
    host.stop()


def _collect(lone, out):
    reader = lone.collect(out)
    edit_json(reader, "processes.json", lambda data: data.update(
        expected=[p for p in data["expected"] if p["name"].startswith(f"zt{lone.tag}")]))
    reader.path("findings.json").unlink()  # judged again by today's analyzers, after the edits
    return reader


def _set_port(reader, name: str, **port) -> None:
    def change(data):
        for record in data["expected"]:
            if record["name"] == name:
                record["port"].update(port)
    edit_json(reader, "processes.json", change)


def test_hidden_owner_is_one_info_finding_not_a_conflict(lone, tmp_path):
    reader = _collect(lone, tmp_path / "out")
    assert not [f for f in findings_of(reader) if f["id"].startswith("port")]  # the healthy twin
    for role in ("web", "api"):
        _set_port(reader, lone.name(role), state="listening_owner_unknown", owner_pid=None, owner_name=None)
    findings = findings_of(reader)
    assert not matching(findings, "port.conflict")
    hidden = one(findings, "ports.owner_unknown")
    assert hidden["severity"] == "info"
    assert hidden["evidence"]["figures"]["ports"] == {lone.name("web"): lone.port("web"),
                                                      lone.name("api"): lone.port("api")}
    assert "root" in hidden["hint"]


def test_known_foreign_holder_stays_a_critical_conflict(lone, tmp_path):
    reader = _collect(lone, tmp_path / "out")
    _set_port(reader, lone.name("web"), state="conflict", owner_pid=4242, owner_name="nginx")
    findings = findings_of(reader)
    assert one(findings, "port.conflict", lone.name("web"))["severity"] == "critical"
    assert not matching(findings, "ports.owner_unknown")


def test_diff_owner_unknown_is_no_regression_conflict_is(lone, tmp_path):
    old = _collect(lone, tmp_path / "old")
    new = _collect(lone, tmp_path / "new")
    _set_port(new, lone.name("web"), state="listening_owner_unknown", owner_pid=None, owner_name=None)
    diff = diff_bundles(old, new)
    change = [c for c in diff.changes if c.field == "port_state"]
    assert [(c.subject, c.old, c.new, c.regression) for c in change] == [
        (lone.name("web"), "listening", "listening_owner_unknown", False)]
    assert not diff.regression, [c.as_dict() for c in diff.changes if c.regression]
    _set_port(new, lone.name("web"), state="conflict", owner_pid=4242, owner_name="nginx")
    assert diff_bundles(old, new).regression


def _port_cell(html: str, name: str) -> str:
    row = re.search(rf'<tr id="proc-{re.escape(name)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, name
    return row.group(1)


def test_summary_shows_an_info_badge_with_the_advice_not_a_conflict(lone, tmp_path):
    reader = _collect(lone, tmp_path / "out")
    _set_port(reader, lone.name("web"), state="listening_owner_unknown", owner_pid=None, owner_name=None)
    _set_port(reader, lone.name("api"), state="conflict", owner_pid=4242, owner_name="nginx")
    html = report.render_bundle(reader)
    hidden, conflict = _port_cell(html, lone.name("web")), _port_cell(html, lone.name("api"))
    assert '<span class="badge b-info">listening owner unknown</span>' in hidden
    assert "run akdiag as root" in hidden and "held by" not in hidden and "hot" not in hidden
    assert '<span class="badge b-bad">conflict</span>' in conflict and "held by nginx" in conflict
