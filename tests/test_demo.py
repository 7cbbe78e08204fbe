"""`akdiag demo` on a machine that runs the platform (issue 15, part 4): a simulated platform
with its AK:api runs in this test's namespace, as a real one would on the machine; the demo
runs beside it.  The demo's findings are its own (its faults, no process.duplicate), `pidof
AK:api` keeps giving the platform's one PID while the demo runs, the demo says how it was
isolated, and its output never says to send the bundle to support."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO

PIDOF = shutil.which("pidof")


def _demo(out: Path, env_extra=None) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-m", "collector", "demo", "--format", "dir", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _findings(bundle: Path) -> list:
    return json.loads((bundle / "findings.json").read_text())["findings"]


def _bundle_of(out: Path) -> Path:
    (bundle,) = [p for p in out.iterdir() if p.is_dir()]
    return bundle


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not PIDOF,
                    reason="needs root, unshare and pidof")
def test_the_demo_beside_a_running_platform_shows_only_itself(full_host, tmp_path):
    platform_api = full_host.processes["api"].pid
    answers = []
    proc = _demo(tmp_path)

    def watch_pidof():  # what a monitoring system's `pidof AK:api` sees while the demo runs
        while proc.poll() is None:
            answers.append(subprocess.run([PIDOF, "AK:api"], capture_output=True, text=True).stdout.split())
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_pidof)
    watcher.start()
    try:
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.join(10)
    assert proc.returncode == 0, stderr
    assert len(answers) > 5, "the demo ended before pidof could be asked"
    assert all(answer == [str(platform_api)] for answer in answers), [a for a in answers if a != [str(platform_api)]]

    findings = _findings(_bundle_of(tmp_path))
    ids = {(f["id"], f["subject"]) for f in findings}
    assert ("process.down", "proctrigger") in ids and ("port.conflict", "trkread") in ids
    assert not [f for f in findings if f["id"] == "process.duplicate"]
    assert "Isolation: the simulated host ran in its own PID, network and mount namespaces" in stdout
    assert "Send this file" not in stdout + stderr and "not for support" in stdout
    assert full_host.processes["api"].poll() is None  # the platform's own process untouched
    time.sleep(0.5)
    assert subprocess.run([PIDOF, "AK:api"], capture_output=True, text=True).stdout.split() == [str(platform_api)]


def test_without_namespaces_the_demo_keeps_apart_by_names(full_host, tmp_path):
    """No unshare on the PATH: the demo runs beside the platform's processes, titled apart
    (AKdemo:<name>) and without datastore checks, and says so."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("sh", "7z", "ss", "ip", "pidof"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bare / tool)
    out = tmp_path / "out"
    out.mkdir()
    proc = _demo(out, {"PATH": str(bare)})
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    assert "Isolation: by names (unshare is not installed)" in stdout
    assert "Send this file" not in stdout + stderr
    bundle = _bundle_of(out)
    findings = _findings(bundle)
    ids = {(f["id"], f["subject"]) for f in findings}
    assert ("process.down", "proctrigger") in ids and ("port.conflict", "trkread") in ids
    assert not [f for f in findings if f["id"] == "process.duplicate"]
    expected = {p["name"]: p for p in json.loads((bundle / "processes.json").read_text())["expected"]}
    assert expected["api"]["title"] == "AKdemo:api" and expected["api"]["status"] == "running"
    assert full_host.processes["api"].pid not in expected["api"]["pids"]
    ran = {c["name"]: c["status"] for c in json.loads((bundle / "manifest.json").read_text())["collectors"]}
    assert ran["datastores"] == "skipped"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_a_stopped_demo_leaves_nothing_behind(tmp_path):
    """SIGTERM to `akdiag demo` while its simulated host runs in its namespaces: it stops
    with 143, and neither a process of its host, nor its folder, nor a partial bundle stays."""
    import psutil

    proc = _demo(tmp_path)
    line = ""
    deadline = time.monotonic() + 60
    while "Simulated Altcraft host in" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "the demo ended before its host started"
    basedir = line.strip().rsplit(" ", 1)[-1]
    time.sleep(1.0)  # its processes starting
    proc.send_signal(15)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []
    assert not Path(basedir).exists()
    left = []
    for other in psutil.process_iter(["cmdline"]):
        if any(basedir in part for part in other.info["cmdline"] or ()):
            left.append(other.pid)
    assert left == []
