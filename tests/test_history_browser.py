"""The History section in a real browser (Debian's headless Chromium): every chart is laid
out with a size and its lines drawn inside it, no console error, and the section reads the
same with the page's script taken out.  Select with `-m browser`; skipped without Chromium
(failed under CI), as tests/test_browser.py."""

from __future__ import annotations

import re

import pytest

from collector import report
from test_browser import _console, _run
from test_history_analyzers import bundle
from test_history_charts import busy_history, history_section

pytestmark = pytest.mark.browser

MEASURE = """<script>
  var rows = Array.prototype.map.call(document.querySelectorAll("figure.history-chart > svg"), function (svg) {
    var box = svg.getBoundingClientRect(), inside = 0, lines = svg.querySelectorAll("path.hc-line");
    Array.prototype.forEach.call(lines, function (p) {
      var b = p.getBoundingClientRect();
      if (b.width > 0 && b.left >= box.left - 1 && b.right <= box.right + 1 && b.top >= box.top - 1
          && b.bottom <= box.bottom + 1) { inside += 1; }
    });
    var stroke = getComputedStyle(lines[0]).stroke, fill = getComputedStyle(lines[0]).fill;
    return [svg.parentNode.id, Math.round(box.width), Math.round(box.height), lines.length, inside,
            fill === "none" ? "nofill" : fill, stroke.indexOf("rgb") === 0 ? "stroked" : stroke].join(",");
  });
  document.body.insertAdjacentHTML("beforeend", "<pre id='m'>" + rows.join(";") + "</pre>");
</script></body>"""


@pytest.fixture
def page(tmp_path):
    html = report.render_bundle(bundle(tmp_path, busy_history()))
    path = tmp_path / "summary.html"
    path.write_text(html)
    return path


def test_the_charts_are_drawn_inside_their_boxes(page, tmp_path):
    done = _run(tmp_path, "--dump-dom", page.as_uri())
    assert _console(done.stderr) == []
    assert re.search(r'<html[^>]* data-script="ready"', done.stdout)  # the page's own script still runs
    probe = tmp_path / "probe.html"
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    probe.write_text(html.replace("</body>", MEASURE, 1))
    done = _run(tmp_path, "--window-size=1280,2000", "--dump-dom", probe.as_uri())
    rows = [row.split(",") for row in re.search(r"<pre id=\"m\">(.*?)</pre>", done.stdout).group(1).split(";")]
    assert [r[0] for r in rows] == ["history-rss", "history-cpu", "history-fds", "history-queues",
                                    "history-latency", "history-disk"]
    for chart_id, width, height, lines, inside, fill, stroke in rows:
        assert int(width) >= 600 and int(height) >= 150, chart_id
        assert int(lines) >= 1 and inside == lines, chart_id
        assert fill == "nofill" and stroke == "stroked", chart_id


def test_the_section_reads_the_same_without_javascript(page, tmp_path):
    with_script = _run(tmp_path, "--dump-dom", page.as_uri()).stdout
    bare = tmp_path / "no-script.html"
    bare.write_text(re.sub(r"<script>.*?</script>", "", page.read_text(), flags=re.S))
    done = _run(tmp_path, "--dump-dom", bare.as_uri())
    assert _console(done.stderr) == []
    assert not re.search(r"<script[\s>]", done.stdout)
    assert history_section(done.stdout) == history_section(with_script)
    assert history_section(done.stdout).count("<path") >= 6
