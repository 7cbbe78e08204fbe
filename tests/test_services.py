"""The services collector: systemd's output parsed (`systemctl show`, its timestamps, a
unit's journal, `coredumpctl list`), the journal read from a real systemd-journald, a
systemctl that cannot reach a manager, the host without systemd, and real core dumps.

No service manager runs on the test machines (PID 1 is not systemd): real units are
skipped there with the reason; the journal comes from the distribution's journald started
in private namespaces (tests/services_lab.py), fed the lines systemd writes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, collect_bundle
from collector.bundle.reader import BundleReader
from collector.bundle.writer import BundleWriter
from collector.catalog import load_catalog
from collector.collectors import coredumps, services, systemd
from collector.context import CollectOptions, Context, Deadline
from collector.redact.scrubber import Scrubber
from triage_helpers import findings_of, matching

# `systemctl show` as systemd 252 prints it for three units at once (systemctl(1): one
# block of Property=value lines per unit, an empty line between them).
SHOW_SAMPLE = """\
Id=mongod.service
LoadState=loaded
ActiveState=failed
SubState=failed
Result=oom-kill
NRestarts=28
ExecMainStatus=9
ExecMainCode=2
ExecMainPID=0
ExecMainStartTimestamp=Tue 2026-12-01 03:11:50 UTC
ExecMainExitTimestamp=Tue 2026-12-01 03:12:07 UTC
ActiveEnterTimestamp=Tue 2026-12-01 03:11:50 UTC
InactiveEnterTimestamp=Tue 2026-12-01 03:12:07 UTC
FragmentPath=/lib/systemd/system/mongod.service

Id=rabbitmq-server.service
LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=0
ExecMainStatus=0
ExecMainCode=0
ExecMainPID=812
ExecMainStartTimestamp=@1796094000
ExecMainExitTimestamp=
ActiveEnterTimestamp=Tue 2026-12-01 03:00:05 UTC
InactiveEnterTimestamp=n/a
FragmentPath=/lib/systemd/system/rabbitmq-server.service

Id=kvrocks.service
LoadState=not-found
ActiveState=inactive
SubState=dead
Result=success
NRestarts=0
ExecMainStatus=0
ExecMainCode=0
ExecMainPID=0
ExecMainStartTimestamp=
ExecMainExitTimestamp=
ActiveEnterTimestamp=
InactiveEnterTimestamp=
FragmentPath=
"""

# journalctl -u UNIT -o short-iso-precise: older systemd writes "+0000", newer "+00:00";
# "-- Boot ... --" separates boots; the service's own "Started" is not a transition.
JOURNAL_SAMPLE = """\
-- Boot 3d1219c7c4c5404aaa1f6d2a48adfda4 --
2026-12-01T06:11:50.100000+0300 db1 systemd[1]: Started mongod.service - MongoDB Database Server.
2026-12-01T03:11:51.000001+0000 db1 mongod[4242]: Started listening on 127.0.0.1:27017
2026-12-01T03:12:07.5+00:00 db1 systemd[1]: mongod.service: Main process exited, code=killed, status=9/KILL
2026-12-01T03:12:07.600000+00:00 db1 systemd[1]: mongod.service: Failed with result 'oom-kill'.
2026-12-01T03:12:07.700000+00:00 db1 systemd[1]: mongod.service: Consumed 17.204s CPU time.
2026-12-01T03:12:08.000000+00:00 db1 systemd[1]: mongod.service: Scheduled restart job, restart counter is at 28.
2026-12-01T03:12:08.100000+00:00 db1 systemd[1]: Stopped MongoDB Database Server.
2026-12-01T03:12:09.000000+00:00 db1 systemd[1]: Failed to start MongoDB Database Server.
"""


def make_ctx(basedir: Path, bundle: Path, **options) -> Context:
    return Context(basedir=basedir, basedir_source="test", catalog=load_catalog(), deadline=Deadline(30),
                   writer=BundleWriter(bundle, Scrubber()).for_collector("services"),
                   options=CollectOptions(**options))


# --------------------------------------------------------------------------- parsers

def test_show_blocks_become_unit_records():
    blocks = systemd.parse_show(SHOW_SAMPLE)
    assert [b["Id"] for b in blocks] == ["mongod.service", "rabbitmq-server.service", "kvrocks.service"]
    mongod = systemd.unit_record(blocks[0])
    assert mongod == {
        "unit": "mongod.service", "component": "mongodb", "load_state": "loaded", "active_state": "failed",
        "sub_state": "failed", "result": "oom-kill", "restarts": 28, "exit_code": "killed", "exit_status": 9,
        "signal": "SIGKILL", "main_pid": None, "started_at": "2026-12-01T03:11:50Z",
        "exited_at": "2026-12-01T03:12:07Z", "fragment_path": "/lib/systemd/system/mongod.service", "journal": None}
    rabbit = systemd.unit_record(blocks[1])
    assert (rabbit["component"], rabbit["main_pid"], rabbit["exit_code"], rabbit["exit_status"]) == \
        ("rabbitmq", 812, None, None)
    assert rabbit["started_at"] == "2026-12-01T03:00:00Z"  # @1796094000, the --timestamp=unix form
    assert rabbit["exited_at"] is None
    assert systemd.unit_record(blocks[2])["load_state"] == "not-found"


def test_systemd_timestamps(monkeypatch):
    assert systemd.parse_timestamp("Tue 2026-12-01 15:10:05 UTC") == 1796137805.0
    assert systemd.parse_timestamp("@1796137805") == 1796137805.0
    assert systemd.parse_timestamp("Tue 2026-12-01 18:10:05 +0300") == 1796137805.0
    for empty in ("", "n/a", "0", None, "yesterday"):
        assert systemd.parse_timestamp(empty) is None
    # a zone name other than UTC is the host's own zone, the one systemctl formatted in
    monkeypatch.setenv("TZ", "Europe/Moscow")
    time.tzset()
    try:
        assert systemd.parse_timestamp("Tue 2026-12-01 18:10:05 MSK") == 1796137805.0
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_journal_transitions_are_the_managers_lines_only():
    events = systemd.journal_events(JOURNAL_SAMPLE, "mongod.service")
    assert [(e["time"], e["kind"]) for e in events] == [
        ("2026-12-01T03:11:50.100000Z", "started"),
        ("2026-12-01T03:12:07.500000Z", "killed"),
        ("2026-12-01T03:12:07.600000Z", "failed"),
        ("2026-12-01T03:12:08.000000Z", "restarting"),
        ("2026-12-01T03:12:08.100000Z", "stopped"),
        ("2026-12-01T03:12:09.000000Z", "failed"),
    ]
    assert all(e["unit"] == "mongod.service" for e in events)
    assert events[1]["message"] == "mongod.service: Main process exited, code=killed, status=9/KILL"


def test_coredumpctl_table_and_json():
    table = ("TIME                          PID  UID  GID SIG     COREFILE EXE                 SIZE\n"
             "Thu 2024-04-04 08:36:36 UTC 89240 1000 1000 SIGSEGV present  /opt/akd/ak/bin/api 32.7K\n"
             "Thu 2024-04-04 08:40:03 UTC   301  999  999 6       missing  /usr/bin/mongod\n")
    rows = systemd.parse_coredumpctl_table(table)
    assert [(r["time"], r["pid"], r["process"], r["signal"], r["size"], r["stored"]) for r in rows] == [
        ("2024-04-04T08:36:36Z", 89240, "api", "SIGSEGV", 33484, "present"),
        ("2024-04-04T08:40:03Z", 301, "mongod", "SIGABRT", None, "missing")]
    data = json.dumps([{"time": 1712219796000000, "pid": 89240, "uid": 0, "gid": 0, "sig": 11,
                        "corefile": "present", "exe": "/usr/bin/mongod", "size": 1048576}])
    [dump] = systemd.parse_coredumpctl_json(data)
    assert (dump["time"], dump["signal"], dump["process"], dump["size"]) == \
        ("2024-04-04T08:36:36Z", "SIGSEGV", "mongod", 1048576)


def test_core_pattern_names_give_the_dumps_facts():
    regex = coredumps.pattern_regex("core.%e.%p.%s.%t", uses_pid=False)
    facts = regex.match("core.AK:api.4242.11.1796137805").groupdict()
    assert facts == {"process": "AK:api", "pid": "4242", "signal": "11", "time": "1796137805"}
    assert regex.match("core.txt") is None
    plain = coredumps.pattern_regex("core", uses_pid=True)
    assert plain.match("core") and plain.match("core.77").group("pid") == "77"
    assert plain.match("core.py") is None and plain.match("hardcore") is None


# --------------------------------------------------------------------------- units

def test_the_unit_that_starts_akd_is_found_by_cgroup_and_by_execstart(tmp_path, monkeypatch):
    assert services._unit_from_cgroup("0::/system.slice/akd.service\n") == "akd.service"
    assert services._unit_from_cgroup("12:memory:/system.slice/x.service\n1:name=systemd:/system.slice/"
                                      "altcraft.service/akd\n") == "altcraft.service"
    assert services._unit_from_cgroup("0::/user.slice/user-0.slice/session-3.scope\n") is None
    basedir = tmp_path / "opt" / "akd"
    units = tmp_path / "units"
    units.mkdir()
    (units / "altcraft.service").write_text(f"[Service]\nType=forking\nExecStart={basedir}/akd start\n")
    (units / "akd-old.service").write_text(f"[Service]\nExecStart=/bin/sh -c '{basedir}/akd2 start'\n")
    (units / "mongod.service").write_text("[Service]\nExecStart=/usr/bin/mongod --config /etc/mongod.conf\n")
    (units / "masked.service").symlink_to("/dev/null")
    (units / "fifo.service").mkdir()  # a folder by a unit's name: not read
    monkeypatch.setattr(services, "UNIT_DIRS", (str(units), str(tmp_path / "absent")))
    errors = []
    assert services._units_starting_akd(basedir, errors) == {"altcraft.service"}
    assert errors == []


def _lab(mode: str, tmp_path: Path) -> dict:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("a private journald needs root and unshare")
    if not any(os.path.exists(p) for p in ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald")):
        pytest.skip("systemd-journald is not installed here")
    basedir, bundle, out = tmp_path / "base", tmp_path / "bundle", tmp_path / "out.json"
    basedir.mkdir()
    bundle.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", sys.executable,
                           str(REPO / "tests" / "services_lab.py"), mode, str(out), str(basedir), str(bundle)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return {"record": json.loads(out.read_text()), "bundle": bundle}


def test_units_journals_from_a_real_journald(tmp_path):
    lab = _lab("journal", tmp_path)
    record, bundle = lab["record"], lab["bundle"]
    assert record["errors"] == []
    by_unit = {u["unit"]: u for u in record["units"]}
    assert by_unit["mongod.service"]["journal"] == {"bundle_path": "services/mongod.service.journal.txt",
                                                    "lines": 9, "truncated": False}
    assert by_unit["clickhouse-server.service"]["journal"]["lines"] == 0  # "-- No entries --"
    text = (bundle / "services" / "mongod.service.journal.txt").read_text()
    assert "systemd[1]: mongod.service: Failed with result 'oom-kill'." in text
    assert "rabbitmq" not in text  # -u gives the one unit's lines
    kinds = [(e["unit"], e["kind"]) for e in record["events"]]
    assert kinds == [("mongod.service", "started"), ("mongod.service", "killed"), ("mongod.service", "killed"),
                     ("mongod.service", "failed"), ("mongod.service", "restarting"), ("mongod.service", "stopped"),
                     ("rabbitmq-server.service", "started")]
    assert all(e["time"].endswith("Z") and "." in e["time"] for e in record["events"])
    later = record["window_after_the_lines"]  # --since after every line: the window holds none of them
    assert later["units"][0]["journal"]["lines"] == 0 and later["events"] == [] and later["errors"] == []


def test_systemctl_that_cannot_reach_its_manager_is_recorded_not_healthy(tmp_path):
    """/run/systemd/system exists (so systemd should run) but systemctl finds no bus."""
    record = _lab("collect", tmp_path)["record"]
    assert record["manager"] == "systemd"
    assert record["units"] == []
    assert len(record["errors"]) == 1 and "systemctl list-units" in record["errors"][0]
    assert "Failed to connect to bus" in record["errors"][0]


@pytest.mark.skipif(not os.path.isdir(services.SYSTEMD_RUNTIME),
                    reason="systemd is not the service manager on this machine (PID 1 is not systemd): "
                           "no real unit to read")
def test_real_units_where_systemd_runs(tmp_path):  # pragma: no cover - not on the test machines
    record = services.collect(make_ctx(tmp_path / "base", tmp_path / "bundle"))
    assert record["manager"] == "systemd" and record["errors"] == []
    for unit in record["units"]:
        assert unit["active_state"] and unit["component"]


@pytest.mark.skipif(os.path.isdir(services.SYSTEMD_RUNTIME), reason="systemd runs here")
def test_no_systemd_is_a_note_not_an_error(host, tmp_path):
    result, reader = collect_bundle(host, tmp_path / "out", only=("services",), since=1796094000.0)
    data = reader.json("services.json")
    assert data["since"] == "2026-12-01T03:00:00Z"  # --since sets the journal's window
    assert data["manager"] is None and data["units"] == [] and data["events"] == [] and data["errors"] == []
    assert any("systemd is not the service manager here" in note for note in data["notes"])
    outcome = {c["name"]: c for c in reader.manifest["collectors"]}["services"]
    assert outcome["status"] == "ok"
    findings = findings_of(reader)
    assert [f["id"] for f in findings if f["area"] == "services"] == []


# --------------------------------------------------------------------------- core dumps

def _crash_in(folder: Path) -> int:
    """A real process that dumps core in `folder` (its working folder); its PID."""
    proc = subprocess.Popen(["/bin/sh", "-c", f'ulimit -c unlimited; exec {sys.executable} -c '
                             '"import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"'], cwd=str(folder))
    assert proc.wait(30) == -signal.SIGSEGV
    return proc.pid


def _plain_core_pattern() -> str:
    pattern = Path(coredumps.CORE_PATTERN).read_text().strip()
    if pattern.startswith("|") or "/" in pattern or "%" in pattern:
        pytest.skip(f"core_pattern is {pattern!r} here, not a plain name written into the working folder")
    return pattern


def test_real_core_dumps_in_the_platforms_folders_are_listed_never_read(host, tmp_path):
    _plain_core_pattern()
    bin_folder = host.basedir / "ak" / "bin"
    started = time.time()
    pid = _crash_in(bin_folder)
    elsewhere = tmp_path / "workdir"  # a platform process's working folder outside BASEDIR
    elsewhere.mkdir()
    _crash_in(elsewhere)
    os.mkfifo(host.basedir / "core.123")  # a FIFO by a dump's name: never opened (that would hang)
    runner = subprocess.Popen(["bash", "-c", "exec -a AK:coretest sleep 60"], cwd=str(elsewhere))
    try:
        time.sleep(0.2)
        _result, reader = collect_bundle(host, tmp_path / "out", only=("services",))
    finally:
        runner.kill()
        runner.wait()
    record = reader.json("services.json")["coredumps"]
    assert record["source"] == "core_pattern"
    by_folder = {str(Path(d["path"]).parent): d for d in record["dumps"]}
    assert set(by_folder) == {str(bin_folder), str(elsewhere)}, record
    ours = by_folder[str(bin_folder)]
    core = Path(ours["path"])
    assert ours["size"] == core.stat().st_size > 0
    assert ours["component"] == "platform"
    assert ours["pid"] in (None, pid)  # the pid is in the name only where core_uses_pid is 1
    assert started - 5 <= reader_time(ours["time"]) <= time.time() + 5
    finding = [f for f in matching(findings_of(reader), "process.core_dumped")
               if f["evidence"]["figures"]["newest"]["path"] == str(core)]
    assert len(finding) == 1 and finding[0]["severity"] == "critical"
    assert "dumped core" in finding[0]["title"] and "the platform" in finding[0]["title"]


def reader_time(value: str) -> float:
    from collector.analyzers.common import parse_time

    return parse_time(value)


def test_an_absolute_core_pattern_lists_its_folder(tmp_path, monkeypatch):
    dumps = tmp_path / "crash"
    dumps.mkdir()
    pattern_file = tmp_path / "core_pattern"
    pattern_file.write_text(f"{dumps}/core.%e.%p.%s\n")
    monkeypatch.setattr(coredumps, "CORE_PATTERN", str(pattern_file))
    (dumps / "core.mongod.812.6").write_bytes(b"\0" * 4096)
    (dumps / "core.AK:api.4242.11").write_bytes(b"\0" * 100)
    (dumps / "notes.txt").write_text("not a dump")
    errors = []
    record = coredumps.collect_coredumps(tmp_path / "akd", [], False, 0, lambda s: s, errors)
    assert errors == [] and record["source"] == "core_pattern"
    facts = sorted((d["process"], d["pid"], d["signal"], d["size"], d["component"]) for d in record["dumps"])
    assert facts == [("AK:api", 4242, "SIGSEGV", 100, "platform"), ("mongod", 812, "SIGABRT", 4096, "mongodb")]


def test_a_piped_core_pattern_is_named_not_listed(tmp_path, monkeypatch):
    pattern_file = tmp_path / "core_pattern"
    pattern_file.write_text("|/usr/share/apport/apport -p%p -s%s -c%c\n")
    monkeypatch.setattr(coredumps, "CORE_PATTERN", str(pattern_file))
    record = coredumps.collect_coredumps(tmp_path, [], False, 0, lambda s: s, [])
    assert record["source"] is None and record["dumps"] == []
    assert "piped to /usr/share/apport/apport" in record["note"]


def test_collect_end_to_end_includes_services(full_host, tmp_path):
    result, reader = collect_bundle(full_host, tmp_path / "out")
    outcome = {c["name"]: c for c in reader.manifest["collectors"]}["services"]
    assert outcome["status"] == "ok", outcome
    assert "services.json" in [f["path"] for f in reader.manifest["files"]]
    data = reader.json("services.json")
    assert set(data) >= {"manager", "units", "events", "coredumps", "errors"}
    assert isinstance(BundleReader(result.path).json("findings.json")["findings"], list)


_AS_NOBODY = """
import json, sys
from pathlib import Path
from collector.bundle.writer import BundleWriter
from collector.catalog import load_catalog
from collector.collectors import services
from collector.context import CollectOptions, Context, Deadline
from collector.redact.scrubber import Scrubber
ctx = Context(basedir=Path(sys.argv[1]), basedir_source="test", catalog=load_catalog(), deadline=Deadline(30),
              writer=BundleWriter(Path(sys.argv[2]), Scrubber()).for_collector("services"), options=CollectOptions())
print(json.dumps(services.collect(ctx)))
"""


@pytest.mark.skipif(os.path.isdir(services.SYSTEMD_RUNTIME), reason="systemd runs here")
def test_an_unprivileged_user_gets_what_it_may_read_with_notes(host, tmp_path):
    """As nobody: root's platform processes' working folders and a root-only BASEDIR
    cannot be looked in; that is said, and the rest is collected."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv(1) to run as the user nobody")
    host.start([host.catalog.processes[0].binary])
    bundle = Path(tempfile.mkdtemp(prefix="akdiag-services-"))
    try:
        bundle.chmod(0o777)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{_psutil_copy(bundle)}{os.pathsep}{REPO}",
               "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                               "-c", _AS_NOBODY, str(host.basedir), str(bundle / "out")],
                              capture_output=True, text=True, timeout=60, env=env, cwd="/")
        if done.returncode != 0 and "No module named" in done.stderr:
            pytest.skip(f"this Python cannot run as the user nobody here: {done.stderr.strip().splitlines()[-1]}")
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
    assert record["manager"] is None
    assert any(re.match(r"the working folders of [1-9]\d* platform processes could not be read", n)
               for n in record["notes"]), record
    assert any("cannot list" in e and "Permission denied" in e for e in record["errors"]), record


def _psutil_copy(folder: Path) -> Path:
    import psutil

    target = folder / "lib"
    shutil.copytree(Path(psutil.__file__).parent, target / "psutil", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755)
    return target


def test_a_systemctl_that_hangs_is_stopped_and_recorded(tmp_path, monkeypatch):
    """A service manager that never answers: the call ends at its bound, the command and
    what it started are killed, and the collector says so (partial, never healthy)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    marker = tmp_path / "still-running"
    hang = tools / "systemctl"
    hang.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {marker}\nwait\n")
    hang.chmod(0o755)
    runtime = tmp_path / "run-systemd-system"
    runtime.mkdir()
    monkeypatch.setattr(services, "SYSTEMD_RUNTIME", str(runtime))
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    record = services.collect(make_ctx(tmp_path / "base", tmp_path / "bundle", command_timeout=1.0))
    assert time.monotonic() - started < 8
    assert record["manager"] == "systemd" and record["units"] == []
    assert record["errors"] == ["systemctl list-units --all: no result within 1 s; stopped it"]
    sleeper = int(marker.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(sleeper):
        time.sleep(0.05)
    assert not _alive(sleeper), "the hanging systemctl's child outlived it"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
