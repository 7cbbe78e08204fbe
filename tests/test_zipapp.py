"""The single file: akdiag.pyz built once per session (wheels downloaded once into a
folder under the system's temporary folder, keyed by the dependency list), then run
as a host without pip runs it: `python3 -I -S akdiag.pyz collect ...` (no
site-packages, no user site, no PYTHON* variables) with a fresh cache folder."""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from collector import __version__, zipapp, zipapp_main

SEVEN_ZIP = "7z"
PYENV = Path.home() / ".pyenv" / "versions"
COLLECTORS = {"system", "processes", "pidfiles", "ports", "logs", "akd", "config"}


def _pyenv_python(version: str):
    found = sorted(glob.glob(str(PYENV / f"{version}.*" / "bin" / f"python{version}")))
    return found[-1] if found else None


def _python_version(python: str) -> str:
    return subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="session")
def pyz(tmp_path_factory):
    """akdiag.pyz for every target, built with the function the cluster tests call."""
    out = tmp_path_factory.mktemp("pyz") / "akdiag.pyz"
    path = zipapp.build_single_file(out, zipapp.default_wheel_dir())
    assert path == out and path.is_file()
    return path


@pytest.fixture(scope="session")
def build(pyz):
    return zipapp.read_build_manifest(pyz)


def clean_env(tmp_path: Path, cache=None, **extra) -> dict:
    """A host's bare environment: no PYTHONPATH, a home of its own, the cache given."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(tmp_path / "home"),
           "TMPDIR": str(tmp_path / "tmp"), "AKDIAG_STATE_DIR": os.environ["AKDIAG_STATE_DIR"]}
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    if cache is not None:
        env["AKDIAG_CACHE_DIR"] = str(cache)
    env.update(extra)
    return env


def run_pyz(pyz: Path, *args, env: dict, python: str = sys.executable, cwd=None, timeout=180):
    started = time.monotonic()
    done = subprocess.run([python, "-I", "-S", str(pyz), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)
    return done, time.monotonic() - started


def site_of(cache: Path, build: dict, python: str = sys.executable) -> Path:
    tag = f"cp{_python_version(python).replace('.', '')}-{zipapp_main.machine_name()}"
    return cache / f"{build['version']}-{build['build']}" / tag


def collect_with(pyz: Path, host, tmp_path: Path, env: dict, python: str = sys.executable, name: str = "out"):
    out = tmp_path / name
    out.mkdir()
    done, seconds = run_pyz(pyz, "collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file),
                            "--output", str(out), "--quiet", env=env, python=python, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    bundle = Path(done.stdout.strip())
    assert bundle.parent == out and bundle.name.endswith(".7z") and bundle.is_file()
    return bundle, seconds


def check_bundle(bundle: Path, host, target: Path) -> dict:
    tested = subprocess.run([SEVEN_ZIP, "t", str(bundle)], capture_output=True, text=True)
    assert tested.returncode == 0 and "Everything is Ok" in tested.stdout, tested.stdout + tested.stderr
    done = subprocess.run([SEVEN_ZIP, "x", "-y", f"-o{target}", str(bundle)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (root,) = [p for p in target.iterdir() if p.is_dir()]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["tool"]["name"] == "akdiag" and manifest["tool"]["version"] == __version__
    assert manifest["basedir"] == str(host.basedir)
    assert {c["name"] for c in manifest["collectors"]} >= COLLECTORS
    assert all(c["status"] != "failed" for c in manifest["collectors"]), manifest["collectors"]
    html = (root / "summary.html").read_text()          # the report templates were found
    assert 'id="proc-' in html
    return manifest


# --------------------------------------------------------------------------- the file

def test_the_file_holds_every_target_and_is_executable(pyz, build):
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert pyz.stat().st_mode & stat.S_IXUSR
    assert pyz.stat().st_size < 40 * 1024 * 1024
    assert build["version"] == __version__ and len(build["build"]) == 12
    assert set(build["targets"]) == {f"cp{p.replace('.', '')}-{m}" for p in zipapp.PYTHONS for m in zipapp.MACHINES}
    with zipfile.ZipFile(pyz) as archive:
        names = set(archive.namelist())
        assert archive.read("__main__.py") == Path(zipapp_main.__file__).read_bytes()
        for tag, target in build["targets"].items():
            assert set(target["wheels"]) <= names, tag
            assert {"psutil", "py7zr", "click", "jinja2", "markupsafe", "pyyaml", "pymongo", "redis", "pika"} \
                <= set(target["packages"]), tag
            assert "brotli" not in target["packages"]
            assert target["compiled"]["psutil"] == "abi3"
            for wheel in target["wheels"]:
                if not wheel.endswith("-none-any.whl"):
                    assert target["machine"] in wheel, (tag, wheel)
        # redis needs async-timeout below Python 3.11.3: pip's markers (evaluated for the
        # building interpreter) would have missed it.
        assert "async-timeout" in build["targets"]["cp39-x86_64"]["packages"]
        assert "async-timeout" in build["targets"]["cp311-x86_64"]["packages"]
        assert "async-timeout" not in build["targets"]["cp312-x86_64"]["packages"]
        # Python 3.14 has zstd in its standard library (compression.zstd): py7zr asks for
        # backports.zstd below 3.14 only, and that has no 3.14 wheel.
        for machine in zipapp.MACHINES:
            target = build["targets"][f"cp314-{machine}"]
            assert "py7zr" in target["packages"] and "backports-zstd" not in target["packages"]
            assert set(target["compiled"].values()) <= {"cp314", "abi3"}, target["compiled"]
        # Pure-Python fallbacks keep no extension module.
        for wheel in (n for n in names if n.split("/")[-1].split("-")[0] in ("pyyaml", "markupsafe", "pymongo")):
            inner = zipfile.ZipFile(archive.open(wheel))
            assert not [n for n in inner.namelist() if n.endswith(".so")], wheel
        app = zipfile.ZipFile(archive.open(build["app"]))
        assert {"collector/catalog.yaml", "collector/report_templates/summary.html.j2",
                "collector/simulate/fakeproc.py", "collector/cli.py"} <= set(app.namelist())


def test_a_build_with_all_its_wheels_downloaded_is_quick_and_the_same(pyz, build, tmp_path):
    started = time.monotonic()
    again = zipapp.build_single_file(tmp_path / "again.pyz", zipapp.default_wheel_dir())
    assert time.monotonic() - started < 30
    second = zipapp.read_build_manifest(again)
    assert second["targets"] == build["targets"]
    with zipfile.ZipFile(pyz) as one, zipfile.ZipFile(again) as two:
        assert one.namelist() == two.namelist()
        same_app = one.read(build["app"]) == two.read(build["app"])   # unless akdiag's code was edited meanwhile
        for name in one.namelist():
            if name != build["app"] and name != zipapp.MANIFEST:
                assert one.read(name) == two.read(name), name
    if same_app:
        assert second["build"] == build["build"] and again.read_bytes() == pyz.read_bytes()


# --------------------------------------------------------------------------- running it

def test_collect_from_the_single_file_in_a_clean_environment(pyz, build, full_host, tmp_path):
    cache = tmp_path / "cache"
    env = clean_env(tmp_path, cache)
    bundle, first = collect_with(pyz, full_host, tmp_path, env, name="first")
    check_bundle(bundle, full_host, tmp_path / "x1")
    site = site_of(cache, build)
    marker = site / zipapp_main.COMPLETE
    assert marker.is_file() and (site / "collector" / "catalog.yaml").is_file()
    assert json.loads(marker.read_text())["build"] == build["build"]
    assert stat.S_IMODE(site.parent.stat().st_mode) == 0o700
    before = (site.stat().st_ino, marker.stat().st_mtime_ns)

    bundle, second = collect_with(pyz, full_host, tmp_path, env, name="second")
    check_bundle(bundle, full_host, tmp_path / "x2")
    assert (site.stat().st_ino, marker.stat().st_mtime_ns) == before      # not unpacked again
    assert sorted(p.name for p in site.parent.iterdir()) == [site.name]   # no temporary folder left
    print(f"\nsingle file: first collect {first:.2f} s (unpacking), second {second:.2f} s")


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.12", "3.13", "3.14"])
def test_collect_with_other_pythons(pyz, build, full_host, tmp_path, version):
    python = _pyenv_python(version)
    if python is None:
        pytest.skip(f"no pyenv Python {version}")
    cache = tmp_path / "cache"
    bundle, _ = collect_with(pyz, full_host, tmp_path, clean_env(tmp_path, cache), python=python)
    check_bundle(bundle, full_host, tmp_path / "x")
    assert (site_of(cache, build, python) / zipapp_main.COMPLETE).is_file()


def test_encrypted_collect_from_the_single_file(pyz, full_host, tmp_path):
    """AES comes from pycryptodomex's compiled (abi3) wheel."""
    out = tmp_path / "out"
    out.mkdir()
    env = clean_env(tmp_path, tmp_path / "cache", AKDIAG_PASSWORD="correct horse")
    done, _ = run_pyz(pyz, "collect", "--basedir", str(full_host.basedir), "--catalog", str(full_host.catalog_file),
                      "--output", str(out), "--encrypt", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip())
    tested = subprocess.run([SEVEN_ZIP, "t", "-pcorrect horse", str(bundle)], capture_output=True, text=True)
    assert tested.returncode == 0 and "Everything is Ok" in tested.stdout, tested.stdout + tested.stderr


def test_demo_runs_the_simulator_from_the_unpacked_cache(pyz, tmp_path):
    """The simulator starts fakeproc.py as a file: it is one in the cache."""
    out = tmp_path / "out"
    out.mkdir()
    done, _ = run_pyz(pyz, "demo", "--format", "dir", "--quiet", "--output", str(out),
                      env=clean_env(tmp_path, tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((Path(done.stdout.strip()) / "manifest.json").read_text())
    assert {c["name"] for c in manifest["collectors"]} >= COLLECTORS


@pytest.mark.parametrize("version", ["3.8", "3.6", "2.7"])
def test_an_old_python_gets_a_clear_message(pyz, tmp_path, version):
    python = _pyenv_python(version)
    if python is None:
        pytest.skip(f"no pyenv Python {version}")
    done = subprocess.run([python, "-S", str(pyz), "collect"], capture_output=True, text=True,
                          env=clean_env(tmp_path, tmp_path / "cache"))
    assert done.returncode == zipapp_main.EXIT_RUNTIME
    assert f"akdiag needs Python 3.9 or newer; {python} is Python {version}" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "cache").exists()


def test_a_python_without_a_build_gets_a_message_naming_what_is_missing(tmp_path):
    """A file built for CPython 3.9 only, run with this interpreter."""
    if sys.version_info[:2] == (3, 9):
        pytest.skip("this interpreter is the one target")
    out = tmp_path / "only39.pyz"
    done = subprocess.run([sys.executable, "-m", "collector.zipapp", "--output", str(out),
                           "--wheels", str(zipapp.default_wheel_dir()), "--python", "3.9", "--machine", "x86_64",
                           "--machine", "aarch64"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "targets cp39-aarch64 cp39-x86_64" in done.stdout
    done, _ = run_pyz(out, "--version", env=clean_env(tmp_path, tmp_path / "cache"))
    tag = zipapp_main.target_tag()
    assert done.returncode == zipapp_main.EXIT_RUNTIME, done.stderr
    assert f"has no build for CPython {sys.version_info[0]}.{sys.version_info[1]}" in done.stderr
    assert tag in done.stderr and "missing " in done.stderr and "pyppmd" in done.stderr
    assert "psutil" not in done.stderr           # its abi3 wheel is not what is missing
    assert "CPython 3.9 on aarch64, x86_64" in done.stderr


def test_missing_message_for_an_unknown_machine(build):
    message = zipapp_main.missing_message(build, "cp312-ppc64le")
    assert "no build for CPython 3.12 on ppc64le" in message
    assert "psutil" in message and "pycryptodomex" in message and "pyyaml" not in message


def test_default_cache_is_in_home_else_the_temporary_folder(pyz, build, tmp_path):
    env = clean_env(tmp_path)
    done, _ = run_pyz(pyz, "--version", env=env)
    assert done.returncode == 0 and __version__ in done.stdout, done.stderr
    assert (site_of(tmp_path / "home" / ".cache" / "akdiag", build) / zipapp_main.COMPLETE).is_file()

    (tmp_path / "not-a-folder").write_text("")
    env = clean_env(tmp_path, HOME=str(tmp_path / "not-a-folder"))
    done, _ = run_pyz(pyz, "--version", env=env)
    assert done.returncode == 0, done.stderr
    fallback = tmp_path / "tmp" / f"akdiag-{os.getuid()}"
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o700
    assert (site_of(fallback, build) / zipapp_main.COMPLETE).is_file()


def test_a_cache_folder_others_may_write_to_is_refused(pyz, build, tmp_path):
    cache = tmp_path / "cache"
    shared = cache / f"{build['version']}-{build['build']}"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    done, _ = run_pyz(pyz, "--version", env=clean_env(tmp_path, cache))
    assert done.returncode == zipapp_main.EXIT_RUNTIME
    assert "not a private folder" in done.stderr and "AKDIAG_CACHE_DIR" in done.stderr
    assert os.listdir(shared) == []


def test_two_first_runs_at_once_share_one_cache(pyz, build, tmp_path):
    cache = tmp_path / "cache"
    env = clean_env(tmp_path, cache)
    runs = [subprocess.Popen([sys.executable, "-I", "-S", str(pyz), "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0 and __version__ in out, err
    site = site_of(cache, build)
    assert sorted(p.name for p in site.parent.iterdir()) == [site.name]
    assert (site / zipapp_main.COMPLETE).is_file()


def test_bootstrap_checks():
    assert zipapp_main.machine_name("amd64", 8) == "x86_64"
    assert zipapp_main.machine_name("arm64", 8) == "aarch64"
    assert zipapp_main.machine_name("x86_64", 4) == "x86_64 (32-bit Python)"
    assert zipapp_main.target_tag((3, 11), "aarch64", "") == "cp311-aarch64"
    assert zipapp_main.target_tag((3, 13), "x86_64", "t") == "cp313t-x86_64"
    with pytest.raises(zipapp_main.BootstrapError, match="not glibc"):
        zipapp_main.check_libc(lambda: None)
    with pytest.raises(zipapp_main.BootstrapError, match="glibc 2.17 or newer; this system has glibc 2.12"):
        zipapp_main.check_libc(lambda: "glibc 2.12")
    zipapp_main.check_libc(lambda: "glibc 2.36")
    with pytest.raises(zipapp_main.BootstrapError, match="unsafe path"):
        zipapp_main._safe_member("../etc/passwd")


def test_a_cache_root_under_a_folder_others_may_write_to_is_refused(tmp_path):
    uid = os.getuid()
    assert zipapp_main.safe_root(str(tmp_path / "mine" / "akdiag"), uid) == str((tmp_path / "mine" / "akdiag"))
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    with pytest.raises(OSError, match="may be changed by another user"):
        zipapp_main.safe_root(str(open_folder / "akdiag"), uid)
    sticky = tmp_path / "sticky"              # like /tmp: others cannot rename our entries
    sticky.mkdir()
    sticky.chmod(0o1777)
    assert zipapp_main.safe_root(str(sticky / "akdiag"), uid) == str(sticky / "akdiag")
    (tmp_path / "link").symlink_to(tmp_path / "mine")
    assert zipapp_main.safe_root(str(tmp_path / "link" / "akdiag"), uid) == str(tmp_path / "mine" / "akdiag")


def test_dependencies_are_read_from_pyproject_without_tomllib_too():
    """Python 3.9 and 3.10 have no tomllib: the builder reads the array itself."""
    text = (zipapp.PACKAGE_ROOT.parent / "pyproject.toml").read_text()
    parsed = zipapp._pyproject_dependencies(text, use_tomllib=False)
    assert "psutil>=5.9" in parsed and "py7zr>=0.20" in parsed
    if sys.version_info >= (3, 11):
        assert parsed == zipapp._pyproject_dependencies(text)


def _tiny_wheel(folder: Path, name: str, requires=()) -> None:
    """A pure-Python wheel named `name` 1.0 whose metadata asks for `requires`."""
    dist_info = f"{name}-1.0.dist-info"
    files = {f"{name}.py": b"",
             f"{dist_info}/METADATA": "\n".join(["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
                                                + [f"Requires-Dist: {r}" for r in requires]).encode() + b"\n",
             f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist_info}/RECORD"] = zipapp._record(files, f"{dist_info}/RECORD")
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)


@pytest.mark.parametrize("python, wanted, unwanted", [("3.14", "akdiagprobe_new", "akdiagprobe_old"),
                                                      ("3.13", "akdiagprobe_old", "akdiagprobe_new")])
def test_pip_evaluates_markers_for_the_target_not_the_building_python(tmp_path, python, wanted, unwanted):
    """Like py7zr's `backports.zstd; python_version < "3.14"`: pip running on this
    interpreter must judge the marker for the target, or a 3.14 build asks for a
    distribution that has no 3.14 wheel.  Local wheels only (--no-index)."""
    index = tmp_path / "index"
    index.mkdir()
    _tiny_wheel(index, "akdiagprobe", ['akdiagprobe_old; python_version < "3.14"',
                                       'akdiagprobe_new; python_version >= "3.14"'])
    _tiny_wheel(index, "akdiagprobe_old")
    _tiny_wheel(index, "akdiagprobe_new")
    dest = tmp_path / "dest"
    target = zipapp.Target(python, "x86_64")
    done = subprocess.run(
        [sys.executable, "-c", zipapp._PIP_WITH_TARGET_MARKERS, json.dumps(target.marker_environments()[0]),
         "download", "--no-index", "--find-links", str(index), "--quiet", "--dest", str(dest),
         *target.pip_options(), "akdiagprobe"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = sorted(p.name.split("-")[0] for p in dest.glob("*.whl"))
    assert got == sorted(["akdiagprobe", wanted]), (got, unwanted)


def test_the_single_file_needs_no_root(pyz, tmp_path):
    """As the user nobody, with its own empty home: the wheels unpack under ~/.cache, the
    host's processes are found, and the bundle is written; nothing needs root."""
    import pwd
    import shutil
    import tempfile

    from collector.simulate import SimulatedHost

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv(1) to run the single file as the user nobody")
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="akdiag-noroot-"))  # pytest's folders are closed to others
    try:
        folder.chmod(0o755)
        shutil.copy(pyz, folder / "akdiag.pyz")
        (folder / "akdiag.pyz").chmod(0o755)
        home, out = folder / "home", folder / "out"
        for path in (home, out):
            path.mkdir()
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home),
               "AKDIAG_STATE_DIR": str(home / "state")}
        with SimulatedHost(folder / "host") as host:
            host.start(["api", "procworkflow"])
            done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   sys.executable, "-I", "-S", str(folder / "akdiag.pyz"), "collect",
                                   "--basedir", str(host.basedir), "--catalog", str(host.catalog_file),
                                   "--output", str(out), "--format", "dir", "--quiet"],
                                  capture_output=True, text=True, env=env, cwd="/", timeout=180)
            assert done.returncode == 0, done.stdout + done.stderr
            bundle = Path(done.stdout.strip().splitlines()[-1])
            assert bundle.parent == out and bundle.stat().st_uid == nobody.pw_uid
            expected = {p["name"]: p for p in json.loads((bundle / "processes.json").read_text())["expected"]}
            assert expected["api"]["status"] == "running" and expected["procworkflow"]["status"] == "running"
            assert 'id="proc-' in (bundle / "summary.html").read_text()
        caches = list((home / ".cache" / "akdiag").glob("*/*/" + zipapp_main.COMPLETE))
        assert len(caches) == 1 and caches[0].stat().st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- hardened hosts

def _in_mount_namespace(script: str, env: dict, timeout=300) -> subprocess.CompletedProcess:
    """`script` (sh) in a private mount namespace: its mounts vanish with it."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
                          capture_output=True, text=True, env=env, timeout=timeout)


def _hide_under_tmpfs(folder: str, options: str, keep: Path) -> str:
    """Shell lines mounting a fresh tmpfs (`options`) over `folder`, then putting the
    pytest folder `keep` (if it lived there) back at its path, from the real disk."""
    lines = f"mount -t tmpfs -o {options},mode=1777 tmpfs {folder}\n"
    if str(keep).startswith(folder.rstrip("/") + "/"):
        lines += f"mkdir -p {keep}\nmount --bind /mnt/keep {keep}\n"
    return lines


def _saved(keep: Path) -> str:
    return f"mount -t tmpfs tmpfs /mnt\nmkdir /mnt/keep\nmount --bind {keep} /mnt/keep\n"


def test_a_noexec_tmp_is_passed_over_for_a_place_where_code_loads(pyz, build, host, tmp_path, tmp_path_factory):
    """/tmp and /dev/shm mounted noexec and no usable home: the cache goes to /var/tmp,
    nothing is copied into the noexec places, and psutil loads (the processes are read)."""
    host.start(["api"])
    keep = tmp_path_factory.getbasetemp().resolve()
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "home-file").write_text("")
    env = clean_env(tmp_path, HOME=str(tmp_path / "home-file"))
    del env["TMPDIR"]
    command = " ".join(["exec", sys.executable, "-I", "-S", str(pyz), "collect", "--basedir", str(host.basedir),
                        "--catalog", str(host.catalog_file), "--output", str(out), "--format", "dir",
                        "--quiet"])
    script = (_saved(keep) + _hide_under_tmpfs("/tmp", "noexec", keep) + _hide_under_tmpfs("/dev/shm", "noexec", keep)
              + _hide_under_tmpfs("/var/tmp", "exec", keep)
              + "set +e\n(" + command + ")\nstatus=$?\n"
              + "echo \"tmp: $(ls -A /tmp | grep -v pytest-of | tr '\\n' ' ')\"\n"
              + "echo \"shm: $(ls -A /dev/shm | tr '\\n' ' ')\"\n"
              + f"test -f /var/tmp/akdiag-{os.geteuid()}/{build['version']}-{build['build']}/*/{zipapp_main.COMPLETE}"
              + " && echo cache-in-var-tmp\nexit $status\n")
    done = _in_mount_namespace(script, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    lines = done.stdout.splitlines()
    assert "cache-in-var-tmp" in lines and "tmp: " in lines and "shm: " in lines, done.stdout
    bundle = Path(lines[0])
    assert bundle.parent == out
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {c["name"]: c["status"] for c in manifest["collectors"]}["processes"] == "ok", manifest["collectors"]
    expected = {p["name"]: p for p in json.loads((bundle / "processes.json").read_text())["expected"]}
    assert expected["api"]["status"] == "running"


def test_no_place_where_code_loads_gives_exit_4_naming_every_place(pyz, tmp_path):
    """Read-only /tmp and /var/tmp, noexec /dev/shm, a home that cannot be created, the
    .pyz in a read-only folder: exit 4 and every place tried with its reason; no traceback."""
    keep = tmp_path.resolve()
    folder = keep / "ro"
    folder.mkdir()
    shutil.copy(pyz, folder / "akdiag.pyz")
    env = clean_env(tmp_path, HOME="/var/tmp/home", XDG_RUNTIME_DIR="/tmp/run-0")
    del env["TMPDIR"]
    script = (_saved(keep) + _hide_under_tmpfs("/tmp", "rw", keep) + "mount -o remount,ro /tmp\n"
              + _hide_under_tmpfs("/var/tmp", "ro", keep) + _hide_under_tmpfs("/dev/shm", "noexec", keep)
              + f"mount --bind {folder} {folder}\nmount -o remount,bind,ro {folder}\n"
              + "set +e\n(" + f"exec {sys.executable} -I -S {folder}/akdiag.pyz collect --quiet" + ")\nstatus=$?\n"
              + "echo \"shm: $(ls -A /dev/shm | tr '\\n' ' ')\"\nexit $status\n")
    done = _in_mount_namespace(script, env)
    assert done.returncode == zipapp_main.EXIT_RUNTIME, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "shm: " in done.stdout.splitlines()
    message = done.stderr
    assert message.startswith("akdiag: error: no cache folder where akdiag's compiled dependencies"), message
    uid = os.geteuid()
    for place, reason in [("/var/tmp/home/.cache/akdiag", "Read-only file system"),
                          ("/tmp/run-0/akdiag", "Read-only file system"),
                          (f"/tmp/akdiag-{uid}", "Read-only file system"),
                          (f"/dev/shm/akdiag-{uid}", "its file system is mounted noexec"),
                          (f"/var/tmp/akdiag-{uid}", "Read-only file system"),
                          (f"{folder}/.akdiag-cache-{uid}", "Read-only file system")]:
        assert f"{place}: {reason}" in message, (place, message)
    print("\n" + message)
    assert "AKDIAG_CACHE_DIR" in message


def test_an_explicit_cache_on_a_noexec_mount_gives_way(pyz, build, tmp_path, tmp_path_factory):
    """As a cluster host runs it: AKDIAG_CACHE_DIR under a noexec /tmp. The run goes on
    from the next place and says where it went."""
    keep = tmp_path_factory.getbasetemp().resolve()
    env = clean_env(tmp_path, AKDIAG_CACHE_DIR="/tmp/run/cache")
    del env["TMPDIR"]
    script = (_saved(keep) + _hide_under_tmpfs("/tmp", "noexec", keep)
              + f"exec {sys.executable} -I -S {pyz} --version\n")
    done = _in_mount_namespace(script, env)
    assert done.returncode == 0 and __version__ in done.stdout, done.stdout + done.stderr
    assert "/tmp/run/cache: its file system is mounted noexec" in done.stderr
    home_cache = tmp_path / "home" / ".cache" / "akdiag"
    assert f"unpacked into {home_cache} instead" in done.stderr
    assert (site_of(home_cache, build) / zipapp_main.COMPLETE).is_file()


def test_loading_the_compiled_library_is_the_real_check(tmp_path):
    """Past the mount flags: psutil's library copied onto a noexec tmpfs fails to load
    there (dlopen), and loads from an ordinary folder."""
    import psutil

    library = sorted(Path(psutil.__file__).parent.glob("_psutil_*.so"))[0]
    (tmp_path / "ok" / "psutil").mkdir(parents=True)
    shutil.copy(library, tmp_path / "ok" / "psutil")
    zipapp_main.check_native_code(str(tmp_path / "ok"))
    mounted = tmp_path / "noexec"
    mounted.mkdir()
    check = ("import sys; sys.path.insert(0, sys.argv[1]); from collector import zipapp_main as z\n"
             "try:\n    z.check_native_code(sys.argv[2])\nexcept z.NativeCodeError as exc:\n    print(exc)\n"
             "else:\n    print('loaded')\n")
    script = (f"mount -t tmpfs -o noexec tmpfs {mounted}\nmkdir {mounted}/psutil\ncp {library} {mounted}/psutil/\n"
              f"exec {sys.executable} -c \"$CHECK\" {zipapp.PACKAGE_ROOT.parent} {mounted}\n")
    done = _in_mount_namespace(script, dict(os.environ, CHECK=check))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("compiled code cannot load from it:"), done.stdout
    assert "failed to map segment" in done.stdout or "not permitted" in done.stdout, done.stdout
