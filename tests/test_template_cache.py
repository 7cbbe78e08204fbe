"""The report templates' compiled code kept between runs (collector/report/templatecache.py):
written privately in akdiag's state folder, reused by the next run, never inside BASEDIR,
never in a folder others can write to, and a cache that cannot be used never fails a run."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from collector.bundle import schema
from conftest import REPO

RENDER = ("import sys; from collector import report; from collector.bundle.reader import BundleReader; "
          "sys.stdout.write(report.render_bundle(BundleReader(sys.argv[1])))")


def _bundle(root: Path, basedir: str = "/opt/akd") -> Path:
    root.mkdir(parents=True)
    (root / schema.MANIFEST).write_text(json.dumps({"schema_version": schema.SCHEMA_VERSION, "hostname": "h1",
                                                    "basedir": basedir, "collectors": []}))
    return root


def _render(bundle: Path, state: Path) -> str:
    """summary.html rendered by a new process, as each run of akdiag does."""
    env = dict(os.environ, PYTHONPATH=str(REPO), AKDIAG_STATE_DIR=str(state))
    env.pop("AKDIAG_BASEDIR", None)
    done = subprocess.run([sys.executable, "-c", RENDER, str(bundle)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "<!DOCTYPE html>" in done.stdout and "h1" in done.stdout
    return done.stdout


def _cache_files(state: Path) -> dict:
    folder = state / "templates"
    return {p.name: p.stat() for p in folder.iterdir()} if folder.is_dir() else {}


def test_compiled_templates_are_kept_privately_and_reused(tmp_path):
    bundle, state = _bundle(tmp_path / "bundle"), tmp_path / "state"
    first = _render(bundle, state)
    files = _cache_files(state)
    assert len(files) >= 2  # the summary and the macros it imports, at least
    assert stat.S_IMODE((state / "templates").stat().st_mode) == 0o700
    assert all(stat.S_IMODE(s.st_mode) == 0o600 for s in files.values())
    second = _render(bundle, state)
    again = _cache_files(state)
    assert second == first
    # loaded, not compiled again: Jinja2 writes a template's code only after compiling it
    assert {n: s.st_mtime_ns for n, s in again.items()} == {n: s.st_mtime_ns for n, s in files.items()}


def test_a_damaged_cache_is_compiled_again(tmp_path):
    bundle, state = _bundle(tmp_path / "bundle"), tmp_path / "state"
    first = _render(bundle, state)
    for path in (state / "templates").iterdir():
        path.write_bytes(b"not a cache at all")
    assert _render(bundle, state) == first


@pytest.mark.parametrize("case", ["a file where the folder should be", "writable by others", "inside BASEDIR"])
def test_a_cache_that_cannot_or_must_not_be_used_is_passed_over(tmp_path, case):
    state = tmp_path / "state"
    basedir = "/opt/akd"
    if case == "a file where the folder should be":
        state.mkdir()
        (state / "templates").write_text("")
    elif case == "writable by others":
        (state / "templates").mkdir(parents=True)
        os.chmod(state / "templates", 0o777)
    else:
        basedir = str(tmp_path)
    _render(_bundle(tmp_path / "bundle", basedir), state)
    folder = state / "templates"
    assert not folder.is_dir() or list(folder.iterdir()) == []
