"""watch's parts on their own: the --on syntax, the triggers judged on samples of
collector.history's shape, and the bundles kept in a real folder (names it must never
touch beside its own)."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from collector.bundle.writer import BundleWriteError
from collector.run import OutputError
from collector.watch.shelf import BundleShelf, is_disk_full
from collector.watch.triggers import BadTrigger, Trigger, TriggerJudge, parse_triggers

MIB = 1024 * 1024


def _sample(t: float, findings=(), queues=None, rss=None) -> dict:
    return {"t": t, "status": "OK", "findings": [{"id": i, "severity": sev, "subject": sub} for i, sev, sub in findings],
            "processes": {"api": {"up": 1, "rss": rss}}, "queues": queues or {}, "datastores": {}, "mounts": {}}


def test_the_default_and_the_order_of_triggers():
    assert parse_triggers(()) == [Trigger("critical", "critical")]
    triggers = parse_triggers(["process.down, queue:oxy_triggers>10000 for 10m", "memory:api>2G for 5m,critical",
                               "process.down"])
    assert [t.kind for t in triggers] == ["finding", "queue", "memory", "critical"]
    assert triggers[1].name == "oxy_triggers" and triggers[1].limit == 10000 and triggers[1].hold == 600
    assert triggers[2].limit == 2 * 1024 ** 3 and triggers[2].hold == 300 and triggers[2].label_id == "memory-api"
    assert parse_triggers(["queue:q.with.dots>5"])[0].hold == 0


@pytest.mark.parametrize("text, words", [
    ("queue:q>ten", "not a count"), ("memory:api>2X for 5m", "not a size"), ("queue:q>5 for 5 minutes", "not a"),
    ("load:cpu>5", "not a threshold kind"), ("queue:>5", "not a threshold"), ("a,,b", "empty trigger"),
    ("PROCESS.DOWN", "not a finding id"), ("process", "not a finding id"), ("queue:q<5", "not a threshold"),
])
def test_bad_triggers_say_what_is_expected(text, words):
    with pytest.raises(BadTrigger, match=words):
        parse_triggers([text])


def test_a_new_critical_fires_and_the_first_sample_is_the_baseline():
    judge = TriggerJudge(parse_triggers(()))
    old = ("datastore.unreachable", "critical", "mongodb")
    assert judge.judge(None, _sample(0, [old])) is None  # already wrong at the start: the baseline
    assert judge.judge(_sample(0, [old]), _sample(1, [old, ("log.errors", "warning", "api")])) is None
    fired = judge.judge(_sample(1, [old]), _sample(2, [old, ("process.down", "critical", "api"),
                                                          ("datastore.unreachable", "critical", "webapi")]))
    assert fired.label_id == "process.down" and "(api)" in fired.reason  # the analyzers' order: the cause first
    assert judge.judge(_sample(2, [("process.down", "critical", "api")]),
                       _sample(3, [("process.down", "critical", "api")])) is None  # not new any more


def test_a_finding_id_fires_whatever_its_severity_and_first_match_names_the_bundle():
    judge = TriggerJudge(parse_triggers(["rabbitmq.queue_depth,critical"]))
    both = [("process.down", "critical", "api"), ("rabbitmq.queue_depth", "warning", "oxy_triggers")]
    assert judge.judge(_sample(0), _sample(1, both)).label_id == "rabbitmq.queue_depth"
    assert judge.judge(_sample(1), _sample(2, both[:1])).label_id == "process.down"


def test_a_threshold_fires_once_it_has_held_and_once_per_episode():
    judge = TriggerJudge(parse_triggers(["queue:oxy_triggers>100 for 10m"]))
    depths = [(0, 50), (60, 500), (300, 800), (659, 900), (660, 900), (720, 900), (780, None), (840, 500),
              (1440, 500)]
    fired_at = []
    previous = None
    for t, depth in depths:
        sample = _sample(t, queues={"oxy_triggers": depth})
        if judge.judge(previous, sample):
            fired_at.append(t)
        previous = sample
    assert fired_at == [660, 1440]  # held 10 minutes from 60; no data at 780 ended the first episode


def test_a_memory_threshold_reads_the_process_resident_memory():
    judge = TriggerJudge(parse_triggers(["memory:api>2G"]))
    assert judge.judge(None, _sample(0, rss=1024 ** 3)) is None
    fired = judge.judge(None, _sample(1, rss=3 * 1024 ** 3))
    assert fired.label_id == "memory-api" and "3.0 GiB" in fired.reason


def _bundle(folder, name: str, size: int, mtime: float):
    path = folder / name
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_the_shelf_keeps_the_newest_of_its_own_bundles_and_touches_nothing_else(tmp_path):
    host = "web-1"
    own = [_bundle(tmp_path, f"akdiag-{host}-watch-process.down-2026120{n}T000000Z.tar.gz", MIB, 1000 + n)
           for n in range(1, 5)]
    foreign = [_bundle(tmp_path, "akdiag-web-1-pre-upgrade-20260101T000000Z.7z", MIB, 1),
               _bundle(tmp_path, "akdiag-other-watch-process.down-20260101T000000Z.7z", MIB, 1),
               _bundle(tmp_path, "akdiag-web-1-watch-process.down-20260101T000000Z.7z.sha256", 10, 1)]
    (tmp_path / "akdiag-web-1-watch-x-20260101T000000Z.7z").mkdir()  # a folder named like a bundle
    os.symlink(own[0], tmp_path / "akdiag-web-1-watch-y-20260101T000000Z.7z")  # a link named like one
    shelf = BundleShelf(tmp_path, keep=3, max_disk=10 * MIB, min_free=0, hostname=host)
    assert [b.path for b in shelf.bundles()] == own
    removed = shelf.prune()
    assert len(removed) == 1 and own[0].name in removed[0] and "--keep 3" in removed[0]
    shelf.max_disk = int(1.5 * MIB)
    assert len(shelf.prune()) == 2  # 3 MiB kept, 1.5 MiB allowed: the two oldest go
    assert [b.path.name for b in shelf.bundles()] == [own[3].name]
    assert all(p.exists() for p in foreign) and os.path.islink(tmp_path / "akdiag-web-1-watch-y-20260101T000000Z.7z")
    assert (tmp_path / "akdiag-web-1-watch-x-20260101T000000Z.7z").is_dir()


def test_the_shelf_refuses_a_bundle_without_room(tmp_path):
    shelf = BundleShelf(tmp_path, keep=3, max_disk=MIB, min_free=1 << 60, hostname=socket.gethostname())
    assert "a bundle needs" in shelf.room_problem() and "--min-free" in shelf.room_problem()
    shelf.min_free = 0
    assert shelf.room_problem() is None
    assert "no more bundles until" in shelf.disk_filled()
    assert "after a full disk" in shelf.room_problem()


def test_a_full_disk_is_recognised_through_the_run_errors():
    cause = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise BundleWriteError("cannot write x into the bundle: No space left on device") from cause
        except BundleWriteError as exc:
            raise OutputError(str(exc)) from exc
    except OutputError as exc:
        assert is_disk_full(exc)
    assert not is_disk_full(OutputError("output folder /x is not writable"))
