"""The summary's History section: inline SVG charts of history.json, rendered server-side,
bounded in series and bytes, with units and the UTC time range, every host-given name
escaped, and no section at all without history."""

from __future__ import annotations

import re
from typing import List

from collector import report
from collector.report.charts import BUCKETS, MAX_SERIES
from test_history_analyzers import MB, NOW, bundle, sample, times

HOSTILE = '<script>alert("x")</script>&"q'


def busy_history(minutes: float = 24 * 60, step: float = 30.0, processes: int = 9) -> List[dict]:
    """A day of samples from a host with more processes than a chart draws, one of them
    with a hostile name, a queue, a datastore and two mounts; watch stopped for 45 minutes."""
    out = []
    for i, t in enumerate(times(minutes, step=step)):
        if NOW - 5 * 3600 <= t < NOW - 5 * 3600 + 2700:
            continue
        procs = {f"proc{n}": {"resident_memory_bytes": (100 + 10 * n) * MB + i * 1000, "cpu_seconds": i * 0.1 * n,
                              "open_fds": 40 + n, "start_time_seconds": NOW - 86400 * 2} for n in range(processes)}
        procs[HOSTILE] = {"resident_memory_bytes": 900 * MB, "cpu_seconds": i * 2.0, "open_fds": 500}
        s = sample(t, {"oxy_triggers": float(i % 50), "trk_" + HOSTILE: 3.0}, procs)
        s["mounts"]["/var"] = {"free_bytes": 20e9 - i * 1e6, "free_inodes": 1000}
        out.append(s)
    return out


def history_section(html: str) -> str:
    found = re.search(r'<section id="history">.*?</section>', html, re.S)
    assert found, "no History section"
    return found.group(0)


def test_the_summary_draws_every_chart_bounded_and_escaped(tmp_path):
    reader = bundle(tmp_path, busy_history())
    html = report.render_bundle(reader)
    section = history_section(html)
    charts = re.findall(r'<figure class="history-chart" id="([\w-]+)">(.*?)</figure>', section, re.S)
    assert [c[0] for c in charts] == ["history-rss", "history-cpu", "history-fds", "history-queues",
                                      "history-latency", "history-disk"]
    for chart_id, body in charts:
        assert len(body.encode()) < 12_000, (chart_id, len(body))
        paths = re.findall(r'<path class="hc-line"[^>]* d="([^"]+)"', body)
        assert 1 <= len(paths) <= MAX_SERIES
        for d in paths:
            assert d.count("L") + d.count("M") <= BUCKETS and re.fullmatch(r"([ML]\d+ \d+|h1)+", d), d[:80]
    rss = dict(charts)["history-rss"]
    assert "(MB)" in rss and "left out" in rss.lower() and "proc0" in rss  # the lowest peaks are named as left out
    assert HOSTILE not in html and "&lt;script&gt;alert(" in rss
    assert len(re.findall(r"<script", html)) == 1  # the page's own, nothing from a name
    for unit in ("(CPU s/s)", "(files)", "(messages)", "(ms)", "(GB)"):
        assert unit in section
    assert "2026-11-30 19:59 → 2026-12-01 19:59 (UTC)" in section
    assert "time, UTC" in section and 'href="#history"' in html
    # a gap of 45 minutes (over two of the day chart's 12-minute slices) breaks every line
    assert all(d.count("M") >= 2 for d in re.findall(r' d="([^"]+)"', dict(charts)["history-disk"]))


def test_cpu_is_a_rate_and_values_are_in_their_units(tmp_path):
    samples = [sample(t, processes={"api": {"resident_memory_bytes": 512 * 10 ** 6, "cpu_seconds": i * 15.0}})
               for i, t in enumerate(times(30))]
    section = history_section(report.render_bundle(bundle(tmp_path, samples)))
    cpu = re.search(r'id="history-cpu">.*?</figure>', section, re.S).group(0)
    assert "api: peak 0.5, last 0.5 CPU s/s" in cpu  # 15 CPU seconds every 30 s
    assert "api: peak 512, last 512 MB" in section
    assert "mongodb: peak 2, last 2 ms" in section and "/: peak 50, last 50 GB" in section


def test_the_disk_chart_shows_the_fullest_mounts_and_names_the_emptiest_left_out(tmp_path):
    mounts = {f"/m{n}": {"free_bytes": (n + 1) * 10e9, "free_inodes": 1000} for n in range(MAX_SERIES + 2)}
    samples = []
    for t in times(30):
        s = sample(t)
        s["mounts"].update(mounts)
        samples.append(s)
    section = history_section(report.render_bundle(bundle(tmp_path, samples)))
    disk = re.search(r'id="history-disk">.*?</figure>', section, re.S).group(0)
    assert "/m0: peak 10, last 10 GB" in disk and "/m1: peak 20" in disk  # the fullest drawn
    assert "Left out (more free): 3 more: /m5, /m6, /m7 (" in disk


def test_without_history_there_is_no_section(tmp_path):
    html = report.render_bundle(bundle(tmp_path, None))
    assert 'id="history"' not in html and 'href="#history"' not in html and 'class="history-chart"' not in html


def test_a_single_sample_is_a_dot_not_a_crash(tmp_path):
    section = history_section(report.render_bundle(bundle(tmp_path, [sample(NOW - 5, {"oxy_triggers": 7.0})])))
    assert re.search(r'd="M\d+ \d+h1"', section)


def test_a_damaged_history_renders_what_it_can(tmp_path):
    reader = bundle(tmp_path, None)
    reader.path("history.json").write_text(
        '{"t": [%f, %f, %f], "queues": {"oxy_triggers": [1, "x", null], "<b>": 5, "trk_a": [true, 2, 3]}, '
        '"processes": {"a": 7, "b": {"rss": {"x": 1}, "open_fds": [1, 2, 3, 4, 5]}}, "mounts": []}'
        % (NOW - 70, NOW - 40, NOW - 10))
    section = history_section(report.render_bundle(reader))
    assert 'id="history-queues"' in section and 'id="history-fds"' in section and 'id="history-rss"' not in section
    reader.path("history.json").write_text('{"t": [3.0, 1.0], "queues": {"q": [1, 2]}}')  # times out of order
    assert 'id="history"' not in report.render_bundle(reader)
