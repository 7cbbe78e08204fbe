"""The source distribution: built with the build backend pyproject.toml names (in a
fresh venv holding only that backend, as pip's isolated build does, from a copy of
the checkout), it holds every
file the repository tracks, its metadata names the license in the PEP 639 form, and
a test runs from the unpacked tree."""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO
from pipindex import index_or_skip

pytestmark = pytest.mark.install

# What the suite needs from the sdist beyond the package: pytest's shared fixtures, the
# test servers' data, the benchmarks, the templates, the CI script and the documents.
NEEDED = ("tests/conftest.py", "tests/servers/__init__.py", "tests/servers/ssdb-1.9.8-replies.txt",
          "tests/privacy/known_leaks.json", "tests/hostile/test_bounds.py", "bench/reference_host.py",
          "report_templates/summary.html.j2", "report_templates/style.css", "collector/catalog.yaml",
          ".ci/run", ".ci/services.sh", "LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml")
CLASSIFIERS = ("Programming Language :: Python :: 3.9", "Programming Language :: Python :: 3.13",
               "Operating System :: POSIX :: Linux", "Topic :: System :: Monitoring",
               "Topic :: System :: Systems Administration", "Environment :: Console",
               "Intended Audience :: System Administrators")


def build_requires() -> list:
    """[build-system] requires, read from pyproject.toml (no tomllib before Python 3.11)."""
    table = re.search(r"^\[build-system\]$(.*?)(?=^\[|\Z)", (REPO / "pyproject.toml").read_text(), re.M | re.S)
    block = re.search(r"^requires\s*=\s*\[(.*?)\]", table.group(1), re.M | re.S)
    return re.findall(r'"([^"]+)"', block.group(1))


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    index_or_skip(build_requires())
    work = tmp_path_factory.mktemp("sdist")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    done = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *build_requires()],
                          capture_output=True, text=True, timeout=600)  # from the package index
    assert done.returncode == 0, done.stdout + done.stderr
    # Built from a copy, so that the build's egg-info folder never lands in the checkout.
    source = work / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".pytest-tmp", "__pycache__", "*.egg-info",
                                                                  "build", "dist", ".hypothesis", ".venv"))
    out = work / "dist"
    script = "import sys\nfrom setuptools import build_meta\nprint(build_meta.build_sdist(sys.argv[1]))\n"
    built = subprocess.run([python, "-c", script, str(out)], cwd=str(source), capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    name = built.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"akdiag-[0-9][^/]*\.tar\.gz", name), name
    return out / name


def members(sdist: Path) -> dict:
    """The sdist's files by their path inside the project folder."""
    with tarfile.open(sdist) as tar:
        return {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile() and "/" in m.name}


def tracked_files() -> list:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (e.g. run from an unpacked sdist)")
    done = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, timeout=60)
    if done.returncode != 0:
        pytest.skip("not a git checkout (e.g. run from an unpacked sdist)")
    return [n for n in done.stdout.decode().split("\0") if n and n != ".gitignore"]


def test_sdist_holds_every_tracked_file_and_no_litter(sdist):
    names = members(sdist)
    for needed in NEEDED:
        assert needed in names, needed
    missing = [n for n in tracked_files() if n not in names]
    assert missing == [], f"tracked files the sdist leaves out (MANIFEST.in): {missing}"
    litter = [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(".pytest-tmp/")]
    assert litter == []


def test_sdist_metadata_names_the_license_and_classifiers(sdist):
    with tarfile.open(sdist) as tar:
        (pkg_info,) = [m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")]
        meta = email.parser.Parser().parsestr(tar.extractfile(pkg_info).read().decode("utf-8"))
        (license_file,) = [m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/LICENSE")]
        license_text = tar.extractfile(license_file).read().decode("utf-8")
    assert tuple(int(p) for p in meta["Metadata-Version"].split(".")) >= (2, 4), meta["Metadata-Version"]
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["License"] is None  # the old free-text field is gone with PEP 639
    assert license_text.startswith("MIT License") and "The akdiag developers" in license_text
    assert license_text == (REPO / "LICENSE").read_text(encoding="utf-8")
    classifiers = meta.get_all("Classifier")
    for wanted in CLASSIFIERS:
        assert wanted in classifiers, wanted
    assert not any(c.startswith("License ::") for c in classifiers)  # PEP 639: the expression says it
    assert meta["Author"] == "The akdiag developers"
    assert meta["Requires-Python"] == ">=3.9"
    assert meta["Name"] == "akdiag" and meta.get_all("Requires-Dist")


def test_a_test_runs_from_the_unpacked_sdist(sdist, tmp_path):
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (tree,) = tmp_path.iterdir()
    assert (tree / "tests" / "conftest.py").is_file()
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layers.py"],
                          cwd=str(tree), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", done.stdout) and " failed" not in done.stdout, done.stdout[-2000:]
    where = subprocess.run([sys.executable, "-c", "import collector; print(collector.__file__)"], cwd=str(tree),
                           env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(tree / "collector" / "__init__.py")  # the unpacked tree's code, not the checkout's
