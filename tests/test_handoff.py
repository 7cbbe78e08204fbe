"""Handing the bundle to support: --case-id, --max-size, --split (+ .sha256), --dry-run and
`akdiag pack`, through the real command line, real files and the stock `7z` binary."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from collector.bundle.budget import plan_cuts
from collector.bundle.writer import BundleWriter
from collector.redact import Scrubber
from conftest import akdiag

SEVEN_ZIP = "7z"
PASSWORD = "correct horse battery"
WORDS = ("queue message sent delivered bounce timeout connection refused campaign trigger worker "
         "retry smtp pool channel subscriber segment import export").split()


def _write_log(path: Path, megabytes: float, seed: int) -> None:
    """A platform-like log of about `megabytes` MB: timestamps, words, ids (compresses ~4:1)."""
    rng = random.Random(seed)
    with open(path, "w") as handle:
        written, n = 0, 0
        while written < megabytes * 1024 * 1024:
            line = (f"2026-12-01 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d} INFO "
                    f"{' '.join(rng.choice(WORDS) for _ in range(9))} id={rng.randrange(10 ** 12)}\n")
            handle.write(line)
            written, n = written + len(line), n + 1


def _tree(folder: Path) -> dict:
    """Every entry below `folder`, hidden ones too, with its size: to prove nothing was written."""
    return {str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else None) for p in folder.rglob("*")}


def _extract(archive: Path, target: Path, password: str = None) -> Path:
    args = [SEVEN_ZIP, "x", "-y", f"-o{target}", str(archive)] + ([f"-p{password}"] if password else [])
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (root,) = [p for p in target.iterdir() if p.is_dir()]
    return root


def _sha256sum_check(checksum: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sha256sum", "-c", checksum.name], cwd=checksum.parent, capture_output=True, text=True)


@pytest.fixture
def big_logs(host):
    """A host with two large live logs (4 and 3 MB) and the simulator's small ones."""
    _write_log(host.basedir / "logs" / "sendmail.log", 4, 1)
    _write_log(host.basedir / "logs" / "trigger.log", 3, 2)
    return host


def _collect(host, out: Path, *options: str) -> subprocess.CompletedProcess:
    out.mkdir(exist_ok=True)
    return akdiag("collect", "--basedir", str(host.basedir), "--output", str(out), "--quiet", "--timeout", "90",
                  *options)


# -- --case-id ---------------------------------------------------------------------------

def test_case_id_is_in_the_name_the_manifest_and_the_header(host, tmp_path):
    out = tmp_path / "out"
    done = _collect(host, out, "--format", "dir", "--case-id", "SR-2026.0042")
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip())
    assert "-case-SR-2026.0042-" in bundle.name
    assert json.loads((bundle / "manifest.json").read_text())["case_id"] == "SR-2026.0042"
    html = (bundle / "summary.html").read_text()
    assert 'id="case-id">case <strong>SR-2026.0042</strong>' in html


@pytest.mark.parametrize("bad", ["a/b", "-x", ".hidden", "x" * 65, "caf\u00e9", "a b", ""])
def test_a_bad_case_id_is_a_usage_error_and_writes_nothing(host, tmp_path, bad):
    out = tmp_path / "out"
    done = _collect(host, out, "--case-id", bad)
    assert done.returncode == 2
    assert "--case-id" in done.stderr and "letters, digits" in done.stderr
    assert _tree(out) == {}


# -- --max-size -----------------------------------------------------------------------------

def test_max_size_trims_the_oldest_log_lines_to_fit(big_logs, tmp_path):
    budget = 1024 * 1024
    out = tmp_path / "out"
    done = _collect(big_logs, out, "--max-size", "1M", "--log-bytes", "8000000", "--log-lines", "500000")
    assert done.returncode == 0, done.stderr
    archive = Path(done.stdout.strip())
    assert archive.stat().st_size <= budget
    assert archive.stat().st_size > budget // 2, "trimmed far more than the budget asked"
    assert _sha256sum_check(archive.parent / f"{archive.name}.sha256").returncode == 0
    root = _extract(archive, tmp_path / "x")
    manifest = json.loads((root / "manifest.json").read_text())
    trimmed = {t["path"]: t for t in manifest["size_budget"]["trimmed"]}
    assert manifest["size_budget"]["max_size"] == budget
    assert set(trimmed) == {"logs/sendmail.log", "logs/trigger.log"}, "the largest tails go first, small ones stay"
    original = (big_logs.basedir / "logs" / "sendmail.log").read_bytes()
    for path, cut in trimmed.items():
        kept = (root / path).read_bytes()
        assert cut["bytes_after"] == len(kept) and cut["bytes_removed"] == cut["bytes_before"] - len(kept) > 0
        assert kept.endswith(b"\n") and kept.split(b"\n", 1)[0].startswith(b"2026-12-01 "), "cut at a line's start"
    assert original.endswith((root / "logs/sendmail.log").read_bytes()), "the newest lines are the ones kept"
    untouched = root / "logs" / "api.log"
    assert untouched.read_bytes() == (big_logs.basedir / "logs" / "api.log").read_bytes()
    listed = {f["path"]: f for f in manifest["files"]}
    assert listed["logs/sendmail.log"]["size"] == trimmed["logs/sendmail.log"]["bytes_after"]
    for record in ("processes.json", "logs/index.json", "findings.json", "summary.html"):
        assert (root / record).stat().st_size > 0 and record not in trimmed
    assert 'id="trimmed"' in (root / "summary.html").read_text()


def test_a_budget_too_small_for_the_records_exits_2_and_writes_nothing(big_logs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the administrator's own file\n")
    before = _tree(out)
    done = _collect(big_logs, out, "--max-size", "100K")
    assert done.returncode == 2
    assert "too small" in done.stderr and "records" in done.stderr
    assert _tree(out) == before, "no bundle, no volume, no temporary file left"


def test_too_small_at_the_option_is_refused_before_collecting(host, tmp_path):
    out = tmp_path / "out"
    done = _collect(host, out, "--max-size", "10K")
    assert done.returncode == 2 and "too small" in done.stderr
    assert _tree(out) == {}


def test_plan_cuts_takes_rotated_parts_oldest_first_then_levels_the_largest():
    items = [
        {"path": "logs/a.log.2", "size": 500, "rotated": True, "mtime": "2026-11-01T00:00:00Z"},
        {"path": "logs/a.log.1", "size": 500, "rotated": True, "mtime": "2026-11-20T00:00:00Z"},
        {"path": "logs/big.log", "size": 5000, "rotated": False, "mtime": "2026-12-01T00:00:00Z"},
        {"path": "logs/mid.log", "size": 3000, "rotated": False, "mtime": "2026-12-01T00:00:00Z"},
        {"path": "logs/small.log", "size": 100, "rotated": False, "mtime": "2026-12-01T00:00:00Z"},
    ]
    assert plan_cuts(items, 300) == {"logs/a.log.2": 200}
    assert plan_cuts(items, 800) == {"logs/a.log.2": 0, "logs/a.log.1": 200}
    cuts = plan_cuts(items, 1000 + 2500)  # both rotated parts, then 2500 off the largest
    assert cuts["logs/a.log.2"] == cuts["logs/a.log.1"] == 0
    assert cuts["logs/big.log"] == cuts["logs/mid.log"] == 2750
    assert "logs/small.log" not in cuts
    assert plan_cuts(items, 10 ** 9) == {i["path"]: 0 for i in items}


def test_trim_to_tail_keeps_whole_lines_through_the_writer(tmp_path):
    writer = BundleWriter(tmp_path / "b", Scrubber.for_bundle(()))
    writer.write_bytes("logs/x.log", b"first line\nsecond line\nthird\n", "logs")
    record = writer.trim_to_tail("logs/x.log", 17)  # "cond line\nthird\n" is 16: cut inside "second"
    assert (tmp_path / "b/logs/x.log").read_bytes() == b"third\n"
    assert record.size == 6 and record.sha256 == hashlib.sha256(b"third\n").hexdigest()
    writer.write_bytes("logs/y.log", b"one\ntwo\n", "logs")
    writer.trim_to_tail("logs/y.log", 4)  # exactly the last line
    assert (tmp_path / "b/logs/y.log").read_bytes() == b"two\n"
    assert writer.trim_to_tail("logs/y.log", 100) is None


# -- --split ----------------------------------------------------------------------------------

@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_split_volumes_open_with_stock_7z_and_their_checksums_pass(big_logs, tmp_path, encrypted):
    out = tmp_path / "out"
    # encrypted: with a size budget too, which the volumes together keep
    extra = ["--encrypt", "--password-file", str(tmp_path / "pw"), "--max-size", "1M",
             "--log-bytes", "8000000", "--log-lines", "500000"] if encrypted else []
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    done = _collect(big_logs, out, "--split", "256K", *extra)
    assert done.returncode == 0, done.stderr
    first = Path(done.stdout.strip())
    assert first.name.endswith(".7z.001")
    volumes = sorted(out.glob(first.name[:-4] + ".[0-9][0-9][0-9]"))
    assert len(volumes) >= 3 and all(v.stat().st_size == 256 * 1024 for v in volumes[:-1])
    assert not (out / first.name[:-4]).exists(), "the single archive is removed"
    checksum = out / (first.name[:-4] + ".sha256")
    assert _sha256sum_check(checksum).returncode == 0
    assert sorted(line.split()[1] for line in checksum.read_text().splitlines()) == [v.name for v in volumes]
    root = _extract(first, tmp_path / "x", PASSWORD if encrypted else None)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["split"] == {"volume_size": 256 * 1024}
    if encrypted:
        assert sum(v.stat().st_size for v in volumes) <= 1024 * 1024 and manifest["size_budget"]["trimmed"]
    if encrypted:
        wrong = subprocess.run([SEVEN_ZIP, "x", "-y", f"-o{tmp_path / 'y'}", "-pwrong", str(first)],
                               capture_output=True, text=True)
        assert wrong.returncode != 0
    with open(volumes[1], "r+b") as handle:  # a damaged volume is caught
        handle.write(b"\0\0\0\0")
    assert _sha256sum_check(checksum).returncode != 0
    assert sorted(p.name for p in out.iterdir()) == sorted([v.name for v in volumes] + [checksum.name])


def test_split_needs_7z(host, tmp_path):
    done = _collect(host, tmp_path / "out", "--split", "1M", "--format", "tar.gz")
    assert done.returncode == 2 and "--split" in done.stderr


# -- --dry-run ------------------------------------------------------------------------------

def test_dry_run_lists_files_commands_and_addresses_and_writes_nothing(big_logs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    key = tmp_path / "pseudonym.key"
    before = _tree(out)
    done = akdiag("collect", "--basedir", str(big_logs.basedir), "--output", str(out), "--dry-run",
                  "--case-id", "C-1", "--max-size", "20M", "--log-bytes", "1000000", "--pseudonym-key", str(key),
                  env={"TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr
    text = done.stdout
    log = big_logs.basedir / "logs" / "sendmail.log"
    line = next(line for line in text.splitlines() if line.strip().startswith(str(log)))
    assert "size 4.0 MiB" in line and "takes 976.6 KiB" in line
    assert f"{big_logs.basedir / 'akd'} --processes" in text
    assert "systemctl" in text and "journalctl" in text
    assert "127.0.0.1:27017" in text and "mongodb_control" in text
    assert "case id                 C-1" in text and "max size                20.0 MiB" in text
    assert str(big_logs.basedir / "config" / "main.json") in text
    assert _tree(out) == before and _tree(temp) == {} and not key.exists()


# -- akdiag pack ------------------------------------------------------------------------------

def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def reviewed(host, tmp_path):
    """A `--format dir` bundle an administrator edited: a secret and an e-mail added to a
    log, another log removed."""
    done = _collect(host, tmp_path / "out", "--format", "dir", "--case-id", "77")
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    with open(folder / "logs" / "api.log", "a") as handle:
        handle.write("note from the admin: password=Hunter2Secret! mail bob.smith@example.com\n")
    (folder / "logs" / "webcontrol.log").unlink()
    return folder


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_pack_scrubs_a_hand_edited_file_again_and_notes_it(reviewed, tmp_path, encrypted):
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    before = _hashes(reviewed)
    extra = ["--encrypt", "--password-file", str(tmp_path / "pw")] if encrypted else []
    done = akdiag("pack", str(reviewed), *extra)
    assert done.returncode == 0, done.stderr
    assert "changed: logs/api.log" in done.stdout and "removed: logs/webcontrol.log" in done.stdout
    archive = reviewed.parent / f"{reviewed.name}.7z"
    assert _sha256sum_check(reviewed.parent / f"{archive.name}.sha256").returncode == 0
    assert _hashes(reviewed) == before, "the reviewed folder is left as it is"
    root = _extract(archive, tmp_path / "x", PASSWORD if encrypted else None)
    text = (root / "logs" / "api.log").read_text()
    assert "Hunter2Secret" not in text and "bob.smith@example.com" not in text
    assert "note from the admin: password=" in text
    manifest = json.loads((root / "manifest.json").read_text())
    (changed,) = manifest["review"]["changed"]
    assert changed["path"] == "logs/api.log" and changed["sha256_before"] == \
        [f for f in json.loads((reviewed / "manifest.json").read_text())["files"] if f["path"] == "logs/api.log"][0][
            "sha256"]
    assert changed["sha256"] == hashlib.sha256((root / "logs/api.log").read_bytes()).hexdigest()
    assert manifest["review"]["removed"] == ["logs/webcontrol.log"] and not (root / "logs/webcontrol.log").exists()
    assert manifest["case_id"] == "77"
    files = {f["path"]: f for f in manifest["files"]}
    for path, record in files.items():  # the packed bundle is consistent with its own manifest
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == record["sha256"], path


def test_pack_refuses_a_file_added_by_hand_and_a_symlink(reviewed, tmp_path):
    (reviewed / "extra.txt").write_text("something support should not get\n")
    done = akdiag("pack", str(reviewed))
    assert done.returncode == 2 and "extra.txt (not in the manifest)" in done.stderr
    (reviewed / "extra.txt").unlink()
    os.symlink("/etc/passwd", reviewed / "logs" / "passwd.log")
    done = akdiag("pack", str(reviewed))
    assert done.returncode == 2 and "logs/passwd.log (not a regular file)" in done.stderr
    assert not any(p.name.endswith((".7z", ".sha256")) for p in reviewed.parent.iterdir())


def test_pack_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    (tmp_path / "notabundle").mkdir()
    done = akdiag("pack", str(tmp_path / "notabundle"))
    assert done.returncode == 2 and "manifest.json" in done.stderr


def test_the_cluster_form_takes_the_case_id_and_refuses_the_one_host_options(tmp_path):
    """A host that refuses the connection still gives a cluster archive: its name and
    cluster.json carry the case id."""
    out = tmp_path / "out"
    out.mkdir()
    host = ["--host", "nobody@127.0.0.1", "--ssh-option", "Port=1", "--connect-timeout", "2"]
    done = akdiag("collect", *host, "--output", str(out), "--format", "dir", "--case-id", "CL-9", "--quiet")
    (archive,) = out.iterdir()
    assert done.returncode in (0, 5), done.stderr  # 5: some host not collected (cluster exit codes)
    assert archive.name.startswith("akdiag-cluster-case-CL-9-")
    assert json.loads((archive / "cluster.json").read_text())["case_id"] == "CL-9"
    for option in (["--split", "1M"], ["--max-size", "5M"], ["--dry-run"]):
        done = akdiag("collect", *host, "--output", str(out), *option)
        assert done.returncode == 2 and "a cluster run takes --case-id" in done.stderr


def test_a_leftover_checksum_file_makes_the_bundle_take_the_next_name(tmp_path):
    from collector.bundle.handoff import Handoff, place

    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "manifest.json").write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / "host-20261201T000000Z.7z.sha256"  # its archive was deleted by hand, the checksum kept
    leftover.write_text("0" * 64 + "  host-20261201T000000Z.7z\n")
    placed = place(staging, out, "host-20261201T000000Z", "7z", None, Handoff(case_id="SR-1"))
    assert placed.path.name == "host-20261201T000000Z-2.7z"
    assert placed.checksum.name == "host-20261201T000000Z-2.7z.sha256"
    assert leftover.read_text().startswith("0" * 64)
    assert _sha256sum_check(placed.checksum).returncode == 0
