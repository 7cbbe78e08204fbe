"""The summary of the simulator's bundle in a real browser (Debian's headless Chromium):
no console error, every finding and process row present with and without JavaScript,
the processes table sorts on a header click, a screenshot of the expected size, and a
PDF print.  Select with `-m browser`; without Chromium the tests are skipped, unless
the CI variable is set (then they fail)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import collect_bundle

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0")
WINDOW = (1280, 2000)


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed (apt-get install chromium): the browser tests must run in CI")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    argv = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _console(stderr: str) -> list:
    """What the page wrote to the console (errors, CSP refusals, uncaught exceptions);
    Chromium's own pages (source: chrome://..., e.g. its "Slow network" note on a
    loaded machine) are not the report's."""
    return [line for line in stderr.splitlines()
            if (":CONSOLE" in line or "Uncaught" in line) and "source: chrome://" not in line]


@pytest.fixture(scope="module")
def bundle(full_host, tmp_path_factory):
    _result, reader = collect_bundle(full_host, tmp_path_factory.mktemp("browser"), log_lines=300)
    return reader


def _expected(bundle):
    findings = bundle.json("findings.json")["findings"]
    processes = [p["name"] for p in bundle.json("processes.json")["expected"]]
    return findings, processes


def _assert_everything_present(dom: str, bundle) -> None:
    findings, processes = _expected(bundle)
    assert findings and processes
    for finding in findings:
        marker = f'data-finding-id="{finding["id"]}" data-subject="{finding["subject"]}"'
        assert marker in dom, finding["id"]
    assert len(re.findall(r'<li id="finding-\d+"', dom)) == len(findings)
    for name in processes:
        assert f'<tr id="proc-{name}"' in dom, name


def test_report_renders_without_console_errors_and_shows_everything(bundle, tmp_path):
    done = _run(tmp_path, "--dump-dom", bundle.path("summary.html").as_uri())
    assert _console(done.stderr) == []
    dom = done.stdout
    assert re.search(r'<html[^>]* data-script="ready"', dom)  # the script ran: the page's policy allows it
    assert 'data-sortable="ready"' in dom and 'class="sort"' in dom
    _assert_everything_present(dom, bundle)


def test_report_reads_the_same_without_javascript(bundle, tmp_path):
    """The page without its script (headless Chromium's --dump-dom itself needs scripts
    enabled, so the script is taken out of a copy rather than switched off)."""
    html = bundle.path("summary.html").read_text()
    page = tmp_path / "no-script.html"
    page.write_text(re.sub(r"<script>.*?</script>", "", html, flags=re.S))
    done = _run(tmp_path, "--dump-dom", page.as_uri())
    assert _console(done.stderr) == []
    dom = done.stdout
    assert not re.search(r"<script[\s>]", dom), re.findall(r".{80}<script[\s>].{80}", dom)[:3]
    assert not re.search(r"<html[^>]*data-script", dom) and 'class="sort"' not in dom
    _assert_everything_present(dom, bundle)
    shot = tmp_path / "no-script.png"
    _run(tmp_path, f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri())
    assert shot.stat().st_size > 60_000


def test_processes_table_sorts_on_a_header_click(bundle, tmp_path):
    """A copy of the page with a test script that clicks the Status header (the copy drops
    the page's policy, which allows only akdiag's own script)."""
    html = bundle.path("summary.html").read_text()
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    clicker = """<script>
      var table = document.getElementById("processes-table");
      var header = table.tHead.rows[0].cells[2].querySelector("button.sort");
      var order = function () { return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
        return r.id + ":" + r.className; }).join(","); };
      header.click();
      var first = order();
      header.click();
      document.body.insertAdjacentHTML("beforeend", "<pre id='ascending'>" + first + "</pre><pre id='descending'>"
        + order() + "</pre><pre id='aria'>" + table.tHead.rows[0].cells[2].getAttribute("aria-sort") + "</pre>");
    </script></body>"""
    page = tmp_path / "sortable.html"
    page.write_text(html.replace("</body>", clicker, 1))
    done = _run(tmp_path, "--dump-dom", page.as_uri())
    assert _console(done.stderr) == []
    ascending = re.search(r"<pre id=\"ascending\">(.*?)</pre>", done.stdout).group(1).split(",")
    descending = re.search(r"<pre id=\"descending\">(.*?)</pre>", done.stdout).group(1).split(",")
    assert ascending[0].endswith("status-down")  # down first, then running, then absent
    assert ascending[-1].endswith("status-absent")
    assert descending == list(reversed(ascending)) or descending[0].endswith("status-absent")
    assert re.search(r"<pre id=\"aria\">descending</pre>", done.stdout)
    findings, processes = _expected(bundle)
    assert sorted(row.split(":")[0] for row in ascending) == sorted(f"proc-{name}" for name in processes)


def _png_size(path: Path) -> tuple:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_screenshot_has_the_window_size_and_is_not_blank(bundle, tmp_path):
    shot = tmp_path / "summary.png"
    done = _run(tmp_path, f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--hide-scrollbars", bundle.path("summary.html").as_uri())
    assert _console(done.stderr) == []
    assert _png_size(shot) == WINDOW
    assert shot.stat().st_size > 60_000  # a blank page of this size is about 10 kB


def test_report_prints_to_pdf(bundle, tmp_path):
    pdf = tmp_path / "summary.pdf"
    _run(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", bundle.path("summary.html").as_uri())
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 2
