"""history.json in a real bundle: collect() on a simulated host reads the real ring in
akdiag's state folder (AKDIAG_STATE_DIR, a private folder here), keeps it bounded (the file
says its bounds and what it dropped), scrubs it like every file, and plots it; a host with no
history gets an empty history.json, no section and no history finding; a ring that cannot be read is a
recorded error and the run goes on; `check` never reads the ring."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from collector.bundle import schema
from collector.catalog import load_catalog
from collector.check import check_host
from collector.history import HistoryRing, history_folder, make_sample
from collector.bundle.writer import json_bytes
from collector.history_file import MAX_SAMPLES, RECENT_SECONDS, history_document, written_size
from conftest import collect_bundle

SECRET = "Sup3rSecretPw9"
QUEUE_WITH_SECRET = f"amqp://guest:{SECRET}@10.0.0.1:5672/trk_x"
HISTORY_IDS = {"rabbitmq.queue_depth_sustained", "rabbitmq.queue_not_draining", "process.memory_growth",
               "process.restarting"}


@pytest.fixture
def state(tmp_path, monkeypatch):
    folder = tmp_path / "state"
    monkeypatch.setenv("AKDIAG_STATE_DIR", str(folder))
    return folder


def fill_ring(basedir, hours: float = 24.0, step: float = 30.0) -> list:
    """The ring as watch leaves it after `hours` at one sample every `step` seconds."""
    ring = HistoryRing(history_folder(basedir), basedir=basedir)
    now = float(int(time.time()) - 5)
    count = int(hours * 3600 / step)
    times = [now - (count - 1 - i) * step for i in range(count)]
    for i, t in enumerate(times):
        snapshot = {"processes": [{"name": f"proc{n}", "up": 1, "pids": 1, "resident_memory_bytes": 2e8 + n * 1e7,
                                   "cpu_seconds": i * 0.5, "open_fds": 30, "start_time_seconds": now - 90000}
                                  for n in range(12)],
                    "queues": {"oxy_triggers": {"messages": 12000.0 if t > now - 15 * 60 else 40.0},
                               QUEUE_WITH_SECRET: {"messages": 1.0}},
                    "datastores": [{"name": "mongodb", "up": 1, "latency_seconds": 0.003}],
                    "mounts": [{"mountpoint": "/", "free_bytes": 5e10, "files_free": 10 ** 6}]}
        ring.append(make_sample(snapshot, [], "OK", when=t))
    return times


def outcome(reader, name: str):
    return next((o for o in reader.manifest["collectors"] if o["name"] == name), None)


def test_a_bundle_carries_a_bounded_scrubbed_history_and_plots_it(host, tmp_path, state):
    times = fill_ring(host.basedir)
    assert SECRET.encode() in (history_folder(host.basedir) / "samples.0.jsonl").read_bytes()
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "history"))
    history = reader.json(schema.HISTORY)
    assert history["samples_total"] == len(times) and history["samples_kept"] <= MAX_SAMPLES
    assert history["samples_dropped"] == history["samples_total"] - history["samples_kept"] > 0
    assert history["bounds"]["max_samples"] == MAX_SAMPLES and history["bounds"]["max_bytes"] > 0
    assert history["interval_seconds"] == 30.0
    kept = history["t"]
    assert kept == sorted(kept) and kept[-1] == pytest.approx(times[-1], abs=0.01)
    recent = [t for t in times if t >= times[-1] - RECENT_SECONDS]
    assert len([t for t in kept if t >= times[-1] - RECENT_SECONDS]) == len(recent)  # the last hour is whole
    assert history["window"]["seconds"] == pytest.approx(times[-1] - times[0], abs=0.01)
    size = reader.path(schema.HISTORY).stat().st_size
    assert size <= history["bounds"]["max_bytes"] + 4096  # the samples' bound, plus the file's few header lines
    assert SECRET not in reader.path(schema.HISTORY).read_text()  # through the writer: scrubbed
    assert outcome(reader, "history") == dict(outcome(reader, "history"), status="ok", output="history.json")
    assert "history.json" in [f["path"] for f in reader.manifest["files"]]
    summary = reader.path(schema.SUMMARY_HTML).read_text()
    assert '<section id="history">' in summary and summary.count('<figure class="history-chart"') == 6
    findings = reader.json(schema.FINDINGS)["findings"]
    sustained = [f for f in findings if f["id"] == "rabbitmq.queue_depth_sustained"]
    assert [(f["subject"], f["severity"]) for f in sustained] == [("oxy_triggers", "warning")]


def test_no_history_no_samples_no_section_no_finding(host, tmp_path, state):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "history"))
    assert reader.json(schema.HISTORY)["samples_total"] == 0 and "akdiag watch" in reader.json(schema.HISTORY)["note"]
    assert outcome(reader, "history")["status"] == "ok"
    assert 'id="history"' not in reader.path(schema.SUMMARY_HTML).read_text()
    assert not HISTORY_IDS & {f["id"] for f in reader.json(schema.FINDINGS)["findings"]}


@pytest.mark.parametrize("how", ["mode 0777", "owned by nobody"])
def test_a_ring_that_cannot_be_trusted_is_a_recorded_error_and_the_run_goes_on(host, tmp_path, state, how):
    fill_ring(host.basedir, hours=0.5)
    folder = history_folder(host.basedir)
    if how == "mode 0777":
        os.chmod(folder, 0o777)
    else:
        os.chown(folder, 65534, 65534)
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "history"))
    assert not reader.exists(schema.HISTORY)
    failed = outcome(reader, "history")
    assert failed["status"] == "failed" and "not safe to use" in failed["error"]
    assert "collector history failed" in reader.path(schema.TOOL_LOG).read_text()
    findings = reader.json(schema.FINDINGS)["findings"]
    assert [f["severity"] for f in findings if f["id"] == "collector.failed" and f["subject"] == "history"] == \
        ["warning"]
    assert reader.exists(schema.SUMMARY_HTML) and outcome(reader, "system")["status"] in ("ok", "partial")


def test_check_never_reads_the_ring(host, state):
    """An untrusted ring would be a recorded error if `check` read it: it is not."""
    fill_ring(host.basedir, hours=0.5)
    os.chmod(history_folder(host.basedir), 0o777)
    result = check_host(host.basedir, "test", load_catalog(host.catalog_file), skip=("datastores",))
    assert result.analyzers and not [f for f in result.findings if f.get("subject") == "history"]
    assert not HISTORY_IDS & {f["id"] for f in result.findings}


def test_history_json_parses_as_the_file_says(host, tmp_path, state):
    """The file on its own, as a support engineer reads it with jq."""
    fill_ring(host.basedir, hours=2, step=10)
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "history"))
    raw = reader.path(schema.HISTORY).read_text()
    done = subprocess.run(["python3", "-c", "import json,sys; d=json.load(sys.stdin); "
                           "print(d['samples_total'], d['samples_kept'], len(d['t']))"],
                          input=raw, capture_output=True, text=True, timeout=30)
    total, kept, listed = map(int, done.stdout.split())
    assert total == 720 and kept == listed == json.loads(raw)["samples_kept"] <= MAX_SAMPLES


def test_the_byte_bound_thins_every_part_and_keeps_the_newest():
    samples = [make_sample({"processes": [{"name": f"p{n}", "up": 1, "resident_memory_bytes": 1e8 + i}
                                          for n in range(40)]}, [], "OK", when=1000.0 + 30 * i) for i in range(400)]
    whole = history_document(samples)
    assert whole["samples_kept"] == 400 and whole["samples_dropped"] == 0
    assert whole["processes"]["p3"]["rss"][:2] == [1e8, 1e8 + 1] and len(whole["processes"]["p3"]["up"]) == 400
    assert written_size(whole) == len(json_bytes(whole))  # the bound is measured as the writer writes
    small = history_document(samples, max_bytes=200_000)
    assert 0 < small["samples_kept"] < 400 and small["t"][-1] == samples[-1]["t"]
    assert len(json_bytes(small)) <= 200_000 + 1024  # the samples' bound, plus the file's header
    assert small["bounds"]["max_bytes"] == 200_000 and small["samples_total"] == 400
    assert all(len(column) == small["samples_kept"] for column in small["processes"]["p0"].values())


def test_samples_of_odd_shapes_in_the_ring_never_fail_the_run(host, tmp_path, state):
    """Lines watch never writes (another version, a hand edit): kept where they have a time."""
    fill_ring(host.basedir, hours=0.2)
    now = time.time()
    odd = [{"t": now - 3, "processes": [1, 2], "queues": {"q": "many", "r": [1]}, "mounts": {"/": 5}},
           {"t": True, "status": 5}, [1, 2], {"t": now - 2, "findings": ["x", {"id": 5}], "datastores": None}]
    with open(history_folder(host.basedir) / "samples.0.jsonl", "a") as ring:
        ring.write("".join(json.dumps(line) + "\n" for line in odd))
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "history"))
    assert outcome(reader, "history")["status"] == "ok"
    history = reader.json(schema.HISTORY)
    assert history["t"][-1] == pytest.approx(now - 2, abs=0.01) and history["queues"]["q"][-2] == "many"
    assert '<section id="history">' in reader.path(schema.SUMMARY_HTML).read_text()
    assert not [f for f in reader.json(schema.FINDINGS)["findings"] if f["id"] == "analyzer.failed"]
