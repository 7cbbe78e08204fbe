"""Shared fixtures: the simulated host (real processes, PID files, sockets and files)
and a helper that runs a real collection into a bundle folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from collector.bundle.reader import BundleReader
from collector.catalog import load_catalog
from collector.context import CollectOptions
from collector.run import CollectRequest, collect
from collector.simulate import SimulatedHost
from privacy.bundlecheck import bundle_folders, unparsable_files

REPO = Path(__file__).resolve().parent.parent

# CI runs the property tests on a fixed sequence of examples, so that a red CI can be
# replayed; a developer's run explores new ones each time (and prints any it falsifies).
# A terminal's width is not the tests' to inherit: pytest-xdist's workers get COLUMNS=80, a
# developer's shell may export another, and `check`'s table keeps to $COLUMNS.  A test that
# wants a width sets it for its own command.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")


KEEP_TEST_RUNS = 3


def _pid_namespace() -> str:
    """This PID namespace's inode in base 36 (short: a test's folder must leave room in a Unix
    socket's 108-byte path)."""
    try:
        number = int("".join(ch for ch in os.readlink("/proc/self/ns/pid") if ch.isdigit()) or "0")
    except OSError:
        number = 0
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
        if not number:
            return digits


def _run_is_alive(folder: Path) -> bool:
    """Whether the pytest run that made `folder` (run-<pid>-<pid namespace>-...) still runs:
    a run going on beside this one keeps its folder.  A run in another PID namespace (a
    test worker of its own, or another checkout's run) cannot be asked: its folder is kept
    for a day."""
    parts = folder.name.split("-")
    if len(parts) < 4 or not parts[1].isdigit():
        return False
    if parts[2] != _pid_namespace():
        try:
            return time.time() - folder.stat().st_mtime < 86400
        except OSError:
            return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """The tests' temporary folders in a place no other user can write to.  akdiag runs
    `akd` and takes BASEDIR from a running process only when no folder above them is
    writable by others (collector.trust), which rules out anything under /tmp; a
    simulated host under pytest's usual /tmp folders would lose its akd output."""
    config.addinivalue_line("markers", "malformed_bundle: the test writes files that do not parse into a bundle "
                                       "on purpose (the suite-wide parse check skips it)")
    if config.option.basetemp or getattr(config, "workerinput", None) is not None:
        return
    from collector.trust import untrusted_reason

    parents = [Path.home() / ".cache" / "akdiag-tests", REPO / ".pytest-tmp"]
    if os.geteuid() == 0:
        parents.append(Path("/var/cache/akdiag-tests"))
    for parent in parents:
        try:
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            continue
        if untrusted_reason(str(parent)) is None:
            finished = [old for old in parent.glob("run-*") if not _run_is_alive(old)]
            for old in sorted(finished, key=lambda p: p.stat().st_mtime)[:-KEEP_TEST_RUNS]:
                shutil.rmtree(old, ignore_errors=True)
            config.option.basetemp = tempfile.mkdtemp(prefix=f"run-{os.getpid()}-{_pid_namespace()}-", dir=str(parent))
            return


@pytest.fixture(scope="session", autouse=True)
def private_state_dir(tmp_path_factory):
    """akdiag's state folder (its secret-digest key) for this test run only; the
    subprocesses the tests start inherit it."""
    os.environ["AKDIAG_STATE_DIR"] = str(tmp_path_factory.mktemp("akdiag-state"))
    yield


@pytest.fixture(autouse=True)
def bundles_parse(request):
    """After every test: each bundle folder (one holding manifest.json) that the test
    wrote under its tmp_path has only JSON and YAML files that parse."""
    yield
    if request.node.get_closest_marker("malformed_bundle"):
        return
    tmp_path = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    if tmp_path is None or not Path(tmp_path).is_dir():
        return
    broken = [f"{folder.relative_to(tmp_path)}/{path}: {error}"
              for folder in bundle_folders(tmp_path) for path, error in unparsable_files(folder)]
    assert broken == [], "bundle files that do not parse:\n" + "\n".join(broken)


@pytest.fixture
def host(tmp_path):
    """A built simulated host with no process started yet; stopped after the test.
    Process titles are machine-wide: a test that asserts a process is down or has one PID
    expects no other simulated host of the same catalog to run at that moment."""
    sim = SimulatedHost(tmp_path / "host").build()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def full_host(tmp_path_factory):
    """Every catalog process running, with the demo's two faults.  Module-scoped, so that
    its AK: processes are gone before the next module's tests look for their own."""
    sim = SimulatedHost(tmp_path_factory.mktemp("fullhost")).build().start().break_like_production()
    yield sim
    sim.stop()


def collect_bundle(sim: SimulatedHost, out: Path, fmt: str = "dir", **options) -> tuple:
    """Run a real collection against `sim`; (result, reader over the bundle folder)."""
    out.mkdir(parents=True, exist_ok=True)
    request = CollectRequest(basedir=sim.basedir, basedir_source="test", catalog=load_catalog(sim.catalog_file),
                             output_dir=out, fmt=fmt, timeout=options.pop("timeout", 60),
                             options=CollectOptions(**options))
    result = collect(request)
    return result, BundleReader(result.path) if fmt == "dir" else None


def akdiag(*args, env=None, timeout=120, cwd=None) -> subprocess.CompletedProcess:
    """Run the real command line, as an administrator would."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd)


def expected_by_name(reader: BundleReader) -> dict:
    return {p["name"]: p for p in reader.json("processes.json")["expected"]}
