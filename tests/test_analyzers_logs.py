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


def test_classify_line_and_densest_window():
    assert classify_line("2024-05-02T08:00:01Z ERROR boom") == "error"
    assert classify_line("2024-05-02T08:00:01Z FATAL boom") == "fatal"
    assert classify_line("panic: oops") == "panic"
    assert classify_line("read: connection refused") == "refused"
    assert classify_line("all good") is None
    assert densest_window([0, 1, 2, 100, 101], 10) == (3, 0)
    assert densest_window([], 10) == (0, None)
