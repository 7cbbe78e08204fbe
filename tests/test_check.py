"""`akdiag check`: its exit codes (0 OK, 1 warning, 2 critical, 3 unknown) and formats,
on the simulated host for real and on bundles holding each case."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from collector.check import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING, exit_code
from conftest import akdiag
import triage_helpers
from triage_helpers import LoneHost, edit_json

NAGIOS_LINE = re.compile(r"^AKDIAG (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| (\S+=\S+ ?)+$")


def _finding(severity: str, fid: str = "x.y") -> dict:
    return {"id": fid, "severity": severity, "subject": "s", "title": "t"}


def test_exit_code_rules():
    assert exit_code([], []) == EXIT_OK
    assert exit_code([_finding("info")], []) == EXIT_OK
    assert exit_code([_finding("info"), _finding("warning")], []) == EXIT_WARNING
    assert exit_code([_finding("warning"), _finding("critical")], []) == EXIT_CRITICAL
    assert exit_code([_finding("warning")], ["no process data"]) == EXIT_UNKNOWN
    assert exit_code([_finding("critical")], ["no process data"]) == EXIT_CRITICAL  # what was found stands


# -- on the simulated host -------------------------------------------------------------------------
# The host's processes carry names of their own: another test's simulated platform, running
# at the same time, must not make them look up or down.

@pytest.fixture
def broken(tmp_path):
    """One process of its own stopped (down, stale PID file), one running."""
    lone = LoneHost(tmp_path / "lone", {"main": {}, "other": {}}).start("main", "other")
    lone.sim.stop_process(lone.name("main"))
    yield lone
    lone.stop()


def _live(lone, *options):
    return akdiag("check", "--basedir", str(lone.sim.basedir), "--catalog", str(lone.catalog_file), *options)


def test_live_check_of_a_broken_host_is_critical(broken):
    done = _live(broken, "--format", "nagios")
    assert done.returncode == EXIT_CRITICAL, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and NAGIOS_LINE.match(lines[0]), lines
    assert int(re.search(r"processes_down=(\d+);", lines[0]).group(1)) >= 1
    assert "time=" in lines[0] and "critical=" in lines[0]


def test_live_check_as_json_and_text(broken):
    done = _live(broken, "--format", "json", "--skip", "datastores")
    assert done.returncode == EXIT_CRITICAL, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "CRITICAL" and result["exit_code"] == 2
    down = [f for f in result["findings"] if f["id"] == "process.down" and f["subject"] == broken.name("main")]
    assert down and down[0]["severity"] == "critical"
    assert result["figures"]["processes_down"] >= 1
    assert not [f for f in result["findings"] if f["area"] in ("datastores", "logs")]  # skipped, not tailed
    text = _live(broken, "--skip", "datastores")
    assert text.returncode == EXIT_CRITICAL
    assert text.stdout.splitlines()[0].split() == ["SEVERITY", "ID", "SUBJECT", "TITLE"]
    name = broken.name("main")
    assert re.search(rf"^CRITICAL +process\.down +{name} +{name} is not running", text.stdout, re.M)
    assert "akdiag check: CRITICAL (exit 2)" in text.stdout


def test_check_leaves_nothing_behind(broken, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    done = akdiag("check", "--basedir", str(broken.sim.basedir), "--catalog", str(broken.catalog_file), "--skip",
                  "datastores", env={"TMPDIR": str(temp)})
    assert done.returncode in (EXIT_WARNING, EXIT_CRITICAL), done.stdout + done.stderr
    assert list(temp.iterdir()) == []


def test_missing_basedir_is_unknown(tmp_path):
    done = akdiag("check", "--basedir", str(tmp_path / "nothing"), "--format", "nagios")
    assert done.returncode == EXIT_UNKNOWN
    assert done.stdout.startswith("AKDIAG UNKNOWN - BASEDIR") and "is not a folder" in done.stdout


def test_bad_catalog_and_bad_option_are_unknown(tmp_path):
    catalog = tmp_path / "bad.yaml"
    catalog.write_text("processes: {not: a list}\n")
    done = akdiag("check", "--basedir", str(tmp_path), "--catalog", str(catalog), "--format", "nagios")
    assert done.returncode == EXIT_UNKNOWN and "catalog" in done.stdout
    assert akdiag("check", "--no-such-option").returncode == EXIT_UNKNOWN
    assert akdiag("check", "--format", "xml").returncode == EXIT_UNKNOWN
    assert akdiag("check", "--skip", "logs").returncode == EXIT_UNKNOWN


# -- on bundles holding each case ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def quiet_bundle(tmp_path_factory):
    """A bundle of a host with one process of its own running for an hour and nothing wrong."""
    return triage_helpers.quiet_bundle(tmp_path_factory.mktemp("quiet"))


def _copy(quiet_bundle, tmp_path):
    reader, lone = quiet_bundle
    target = tmp_path / "bundle"
    shutil.copytree(reader.root, target)
    from collector.bundle.reader import BundleReader

    return BundleReader(target), lone


def _check(reader, *options):
    return akdiag("check", "--bundle", str(reader.root), *options)


def test_bundle_of_a_quiet_host_is_ok(quiet_bundle, tmp_path):
    reader, _lone = _copy(quiet_bundle, tmp_path)
    done = _check(reader, "--format", "nagios")
    assert done.returncode == EXIT_OK, done.stdout
    assert done.stdout.startswith("AKDIAG OK - 1 processes running, no problem found |")
    assert "processes_down=0;;;0;1" in done.stdout


def test_bundle_with_a_warning(quiet_bundle, tmp_path):
    reader, _lone = _copy(quiet_bundle, tmp_path)
    edit_json(reader, "system.json", lambda d: d["memory"].update(percent_available=4.0))
    done = _check(reader, "--format", "nagios")
    assert done.returncode == EXIT_WARNING, done.stdout
    assert done.stdout.startswith("AKDIAG WARNING - 0 critical, 1 warning, 0 info: Only 4.0 % of memory")


def test_bundle_with_a_critical(quiet_bundle, tmp_path):
    reader, lone = _copy(quiet_bundle, tmp_path)

    def down(data):
        data["expected"][0].update(status="down", pids=[], resources=[])
    edit_json(reader, "processes.json", down)
    done = _check(reader, "--format", "json")
    assert done.returncode == EXIT_CRITICAL
    assert json.loads(done.stdout)["findings"][0]["subject"] == lone.name("main")


def test_bundle_without_process_data_is_unknown(quiet_bundle, tmp_path):
    reader, _lone = _copy(quiet_bundle, tmp_path)
    reader.path("processes.json").unlink()
    done = _check(reader, "--format", "nagios")
    assert done.returncode == EXIT_UNKNOWN
    assert "no process data" in done.stdout


def test_failing_analyzer_is_unknown(quiet_bundle, tmp_path):
    reader, _lone = _copy(quiet_bundle, tmp_path)
    catalog = tmp_path / "odd.yaml"
    catalog.write_text("thresholds:\n  load_per_cpu_warning: high\n")
    done = _check(reader, "--catalog", str(catalog))
    assert done.returncode == EXIT_UNKNOWN, done.stdout
    assert "Could not check: The host analyzer failed" in done.stdout


def test_bundle_of_a_newer_akdiag_is_unknown(quiet_bundle, tmp_path):
    reader, _lone = _copy(quiet_bundle, tmp_path)
    edit_json(reader, "manifest.json", lambda m: m.update(schema_version=99))
    done = _check(reader, "--format", "nagios")
    assert done.returncode == EXIT_UNKNOWN and "schema version 99" in done.stdout


# What the check's own run does, seen from inside the real command: the files its temporary
# bundle holds when it is judged, how many times each analyzer runs, which modules load.
_INSTRUMENTED = """
import json, os, sys
from collections import Counter
import collector.analyzers as analyzers
import collector.check as check
runs, seen = Counter(), {}
real_run_one, real_check_reader = analyzers.run_one, check.check_reader
def run_one(name, *args):
    runs[name] += 1
    return real_run_one(name, *args)
def check_reader(reader, *args, **kwargs):
    seen["files"] = sorted(os.path.relpath(os.path.join(d, f), reader.root)
                           for d, _, files in os.walk(reader.root) for f in files)
    return real_check_reader(reader, *args, **kwargs)
analyzers.run_one, check.check_reader = run_one, check_reader
from collector.cli import main
try:
    main(sys.argv[1:], prog_name="akdiag", standalone_mode=False)
finally:
    print(json.dumps({"runs": runs, "files": seen.get("files"),
                      "loaded": [m for m in ("jinja2", "collector.report", "py7zr") if m in sys.modules]}),
          file=sys.stderr)
"""


def test_check_judges_once_and_renders_no_page(broken):
    import subprocess
    import sys

    from collector.analyzers import registry
    from conftest import REPO

    done = subprocess.run([sys.executable, "-c", _INSTRUMENTED, "check", "--basedir", str(broken.sim.basedir),
                           "--catalog", str(broken.catalog_file), "--skip", "datastores", "--format", "json"],
                          capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                            "PYTHONPATH": str(REPO)})
    seen = json.loads(done.stderr.strip().splitlines()[-1])
    assert seen["runs"] == {name: 1 for name in registry()}, seen["runs"]
    assert "manifest.json" in seen["files"] and "processes.json" in seen["files"]
    for page_or_judgement in ("summary.html", "findings.json", "timeline.json"):
        assert page_or_judgement not in seen["files"]
    assert seen["loaded"] == []  # neither the renderer nor the archiver was even imported
    result = json.loads(done.stdout)
    assert result["status"] == "CRITICAL"
    assert [a["name"] for a in result["analyzers"]] == list(registry())


def test_check_of_a_bundle_in_every_format(quiet_bundle, tmp_path):
    reader, _lone = _copy(quiet_bundle, tmp_path)
    for fmt, looks_right in (("json", lambda out: json.loads(out)["status"] == "OK"),
                             ("nagios", lambda out: NAGIOS_LINE.match(out.strip()) is not None),
                             ("text", lambda out: "akdiag check: OK (exit 0)" in out)):
        done = _check(reader, "--format", fmt)
        assert done.returncode == EXIT_OK and looks_right(done.stdout), (fmt, done.stdout, done.stderr)
