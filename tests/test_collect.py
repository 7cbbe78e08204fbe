"""The whole `akdiag collect` run through its command line, as an administrator runs it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.basedir import resolve_basedir
from conftest import REPO, akdiag

SEVEN_ZIP = "7z"


def _bundles(folder: Path):
    return sorted(p for p in folder.iterdir() if p.name.startswith("akdiag-"))


def _extract(archive: Path, target: Path) -> Path:
    done = subprocess.run([SEVEN_ZIP, "x", "-y", f"-o{target}", str(archive)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (root,) = [p for p in target.iterdir() if p.is_dir()]
    return root


def test_collect_writes_a_7z_that_stock_7zip_opens(full_host, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--basedir", str(full_host.basedir), "--catalog", str(full_host.catalog_file),
                  "--output", str(out), "--label", "pre-upgrade")
    assert done.returncode == 0, done.stderr
    (bundle,) = _bundles(out)
    assert bundle.name.startswith("akdiag-") and "-pre-upgrade-" in bundle.name and bundle.name.endswith("Z.7z")
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    assert f"Bundle:    {bundle}" in done.stdout
    assert "Processes down (1): proctrigger" in done.stdout
    tested = subprocess.run([SEVEN_ZIP, "t", str(bundle)], capture_output=True, text=True)
    assert tested.returncode == 0 and "Everything is Ok" in tested.stdout
    root = _extract(bundle, tmp_path / "x")
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["tool"]["name"] == "akdiag"
    assert manifest["basedir"] == str(full_host.basedir) and manifest["label"] == "pre-upgrade"
    assert {c["name"] for c in manifest["collectors"]} >= {"system", "processes", "pidfiles", "ports", "logs",
                                                            "akd", "config"}
    for record in manifest["files"]:
        assert (root / record["path"]).stat().st_size == record["size"], record["path"]
    for name in ("system.json", "processes.json", "pidfiles.json", "ports.json", "logs/index.json",
                 "config/main.json", "commands/akd-processes.txt", "summary.html", "redactions.json"):
        assert (root / name).is_file(), name
    html = (root / "summary.html").read_text()
    for spec in full_host.catalog.processes:
        assert f'id="proc-{spec.binary}"' in html, spec.binary
    assert "<link" not in html and "src=\"http" not in html


def test_bundle_holds_the_redacted_config(full_host, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--basedir", str(full_host.basedir), "--catalog", str(full_host.catalog_file),
                  "--output", str(out), "--format", "dir", "--quiet")
    assert done.returncode == 0, done.stderr
    root = Path(done.stdout.strip())
    config = json.loads((root / "config" / "main.json").read_text())
    assert config["CONTROLDB_PASS"] == "<redacted>"
    assert config["CLICKHOUSE_SYSTEM"]["PASSWORD"] == "<redacted>"
    assert config["CONTROLDB_PORT"] == 27017 and config["RABBITMQ_USER"] == "altcraft"
    everything = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    assert full_host.secret_seed.encode() not in everything


def test_tar_gz_format(full_host, tmp_path):
    done = akdiag("collect", "--basedir", str(full_host.basedir), "--output", str(tmp_path), "--format", "tar.gz",
                  "--quiet", "--log-lines", "10")
    assert done.returncode == 0, done.stderr
    (bundle,) = _bundles(tmp_path)
    assert bundle.name.endswith(".tar.gz")
    import tarfile
    with tarfile.open(bundle) as tar:
        assert any(n.endswith("/manifest.json") for n in tar.getnames())


def test_missing_basedir_still_gives_a_bundle(tmp_path):
    missing = tmp_path / "no-such-basedir"
    done = akdiag("collect", "--basedir", str(missing), "--output", str(tmp_path), "--format", "dir", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    root = Path(done.stdout.strip())
    manifest = json.loads((root / "manifest.json").read_text())
    statuses = {c["name"]: c for c in manifest["collectors"]}
    assert statuses["system"]["status"] == "ok"
    assert statuses["pidfiles"]["status"] == "partial"
    assert str(missing) in statuses["pidfiles"]["error"]
    assert statuses["akd"]["status"] == "partial" and "not found" in statuses["akd"]["error"]
    system = json.loads((root / "system.json").read_text())
    assert system["basedir"] == {"path": str(missing), "source": "--basedir", "exists": False}
    processes = json.loads((root / "processes.json").read_text())
    assert {p["pidfile"]["state"] for p in processes["expected"]} == {"missing"}


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc")  # root may write anywhere but here
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    done = akdiag("collect", "--basedir", str(tmp_path), "--output", str(target))
    assert done.returncode == 3
    assert "no bundle written" in done.stderr and str(target) in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_output_folder(tmp_path):
    done = akdiag("collect", "--basedir", str(tmp_path / "basedir"), "--output", str(tmp_path / "nope"))
    assert done.returncode == 3 and "does not exist" in done.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_nothing_behind(host, tmp_path, stop):
    (host.basedir / "akd").write_text("#!/bin/sh\nsleep 30\n")  # keeps the run busy
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
                             "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 20
    while not any(out.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until the run has started writing
    time.sleep(0.5)
    proc.send_signal(stop)
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + stop, stderr  # 130 for Ctrl-C, 143 for SIGTERM
    assert b"interrupted" in stderr
    assert list(out.iterdir()) == []


def test_hanging_akd_is_stopped_and_recorded(host, tmp_path):
    (host.basedir / "akd").write_text("#!/bin/sh\necho starting\nsleep 60\n")
    from conftest import collect_bundle
    started = time.monotonic()
    _result, reader = collect_bundle(host, tmp_path / "out", only=("akd",), command_timeout=1.0)
    assert time.monotonic() - started < 15
    akd = reader.json("commands/akd-processes.json")
    assert akd["timed_out"] is True and akd["exit_code"] is None
    assert "no result within 1 s" in akd["error"]
    assert reader.text("commands/akd-processes.txt").startswith("starting")


def test_akd_output_is_in_the_bundle(full_host, tmp_path):
    from conftest import collect_bundle
    _result, reader = collect_bundle(full_host, tmp_path / "out", only=("akd",))
    akd = reader.json("commands/akd-processes.json")
    assert akd["exit_code"] == 0 and akd["timed_out"] is False
    output = reader.text("commands/akd-processes.txt")
    assert "AK:api" in output and "running" in output


def test_invalid_catalog_names_file_line_and_field(tmp_path):
    catalog = tmp_path / "site.yaml"
    catalog.write_text("processes:\n  - binary: api\n    port: eighty\n")
    done = akdiag("collect", "--basedir", str(tmp_path), "--catalog", str(catalog), "--output", str(tmp_path))
    assert done.returncode == 2
    assert f"{catalog}, line 3: field 'processes.port' must be int or null" in done.stderr


def test_basedir_resolution_order(host, monkeypatch):
    host.start(["api"])
    assert resolve_basedir("/x") == (Path("/x"), "--basedir")
    monkeypatch.setenv("AKDIAG_BASEDIR", "/from/env")
    assert resolve_basedir(None) == (Path("/from/env"), "AKDIAG_BASEDIR")
    monkeypatch.delenv("AKDIAG_BASEDIR")
    found, source = resolve_basedir(None)
    assert source == "running AK: process"
    assert (found / "ak" / "bin").is_dir() and found.name == "akd"


def test_version_and_help():
    done = akdiag("--help")
    assert done.returncode == 0 and "Exit codes" in done.stdout
    done = akdiag("collect", "--help")
    assert "--log-total-bytes" in done.stdout


def test_output_inside_basedir_is_refused(host):
    done = akdiag("collect", "--basedir", str(host.basedir), "--output", str(host.basedir / "logs"))
    assert done.returncode == 3
    assert "inside BASEDIR" in done.stderr and "--output" in done.stderr
    assert sorted(p.name for p in (host.basedir / "logs").iterdir() if p.name.startswith(".akdiag")) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB filesystem: too small for a bundle."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_disk_full_is_a_clear_error_and_leaves_nothing(full_host, tiny_disk):
    done = akdiag("collect", "--basedir", str(full_host.basedir), "--output", str(tiny_disk))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no bundle written" in done.stderr and "No space left on device" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tiny_disk.iterdir()) == []


def test_the_demo_leaves_out_this_machines_kernel_and_units(tmp_path):
    """The simulated host is the demo's subject: this machine's own kernel messages (OOM
    kills, crashes of other programs) and systemd units would read as the demo's faults."""
    done = akdiag("demo", "--format", "dir", "--quiet", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip())
    manifest = json.loads((bundle / "manifest.json").read_text())
    statuses = {c["name"]: c["status"] for c in manifest["collectors"]}
    assert statuses["kernel"] == statuses["services"] == "skipped"
    assert statuses["processes"] == "ok" and statuses["network"] in ("ok", "partial")
    assert not (bundle / "kernel.json").exists() and not (bundle / "services.json").exists()
    findings = json.loads((bundle / "findings.json").read_text())["findings"]
    assert not [f for f in findings if f["area"] in ("kernel", "services")]
