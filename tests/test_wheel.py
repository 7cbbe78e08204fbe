"""The wheel ships the report templates and the catalog, and an installed akdiag
finds them at run time (not only in a source checkout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from collector.zipapp_wheels import runtime_requirements
from conftest import REPO, collect_bundle
from pipindex import index_or_skip

# pip builds the wheel with setuptools from the package index and installs its dependencies from it
pytestmark = pytest.mark.install


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built as `pip install .` builds: in an isolated environment with the setuptools that
    # pyproject.toml asks for (from the package index), not this interpreter's own.
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-w", str(out), "-q"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("akdiag-*.whl")
    return built


def test_wheel_holds_templates_catalog_and_simulator(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("collector/report_templates/summary.html.j2", "collector/report_templates/style.css",
                 "collector/report_templates/diff.html.j2", "collector/catalog.yaml",
                 "collector/simulate/fakeproc.py", "collector/cli.py"):
        assert name in names, name
    assert not any(n.startswith(("tests/", "bench/", "report_templates/")) for n in names)
    assert "akdiag-%s.dist-info/licenses/LICENSE" % wheel.name.split("-")[1] in names
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "collector").rglob("*.py")}
    assert modules - names == set(), "modules the wheel leaves out (pyproject's packages list)"


def test_installed_wheel_renders_a_report(wheel, host, tmp_path):
    index_or_skip(runtime_requirements())
    venv = tmp_path / "venv"  # a fresh one: nothing of this interpreter's site-packages
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # Without PYTHONPATH: a checkout on it that holds the build's akdiag.egg-info looks to
    # pip like akdiag already installed, and the wheel would not be.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                          capture_output=True, text=True, timeout=600, env=env)  # its dependencies from the index
    assert done.returncode == 0, done.stdout + done.stderr
    _result, reader = collect_bundle(host, tmp_path / "bundle", only=("system", "processes"))
    script = (
        "import json, sys, collector, collector.report as r\n"
        "from collector.bundle.reader import BundleReader\n"
        "html = r.render_bundle(BundleReader(sys.argv[1]))\n"
        "print(json.dumps({'package': collector.__file__, 'templates': str(r.templates_dir()),"
        " 'has_table': 'id=\"proc-api\"' in html}))\n"
    )
    ran = subprocess.run([str(python), "-c", script, str(reader.root)], capture_output=True, text=True,
                         cwd=str(tmp_path), timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, ran.stderr
    facts = json.loads(ran.stdout)
    assert facts["package"].startswith(str(venv)), facts  # the installed wheel, not the checkout
    assert facts["templates"].startswith(str(venv)) and facts["has_table"]
    akdiag = venv / "bin" / "akdiag"
    version = subprocess.run([str(akdiag), "--version"], capture_output=True, text=True, cwd=str(tmp_path))
    assert version.returncode == 0 and "akdiag" in version.stdout
