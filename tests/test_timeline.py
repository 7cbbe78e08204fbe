"""The timeline (timeline.json) of hand-made bundles: log lines in several formats and
zones converted to UTC and merged in order with the kernel's events and the units'
transitions; the incident's first error chosen after the last quiet gap; the bound;
and the summary's timeline section (its SVG chart and the first error marked)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from collector import report
from collector.analyzers.common import parse_time
from collector.analyzers.timeline import MAX_EVENTS, build_timeline, incident_of
from collector.bundle.reader import BundleReader

STARTED = "2026-11-29T12:00:00Z"


def make_bundle(root: Path, logs: Dict[str, List[str]], zone: Optional[dict] = None,
                kernel: Optional[dict] = None, services: Optional[dict] = None) -> BundleReader:
    """A bundle folder as akdiag writes one, with only the files the timeline reads."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({"schema_version": 1, "started_at": STARTED,
                                                    "collectors": [], "files": []}))
    system = {"time": {"utc": STARTED, "timezone": zone}} if zone is not None else {"time": {}}
    (root / "system.json").write_text(json.dumps(system))
    entries = []
    for name, lines in logs.items():
        (root / "logs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "logs" / name).write_text("\n".join(lines) + "\n")
        entries.append({"path": name, "type": "file", "tail": {"bundle_path": f"logs/{name}"}})
    (root / "logs" / "index.json").write_text(json.dumps({"root": "/opt/akd/logs", "files": entries}))
    if kernel is not None:
        (root / "kernel.json").write_text(json.dumps(kernel))
    if services is not None:
        (root / "services.json").write_text(json.dumps(services))
    return BundleReader(root)


MOSCOW = {"name": "Europe/Moscow", "utc_offset": "+0300"}


def _times(timeline: dict, source: Optional[str] = None) -> List[str]:
    return [e["time"] for e in timeline["events"] if source is None or e["source"] == source]


def test_log_formats_and_zones_are_read_in_utc_and_merged_in_order(tmp_path):
    reader = make_bundle(tmp_path / "b", zone=MOSCOW, logs={
        "api.log": ["2026-11-29 10:00:00,250 ERROR [api] cannot save subscriber 42",  # Moscow local
                    "2026-11-29T10:00:00Z INFO  [api] fine",
                    "2026-11-29T07:30:00Z WARN  [api] queue depth 5000 above the soft limit"],  # explicit UTC
        "procworkflow.log": ["2026/11/29 10:05:00 ERROR [procworkflow] scenario 7 failed"],  # Go's, local
        "rabbitmq/rabbit.log": ["2026-11-29 08:10:00.000000+01:00 [error] <0.812.0> closing AMQP connection"],
        "clickhouse/clickhouse-server.err.log": ["2026.11.29 10:15:00.500000 [ 412 ] {} <Error> Code: 210. DB::NetException: Connection refused"],
        "kvrocks/kvrocks.log": ["E20261129 10:20:00.000001 1234 server.cc:88] failed to accept"],
        "ssdb/ssdb.log": ["E1129 10:25:00.000000 ssdb.cc:1] binlog full"],  # glog without the year
    })
    timeline = build_timeline(reader)
    by_file: Dict[str, dict] = {}
    for event in timeline["events"]:
        by_file.setdefault(event["file"], event)
    assert by_file["logs/api.log"]["time"] == "2026-11-29T07:00:00.250000Z"
    assert [e["time"] for e in timeline["events"] if e["file"] == "logs/api.log"] == [
        "2026-11-29T07:00:00.250000Z", "2026-11-29T07:30:00Z"]
    assert by_file["logs/procworkflow.log"]["time"] == "2026-11-29T07:05:00Z"
    assert by_file["logs/rabbitmq/rabbit.log"]["time"] == "2026-11-29T07:10:00Z"  # its own offset
    assert by_file["logs/clickhouse/clickhouse-server.err.log"]["time"] == "2026-11-29T07:15:00.500000Z"
    assert by_file["logs/kvrocks/kvrocks.log"]["time"] == "2026-11-29T07:20:00.000001Z"
    assert by_file["logs/ssdb/ssdb.log"]["time"] == "2026-11-29T07:25:00Z"
    assert _times(timeline) == sorted(_times(timeline))
    warning = [e for e in timeline["events"] if e["severity"] == "warning"]
    assert [(w["subject"], w["line"]) for w in warning] == [("api", 3)]
    first = by_file["logs/api.log"]
    assert first["subject"] == "api" and first["line"] == 1 and first["source"] == "log"
    assert first["message"] == "ERROR [api] cannot save subscriber 42"  # the stamp is the time field
    assert timeline["clock"] == {"name": "Europe/Moscow", "utc_offset_seconds": 10800, "rules": "zone database"}


def test_redis_and_syslog_stamps_are_read_in_the_host_zone_as_the_collection_reads_them(tmp_path):
    reader = make_bundle(tmp_path / "b", zone=MOSCOW, logs={
        "redis/redis-server.log": ["1234:M 29 Nov 2026 10:30:00.125 # ERROR accepting a client: too many open files"],
        "syslog/akd.log": ["Nov 29 10:35:00 app1 akd[99]: ERROR cannot reach mongodb",
                           "Dec 30 23:00:00 app1 akd[99]: ERROR a line from last December"],  # > a day ahead
    })
    timeline = build_timeline(reader)
    times = {(e["file"], e["line"]): e["time"] for e in timeline["events"]}
    assert times == {("logs/redis/redis-server.log", 1): "2026-11-29T07:30:00.125000Z",
                     ("logs/syslog/akd.log", 1): "2026-11-29T07:35:00Z",
                     ("logs/syslog/akd.log", 2): "2025-12-30T20:00:00Z"}
    assert not timeline["untimed_lines"]


def test_summer_time_follows_the_zone_rules_and_an_unknown_zone_its_offset(tmp_path):
    lines = {"api.log": ["2026-07-01 12:00:00 ERROR [api] summer", "2026-11-29 12:00:00 ERROR [api] winter"]}
    berlin = build_timeline(make_bundle(tmp_path / "berlin", lines, {"name": "Europe/Berlin", "utc_offset": "+0100"}))
    assert _times(berlin) == ["2026-07-01T10:00:00Z", "2026-11-29T11:00:00Z"]
    unknown = build_timeline(make_bundle(tmp_path / "unknown", lines, {"name": "Nowhere/Atlantis", "utc_offset": "-0530"}))
    assert _times(unknown) == ["2026-07-01T17:30:00Z", "2026-11-29T17:30:00Z"]
    assert unknown["clock"]["rules"] == "fixed offset"
    seconds = build_timeline(make_bundle(tmp_path / "seconds", lines, {"name": None, "utc_offset_seconds": 7200}))
    assert _times(seconds) == ["2026-07-01T10:00:00Z", "2026-11-29T10:00:00Z"]
    none = build_timeline(make_bundle(tmp_path / "none", lines, None))
    assert _times(none) == ["2026-07-01T12:00:00Z", "2026-11-29T12:00:00Z"]
    assert none["clock"]["rules"] == "unknown: read as UTC"


def test_kernel_events_and_unit_transitions_are_merged(tmp_path):
    kernel = {"source": "kmsg", "messages_file": "kernel/messages.txt", "events": [
        {"time": "2026-11-29T07:00:05Z", "kind": "oom_kill", "pid": 4242, "process": "AK:procworkflow",
         "rss_bytes": 1 << 30, "cgroup": "/system.slice/akd.service", "device": None,
         "message": "Out of memory: Killed process 4242 (AK:procworkflow) total-vm:2000000kB"},
        {"time": "2026-11-29T07:00:00Z", "kind": "syn_flood", "pid": None, "process": None, "rss_bytes": None,
         "cgroup": None, "device": None, "message": "TCP: request_sock_TCP: Possible SYN flooding on port 8080"},
        {"time": "not a time", "kind": "segfault", "message": "x"}], "errors": []}
    services = {"manager": "systemd", "units": [], "events": [
        {"time": "2026-11-29T07:00:05Z", "unit": "akd.service", "kind": "failed", "message": "akd.service: Failed with result 'oom-kill'"},
        {"time": "2026-11-29T07:00:10Z", "unit": "akd.service", "kind": "started", "message": "Started akd"},
        {"time": "2026-11-29T07:00:08Z", "unit": "akd.service", "kind": "restarting", "message": "Scheduled restart job"}],
        "errors": []}
    reader = make_bundle(tmp_path / "b", zone=MOSCOW, kernel=kernel, services=services, logs={
        "procworkflow.log": ["2026-11-29 10:00:05 ERROR [procworkflow] out of memory while loading scenario"]})
    timeline = build_timeline(reader)
    rows = [(e["time"], e["source"], e["subject"], e["severity"], e.get("kind")) for e in timeline["events"]]
    assert rows == [
        ("2026-11-29T07:00:00Z", "kernel", "kernel", "warning", "syn_flood"),
        ("2026-11-29T07:00:05Z", "unit", "akd.service", "error", "failed"),  # same time: unit, kernel, log
        ("2026-11-29T07:00:05Z", "kernel", "AK:procworkflow", "error", "oom_kill"),
        ("2026-11-29T07:00:05Z", "log", "procworkflow", "error", None),
        ("2026-11-29T07:00:08Z", "unit", "akd.service", "warning", "restarting"),  # "started" is left out
    ]
    kill = timeline["events"][2]
    assert kill["file"] == "kernel/messages.txt" and kill["line"] is None
    assert timeline["counts"]["kernel"] == {"error": 1, "warning": 1}
    assert timeline["counts"]["unit"] == {"error": 1, "warning": 1}
    assert any("kernel.json" in problem for problem in timeline["errors"])  # the event without a time
    assert timeline["first_error"]["source"] == "unit"


def test_first_error_is_the_start_of_the_last_burst_not_an_old_error(tmp_path):
    old = ["2026-11-26 09:00:00 ERROR [api] disk quota exceeded"]  # three days before, then quiet
    burst = [f"2026-11-29 10:{m:02d}:{s:02d} ERROR [api] connection refused 127.0.0.1:27017"
             for m in range(15, 45, 3) for s in (10, 40)]
    warnings_between = ["2026-11-29 09:30:00 WARN [api] slow answer"]  # a warning does not start the incident
    reader = make_bundle(tmp_path / "b", zone={"name": None, "utc_offset": "+0000"},
                         logs={"api.log": old + warnings_between + burst,
                               "procworkflow.log": ["2026-11-29 10:05:30 ERROR [procworkflow] lost worker"]})
    timeline = build_timeline(reader)
    # 10:05:30 is 9 min 40 s before 10:15:10: within the gap, so it starts the incident
    assert timeline["first_error"]["time"] == "2026-11-29T10:05:30Z"
    assert timeline["first_error"]["subject"] == "procworkflow"
    assert timeline["incident"]["errors"] == 1 + len(burst)
    assert timeline["incident"]["last_error_at"] == "2026-11-29T10:42:40Z"
    alone = build_timeline(make_bundle(tmp_path / "alone", {"api.log": old + burst}, {"name": None, "utc_offset": "+0000"}))
    assert alone["first_error"]["time"] == "2026-11-29T10:15:10Z"
    assert alone["incident"]["errors"] == len(burst)


def test_incident_rule_on_its_own():
    from collector.analyzers.timeline import Event

    def error(moment: float) -> Event:
        return Event(moment, 2, "logs/a.log", 1, "error", "a", "x", "")

    events = [error(0), error(599), error(1199), error(2000), error(2300)]
    assert incident_of(events) == (3, 4, 2)  # 1199 -> 2000 is a gap of 801 s
    assert incident_of([error(0), error(599.9)]) == (0, 1, 2)
    assert incident_of([Event(5, 2, "f", 1, "warning", "a", "w", "")]) is None


def test_the_bound_keeps_the_incident_start_and_its_newest_events(tmp_path):
    lines = [f"2026-11-29 {10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d} ERROR [api] failure {i}"
             for i in range(6000)]  # one a second, 10:00:00 to 11:39:59
    reader = make_bundle(tmp_path / "b", {"api.log": lines}, {"name": None, "utc_offset": "+0000"})
    timeline = build_timeline(reader, limit=100)
    assert len(timeline["events"]) == 100 and timeline["left_out"] == len(lines) - 100
    assert timeline["total"] == len(lines) and timeline["counts"]["log"]["error"] == len(lines)
    numbers = [e["line"] for e in timeline["events"]]
    assert numbers == list(range(1, 51)) + list(range(len(lines) - 49, len(lines) + 1))
    assert timeline["first_error"]["line"] == 1
    per_minute = timeline["errors_per_minute"]  # every error counted, the left out too
    assert sum(s["errors"] for s in per_minute["series"]) == len(lines)
    full = build_timeline(reader)
    assert len(full["events"]) == min(len(lines), MAX_EVENTS) and full["left_out"] == max(0, len(lines) - MAX_EVENTS)


def test_the_bound_fills_with_the_events_before_a_short_incident(tmp_path):
    before = [f"2026-11-29 08:00:{s:02d} WARN [api] slow {s}" for s in range(50)]
    incident = [f"2026-11-29 10:00:{s:02d} ERROR [api] boom {s}" for s in range(5)]
    timeline = build_timeline(make_bundle(tmp_path / "b", {"api.log": before + incident},
                                          {"name": None, "utc_offset": "+0000"}), limit=20)
    assert [e["line"] for e in timeline["events"]] == list(range(36, 56))


def test_a_log_past_the_per_log_bound_places_its_newest_lines_and_says_how_many_it_left(tmp_path):
    lines = [f"2026-11-29 10:00:{s:02d} ERROR [api] boom {s}" for s in range(30)]
    quiet = ["2026-11-29 10:00:00 WARN [mta] slow", "2026-11-29 10:00:01 ERROR [mta] boom"]
    reader = make_bundle(tmp_path / "b", {"api.log": lines, "mta.log": quiet}, {"name": None, "utc_offset": "+0000"})
    timeline = build_timeline(reader, per_log=10)
    assert [e["line"] for e in timeline["events"] if e["file"] == "logs/api.log"] == list(range(21, 31))
    assert [e["line"] for e in timeline["events"] if e["file"] == "logs/mta.log"] == [1, 2]
    assert timeline["lines_left_out_per_log"] == {"logs/api.log": 20} and timeline["max_events_per_log"] == 10
    assert timeline["total"] == 12 and timeline["counts"]["log"] == {"error": 11, "warning": 1}
    assert build_timeline(reader)["lines_left_out_per_log"] == {}


def test_lines_without_a_time_are_counted_not_placed(tmp_path):
    reader = make_bundle(tmp_path / "b", {"api.log": ["ERROR [api] no stamp here", "2026-11-29 10:00:00 ERROR [api] x"]},
                         MOSCOW)
    timeline = build_timeline(reader)
    assert timeline["untimed_lines"] == {"logs/api.log": 1}
    assert [e["line"] for e in timeline["events"]] == [2]


class _Page(HTMLParser):
    """The ids, the elements inside #timeline and the texts of a page."""

    def __init__(self):
        super().__init__()
        self.stack: List[str] = []
        self.in_timeline = 0
        self.timeline_tags: List[tuple] = []
        self.texts: List[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") == "timeline":
            self.in_timeline = 1
        elif self.in_timeline:
            self.in_timeline += 1
            self.timeline_tags.append((tag, attrs))

    def handle_endtag(self, tag):
        if self.in_timeline:
            self.in_timeline -= 1

    def handle_startendtag(self, tag, attrs):
        if self.in_timeline:
            self.timeline_tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self.in_timeline:
            self.texts.append(data)


def test_summary_shows_the_chart_with_the_first_error_marked(tmp_path):
    logs = {f"proc{n}.log": [f"2026-11-29 10:{m:02d}:05 ERROR [proc{n}] failure" for m in range(10, 20)]
            for n in range(11)}  # eleven processes: eight series and "other"
    logs["proc0.log"].insert(0, "2026-11-29 10:08:30 ERROR [proc0] the first one")
    kernel = {"events": [{"time": "2026-11-29T07:12:00Z", "kind": "oom_kill", "process": "AK:proc3",
                          "message": "Out of memory: Killed process 77 (AK:proc3)"}]}
    reader = make_bundle(tmp_path / "b", logs, MOSCOW, kernel=kernel)
    html = report.render_bundle(reader, timeline=build_timeline(reader))
    page = _Page()
    page.feed(html)
    tags = page.timeline_tags
    svg = [attrs for tag, attrs in tags if tag == "svg" and attrs.get("id") == "timeline-chart"]
    assert len(svg) == 1
    rects = [attrs for tag, attrs in tags if tag == "rect" and float(attrs.get("height", 0)) > 0 and "x" in attrs]
    assert {r["fill"] for r in rects} >= {"#0072B2", "#9a9a9a"}  # the first series and "other"
    marker = [attrs for tag, attrs in tags if attrs.get("id") == "timeline-first-error"]
    assert len(marker) == 1
    text = " ".join(page.texts)
    assert "first error 07:08:30 UTC" in text
    assert "2026-11-29T07:08:30Z" in text and "proc0" in text
    assert "other (4 processes)" in text  # proc7..proc9 and the kernel event's AK:proc3
    standing = [attrs for tag, attrs in tags if tag == "tr" and "stand-out" in (attrs.get("class") or "")]
    assert len(standing) == 1  # the OOM kill
    assert "<script src" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_summary_without_timeline_says_so(tmp_path):
    reader = make_bundle(tmp_path / "b", {"api.log": ["2026-11-29 10:00:00 INFO fine"]}, MOSCOW)
    assert "timeline.json is missing from this bundle" in report.render_bundle(reader)
    html = report.render_bundle(reader, timeline=build_timeline(reader))
    assert "No error in the logs" in html and 'id="timeline-chart"' not in html


def test_a_collection_writes_timeline_json(host, tmp_path):
    from conftest import collect_bundle

    _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "logs"))
    timeline = reader.json("timeline.json")
    assert timeline["events"] and timeline["first_error"] is not None
    assert timeline["counts"]["log"]["error"] >= 1
    assert parse_time(timeline["first_error"]["time"]) is not None
    assert "timeline.json" in [f["path"] for f in reader.manifest["files"]]
    assert 'id="timeline-chart"' in reader.path("summary.html").read_text()


@pytest.mark.parametrize("offset", ["+0530", "-0800"])
def test_a_line_with_its_own_offset_ignores_the_host_zone(tmp_path, offset):
    reader = make_bundle(tmp_path / "b", {"mongod.log": [
        '{"t":{"$date":"2026-11-29T10:00:00.123' + offset[:3] + ":" + offset[3:] + '"},"s":"E","c":"NETWORK",'
        '"id":22992,"ctx":"conn12","msg":"Error sending response"}']}, MOSCOW)
    expected = {"+0530": "2026-11-29T04:30:00.123000Z", "-0800": "2026-11-29T18:00:00.123000Z"}[offset]
    assert _times(build_timeline(reader)) == [expected]


def test_akdiag_report_rebuilds_the_timeline_beside_the_summary(tmp_path):
    from collector.catalog import load_catalog
    from collector.rerender import rerender

    make_bundle(tmp_path / "bundle", {"api.log": ["2026-11-29 10:00:00 ERROR [api] boom"]}, MOSCOW)
    done = rerender(tmp_path / "bundle", tmp_path / "out" / "ticket.summary.html", load_catalog())
    assert done.timeline_path == tmp_path / "out" / "ticket.timeline.json"
    timeline = json.loads(done.timeline_path.read_text())
    assert timeline["first_error"]["time"] == "2026-11-29T07:00:00Z"
    assert 'id="timeline-chart"' in done.html_path.read_text()
    assert not (tmp_path / "bundle" / "timeline.json").exists()  # never written into the bundle
