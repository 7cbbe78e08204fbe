"""Crash loops: one `process.crash_loop` critical in place of `process.restarted` or
`process.down`.  A real supervisor restarting a real AK: process every ~0.3 s (which
writes its start and FATAL lines to its log) is collected for real; the other cases
(minutes of log, systemd's services.json, which another collector writes) are written
into a copy of a real quiet bundle, each beside a clean twin that must not fire."""

from __future__ import annotations

import json
import shutil

import pytest

from collector.analyzers.common import bundle_started_at
from collector.analyzers.crashloop import line_time, start_offsets
from collector.bundle.reader import BundleReader
from collector.live import iso_utc
from conftest import akdiag
from procfaults import crash_loop
from triage_helpers import LoneHost, about, edit_json, findings_of, matching, one, quiet_bundle

EXIT_CRITICAL = 2


# -- a real crash loop -------------------------------------------------------------------------

@pytest.fixture
def lone(tmp_path):
    host = LoneHost(tmp_path / "lone", {"loop": {}, "calm": {}})
    yield host
    host.stop()


def test_a_real_crash_loop_is_one_critical_naming_the_last_fatal_line(lone, tmp_path):
    lone.start("calm")
    fault = crash_loop(lone.sim.basedir, lone.name("loop"), starts=8)
    try:
        reader = lone.collect(tmp_path / "out", only=("processes", "pidfiles", "ports", "logs"))
    finally:
        fault.stop()
    edit_json(reader, "processes.json", lambda data: data.update(
        expected=[p for p in data["expected"] if p["name"].startswith(f"zt{lone.tag}")]))
    findings = findings_of(reader)
    name = lone.name("loop")
    loop = one(findings, "process.crash_loop", name)
    figures = loop["evidence"]["figures"]
    assert loop["severity"] == "critical"
    assert figures["source"] == "log" and figures["restarts"] >= 7
    assert f"{name} restarted {figures['restarts']} times in " in loop["title"]
    assert "FATAL" in figures["last_exit"]["text"] and "last exit: " in loop["title"]
    assert loop["evidence"]["file"] == f"logs/{name}.log"
    assert ("down at the moment" in loop["title"]) == (figures["status"] == "down")
    assert not {"process.down", "process.restarted"} & set(about(findings, name))
    # the process started once beside it: a recent start, no crash loop
    assert about(findings, lone.name("calm")) == ["process.restarted"]


# -- the log's start lines ---------------------------------------------------------------------

def test_start_lines_are_told_from_work_that_starts():
    lines = [
        "2026-11-30T14:00:00.123Z INFO  [pw] starting pw v2025.1",        # 1
        "2026-11-30T14:00:01.000Z INFO  [pw] started batch 42",            # work
        "2026/11/30 14:00:02 pw started",                                  # 3
        '{"level":"info","time":"2026-11-30T14:00:03Z","msg":"server started"}',  # 4
        "2026-11-30T14:00:04Z ERROR [pw] starting failed",                 # an error
        "2026-11-30T14:00:05Z INFO  [pw] worker 3 started",                # work
        "2026-11-30T14:00:06Z INFO  [pw] Started.",                        # 7
        "2026-11-30T14:00:07Z INFO  [pw] task started",                    # work
        "2026-11-30T14:00:08+03:00 INFO Starting AK:pw (pid 123)",         # 9
        "time=2026-11-30T14:00:10Z level=info msg=\"starting pw\"",         # 10
        "2026-11-30T14:00:12Z INFO  [pw] starting to process queue trk_1", # work
        "2026-11-30T14:00:13Z INFO  [other] other started",                # another process
        "2026-11-30T14:00:14Z Job 42 started",                             # work
        "Nov 30 14:00:15 pw started",                                      # 14
    ]
    data = ("\n".join(lines) + "\n").encode()
    assert [data.count(b"\n", 0, offset) + 1 for offset in start_offsets(data, "pw")] == [1, 3, 4, 7, 9, 10, 14]
    plus_three = data.index(b"2026-11-30T14:00:08")
    assert line_time(data, 0) - line_time(data, plus_three) == pytest.approx(3 * 3600 - 8 + 0.123)


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    reader, lone = quiet_bundle(tmp_path_factory.mktemp("crashloop"))
    return reader, lone


def _copy(quiet, tmp_path):
    reader, lone = quiet
    shutil.copytree(reader.root, tmp_path / "bundle")
    return BundleReader(tmp_path / "bundle"), lone.name("main")


def _stamp(moment: float) -> str:
    return iso_utc(moment)[:-1] + ".250Z"


def _write_log(reader: BundleReader, name: str, events: list) -> None:
    """logs/<name>.log from (seconds before the collection, kind) pairs, and its index
    entry; the running PID started with the last start line, as it would have."""
    collected = bundle_started_at(reader)
    words = {"start": f"INFO  [{name}] starting {name} v2025.1.71.3",
             "fatal": f"FATAL [{name}] cannot connect to mongodb 127.0.0.1:27017: connection refused",
             "work": f"INFO  [{name}] processed batch of 120 messages in 35 ms",
             "stop": f"INFO  [{name}] received SIGTERM, shutting down"}
    lines = [f"{_stamp(collected - before)} {words[kind]}" for before, kind in events]
    (reader.root / "logs").mkdir(exist_ok=True)
    reader.path(f"logs/{name}.log").write_text("\n".join(lines) + "\n")
    index = {"root": "/opt/akd/logs", "root_target": None, "exists": True, "errors": [],
             "files": [{"path": f"{name}.log", "type": "file", "size": 1000, "mtime": iso_utc(collected),
                        "state": "tailed", "reason": None, "error": None, "target": None,
                        "tail": {"bundle_path": f"logs/{name}.log", "lines": len(lines)}}]}
    reader.path("logs/index.json").write_text(json.dumps(index))
    starts = [before for before, kind in events if kind == "start"]
    if starts:
        _restarted_seconds_before(reader, min(starts))


def _looping(count: int = 6, every: float = 40.0, fatal: bool = True, until: float = 5.0) -> list:
    """Work, then `count` starts `every` seconds apart, the last `until` s before the collection."""
    events = [(until + count * every + 300 - i, "work") for i in range(0, 300, 30)]
    for i in range(count):
        began = until + (count - 1 - i) * every
        events.append((began, "start"))
        events.append((began - 2, "work"))
        if i < count - 1:
            events.append((began - every + 1, "fatal" if fatal else "stop"))
    return sorted(events, key=lambda event: -event[0])


def test_start_and_fatal_lines_of_minutes_are_one_crash_loop(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    _write_log(reader, name, _looping(count=6, every=40.0))
    findings = findings_of(reader)
    loop = one(findings, "process.crash_loop", name)
    assert loop["severity"] == "critical"
    assert loop["title"].startswith(f"{name} restarted 5 times in 200 s; last exit: ")
    assert loop["title"].endswith("cannot connect to mongodb 127.0.0.1:27017: connection refused")
    assert loop["evidence"]["figures"]["restarts"] == 5 and loop["evidence"]["figures"]["span_seconds"] == 200
    assert "down at the moment" not in loop["title"]


def test_a_single_restart_after_a_fatal_line_is_no_crash_loop(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    _write_log(reader, name, _looping(count=2, every=40.0))
    assert not matching(findings_of(reader), "process.crash_loop")


def test_planned_restarts_without_a_crash_line_are_no_crash_loop(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    _write_log(reader, name, _looping(count=6, every=40.0, fatal=False))
    assert not matching(findings_of(reader), "process.crash_loop")


def test_a_loop_that_ended_long_before_the_log_does_is_no_crash_loop(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    old = [(before + 3600, kind) for before, kind in _looping(count=6, every=40.0)]
    _write_log(reader, name, old + [(before, "work") for before in range(3000, 0, -60)])
    assert not matching(findings_of(reader), "process.crash_loop")


def test_the_threshold_and_the_window_are_the_catalogs(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    _write_log(reader, name, _looping(count=6, every=40.0))
    assert not matching(findings_of(reader, crash_loop_restarts=6), "process.crash_loop")
    assert not matching(findings_of(reader, crash_loop_window_seconds=100), "process.crash_loop")
    assert one(findings_of(reader, crash_loop_restarts=2, crash_loop_window_seconds=100), "process.crash_loop")


def test_a_process_down_between_two_restarts_is_the_crash_loop_saying_so(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    _write_log(reader, name, _looping(count=6, every=40.0) + [(1, "fatal")])

    def down(data):
        for record in data["expected"]:
            record.update(status="down", pids=[], resources=[])
    edit_json(reader, "processes.json", down)
    findings = findings_of(reader)
    loop = one(findings, "process.crash_loop", name)
    assert "; it is down at the moment; last exit: " in loop["title"]
    assert not matching(findings, "process.down", name)


def _restarted_seconds_before(reader: BundleReader, seconds: float) -> None:
    started = iso_utc(bundle_started_at(reader) - seconds)

    def change(data):
        for record in data["expected"]:
            for resource in record["resources"]:
                resource["started_at"] = started
    edit_json(reader, "processes.json", change)


def test_the_running_pids_start_is_one_more_start_when_the_log_has_not_said_it(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    _write_log(reader, name, _looping(count=3, every=40.0, until=30.0) + [(29, "fatal")])
    assert not matching(findings_of(reader), "process.crash_loop")  # 2 restarts in the log
    _restarted_seconds_before(reader, 3)
    loop = one(findings_of(reader), "process.crash_loop", name)
    assert loop["evidence"]["figures"]["restarts"] == 3
    assert loop["evidence"]["figures"]["span_seconds"] == pytest.approx(107 - 0.25, abs=0.1)


def test_the_running_pids_start_that_the_log_said_counts_once(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    _write_log(reader, name, _looping(count=3, every=40.0, until=30.0) + [(29, "fatal")])
    _restarted_seconds_before(reader, 31)
    assert not matching(findings_of(reader), "process.crash_loop")


# -- services.json (systemd) -------------------------------------------------------------------

def _unit(name: str, **fields) -> dict:
    unit = {"unit": name, "component": None, "active_state": "active", "sub_state": "running",
            "result": "success", "restarts": 0, "exit_code": None, "exit_status": None, "main_pid": None,
            "started_at": None, "exited_at": None, "journal": None}
    unit.update(fields)
    return unit


def _write_services(reader: BundleReader, units: list, events: list = ()) -> None:
    services = {"manager": "systemd", "units": units, "events": list(events),
                "coredumps": {"source": None, "core_pattern": None, "dumps": []}, "errors": []}
    reader.path("services.json").write_text(json.dumps(services))


def _ago(reader: BundleReader, seconds: float) -> str:
    return iso_utc(bundle_started_at(reader) - seconds)


def test_systemd_restart_events_in_the_window_are_a_crash_loop(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    events = [{"time": _ago(reader, 205 - i * 200 / 27), "unit": f"{name}.service", "kind": "restarting",
               "message": f"{name}.service: Scheduled restart job, restart counter is at {i + 1}."}
              for i in range(28)]
    _write_services(reader, [_unit(f"{name}.service", restarts=28, result="exit-code", exit_code="exited",
                                   exit_status=1, started_at=_ago(reader, 5))], events)
    loop = one(findings_of(reader), "process.crash_loop", name)
    assert loop["title"] == (f"{name} restarted 28 times in 200 s; last exit: {name}.service: result exit-code, "
                             "exited (status 1)")
    assert loop["evidence"]["file"] == "services.json" and loop["evidence"]["figures"]["unit"] == f"{name}.service"


def test_systemd_restart_counter_with_a_recent_start_is_a_crash_loop(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    _write_services(reader, [_unit(f"akd-{name}.service", restarts=12, result="exit-code", exit_code="killed",
                                   exit_status=9, started_at=_ago(reader, 20))])
    loop = one(findings_of(reader), "process.crash_loop", name)
    assert loop["title"].startswith(f"{name} restarted 12 times by systemd (akd-{name}.service, last 20 s before "
                                    "the collection)")
    assert loop["evidence"]["figures"]["source"] == "systemd counter"


def test_a_unit_found_by_its_main_pid(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    pid = reader.json("processes.json")["expected"][0]["pids"][0]
    _write_services(reader, [_unit("altcraft-workers.service", restarts=5, main_pid=pid,
                                   started_at=_ago(reader, 60))])
    assert one(findings_of(reader), "process.crash_loop", name)["evidence"]["figures"]["unit"] == \
        "altcraft-workers.service"


@pytest.mark.parametrize("unit", [
    {"restarts": 1, "started_at_ago": 20},  # one restart
    {"restarts": 12, "started_at_ago": 2 * 86400},  # restarted often, but days ago
    {"restarts": 0, "started_at_ago": 20},  # started by hand a moment ago
])
def test_systemd_units_that_are_no_crash_loop(quiet, tmp_path, unit):
    reader, name = _copy(quiet, tmp_path)
    _write_services(reader, [_unit(f"{name}.service", restarts=unit["restarts"],
                                   started_at=_ago(reader, unit["started_at_ago"]))])
    assert not matching(findings_of(reader), "process.crash_loop")


def test_the_whole_platforms_unit_restarting_is_no_crash_loop_of_each_process(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    events = [{"time": _ago(reader, 100 - i * 20), "unit": "akd.service", "kind": "started", "message": "Started"}
              for i in range(5)]
    _write_services(reader, [_unit("akd.service", component="platform", restarts=4, main_pid=1,
                                   started_at=_ago(reader, 20))], events)
    assert not matching(findings_of(reader), "process.crash_loop")


def test_a_services_json_of_the_wrong_shape_is_no_crash_loop_and_no_failure(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path)
    reader.path("services.json").write_text(json.dumps({"units": "none", "events": [1, None, "x"]}))
    findings = findings_of(reader)
    assert not matching(findings, "process.crash_loop")
    assert not matching(findings, "analyzer.failed")


def test_a_crash_loop_at_the_end_of_hours_of_log_is_found(quiet, tmp_path):
    """A tail of many megabytes: the window's first line is found by halving, not by reading it all."""
    reader, name = _copy(quiet, tmp_path)
    hours = [(before, "work") for before in range(6 * 3600, 300, -1)]
    _write_log(reader, name, sorted(hours + _looping(count=6, every=40.0), key=lambda event: -event[0]))
    assert reader.path(f"logs/{name}.log").stat().st_size > 1_000_000
    loop = one(findings_of(reader), "process.crash_loop", name)
    assert loop["evidence"]["figures"]["restarts"] == 5


@pytest.mark.parametrize("value", [None, "x", [], {}, -1, True, 1e308, [1, 2]])
def test_services_json_and_the_log_index_of_any_shape_never_fail_the_analyzer(quiet, tmp_path, value):
    reader, name = _copy(quiet, tmp_path)
    _write_log(reader, name, _looping(count=6, every=40.0))
    index = json.loads(reader.path("logs/index.json").read_text())
    index["files"].append({"path": value, "tail": {"bundle_path": value}})
    index["files"].append({"path": f"{name}.log", "tail": value})
    reader.path("logs/index.json").write_text(json.dumps(index))
    unit = _unit(f"{name}.service")
    units = [dict(unit, **{key: value}) for key in unit] + [value]
    events = [{"time": value, "unit": f"{name}.service", "kind": "restarting"},
              {"time": _ago(reader, 5), "unit": value, "kind": value}, value]
    _write_services(reader, units, events)
    edit_json(reader, "processes.json", lambda data: data["expected"][0].update(zombies=value))
    findings = findings_of(reader)
    assert not matching(findings, "analyzer.failed")


def test_check_says_critical_for_a_crash_loop(quiet, tmp_path):
    reader, name = _copy(quiet, tmp_path / "loop")
    calm, _name = _copy(quiet, tmp_path / "calm")
    assert akdiag("check", "--bundle", str(calm.root), "--format", "nagios").returncode == 0
    _write_log(reader, name, _looping(count=6, every=40.0))
    done = akdiag("check", "--bundle", str(reader.root), "--format", "nagios")
    assert done.returncode == EXIT_CRITICAL, done.stdout + done.stderr
    assert "restarted 5 times in 200 s" in done.stdout
