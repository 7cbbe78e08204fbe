"""akdiag's own 7z writer (collector/bundle/sevenzip.py) and the archive begun early
(collector/bundle/prepack.py): what they write, stock 7-Zip (`7z`, `7zz`) and py7zr (the
bundle reader's) extract byte for byte, with the files' modes and times; a file changed
after it was deflated early is packed from its current bytes; a stop leaves nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.bundle import archive, prepack, sevenzip
from collector.bundle.writer import BundleWriter
from collector.redact import Scrubber
from conftest import REPO, akdiag

STOCK = [tool for tool in ("7z", "7zz") if shutil.which(tool)]


def _text(megabytes: float, seed: int) -> bytes:
    rng = random.Random(seed)
    words = [f"w{n}" for n in range(300)]
    lines, size = [], 0
    while size < megabytes * 1024 * 1024:
        line = f"2026-12-01 10:00:{rng.randrange(60):02d} INFO {' '.join(rng.choice(words) for _ in range(10))}\n"
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()


def _noise(megabytes: float, seed: int) -> bytes:
    """Incompressible hex lines: deflating them takes a moment."""
    rng = random.Random(seed)
    return "".join(f"{rng.getrandbits(256):064x}\n" for _ in range(int(megabytes * 1024 * 1024 / 65))).encode()


@pytest.fixture
def bundle_folder(tmp_path) -> Path:
    """A folder shaped like a bundle: large tails, small records, an empty file and folder,
    a private sub-folder, a name outside ASCII."""
    folder = tmp_path / "b"
    (folder / "logs" / "_datastores" / "redis").mkdir(parents=True)
    (folder / "empty-folder").mkdir()
    (folder / "logs" / "api.log").write_bytes(_text(0.5, 1))
    (folder / "logs" / "sendmail.log").write_bytes(_text(0.3, 2))
    (folder / "logs" / "_datastores" / "redis" / "redis-server.log").write_bytes(_text(0.1, 3))
    (folder / "logs" / "caf\u00e9.log").write_text("one line\n")
    (folder / "manifest.json").write_text('{"schema_version": 1, "files": []}\n')
    (folder / "empty.txt").write_bytes(b"")
    os.chmod(folder / "logs" / "_datastores", 0o700)
    os.chmod(folder / "manifest.json", 0o600)
    return folder


def _tree(root: Path) -> dict:
    """Every entry below `root`: bytes (files) or None (folders), and its mode."""
    return {p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*"))}


def _stock_extract(tool: str, packed: Path, target: Path) -> Path:
    tested = subprocess.run([tool, "t", str(packed)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert tested.returncode == 0 and "Everything is Ok" in tested.stdout, tested.stdout + tested.stderr
    done = subprocess.run([tool, "x", "-y", f"-o{target}", str(packed)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def _py7zr_extract(packed: Path, target: Path) -> Path:
    import py7zr

    with py7zr.SevenZipFile(packed, "r") as z:
        assert z.test() is not False
        z.extractall(path=target)
    return target


def test_stock_7zip_and_py7zr_extract_every_byte_mode_and_time(bundle_folder, tmp_path):
    packed = tmp_path / "b.7z"
    sevenzip.write_archive(str(bundle_folder), str(packed), "top", archive.DEFLATE_LEVEL)
    expected = _tree(bundle_folder)
    assert STOCK, "stock 7-Zip (7z or 7zz) is needed for this test"
    for tool in STOCK:
        out = _stock_extract(tool, packed, tmp_path / f"x-{tool}") / "top"
        assert _tree(out) == expected, tool
        for rel in ("logs/api.log", "empty-folder", "logs/_datastores"):
            assert (out / rel).stat().st_mtime_ns // 10 ** 6 == (bundle_folder / rel).stat().st_mtime_ns // 10 ** 6
    assert _tree(_py7zr_extract(packed, tmp_path / "x-py7zr") / "top") == expected


def test_a_plain_bundle_archive_is_akdiags_own_and_the_reader_opens_it(bundle_folder, tmp_path):
    """archive._write_7z without a password: no py7zr loaded; the header plain (kHeader)."""
    from collector.bundle.reader import open_bundle

    packed = tmp_path / "b.7z"
    code = ("import sys; from pathlib import Path; from collector.bundle import archive; "
            f"archive._write_7z(Path({str(bundle_folder)!r}), Path({str(packed)!r}), 'b'); "
            "print(any(m.startswith('py7zr') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stdout + done.stderr
    with open(packed, "rb") as handle:
        start = handle.read(32)
        offset, _size = int.from_bytes(start[12:20], "little"), int.from_bytes(start[20:28], "little")
        handle.seek(32 + offset)
        assert handle.read(1) == bytes([sevenzip.K_HEADER])
    with open_bundle(packed) as reader:
        assert reader.read("logs/api.log", 10 ** 7) == (bundle_folder / "logs" / "api.log").read_bytes()


def test_links_are_left_out_files_and_folders_alike(bundle_folder, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not the bundle's\n")
    os.symlink(str(outside), str(bundle_folder / "linked-folder"))
    os.symlink(str(outside / "secret.txt"), str(bundle_folder / "linked-file"))
    folders, files = sevenzip.walk(str(bundle_folder), "top")
    names = {name for _path, name in folders + files}
    assert "top/linked-folder" not in names and "top/linked-file" not in names
    assert "top/empty-folder" in names and "top/logs/api.log" in names


@pytest.mark.parametrize("value", [0, 1, 127, 128, 161, 16383, 16384, 2 ** 21, 2 ** 35 + 7, 2 ** 56 - 1, 2 ** 56,
                                   2 ** 64 - 1])
def test_numbers_read_back_by_py7zr(value):
    from py7zr.archiveinfo import read_uint64

    encoded = sevenzip.number(value)
    stream = io.BytesIO(encoded + b"\xaa")
    assert read_uint64(stream) == value
    assert stream.read() == b"\xaa", "exactly its own bytes consumed"


def test_folders_cut_back_and_a_stop_leave_a_whole_archive(bundle_folder, tmp_path):
    """Three folders, the last two cut back (truncate), a fourth stopped half-way: the
    archive holds each file once, from the folders kept and the last one."""
    packed = tmp_path / "b.7z"
    folders, files = sevenzip.walk(str(bundle_folder), "top")
    big = [pair for pair in files if os.path.getsize(pair[0]) >= 100_000]
    assert len(big) == 3
    with open(packed, "w+b") as handle:
        writer = sevenzip.Writer(handle, 3)
        for pair in big:
            writer.add_folder([pair])
        writer.truncate(1)
        assert handle.seek(0, io.SEEK_END) == writer.end()
        with pytest.raises(sevenzip.Stopped):
            writer.add_folder([big[1]], stop=lambda: True)
        assert len(writer.folders) == 1 and handle.seek(0, io.SEEK_END) == writer.end()
        writer.close_with(folders, [pair for pair in files if pair != big[0]])
    listing = subprocess.run([STOCK[0], "l", "-slt", str(packed)], capture_output=True, text=True)
    assert listing.stdout.count("Path = top/logs/api.log") + listing.stdout.count("Path = top/logs/sendmail.log") \
        == 2
    assert "Blocks = 2" in listing.stdout
    assert _tree(_stock_extract(STOCK[0], packed, tmp_path / "x") / "top") == _tree(bundle_folder)


# -- the archive begun early ------------------------------------------------------------------


def _writer_with_tails(staging: Path) -> BundleWriter:
    writer = BundleWriter(staging, Scrubber.for_bundle(()))
    writer.write_bytes("logs/api.log", _text(0.4, 1))
    writer.write_bytes("logs/sendmail.log", _text(0.3, 2))
    writer.write_bytes("logs/small.log", b"2026-12-01 10:00:00 INFO small\n")
    writer.write_json("processes.json", {"expected": [], "errors": []})
    return writer


def _early(staging: Path, out: Path, writer: BundleWriter) -> prepack.Prepack:
    early = prepack.for_run(staging, out, "top", "7z", None, writer)
    early.start()
    return early


def _manifest_matches(root: Path, writer: BundleWriter) -> None:
    """Every file extracted is the writer's last record of it, and none is missing or extra."""
    records = {r.path: r for r in writer.files()}
    found = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    assert set(found) == set(records)
    for rel, path in found.items():
        data = path.read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (records[rel].size, records[rel].sha256), rel


def test_files_changed_after_the_early_part_are_packed_as_they_are_now(tmp_path):
    staging, out = tmp_path / "stage", tmp_path / "out"
    out.mkdir()
    writer = _writer_with_tails(staging)
    early = _early(staging, out, writer)
    writer.trim_to_tail("logs/api.log", 100_000)  # --max-size's cut, through the writer
    writer.write_bytes("logs/sendmail.log", _text(0.3, 9))  # the same size, other bytes
    writer.forget("logs/small.log")
    writer.write_text("summary.html", "<html>late</html>\n")
    try:
        path = archive.pack(staging, out, "top", "7z", early=early)
    finally:
        early.discard()
    assert [p.name for p in out.iterdir()] == [path.name] == ["top.7z"], "no partial file left"
    _manifest_matches(_stock_extract(STOCK[0], path, tmp_path / "x") / "top", writer)


def test_an_unchanged_bundle_keeps_its_early_folders(tmp_path):
    staging, out = tmp_path / "stage", tmp_path / "out"
    out.mkdir()
    writer = _writer_with_tails(staging)
    early = _early(staging, out, writer)
    early._thread.join(30)  # done with both tails: finish() would stop it where it is
    writer.write_json("manifest.json", {"files": []})
    try:
        path = archive.pack(staging, out, "top", "7z", early=early)
    finally:
        early.discard()
    listing = subprocess.run([STOCK[0], "l", "-slt", str(path)], capture_output=True, text=True).stdout
    assert "Blocks = 3" in listing, "one folder per large tail, one for the rest"
    _manifest_matches(_py7zr_extract(path, tmp_path / "x") / "top", writer)


def test_discard_stops_the_thread_and_removes_the_partial_file(tmp_path):
    staging, out = tmp_path / "stage", tmp_path / "out"
    out.mkdir()
    writer = BundleWriter(staging, Scrubber.for_bundle(()))
    for index in range(4):
        writer.write_bytes(f"logs/noise{index}.log", _noise(4, index))
    early = _early(staging, out, writer)
    deadline = time.monotonic() + 10
    while early.path.stat().st_size <= sevenzip.START_HEADER_SIZE and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    early.discard()
    assert time.monotonic() - started < 6
    assert list(out.iterdir()) == []
    assert not any(t.name == "akdiag-prepack" for t in __import__("threading").enumerate())
    assert early.finish(staging, "top") is None, "a discarded early part serves no archive"


def test_without_a_partial_file_the_archive_is_written_whole(tmp_path):
    staging, out = tmp_path / "stage", tmp_path / "out"
    out.mkdir()
    writer = _writer_with_tails(staging)
    early = prepack.for_run(staging, tmp_path / "missing", "top", "7z", None, writer)
    early.start()  # mkstemp fails: nothing begun
    assert early.path is None and early.finish(staging, "top") is None
    path = archive.pack(staging, out, "top", "7z", early=early)
    early.discard()
    _manifest_matches(_stock_extract(STOCK[0], path, tmp_path / "x") / "top", writer)


def test_only_a_plain_7z_is_begun_early(tmp_path):
    writer = BundleWriter(tmp_path / "stage", Scrubber.for_bundle(()))
    assert prepack.for_run(tmp_path, tmp_path, "top", "tar.gz", None, writer) is None
    assert prepack.for_run(tmp_path, tmp_path, "top", "dir", None, writer) is None
    assert prepack.for_run(tmp_path, tmp_path, "top", "7z", "secret", writer) is None


# -- through the command line -------------------------------------------------------------


def _extracted_matches_manifest(bundle: Path, target: Path) -> dict:
    root = _stock_extract(STOCK[0], bundle, target) / bundle.name[:-len(".7z")]
    manifest = json.loads((root / "manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    found = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    assert set(found) - {"manifest.json"} == set(listed)
    for rel, record in listed.items():
        data = found[rel].read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (record["size"], record["sha256"]), rel
    return manifest


@pytest.mark.parametrize("budget", [None, "300K"])
def test_a_collects_archive_holds_what_its_manifest_says(host, tmp_path, budget):
    """Large tails deflated early, then (with --max-size) cut and packed again: every file
    of the archive is the one the manifest's size and sha256 name."""
    for index in range(3):
        (host.basedir / "logs" / f"big{index}.log").write_bytes(_text(0.6, index))
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--basedir", str(host.basedir), "--output", str(out), "--quiet", "--log-bytes",
                  "2000000", *(["--max-size", budget] if budget else []))
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip())
    manifest = _extracted_matches_manifest(bundle, tmp_path / "x")
    if budget:
        assert manifest["size_budget"]["trimmed"], "the budget cut tails deflated early"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_a_stop_while_the_early_part_is_written_leaves_nothing(host, tmp_path):
    for index in range(6):
        (host.basedir / "logs" / f"noise{index}.log").write_bytes(_noise(3, index))
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir), "--output",
                             str(out), "--log-bytes", "4000000", "--log-lines", "100000"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp)))
    try:
        deadline = time.monotonic() + 60
        begun = False
        while not begun and time.monotonic() < deadline and proc.poll() is None:
            begun = any("-partial-" in p.name and p.is_file() and p.stat().st_size > sevenzip.START_HEADER_SIZE
                        for p in out.iterdir())
            time.sleep(0.005)
        assert begun, "the early part was never seen being written"
        proc.send_signal(signal.SIGTERM)
        _stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert list(out.iterdir()) == [] and list(tmp.iterdir()) == []
