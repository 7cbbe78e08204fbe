"""system.json's filesystems on real mounts: the machine's own (a tmpfs such as /dev/shm
must be there, /proc and cgroup must not), and mounts made for the test in a private
mount namespace (a full tiny tmpfs, a full large one, a bind mount, a zero-size ramfs, a
proc), where the collection runs as a subprocess so that nothing is mounted machine-wide."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collector.bundle.reader import BundleReader
from collector.collectors.system import PSEUDO_FSTYPES
from conftest import REPO, collect_bundle
from triage_helpers import findings_of, matching, one

MIB = 2 ** 20
WELL_KNOWN_MEMORY_MOUNTS = ("/dev/shm", "/run", "/tmp", "/run/lock", "/dev", "/run/user")


def _mounts() -> dict:
    """mount point -> fstype, as the kernel lists them (the last mount on a point wins)."""
    mounts = {}
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            mounts[fields[1].replace("\\040", " ")] = fields[2]
    return mounts


def _filesystems(reader: BundleReader) -> dict:
    return {fs["mountpoint"]: fs for fs in reader.json("system.json")["filesystems"]}


@pytest.fixture
def machine_bundle(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system",), cpu_sample_seconds=0.05)
    return reader


def test_the_machines_memory_filesystems_are_listed(machine_bundle):
    kernel = _mounts()
    memory = [m for m in WELL_KNOWN_MEMORY_MOUNTS if kernel.get(m) in ("tmpfs", "devtmpfs")
              and os.statvfs(m).f_blocks]
    if not memory:
        pytest.skip(f"this machine mounts no tmpfs or devtmpfs on any of {', '.join(WELL_KNOWN_MEMORY_MOUNTS)}")
    listed = _filesystems(machine_bundle)
    for mount in memory:
        assert mount in listed, (mount, sorted(listed))
        assert listed[mount]["fstype"] == kernel[mount]
        assert listed[mount]["total"] > 0 and listed[mount]["percent_free"] is not None


def test_the_machines_pseudo_filesystems_are_left_out(machine_bundle):
    kernel = _mounts()
    pseudo = [m for m, fstype in kernel.items() if fstype in PSEUDO_FSTYPES]
    assert "/proc" in pseudo  # the test's premise: procfs is mounted, as on every Linux host
    listed = _filesystems(machine_bundle)
    assert not [m for m in pseudo if m in listed]
    assert not [m for m in listed if m in ("/proc", "/sys") or m.startswith(("/proc/", "/sys/"))]
    assert "/" in listed and listed["/"]["total"] > 0
    assert all(fs.get("total") or fs.get("error") for fs in listed.values())


# -- mounts of the test's own, in a private mount namespace -------------------------------------------

_COLLECT = """
import sys
from pathlib import Path
from collector.catalog import load_catalog
from collector.context import CollectOptions
from collector.run import CollectRequest, collect
result = collect(CollectRequest(basedir=Path(sys.argv[1]), basedir_source="test", catalog=load_catalog(),
                                output_dir=Path(sys.argv[2]), fmt="dir", timeout=60,
                                options=CollectOptions(only=("system",), cpu_sample_seconds=0.05)))
print(result.path)
"""

_MOUNT = """
set -e
mount --make-rprivate /
mount -t tmpfs -o size=1m akdiag-tiny "$1/tiny"
head -c 2M /dev/zero > "$1/tiny/fill" 2>/dev/null || true
mount -t tmpfs -o size=72m akdiag-large "$1/large"
head -c 71M /dev/zero > "$1/large/fill"
mount --bind "$1/large" "$1/large-again"
mount -t tmpfs -o size=100m akdiag-roomy "$1/roomy"
mount -t ramfs akdiag-ramfs "$1/ramfs"
mount -t proc akdiag-proc "$1/proc-again"
shift
exec "$@"
"""


def _can_mount_privately(folder: Path) -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = 'mount --make-rprivate / && mount -t tmpfs -o size=1m akdiag-probe "$1"'
    return subprocess.run(["unshare", "--mount", "sh", "-c", probe, "sh", str(folder)],
                          capture_output=True, timeout=10).returncode == 0


@pytest.fixture
def namespace_bundle(host, tmp_path):
    """A collection run in a mount namespace of its own, with the test's mounts."""
    (tmp_path / "probe").mkdir()
    if not _can_mount_privately(tmp_path / "probe"):
        pytest.skip("needs root, unshare(1) and the right to mount a tmpfs in a private mount namespace")
    mounts = tmp_path / "mnt"
    for name in ("tiny", "large", "large-again", "roomy", "ramfs", "proc-again"):
        (mounts / name).mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", _MOUNT, "sh", str(mounts),
         sys.executable, "-c", _COLLECT, str(host.basedir), str(out)],
        capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert str(mounts) not in Path("/proc/self/mounts").read_text()  # nothing leaked out of the namespace
    return BundleReader(done.stdout.strip().splitlines()[-1]), mounts


def test_own_mounts_listed_but_zero_size_and_pseudo_ones(namespace_bundle):
    reader, mounts = namespace_bundle
    listed = _filesystems(reader)
    for name in ("tiny", "large", "large-again", "roomy"):
        assert listed[str(mounts / name)]["fstype"] == "tmpfs", name
    assert listed[str(mounts / "tiny")]["percent_free"] == 0.0
    assert listed[str(mounts / "tiny")]["total"] == MIB
    assert str(mounts / "ramfs") not in listed  # statvfs reports no size
    assert str(mounts / "proc-again") not in listed  # a pseudo filesystem, wherever it is mounted


def test_full_tiny_tmpfs_is_no_finding_a_full_large_one_is(namespace_bundle):
    reader, mounts = namespace_bundle
    findings = findings_of(reader)
    assert not matching(findings, "disk.space_low", str(mounts / "tiny"))
    assert not matching(findings, "disk.space_low", str(mounts / "roomy"))
    large = one(findings, "disk.space_low", str(mounts / "large"))  # one finding for it and its bind mount
    assert large["severity"] == "critical"
    assert large["evidence"]["figures"]["fstype"] == "tmpfs"
    assert large["evidence"]["figures"]["also_mounted_at"] == [str(mounts / "large-again")]
    assert "memory" in large["hint"]
    assert not matching(findings, "disk.space_low", str(mounts / "large-again"))


def test_the_size_below_which_memory_filesystems_are_not_judged_is_a_threshold(namespace_bundle):
    reader, mounts = namespace_bundle
    findings = findings_of(reader, filesystem_memory_min_bytes=MIB)
    assert one(findings, "disk.space_low", str(mounts / "tiny"))["severity"] == "critical"
    findings = findings_of(reader, filesystem_memory_min_bytes=128 * MIB)
    assert not matching(findings, "disk.space_low", str(mounts / "large"))

