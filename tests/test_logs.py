"""The logs collector against real files in a temporary BASEDIR."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from pathlib import Path

import pytest

from collector.bundle.writer import BundleWriter
from collector.catalog import load_catalog
from collector.collectors import logs
from collector.context import CollectOptions, Context, Deadline
from collector.redact import Scrubber

GiB = 1024 ** 3


# -- helpers -----------------------------------------------------------------------


@pytest.fixture
def basedir(tmp_path: Path) -> Path:
    base = tmp_path / "altcraft"
    (base / "logs").mkdir(parents=True)
    return base


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bundle"
    path.mkdir()
    return path


def make_ctx(basedir: Path, bundle_dir: Path, deadline: float = 30, **options) -> Context:
    writer = BundleWriter(bundle_dir, Scrubber())
    return Context(
        basedir=basedir,
        basedir_source="test",
        catalog=load_catalog(),
        deadline=Deadline(deadline),
        writer=writer.for_collector("logs"),
        options=CollectOptions(**options),
    )


def run(basedir: Path, bundle_dir: Path, **options) -> dict:
    return logs.collect(make_ctx(basedir, bundle_dir, **options))


def entry(index: dict, path: str) -> dict:
    matches = [e for e in index["files"] if e["path"] == path]
    assert len(matches) == 1, f"{path} listed {len(matches)} times in {[e['path'] for e in index['files']]}"
    return matches[0]


def numbered_lines(n: int, prefix: str = "line") -> bytes:
    return b"".join(f"{prefix} {i}\n".encode() for i in range(1, n + 1))


def bundle_bytes(bundle_dir: Path, e: dict) -> bytes:
    return (bundle_dir / e["tail"]["bundle_path"]).read_bytes()


def reference_tail(content: bytes, max_lines: int, max_bytes: int):
    """The tail computed the obvious way, over the whole content."""
    lines = re.findall(rb"[^\n]*\n|[^\n]+$", content)
    kept = b"".join(lines[-max_lines:]) if max_lines > 0 else b""
    if len(kept) > max_bytes:
        kept = kept[len(kept) - max_bytes:]
    start = len(content) - len(kept)
    cut = bool(kept) and start > 0 and content[start - 1:start] != b"\n"
    return kept, cut, start


def tail_of(path: Path, max_lines: int, max_bytes: int, block_size: int = logs.BLOCK_SIZE) -> logs.Tail:
    fd = os.open(path, os.O_RDONLY)
    try:
        return logs.read_tail(fd, os.fstat(fd).st_size, max_lines, max_bytes, block_size)
    finally:
        os.close(fd)


def finish_despite_fifo(call, fifo: Path, seconds: float = 10):
    """Run `call` in a thread; if it blocks (it opened the FIFO), open the FIFO's
    other end so that it returns, and fail the test instead of hanging."""
    result = {}
    worker = threading.Thread(target=lambda: result.update(value=call()), daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail(f"blocked on the FIFO {fifo.name}")
    return result["value"]


# -- read_tail ---------------------------------------------------------------------


def test_read_tail_last_n_lines_exact(tmp_path: Path):
    path = tmp_path / "a.log"
    path.write_bytes(numbered_lines(100))
    tail = tail_of(path, 3, 1 << 20)
    assert tail.data == b"line 98\nline 99\nline 100\n"
    assert tail.first_line_cut is False
    assert tail.start_offset == len(numbered_lines(97))
    assert tail.file_size == len(numbered_lines(100))


def test_read_tail_matches_reference_across_block_boundaries(tmp_path: Path):
    rng = random.Random(1234)
    path = tmp_path / "r.log"
    for _ in range(400):
        content = bytes(rng.choice(b"ab\n\r\xff") for _ in range(rng.randint(0, 80)))
        path.write_bytes(content)
        max_lines, max_bytes, block = rng.randint(0, 12), rng.randint(0, 60), rng.randint(1, 9)
        got = tail_of(path, max_lines, max_bytes, block)
        assert (got.data, got.first_line_cut, got.start_offset) == reference_tail(content, max_lines, max_bytes), (
            content, max_lines, max_bytes, block)


def test_read_tail_handles_a_file_that_shrank(tmp_path: Path):
    path = tmp_path / "s.log"
    path.write_bytes(numbered_lines(10))
    fd = os.open(path, os.O_RDONLY)
    try:
        stale_size = os.fstat(fd).st_size
        os.truncate(path, len(numbered_lines(4)))  # shrinks after the size was taken
        tail = logs.read_tail(fd, stale_size, 2, 1 << 20)
    finally:
        os.close(fd)
    assert tail.data == b"line 3\nline 4\n"
    assert tail.file_size == len(numbered_lines(4))


def test_read_tail_ignores_bytes_appended_after_the_size(tmp_path: Path):
    path = tmp_path / "g.log"
    path.write_bytes(numbered_lines(5))
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        with open(path, "ab") as handle:
            handle.write(b"appended later\n")
        tail = logs.read_tail(fd, size, 2, 1 << 20)
    finally:
        os.close(fd)
    assert tail.data == b"line 4\nline 5\n"


def test_tail_file_of_a_vanished_path_raises_file_not_found(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        logs.tail_file(str(tmp_path / "gone.log"), 10, 100)


def test_rotation_names():
    for name in ("x.log.1", "x.1", "x.log.2.gz", "x-20260101.log.gz", "x.log-20260101", "a.bz2",
                 "a.xz", "a.zst", "a.ZIP", "x.log.2026-01-01"):
        assert logs.is_rotated_or_compressed(name), name
    for name in ("x.log", "api.log", "x-20260101.log", "error_log", "trk_amazon_sns.log"):
        assert not logs.is_rotated_or_compressed(name), name


# -- collect -----------------------------------------------------------------------


def test_collect_tails_last_n_lines_exactly(basedir: Path, bundle_dir: Path):
    (basedir / "logs" / "api.log").write_bytes(numbered_lines(50))
    index = run(basedir, bundle_dir, log_lines=5)
    e = entry(index, "api.log")
    assert e["state"] == "tailed" and e["type"] == "file"
    assert e["size"] == len(numbered_lines(50))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["mtime"])
    assert e["tail"]["bundle_path"] == "logs/api.log"
    assert e["tail"]["lines"] == 5
    assert e["tail"]["first_line_cut"] is False
    assert bundle_bytes(bundle_dir, e) == b"".join(f"line {i}\n".encode() for i in range(46, 51))
    assert index["exists"] is True and index["errors"] == []
    assert index["root"] == str(basedir / "logs")
    assert index["limits"] == {"lines": 5, "bytes": 2 * 1024 * 1024, "total_bytes": 100 * 1024 * 1024, "depth": 6,
                               "since": None}
    assert index["totals"] == {"files": 1, "tailed": 1, "tail_bytes": e["tail"]["bytes"], "left_out": 0}


def test_collect_caps_the_tail_in_bytes(basedir: Path, bundle_dir: Path):
    content = numbered_lines(1000)
    (basedir / "logs" / "big.log").write_bytes(content)
    index = run(basedir, bundle_dir, log_lines=1000, log_bytes=100)
    e = entry(index, "big.log")
    data = bundle_bytes(bundle_dir, e)
    assert len(data) == 100 == e["tail"]["bytes"]
    assert data == content[-100:]
    assert e["tail"]["started_at_offset"] == len(content) - 100
    assert e["tail"]["file_size_at_read"] == len(content)


def test_overlong_first_line_is_kept_and_marked_cut(basedir: Path, bundle_dir: Path):
    content = b"short\n" + b"x" * 500 + b" " + b"y" * 80 + b"\n"
    (basedir / "logs" / "long.log").write_bytes(content)
    index = run(basedir, bundle_dir, log_lines=10, log_bytes=100)
    e = entry(index, "long.log")
    assert e["tail"]["first_line_cut"] is True
    assert e["tail"]["lines"] == 1 and e["tail"]["bytes"] == 100
    # the partial line may hold the end of a secret whose key was cut off: withheld whole
    assert bundle_bytes(bundle_dir, e) == b"[cut]\n"


def test_cap_on_a_line_boundary_is_not_marked_cut(basedir: Path, bundle_dir: Path):
    (basedir / "logs" / "edge.log").write_bytes(b"aaaa\nbbbb\ncccc\n")
    index = run(basedir, bundle_dir, log_lines=10, log_bytes=10)
    e = entry(index, "edge.log")
    assert bundle_bytes(bundle_dir, e) == b"bbbb\ncccc\n"
    assert e["tail"]["first_line_cut"] is False


def test_non_utf8_bytes_and_crlf_are_kept_byte_for_byte(basedir: Path, bundle_dir: Path):
    content = b"first\r\n\xff\xfe caf\xe9 \x00 nul\r\nlone \r cr\r\n\xc3\x28 bad utf8\r\nend\r\n"
    (basedir / "logs" / "bin.log").write_bytes(content)
    index = run(basedir, bundle_dir)
    assert bundle_bytes(bundle_dir, entry(index, "bin.log")) == content


def test_file_without_trailing_newline(basedir: Path, bundle_dir: Path):
    (basedir / "logs" / "nonl.log").write_bytes(b"one\ntwo\nthree")
    index = run(basedir, bundle_dir, log_lines=2)
    e = entry(index, "nonl.log")
    assert bundle_bytes(bundle_dir, e) == b"two\nthree"
    assert e["tail"]["lines"] == 2
    assert e["tail"]["first_line_cut"] is False


def test_fifo_is_listed_and_never_opened(basedir: Path, bundle_dir: Path):
    fifo = basedir / "logs" / "pipe.log"
    os.mkfifo(fifo)
    index = finish_despite_fifo(lambda: run(basedir, bundle_dir), fifo)
    e = entry(index, "pipe.log")
    assert e["type"] == "fifo"
    assert e["state"] == "listed"
    assert e["reason"] == "not a regular file"
    assert e["tail"] is None


def test_symlink_loop_is_recorded_not_fatal(basedir: Path, bundle_dir: Path):
    log_dir = basedir / "logs"
    os.symlink("b.log", log_dir / "a.log")
    os.symlink("a.log", log_dir / "b.log")
    os.symlink("self.log", log_dir / "self.log")
    (log_dir / "ok.log").write_bytes(b"fine\n")
    index = run(basedir, bundle_dir)
    for name in ("a.log", "b.log", "self.log"):
        e = entry(index, name)
        assert e["type"] == "symlink"
        assert e["reason"] == "symlink loop"
        assert e["tail"] is None
    assert entry(index, "ok.log")["state"] == "tailed"


def test_symlink_outside_basedir_is_not_followed(basedir: Path, bundle_dir: Path, tmp_path: Path):
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_bytes(b"TOPSECRET-CONTENT\n")
    os.symlink(secret, basedir / "logs" / "evil.log")
    os.symlink("../../outside/shadow", basedir / "logs" / "relative-evil.log")
    index = run(basedir, bundle_dir)
    for name in ("evil.log", "relative-evil.log"):
        e = entry(index, name)
        assert e["state"] == "listed"
        assert e["reason"] == f"symlink points outside BASEDIR: {os.path.realpath(secret)}"
        assert e["tail"] is None
    for path in bundle_dir.rglob("*"):
        if path.is_file():
            assert b"TOPSECRET" not in path.read_bytes(), path


def test_symlink_to_a_file_inside_basedir_is_tailed(basedir: Path, bundle_dir: Path):
    (basedir / "var").mkdir()
    (basedir / "var" / "real.log").write_bytes(b"inside\n")
    os.symlink("../var/real.log", basedir / "logs" / "link.log")
    index = run(basedir, bundle_dir)
    e = entry(index, "link.log")
    assert e["type"] == "symlink" and e["state"] == "tailed"
    assert e["target"] == os.path.realpath(basedir / "var" / "real.log")
    assert bundle_bytes(bundle_dir, e) == b"inside\n"


def test_symlinked_directory_is_listed_not_descended(basedir: Path, bundle_dir: Path):
    other = basedir / "archive"
    other.mkdir()
    (other / "hidden.log").write_bytes(b"should not be read\n")
    os.symlink(other, basedir / "logs" / "archive")
    index = run(basedir, bundle_dir)
    e = entry(index, "archive")
    assert e["type"] == "symlink"
    assert e["reason"] == "symlinked directory: not descended"
    assert [x["path"] for x in index["files"]] == ["archive"]
    assert not (bundle_dir / "logs" / "archive").exists()


def test_rotated_and_compressed_logs_are_listed_only(basedir: Path, bundle_dir: Path):
    names = ["x.log.1", "x.1", "x.log.2.gz", "x-20260101.log.gz", "a.bz2", "a.xz", "a.zst", "a.zip"]
    for name in names:
        (basedir / "logs" / name).write_bytes(b"old content\n")
    (basedir / "logs" / "x.log").write_bytes(b"live\n")
    index = run(basedir, bundle_dir)
    for name in names:
        e = entry(index, name)
        assert e["state"] == "listed", name
        assert e["reason"] == "rotated or compressed: listed only"
        assert e["size"] == len(b"old content\n")
        assert not (bundle_dir / "logs" / name).exists()
    assert entry(index, "x.log")["state"] == "tailed"
    assert index["totals"] == {"files": len(names) + 1, "tailed": 1, "tail_bytes": 5, "left_out": 0}


def test_total_budget_goes_to_newest_files_first(basedir: Path, bundle_dir: Path):
    now = time.time()
    for age, name in enumerate(["newest.log", "middle.log", "oldest.log"]):
        path = basedir / "logs" / name
        path.write_bytes(b"y" * 99 + b"\n")
        os.utime(path, (now - age * 3600, now - age * 3600))
    # "aaa" sorts first by name but is the oldest
    (basedir / "logs" / "aaa.log").write_bytes(b"z\n")
    os.utime(basedir / "logs" / "aaa.log", (now - 99999, now - 99999))
    index = run(basedir, bundle_dir, log_bytes=100, log_total_bytes=150)
    assert entry(index, "newest.log")["tail"]["bytes"] == 100
    middle = entry(index, "middle.log")
    assert middle["state"] == "tailed" and middle["tail"]["bytes"] == 50
    assert middle["tail"]["first_line_cut"] is True
    for name in ("oldest.log", "aaa.log"):
        e = entry(index, name)
        assert e["state"] == "listed"
        assert e["reason"] == "total tail budget of 150 bytes used up"
        assert e["tail"] is None
    assert index["totals"]["tail_bytes"] == 150
    assert index["errors"] == []


def test_missing_logs_folder(tmp_path: Path, bundle_dir: Path):
    base = tmp_path / "nologs"
    base.mkdir()
    index = run(base, bundle_dir)
    assert index["exists"] is False
    assert index["files"] == []
    assert len(index["errors"]) == 1
    assert str(base / "logs") in index["errors"][0]


def test_sparse_multi_gigabyte_file_is_tailed_fast(basedir: Path, bundle_dir: Path):
    path = basedir / "logs" / "huge.log"
    with open(path, "wb") as handle:
        handle.truncate(4 * GiB)
        handle.seek(4 * GiB)
        handle.write(numbered_lines(100))
    started = time.monotonic()
    index = run(basedir, bundle_dir, log_lines=20)
    elapsed = time.monotonic() - started
    e = entry(index, "huge.log")
    assert e["size"] == 4 * GiB + len(numbered_lines(100))
    assert bundle_bytes(bundle_dir, e) == b"".join(f"line {i}\n".encode() for i in range(81, 101))
    assert e["tail"]["started_at_offset"] == 4 * GiB + len(numbered_lines(80))
    assert elapsed < 2.0, f"tailing a sparse 4 GiB file took {elapsed:.2f} s"


def test_file_vanishing_between_listing_and_reading(basedir: Path, bundle_dir: Path):
    (basedir / "logs" / "rotating.log").write_bytes(b"soon gone\n")
    (basedir / "logs" / "stays.log").write_bytes(b"here\n")
    ctx = make_ctx(basedir, bundle_dir)
    root = basedir / "logs"
    listing = logs.list_logs(basedir, 6, ctx.deadline)
    os.unlink(root / "rotating.log")
    errors = logs.take_tails(listing, ctx.writer, ctx.options, ctx.deadline)
    gone = next(e for e in listing.entries if e["path"] == "rotating.log")
    assert gone["state"] == "skipped"
    assert "vanished" in gone["error"]
    assert gone["tail"] is None
    assert next(e for e in listing.entries if e["path"] == "stays.log")["state"] == "tailed"
    assert errors == []


def test_file_replaced_by_fifo_after_listing_is_not_read(basedir: Path, bundle_dir: Path):
    path = basedir / "logs" / "swapped.log"
    path.write_bytes(b"x\n")
    ctx = make_ctx(basedir, bundle_dir)
    root = basedir / "logs"
    listing = logs.list_logs(basedir, 6, ctx.deadline)
    path.unlink()
    os.mkfifo(path)
    finish_despite_fifo(lambda: logs.take_tails(listing, ctx.writer, ctx.options, ctx.deadline), path)
    e = listing.entries[0]
    assert e["reason"] == "not a regular file" and e["tail"] is None


def test_depth_limit(basedir: Path, bundle_dir: Path):
    deep = basedir / "logs" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (basedir / "logs" / "a" / "one.log").write_bytes(b"1\n")
    (basedir / "logs" / "a" / "b" / "two.log").write_bytes(b"2\n")
    (deep / "three.log").write_bytes(b"3\n")
    index = run(basedir, bundle_dir, log_depth=2)
    paths = [e["path"] for e in index["files"]]
    assert paths == ["a", "a/b", "a/one.log"]
    assert entry(index, "a/b")["reason"] == "depth limit"
    assert entry(index, "a/b")["type"] == "dir"
    assert entry(index, "a/one.log")["state"] == "tailed"
    assert (bundle_dir / "logs" / "a" / "one.log").read_bytes() == b"1\n"
    index = run(basedir, bundle_dir, log_depth=4)
    assert entry(index, "a/b/c/three.log")["state"] == "tailed"


def test_deadline_lists_remaining_files(basedir: Path, bundle_dir: Path):
    (basedir / "logs" / "a.log").write_bytes(b"a\n")
    ctx = make_ctx(basedir, bundle_dir)
    root = basedir / "logs"
    listing = logs.list_logs(basedir, 6, ctx.deadline)
    errors = logs.take_tails(listing, ctx.writer, ctx.options, Deadline(0))
    assert listing.entries[0]["reason"] == "deadline"
    assert listing.entries[0]["state"] == "listed"
    assert errors and "deadline" in errors[0]


def test_a_log_named_index_json_does_not_clobber_the_index(basedir: Path, bundle_dir: Path):
    (basedir / "logs" / "index.json").write_bytes(b"{}\n")
    index = run(basedir, bundle_dir)
    e = entry(index, "index.json")
    assert e["tail"]["bundle_path"] != "logs/index.json"
    assert bundle_bytes(bundle_dir, e) == b"{}\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_an_error_for_that_file_only(basedir: Path, bundle_dir: Path):
    locked = basedir / "logs" / "locked.log"
    locked.write_bytes(b"no\n")
    locked.chmod(0)
    (basedir / "logs" / "open.log").write_bytes(b"yes\n")
    index = run(basedir, bundle_dir)
    e = entry(index, "locked.log")
    assert e["state"] == "error" and "permission denied" in e["error"]
    assert entry(index, "open.log")["state"] == "tailed"
    assert len(index["errors"]) == 1 and "locked.log" in index["errors"][0]


# -- the listing's cap ---------------------------------------------------------------


def test_the_capped_listing_keeps_the_newest_files_and_says_how_many_it_left_out(basedir: Path,
                                                                                  bundle_dir: Path):
    """Past MAX_ENTRIES the oldest are left out, whatever their names: old logs named to
    come first ("a-...") give way to new ones named to come last ("z-..."), in a sub-folder too."""
    logs_dir = basedir / "logs"
    (logs_dir / "zz").mkdir()
    old, new = 60, 40
    long_ago, now = time.time() - 400 * 86400, time.time()
    for i in range(logs.MAX_ENTRIES - new):  # rotated: listed, not read
        path = logs_dir / f"m-{i:05d}.log.1"
        path.write_bytes(b"x\n")
        os.utime(path, (now - 86400, now - 86400))
    for i in range(old):
        path = logs_dir / f"a-{i:03d}.log"
        path.write_bytes(b"old\n")
        os.utime(path, (long_ago, long_ago))
    for i in range(new - 1):
        (logs_dir / "zz" / f"z-{i:03d}.log").write_bytes(b"new\n")
    os.utime(logs_dir / "zz", (now, now))
    index = run(basedir, bundle_dir)
    paths = [e["path"] for e in index["files"]]
    assert len(paths) == logs.MAX_ENTRIES and index["totals"]["left_out"] == old
    assert not any(p.startswith("a-") for p in paths)
    assert sum(p.startswith("zz/z-") for p in paths) == new - 1 and "zz" in paths
    assert paths == sorted(paths, key=lambda p: p.split("/"))  # still in the walk's (name) order
    assert entry(index, "zz/z-000.log")["state"] == "tailed"
    assert not (bundle_dir / "logs" / "a-000.log").exists()
    message = [e for e in index["errors"] if "newest" in e]
    assert len(message) == 1 and f"{old} older ones left out" in message[0], index["errors"]


def test_a_listing_under_the_cap_leaves_nothing_out(basedir: Path, bundle_dir: Path):
    for i in range(50):
        (basedir / "logs" / f"a-{i}.log").write_bytes(b"line\n")
    index = run(basedir, bundle_dir)
    assert len(index["files"]) == 50 and index["totals"]["left_out"] == 0
    assert not [e for e in index["errors"] if "left out" in e]


def test_a_listing_past_its_deadline_stops_at_once_and_says_so(basedir: Path):
    """The deadline is looked at before each entry, the first one included: an expired
    deadline lists nothing, and an ample one lists every entry."""
    entries = 192
    for i in range(entries):
        (basedir / "logs" / f"a-{i:04d}.log").write_bytes(b"line\n")
    expired = logs.list_logs(basedir, 6, Deadline(0))
    try:
        assert expired.entries == [] and len(expired.errors) == 1
        assert "run deadline reached while listing" in expired.errors[0]
        assert "the log listing is incomplete" in expired.errors[0]
    finally:
        expired.close()
    ample = logs.list_logs(basedir, 6, Deadline(60))
    try:
        assert len(ample.entries) == entries and ample.errors == []
    finally:
        ample.close()


def test_plain_bundle_paths_are_kept_and_odd_ones_normalised_or_refused(tmp_path: Path):
    from collector.bundle.writer import BundleWriteError, _safe_relpath

    for plain in ("logs/api.log", "a", "logs/x y/é.log", "logs/..hidden", "logs/a..b"):
        assert _safe_relpath(plain) == plain
    assert _safe_relpath("logs//api.log") == "logs/api.log"
    assert _safe_relpath("./logs/./api.log") == "logs/api.log"
    assert _safe_relpath("logs/") == "logs"
    for bad in ("", "/etc/passwd", "logs/../../x", "..", ".", "//x"):
        with pytest.raises(BundleWriteError):
            _safe_relpath(bad)


def test_tails_share_folders_made_once_and_a_folder_removed_since_is_made_again(tmp_path: Path):
    import shutil

    from collector.bundle.writer import BundleWriteError

    writer = BundleWriter(tmp_path / "bundle", Scrubber.for_bundle())
    for name in ("logs/live/a.log", "logs/live/b.log", "logs/c.log", "logs/old/deep/d.log"):
        writer.write_bytes(name, b"line\n")
    assert sorted(str(p.relative_to(writer.root)) for p in writer.root.rglob("*.log")) == \
        ["logs/c.log", "logs/live/a.log", "logs/live/b.log", "logs/old/deep/d.log"]
    shutil.rmtree(writer.root / "logs" / "live")  # e.g. a transfer's folder, removed once done with
    writer.write_bytes("logs/live/e.log", b"again\n")
    assert (writer.root / "logs" / "live" / "e.log").read_bytes() == b"again\n"
    shutil.rmtree(writer.root)  # the bundle folder itself gone: a late write never makes it again
    with pytest.raises(BundleWriteError):
        writer.write_bytes("logs/live/f.log", b"late\n")
    assert not writer.root.exists()
