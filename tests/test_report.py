"""The HTML summary, rendered from small bundles written the way collectors write them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from collector import report
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.bundle.writer import BundleWriter
from collector.redact import Scrubber

HOSTILE = "<script>alert('x')</script> and </pre><b>bold</b>"


def _resources(pid: int, rss: int = 150 * 1024 * 1024, fds: int = 120) -> dict:
    return {"pid": pid, "ppid": 1, "status": "sleeping", "rss": rss, "vms": rss * 4, "cpu_percent": 2.5,
            "threads": 12, "open_files": fds, "open_files_limit": 1024,
            "open_files_percent": round(100.0 * fds / 1024, 1), "connections": {"ESTABLISHED": 3},
            "started_at": "2024-05-01T10:00:00Z", "user": "altcraft", "exe": "/opt/akd/bin/api",
            "cmdline": f"AK:proc {pid}"}


def _process(name: str, status: str, pids=(), pidfile_state="ok", port=None, port_state="none",
             owner=None, note=None, fds: int = 120) -> dict:
    return {
        "name": name, "title": f"AK:{name}", "description": f"the {name} process", "remote_capable": False,
        "status": status, "note": note, "pids": list(pids),
        "pidfile": {"path": f"/opt/akd/pids/{name}.pid", "state": pidfile_state,
                    "pid": pids[0] if pids else None, "detail": None, "owner_name": None},
        "port": {"expected": port, "address": "127.0.0.1", "state": port_state,
                 "owner_pid": owner[0] if owner else None, "owner_name": owner[1] if owner else None},
        "resources": [_resources(pid, fds=fds) for pid in pids],
    }


EXPECTED = [
    _process("api", "running", pids=(101,), port=8801, port_state="listening"),
    _process("webcontrol", "running", pids=(102, 103), port=8082, port_state="listening", fds=1000),
    _process("proctask", "down", pidfile_state="stale", port=8962, port_state="conflict", owner=(999, "nginx")),
    _process("trkread", "absent", pidfile_state="missing", port=8097, port_state="not_listening",
             note="can run on another host"),
    _process("procnotify", "absent", pidfile_state="missing", note="removed from the platform in v2024.2.68.2.2206"),
]


def _manifest(collectors=None) -> dict:
    if collectors is None:
        collectors = [{"name": n, "status": "ok", "duration": 0.25, "error": None, "output": o}
                      for n, o in (("system", schema.SYSTEM), ("processes", schema.PROCESSES),
                                   ("pidfiles", schema.PIDFILES), ("ports", schema.PORTS),
                                   ("logs", schema.LOGS_INDEX), ("akd", schema.AKD),
                                   ("config", schema.CONFIG_INDEX))]
    return {"schema_version": schema.SCHEMA_VERSION, "tool": {"name": "akdiag", "version": "0.1.0"},
            "hostname": "mail-01", "basedir": "/opt/akd", "basedir_source": "--basedir", "label": "ticket-42",
            "started_at": "2024-05-02T08:00:00Z", "finished_at": "2024-05-02T08:00:30Z",
            "command_line": "akdiag collect --basedir /opt/akd", "options": {}, "catalog_sources": ["builtin"],
            "collectors": collectors, "files": []}


SYSTEM = {
    "hostname": "mail-01", "fqdn": "mail-01.example.internal",
    "os": {"name": "Ubuntu 22.04.4 LTS", "id": "ubuntu", "version_id": "22.04"},
    "kernel": "5.15.0-105-generic", "architecture": "x86_64", "python": "3.10.12",
    "boot_time": "2024-04-20T00:00:00Z", "uptime_seconds": 12 * 86400 + 3 * 3600,
    "load_average": [0.5, 0.7, 0.9],
    "cpu": {"count": 8, "physical": 4, "percent": 12.5, "sample_seconds": 0.5},
    "memory": {"total": 16 * 2**30, "available": 6 * 2**30, "used": 9 * 2**30, "percent_available": 37.5},
    "swap": {"total": 2**30, "used": 0, "free": 2**30, "percent": 0.0},
    "filesystems": [
        {"mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "total": 100 * 2**30, "used": 95 * 2**30,
         "free": 5 * 2**30, "percent_used": 95.0, "percent_free": 5.0, "inodes_total": 1000,
         "inodes_free": 500, "inodes_percent_free": 50.0},
        {"mountpoint": "/mnt/nfs", "device": "nfs:/x", "fstype": "nfs", "error": "statvfs /mnt/nfs timed out"},
    ],
    "open_files": {"allocated": 4096, "max": 9223372036854775807, "percent": 0.0},
    "tcp_states": {"ESTABLISHED": 40, "LISTEN": 12, "TIME_WAIT": 3},
    "time": {"utc": "2024-05-02T08:00:01Z", "timezone": {"name": "Europe/Moscow", "utc_offset": "+0300"},
             "clock_synchronized": True},
    "basedir": {"path": "/opt/akd", "source": "--basedir", "exists": True},
    "errors": [],
}


def _write_full_bundle(root: Path, tail_text: str = "", extra_logs=None) -> BundleReader:
    scrubber = Scrubber()
    writer = BundleWriter(root, scrubber)
    writer.write_json(schema.SYSTEM, SYSTEM, "system")
    writer.write_json(schema.PROCESSES, {
        "sample_seconds": 0.5, "expected": EXPECTED,
        "all": [{"pid": 101, "ppid": 1, "name": "AK:api", "user": "altcraft", "status": "sleeping",
                 "cpu_percent": 1.0, "rss": 2**27, "threads": 10, "started_at": "2024-05-01T10:00:00Z",
                 "cmdline": "AK:api --config /opt/akd/config/main.json"}],
        "errors": []}, "processes")
    writer.write_json(schema.PIDFILES, {"folder": "/opt/akd/pids", "exists": True, "files": [
        {"name": "api.pid", "path": "/opt/akd/pids/api.pid", "state": "ok", "pid": 101, "detail": None,
         "owner_name": "AK:api", "catalog": True},
        {"name": "proctask.pid", "path": "/opt/akd/pids/proctask.pid", "state": "stale", "pid": 4242,
         "detail": "no process 4242", "owner_name": None, "catalog": True},
    ], "errors": []}, "pidfiles")
    writer.write_json(schema.PORTS, {"listening": [
        {"protocol": "tcp", "address": "127.0.0.1", "port": 8801, "pid": 101, "process": "AK:api"},
        {"protocol": "tcp", "address": "0.0.0.0", "port": 8962, "pid": 999, "process": "nginx"},
    ], "errors": []}, "ports")
    writer.write_text("commands/akd-processes.txt", "api running\nproctask stopped\n" + HOSTILE + "\n")
    writer.write_text("commands/akd-processes.stderr.txt", "")
    writer.write_json(schema.AKD, {"command": "/opt/akd/akd --processes", "exists": True, "exit_code": 3,
                                   "duration": 0.8, "timed_out": False,
                                   "stdout": "commands/akd-processes.txt",
                                   "stderr": "commands/akd-processes.stderr.txt", "error": None,
                                   "stdout_truncated": False, "errors": []}, "akd")
    writer.write_json("config/main.json", {"mongo": {"host": "db", "password": "hunter2"}}, "config")
    writer.write_json(schema.CONFIG_INDEX, {"files": [
        {"source": "/opt/akd/config/main.json", "bundle_path": "config/main.json", "size": 120,
         "valid_json": True, "error": None},
        {"source": "/opt/akd/config/json_consts/custom.bad", "bundle_path": "config/json_consts/custom.bad",
         "size": 10, "valid_json": False, "error": "custom.bad is not valid JSON: Expecting value: line 1"},
    ], "placeholder_secrets": ["main.json:crypt_key"], "errors": []}, "config")
    files = [
        {"path": "api.log", "type": "file", "size": 12345, "mtime": "2024-05-02T07:59:00Z", "state": "tailed",
         "reason": None, "tail": {"bundle_path": "logs/api.log", "lines": 3, "bytes": 200,
                                  "first_line_cut": False}},
        {"path": "old/api.log.1.gz", "type": "file", "size": 999, "mtime": 1714550000.0, "state": "listed",
         "reason": "rotated", "tail": None},
        {"path": "socket", "type": "socket", "size": 0, "mtime": None, "state": "skipped",
         "reason": "not a regular file", "tail": None},
        {"path": "locked.log", "type": "file", "size": 10, "mtime": None, "state": "error",
         "reason": None, "error": "cannot open: Permission denied", "tail": None},
    ] + list(extra_logs or [])
    writer.write_text("logs/api.log", tail_text or f"line one\n{HOSTILE}\nlast line\n", "logs")
    writer.write_json(schema.LOGS_INDEX, {
        "root": "/opt/akd/logs", "exists": True,
        "limits": {"lines": 5000, "bytes": 2 * 2**20, "total_bytes": 100 * 2**20, "depth": 6},
        "files": files, "totals": {"files": len(files), "tailed_bytes": 200}, "errors": []}, "logs")
    writer.write_json(schema.REDACTIONS, {"total": scrubber.counts.total(), "by_rule": scrubber.counts.by_rule(),
                                          "by_file": scrubber.counts.as_records()})
    writer.write_json(schema.MANIFEST, _manifest())
    return BundleReader(root)


class _TagBalance(HTMLParser):
    """Fails on a closing tag that does not match the open one (a template slip)."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.ids = []
        self.problems = []

    def handle_starttag(self, tag, attrs):
        ids = [v for k, v in attrs if k == "id"]
        self.ids.extend(ids)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]} at {self.getpos()}")
            return
        self.stack.pop()


def _check_html(html: str) -> _TagBalance:
    parser = _TagBalance()
    parser.feed(html)
    parser.close()
    assert not parser.problems, parser.problems[:5]
    assert parser.stack == [], parser.stack
    assert len(parser.ids) == len(set(parser.ids)), "duplicate ids"
    return parser


def _without_own_script(html: str) -> str:
    """The page without the one script akdiag puts at its end (the sorting script)."""
    start = html.rindex("<script>")
    assert html.count("<script") == 1 and html.index("</script>") > start
    return html[:start] + html[html.index("</script>") + len("</script>"):]


def _row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="proc-{re.escape(name)}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


# --------------------------------------------------------------------------- tests

def test_templates_dir_is_found():
    folder = report.templates_dir()
    assert (folder / report.TEMPLATE).is_file()
    assert (folder / "style.css").is_file()
    assert (folder / "macros.j2").is_file()


def test_every_expected_process_has_a_row_with_its_status(tmp_path):
    html = report.render_bundle(_write_full_bundle(tmp_path))
    parser = _check_html(html)
    for record in EXPECTED:
        assert f"proc-{record['name']}" in parser.ids
        row = _row(html, record["name"])
        assert f'class="status-{record["status"]}"' in row
        assert f">{record['status']}</span>" in row  # the word, not colour alone
    assert "can run on another host" in _row(html, "trkread")
    conflict = _row(html, "proctask")
    assert "conflict" in conflict and "nginx" in conflict and "999" in conflict
    assert "stale" in conflict
    webcontrol = _row(html, "webcontrol")
    assert "102, 103" in webcontrol
    assert "150 MiB" in webcontrol
    assert 'class="hot"' in webcontrol  # 1000 of 1024 open files


def test_header_and_verdict(tmp_path):
    html = report.render_bundle(_write_full_bundle(tmp_path))
    assert "mail-01" in html and "ticket-42" in html
    assert "/opt/akd" in html and "(from --basedir)" in html
    assert "2024-05-02 08:00:00 UTC" in html and "2024-05-02 08:00:30 UTC" in html
    assert "0.1.0" in html
    verdict = re.search(r'<div class="verdict v-(\w+)" id="verdict">(.*?)</div>', html, re.S)
    assert verdict.group(1) == "bad"
    assert "1 process down" in verdict.group(2)
    assert "1 port conflict" in verdict.group(2)
    assert "1 PID file problem" in verdict.group(2)


def test_all_running_verdict(tmp_path):
    writer = BundleWriter(tmp_path, Scrubber())
    writer.write_json(schema.PROCESSES, {"expected": [EXPECTED[0], EXPECTED[3]], "all": [], "errors": []})
    for relpath, data in ((schema.SYSTEM, SYSTEM), (schema.PIDFILES, {"files": []}), (schema.PORTS, {}),
                          (schema.AKD, {}), (schema.CONFIG_INDEX, {}), (schema.LOGS_INDEX, {}),
                          (schema.DATASTORES, {"endpoints": []}),
                          (schema.REDACTIONS, {"total": 0, "by_rule": {}}), (schema.MANIFEST, _manifest())):
        writer.write_json(relpath, data)
    html = report.render_bundle(BundleReader(tmp_path))
    _check_html(html)
    verdict = re.search(r'<div class="verdict v-(\w+)" id="verdict">(.*?)</div>', html, re.S)
    assert verdict.group(2).strip() == "All expected processes running"
    assert verdict.group(1) == "ok"


def test_sections_are_in_order_and_show_their_data(tmp_path):
    html = report.render_bundle(_write_full_bundle(tmp_path))
    order = ["header", "processes", "host", "pidfiles", "ports", "akd", "config", "logs", "collectors", "redactions"]
    positions = [html.index(f'id="{name}"') for name in order]
    assert positions == sorted(positions)
    assert "Ubuntu 22.04.4 LTS" in html and "5.15.0-105-generic" in html
    assert "12 d 3 h" in html  # uptime
    assert "Europe/Moscow" in html and "ESTABLISHED 40" in html
    assert "95.0 %" in html and "statvfs /mnt/nfs timed out" in html
    assert "no process 4242" in html  # pidfiles.json
    assert "Expected for" in html and "8962" in html  # ports.json
    assert "api running" in html and "proctask stopped" in html  # akd stdout
    assert "custom.bad is not valid JSON" in html and "main.json:crypt_key" in html
    assert "old/api.log.1.gz" in html and "rotated" in html and "not a regular file" in html
    assert "cannot open: Permission denied" in html
    assert "<details class=\"tail\" id=\"log-0\">" in html
    assert "json_secret_value" in html  # the password in config/main.json was redacted and counted
    assert "hunter2" not in html


def test_untrusted_text_is_escaped(tmp_path):
    reader = _write_full_bundle(tmp_path)
    html = report.render_bundle(reader)
    assert "<script" not in _without_own_script(html).lower()
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;/pre&gt;" in html
    # the only </pre> are the template's own: one per <pre>
    assert len(re.findall(r"<pre[ >]", html)) == html.count("</pre>")


def test_hostile_process_name_is_escaped_in_attributes(tmp_path):
    writer = BundleWriter(tmp_path, Scrubber())
    evil = _process('x"><script>alert(1)</script>', "down")
    writer.write_json(schema.PROCESSES, {"expected": [evil], "all": [], "errors": []})
    writer.write_json(schema.MANIFEST, _manifest())
    html = report.render_bundle(BundleReader(tmp_path))
    assert "<script" not in _without_own_script(html).lower()
    assert 'id="proc-x&#34;&gt;&lt;script&gt;' in html
    _check_html(html)


def test_no_external_references(tmp_path):
    html = report.render_bundle(_write_full_bundle(tmp_path))
    lowered = _without_own_script(html).lower()
    for needle in ("http://", "https://", "src=", "<link", "<script", "@import", "url(", "//cdn"):
        assert needle not in lowered, needle
    assert "<style>" in html and "@media print" in html


def test_empty_bundle_still_renders_with_notes(tmp_path):
    html = report.render_bundle(BundleReader(tmp_path))
    _check_html(html)
    assert "manifest.json is missing" in html
    for relpath in (schema.SYSTEM, schema.PROCESSES, schema.PIDFILES, schema.PORTS, schema.AKD,
                    schema.CONFIG_INDEX, schema.LOGS_INDEX):
        assert f"{relpath} is missing from this bundle" in html
    assert "Process status unknown" in html
    assert "redactions.json is missing" in html


def test_failed_collectors_are_named_in_the_missing_notes(tmp_path):
    writer = BundleWriter(tmp_path, Scrubber())
    collectors = [
        {"name": "system", "status": "ok", "duration": 0.1, "error": None, "output": schema.SYSTEM},
        {"name": "processes", "status": "failed", "duration": 0.2, "error": "RuntimeError: boom <x>",
         "output": None},
        {"name": "logs", "status": "timeout", "duration": 60.0, "error": "did not finish within 60.0 s",
         "output": None},
        {"name": "akd", "status": "skipped", "duration": 0.0, "error": "not selected for this run",
         "output": None},
        {"name": "config", "status": "partial", "duration": 0.1, "error": "main.json does not exist",
         "output": schema.CONFIG_INDEX},
    ]
    writer.write_json(schema.SYSTEM, SYSTEM)
    writer.write_json(schema.CONFIG_INDEX, {"files": [], "placeholder_secrets": [],
                                            "errors": ["main.json does not exist"]})
    writer.write_json(schema.MANIFEST, _manifest(collectors))
    html = report.render_bundle(BundleReader(tmp_path))
    _check_html(html)
    assert "processes.json is missing from this bundle: the processes collector failed: RuntimeError: boom &lt;x&gt;" in html
    assert "the logs collector timed out" in html
    assert "was not collected: the akd collector was skipped" in html
    assert "the manifest records no run of the pidfiles collector" in html
    verdict = re.search(r'id="verdict">(.*?)</div>', html, re.S).group(1)
    assert "Process status unknown" in verdict and "2 collectors failed" in verdict
    assert "1 collector partial" in verdict
    assert "Ubuntu" in html  # what is there is still shown


@pytest.mark.malformed_bundle
def test_malformed_files_do_not_break_the_page(tmp_path):
    writer = BundleWriter(tmp_path, Scrubber())
    writer.write_text(schema.SYSTEM, "{not json")
    writer.write_json(schema.PROCESSES, ["a", "list"])
    writer.write_json(schema.PIDFILES, {"files": "nope", "errors": "also nope"})
    writer.write_json(schema.PORTS, {"listening": [1, None, {"port": "x"}]})
    writer.write_json(schema.AKD, {"stdout": 17, "stderr": ["x"], "exit_code": "weird"})
    writer.write_json(schema.LOGS_INDEX, {"files": [{"path": None, "size": "big", "tail": "x"}, 5],
                                          "limits": [], "totals": None})
    writer.write_json(schema.REDACTIONS, {"total": "many", "by_rule": [], "by_file": {}})
    writer.write_json(schema.MANIFEST, {"collectors": "none", "hostname": ["odd"]})
    writer.write_json(schema.CONFIG_INDEX, {"files": [{"valid_json": "maybe"}]})
    html = report.render_bundle(BundleReader(tmp_path))
    _check_html(html)
    assert "system.json is not valid JSON" in html
    assert "processes.json does not hold the expected data" in html


def test_expected_records_with_odd_fields(tmp_path):
    writer = BundleWriter(tmp_path, Scrubber())
    odd = [{"name": "api", "status": "zombie", "pids": "101", "pidfile": None, "port": "8801",
            "resources": [None, {"pid": 1, "rss": "lots", "open_files": None}]},
           {"status": "running"}, "not a record"]
    writer.write_json(schema.PROCESSES, {"expected": odd, "all": None, "errors": None})
    writer.write_json(schema.MANIFEST, _manifest())
    html = report.render_bundle(BundleReader(tmp_path))
    _check_html(html)
    assert 'id="proc-api" class="status-unknown"' in html
    assert 'id="proc-unknown-1" class="status-running"' in html
    assert "1 process of unknown status" in html


def test_long_tail_is_capped_in_the_page(tmp_path):
    text = "".join(f"line {i:05d}\n" for i in range(1000))
    html = report.render_bundle(_write_full_bundle(tmp_path, tail_text=text))
    assert "line 00999" in html and "line 00800" in html
    assert "line 00799" not in html
    assert "Showing the last 200 lines" in html


def test_huge_line_tail_is_capped_by_bytes(tmp_path):
    text = "start\n" + "x" * (report.TAIL_BYTES * 3) + "\nend\n"
    html = report.render_bundle(_write_full_bundle(tmp_path, tail_text=text))
    assert "end" in html and "start\n" not in html
    assert len(html) < report.TAIL_BYTES * 2 + 100_000


def test_tails_outside_the_bundle_are_refused(tmp_path):
    bundle = tmp_path / "bundle"
    secret = tmp_path / "outside.log"
    secret.write_text("TOP SECRET OUTSIDE\n")
    extra = [
        {"path": "evil", "type": "file", "size": 1, "mtime": None, "state": "tailed", "reason": None,
         "tail": {"bundle_path": "logs/../../outside.log", "lines": 1, "bytes": 1}},
        {"path": "abs", "type": "file", "size": 1, "mtime": None, "state": "tailed", "reason": None,
         "tail": {"bundle_path": str(secret), "lines": 1, "bytes": 1}},
        {"path": "link", "type": "file", "size": 1, "mtime": None, "state": "tailed", "reason": None,
         "tail": {"bundle_path": "logs/link.log", "lines": 1, "bytes": 1}},
        {"path": "gone", "type": "file", "size": 1, "mtime": None, "state": "tailed", "reason": None,
         "tail": {"bundle_path": "logs/gone.log", "lines": 1, "bytes": 1}},
    ]
    reader = _write_full_bundle(bundle, extra_logs=extra)
    (bundle / "logs" / "link.log").symlink_to(secret)
    html = report.render_bundle(reader)
    _check_html(html)
    assert "TOP SECRET OUTSIDE" not in html
    assert "points outside the bundle" in html
    assert "logs/gone.log is missing from this bundle" in html


def test_control_characters_and_bad_bytes_are_made_visible(tmp_path):
    bundle = tmp_path / "b"
    reader = _write_full_bundle(bundle)
    (bundle / "logs" / "api.log").write_bytes(b"\x1b[31mred\x1b[0m\r\nnul\x00here \xff\xfe end\n")
    html = report.render_bundle(reader)
    assert "\x1b" not in html and "\x00" not in html and "\r" not in html
    assert "\u241b[31mred" in html and "nul\u2400here" in html and "\ufffd" in html
    html.encode("utf-8")  # no lone surrogates


def test_akd_output_is_capped(tmp_path):
    bundle = tmp_path / "b"
    reader = _write_full_bundle(bundle)
    (bundle / "commands" / "akd-processes.txt").write_text("A" * (report.MAX_AKD_STDOUT_BYTES + 5000) + "TAILMARK")
    html = report.render_bundle(reader)
    assert "TAILMARK" not in html
    assert "Only the first 200 KiB are shown" in html


def test_helpers():
    assert report.human_bytes(None) == "—"
    assert report.human_bytes(512) == "512 B"
    assert report.human_bytes(1536) == "1.5 KiB"
    assert report.human_bytes(150 * 2**20) == "150 MiB"
    assert report.human_bytes(5 * 2**30) == "5.0 GiB"
    assert report.human_bytes("x") == "x"
    assert report.human_bytes(True) == "True"
    assert report.human_duration(0.4234) == "0.42 s"
    assert report.human_duration(12.34) == "12.3 s"
    assert report.human_duration(185) == "3 min 5 s"
    assert report.human_duration(4 * 3600 + 600) == "4 h 10 min"
    assert report.human_duration(12 * 86400 + 3 * 3600) == "12 d 3 h"
    assert report.human_duration(None) == "—"
    assert report.human_time("2024-05-02T08:00:00Z") == "2024-05-02 08:00:00 UTC"
    assert report.human_time(0) == "1970-01-01 00:00:00 UTC"
    assert report.human_percent(12.345) == "12.3 %"
    assert report.plural(1, "process down", "processes down") == "1 process down"
    assert report.plural(2, "port conflict") == "2 port conflicts"


@pytest.mark.parametrize("name", ["summary.html.j2", "macros.j2"])
def test_environment_autoescapes(name):
    env = report.environment()
    assert env.autoescape is True
    assert env.get_template(name) is not None
