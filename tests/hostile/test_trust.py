"""The trust boundary, against a local user who wants root's akdiag to run their code or
copy files from outside BASEDIR: real users (nobody), real ownership and modes, real
symlinks and a real race.  Needs root (CI runs as root)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from collector.basedir import resolve_basedir
from collector.bundle import archive
from collector.bundle.writer import BundleWriter
from collector.catalog import load_catalog
from collector.collectors import akd, logs
from collector.context import CollectOptions, Context, Deadline
from collector.redact import Scrubber
from conftest import REPO, akdiag, collect_bundle

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root, the user nobody and setpriv(1)")

MARKER = "AKDIAG-TRUST-MARKER-7f3e9c1d"


def nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


@pytest.fixture
def shared_tmp():
    """A folder other users can reach (pytest's own folders are closed to them)."""
    folder = Path(tempfile.mkdtemp(prefix="akdiag-hostile-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_nobody(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)


def chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for item in [path, *path.rglob("*")]:
        os.lchown(item, user.pw_uid, user.pw_gid)


def bundle_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


def outside_marker(tmp_path: Path) -> Path:
    """A root-only file outside BASEDIR holding MARKER, as /etc/shadow would be."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    secret = outside / "shadow.log"
    secret.write_text(f"root:{MARKER}:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    return secret


def logs_ctx(basedir: Path, bundle: Path) -> Context:
    bundle.mkdir(parents=True, exist_ok=True)
    return Context(basedir=basedir, basedir_source="test", catalog=load_catalog(), deadline=Deadline(30),
                   writer=BundleWriter(bundle, Scrubber()).for_collector("logs"), options=CollectOptions())


# -- executing akd, and BASEDIR from a running process -----------------------------------------


def test_an_unprivileged_users_ak_process_and_akd_are_never_trusted(shared_tmp, tmp_path, monkeypatch):
    user = nobody()
    evil = shared_tmp / "evil"
    (evil / "ak" / "bin").mkdir(parents=True)
    shutil.copy("/bin/sleep", evil / "ak" / "bin" / "api")
    ran = shared_tmp / "akd-ran"
    (evil / "akd").write_text(f"#!/bin/sh\ntouch {ran}\necho 'AK:api 1 running'\n")
    (evil / "akd").chmod(0o755)
    chown_tree(evil, user)
    proc = as_nobody("bash", "-c", f"exec -a AK:api {evil}/ak/bin/api 300")
    try:
        deadline = time.monotonic() + 10
        while not _titled_ak(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _titled_ak(proc.pid), "the fake AK: process did not start"
        monkeypatch.delenv("AKDIAG_BASEDIR", raising=False)
        found, source = resolve_basedir(None)
        assert found != evil
        assert source.startswith("default; refused running AK: process(es)")
        assert f"{evil}/ak/bin/api is owned by uid {user.pw_uid}" in source
        out = tmp_path / "out"
        out.mkdir()
        done = akdiag("collect", "--output", str(out), "--format", "dir", "--quiet")
        assert done.returncode == 0, done.stderr
        bundle = Path(done.stdout.strip().splitlines()[-1])
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["basedir"] != str(evil) and "refused" in manifest["basedir_source"]
        # named explicitly, the tree is read but its akd is still not run
        done = akdiag("collect", "--basedir", str(evil), "--output", str(out), "--format", "dir", "--quiet")
        assert done.returncode == 0, done.stderr
        bundle = Path(done.stdout.strip().splitlines()[-1])
        record = json.loads((bundle / "commands" / "akd-processes.json").read_text())
        assert record["error"].startswith("not run: ") and "owned by uid" in record["error"]
        assert record["exit_code"] is None
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert next(c for c in manifest["collectors"] if c["name"] == "akd")["status"] == "partial"
        assert not ran.exists(), "root ran a user's akd"
    finally:
        proc.kill()
        proc.wait()


def _titled_ak(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"AK:api")
    except OSError:
        return False


def test_a_root_owned_layout_is_still_detected_and_its_akd_run(host, monkeypatch):
    host.start(["api"])
    monkeypatch.delenv("AKDIAG_BASEDIR", raising=False)
    assert resolve_basedir(None) == (host.basedir, "running AK: process")
    assert akd.execution_problem(str(host.basedir / "akd")) is None
    # a folder on the way that its group may write to is not trusted
    (host.basedir / "ak").chmod(0o775)
    found, source = resolve_basedir(None)
    assert found != host.basedir and f"{host.basedir}/ak is writable by its group" in source
    (host.basedir / "ak").chmod(0o755)
    (host.basedir / "akd").chmod(0o757)
    assert "writable by others" in akd.execution_problem(str(host.basedir / "akd"))
    found, source = resolve_basedir(None)
    assert found != host.basedir and "akd is not trusted" in source


def test_a_sticky_shared_folder_is_not_trusted(shared_tmp, tmp_path):
    sticky = shared_tmp / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "akd").write_text("#!/bin/sh\nexit 0\n")
    (sticky / "akd").chmod(0o755)
    assert "writable by others (mode 1777)" in akd.execution_problem(str(sticky / "akd"))
    # a trusted akd reached through a link in a shared folder: the link can be swapped
    good = tmp_path / "platform"
    good.mkdir()
    (good / "akd").write_text("#!/bin/sh\nexit 0\n")
    (good / "akd").chmod(0o755)
    assert akd.execution_problem(str(good / "akd")) is None
    os.symlink(good, sticky / "platform")
    assert "writable by others (mode 1777)" in akd.execution_problem(str(sticky / "platform" / "akd"))


# -- files outside BASEDIR ---------------------------------------------------------------------


def test_a_logs_folder_that_links_outside_basedir_is_not_read(host, tmp_path):
    secret = outside_marker(tmp_path)
    shutil.rmtree(host.basedir / "logs")
    os.symlink(secret.parent, host.basedir / "logs")
    result, reader = collect_bundle(host, tmp_path / "out")
    assert MARKER not in bundle_text(result.path)
    index = reader.json("logs/index.json")
    assert index["files"] == [] and index["exists"] is False
    assert any("points outside BASEDIR" in e and str(secret.parent) in e for e in index["errors"])


def test_a_logs_folder_that_links_inside_basedir_is_read(host, tmp_path):
    shutil.move(str(host.basedir / "logs"), str(host.basedir / "var-logs"))
    os.symlink("var-logs", host.basedir / "logs")
    result, reader = collect_bundle(host, tmp_path / "out")
    index = reader.json("logs/index.json")
    assert index["root_target"] == str(host.basedir / "var-logs")
    assert any(e["path"] == "api.log" and e["state"] == "tailed" for e in index["files"])


def test_main_json_linking_outside_basedir_is_refused_inside_followed(host, tmp_path):
    secret = tmp_path / "outside" / "main.json"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"NOTE": MARKER}))
    main = host.basedir / "config" / "main.json"
    inside = host.basedir / "config" / "real-main.json"
    main.rename(inside)
    os.symlink(secret, main)
    result, reader = collect_bundle(host, tmp_path / "out")
    assert MARKER not in bundle_text(result.path)
    entry = next(f for f in reader.json("config/index.json")["files"] if f["bundle_path"] is None)
    assert f"points outside BASEDIR: {secret}" in entry["error"]
    datastores = json.dumps(reader.json("datastores.json"))
    assert "points outside BASEDIR" in datastores
    main.unlink()
    os.symlink("real-main.json", main)
    result, reader = collect_bundle(host, tmp_path / "out2")
    files = reader.json("config/index.json")["files"]
    assert files[0]["bundle_path"] == "config/main.json" and files[0]["valid_json"] is True


def test_a_folder_swapped_for_a_link_after_listing_is_not_followed(host, tmp_path):
    """The race at its widest: listed as a folder, a symlink when its files are opened."""
    secret = outside_marker(tmp_path)
    sub = host.basedir / "logs" / "sub"
    sub.mkdir()
    (sub / "shadow.log").write_text("harmless\n")
    ctx = logs_ctx(host.basedir, tmp_path / "bundle")
    listing = logs.list_logs(host.basedir, 6, ctx.deadline)
    try:
        sub.rename(host.basedir / "held")
        os.symlink(secret.parent, sub)
        errors = logs.take_tails(listing, ctx.writer, ctx.options, ctx.deadline)
    finally:
        listing.close()
    entry = next(e for e in listing.entries if e["path"] == "sub/shadow.log")
    assert entry["state"] == "error" and entry["error"] == logs.REASON_BECAME_LINK
    assert any("sub/shadow.log" in e for e in errors)
    assert MARKER not in bundle_text(tmp_path / "bundle")


SWAPPER = """
import ctypes, os, sys
sub, spare = (os.fsencode(p) for p in sys.argv[1:3])
libc = ctypes.CDLL(None, use_errno=True)
while True:  # renameat2(RENAME_EXCHANGE): the folder and the symlink trade places atomically
    if libc.renameat2(-100, sub, -100, spare, 2) != 0:
        sys.exit(f"renameat2: {os.strerror(ctypes.get_errno())}")
"""


def test_the_sub_folder_swap_race_is_never_won(host, tmp_path):
    """Another process swaps logs/sub between the real folder and a symlink to a folder
    outside BASEDIR holding the same names, atomically and as fast as it can, during 60
    collections."""
    secret = outside_marker(tmp_path)
    sub = host.basedir / "logs" / "sub"
    sub.mkdir()
    for n in range(20):
        (sub / f"app{n}.log").write_text("harmless\n" * 50)
        (secret.parent / f"app{n}.log").write_text(f"{MARKER}\n")
    spare = host.basedir / "spare"
    os.symlink(secret.parent, spare)
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(sub), str(spare)])
    tailed_inside = refused = 0
    try:
        for attempt in range(60):
            bundle = tmp_path / f"b{attempt}"
            index = logs.collect(logs_ctx(host.basedir, bundle))
            assert MARKER not in bundle_text(bundle), f"attempt {attempt}: a file outside BASEDIR was copied"
            tailed_inside += sum(1 for e in index["files"] if e["path"].startswith("sub/") and e["tail"])
            refused += sum(1 for e in index["files"] if e["path"] == "sub" and e["type"] == "symlink"
                           or e["error"] == logs.REASON_BECAME_LINK)
    finally:
        swapper.kill()
        swapper.wait()
    assert swapper.returncode == -9, "the swapping process stopped on its own"
    assert tailed_inside > 0, "the real folder's logs were never read: the test proves nothing"
    assert refused > 0, f"the swap was never seen: the race was not exercised ({swapper.returncode})"


# -- files akdiag creates in shared folders ----------------------------------------------------


def test_a_planted_mapping_symlink_never_touches_its_victim(tmp_path, shared_tmp):
    victim = tmp_path / "victim.conf"
    victim.write_text("precious root-owned content\n")
    victim.chmod(0o644)
    out = shared_tmp / "shared-out"
    out.mkdir()
    out.chmod(0o1777)
    bundle = out / "akdiag-host-20260101T000000Z.7z"
    planted = out / (bundle.name + ".mapping.json")
    os.symlink(victim, planted)
    os.lchown(planted, nobody().pw_uid, nobody().pw_gid)
    written = archive.write_mapping_beside(bundle, {"email-0123456789ab": "someone@example.com"})
    assert written == out / (bundle.name + ".mapping-2.json")
    assert json.loads(written.read_text()) == {"email-0123456789ab": "someone@example.com"}
    assert stat.S_IMODE(written.lstat().st_mode) == 0o600 and not written.is_symlink()
    assert victim.read_text() == "precious root-owned content\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert os.readlink(planted) == str(victim)
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_a_planted_mapping_symlink_through_the_command_line(host, tmp_path, shared_tmp):
    """The attacker plants the next two minutes of predictable names in a shared folder."""
    victim = tmp_path / "victim.conf"
    victim.write_text("precious root-owned content\n")
    victim.chmod(0o644)
    out = shared_tmp / "shared-out"
    out.mkdir()
    out.chmod(0o1777)
    now = int(time.time())
    for second in range(-2, 120):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + second))
        link = out / (archive.bundle_name(socket.gethostname(), "", stamp) + ".7z.mapping.json")
        os.symlink(victim, link)
        os.lchown(link, nobody().pw_uid, nobody().pw_gid)
    (host.basedir / "logs" / "api.log").write_text("mail from someone@example.com\n")
    done = akdiag("collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file),
                  "--output", str(out), "--keep-mapping")
    assert done.returncode == 0, done.stderr
    mapping_line = next(line for line in done.stdout.splitlines() if line.startswith("Mapping:"))
    mapping = Path(mapping_line.split()[1])
    assert mapping.name.endswith(".mapping-2.json") and not mapping.is_symlink()
    assert "someone@example.com" in mapping.read_text()
    assert victim.read_text() == "precious root-owned content\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


# -- an unreadable BASEDIR -----------------------------------------------------------------------


def test_an_unreadable_basedir_as_nobody_still_gives_a_bundle(shared_tmp):
    user = nobody()
    base = shared_tmp / "akd"
    (base / "logs").mkdir(parents=True)
    (base / "logs" / "api.log").write_text("hidden\n")
    base.chmod(0o700)  # root's, closed to nobody
    out = shared_tmp / "out"
    out.mkdir()
    os.chown(out, user.pw_uid, user.pw_gid)
    done = run_as_nobody(shared_tmp, "collect", "--basedir", str(base), "--output", str(out), "--format", "dir",
                         "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    bundle = Path(done.stdout.strip().splitlines()[-1])
    assert bundle.parent == out
    index = json.loads((bundle / "logs" / "index.json").read_text())
    assert any("Permission denied" in e or "permission denied" in e for e in index["errors"])
    pidfiles = json.loads((bundle / "pidfiles.json").read_text())
    assert any("Permission denied" in e for e in pidfiles["errors"])
    tool_log = (bundle / "akdiag.log").read_text()
    assert f"BASEDIR {base}" in tool_log and "cannot be opened (Permission denied)" in tool_log


def run_as_nobody(shared_tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """akdiag run by the user nobody.  This interpreter (and a virtual environment's
    packages) may live where nobody cannot reach (under /root): each such folder is
    bind-mounted in a private mount namespace, and akdiag's code copied beside them."""
    code = shared_tmp / "code"
    shutil.copytree(REPO / "collector", code / "collector", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [code, *code.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    home = shared_tmp / "home"
    home.mkdir()
    os.chown(home, nobody().pw_uid, nobody().pw_gid)
    mounts = {}  # real folder -> where nobody reaches it
    for n, prefix in enumerate(dict.fromkeys((sys.base_prefix, sys.prefix))):
        if not _reachable_by_others(Path(prefix)):
            mounts[prefix] = shared_tmp / f"mount{n}"
            mounts[prefix].mkdir()

    def seen(path: str) -> str:
        for real, mount in mounts.items():
            if Path(path).is_relative_to(real):
                return str(mount / Path(path).relative_to(real))
        return path

    python = seen(os.path.realpath(sys.executable) if sys.prefix != sys.base_prefix else sys.executable)
    packages = [seen(p) for p in sys.path if p.endswith("site-packages")]
    binds = " && ".join(f'mount --bind "{real}" "{mount}"' for real, mount in mounts.items()) or "true"
    script = (f'{binds} && cd / && exec setpriv --reuid=nobody --regid=nogroup --clear-groups env -i '
              f'PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="{home}" AKDIAG_STATE_DIR="{home}/state" '
              f'LD_LIBRARY_PATH="{seen(sys.base_prefix)}/lib" PYTHONPATH="{os.pathsep.join([str(code), *packages])}" '
              f'PYTHONDONTWRITEBYTECODE=1 "{python}" -m collector "$@"')
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *args],
                          capture_output=True, text=True, timeout=180)


def _reachable_by_others(path: Path) -> bool:
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


def test_a_file_named_as_basedir_still_gives_a_bundle(tmp_path):
    base = tmp_path / "not-a-folder"
    base.write_text("x\n")
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--basedir", str(base), "--output", str(out), "--format", "dir", "--quiet")
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip().splitlines()[-1])
    index = json.loads((bundle / "logs" / "index.json").read_text())
    assert any("is not a folder" in e or "Not a directory" in e for e in index["errors"])
    assert "is not a folder" in (bundle / "akdiag.log").read_text()


# -- names that are not UTF-8 ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["7z", "tar.gz", "dir"])
def test_non_utf8_names_are_stored_escaped_in_every_format(host, tmp_path, fmt):
    raw_log = os.fsdecode(b"\xff\xfe.log")
    (host.basedir / "logs" / raw_log).write_bytes(b"bytes named oddly\n")
    (host.basedir / "config" / "json_consts" / os.fsdecode(b"custom.\xe9t\xe9.json")).write_text('{"a": 1}')
    result, _ = collect_bundle(host, tmp_path / "out", fmt=fmt)
    seven_zip = shutil.which("7z") or shutil.which("7zz")
    if fmt == "7z" and seven_zip:  # the stock tool reads it too
        listed = subprocess.run([seven_zip, "l", str(result.path)], capture_output=True, text=True)
        assert listed.returncode == 0 and "logs/%FF%FE.log" in listed.stdout
    members = _members(result.path, fmt)
    top = next(iter(members)).split("/")[0]
    log_member = f"{top}/logs/%FF%FE.log"
    assert members[log_member] == b"bytes named oddly\n"
    assert f"{top}/config/json_consts/custom.%E9t%E9.json" in members
    index = json.loads(members[f"{top}/logs/index.json"])
    entry = next(e for e in index["files"] if e.get("path_escaped"))
    assert entry["path"] == "%FF%FE.log" and entry["tail"]["bundle_path"] == "logs/%FF%FE.log"
    consts = json.loads(members[f"{top}/config/index.json"])
    assert any(f["bundle_path"] == "config/json_consts/custom.%E9t%E9.json" and f["valid_json"]
               for f in consts["files"])


def _members(path: Path, fmt: str) -> dict:
    if fmt == "dir":
        return {f"{path.name}/{p.relative_to(path).as_posix()}": p.read_bytes() for p in path.rglob("*") if p.is_file()}
    if fmt == "tar.gz":
        with tarfile.open(path) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    import py7zr

    target = path.parent / "extracted"
    with py7zr.SevenZipFile(path) as archive_file:
        archive_file.extractall(target)
    return {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
