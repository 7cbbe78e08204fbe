"""`akdiag watch` for real: a subprocess sampling a simulated host every second, a fault
injected mid-run (a platform process killed), real signals, a real full disk (a small
tmpfs in a mount namespace of its own)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import akdiag
from watch_helpers import WatchProcess, bundles_in, child_env, leftovers, ring_samples, tree

STOP_BOUND = 5.0  # seconds; "within a second" is measured in bench/ and the notes, this proves "does not hang"


@pytest.fixture
def running(host):
    host.start()
    return host


def _start(sim, tmp_path, *options):
    return WatchProcess.start(sim.basedir, sim.catalog_file, tmp_path / "out", tmp_path / "state",
                              tmp_path / "tmp", *options)


def _up(sample: dict, name: str):
    return sample["processes"].get(name, {}).get("up")


def test_a_killed_process_gives_one_bundle_with_history_before_and_after(running, tmp_path):
    before_tree = tree(running.basedir)
    watch = _start(running, tmp_path, "--cooldown", "1h")
    try:
        watch.wait_for_line(r"watching BASEDIR")
        before = watch.wait_for_samples(3)
        assert all(_up(s, "proctrigger") == 1 for s in before)
        fault = time.time()
        running.stop_process("proctrigger")
        written = watch.wait_for_line(r"bundle written: ")
        after = watch.wait_for_samples(2, after=fault)
        assert all(_up(s, "proctrigger") == 0 for s in after[-2:])
        running.stop_process("api")  # a second new critical, inside the cooldown
        # process.down (api), or datastore.unreachable (webapi) when the kill falls inside a sample
        watch.wait_for_line(r"trigger \S+: .*\((web)?api\).*no bundle: cooldown")
        took = watch.stop()
    finally:
        watch.kill()
    log = watch.log()
    assert watch.proc.returncode == 128 + signal.SIGTERM, log
    assert took < STOP_BOUND, (took, log)
    assert "trigger process.down: new critical finding process.down (proctrigger); taking a bundle" in log
    out = tmp_path / "out"
    assert bundles_in(out, "process.down") == os.listdir(out), log  # exactly one bundle, nothing else
    assert len(os.listdir(out)) == 1 and os.listdir(out)[0] in written[0]
    assert leftovers(out, tmp_path / "tmp") == []
    samples = watch.samples()
    assert any(s["t"] < fault and _up(s, "proctrigger") == 1 for s in samples)
    assert any(s["t"] > fault and _up(s, "proctrigger") == 0 for s in samples)
    assert tree(running.basedir) == before_tree  # nothing written under BASEDIR
    assert "interrupted by SIGTERM: watch stopped after" in log and log.count("interrupted by") == 1


def test_keep_removes_the_oldest_of_its_own_bundles_only(running, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    foreign = ["akdiag-otherhost-watch-process.down-20260101T000000Z.tar.gz", "notes.txt",
               "akdiag-vm-pre-upgrade-20260101T000000Z.7z"]
    for name in foreign:
        (out / name).write_text("not watch's\n")
    watch = _start(running, tmp_path, "--cooldown", "0", "--keep", "1")
    try:
        watch.wait_for_samples(2)
        running.stop_process("proctrigger")
        first = watch.wait_for_line(r"bundle written: ")[0]
        running.stop_process("api")
        second = watch.wait_for_line(r"bundle written: ", count=2)[1]
        watch.wait_for_line(r"removed akdiag-.*--keep 1")
        watch.stop()
    finally:
        watch.kill()
    kept = sorted(set(os.listdir(out)) - set(foreign))
    assert len(kept) == 1 and kept[0] in second and kept[0] not in first, watch.log()
    assert bundles_in(out, "process.down") + bundles_in(out, "datastore.unreachable") == sorted(kept + foreign[:1])
    assert leftovers(out, tmp_path / "tmp") == []


def test_sigterm_during_a_bundle_leaves_nothing_behind(running, tmp_path):
    watch = _start(running, tmp_path, "--on", "memory:api>1", "--format", "7z")
    try:
        watch.wait_for_line(r"trigger memory-api: .*taking a bundle")
        took = watch.stop()
    finally:
        watch.kill()
    log = watch.log()
    assert watch.proc.returncode == 128 + signal.SIGTERM and took < STOP_BOUND, (took, log)
    assert "bundle written" not in log, "the bundle was finished before the signal: the test proves nothing"
    assert os.listdir(tmp_path / "out") == [] and leftovers(tmp_path / "tmp") == []


def test_a_bundle_is_refused_without_room_and_sampling_goes_on(running, tmp_path):
    watch = _start(running, tmp_path, "--on", "memory:api>1", "--min-free", "1000T")
    try:
        watch.wait_for_line(r"trigger memory-api: .*bundle refused: only .* free in .*a bundle needs 1024000")
        refused_at = time.time()
        watch.wait_for_samples(2, after=refused_at)
        watch.stop()
    finally:
        watch.kill()
    assert os.listdir(tmp_path / "out") == []


def _pid_of(pid_file, shell, deadline: float) -> int:
    while shell.poll() is None and time.monotonic() < deadline:
        text = pid_file.read_text().strip() if pid_file.exists() else ""
        if text.endswith("\n") or text.isdigit():
            return int(text)
        time.sleep(0.1)
    raise AssertionError(f"the watch did not start: {shell.stderr.read() if shell.poll() is not None else ''}")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_a_full_disk_stops_the_bundles_not_the_watch(running, tmp_path):
    """The output folder is a 256 KiB tmpfs in a mount namespace of the watch's own."""
    out, pid_file = tmp_path / "out", tmp_path / "watch.pid"
    out.mkdir()
    argv = [sys.executable, "-m", "collector", "watch", "--basedir", str(running.basedir), "--catalog",
            str(running.catalog_file), "--output", str(out), "--interval", "1s", "--min-free", "0",
            "--format", "tar.gz", "--on", "memory:api>1"]
    script = ('mount -t tmpfs -o size=256k,mode=0700 tmpfs "$1" || exit 99; shift 2; "$@" & echo $! > "$0"; '
              'wait $!; echo "exit=$?"; ls -A "$OUT"')
    env = child_env(tmp_path / "state", tmp_path / "tmp")
    env["OUT"] = str(out)
    shell = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(pid_file),
                              str(out), "--", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    samples = lambda: ring_samples(running.basedir, tmp_path / "state")  # noqa: E731
    try:
        deadline = time.monotonic() + 90
        pid = _pid_of(pid_file, shell, deadline)
        err_lines = []
        while time.monotonic() < deadline:
            line = shell.stderr.readline()
            assert line, f"watch ended early:\n{''.join(err_lines)}"
            err_lines.append(line)
            if "disk full: no bundle written" in line:
                break
        else:
            raise AssertionError("".join(err_lines))
        at_full = len(samples())
        while len(samples()) < at_full + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(samples()) >= at_full + 2, "no sample after the full disk"
        os.kill(pid, signal.SIGTERM)
        out_text, rest = shell.communicate(30)
    finally:
        if shell.poll() is None:
            shell.kill()
    log = "".join(err_lines) + rest
    assert "no more bundles until" in log and "sampling goes on" in log, log
    assert "Traceback" not in log
    assert f"exit={128 + signal.SIGTERM}" in out_text, (out_text, log)
    assert out_text.strip().splitlines()[1:] == [], out_text  # the tmpfs held nothing when watch ended


def test_bad_triggers_are_usage_errors(tmp_path):
    for bad, words in (("queue:oxy_triggers>lots for 10m", "not a count of messages"),
                       ("memory:api>2Q", "not a size"),
                       ("disk:/>1G", "not a threshold kind"),
                       ("process.down,", "empty trigger"),
                       ("queue:oxy_triggers>10 for ever", "not a duration"),
                       ("Process Down", "not a finding id")):
        done = akdiag("watch", "--basedir", str(tmp_path), "--output", str(tmp_path / "out"), "--on", bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert "--on" in done.stderr and words in done.stderr, (bad, done.stderr)
    assert not (tmp_path / "out").exists()


def test_an_output_folder_inside_basedir_is_refused(tmp_path):
    basedir = tmp_path / "akd"
    basedir.mkdir()
    done = akdiag("watch", "--basedir", str(basedir), "--output", str(basedir / "bundles"),
                  env={"AKDIAG_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 2, done.stderr
    assert "inside BASEDIR" in done.stderr and "never writes" in done.stderr
    assert os.listdir(basedir) == [] and not (tmp_path / "state").exists()
    done = akdiag("watch", "--basedir", str(basedir), "--output", str(tmp_path / "out"),
                  env={"AKDIAG_STATE_DIR": str(basedir / "state")})
    assert done.returncode == 2 and "state folder" in done.stderr and "inside BASEDIR" in done.stderr, done.stderr
    assert os.listdir(basedir) == []
