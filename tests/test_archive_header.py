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
