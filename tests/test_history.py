"""The history ring: bounded on disk whatever the run time, never under BASEDIR, newest kept."""

import json
import os

import pytest

from collector.history import HistoryError, HistoryRing, NEWER, OLDER, history_folder, make_sample

SNAPSHOT = {
    "processes": [{"name": "api", "up": 1, "pids": 2, "resident_memory_bytes": 5000.0, "cpu_seconds": 1.5,
                   "open_fds": 10.0, "max_fds": 1024.0, "threads": 4.0, "start_time_seconds": 1000.0,
                   "connections": {"ESTABLISHED": 3, "LISTEN": 1}},
                  {"name": "akmtad", "up": 0, "pids": 0}],
    "datastores": [{"name": "mongodb", "up": 1, "latency_seconds": 0.002}],
    "queues": {"oxy_triggers": {"messages": 120.0, "consumers": 1.0}, "trk_x": {"messages": None}},
    "mounts": [{"mountpoint": "/", "free_bytes": 900.0, "files_free": 40.0}],
}
FINDINGS = [{"id": "process.down", "severity": "critical", "subject": "akmtad"},
            {"id": "host.uptime", "severity": "info"}]


def test_a_sample_keeps_the_figures_and_no_data_stays_none():
    sample = make_sample(SNAPSHOT, FINDINGS, "CRITICAL", when=2000.0)
    assert sample["processes"]["api"] == {"up": 1, "pids": 2, "rss": 5000.0, "cpu_seconds": 1.5, "open_fds": 10.0,
                                          "max_fds": 1024.0, "threads": 4.0, "started": 1000.0, "connections": 4}
    assert sample["processes"]["akmtad"]["rss"] is None and sample["processes"]["akmtad"]["up"] == 0
    assert sample["queues"] == {"oxy_triggers": 120.0, "trk_x": None}
    assert sample["findings"] == [{"id": "process.down", "severity": "critical", "subject": "akmtad"}]
    assert sample["mounts"]["/"] == {"free_bytes": 900.0, "free_inodes": 40.0}


def test_the_ring_reads_back_oldest_first_and_skips_a_cut_line(tmp_path):
    ring = HistoryRing(tmp_path / "h")
    for t in (100.0, 200.0, 300.0):
        ring.append(make_sample(SNAPSHOT, [], "OK", when=t))
    with open(tmp_path / "h" / NEWER, "ab") as handle:
        handle.write(b'{"t": 400.0, "status": "O')  # a crash in the middle of a write
    samples = ring.read(now=500.0)
    assert [s["t"] for s in samples] == [100.0, 200.0, 300.0]
    assert [(s["t"], s["processes"]["api"]["rss"]) for s in samples] == [(100.0, 5000.0), (200.0, 5000.0),
                                                                          (300.0, 5000.0)]
    assert (samples[0]["t"], samples[0]["queues"]["oxy_triggers"]) == (100.0, 120.0)
    assert oct(os.stat(tmp_path / "h" / NEWER).st_mode & 0o777) == "0o600"
    first_line = (tmp_path / "h" / NEWER).read_text().splitlines()[0]
    assert first_line.count('"rss"') == 1  # stored by table: a field's name once per sample, not per process


def test_the_ring_stays_within_its_size_and_keeps_the_newest(tmp_path):
    ring = HistoryRing(tmp_path / "h", max_bytes=64 * 1024, keep_seconds=10 ** 9)
    line = len(json.dumps(make_sample(SNAPSHOT, FINDINGS, "OK", when=0.0))) + 1
    count = 20 * (64 * 1024) // line  # ten times what the ring holds
    for i in range(count):
        ring.append(make_sample(SNAPSHOT, FINDINGS, "OK", when=float(i)))
        assert ring.disk_bytes() <= 64 * 1024 + line
    samples = ring.read(now=float(count))
    assert samples[-1]["t"] == float(count - 1)
    assert len(samples) >= (32 * 1024) // line  # at least the newer half
    assert (tmp_path / "h" / OLDER).exists()


def test_old_samples_are_left_out(tmp_path):
    ring = HistoryRing(tmp_path / "h", keep_seconds=3600)
    for t in (0.0, 5000.0, 9000.0):
        ring.append(make_sample(SNAPSHOT, [], "OK", when=t))
    assert [s["t"] for s in ring.read(now=9100.0)] == [9000.0]
    assert [s["t"] for s in ring.read(now=9100.0, since=8000.0)] == [9000.0]


def test_the_ring_is_never_under_basedir(tmp_path):
    basedir = tmp_path / "altcraft"
    basedir.mkdir()
    ring = HistoryRing(basedir / "state" / "history", basedir=basedir)
    with pytest.raises(HistoryError, match="inside BASEDIR"):
        ring.append(make_sample(SNAPSHOT, [], "OK"))
    assert not (basedir / "state").exists()


def test_each_basedir_has_a_folder_of_its_own(tmp_path):
    one = history_folder(tmp_path / "a", root=tmp_path / "state")
    two = history_folder(tmp_path / "b", root=tmp_path / "state")
    assert one != two and one.parent == two.parent == tmp_path / "state" / "history"
    assert history_folder(tmp_path / "a" / ".." / "a", root=tmp_path / "state") == one


def test_an_absent_ring_reads_as_no_samples(tmp_path):
    assert HistoryRing(tmp_path / "nothing").read() == []


def test_a_ring_kept_larger_than_the_reader_gives_its_newest_samples(tmp_path):
    writer = HistoryRing(tmp_path / "h", max_bytes=1024 * 1024, keep_seconds=10 ** 9)
    for i in range(1200):  # about 700 KB in the newer segment
        writer.append(make_sample(SNAPSHOT, FINDINGS, "OK", when=float(i)))
    reader = HistoryRing(tmp_path / "h", max_bytes=64 * 1024, keep_seconds=10 ** 9)  # reads 288 KiB of it
    samples = reader.read(now=2000.0)
    assert samples[-1]["t"] == 1199.0 and samples[0]["t"] > 0
    assert [s["t"] for s in samples] == sorted({s["t"] for s in samples})  # whole samples, none cut


def test_a_larger_ring_read_by_a_smaller_reader_leaves_no_hole(tmp_path):
    """Both segments larger than the reader reads: the newest samples, one unbroken run."""
    writer = HistoryRing(tmp_path / "h", max_bytes=1024 * 1024, keep_seconds=10 ** 9)
    for i in range(3000):  # past one rotation: both segments hold hundreds of KB
        writer.append(make_sample(SNAPSHOT, FINDINGS, "OK", when=float(i)))
    assert (tmp_path / "h" / OLDER).stat().st_size > 300 * 1024
    samples = HistoryRing(tmp_path / "h", max_bytes=64 * 1024, keep_seconds=10 ** 9).read(now=5000.0)
    kept = [s["t"] for s in samples]
    assert kept[-1] == 2999.0 and kept == [float(t) for t in range(int(kept[0]), 3000)]
