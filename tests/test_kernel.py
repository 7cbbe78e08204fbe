"""The kernel collector end to end on the machine's real /dev/kmsg (root writes test
messages into it, each with a marker of its own so that parallel runs cannot confuse
them), a real OOM kill in a memory-limited cgroup, an unprivileged run, the fallbacks and
the byte bound; and the kernel analyzer's verdicts on the bundles."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from collector.bundle.reader import BundleReader
from collector.collectors import kernel as kernel_collector
from conftest import REPO
from triage_helpers import LoneHost, findings_of, matching, one

KB = 1024
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="writing to /dev/kmsg needs root")


def inject(*lines: str) -> None:
    """Add each line to the kernel's log.  One open per line: /dev/kmsg rate-limits each open
    file to 10 lines in 5 s; a record is readable once its line is ended."""
    for line in lines:
        with open("/dev/kmsg", "w", encoding="utf-8") as handle:
            handle.write(f"<4>{line}\n")


def marker(prefix: str = "akt") -> str:
    """A comm-sized unique word (the kernel keeps 15 bytes of a process's name)."""
    return f"{prefix}{secrets.token_hex(4)}"[:15]


def oom_line(pid: int, comm: str, anon_kb: int = 3145728) -> str:
    return (f"Out of memory: Killed process {pid} ({comm}) total-vm:4194304kB, anon-rss:{anon_kb}kB, file-rss:2048kB, "
            f"shmem-rss:0kB, UID:0 pgtables:6500kB oom_score_adj:0")


def segfault_line(pid: int, comm: str) -> str:
    return (f"{comm}[{pid}]: segfault at 0 ip 00007f0a1b2c3d4e sp 00007ffc5d6e7f80 error 4 in "
            f"libc.so.6[7f0a1b200000+195000] likely on CPU 0 (core 0, socket 0)")


def collect_kernel(tmp_path: Path, lone: LoneHost = None, only=("kernel",), **options) -> BundleReader:
    lone = lone or LoneHost(tmp_path / "lone", {"main": {}})
    return lone.collect(tmp_path / "out", only=only, **options)


def events_about(reader: BundleReader, word: str) -> list:
    return [e for e in reader.json("kernel.json")["events"] if word in e["message"]]


# -- the real /dev/kmsg ---------------------------------------------------------------------------------

@needs_root
def test_messages_written_to_kmsg_are_collected_and_parsed(tmp_path):
    comm = marker()
    before = time.time()
    inject(oom_line(910001, comm), segfault_line(910002, comm), f"{comm} an ordinary line")
    reader = collect_kernel(tmp_path)
    data = reader.json("kernel.json")
    assert data["source"] == "kmsg" and data["errors"] == [] and data["truncated"] is False
    assert data["messages_file"] == "kernel/messages.txt" and data["lines"] >= 3
    text = reader.path("kernel/messages.txt").read_text()
    assert len(text.encode()) == data["bytes"]
    mine = [line for line in text.splitlines() if comm in line]
    assert len(mine) == 3 and mine[-1].endswith(f" {comm} an ordinary line")
    oom, segfault = events_about(reader, comm)
    assert (oom["kind"], oom["pid"], oom["process"], oom["rss_bytes"]) == ("oom_kill", 910001, comm,
                                                                          (3145728 + 2048) * KB)
    assert (segfault["kind"], segfault["pid"]) == ("segfault", 910002)
    stamped = kernel_collector.kernelmsg.iso_utc_precise
    assert stamped(before - 5) <= oom["time"] <= stamped(time.time() + 5)  # the kernel's clock, as Unix time
    manifest = {c["name"]: c for c in reader.manifest["collectors"]}
    assert manifest["kernel"]["status"] == "ok"


@needs_root
def test_since_leaves_older_messages_out(tmp_path):
    comm = marker()
    inject(oom_line(910003, comm))
    time.sleep(0.3)
    after = time.time()
    later = marker()
    inject(f"{later} after the window start")
    reader = collect_kernel(tmp_path, since=after)
    data = reader.json("kernel.json")
    assert not events_about(reader, comm)
    assert comm not in reader.path("kernel/messages.txt").read_text()
    assert later in reader.path("kernel/messages.txt").read_text()
    assert data["since"].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(after)))


@needs_root
def test_the_byte_cap_keeps_the_newest(tmp_path, monkeypatch):
    words = [marker() for _ in range(6)]
    inject(*(f"{word} {'x' * 300}" for word in words))
    monkeypatch.setattr(kernel_collector, "MAX_BYTES", 1000)
    reader = collect_kernel(tmp_path)
    data = reader.json("kernel.json")
    text = reader.path("kernel/messages.txt").read_text()
    assert data["truncated"] is True and len(text.encode()) <= 1000
    assert words[-1] in text.splitlines()[-1]  # the newest is the last line
    assert words[0] not in text  # the oldest went
    assert data["lines"] == len(text.splitlines()) < 6


def test_the_kept_part_never_grows_past_the_cap():
    newest = kernel_collector._Newest(10 * 1024)
    for index in range(100000):
        newest.add(float(index), f"line {index} " + "y" * 80)
    kept = newest.messages()
    assert newest.size <= 10 * 1024 and len(newest.items) < 200
    assert kept[-1][1].startswith("line 99999 ") and newest.dropped == 100000 - len(kept)


@needs_root
def test_dmesg_is_the_fallback_without_kmsg_or_journald(tmp_path, monkeypatch):
    if not shutil.which("dmesg"):
        pytest.skip("dmesg is not installed")
    comm = marker()
    inject(segfault_line(910004, comm))
    monkeypatch.setattr(kernel_collector, "KMSG_PATH", str(tmp_path / "no-kmsg"))
    monkeypatch.setattr(kernel_collector, "JOURNALD_SOCKET_DIR", str(tmp_path / "no-journald"))
    reader = collect_kernel(tmp_path)
    data = reader.json("kernel.json")
    assert data["source"] == "dmesg" and data["errors"] == []
    [event] = events_about(reader, comm)
    assert (event["kind"], event["pid"], event["process"]) == ("segfault", 910004, comm)


def test_journalctl_is_read_where_journald_runs(tmp_path, monkeypatch):
    if not os.path.isdir(kernel_collector.JOURNALD_SOCKET_DIR) or not shutil.which("journalctl"):
        pytest.skip("journald does not run on this machine")
    monkeypatch.setattr(kernel_collector, "KMSG_PATH", str(tmp_path / "no-kmsg"))
    reader = collect_kernel(tmp_path)
    data = reader.json("kernel.json")
    assert data["source"] == "journalctl -k" or data["errors"], data


def test_no_source_at_all_is_recorded_and_not_checked(tmp_path, monkeypatch):
    """Every source missing: an error naming each, a partial collector, kernel.not_checked."""
    monkeypatch.setattr(kernel_collector, "KMSG_PATH", str(tmp_path / "no-kmsg"))
    monkeypatch.setattr(kernel_collector, "JOURNALD_SOCKET_DIR", str(tmp_path / "no-journald"))
    monkeypatch.setattr(kernel_collector, "DMESG", str(tmp_path / "no-dmesg"))
    reader = collect_kernel(tmp_path)
    data = reader.json("kernel.json")
    assert data["source"] is None and data["events"] == [] and data["messages_file"] is None
    [error] = data["errors"]
    assert "no-kmsg: No such file or directory" in error and "journald does not run here" in error
    assert "dmesg: not installed" in error
    assert {c["name"]: c for c in reader.manifest["collectors"]}["kernel"]["status"] == "partial"
    finding = one(findings_of(reader), "kernel.not_checked")
    assert finding["severity"] == "warning" and "no-kmsg" in finding["evidence"]["figures"]["error"]
    assert not reader.exists("kernel/messages.txt")


# -- an unprivileged run: kernel.dmesg_restrict=1 as the machine has it ---------------------------------

_AS_NOBODY = """
import sys
from pathlib import Path
from collector.catalog import load_catalog
from collector.context import CollectOptions
from collector.run import CollectRequest, collect
result = collect(CollectRequest(basedir=Path("/nonexistent"), basedir_source="test", catalog=load_catalog(),
                                output_dir=Path(sys.argv[1]), fmt="dir", timeout=30,
                                options=CollectOptions(only=("kernel",))))
print(result.path)
"""


@pytest.fixture
def as_nobody():
    """Debian's Python as the user nobody, with akdiag and copies of the packages it needs."""
    python = "/usr/bin/python3"
    if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(python):
        pytest.skip("needs root, setpriv(1) and /usr/bin/python3 to run as the user nobody")
    folder = Path(tempfile.mkdtemp(prefix="akdiag-nobody-"))
    try:
        import importlib

        for name in ("psutil", "jinja2", "markupsafe", "yaml"):
            module = importlib.import_module(name)
            shutil.copytree(Path(module.__file__).parent, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        (folder / "run.py").write_text(_AS_NOBODY)
        (folder / "out").mkdir()
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o777 if path.name == "out" else 0o755)

        def run() -> subprocess.CompletedProcess:
            env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{folder}{os.pathsep}{REPO}", "PYTHONDONTWRITEBYTECODE": "1"}
            return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", python,
                                   str(folder / "run.py"), str(folder / "out")],
                                  capture_output=True, text=True, timeout=60, env=env, cwd="/")
        yield run
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_an_unprivileged_run_says_it_could_not_read(as_nobody):
    with open("/proc/sys/kernel/dmesg_restrict", encoding="ascii") as handle:
        if handle.read().strip() != "1":
            pytest.skip("kernel.dmesg_restrict is not 1 here: nobody may read the kernel's messages")
    done = as_nobody()
    if done.returncode != 0 and "No module named" in done.stderr:
        pytest.skip(f"this Python cannot run akdiag as nobody: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    reader = BundleReader(Path(done.stdout.strip().splitlines()[-1]))
    data = reader.json("kernel.json")
    assert data["source"] is None and data["events"] == []
    [error] = data["errors"]
    assert "/dev/kmsg: permission denied (kernel.dmesg_restrict=1" in error
    assert "dmesg" in error.split("/dev/kmsg", 1)[1]  # the fallbacks were tried and named
    assert {c["name"]: c for c in reader.manifest["collectors"]}["kernel"]["status"] == "partial"
    finding = one(findings_of(reader), "kernel.not_checked")
    assert finding["severity"] == "info" and "root" in finding["hint"]  # told, not a warning forever
    assert "(this user may not)" in finding["title"]


# -- a real OOM kill in a memory-limited cgroup (cgroup v1) ---------------------------------------------

MEMCG_ROOT = Path("/sys/fs/cgroup/memory")
_HOG = """
import ctypes, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME: the kernel's comm
sys.stdin.readline()
chunks = []
for _ in range(200):
    chunks.append(bytearray(1024 * 1024))  # 200 MiB, each page touched
print("survived", flush=True)
"""


@pytest.fixture
def memcg():
    if os.geteuid() != 0 or not (MEMCG_ROOT / "memory.limit_in_bytes").exists():
        pytest.skip("needs root and the cgroup v1 memory controller at /sys/fs/cgroup/memory")
    group = MEMCG_ROOT / f"akdiag-test-{secrets.token_hex(4)}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    try:
        (group / "memory.limit_in_bytes").write_text(str(32 * 1024 * 1024))
        swap_limit = group / "memory.memsw.limit_in_bytes"
        if swap_limit.exists():
            swap_limit.write_text(str(32 * 1024 * 1024))
        yield group
    finally:
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def test_a_real_oom_kill_is_found(memcg, tmp_path):
    comm = marker("akoom")
    hog = subprocess.Popen([sys.executable, "-S", "-c", _HOG, comm], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    try:
        (memcg / "cgroup.procs").write_text(str(hog.pid))
        hog.stdin.write("go\n")
        hog.stdin.flush()
        out, _ = hog.communicate(timeout=60)
    finally:
        if hog.poll() is None:
            hog.kill()
            hog.wait()
    assert hog.returncode == -9 and "survived" not in out, (hog.returncode, out)
    reader = collect_kernel(tmp_path)
    kills = [e for e in reader.json("kernel.json")["events"] if e["kind"] == "oom_kill" and e["process"] == comm]
    assert len(kills) == 1, reader.json("kernel.json")["events"][-5:]
    assert kills[0]["cgroup"] == "/" + memcg.name  # from the kernel's oom-kill summary line
    # about the 32 MiB limit (its file pages counted too), far from the 200 MiB it asked for
    assert 16 * 1024 * 1024 < kills[0]["rss_bytes"] <= 64 * 1024 * 1024
    finding = one(findings_of(reader), "process.oom_killed", comm)
    assert finding["severity"] == "warning"  # not a platform process nor a datastore
    assert finding["evidence"]["figures"]["cgroup"] == "/" + memcg.name
