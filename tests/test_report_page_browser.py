"""The summary page's reading aids in a real browser (Debian's headless Chromium): the
collapsed parts print (with the script, without it, and by the script alone), a 375 px
screen never scrolls the whole page sideways, the filter box hides what does not match,
the ticket summary holds the worst finding and its Copy button answers, and the dark
colours keep the severities readable.  One bundle of the simulated host for the module;
one Chromium start per test.  Select with `-m browser`; without Chromium (or poppler's
pdftotext for the print tests) the tests are skipped, unless the CI variable is set
(then they fail)."""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import collect_bundle
from test_browser import _console, _run

pytestmark = pytest.mark.browser

NARROW = 375
POLICY = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>')


@pytest.fixture(scope="module")
def bundle(full_host, tmp_path_factory):
    _result, reader = collect_bundle(full_host, tmp_path_factory.mktemp("page"), log_lines=20)  # short tails: short prints
    return reader


@pytest.fixture(scope="module")
def page(bundle) -> str:
    return bundle.path("summary.html").read_text()


def _with_probe(page: str, tmp_path: Path, name: str, probe: str) -> Path:
    """A copy of the page with a test script after the page's own (the copy drops the
    page's policy, which allows only akdiag's script)."""
    copy = tmp_path / name
    copy.write_text(POLICY.sub("", page).replace("</body>", f"<script>{probe}</script></body>", 1))
    return copy


def _probed(stdout: str, name: str) -> str:
    found = re.search(rf'<pre id="{name}"[^>]*>(.*?)</pre>', stdout, re.S)
    assert found, f"the probe wrote no {name}: " + stdout[-2000:]
    return htmllib.unescape(found.group(1))


def _text(fragment: str) -> str:
    """The visible text of an HTML fragment, without tags and whitespace."""
    return re.sub(r"\s+", "", htmllib.unescape(re.sub(r"<[^>]+>", "", fragment)))


# ------------------------------------------------------------------ print

def _pdftotext() -> str:
    found = shutil.which("pdftotext")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("pdftotext is not installed (apt-get install poppler-utils): the print tests must run in CI")
    pytest.skip("pdftotext is not installed (apt-get install poppler-utils)")


def _collapsed(page: str) -> dict:
    """What the page holds only in closed <details>: the info findings' titles, the
    last line of every log tail, the datastores' details, the host's last process."""
    infos = re.search(r'<details class="infos">(.*?)</details>', page, re.S)
    tails = re.findall(r'<details class="tail"[^>]*>(.*?)</details>', page, re.S)
    assert infos and tails, "the page has no closed info findings or log tails to print"
    parts = {f"info {n}": _text(title) for n, title in
             enumerate(re.findall(r'<strong class="f-title">(.*?)</strong>', infos.group(1)))}
    for n, tail in enumerate(tails):
        lines = re.findall(r'<span class="ln">\d+</span>(.*?)\n</span>', tail, re.S)
        if lines and _text(lines[-1]):
            parts[f"tail {n}"] = _text(lines[-1])[:60]
    for n, details in enumerate(re.findall(r"<details><summary>Details</summary><pre>(.*?)</pre>", page, re.S)):
        parts[f"datastore {n}"] = _text(details)
    hosts = re.search(r'<table id="host-processes-table">(.*?)</table>', page, re.S)
    assert hosts, "the page has no table of all the host's processes"
    parts["host processes"] = _text(re.findall(r"<tr>(.*?)</tr>", hosts.group(1), re.S)[-1])
    return parts


def _print(tmp_path: Path, source: Path) -> str:
    """The printed text, in the order it was drawn (-raw: a wrapped log line stays whole), without whitespace."""
    pdf = tmp_path / (source.stem + ".pdf")
    _run(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", source.as_uri())
    assert pdf.read_bytes().startswith(b"%PDF")
    done = subprocess.run([_pdftotext(), "-raw", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return re.sub(r"\s+", "", done.stdout.decode("utf-8"))


@pytest.mark.parametrize("variant", ["page", "without script", "script alone"])
def test_print_holds_the_collapsed_parts(page, tmp_path, variant):
    """The page as written; a copy without its script (CSS ::details-content opens them);
    a copy without that CSS rule (the script's beforeprint opens them, as in browsers
    that lack ::details-content)."""
    _pdftotext()
    if variant == "page":
        source = tmp_path / "page.html"
        source.write_text(page)
    elif variant == "without script":
        source = tmp_path / "no-script.html"
        source.write_text(re.sub(r"<script>.*?</script>", "", page, flags=re.S))
    else:
        assert "details::details-content" in page
        source = tmp_path / "script-only.html"
        source.write_text(page.replace("details::details-content", "details::x-not-supported"))
    parts = _collapsed(page)
    assert len(parts) >= 5
    text = _print(tmp_path, source)
    assert [name for name, shown in parts.items() if shown not in text] == []
    ticket = re.search(r'<pre id="ticket-text"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert _text(ticket) in text  # the ticket summary prints whole


def test_print_without_the_open_rule_and_script_misses_them(page, tmp_path):
    """The counter-proof: the same closed parts are absent from a print where neither the
    CSS rule nor the script opens them, so the test above can fail."""
    _pdftotext()
    source = tmp_path / "closed.html"
    source.write_text(re.sub(r"<script>.*?</script>", "", page, flags=re.S)
                      .replace("details::details-content", "details::x-not-supported"))
    parts = _collapsed(page)
    text = _print(tmp_path, source)
    assert all(shown not in text for name, shown in parts.items() if name.startswith("tail"))


# ------------------------------------------------------------------ narrow screen

def test_narrow_screen_scrolls_wide_tables_in_their_own_box(page, tmp_path):
    """A 375 px frame (headless Chromium lays its window out at 500 px at least): the page
    is never wider than the frame, while the wide tables scroll inside their boxes."""
    target = tmp_path / "summary.html"
    target.write_text(page)
    frame = tmp_path / "narrow.html"
    frame.write_text(f"""<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="{target.as_uri()}" style="width:{NARROW}px;height:800px;border:0"></iframe>
<script>
window.addEventListener("load", function () {{
  var d = document.getElementById("f").contentDocument, root = d.documentElement, limit = root.clientWidth;
  var over = Array.prototype.filter.call(d.body.querySelectorAll("*"), function (e) {{
    return e.getBoundingClientRect().right > limit + 1 && !e.parentElement.closest(".wide, pre")
      && !e.closest("details:not([open]) > :not(summary)");
  }}).slice(0, 8).map(function (e) {{ return e.tagName + "#" + e.id + "." + e.className; }});
  var boxes = Array.prototype.map.call(d.querySelectorAll(".wide"), function (w) {{
    return (w.scrollWidth > w.clientWidth ? "scrolls:" : "fits:") + (w.closest("section") || {{}}).id; }});
  document.body.insertAdjacentHTML("beforeend", "<pre id='m'>" + JSON.stringify(
    {{frame: d.defaultView.innerWidth, scroll: root.scrollWidth, client: limit, over: over, boxes: boxes}}) + "</pre>");
}});
</script></body></html>""")
    done = _run(tmp_path, "--allow-file-access-from-files", "--dump-dom", frame.as_uri())
    measured = json.loads(_probed(done.stdout, "m"))
    assert measured["frame"] == NARROW
    assert measured["scroll"] <= measured["client"], measured
    assert measured["over"] == [], measured
    assert "scrolls:config" in measured["boxes"] and "scrolls:processes" in measured["boxes"], measured["boxes"]


# ------------------------------------------------------------------ filter

FILTER_PROBE = """
var box = document.getElementById("filter"), shown = function (selector) {
  return Array.prototype.filter.call(document.querySelectorAll(selector), function (e) {
    return e.getClientRects().length > 0; }); };
var ids = function (list) { return list.map(function (e) { return e.id; }); };
var record = function (name, value) {
  document.body.insertAdjacentHTML("beforeend", "<pre id='" + name + "'></pre>");
  document.getElementById(name).textContent = JSON.stringify(value); };
record("before", {findings: ids(shown("li.finding")).length, bar: !document.getElementById("filter-bar").hidden});
box.value = WORD;
box.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter"}));
var lines = shown("pre.numbered span.line");
record("during", {findings: ids(shown("li.finding")), rows: ids(shown("#processes-table tbody tr")),
  lines: lines.map(function (e) { return e.textContent; }),
  openTails: ids(shown("details.tail[open]")), status: document.getElementById("filter-count").textContent});
box.value = "";
box.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter"}));
record("after", {findings: ids(shown("li.finding")).length, openTails: ids(shown("details.tail[open]")).length,
  hidden: document.querySelectorAll(".filtered-out").length});
"""


def _finding_texts(page: str) -> dict:
    return {m.group(1): _text(m.group(2)).lower()
            for m in re.finditer(r'<li id="(finding-\d+)"(.*?)</li>', page, re.S)}


def test_filter_hides_what_does_not_match(page, tmp_path):
    word = "proctrigger"  # the simulated host's process that is down: in findings, a row and a log
    texts = _finding_texts(page)
    matching = sorted(fid for fid, text in texts.items() if word in text)
    assert matching and len(matching) < len(texts)
    probe = _with_probe(page, tmp_path, "filter.html", f"var WORD = {json.dumps(word.upper())};" + FILTER_PROBE)
    done = _run(tmp_path, "--window-size=1280,2000", "--dump-dom", probe.as_uri())
    assert _console(done.stderr) == []
    before = json.loads(_probed(done.stdout, "before"))
    during = json.loads(_probed(done.stdout, "during"))
    after = json.loads(_probed(done.stdout, "after"))
    assert before["bar"] is True
    assert sorted(during["findings"]) == matching  # an info finding, collapsed before, shows too when it matches
    assert during["rows"] == [f"proc-{word}"]
    assert during["lines"] and all(word in line.lower() for line in during["lines"])
    assert during["openTails"], "a log tail holding a match opens"
    assert re.fullmatch(r"\d+ of \d+ findings, processes and log lines match", during["status"]), during["status"]
    assert after == {"findings": before["findings"], "openTails": 0, "hidden": 0}


# ------------------------------------------------------------------ ticket summary

COPY_PROBE = """
document.getElementById("ticket-copy").click();
window.setTimeout(function () {
  document.body.insertAdjacentHTML("beforeend", "<pre id='copy'></pre>");
  document.getElementById("copy").textContent = JSON.stringify({
    button: !document.getElementById("ticket-copy").hidden,
    status: document.getElementById("ticket-copied").textContent,
    selected: String(window.getSelection())});
}, 500);
"""


def test_ticket_summary_holds_the_worst_finding_and_copies(bundle, page, tmp_path):
    findings = bundle.json("findings.json")["findings"]
    worst = next(f for f in findings if f["severity"] == "critical")
    manifest = bundle.json("manifest.json")
    probe = _with_probe(page, tmp_path, "ticket.html", COPY_PROBE)
    done = _run(tmp_path, "--virtual-time-budget=3000", "--dump-dom", probe.as_uri())
    assert _console(done.stderr) == []
    ticket = _probed(done.stdout, "ticket-text")
    assert ticket.splitlines()[0].startswith(f"akdiag bundle of {manifest['hostname']}")
    assert f"- CRITICAL {worst['id']} [{worst['subject']}]: {worst['title']}" in ticket
    assert f"Bundle: {Path(str(bundle.root)).name}" in ticket  # a folder bundle: its name has no extension
    copied = json.loads(_probed(done.stdout, "copy"))
    assert copied["button"] is True
    # the clipboard took it, or (no clipboard for a headless page) the text is selected for Ctrl+C
    assert copied["status"] == "Copied." or (copied["selected"] == ticket and "Ctrl+C" in copied["status"]), copied


# ------------------------------------------------------------------ dark mode

DARK_PROBE = """
var rgb = function (text) { return text.match(/[\\d.]+/g).slice(0, 3).map(Number); };
var lum = function (c) { var v = c.map(function (x) { x /= 255;
  return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
var contrast = function (a, b) { var x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
var page = rgb(getComputedStyle(document.body).backgroundColor);
var out = {dark: matchMedia("(prefers-color-scheme: dark)").matches, page: lum(page),
  body: contrast(rgb(getComputedStyle(document.body).color), page), badges: {}};
["b-bad", "b-warn", "b-ok", "b-info", "b-mute", "v-bad", "hot"].forEach(function (name) {
  var e = document.querySelector("." + name);
  if (!e) { return; }
  var style = getComputedStyle(e), back = rgb(style.backgroundColor);
  if (style.backgroundColor === "rgba(0, 0, 0, 0)") { back = page; }
  out.badges[name] = contrast(rgb(style.color), back);
});
document.body.insertAdjacentHTML("beforeend", "<pre id='dark'></pre>");
document.getElementById("dark").textContent = JSON.stringify(out);
"""


def test_dark_mode_keeps_severities_readable(page, tmp_path):
    assert "prefers-color-scheme: dark" in page
    probe = _with_probe(page, tmp_path, "dark.html", DARK_PROBE)
    done = _run(tmp_path, "--force-dark-mode", "--dump-dom", probe.as_uri())
    assert _console(done.stderr) == []
    measured = json.loads(_probed(done.stdout, "dark"))
    assert measured["dark"] is True and measured["page"] < 0.05, measured
    assert measured["body"] >= 7, measured
    assert {"b-bad", "b-warn", "b-ok", "v-bad", "hot"} <= set(measured["badges"]), measured
    assert {name: c for name, c in measured["badges"].items() if c < 4.5} == {}, measured
