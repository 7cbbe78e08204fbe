"""Signals, leftovers and process hygiene, with the real command line against a simulated
host: stop signals at random moments (scan for staging, .partial, temporary files and
orphaned children), a SIGKILLed run's staging swept by the next run, runs started at the
same moment, the archive password kept from every child's environment, an endless `akd`
under a memory bound, and what `report` decrypts kept private."""

from __future__ import annotations

import json
import os
import pty
import random
import re
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil

from collector import tempfiles
from collector.bundle.reader import open_bundle

REPO = Path(__file__).resolve().parents[2]
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


def _env(tmp: Path, **extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp))
    env.update(extra)
    return env


def _start(args, tmp: Path, **env) -> subprocess.Popen:
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "collector", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(tmp, **env))


def _run(args, tmp: Path, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "collector", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=_env(tmp, **env), timeout=timeout)


def _akd(host, body: str) -> None:
    akd = host.basedir / "akd"
    akd.write_text("#!/bin/sh\n" + body)
    akd.chmod(0o755)


def _leftovers(out: Path, tmp: Path) -> list:
    """Staging, .partial and temporary files in the output folder; anything at all in the
    run's private temporary folder (TMPDIR)."""
    found = [str(p) for p in (out.iterdir() if out.exists() else ())
             if p.name.startswith(".") or p.name.endswith((".partial", ".tmp"))]
    return found + ([str(p) for p in tmp.iterdir()] if tmp.exists() else [])


def _alive(pids) -> list:
    """The PIDs that still run (a zombie has ended: only its parent has not asked yet)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _logged_pids(path: Path) -> list:
    return [int(word) for word in path.read_text().split()] if path.exists() else []


# --------------------------------------------------------------------------- stop signals

def test_stop_signals_at_random_moments_leave_nothing(host, tmp_path):
    """12 runs, each signalled at a random moment: the exit status is the signal's, the
    output and temporary folders hold no staging, .partial or temporary file, and no child
    of akdiag (akd and what akd started) outlives the run."""
    seed = int(os.environ.get("AKDIAG_SIGNAL_SEED", time.time()))
    rng = random.Random(seed)
    pid_log = tmp_path / "akd-pids"  # outside BASEDIR: written by the test's akd, not by akdiag
    host.start(["api", "stataggregator"])
    _akd(host, f"sleep 300 &\necho $! >> {pid_log}\necho $$ >> {pid_log}\n"
               'i=0; while [ "$i" -lt "$((AKD_LINES))" ]; do echo "AK:api 1 running"; i=$((i + 1)); sleep 0.01; done\n')
    outcomes = []
    for run in range(12):  # three of each stop signal
        stop = STOP_SIGNALS[run % len(STOP_SIGNALS)]
        out, tmp = tmp_path / f"out{run}", tmp_path / f"tmp{run}"
        out.mkdir()
        proc = _start(["collect", "--basedir", str(host.basedir), "--output", str(out), "--timeout", "60",
                       "--log-lines", "200"], tmp, AKD_LINES=str(rng.randint(0, 500)))
        time.sleep(rng.uniform(0.4, 5.0))
        signalled = time.monotonic()
        proc.send_signal(stop)
        _stdout, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - signalled
        outcomes.append((stop.name, proc.returncode, round(took, 2)))
        context = f"seed {seed}, run {run}, {stop.name}: exit {proc.returncode}, {stderr.decode()[-800:]}"
        assert took < 15, context  # honoured and cleaned up, not hung
        if proc.returncode == 0:  # it had finished before the signal came
            assert [p.name for p in out.iterdir()][0].endswith(".7z") and len(list(out.iterdir())) == 1, context
        else:
            # -N: before the handlers were set, or after the command was done (its bundle whole)
            assert proc.returncode in (128 + stop, -stop), context
            kept = list(out.iterdir())
            if kept:  # the signal came after the bundle was linked into place: it is whole
                assert proc.returncode == -stop and len(kept) == 1 and kept[0].suffix == ".7z", context
                with open_bundle(kept[0]) as reader:
                    assert reader.manifest["collectors"], context
        assert _leftovers(out, tmp) == [], context
        end = time.monotonic() + 3
        while _alive(_logged_pids(pid_log)) and time.monotonic() < end:
            time.sleep(0.1)
        assert _alive(_logged_pids(pid_log)) == [], f"orphans of akd: {context}"
    handled = [o for o in outcomes if o[1] not in (0,) and o[1] > 0]
    assert len(handled) >= 8, outcomes  # most signals came while akdiag ran, not before or after


def test_terminal_that_goes_away_leaves_nothing(host, tmp_path):
    """A dropped SSH session as it happens: the terminal closes under the run (SIGHUP to it,
    and its stdout and stderr are gone): exit 129, no staging, akd and its children gone."""
    pid_log = tmp_path / "akd-pids"
    _akd(host, f"sleep 300 &\necho $! >> {pid_log}\necho $$ >> {pid_log}\nsleep 300\n")
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    pid, terminal = pty.fork()
    if pid == 0:  # the run, with the pseudo-terminal as its controlling terminal
        os.environ.update(_env(tmp))
        os.execv(sys.executable, [sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
                                  "--output", str(out)])
    try:
        end = time.monotonic() + 30
        while len(_logged_pids(pid_log)) < 2 and time.monotonic() < end:
            time.sleep(0.05)
        assert len(_alive(_logged_pids(pid_log))) == 2 and list(out.iterdir())
    finally:
        os.close(terminal)  # the session drops
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGHUP
    assert list(out.iterdir()) == [] and _leftovers(out, tmp) == []
    time.sleep(0.3)
    assert _alive(_logged_pids(pid_log)) == []


def test_sighup_while_packing_leaves_no_partial_file(host, tmp_path):
    """A dropped SSH session while the archive is written: no .partial, no staging."""
    host.start(["api"])
    _big_logs(host)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    proc = _start(["collect", "--basedir", str(host.basedir), "--output", str(out), "--log-lines", "60000",
                   "--log-bytes", "8000000"], tmp)
    end = time.monotonic() + 60
    while time.monotonic() < end and not any("-partial-" in p.name for p in out.iterdir()):
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it packed"
    proc.send_signal(signal.SIGHUP)
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGHUP, stderr
    assert b"interrupted by SIGHUP" in stderr
    assert list(out.iterdir()) == [] and _leftovers(out, tmp) == []


def _big_logs(host, files: int = 6) -> None:
    logs = host.basedir / "logs" / "big"
    logs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    for index in range(files):  # incompressible lines: packing and unpacking take a moment
        (logs / f"big{index}.log").write_text("".join(f"{rng.getrandbits(256):064x}\n" for _ in range(60000)))


def test_report_interrupted_while_decrypting_leaves_no_plaintext(host, tmp_path):
    _big_logs(host)
    out = tmp_path / "out"
    out.mkdir()
    done = _run(["collect", "--basedir", str(host.basedir), "--output", str(out), "--encrypt", "--quiet",
                 "--log-lines", "60000", "--log-bytes", "8000000"], tmp_path / "tmp", AKDIAG_PASSWORD="Pw-big-1")
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip())
    stopped = 0
    for attempt, delay in enumerate((0.6, 0.9, 1.2, 1.6, 2.2)):
        tmp = tmp_path / f"tmp{attempt}"
        proc = _start(["report", str(bundle), "--output", str(tmp_path / f"r{attempt}.summary.html")], tmp,
                      AKDIAG_PASSWORD="Pw-big-1")
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        _stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode in (0, 128 + signal.SIGTERM, -signal.SIGTERM), stderr
        stopped += proc.returncode != 0
        assert _leftovers(tmp_path / "out", tmp) == [], (attempt, stderr)
    assert stopped >= 1


def test_check_interrupted_kills_akd_and_its_children(host, tmp_path):
    """A monitoring system's timeout (SIGTERM) on `check`: akd and its children are gone."""
    pid_log = tmp_path / "akd-pids"
    _akd(host, f"sleep 300 &\necho $! >> {pid_log}\necho $$ >> {pid_log}\nsleep 300\n")
    proc = _start(["check", "--basedir", str(host.basedir), "--timeout", "60"], tmp_path / "tmp")
    end = time.monotonic() + 30
    while len(_logged_pids(pid_log)) < 2 and time.monotonic() < end:
        time.sleep(0.05)
    assert len(_alive(_logged_pids(pid_log))) == 2
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - started < 5, stderr
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    time.sleep(0.3)
    assert _alive(_logged_pids(pid_log)) == []
    assert _leftovers(tmp_path / "out", tmp_path / "tmp") == []


# --------------------------------------------------------------------------- leftovers

def _stale_name(pid: int, kind: str, namespace: str = None) -> str:
    return f".akdiag-{pid}-{namespace or tempfiles._pid_namespace()}-{kind}-x1y2z3"


def test_stale_staging_of_dead_runs_is_swept_and_nothing_else(host, tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    dead = host.dead_pid()
    stale = [out / _stale_name(dead, "stage"), tmp / _stale_name(dead, "read")]
    for folder in stale:
        folder.mkdir()
        (folder / "secret.txt").write_text("plaintext left by a killed run")
    partial = out / _stale_name(dead, "partial")
    partial.write_bytes(b"half an archive")
    # A PID used again by a process that is not akdiag: stale as well.
    stranger = subprocess.Popen(["sleep", "60"])
    # Kept: a live akdiag's (a process whose command line says akdiag, started before its folder),
    # another user's, another PID namespace's, and names akdiag does not make.
    live = subprocess.Popen(["bash", "-c", "exec -a akdiag-live-run sleep 60"])
    try:
        time.sleep(0.3)
        reused = out / _stale_name(stranger.pid, "stage")
        reused.mkdir()
        kept = [out / _stale_name(live.pid, "stage"), out / _stale_name(dead, "stage", "1"),
                out / ".akdiag-notours", out / "akdiag-host-20250101T000000Z.7z"]
        for path in kept[:3]:
            path.mkdir()
        kept[3].write_bytes(b"a finished bundle")
        foreign = out / _stale_name(dead, "stage").replace("x1y2z3", "nobody")
        foreign.mkdir()
        os.chown(foreign, 65534, 65534)
        kept.append(foreign)
        done = _run(["collect", "--basedir", str(host.basedir), "--output", str(out), "--format", "tar.gz",
                     "--quiet"], tmp)
        assert done.returncode == 0, done.stderr
    finally:
        stranger.kill()
        live.kill()
        stranger.wait()
        live.wait()
    for path in stale + [partial, reused]:
        assert not path.exists(), path
    for path in kept:
        assert path.exists(), path


def test_staging_of_a_killed_run_is_removed_by_the_next_run(host, tmp_path):
    """SIGKILL cannot be handled: the plaintext staging stays, until the next run."""
    _akd(host, "sleep 30\n")
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    proc = _start(["collect", "--basedir", str(host.basedir), "--output", str(out)], tmp)
    end = time.monotonic() + 30
    while time.monotonic() < end and not list(out.iterdir()):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    left = list(out.iterdir())
    assert len(left) == 1 and left[0].name.startswith(f".akdiag-{proc.pid}-"), left
    _akd(host, "echo AK:api\n")
    done = _run(["collect", "--basedir", str(host.basedir), "--output", str(out), "--quiet"], tmp)
    assert done.returncode == 0, done.stderr
    assert not left[0].exists()
    assert [p.name for p in out.iterdir()] == [Path(done.stdout.strip()).name]


def test_runs_started_at_once_never_share_a_name(host, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    runs = [_start(["collect", "--basedir", str(host.basedir), "--output", str(out), "--label", "same",
                    "--format", "tar.gz", "--quiet"], tmp_path / "tmp") for _ in range(5)]
    paths = []
    for proc in runs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        paths.append(Path(stdout.decode().strip()))
    assert len(set(paths)) == 5, paths
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    assert all(re.fullmatch(r"akdiag-.+-same-\d{8}T\d{6}Z(-[2-5])?\.tar\.gz", p.name) for p in paths), paths
    for path in paths:
        with open_bundle(path) as reader:
            assert reader.manifest["label"] == "same"


def test_folder_bundles_started_at_once_never_share_a_name(host, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    runs = [_start(["collect", "--basedir", str(host.basedir), "--output", str(out), "--label", "same",
                    "--format", "dir", "--quiet"], tmp_path / "tmp") for _ in range(3)]
    paths = set()
    for proc in runs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        paths.add(stdout.decode().strip())
    assert len(paths) == 3
    for path in paths:
        assert (Path(path) / "manifest.json").is_file()


# --------------------------------------------------------------------------- hygiene

def test_password_is_in_no_child_environment(host, tmp_path):
    dump = tmp_path / "akd-environ"  # outside BASEDIR: written by the test's akd
    _akd(host, f"cat /proc/$$/environ > {dump}\necho AK:api\n")
    out = tmp_path / "out"
    out.mkdir()
    done = _run(["collect", "--basedir", str(host.basedir), "--output", str(out), "--encrypt", "--quiet"],
                tmp_path / "tmp", AKDIAG_PASSWORD="Pw-in-env-71xq")
    assert done.returncode == 0, done.stderr
    environ = dump.read_bytes()
    assert b"PATH=" in environ  # the dump is real
    assert b"Pw-in-env-71xq" not in environ and b"AKDIAG_PASSWORD" not in environ


def test_report_keeps_what_it_decrypts_private(host, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = _run(["collect", "--basedir", str(host.basedir), "--output", str(out), "--encrypt", "--quiet"],
                tmp_path / "tmp", AKDIAG_PASSWORD="Pw-report-33")
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip())
    previous = os.umask(0o022)  # a permissive umask, as a library user may have
    try:
        with open_bundle(bundle, "Pw-report-33") as reader:
            temp = reader.root.parent
            assert stat.S_IMODE(temp.stat().st_mode) == 0o700
            folders = {stat.S_IMODE(p.stat().st_mode) for p in temp.rglob("*") if p.is_dir()}
            files = {stat.S_IMODE(p.stat().st_mode) for p in temp.rglob("*") if p.is_file()}
        assert folders == {0o700} and files == {0o600}, (folders, files)
    finally:
        os.umask(previous)
    report = _run(["report", str(bundle), "--output", str(tmp_path / "r" / "s.summary.html")], tmp_path / "tmp",
                  AKDIAG_PASSWORD="Pw-report-33")
    assert report.returncode == 0, report.stderr
    for name in ("s.summary.html", "s.findings.json"):
        assert stat.S_IMODE((tmp_path / "r" / name).stat().st_mode) == 0o600, name
    assert _leftovers(tmp_path / "out", tmp_path / "tmp") == []


def _high_water_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except (OSError, ValueError):
        return 0  # it has just ended


def test_endless_akd_output_is_bounded_in_memory(host, tmp_path):
    """`akd --processes` printing without end: the run's peak RSS stays bounded, the tail is
    kept and marked as cut, and akd is stopped at the command's timeout."""
    _akd(host, "exec yes 'AK:api 12345 running and printing a long line without end'\n")
    out = tmp_path / "out"
    out.mkdir()
    proc = _start(["collect", "--basedir", str(host.basedir), "--output", str(out), "--format", "dir",
                   "--timeout", "30", "--quiet"], tmp_path / "tmp")
    # Its own high-water mark, read while it runs: wait4's ru_maxrss would also count the
    # memory of the pytest process it was forked from (Linux keeps it across exec).
    peak_kb = 0
    while proc.poll() is None:
        peak_kb = max(peak_kb, _high_water_kb(proc.pid))
        time.sleep(0.05)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 0, stderr
    peak_mb = peak_kb / 1024
    assert 20 < peak_mb < 300, peak_mb
    bundle = Path(stdout.decode().strip())
    record = json.loads((bundle / "commands" / "akd-processes.json").read_text())
    assert record["timed_out"] is True and record["stdout_truncated"] is True
    assert (bundle / "commands" / "akd-processes.txt").stat().st_size <= 1024 * 1024
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 < 1024  # the test itself stayed sane
