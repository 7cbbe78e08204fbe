"""`akdiag watch` for real: a subprocess sampling a simulated host every second, a fault
injected mid-run (a platform process killed), real signals, a real full disk (a small
tmpfs in a mount namespace of its own)."""

from __future__ import annotations

import json
import os
import signal
import tarfile
import time

import pytest

from watch_helpers import WatchProcess, bundles_in, leftovers, tree

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
        # a sample under way at the fault ends after it and may have seen the process up:
        # of three samples stamped after the fault, the last two began after it
        after = watch.wait_for_samples(3, after=fault)
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
    history = _bundle_history(out / os.listdir(out)[0])
    up = dict(zip(history["t"], history["processes"]["proctrigger"]["up"]))
    assert any(t < fault and value == 1 for t, value in up.items()), history["t"]  # the bundle carries the before


def _bundle_history(archive) -> dict:
    with tarfile.open(archive) as bundle:  # watch_helpers starts watch with --format tar.gz
        (member,) = [m for m in bundle.getmembers() if m.name.endswith("/history.json")]
        return json.load(bundle.extractfile(member))
