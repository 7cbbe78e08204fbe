"""Recent starts: one `platform.restarted` info only when the restarted processes look
like one start of the platform (at least 3, at least half of those running, started
within 120 s of each other); crash loops on a small host stay warnings, so `akdiag
check` does not say OK.  Real simulated processes started together give the merged case
for real; the start times of the other cases cannot be made here, so they are written
into a copy of that real bundle's processes.json, each beside its healthy twin.  A start
of the whole platform, each log saying it started once, is no crash loop."""

from __future__ import annotations

import json
import shutil
from typing import List, Optional

import pytest

from collector.analyzers.common import bundle_started_at
from collector.bundle.reader import BundleReader
from collector.live import iso_utc
from conftest import akdiag
from triage_helpers import LoneHost, edit_json, findings_of, healthy_system, matching, one

ROLES = [f"p{i}" for i in range(7)]
EXIT_OK, EXIT_WARNING = 0, 1


@pytest.fixture(scope="module")
def started_together(tmp_path_factory):
    """A real bundle of 7 processes of the test's own, all started a moment ago."""
    root = tmp_path_factory.mktemp("restarts")
    lone = LoneHost(root / "lone", {role: {} for role in ROLES}).start(*ROLES)
    try:
        reader = lone.collect(root / "out", only=("system", "processes", "pidfiles", "ports", "config"))
    finally:
        lone.stop()
    edit_json(reader, "system.json", healthy_system)
    edit_json(reader, "processes.json", lambda data: data.update(
        expected=[p for p in data["expected"] if p["name"].startswith(f"zt{lone.tag}")]))
    reader.path("findings.json").unlink()  # judged again by today's analyzers, after the edits
    return reader, lone


def _copy(started_together, tmp_path) -> BundleReader:
    reader, _lone = started_together
    shutil.copytree(reader.root, tmp_path / "bundle")
    return BundleReader(tmp_path / "bundle")


def _started(reader: BundleReader, seconds_before: List[Optional[float]]) -> None:
    """Keep one running process per entry, started that many seconds before the
    collection (None: an hour before)."""
    collected = bundle_started_at(reader)

    def change(data):
        data["expected"] = data["expected"][:len(seconds_before)]
        for record, before in zip(data["expected"], seconds_before):
            for resource in record["resources"]:
                resource["started_at"] = iso_utc(collected - (3600 if before is None else before))
    edit_json(reader, "processes.json", change)


def _restarts(findings):
    return sorted(f["subject"] for f in matching(findings, "process.restarted"))


def test_processes_really_started_together_are_one_info(started_together, tmp_path):
    reader = _copy(started_together, tmp_path)
    findings = findings_of(reader)
    platform = one(findings, "platform.restarted")
    assert platform["severity"] == "info"
    assert len(platform["evidence"]["figures"]["processes"]) == len(ROLES)
    assert platform["evidence"]["figures"]["spread_seconds"] <= 120
    assert _restarts(findings) == []


def test_three_of_four_restarting_at_scattered_times_stay_warnings(started_together, tmp_path):
    reader = _copy(started_together, tmp_path)
    _started(reader, [500, 300, 60, None])
    findings = findings_of(reader)
    assert not matching(findings, "platform.restarted")
    restarted = matching(findings, "process.restarted")
    assert len(restarted) == 3 and {f["severity"] for f in restarted} == {"warning"}


def test_three_of_four_started_within_two_minutes_are_one_info(started_together, tmp_path):
    reader = _copy(started_together, tmp_path)
    _started(reader, [300, 250, 185, None])
    findings = findings_of(reader)
    platform = one(findings, "platform.restarted")
    assert platform["severity"] == "info" and len(platform["evidence"]["figures"]["processes"]) == 3
    assert platform["evidence"]["figures"]["spread_seconds"] == 115
    assert _restarts(findings) == []


def test_three_of_seven_started_together_are_less_than_half_and_stay_warnings(started_together, tmp_path):
    reader = _copy(started_together, tmp_path)
    _started(reader, [100, 100, 100, None, None, None, None])
    findings = findings_of(reader)
    assert not matching(findings, "platform.restarted")
    assert len(_restarts(findings)) == 3


def test_four_of_seven_started_together_are_one_info(started_together, tmp_path):
    reader = _copy(started_together, tmp_path)
    _started(reader, [100, 100, 90, 90, None, None, None])
    assert len(one(findings_of(reader), "platform.restarted")["evidence"]["figures"]["processes"]) == 4


def test_the_spread_is_a_threshold(started_together, tmp_path):
    reader = _copy(started_together, tmp_path)
    _started(reader, [500, 300, 60, None])
    assert one(findings_of(reader, platform_restart_spread_seconds=600), "platform.restarted")
    _started(reader, [300, 250, 185, None])
    assert not matching(findings_of(reader, platform_restart_spread_seconds=60), "platform.restarted")


def test_check_says_warning_for_a_crash_loop_and_ok_for_a_platform_restart(started_together, tmp_path):
    crash_loop = _copy(started_together, tmp_path / "loop")
    _started(crash_loop, [500, 300, 60, None])
    done = akdiag("check", "--bundle", str(crash_loop.root), "--format", "nagios")
    assert done.returncode == EXIT_WARNING, done.stdout + done.stderr
    restart = _copy(started_together, tmp_path / "restart")
    _started(restart, [300, 250, 185, None])
    done = akdiag("check", "--bundle", str(restart.root), "--format", "nagios")
    assert done.returncode == EXIT_OK, done.stdout + done.stderr


def _logs_with_one_start_each(reader: BundleReader, names: List[str]) -> None:
    """Each process's log: work, a FATAL line (the platform stopped on an error), then its one start."""
    collected = bundle_started_at(reader)
    (reader.root / "logs").mkdir(exist_ok=True)
    files = []
    for name in names:
        lines = [f"{iso_utc(collected - 300 + i)} INFO  [{name}] processed batch {i}" for i in range(0, 240, 20)]
        lines += [f"{iso_utc(collected - 50)} FATAL [{name}] lost the connection to rabbitmq",
                  f"{iso_utc(collected - 5)} INFO  [{name}] starting {name} v2025.1.71.3",
                  f"{iso_utc(collected - 4)} INFO  [{name}] processed batch 1"]
        reader.path(f"logs/{name}.log").write_text("\n".join(lines) + "\n")
        files.append({"path": f"{name}.log", "type": "file", "state": "tailed", "mtime": iso_utc(collected),
                      "tail": {"bundle_path": f"logs/{name}.log", "lines": len(lines)}})
    reader.path("logs/index.json").write_text(json.dumps({"root": "/opt/akd/logs", "exists": True, "files": files,
                                                          "errors": []}))


def test_a_platform_restart_after_an_error_is_no_crash_loop(started_together, tmp_path):
    reader = _copy(started_together, tmp_path)
    _logs_with_one_start_each(reader, [p["name"] for p in reader.json("processes.json")["expected"]])
    findings = findings_of(reader)
    assert not matching(findings, "process.crash_loop")
    assert len(one(findings, "platform.restarted")["evidence"]["figures"]["processes"]) == len(ROLES)
