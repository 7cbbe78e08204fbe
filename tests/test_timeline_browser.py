"""The summary's timeline chart in a real browser (Debian's headless Chromium): the
inline SVG is laid out (it has a size, its bars and the first error's marker are drawn
inside it) with no console error.  Select with `-m browser`; skipped without Chromium
(failed under CI), as tests/test_browser.py."""

from __future__ import annotations

import re

import pytest

from collector import report
from collector.analyzers.timeline import build_timeline
from test_browser import _console, _run
from test_timeline import MOSCOW, make_bundle

pytestmark = pytest.mark.browser


def test_chart_is_drawn_with_its_marker(tmp_path):
    logs = {f"proc{n}.log": [f"2026-11-29 10:{m:02d}:{n:02d} ERROR [proc{n}] failure" for m in range(10, 40, n + 1)]
            for n in range(5)}
    reader = make_bundle(tmp_path / "b", logs, MOSCOW)
    html = report.render_bundle(reader, timeline=build_timeline(reader))
    page = tmp_path / "page.html"
    page.write_text(html)
    done = _run(tmp_path, "--dump-dom", page.as_uri())
    assert _console(done.stderr) == []
    assert 'id="timeline-chart"' in done.stdout
    # the same page with a measuring script (the copy drops the page's policy, which allows only akdiag's script)
    measure = """<script>
      var svg = document.getElementById("timeline-chart"), box = svg.getBoundingClientRect();
      var mark = document.getElementById("timeline-first-error").getBoundingClientRect();
      var bars = svg.querySelectorAll("rect").length;
      document.body.insertAdjacentHTML("beforeend", "<pre id='m'>" + [Math.round(box.width), Math.round(box.height),
        Math.round(mark.left - box.left), Math.round(mark.height), bars].join(",") + "</pre>");
    </script></body>"""
    probe = tmp_path / "probe.html"
    probe.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", measure, 1))
    done = _run(tmp_path, "--window-size=1280,2000", "--dump-dom", probe.as_uri())
    width, height, marker_left, marker_height, bars = map(int, re.search(r"<pre id=\"m\">([\d,]+)</pre>", done.stdout)
                                                          .group(1).split(","))
    assert width > 400 and height > 100
    assert 0 < marker_left < width and marker_height > 50
    assert bars >= sum(len(lines) for lines in logs.values()) // 2  # one bar part per process and minute at least
