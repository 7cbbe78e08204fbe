"""collector.safeopen against real folders, links and FIFOs."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from collector import safeopen
from collector.safeopen import LeavesBasedir, NotRegularFile, SafeRoot, escaped_name, read_under


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "real-base"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_bytes(b"inside\n")
    (tmp_path / "outside.txt").write_bytes(b"OUTSIDE\n")
    return root


def test_relative_links_that_stay_inside_are_followed(base: Path):
    os.symlink("../a/b/f.txt", base / "a" / "up.txt")
    os.symlink("a/b", base / "shortcut")
    with SafeRoot(base) as root:
        assert root.read_small("a/up.txt", 100) == (b"inside\n", False)
        assert root.read_small("shortcut/f.txt", 100) == (b"inside\n", False)
        fd, st, parts = root.open_file("shortcut/f.txt")
        os.close(fd)
        assert parts == ["a", "b", "f.txt"]


def test_links_that_leave_basedir_are_refused(base: Path, tmp_path: Path):
    os.symlink("../../outside.txt", base / "a" / "out-rel.txt")
    os.symlink(str(tmp_path / "outside.txt"), base / "out-abs.txt")
    os.symlink(str(tmp_path), base / "a" / "outdir")
    with SafeRoot(base) as root:
        for path in ("a/out-rel.txt", "out-abs.txt", "a/outdir/outside.txt", "../outside.txt"):
            with pytest.raises(LeavesBasedir):
                root.read_small(path, 100)


def test_absolute_links_through_the_name_basedir_was_given_by(base: Path, tmp_path: Path):
    given = tmp_path / "opt-akd"
    os.symlink(base, given)  # BASEDIR named through a link, as /opt/akd -> /data/akd
    os.symlink(str(given / "a" / "b" / "f.txt"), base / "via-given.txt")
    os.symlink(str(base / "a" / "b" / "f.txt"), base / "via-real.txt")
    assert read_under(given, given / "via-given.txt", 100) == (b"inside\n", False)
    assert read_under(given, "via-real.txt", 100) == (b"inside\n", False)


def test_loops_and_unfollowed_links_end_in_eloop(base: Path):
    os.symlink("loop2", base / "loop1")
    os.symlink("loop1", base / "loop2")
    os.symlink("a/b/f.txt", base / "link.txt")
    with SafeRoot(base) as root:
        with pytest.raises(OSError) as caught:
            root.read_small("loop1", 100)
        assert caught.value.errno == errno.ELOOP
        with pytest.raises(OSError) as caught:
            root.open_file("link.txt", follow=False)
        assert caught.value.errno == errno.ELOOP


def test_a_fifo_or_a_folder_is_refused_without_blocking(base: Path):
    os.mkfifo(base / "pipe")
    with SafeRoot(base) as root:
        with pytest.raises(NotRegularFile):
            root.open_file("pipe")
        with pytest.raises(NotRegularFile):
            root.open_file("a")
        with pytest.raises(NotADirectoryError):
            root.open_dir("a/b/f.txt")


def test_read_small_is_capped(base: Path):
    (base / "big").write_bytes(b"x" * 1000)
    assert read_under(base, "big", 10) == (b"x" * 10, True)


def test_escaped_names_are_valid_utf8_and_deterministic():
    assert escaped_name("plain.log") == "plain.log"
    assert escaped_name("café.log") == "café.log"
    assert escaped_name(os.fsdecode(b"\xff\xfe.log")) == "%FF%FE.log"
    assert escaped_name("a\\b") == "a%5Cb"
    assert safeopen.split("a//./b/") == ["a", "b"]
