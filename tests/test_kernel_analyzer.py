"""The kernel analyzer's verdicts: an OOM kill or crash of a platform process (real
processes, their real PID files, the kill written into the real /dev/kmsg) or of a
datastore is critical, a stranger's a warning; repeats are one finding with a count;
`process.down` names the kill; disk, conntrack and SYN-flood events from kernel.json as
the contract gives it; nothing read is never "healthy"."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import pytest

from collector.analyzers.kernel import kill_for
from collector.bundle.reader import BundleReader
from test_kernel import inject, marker, oom_line, segfault_line
from triage_helpers import LoneHost, findings_of, matching, one

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="writing to /dev/kmsg needs root")
WITH_KERNEL = ("processes", "pidfiles", "ports", "kernel")


@pytest.fixture
def lone(tmp_path):
    host = LoneHost(tmp_path / "lone", {"main": {}, "other": {}, "web": {"port": None}})
    yield host
    host.stop()


def _title(lone: LoneHost, role: str) -> str:
    return f"AK:{lone.name(role)}"[:15]


@needs_root
def test_a_platform_process_killed_by_the_oom_killer(lone, tmp_path):
    lone.start("main", "other")
    pid = lone.sim.stop_process(lone.name("main"))  # its PID file stays, naming the dead PID
    lone.sim.stop_process(lone.name("other"))  # down too, and no kill of it
    inject(oom_line(pid, _title(lone, "main")))
    reader = lone.collect(tmp_path / "out", only=WITH_KERNEL)
    findings = findings_of(reader)
    killed = one(findings, "process.oom_killed", lone.name("main"))
    assert killed["severity"] == "critical"
    assert killed["evidence"]["figures"]["pid"] == pid and killed["evidence"]["figures"]["count"] == 1
    assert "RSS 3.0 GiB" in killed["title"] and "UTC" in killed["title"]
    down = one(findings, "process.down", lone.name("main"))
    assert down["hint"].startswith(f"{lone.name('main')} was killed by the kernel's OOM killer at ")
    assert "RSS 3.0 GiB; see kernel.json" in down["hint"] and "Read the end" not in down["hint"]
    assert down["evidence"]["figures"]["oom_kill"]["pid"] == pid
    other = one(findings, "process.down", lone.name("other"))
    assert other["hint"].startswith("Read the end of logs/") and "oom_kill" not in other["evidence"]["figures"]
    assert not matching(findings, "process.oom_killed", lone.name("other"))


@needs_root
def test_repeated_crashes_of_a_running_process_are_one_finding(lone, tmp_path):
    lone.start("main")
    comm = _title(lone, "main")
    inject(*(segfault_line(pid, comm) for pid in (920001, 920002, 920003)))
    reader = lone.collect(tmp_path / "out", only=WITH_KERNEL)
    crashed = one(findings_of(reader), "process.crashed", lone.name("main"))
    figures = crashed["evidence"]["figures"]
    assert crashed["severity"] == "critical" and figures["count"] == 3
    assert figures["pids"] == [920001, 920002, 920003] and figures["first"] <= figures["last"]
    assert "3 times, from " in crashed["title"]


@needs_root
def test_a_strangers_crash_is_a_warning(lone, tmp_path):
    comm = marker()
    inject(segfault_line(920004, comm))
    reader = lone.collect(tmp_path / "out", only=WITH_KERNEL)
    assert one(findings_of(reader), "process.crashed", comm)["severity"] == "warning"


# -- kernel.json as the contract gives it (events no test should write into the machine's log) ----------

def _bundle(lone: LoneHost, tmp_path: Path, events: list, **fields) -> BundleReader:
    reader = lone.collect(tmp_path / "out", only=("processes", "pidfiles", "ports"))
    data = {"source": "kmsg", "since": None, "boot_time": None, "messages_file": None, "lines": 0, "bytes": 0,
            "truncated": False, "events": events, "errors": []}
    data.update(fields)
    reader.path("kernel.json").write_text(json.dumps(data))
    return reader


def _ago(seconds: float) -> str:
    """A kernel.json time `seconds` before now (the bundle's collection)."""
    return datetime.fromtimestamp(time.time() - seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clock(stamp: str) -> str:
    return stamp[:10] + " " + stamp[11:19] + " UTC"


def _event(kind: str, time: Optional[str] = None, **fields) -> dict:
    event = {"time": time or _ago(300), "kind": kind, "pid": None, "process": None, "rss_bytes": None, "cgroup": None,
             "device": None, "message": f"a {kind} message"}
    event.update(fields)
    return event


def test_a_datastore_is_known_by_its_program_or_its_unit(lone, tmp_path):
    reader = _bundle(lone, tmp_path, [
        _event("oom_kill", pid=812, process="mongod", rss_bytes=2 ** 30),
        _event("oom_kill", pid=813, process="java", cgroup="/system.slice/clickhouse-server.service"),
        _event("oom_kill", pid=814, process="python3", cgroup="/user.slice/user-1000.slice"),
        _event("trap", pid=77, process="beam.smp"),
    ])
    findings = findings_of(reader)
    assert one(findings, "process.oom_killed", "mongod (MongoDB)")["severity"] == "critical"
    assert one(findings, "process.oom_killed", "java (ClickHouse)")["severity"] == "critical"
    assert one(findings, "process.oom_killed", "python3")["severity"] == "warning"
    assert one(findings, "process.crashed", "beam.smp (RabbitMQ)")["severity"] == "critical"


def test_disk_conntrack_and_syn_flood_events(lone, tmp_path):
    lone.start("main")
    first, last = _ago(900), _ago(600)
    reader = _bundle(lone, tmp_path, [
        _event("io_error", device="sda", time=first),
        _event("io_error", device="sda", time=last),
        _event("io_error", device="sdb"),
        _event("conntrack_full"), _event("conntrack_full"),
        _event("syn_flood", port=8080),
        _event("hung_task", pid=312, process="jbd2/sda1-8"),
    ])
    findings = findings_of(reader)
    sda = one(findings, "kernel.io_error", "sda")
    assert sda["severity"] == "critical" and sda["evidence"]["figures"]["count"] == 2
    assert f"2 times, from {_clock(first)} to {_clock(last)}" in sda["title"]
    assert one(findings, "kernel.io_error", "sdb")["evidence"]["figures"]["count"] == 1
    full = one(findings, "network.conntrack_full")
    assert full["severity"] == "critical" and full["evidence"]["figures"]["count"] == 2
    syn = one(findings, "network.syn_flood", "port 8080")
    assert syn["severity"] == "warning"
    assert one(findings, "kernel.hung_task", "jbd2/sda1-8")["severity"] == "warning"


def test_an_event_hours_before_the_collection_is_one_severity_lower(lone, tmp_path):
    reader = _bundle(lone, tmp_path, [
        _event("io_error", device="sda", time=_ago(3 * 3600 + 60)),  # history: the disk may be fine now
        _event("io_error", device="sdb", time=_ago(20 * 60)),  # within the hour: what is wrong now
        _event("oom_kill", pid=815, process="python3", time=_ago(5 * 3600)),
    ])
    findings = findings_of(reader)
    old = one(findings, "kernel.io_error", "sda")
    assert old["severity"] == "warning" and "(3 h before this collection)" in old["title"]
    recent = one(findings, "kernel.io_error", "sdb")
    assert recent["severity"] == "critical" and "before this collection" not in recent["title"]
    assert one(findings, "process.oom_killed", "python3")["severity"] == "info"


def test_syn_flood_names_the_platform_process_on_the_port(tmp_path):
    from triage_helpers import free_port

    port = free_port()
    host = LoneHost(tmp_path / "lone", {"web": {"port": port}}).start("web")
    try:
        reader = _bundle(host, tmp_path, [_event("syn_flood", port=port)])
    finally:
        host.stop()
    syn = one(findings_of(reader), "network.syn_flood", f"port {port}")
    assert syn["evidence"]["figures"]["listener"] == host.name("web") and host.name("web") in syn["title"]


def test_a_quiet_kernel_has_no_finding(lone, tmp_path):
    reader = _bundle(lone, tmp_path, [])
    assert not [f for f in findings_of(reader) if f["area"] == "kernel"]


def test_no_kernel_data_without_the_collector_claims_nothing(lone, tmp_path):
    reader = lone.collect(tmp_path / "out", only=("processes", "pidfiles", "ports"))
    assert not [f for f in findings_of(reader) if f["area"] == "kernel"]


def test_unreadable_messages_are_not_checked(lone, tmp_path):
    reader = _bundle(lone, tmp_path, [], source=None, errors=["cannot read the kernel's messages: /dev/kmsg: "
                                                               "Input/output error; dmesg: not installed"])
    finding = one(findings_of(reader), "kernel.not_checked")
    assert finding["severity"] == "warning" and "Input/output" in finding["evidence"]["figures"]["error"]


def test_a_kernel_json_of_the_wrong_shape_is_not_checked(lone, tmp_path):
    reader = _bundle(lone, tmp_path, None)
    assert one(findings_of(reader), "kernel.not_checked")["severity"] == "warning"
    reader.path("kernel.json").write_text("[]")
    findings = findings_of(reader)
    assert not matching(findings, "analyzer.failed")
    assert "kernel.json is not a JSON object" in one(findings, "kernel.not_checked")["title"]


def test_kill_for_finds_the_kill_by_pid_file_and_comm(lone, tmp_path):
    lone.start("main")
    pid = lone.sim.stop_process(lone.name("main"))
    reader = _bundle(lone, tmp_path, [
        _event("oom_kill", pid=pid, process=_title(lone, "main"), rss_bytes=5 * 2 ** 20,
               time="2026-12-01T03:12:44.5Z"),
        _event("oom_kill", pid=1, process=_title(lone, "other")),
    ])
    records = {r["name"]: r for r in reader.json("processes.json")["expected"]}
    kill = kill_for(reader, lone.name("main"), records[lone.name("main")])
    assert kill["pid"] == pid and "at 2026-12-01 03:12:44 UTC, RSS 5.0 MiB" in kill["hint"]
    assert kill_for(reader, lone.name("other"), records[lone.name("other")])["pid"] == 1
    assert kill_for(reader, lone.name("web"), records[lone.name("web")]) is None


def test_a_reused_pid_is_not_the_platform_process(lone, tmp_path):
    """The PID file's number, killed as another program (the number was reused): not the
    platform process's kill."""
    lone.start("main")
    pid = lone.sim.stop_process(lone.name("main"))
    reader = _bundle(lone, tmp_path, [_event("oom_kill", pid=pid, process="mongod", rss_bytes=2 ** 30)])
    records = {r["name"]: r for r in reader.json("processes.json")["expected"]}
    assert kill_for(reader, lone.name("main"), records[lone.name("main")]) is None
    findings = findings_of(reader)
    assert one(findings, "process.oom_killed", "mongod (MongoDB)")
    assert one(findings, "process.down", lone.name("main"))["hint"].startswith("Read the end of logs/")
