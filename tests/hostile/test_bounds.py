"""Hostile inputs against akdiag's bounds in time and memory: a catastrophic redaction
pattern, YAML alias bombs, FIFO and device catalogs, a host full of long command
lines, and crafted bundles handed to `report`.  Real processes, files, FIFOs and
device nodes; the time bounds are generous and only prove "does not hang"."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from collector.bundle.reader import MAX_INDEX_ENTRIES, BundleError, BundleReader, open_bundle
from collector.catalog import CatalogError, load_catalog
from collector.cmdline import CUT, PER_PROCESS_BYTES
from collector.context import Deadline
from collector.redact import WITHHELD, Scrubber
from collector.run_steps import run_bounded
from collector.untrusted import JSONTooDeep, ReadRefused, load_json_bounded, read_regular
from collector.userpattern import PatternTimedOut, UserPattern
from conftest import REPO, akdiag, collect_bundle

CATASTROPHIC = r"(\w+\s?)+$"
EVIL_LINE = "word " * 2000 + "!"  # (\w+\s?)+$ backtracks on it for minutes under `re`


def _bundle_dir(out: Path) -> Path:
    (bundle,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return bundle


# -- user patterns -----------------------------------------------------------------------------

def test_a_catastrophic_pattern_times_out_and_lets_other_threads_run():
    pattern = UserPattern(CATASTROPHIC)
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    ticker = threading.Thread(target=tick)
    ticker.start()
    started = time.monotonic()
    try:
        with pytest.raises(PatternTimedOut):
            pattern.sub("<x>", EVIL_LINE)
    finally:
        stop.set()
        ticker.join()
    assert time.monotonic() - started < 5  # bounded (0.5 s per call)
    assert pattern.timeouts == 1
    assert len([t for t in ticks if t > started]) > 10  # the GIL was released while it ran
    assert pattern.sub("<x>", "short words only") == "<x>"  # an ordinary line still works


def test_a_line_whose_pattern_timed_out_is_withheld():
    scrubber = Scrubber.for_bundle((), (CATASTROPHIC,))
    text = scrubber.scrub_text(f"{EVIL_LINE}\nkeep me!\n", "logs/evil.log")
    assert text.splitlines() == [WITHHELD, "keep me!"]
    assert scrubber.counts.by_rule().get("rule_error") == 1


def test_catastrophic_pattern_run_ends_by_its_deadline(host, tmp_path):
    logs = host.basedir / "logs"
    logs.mkdir(exist_ok=True)
    for i in range(10):
        (logs / f"evil{i}.log").write_text(f"{EVIL_LINE}\n" * 200 + "quiet line\n")
    out = tmp_path / "out"
    out.mkdir()
    started = time.monotonic()
    done = akdiag("collect", "--basedir", str(host.basedir), "--output", str(out), "--format", "dir",
                  "--timeout", "10", "--redact-pattern", CATASTROPHIC, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 18, f"a --timeout 10 run took {elapsed:.1f} s"
    bundle = _bundle_dir(out)
    redactions = json.loads((bundle / "redactions.json").read_text())
    assert redactions["timed_out"].get("custom:1", 0) > 0
    for tail in (bundle / "logs").glob("evil*.log"):
        assert "word word" not in tail.read_text(errors="replace")  # withheld, never unscrubbed


def test_invalid_patterns_are_usage_errors(tmp_path):
    done = akdiag("collect", "--basedir", str(tmp_path), "--output", str(tmp_path), "--redact-pattern", "(unclosed")
    assert done.returncode == 2 and "not a valid regular expression" in done.stderr
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("redact:\n  - '[z-a]'\n")
    with pytest.raises(CatalogError, match="invalid regular expression"):
        load_catalog(catalog)


# -- the deadline covers the analysis and rendering ------------------------------------------------

def test_a_step_that_misses_the_deadline_is_cut():
    started = time.monotonic()
    value, cut = run_bounded("analysis", lambda: time.sleep(30), Deadline(0.5))
    assert (value, cut) == (None, "deadline reached during analysis")
    assert time.monotonic() - started < 5
    assert run_bounded("rendering", lambda: "html", Deadline(5)) == ("html", None)
    assert run_bounded("rendering", lambda: "html", Deadline(0)) == (None, "deadline reached before rendering")


def test_many_logs_with_a_short_deadline_still_give_a_bundle(host, tmp_path):
    logs = host.basedir / "logs"
    logs.mkdir(exist_ok=True)
    for i in range(20000):
        (logs / f"app{i}.log").write_text(f"2026-01-01 ERROR failed {i}\n" * 3)
    out = tmp_path / "out"
    out.mkdir()
    started = time.monotonic()
    done = akdiag("collect", "--basedir", str(host.basedir), "--output", str(out), "--format", "dir",
                  "--timeout", "5", timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 12, f"a --timeout 5 run took {elapsed:.1f} s"
    manifest = json.loads((_bundle_dir(out) / "manifest.json").read_text())
    assert manifest["cut"] is None or manifest["cut"].startswith("deadline reached")
    if manifest["cut"]:
        assert "Cut short: deadline reached" in done.stdout


# -- the catalog ------------------------------------------------------------------------------------

def _alias_bomb(path: Path) -> Path:
    lines = ["thresholds:", "  a: &a [x,x,x,x,x,x,x,x,x]"]
    for i in range(8):  # 9**9 = 387 million values from ~350 bytes
        prev, name = chr(97 + i), chr(98 + i)
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path.write_text("\n".join(lines) + "\n")
    return path


def _limit_memory():
    cap = 1024 ** 3  # 1 GiB of address space: the bomb expanded needs tens of GB
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def test_alias_bomb_is_refused_under_a_memory_cap(tmp_path):
    bomb = _alias_bomb(tmp_path / "bomb.yaml")
    assert bomb.stat().st_size < 500
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "collector", "collect", "--basedir", str(tmp_path),
                           "--output", str(tmp_path), "--catalog", str(bomb)],
                          capture_output=True, text=True, timeout=60, env=env, preexec_fn=_limit_memory)
    assert done.returncode == 2, done.stderr
    assert "aliases expanded" in done.stderr and "bomb.yaml" in done.stderr


@pytest.mark.parametrize("text, message", [
    ("thresholds:\n  a: &a [1, *a]\n", "refers to a value that holds it"),
    ("thresholds:\n  x: " + "[" * 200 + "]" * 200 + "\n", "nested more than"),
    ("# " + "x" * 300_000 + "\n", "this file may have"),
])
def test_hostile_catalogs_are_refused(tmp_path, text, message):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_anchors_and_aliases_within_bounds_still_work(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("thresholds:\n  base: &b {cpu_percent: 90}\n  copy: *b\n")
    assert load_catalog(path).thresholds["copy"] == {"cpu_percent": 90}


def test_device_and_fifo_catalogs_fail_at_once(tmp_path):
    fifo = tmp_path / "catalog.fifo"
    os.mkfifo(fifo)
    for catalog, kind in (("/dev/zero", "character device"), (str(fifo), "FIFO")):
        started = time.monotonic()
        done = akdiag("collect", "--basedir", str(tmp_path), "--output", str(tmp_path), "--catalog", catalog,
                      timeout=30)
        assert done.returncode == 2, done.stderr
        assert kind in done.stderr and catalog in done.stderr
        assert time.monotonic() - started < 20


# -- command lines ----------------------------------------------------------------------------------

def test_long_command_lines_are_capped(host, tmp_path):
    count, size = 1000, 100_000
    sleepers = [subprocess.Popen([f"long-{i}-" + "x" * size, "600"], executable="/bin/sleep")
                for i in range(count)]
    try:
        _result, reader = collect_bundle(host, tmp_path / "out", only=("processes",))
    finally:
        for proc in sleepers:
            proc.kill()
        for proc in sleepers:
            proc.wait()
    data = reader.json("processes.json")
    rows = [r for r in data["all"] if (r.get("cmdline") or "").startswith("long-")]
    assert len(rows) == count
    assert all(len(r["cmdline"]) <= PER_PROCESS_BYTES + len(CUT) + 1 for r in rows)
    assert all(r["cmdline"].endswith(CUT) for r in rows)
    assert data["cmdlines_cut"] >= count
    assert (reader.root / "processes.json").stat().st_size < 16 * 1024 * 1024  # 191 MiB uncapped


# -- bounded reading --------------------------------------------------------------------------------

def test_json_depth_is_capped_before_parsing():
    assert load_json_bounded("[" * 64 + "]" * 64) is not None
    with pytest.raises(JSONTooDeep):
        load_json_bounded("[" * 65 + "]" * 65)
    with pytest.raises(JSONTooDeep):
        load_json_bounded(b"[" * 1_000_000)
    tricky = json.dumps({"s": "[[[[\\\"{{{{" * 40, "t": ["\\", {"u": []}]})
    assert load_json_bounded(tricky, max_depth=4)["t"][1] == {"u": []}  # object, list, object, list
    with pytest.raises(JSONTooDeep):
        load_json_bounded(tricky, max_depth=3)


def test_regular_files_only(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo, tmp_path):
        with pytest.raises(ReadRefused, match="not a regular file"):
            read_regular(path, 1024)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(ReadRefused, match="5000 bytes"):
        read_regular(big, 1024)
    assert read_regular(big, 1024, head=True) == b"x" * 1024


@pytest.fixture
def crafted(tmp_path):
    """A minimal folder bundle: a manifest and a processes.json."""
    bundle = tmp_path / "bundle"
    (bundle / "logs").mkdir(parents=True)
    (bundle / "manifest.json").write_text(json.dumps({"schema_version": 1, "hostname": "h", "collectors": []}))
    (bundle / "processes.json").write_text(json.dumps({"expected": [], "all": []}))
    return bundle


def _report(bundle: Path, tmp_path: Path, timeout: float = 120) -> tuple:
    output = tmp_path / "r.summary.html"
    started = time.monotonic()
    done = akdiag("report", str(bundle), "--output", str(output), timeout=timeout)
    return done, time.monotonic() - started, output


@pytest.mark.malformed_bundle
def test_fifo_manifest_does_not_hang_report(crafted, tmp_path):
    (crafted / "manifest.json").unlink()
    os.mkfifo(crafted / "manifest.json")
    done, elapsed, output = _report(crafted, tmp_path, timeout=60)
    assert "Traceback" not in done.stderr
    assert output.exists() and "manifest.json is missing or unreadable" in output.read_text()
    assert BundleReader(crafted).json("manifest.json") is None


@pytest.mark.malformed_bundle
def test_links_to_devices_and_device_nodes_are_not_read(crafted, tmp_path):
    (crafted / "processes.json").unlink()
    (crafted / "processes.json").symlink_to("/dev/zero")
    os.mknod(crafted / "system.json", 0o600 | 0o020000, os.makedev(1, 5))  # a /dev/zero of its own
    (crafted / "logs" / "index.json").write_text(json.dumps(
        {"files": [{"path": "/x.log", "tail": {"bundle_path": "logs/x.log"}}]}))
    (crafted / "logs" / "x.log").symlink_to("/dev/zero")
    reader = BundleReader(crafted)
    assert reader.json("processes.json") is None and reader.json("system.json") is None
    assert reader.member("logs/x.log", "logs/")[0] is None
    done, _elapsed, output = _report(crafted, tmp_path)
    assert done.returncode in (0, 1, 2, 3), done.stderr
    assert "Traceback" not in done.stderr and output.exists()


def test_a_large_documents_depth_answer_is_kept_only_for_the_same_text():
    """A large text found shallow is not checked again; a deep one of the same size, or the
    same text under a smaller cap, is still refused."""
    padding = " " * (70 * 1024)
    shallow = "[" * 60 + padding + "]" * 60
    deep = "[" * 70 + padding[:-20] + "]" * 70
    assert len(shallow) == len(deep)
    for _ in range(3):
        assert load_json_bounded(shallow) is not None
        with pytest.raises(JSONTooDeep):
            load_json_bounded(deep)
        with pytest.raises(JSONTooDeep):
            load_json_bounded(shallow.encode(), max_depth=59)


@pytest.mark.malformed_bundle
def test_deep_json_member_is_could_not_read(crafted, tmp_path):
    (crafted / "processes.json").write_text("[" * 200_000 + "]" * 200_000)
    assert BundleReader(crafted).json("processes.json") is None
    done, _elapsed, output = _report(crafted, tmp_path)
    assert "Traceback" not in done.stderr and output.exists()


@pytest.mark.malformed_bundle
def test_huge_index_is_read_up_to_its_cap(crafted, tmp_path):
    entries = MAX_INDEX_ENTRIES * 3
    files = [{"path": f"/opt/ak/logs/l{i}.log", "tail": {"bundle_path": f"logs/l{i}.log"}} for i in range(entries)]
    (crafted / "logs" / "index.json").write_text(json.dumps({"files": files}))
    done, elapsed, output = _report(crafted, tmp_path, timeout=300)
    assert "Traceback" not in done.stderr and output.exists()
    assert f"lists {entries} files" in output.read_text()


def test_archive_too_deep_is_refused(tmp_path):
    archive = tmp_path / "deep.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("/".join(["d"] * 40) + "/manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(BundleError, match="folders deep"):
        with open_bundle(archive):
            pass


@pytest.mark.malformed_bundle
def test_a_cut_run_says_so_in_its_summary(crafted, tmp_path):
    manifest = json.loads((crafted / "manifest.json").read_text())
    manifest["cut"] = "deadline reached during analysis"
    (crafted / "manifest.json").write_text(json.dumps(manifest))
    done, _elapsed, output = _report(crafted, tmp_path)
    assert output.exists(), done.stderr
    assert "This run was cut short (deadline reached during analysis)" in output.read_text()


def test_a_deep_main_json_is_refused_and_the_rest_goes_on(host, tmp_path):
    (host.basedir / "config" / "main.json").write_text("[" * 100_000 + "]" * 100_000)
    result, reader = collect_bundle(host, tmp_path / "out", only=("config", "datastores", "system"))
    statuses = {o.name: o.status for o in result.outcomes}
    assert statuses["system"] == "ok" and statuses["config"] == "partial", statuses
    assert statuses["datastores"] in ("ok", "partial"), statuses
    index = reader.json("config/index.json")
    assert any("nested deeper than" in error for error in index["errors"])
