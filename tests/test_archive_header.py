"""The 7z archive's header: plain (uncompressed) without --encrypt, so that packing does not
load an LZMA encoder for a few kB; encoded and encrypted with --encrypt, so that the file
names stay hidden.  Both written by a real `akdiag collect` and read by stock 7-Zip."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from conftest import akdiag

SEVEN_ZIP = "7z"
K_HEADER, K_ENCODED_HEADER = 0x01, 0x17  # the 7z format's property ids


def _next_header_kind(archive: Path) -> int:
    """The first byte of the archive's header: kHeader (plain) or kEncodedHeader."""
    with open(archive, "rb") as handle:
        start = handle.read(32)
        assert start[:6] == b"7z\xbc\xaf\x27\x1c"
        offset, size = struct.unpack("<QQ", start[12:28])
        assert size > 0
        handle.seek(32 + offset)
        return handle.read(1)[0]


def _collect(basedir: Path, out: Path, *options: str, env=None) -> Path:
    out.mkdir()
    done = akdiag("collect", "--basedir", str(basedir), "--output", str(out), "--quiet", "--log-lines", "5",
                  *options, env=env)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


@pytest.fixture(scope="module")
def basedir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plain7z") / "akd"
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "api.log").write_text("2026-11-30 10:00:00 INFO started\n" * 50)
    return root


def test_plain_header_that_stock_7zip_tests_and_lists(basedir, tmp_path):
    bundle = _collect(basedir, tmp_path / "out")
    assert _next_header_kind(bundle) == K_HEADER
    tested = subprocess.run([SEVEN_ZIP, "t", str(bundle)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert tested.returncode == 0 and "Everything is Ok" in tested.stdout, tested.stdout + tested.stderr
    listing = subprocess.run([SEVEN_ZIP, "l", str(bundle)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert listing.returncode == 0
    top = bundle.name[:-len(".7z")]
    for name in ("manifest.json", "summary.html", "logs/index.json"):
        assert f"{top}/{name}" in listing.stdout, name


def test_encrypted_header_still_hides_the_names(basedir, tmp_path):
    bundle = _collect(basedir, tmp_path / "out", "--encrypt", env={"AKDIAG_PASSWORD": "Zq-header-test"})
    assert _next_header_kind(bundle) == K_ENCODED_HEADER
    for password in ("-p", "-pwrong"):
        listing = subprocess.run([SEVEN_ZIP, "l", password, str(bundle)], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL)
        assert listing.returncode != 0 and "manifest.json" not in listing.stdout + listing.stderr
    tested = subprocess.run([SEVEN_ZIP, "t", "-pZq-header-test", str(bundle)], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    assert tested.returncode == 0 and "Everything is Ok" in tested.stdout, tested.stdout + tested.stderr


def test_deflate_at_the_archives_level_that_stock_7zip_and_the_reader_extract(tmp_path):
    """The 7z's Deflate stream is written at DEFLATE_LEVEL (smaller and slower at zlib's 6,
    larger at 1); stock 7-Zip and akdiag's reader give back the same bytes, encrypted too."""
    import random
    import zlib

    from collector.bundle import archive
    from collector.bundle.reader import open_bundle

    folder = tmp_path / "b"
    (folder / "logs").mkdir(parents=True)
    words = [f"word{n}" for n in range(400)]
    rng = random.Random(7)
    text = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(20000)).encode()
    (folder / "logs" / "api.log").write_bytes(text)
    (folder / "manifest.json").write_text('{"schema_version": 1, "files": []}\n')
    for password in (None, "Zq-level-test"):
        packed = tmp_path / f"b-{bool(password)}.7z"
        archive._write_7z(folder, packed, "b", password)
        stored = packed.stat().st_size
        at_6, at_level = (len(zlib.compress(text, level)) for level in (6, archive.DEFLATE_LEVEL))
        assert archive.DEFLATE_LEVEL < 6 and at_level > at_6
        assert abs(stored - at_level) < abs(stored - at_6), (stored, at_level, at_6)
        out = tmp_path / f"x-{bool(password)}"
        extracted = subprocess.run([SEVEN_ZIP, "x", "-y", f"-o{out}", f"-p{password or ''}", str(packed)],
                                   capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert extracted.returncode == 0, extracted.stdout + extracted.stderr
        assert (out / "b" / "logs" / "api.log").read_bytes() == text
        with open_bundle(packed, password=password) as reader:
            assert reader.read("logs/api.log", len(text) + 1) == text
