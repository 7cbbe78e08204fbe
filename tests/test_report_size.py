"""summary.html stays under 5 MB whatever the host: a bundle with every big list at its
largest (20,000 log files each with a tail, thousands of findings and processes with long
command lines, redactions in every file) gives a page that says what it left out and
where in the bundle the whole is."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collector import report
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.report.logs import MAX_INDEX_ROWS, MAX_TAILS

MAX_PAGE_BYTES = 5 * 1000 * 1000
LOG_FILES = 20_000
FINDINGS = 3000
PROCESSES = 5000
WITH_FILES = 1000  # the newest logs' tail files are written (the page shows none of the others)


def _write(root: Path, relpath: str, data) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)


def _tail_text(n: int) -> str:
    # many short lines: the page's markup per line outweighs the text
    return "".join(f"2026-11-30 10:00:{i % 60:02d} ERROR job {n}-{i} failed\n" for i in range(300))


@pytest.fixture(scope="module")
def huge_bundle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("huge") / "akdiag-huge"
    files = []
    for n in range(LOG_FILES):
        bundle_path = f"{schema.LOGS_DIR}/app/w{n:05d}.log"
        text = _tail_text(n)
        if n >= LOG_FILES - WITH_FILES:
            _write(root, bundle_path, text)
        files.append({"path": f"app/w{n:05d}.log", "type": "log", "size": 10 * len(text), "state": "collected",
                      "mtime": "2026-11-30T10:00:00Z", "reason": "newest",
                      "tail": {"bundle_path": bundle_path, "lines": 300, "bytes": len(text)}})
    _write(root, schema.LOGS_INDEX, {"root": "/opt/akd/logs", "exists": True, "files": files,
                                     "limits": {"lines": 5000, "bytes": 2 << 20, "total_bytes": 100 << 20},
                                     "errors": [f"cannot read /opt/akd/logs/app/gone{n}.log: Permission denied"
                                                for n in range(LOG_FILES)]})
    findings = [{"id": "log.errors", "severity": ("critical", "warning", "info")[n % 3],
                 "subject": f"app/w{LOG_FILES - 1 - n % WITH_FILES:05d}.log", "title": f"Errors in log {n}",
                 "evidence": {"file": schema.LOGS_INDEX,
                              "figures": {"last": {"line": 300, "text": "x" * 1000}, "sample": ["y" * 100] * 12}},
                 "hint": "Read the log."} for n in range(FINDINGS)]
    for finding in findings[:20]:  # figures without end
        finding["evidence"]["figures"].update({f"figure_{k}": "z" * 1000 for k in range(200)})
    _write(root, schema.FINDINGS, {"findings": findings, "analyzers": [], "thresholds": {}})
    table = [{"pid": pid, "ppid": 1, "name": "worker", "user": "altcraft", "status": "sleeping", "cpu_percent": 0.1,
              "rss": 1 << 20, "threads": 1, "started_at": "2026-11-30T10:00:00Z",
              "cmdline": f"/usr/bin/worker --id {pid} " + "--flag=value " * 400} for pid in range(PROCESSES)]
    _write(root, schema.PROCESSES, {"expected": [], "all": table})
    _write(root, schema.PORTS, {"listening": [{"protocol": "tcp", "address": "0.0.0.0", "port": 10000 + n,
                                               "pid": n, "process": "worker"} for n in range(PROCESSES)]})
    _write(root, schema.REDACTIONS, {"total": LOG_FILES, "by_rule": {"password": LOG_FILES},
                                     "by_file": [{"file": f["tail"]["bundle_path"], "rule": "password", "count": 1}
                                                 for f in files]})
    _write(root, schema.MANIFEST, {"schema_version": schema.SCHEMA_VERSION, "hostname": "big-host",
                                   "basedir": "/opt/akd", "collectors": []})
    return root


@pytest.fixture(scope="module")
def page(huge_bundle) -> str:
    return report.render_bundle(BundleReader(huge_bundle))


def test_page_of_a_huge_host_stays_under_5_mb(page):
    assert len(page.encode("utf-8")) <= MAX_PAGE_BYTES, len(page.encode("utf-8"))


def _note(page: str, what: str) -> str:
    match = re.search(rf'<p class="note left-out">([\d,  ]+) more {what} not shown here[^<]*<a href="([^"]+)">',
                      page)
    assert match, what
    return match.group(1).replace(",", "").replace("\u202f", "").replace(" ", ""), match.group(2)


def test_page_says_what_it_left_out_and_where_the_whole_is(page):
    assert _note(page, "log files") == (str(LOG_FILES - MAX_INDEX_ROWS), schema.LOGS_INDEX)
    assert _note(page, "log tails") == (str(LOG_FILES - MAX_TAILS), schema.LOGS_INDEX)
    assert _note(page, "processes of the host")[1] == schema.PROCESSES
    assert _note(page, "files with redactions")[1] == schema.REDACTIONS
    assert _note(page, "listening sockets")[1] == schema.PORTS
    assert f"… and {LOG_FILES - 99} more in {schema.LOGS_INDEX}" in page
    assert '<span class="k">…</span> 191 more in findings.json' in page  # 202 figures: 11 shown
    assert re.search(rf"Only the first \d+ of {FINDINGS} findings are shown; all are in findings.json", page)
    assert page.count('class="tail"') == MAX_TAILS


def test_tails_the_findings_name_come_first(page):
    # the findings name the last WITH_FILES logs of the index: their tails are the ones shown
    shown = re.findall(r'class="tail" id="log-\d+">\n<summary><code>app/w(\d+)\.log', page)
    assert len(shown) == MAX_TAILS and all(int(n) >= LOG_FILES - WITH_FILES for n in shown), shown[:5]
    assert not re.search(r"log\S* is missing from this bundle", page)


def test_long_figures_and_command_lines_are_cut(page):
    assert "x" * 400 not in page and "y" * 100 + ", " + "y" * 100 + ", " + "y" * 100 not in page
    assert "--flag=value " * 40 not in page
