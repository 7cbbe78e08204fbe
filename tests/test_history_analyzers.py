"""The history rules on bundles holding a history.json written with the real writer from
samples in the ring's shape (collector.history.make_sample), in clean/dirty pairs: a queue
9 minutes over its threshold is no finding and 11 minutes is; a gap breaks the run; memory
that grows steadily is a finding and flat memory is not; 2 restarts in the hour are none and
3 are one.  A bundle without history.json gets none of these findings."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import pytest

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.bundle.writer import BundleWriter
from collector.history import make_sample
from collector.history_file import history_document
from collector.live import iso_utc
from collector.redact import Scrubber
from triage_helpers import findings_of, matching, one

NOW = 1796155200.0  # 2026-12-01 20:00 UTC: when the bundle was collected
STEP = 30.0
HISTORY_IDS = ("rabbitmq.queue_depth_sustained", "rabbitmq.queue_not_draining", "process.memory_growth",
               "process.restarting")
MB = 1024 * 1024


def sample(t: float, queues: Optional[Dict[str, float]] = None, processes: Optional[Dict[str, dict]] = None) -> dict:
    """One sample as watch makes it, from a check's snapshot."""
    snapshot = {
        "processes": [dict({"name": name, "up": 1, "pids": 1}, **figures) for name, figures in (processes or {}).items()],
        "queues": {name: {"messages": depth, "consumers": 1} for name, depth in (queues or {}).items()},
        "mounts": [{"mountpoint": "/", "free_bytes": 50e9, "files_free": 10 ** 6}],
        "datastores": [{"name": "mongodb", "up": 1, "latency_seconds": 0.002}],
    }
    return make_sample(snapshot, [], "OK", when=t)


def times(minutes: float, end: float = NOW - 10.0, step: float = STEP) -> List[float]:
    """Sample times every `step` seconds over `minutes`, the newest at `end`."""
    count = int(minutes * 60 / step) + 1
    return [end - (count - 1 - i) * step for i in range(count)]


def bundle(tmp_path: Path, samples: Optional[List[dict]], name: str = "b") -> BundleReader:
    """A bundle holding a manifest (collected at NOW) and, when given, history.json."""
    writer = BundleWriter(tmp_path / name, Scrubber())
    writer.write_json(schema.MANIFEST, {"schema_version": 1, "started_at": iso_utc(NOW), "collectors": []})
    if samples is not None:
        writer.write_json(schema.HISTORY, history_document(samples))
    return BundleReader(tmp_path / name)


def queue_history(over_minutes: float, depth: float = 12000.0, queue: str = "oxy_triggers") -> List[dict]:
    """An hour of samples; the queue under its threshold, then over it for the last `over_minutes`."""
    start_over = NOW - 10.0 - over_minutes * 60
    return [sample(t, {queue: depth if t >= start_over else 100.0}) for t in times(60)]


def history_findings(reader: BundleReader) -> List[dict]:
    return [f for f in findings_of(reader) if f["id"] in HISTORY_IDS]


def test_a_queue_over_for_9_minutes_is_quiet_and_for_11_minutes_is_a_warning(tmp_path):
    assert history_findings(bundle(tmp_path, queue_history(9), "nine")) == []
    found = one(findings_of(bundle(tmp_path, queue_history(11), "eleven")), "rabbitmq.queue_depth_sustained")
    assert found["severity"] == "warning" and found["subject"] == "oxy_triggers"
    figures = found["evidence"]["figures"]
    assert figures["minutes"] == 11 and figures["peak"] == 12000.0 and figures["threshold"] == 10000
    assert found["evidence"]["file"] == "history.json"
    assert "11 minutes" in found["title"] and "12,000" in found["title"]


def test_a_glob_threshold_and_50_minutes_over_is_critical(tmp_path):
    samples = [sample(t, {"trk_actions": 5000.0 + i, "trk_pixel": 10.0}) for i, t in enumerate(times(55))]
    found = findings_of(bundle(tmp_path, samples))
    critical = one(found, "rabbitmq.queue_depth_sustained", "trk_actions")
    assert critical["severity"] == "critical" and critical["evidence"]["figures"]["rule"] == "trk_*"
    assert critical["evidence"]["figures"]["minutes"] == 55
    assert matching(found, "rabbitmq.queue_depth_sustained", "trk_pixel") == []


def test_a_gap_in_the_samples_is_never_read_as_held(tmp_path):
    """Over the threshold in every sample for 20 minutes, but watch stopped for 5 minutes in
    between: neither piece is 10 minutes long."""
    samples = [sample(t, {"oxy_triggers": 15000.0}) for t in times(20) if not NOW - 10 * 60 <= t < NOW - 5 * 60]
    samples = [sample(t, {"oxy_triggers": 10.0}) for t in times(60, end=NOW - 21 * 60)] + samples
    assert history_findings(bundle(tmp_path, samples)) == []
    whole = [sample(t, {"oxy_triggers": 10.0}) for t in times(60, end=NOW - 21 * 60)] + \
        [sample(t, {"oxy_triggers": 15000.0}) for t in times(20)]
    assert one(findings_of(bundle(tmp_path, whole, "whole")), "rabbitmq.queue_depth_sustained")["severity"] == "warning"


def test_a_history_that_stopped_before_the_collection_judges_nothing(tmp_path):
    """The queue was over for 30 minutes, but watch stopped an hour before the collection."""
    samples = [sample(t, {"oxy_triggers": 15000.0}) for t in times(30, end=NOW - 3600)]
    assert history_findings(bundle(tmp_path, samples)) == []


def test_an_akmta_queue_that_does_not_drain_for_50_minutes(tmp_path):
    stuck = [sample(t, {"akmta_1": 300.0 + i}) for i, t in enumerate(times(52))]
    found = one(findings_of(bundle(tmp_path, stuck, "stuck")), "rabbitmq.queue_not_draining", "akmta_1")
    assert found["severity"] == "warning" and found["evidence"]["figures"]["minutes"] == 50
    assert found["evidence"]["figures"]["first"] <= found["evidence"]["figures"]["messages"]
    # the same depth, but it drains for a while in the middle: no finding
    draining = [sample(t, {"akmta_1": 300.0 - (100 if 40 <= i < 60 else 0) + i}) for i, t in enumerate(times(52))]
    assert matching(findings_of(bundle(tmp_path, draining, "draining")), "rabbitmq.queue_not_draining") == []
    # empty now and then: it drains
    empty = [sample(t, {"akmta_1": 0.0 if i == 50 else 300.0}) for i, t in enumerate(times(52))]
    assert matching(findings_of(bundle(tmp_path, empty, "empty")), "rabbitmq.queue_not_draining") == []
    # 45 minutes stuck: not yet
    short = [sample(t, {"akmta_1": 300.0}) for t in times(45)]
    assert matching(findings_of(bundle(tmp_path, short, "short")), "rabbitmq.queue_not_draining") == []


def memory_history(rss_at, minutes: float = 60, started: float = NOW - 86400) -> List[dict]:
    return [sample(t, processes={"proctrigger": {"resident_memory_bytes": rss_at(i), "start_time_seconds": started,
                                                 "cpu_seconds": 10.0 + i}})
            for i, t in enumerate(times(minutes))]


def test_steady_memory_growth_is_a_warning_and_flat_memory_is_not(tmp_path):
    count = len(times(60))
    growing = memory_history(lambda i: 300 * MB + 400 * MB * i / count + (5 * MB if i % 7 == 0 else 0))
    found = one(findings_of(bundle(tmp_path, growing, "growing")), "process.memory_growth", "proctrigger")
    figures = found["evidence"]["figures"]
    assert found["severity"] == "warning" and figures["minutes"] >= 59
    assert figures["percent"] > 100 and figures["grown_bytes"] > 350 * MB
    flat = memory_history(lambda i: 300 * MB + (5 * MB if i % 7 == 0 else 0))
    assert history_findings(bundle(tmp_path, flat, "flat")) == []


@pytest.mark.parametrize("case, rss", [
    ("small", lambda i: 100 * MB + MB * i),  # +120 %, but only 120 MB
    ("slow", lambda i: 1000 * MB + 2 * MB * i),  # +240 MB, but only 24 %
    ("jagged", lambda i: 300 * MB + 3 * MB * i + (400 * MB if i % 2 else 0)),  # up and down every step
])
def test_growth_too_small_or_not_steady_is_quiet(tmp_path, case, rss):
    assert history_findings(bundle(tmp_path, memory_history(rss), case)) == []


def test_memory_after_a_restart_is_judged_from_the_restart(tmp_path):
    """It grew 300 -> 700 MB, restarted 10 minutes ago: 10 minutes are too short to judge."""
    samples = memory_history(lambda i: 300 * MB + 4 * MB * i, minutes=50)
    samples = samples[:-20] + [sample(s["t"], processes={"proctrigger": {
        "resident_memory_bytes": 100 * MB + MB * n, "start_time_seconds": NOW - 700, "cpu_seconds": 1.0}})
        for n, s in enumerate(samples[-20:])]
    assert matching(findings_of(bundle(tmp_path, samples)), "process.memory_growth") == []


def restart_history(restarts: int) -> List[dict]:
    """An hour of samples of `api`, which started afresh `restarts` times (down for a sample each time)."""
    out, started = [], NOW - 86400
    restart_at = {40 + 30 * n for n in range(restarts)}
    for i, t in enumerate(times(60)):
        if i in restart_at:
            out.append(sample(t, processes={"api": {"up": 0}}))
            started = t + 5
            continue
        out.append(sample(t, processes={"api": {"resident_memory_bytes": 50 * MB, "start_time_seconds": started}}))
    return out


def test_two_restarts_in_the_hour_are_quiet_and_three_are_a_warning(tmp_path):
    assert history_findings(bundle(tmp_path, restart_history(2), "two")) == []
    found = one(findings_of(bundle(tmp_path, restart_history(3), "three")), "process.restarting", "api")
    figures = found["evidence"]["figures"]
    assert found["severity"] == "warning" and figures["restarts"] == 3 and len(figures["times"]) == 3
    assert "restarted 3 times" in found["title"] and figures["times"][0] in found["title"]


def test_the_oldest_of_several_pids_ending_is_no_restart(tmp_path):
    """api's workers end one by one, the oldest first: its start time (its oldest PID's)
    moves five times in the hour, each time to a PID that was running long before: no
    restart, and its memory is still judged over the whole hour."""
    worker_starts = [NOW - 86400 + 3600 * n for n in range(6)]
    samples = [sample(t, processes={"api": {"resident_memory_bytes": 300 * MB + 4 * MB * i, "pids": 4,
                                            "start_time_seconds": worker_starts[min(i // 20, 5)]}})
               for i, t in enumerate(times(60))]
    found = findings_of(bundle(tmp_path, samples))
    assert matching(found, "process.restarting") == []
    assert one(found, "process.memory_growth", "api")["evidence"]["figures"]["minutes"] >= 59


def test_no_history_means_no_history_finding_and_the_analyzers_ran(tmp_path):
    reader = bundle(tmp_path, None)
    assert history_findings(reader) == []
    from collector.analyzers import analyze
    from collector.catalog import load_catalog

    outcomes = {a["name"]: a["status"] for a in analyze(reader, load_catalog().thresholds).analyzers}
    assert outcomes["history"] == "ok" and outcomes["history_processes"] == "ok"


def test_a_damaged_history_is_no_finding_and_no_crash(tmp_path):
    reader = bundle(tmp_path, None)
    (tmp_path / "b" / "history.json").write_text('{"schema": 1, "t": [2.0, 1.0], "queues": {"oxy_triggers": 3}')
    assert history_findings(reader) == []
    (tmp_path / "b" / "history.json").write_text(
        '{"schema": 1, "t": [%f, %f, %f], "queues": {"oxy_triggers": [1, "x"], "trk_a": 5}, '
        '"processes": {"a": 7, "b": {"rss": {"x": 1}, "started": [1, 2, 3, 4, 5]}}, "interval_seconds": -1}'
        % (NOW - 70, NOW - 40, NOW - 10))
    from collector.analyzers import analyze
    from collector.catalog import load_catalog

    analysis = analyze(reader, load_catalog().thresholds)
    assert [f for f in analysis.findings if f["id"] == "analyzer.failed"] == []


def test_a_fast_watch_whose_hour_was_thinned_is_judged_at_the_kept_pace(tmp_path):
    """Samples every 2 s: history.json keeps the hour thinned (one every 10 s); that pace, not
    the ring's, says what a gap is."""
    def fast(over_minutes):
        start_over = NOW - 10.0 - over_minutes * 60
        return [sample(t, {"trk_x": 6000.0 if t >= start_over else 1.0}) for t in times(60, step=2.0)]
    assert history_findings(bundle(tmp_path, fast(9), "fast9")) == []
    found = one(findings_of(bundle(tmp_path, fast(11), "fast11")), "rabbitmq.queue_depth_sustained", "trk_x")
    assert found["evidence"]["figures"]["minutes"] in (10, 11) and found["severity"] == "warning"
