"""`collect --since`: logs read back to a time by their timestamps, seeking in plain
files, into rotated and gzip-compressed ones, within the byte budget (newest kept)."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path
from typing import List, Tuple

import pytest
from click.testing import CliRunner

from collector.redact import Scrubber
from collector.bundle.writer import BundleWriter
from collector.catalog import load_catalog
from collector.cli import main
from collector.collectors import logs
from collector.context import CollectOptions, Context, Deadline
from collector import logrotated, logtime, logwindow

HOUR = 3600.0


@pytest.fixture
def basedir(tmp_path: Path) -> Path:
    (tmp_path / "akd" / "logs").mkdir(parents=True)
    return tmp_path / "akd"


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    (tmp_path / "bundle").mkdir()
    return tmp_path / "bundle"


def run(basedir: Path, bundle_dir: Path, **options) -> dict:
    writer = BundleWriter(bundle_dir, Scrubber())
    ctx = Context(basedir=basedir, basedir_source="test", catalog=load_catalog(), deadline=Deadline(60),
                  writer=writer.for_collector("logs"), options=CollectOptions(**options))
    return logs.collect(ctx)


def entry(index: dict, path: str) -> dict:
    return next(e for e in index["files"] if e["path"] == path)


def stamp(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1e6):06d}Z"


def log_lines(start: float, end: float, step: float, tag: str) -> List[Tuple[float, bytes]]:
    """Lines every `step` seconds in [start, end); every tenth has an untimed continuation."""
    out, moment, n = [], start, 0
    while moment < end:
        line = f"{stamp(moment)} INFO  [{tag}] request {n} served in 3 ms\n".encode()
        if n % 10 == 0:
            line += b"    at handler.go:42 (continued, no timestamp)\n"
        out.append((moment, line))
        moment += step
        n += 1
    return out


def write_part(path: Path, lines: List[Tuple[float, bytes]], compress: bool = False) -> None:
    data = b"".join(line for _, line in lines)
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    last = lines[-1][0]
    os.utime(path, (last, last))


@pytest.fixture
def rotated(basedir: Path):
    """x.log.3.gz, x.log.2.gz, x.log.1 and x.log: eight hours of lines, two per part."""
    now = time.time()
    start = now - 8 * HOUR
    parts = [("x.log.3.gz", True), ("x.log.2.gz", True), ("x.log.1", False), ("x.log", False)]
    all_lines = []
    for n, (name, compress) in enumerate(parts):
        lines = log_lines(start + n * 2 * HOUR, start + (n + 1) * 2 * HOUR, 1.5, name)
        write_part(basedir / "logs" / name, lines, compress)
        all_lines += lines
    return start, all_lines


def window_text(bundle_dir: Path, index: dict, names: List[str]) -> bytes:
    return b"".join((bundle_dir / entry(index, name)["tail"]["bundle_path"]).read_bytes() for name in names)


def test_window_reaches_into_gzip_rotations_exactly(basedir, bundle_dir, rotated):
    start, all_lines = rotated
    since = start + 3.2 * HOUR + 0.7  # inside x.log.2.gz, between two lines
    index = run(basedir, bundle_dir, since=since)
    expected = b"".join(line for moment, line in all_lines if moment >= since)
    got = window_text(bundle_dir, index, ["x.log.2.gz", "x.log.1", "x.log"])
    assert got == expected
    gz = entry(index, "x.log.2.gz")
    assert gz["tail"]["bundle_path"] == "logs/x.log.2" and gz["tail"]["compressed"] == "gzip"
    assert gz["window"]["since"] == logwindow.iso_utc(since) and gz["window"]["cut"] is False
    assert entry(index, "x.log.3.gz")["tail"] is None
    assert entry(index, "x.log.3.gz")["reason"] in (logwindow.REASON_OLDER, logwindow.REASON_COVERED)
    assert entry(index, "x.log")["window"]["last_time"] == logwindow.iso_utc(all_lines[-1][0])
    assert index["limits"]["since"] == logwindow.iso_utc(since)


def test_window_inside_the_live_file_reads_no_rotation(basedir, bundle_dir, rotated):
    start, all_lines = rotated
    since = start + 7 * HOUR + 0.7  # between two lines
    index = run(basedir, bundle_dir, since=since)
    assert window_text(bundle_dir, index, ["x.log"]) == b"".join(l for m, l in all_lines if m >= since)
    for name in ("x.log.1", "x.log.2.gz", "x.log.3.gz"):
        assert entry(index, name)["tail"] is None and entry(index, name)["reason"] == logwindow.REASON_COVERED


def test_seek_reads_a_small_part_of_a_big_file(basedir, bundle_dir):
    now = time.time()
    lines = log_lines(now - 20 * HOUR, now, 0.25, "big")  # ~290,000 lines, ~20 MB
    write_part(basedir / "logs" / "big.log", lines)
    size = (basedir / "logs" / "big.log").stat().st_size
    since = now - 0.5 * HOUR + 0.1  # between two lines
    index = run(basedir, bundle_dir, since=since)
    e = entry(index, "big.log")
    window = b"".join(l for m, l in lines if m >= since)
    assert (bundle_dir / e["tail"]["bundle_path"]).read_bytes() == window
    assert size > 15 * 1024 * 1024
    # the window itself, plus a few 16 KiB probes per halving: far from the file's size
    assert e["tail"]["bytes_read"] < len(window) + 64 * logtime.PROBE_BYTES
    assert e["tail"]["started_at_offset"] == size - len(window)


def test_window_bigger_than_the_budget_keeps_the_newest(basedir, bundle_dir, rotated):
    start, all_lines = rotated
    index = run(basedir, bundle_dir, since=start, log_total_bytes=200_000, log_bytes=1000)
    live = entry(index, "x.log")
    data = (bundle_dir / live["tail"]["bundle_path"]).read_bytes()
    assert live["window"]["cut"] is True and "window cut" in live["reason"]
    assert len(data) <= 200_000 and data.endswith(all_lines[-1][1])
    whole = b"".join(l for _, l in all_lines)
    assert whole.endswith(data) and data.startswith(b"20")  # whole lines, from a timestamped one
    assert logwindow.iso_utc(start + 6 * HOUR) < live["window"]["first_time"] < logwindow.iso_utc(start + 7.9 * HOUR)
    assert entry(index, "x.log.1")["tail"] is None  # the budget was used up by the newest part


def test_a_log_without_timestamps_falls_back_to_its_tail(basedir, bundle_dir):
    (basedir / "logs" / "plain.log").write_bytes(b"".join(b"no time here %d\n" % n for n in range(1000)))
    index = run(basedir, bundle_dir, since=time.time() - HOUR, log_lines=10)
    e = entry(index, "plain.log")
    assert e["reason"] == logwindow.REASON_NO_TIMES and e["tail"]["lines"] == 10
    assert (bundle_dir / e["tail"]["bundle_path"]).read_bytes().startswith(b"no time here 990\n")


def test_a_log_not_written_since_is_not_read(basedir, bundle_dir, rotated):
    start, _ = rotated
    old = basedir / "logs" / "old.log"
    write_part(old, log_lines(start - 5 * HOUR, start - 4 * HOUR, 60, "old"))
    index = run(basedir, bundle_dir, since=start + 5 * HOUR)
    assert entry(index, "old.log")["tail"] is None and entry(index, "old.log")["reason"] == logwindow.REASON_NOT_SINCE


def test_without_since_the_tails_stay_as_they_were(basedir, bundle_dir, rotated):
    index = run(basedir, bundle_dir, log_lines=5)
    assert entry(index, "x.log")["tail"]["lines"] == 5 and "window" not in entry(index, "x.log")
    assert entry(index, "x.log.2.gz")["reason"] == logs.REASON_ROTATED
    assert index["limits"]["since"] is None


def test_a_gzip_bomb_stops_at_the_decompressed_bound(tmp_path):
    path = tmp_path / "bomb.log.gz"
    with gzip.open(path, "wb") as handle:
        for _ in range(64):
            handle.write(b"\0" * (1 << 20))
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(logrotated.WindowStopped, match="decompressed"):
            logrotated.compressed_window(fd, ".gz", 0.0, 1 << 20, time.time(), Deadline(30), limit=8 << 20)
    finally:
        os.close(fd)


def test_multi_member_gzip_is_read_whole(tmp_path):
    now = time.time()
    first, second = log_lines(now - 100, now - 50, 1, "a"), log_lines(now - 50, now, 1, "b")
    path = tmp_path / "m.log.1.gz"
    path.write_bytes(gzip.compress(b"".join(l for _, l in first)) + gzip.compress(b"".join(l for _, l in second)))
    fd = os.open(path, os.O_RDONLY)
    try:
        window = logrotated.compressed_window(fd, ".gz", now - 74.5, 1 << 20, now, Deadline(30))
    finally:
        os.close(fd)
    assert window.data == b"".join(l for m, l in first + second if m >= now - 74.5) and window.covered


@pytest.mark.parametrize("name,base", [("x.log.1", "x.log"), ("x.log.2.gz", "x.log"), ("x.log-20260101", "x.log"),
                                       ("x-20260101.log.gz", "x.log"), ("mongod.log.2026-11-30T10-00-00", None)])
def test_rotation_base_names(name, base):
    if base is None:
        assert logrotated.base_name(name) != "mongod.log.2026"
    else:
        assert logrotated.base_name(name) == base


REAL_LINES = [
    (b'{"t":{"$date":"2026-11-30T14:00:00.123+00:00"},"s":"I",  "c":"NETWORK",  "id":22943, "msg":"Connection"}',
     "2026-11-30T14:00:00.123+00:00"),
    (b"2026-11-30 14:00:00.123456+00:00 [info] <0.230.0> accepting AMQP connection", "2026-11-30T14:00:00.123456Z"),
    (b"2026.11.30 14:00:00.123456 [ 1234 ] {} <Information> Application: Ready", "2026-11-30T14:00:00.123456"),
    (b"1234:M 30 Nov 2026 14:00:00.123 * Ready to accept connections tcp", "2026-11-30T14:00:00.123"),
    (b"I20261130 14:00:00.123456 12345 server.cc:123] Ready", "2026-11-30T14:00:00.123456"),
    (b"2026-11-30 14:00:00.123 [INFO ] ssdb-server 1.9.8", "2026-11-30T14:00:00.123"),
    (b"2026/11/30 14:00:00 [error] 12#12: upstream timed out", "2026-11-30T14:00:00"),
    (b"2026-11-30 14:00:00,123 ERROR webcontrol: boom", "2026-11-30T14:00:00.123"),
]


@pytest.mark.parametrize("line,iso", REAL_LINES)
def test_real_timestamp_formats(line, iso):
    from datetime import datetime

    expected = datetime.fromisoformat(iso).timestamp()  # naive: local time, as akdiag reads it
    assert logtime.line_time(line) == pytest.approx(expected, abs=1e-6)


def test_year_less_formats_take_the_reference_year():
    reference = datetime_ts("2026-12-01T10:00:00")
    assert logtime.line_time(b"E1130 14:00:00.5 x", reference) == pytest.approx(datetime_ts("2026-11-30T14:00:00.5"))
    assert logtime.line_time(b"Dec 31 23:00:00 host x", reference) == pytest.approx(datetime_ts("2025-12-31T23:00:00"))
    assert logtime.line_time(b"no time here") is None


def datetime_ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_parse_since_forms():
    now = datetime_ts("2026-12-01T15:00:00")
    assert logtime.parse_since("2h", now) == now - 2 * HOUR
    assert logtime.parse_since("90m", now) == now - 90 * 60
    assert logtime.parse_since("2026-11-30T14:00", now) == datetime_ts("2026-11-30T14:00:00")
    assert logtime.parse_since("2026-11-30 14:00", now) == datetime_ts("2026-11-30T14:00:00")
    utc = logtime.parse_since("2026-11-30T14:00Z", now)
    assert logtime.parse_since("2026-11-30T17:00:00+03:00", now) == utc
    assert time.gmtime(utc)[:5] == (2026, 11, 30, 14, 0)


@pytest.mark.parametrize("value", ["yesterday", "2h30", "0m", "-2h", "2026-13-01T00:00", "2099-01-01T00:00"])
def test_bad_since_is_a_usage_error(value, tmp_path):
    result = CliRunner().invoke(main, ["collect", "--since", value, "--output", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "--since" in result.output
    assert list(tmp_path.iterdir()) == []


def test_cluster_hosts_get_the_same_moment(tmp_path):
    from collector.cli_options import collect_options
    from collector.cluster.host import HostRun
    from collector.cluster.hosts import HostSpec
    from collector.cluster.request import ClusterRequest

    options = collect_options(10, 1000, 100000, 3.0, "2026-11-30T17:00:00+03:00")
    request = ClusterRequest(hosts=[], catalog=load_catalog(), output_dir=tmp_path, options=options)
    run = HostRun.__new__(HostRun)  # only its command line is built here: no connection
    run.request, run.spec, run.tmp = request, HostSpec(name="app1", destination="root@app1"), "/tmp/x"
    args = run._collect_args(100)
    assert args[args.index("--since") + 1] == "2026-11-30T14:00:00Z"
    assert logtime.parse_since("2026-11-30T14:00:00Z") == options.since


@pytest.mark.parametrize("kind", [".bz2", ".xz"])
def test_bzip2_and_xz_rotations_are_read_too(tmp_path, kind):
    import bz2
    import lzma

    now = time.time()
    lines = log_lines(now - 600, now, 2, "z")
    data = b"".join(l for _, l in lines)
    path = tmp_path / f"z.log.3{kind}"
    path.write_bytes(bz2.compress(data) if kind == ".bz2" else lzma.compress(data))
    fd = os.open(path, os.O_RDONLY)
    try:
        window = logrotated.compressed_window(fd, kind, now - 299, 1 << 20, now, Deadline(30))
    finally:
        os.close(fd)
    assert window.data == b"".join(l for m, l in lines if m >= now - 299) and window.decompressed == len(data)


def test_damaged_gzip_is_a_recorded_stop(tmp_path):
    path = tmp_path / "d.log.2.gz"
    path.write_bytes(gzip.compress(b"2026-11-30T14:00:00Z x\n" * 1000)[:-40] + b"garbage" * 10)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(logrotated.WindowStopped, match="damaged"):
            logrotated.compressed_window(fd, ".gz", 0.0, 1 << 20, time.time(), Deadline(30))
    finally:
        os.close(fd)
