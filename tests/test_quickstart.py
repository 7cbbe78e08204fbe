"""The README's Quick start, run as written: the lines of its block marked `quickstart`
are read from README.md (so the README cannot drift from what is tested) and run by
/bin/sh with Debian's /usr/bin/python3 first on the PATH, in a copy of this checkout,
once as root and once as `nobody` with a home of its own.  pip installs akdiag from
the copy and its dependencies from the package index: slow (minutes), and marked so."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from collector.zipapp_wheels import runtime_requirements
from conftest import REPO
from pipindex import index_or_skip

pytestmark = pytest.mark.install

SYSTEM_PYTHON = "/usr/bin/python3"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's, no pyenv
NOBODY = 65534
MARK = re.compile(r"<!-- quickstart:[^>]*-->\s*\n```sh\n(.*?)\n```", re.S)


def quickstart_lines() -> list:
    blocks = MARK.findall((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) == 1, "README.md needs exactly one block marked `<!-- quickstart: ... -->`"
    return [line for line in blocks[0].splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_marked_block_is_the_whole_install():
    lines = quickstart_lines()
    assert lines[0].startswith("python3 -m venv ")
    assert any(" install ." in line for line in lines)
    assert lines[-2].endswith("akdiag --version") and re.search(r"akdiag demo\b", lines[-1]), lines


def _system_python_or_skip():
    """Debian's own Python (without python3-venv the Quick start itself fails, saying so)."""
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"no {SYSTEM_PYTHON}")


def pip_settings() -> dict:
    """The pip configuration of whoever runs the tests, as PIP_* variables: the temporary
    HOME (and `nobody`) would not find a user's pip.conf (e.g. an index mirror)."""
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
    settings = {}
    for line in done.stdout.splitlines():
        found = re.fullmatch(r"(global|install)\.([\w-]+)=('?)(.*)\3", line.strip())
        if found:
            settings["PIP_" + found.group(2).upper().replace("-", "_")] = found.group(4)
    return settings


def _copy_checkout(dest: Path) -> Path:
    """The checkout as a user has it, without this run's litter."""
    tree = dest / "akdiag"
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(".git", ".pytest-tmp", "__pycache__", "*.egg-info",
                                                                "build", "dist", ".venv", ".hypothesis"))
    return tree


def _chown_tree(root: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(root):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)


class Quickstart:
    """The marked block run by /bin/sh in `workdir` (a copy of the checkout, a home), as
    the test's user (uid None: root in CI) or as `uid`; output goes to files, so two runs
    can go at once."""

    def __init__(self, workdir: Path, uid):
        self.workdir, self.uid = workdir, uid
        self.home, self.tree = workdir / "home", _copy_checkout(workdir)
        for folder in (self.home, workdir / "tmp"):
            folder.mkdir()
        (workdir / "state").mkdir(mode=0o700)
        env = {"PATH": PATH, "HOME": str(self.home), "LANG": "C.UTF-8", "TMPDIR": str(workdir / "tmp")}
        # This machine's way to the package index (a proxy, pip's settings) goes through.
        env.update(pip_settings())
        env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_") or k.lower().endswith("_proxy")})
        if uid is None:  # root's state folder would be /var/lib/akdiag: keep the host clean
            env["AKDIAG_STATE_DIR"] = str(workdir / "state")
        else:
            env.pop("PIP_CACHE_DIR", None)  # root's cache is not for nobody to read
            _chown_tree(workdir, uid)
        self.env = env
        self.command = ["/bin/sh", "-c", "set -eux\n" + "\n".join(quickstart_lines()) + "\n"]
        if uid is not None:
            self.command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *self.command]
        self.process = None

    def start(self) -> None:
        with open(self.workdir / "stdout", "wb") as out, open(self.workdir / "stderr", "wb") as err:
            self.process = subprocess.Popen(self.command, cwd=str(self.tree), env=self.env, stdout=out, stderr=err,
                                            start_new_session=True)

    def wait(self, timeout: float) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # pip and the demo too, not only the shell
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.stdout = (self.workdir / "stdout").read_text(errors="replace")
        self.stderr = (self.workdir / "stderr").read_text(errors="replace")


@pytest.fixture(scope="module")
def quickstarts(tmp_path_factory):
    """The Quick start as root and as `nobody`, both at once (pip spends much of its time
    waiting for the index).  `nobody` works in a folder of its own under /tmp: the
    test run's own folders are private to root."""
    _system_python_or_skip()
    index_or_skip(runtime_requirements())
    runs = {"root": Quickstart(tmp_path_factory.mktemp("quickstart"), None)}
    nobody_dir = None
    if os.geteuid() == 0 and shutil.which("setpriv"):
        nobody_dir = Path(tempfile.mkdtemp(prefix="akdiag-quickstart-"))
        runs["nobody"] = Quickstart(nobody_dir, NOBODY)
    try:
        for run in runs.values():
            run.start()
        for run in runs.values():
            run.wait(timeout=1200)
        yield runs
    finally:
        if nobody_dir is not None:
            shutil.rmtree(nobody_dir, ignore_errors=True)


def check_installed(run: Quickstart) -> None:
    assert run.process.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    venv = run.home / "akdiag-venv"
    config = (venv / "pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", config, re.M), config  # Debian's python3, not another one
    assert re.search(r"^akdiag, version \d+\.\d+", run.stdout, re.M), run.stdout
    (site,) = (venv / "lib").glob("python3.*/site-packages")
    assert (site / "collector" / "report_templates" / "summary.html.j2").is_file()  # installed, not linked
    bundles = list(run.tree.glob("akdiag-*.7z"))
    assert len(bundles) == 1, (sorted(p.name for p in run.tree.iterdir()), run.stdout[-2000:])
    assert bundles[0].stat().st_size > 1000 and bundles[0].name in run.stdout
    assert bundles[0].stat().st_uid == (os.geteuid() if run.uid is None else run.uid)
    system = subprocess.run([SYSTEM_PYTHON, "-c", "import collector"], cwd="/", env={"PATH": PATH},
                            capture_output=True, text=True)
    assert system.returncode != 0, "akdiag went into the system's Python, not the venv"


def test_quickstart_as_root(quickstarts):
    check_installed(quickstarts["root"])


def test_quickstart_as_a_normal_user(quickstarts):
    """As `nobody` (no login, no home of its own: HOME is a folder it owns), in a
    folder only it can write to."""
    if "nobody" not in quickstarts:
        pytest.skip("needs root and setpriv to become nobody")
    check_installed(quickstarts["nobody"])
