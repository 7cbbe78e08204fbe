"""The logs analyzer, on log files written into the simulated host's BASEDIR/logs and
collected for real: errors, fatal lines, Go panics, "too many open files", bursts of
"connection refused", and a running process's log left unwritten for days."""

from __future__ import annotations

import os
import time

import pytest

from collector.analyzers.logs import classify_line, densest_window, scan_tail
from conftest import collect_bundle
from triage_helpers import LoneHost, edit_json, findings_of, matching, one


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".000Z"


def _quiet_lines(count: int, start: float = 1_790_000_000.0, step: float = 1.0) -> list:
    return [f"{_stamp(start + i * step)} INFO  [zz] processed batch {i} with 0 errors" for i in range(count)]


def _findings(host, tmp_path, name: str, lines: list) -> list:
    (host.basedir / "logs" / name).write_text("\n".join(lines) + "\n")
    _result, reader = collect_bundle(host, tmp_path / "out", only=("logs",))
    return [f for f in findings_of(reader) if f["subject"] == name]


def test_quiet_log_has_no_finding(host, tmp_path):
    assert _findings(host, tmp_path, "quiet.log", _quiet_lines(300)) == []


def test_error_lines_are_counted_with_the_first_and_the_last(host, tmp_path):
    lines = _quiet_lines(50)
    lines[9] = f"{_stamp(1_790_000_009)} ERROR [zz] cannot save subscriber 42"
    lines[39] = f"{_stamp(1_790_000_039)} ERROR [zz] cannot save subscriber 43"
    finding = one(_findings(host, tmp_path, "zz.log", lines), "log.errors")
    assert finding["severity"] == "info"
    figures = finding["evidence"]["figures"]
    assert figures["errors"] == 2 and figures["fatal"] == 0
    assert figures["first"] == {"line": 10, "text": lines[9]}
    assert figures["last"] == {"line": 40, "text": lines[39]}
    assert finding["evidence"]["file"] == "logs/zz.log"


def test_fatal_line_makes_it_a_warning(host, tmp_path):
    lines = _quiet_lines(20) + [f"{_stamp(1_790_000_100)} FATAL [zz] cannot open config"]
    finding = one(_findings(host, tmp_path, "zz.log", lines), "log.errors")
    assert finding["severity"] == "warning" and finding["evidence"]["figures"]["fatal"] == 1


def test_many_error_lines_make_it_a_warning(host, tmp_path):
    lines = [f"{_stamp(1_790_000_000 + i)} ERROR [zz] failed {i}" for i in range(150)]
    assert one(_findings(host, tmp_path, "zz.log", lines), "log.errors")["severity"] == "warning"


def test_go_panic_with_its_goroutine_trace_is_critical(host, tmp_path):
    lines = _quiet_lines(30) + ["panic: runtime error: invalid memory address or nil pointer dereference",
                                "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a3f2e]", "",
                                "goroutine 1 [running]:", "main.main()", "\t/src/main.go:12 +0x1d"]
    finding = one(_findings(host, tmp_path, "zz.log", lines), "log.panic")
    assert finding["severity"] == "critical"
    assert finding["evidence"]["figures"]["first"]["line"] == 31


def test_the_word_panic_without_a_trace_is_no_panic(host, tmp_path):
    lines = _quiet_lines(30) + ["panic: this is a message, not a crash", "INFO next line"]
    assert not matching(_findings(host, tmp_path, "zz.log", lines), "log.panic")


def test_too_many_open_files(host, tmp_path):
    lines = _quiet_lines(30) + [f"{_stamp(1_790_000_200)} WARN [zz] accept tcp [::]:8080: accept4: too many open files"]
    finding = one(_findings(host, tmp_path, "zz.log", lines), "log.too_many_open_files")
    assert finding["severity"] == "critical" and finding["evidence"]["figures"]["last"]["line"] == 31


def test_burst_of_connection_refused(host, tmp_path):
    refused = [f"{_stamp(1_790_000_500 + i * 0.5)} WARN [zz] dial tcp 127.0.0.1:27017: connect: connection refused"
               for i in range(25)]
    finding = one(_findings(host, tmp_path, "zz.log", _quiet_lines(10) + refused), "log.connection_refused")
    assert finding["severity"] == "warning"
    assert finding["evidence"]["figures"]["peak"] == 25 and finding["evidence"]["figures"]["count"] == 25


def test_connection_refused_spread_over_hours_is_no_burst(host, tmp_path):
    refused = [f"{_stamp(1_790_000_000 + i * 600)} WARN [zz] dial tcp 127.0.0.1:27017: connection refused"
               for i in range(25)]
    assert not matching(_findings(host, tmp_path, "zz.log", refused), "log.connection_refused")


# -- a log not written while its process runs ---------------------------------------------------

@pytest.fixture
def running(tmp_path):
    lone = LoneHost(tmp_path / "lone", {"main": {}}).start("main")
    yield lone
    lone.stop()


def _stale_findings(lone, tmp_path, age_hours: float) -> list:
    log = lone.sim.basedir / "logs" / f"{lone.name('main')}.log"
    moment = time.time() - age_hours * 3600
    os.utime(log, (moment, moment))
    reader = lone.collect(tmp_path / "out", only=("processes", "logs"))
    edit_json(reader, "processes.json", lambda data: data.update(
        expected=[p for p in data["expected"] if p["name"] == lone.name("main")]))
    return findings_of(reader)


def test_log_of_a_running_process_unwritten_for_two_days(running, tmp_path):
    finding = one(_stale_findings(running, tmp_path, 48), "log.stale", f"{running.name('main')}.log")
    assert finding["severity"] == "warning"
    assert finding["evidence"]["figures"]["process"] == running.name("main")
    assert 47 < finding["evidence"]["figures"]["hours"] < 49


def test_log_written_an_hour_ago_is_not_stale(running, tmp_path):
    assert not matching(_stale_findings(running, tmp_path, 1), "log.stale")


def test_old_log_of_a_stopped_process_is_not_stale(running, tmp_path):
    running.sim.stop_process(running.name("main"))
    assert not matching(_stale_findings(running, tmp_path, 48), "log.stale")


def test_old_log_of_a_running_process_in_a_sub_folder_is_stale_and_only_it(running, tmp_path):
    """The entries' times are read only for a running process's own log: a sub-folder's
    <process>.log is one, its rotated part and another name are not."""
    name = running.name("main")
    sub = running.sim.basedir / "logs" / "sub"
    sub.mkdir()
    old = time.time() - 72 * 3600
    for file_name in (f"{name}.log", f"{name}.log.1", "other.log"):
        (sub / file_name).write_text("2024-05-02T08:00:00Z INFO ok\n")
        os.utime(sub / file_name, (old, old))
    stale = matching(_stale_findings(running, tmp_path, 48), "log.stale")
    assert sorted(f["subject"] for f in stale) == sorted([f"{name}.log", f"sub/{name}.log"])


@pytest.mark.parametrize("path", ["a/main.log", "main.log", "a//main.log", "a/./main.log", "main.log/",
                                  "main.log/.", "./main.log", "", ".", "a/..", "/abs/main.log", "main.log.1"])
def test_the_process_of_a_log_is_named_as_pathlib_names_the_file(path):
    from pathlib import PurePosixPath

    from collector.analyzers.logs import _process_of

    name = PurePosixPath(path).name
    expected = "main" if name == "main.log" else None
    assert _process_of({"type": "file", "path": path, "reason": None}, {"main"}) == expected


def test_tail_entries_of_the_index_read_once_are_those_read_again(host, tmp_path):
    from collector.analyzers.logs import tail_entries
    from collector.bundle import schema

    _result, reader = collect_bundle(host, tmp_path / "out", only=("logs",))
    entries = tail_entries(reader)
    assert entries and entries == tail_entries(reader, reader.json(schema.LOGS_INDEX))


# -- the scanner itself ------------------------------------------------------------------------

def test_scanner_levels_and_line_numbers():
    data = "\n".join([
        "2024-05-02T08:00:00Z INFO  ok, 0 errors",           # 1: not an error
        "2024-05-02T08:00:01Z ERROR boom",                    # 2
        '{"time":"x","level":"error","msg":"json boom"}',     # 3
        "E0502 08:00:03.000000    1 main.go:10] glog boom",   # 4
        "2024/05/02 08:00:04 [error] 12#12: nginx boom",      # 5
        "2024-05-02T08:00:05Z CRITICAL disk gone",            # 6: fatal
        "level=fatal msg=\"cannot start\"",                   # 7: fatal
        "2024/05/02 08:00:08 [crit] 12#12: nginx worse",      # 8: fatal
        "2024-05-02T08:00:09Z INFO  a message that goes on and on before it says ERROR in passing",
    ]).encode()
    scan = scan_tail(data)
    assert [line.number for line in scan.errors] == [2, 3, 4, 5]
    assert [line.number for line in scan.fatal] == [6, 7, 8]


def test_mongodb_levels_information_is_no_error():
    stamp = '{"t":{"$date":"2026-11-30T14:00:00.000+00:00"},'
    data = "\n".join([
        stamp + '"s":"I",  "c":"NETWORK", "msg":"Connection accepted"}',    # 1: information
        stamp + '"s":"E",  "c":"STORAGE", "msg":"WiredTiger error"}',       # 2
        stamp + '"s":"F",  "c":"CONTROL", "msg":"Fatal assertion"}',        # 3: fatal
        stamp + '"s":"W",  "c":"NETWORK", "msg":"Slow query"}',             # 4: warning
        stamp + '"s":"D1", "c":"COMMAND", "msg":"Debug"}',                  # 5: debug
    ]).encode()
    scan = scan_tail(data)
    assert [line.number for line in scan.errors] == [2] and [line.number for line in scan.fatal] == [3]
    assert [number for _start, number in scan.warnings] == [4]


def test_scanner_warnings_and_word_boundaries():
    data = "\n".join([
        "2024-05-02T08:00:00Z WARN  queue deep",                       # 1: warning
        "2024-05-02T08:00:01Z WARNINGS are not a level, nor xERROR",   # 2: neither
        "2024-05-02T08:00:02Z [warning] nginx slow",                   # 3: warning
        "W0502 08:00:03.000000    1 main.go:10] glog slow",            # 4: warning
        "level=warn msg=slow",                                          # 5: warning
        "2024-05-02T08:00:05Z WARN then ERROR on one line",            # 6: both
        "2024-05-02T08:00:06Z ERROR.",                                  # 7: not a word (a dot follows)
        "x" * 61 + " ERROR past the level column",                      # 8: a message's word
    ]).encode()
    scan = scan_tail(data)
    assert [number for _start, number in scan.warnings] == [1, 3, 4, 5, 6]
    assert [line.number for line in scan.errors] == [6] and scan.fatal == []


def test_classify_line_and_densest_window():
    assert classify_line("2024-05-02T08:00:01Z ERROR boom") == "error"
    assert classify_line("2024-05-02T08:00:01Z FATAL boom") == "fatal"
    assert classify_line("panic: oops") == "panic"
    assert classify_line("read: connection refused") == "refused"
    assert classify_line("all good") is None
    assert densest_window([0, 1, 2, 100, 101], 10) == (3, 0)
    assert densest_window([], 10) == (0, None)


# --------------------------------------------------------------------------- the same message in many logs

def _refusing_logs(count: int, seconds: int = 25) -> dict:
    """`count` logs refusing 127.0.0.1:27017 from 10:15:10 local time, one line a second,
    each with its own process tag and attempt number."""
    return {f"proc{n:02d}.log": [f"2026-11-29 10:15:{10 + s:02d}.{n:03d} WARN [proc{n:02d}] dial tcp 127.0.0.1:27017: "
                                 f"connect: connection refused (attempt {s + n})" for s in range(seconds)]
            for n in range(count)}


def _bundle_findings(tmp_path, logs: dict, zone=None) -> list:
    from test_timeline import make_bundle

    reader = make_bundle(tmp_path / "b", logs, zone or {"name": "Europe/Moscow", "utc_offset": "+0300"})
    return [f for f in findings_of(reader) if f["area"] == "logs"]


def test_thirty_one_logs_with_the_same_refusal_are_one_finding(tmp_path):
    findings = _bundle_findings(tmp_path, _refusing_logs(31))
    same = one(findings, "log.same_error")
    assert same["title"].startswith("31 logs report 'dial tcp 127.0.0.1:27017: connect: connection refused "
                                    "(attempt {n})' from 07:15:10 UTC")
    figures = same["evidence"]["figures"]
    assert figures["logs"] == 31 and figures["lines"] == 31 * 25 and figures["since"] == "2026-11-29T07:15:10Z"
    assert [e["log"] for e in figures["evidence_logs"]] == [f"proc{n:02d}.log" for n in range(31)]
    assert figures["evidence_logs"][0] == {"log": "proc00.log", "file": "logs/proc00.log", "lines": 25, "first_line": 1}
    assert same["severity"] == "warning"
    assert matching(findings, "log.connection_refused") == []  # folded into the one finding


def test_one_log_refusing_keeps_its_own_finding(tmp_path):
    findings = _bundle_findings(tmp_path, _refusing_logs(1))
    assert matching(findings, "log.same_error") == []
    assert one(findings, "log.connection_refused", "proc00.log")["evidence"]["figures"]["count"] == 25


def test_two_logs_are_not_folded_and_other_messages_stay(tmp_path):
    logs = _refusing_logs(2)
    assert matching(_bundle_findings(tmp_path / "two", logs), "log.same_error") == []
    logs = _refusing_logs(3)  # three share it; one of them also fails on its own message
    logs["proc00.log"] += [f"2026-11-29 10:16:{s:02d} WARN [proc00] dial tcp 10.0.0.5:5672: connect: connection refused"
                           for s in range(25)]
    findings = _bundle_findings(tmp_path / "three", logs)
    assert one(findings, "log.same_error")["evidence"]["figures"]["logs"] == 3
    assert [f["subject"] for f in matching(findings, "log.connection_refused")] == ["proc00.log"]


def test_same_message_in_different_minutes_is_not_folded(tmp_path):
    logs = {f"proc{n}.log": [f"2026-11-29 1{n}:00:{s:02d} ERROR [proc{n}] connection refused 127.0.0.1:27017"
                             for s in range(3)] for n in range(4)}  # one log per hour
    findings = _bundle_findings(tmp_path, logs)
    assert matching(findings, "log.same_error") == []
    assert len(matching(findings, "log.errors")) == 4


def test_error_lines_of_one_message_fold_the_per_log_error_findings(tmp_path):
    logs = {f"proc{n}.log": [f"2026-11-29 10:15:{s:02d} ERROR [proc{n}] mongo: no reachable servers (id {n}{s}abcdef12)"
                             for s in range(5)] for n in range(4)}
    logs["proc3.log"].append("2026-11-29 10:17:00 ERROR [proc3] cannot render template 12")
    findings = _bundle_findings(tmp_path, logs)
    same = one(findings, "log.same_error")
    assert same["evidence"]["figures"]["message"] == "mongo: no reachable servers (id {id})"
    assert [f["subject"] for f in matching(findings, "log.errors")] == ["proc3.log"]  # its other error stays


def test_messages_are_normalized_but_addresses_kept():
    from collector.analyzers.samemessage import normalize

    assert normalize("dial tcp 127.0.0.1:27017: i/o timeout after 30.5 s") == "dial tcp 127.0.0.1:27017: i/o timeout after {n} s"
    assert normalize("connect [::1]:6666 and mongo2.local:27018 failed 3 times") == \
        "connect [::1]:6666 and mongo2.local:27018 failed {n} times"
    assert normalize("task 5f2b8c1e-1a2b-4c3d-8e9f-0123456789ab / deadbeef12 failed") == "task {id} / {id} failed"
