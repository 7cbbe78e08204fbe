"""The transport of a cluster run: the system's OpenSSH client, nothing else.

One connection per host: a master `ssh -M` process that akdiag starts and owns (its
control socket in a private folder; its own session waits for the end of its stdin, which
akdiag holds, so that the master goes when akdiag goes, whatever ends it), and every
command of the run over it (`ControlMaster no`), so that the host authenticates once and
each step costs a round trip, not a handshake.  The user's ~/.ssh/config, agent, jump hosts and known_hosts apply as they do
for the user; akdiag adds `BatchMode=yes` (never a password prompt), a connect timeout,
no forwarding, and never `StrictHostKeyChecking=no`.

Every call is bounded in time: a command that overruns has its ssh process killed (our
own child, in its own session so that a Ctrl-C on the terminal does not kill the
connection before akdiag has cleaned up the host).  Remote commands are POSIX `sh -c`
scripts, whatever the user's login shell.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import tempfile
import threading
import time
from typing import BinaryIO, Callable, List, Optional, Tuple, Union

from collector import bounded, tempfiles
from collector.cluster.sshcall import (DEFAULT_CONNECT_TIMEOUT, STDERR_KEEP, RemoteError, Result, SshSettings, classify,
                                       read_stderr, sh_command, stderr_last_line)

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "STDERR_KEEP", "UNTIL_EOF", "Connection", "RemoteError", "Result", "SshSettings",
           "classify", "control_folder", "sh_command", "stderr_last_line"]


def control_folder() -> str:
    """A private folder for the control sockets, with a short path (a socket's path must
    fit in 108 bytes); named by this run's PID, so that a killed run's is swept later."""
    base = "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK | os.X_OK) else None
    return str(tempfiles.make_folder("ssh", base))


UNTIL_EOF = "while read -r _x; do :; done"


def _close_quietly(stream) -> None:
    try:
        if stream is not None:
            stream.close()
    except OSError:
        pass


def _wait_or_kill(proc: subprocess.Popen, timeout: float) -> Optional[int]:
    """The exit status of `proc` within `timeout`; else None, once it is killed and reaped."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def _spawn(argv: List[str], **kwargs) -> subprocess.Popen:
    """An ssh process: in its own session (a Ctrl-C on the terminal must not kill the
    connection before akdiag has cleaned up the host), without akdiag's secrets in its
    environment."""
    return subprocess.Popen(argv, start_new_session=True, close_fds=True, env=bounded.child_env(),
                            **bounded.umask_option(), **kwargs)


class Connection:
    """One host's multiplexed SSH connection, owned by akdiag from open() to close()."""

    def __init__(self, destination: str, settings: SshSettings, control_path: str):
        self.destination = destination
        self.settings = settings
        self.control_path = control_path
        self._master: Optional[subprocess.Popen] = None
        self._master_err = None
        self._running: List[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    # -- the master ------------------------------------------------------------------
    def open(self, timeout: float) -> float:
        """Connect and authenticate; returns the seconds it took.  RemoteError when the
        host cannot be reached, refuses the key or its host key is not the known one."""
        started = time.monotonic()
        # The master's own session reads its stdin, which akdiag holds, to the end: killed
        # even with SIGKILL, akdiag takes its connections with it (no ssh is left running).
        argv = self.settings.argv(self.control_path, master=True) + ["--", self.destination, sh_command(UNTIL_EOF)]
        self._master_err = tempfile.TemporaryFile()
        try:
            self._master = _spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._master_err)
        except OSError as exc:
            raise RemoteError("ssh_error", f"cannot run {self.settings.program}: {exc.strerror or exc}") from exc
        end = started + timeout
        while True:
            if self._cancelled.is_set():
                raise RemoteError("cancelled", "interrupted")
            code = self._master.poll()
            if code is not None:
                tail = stderr_last_line(read_stderr(self._master_err))
                kind = classify(tail)
                raise RemoteError(kind, tail or f"ssh exited with status {code} before connecting",
                                  exit_status=code, stderr_tail=tail)
            if os.path.exists(self.control_path):
                return time.monotonic() - started
            if time.monotonic() >= end:
                tail = stderr_last_line(read_stderr(self._master_err))
                self._stop_master()
                raise RemoteError("timeout", f"no SSH connection within {timeout:.0f} s"
                                  + (f" ({tail})" if tail else ""), stderr_tail=tail)
            time.sleep(0.02)

    def _stop_master(self) -> None:
        master, self._master = self._master, None
        if master is not None and master.poll() is None:
            self._ask_master_to_exit()
            _close_quietly(master.stdin)
            for stop, wait in ((None, 2.0), (master.terminate, 1.0), (master.kill, 5.0)):
                if stop is not None:
                    stop()
                try:
                    master.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if master is not None:
            _close_quietly(master.stdin)
        if self._master_err is not None:
            self._master_err.close()
            self._master_err = None
        try:
            os.unlink(self.control_path)
        except OSError:
            pass

    def _ask_master_to_exit(self) -> None:
        """`ssh -O exit`: the master's own way out.  A SIGTERM to a master with a session
        just ended is sometimes left unhandled for seconds."""
        if not os.path.exists(self.control_path):
            return
        argv = self.settings.argv(self.control_path, master=False) + ["-O", "exit", "--", self.destination]
        try:
            asking = _spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return  # terminate() and kill() follow
        _wait_or_kill(asking, 2.0)

    def close(self) -> None:
        self.kill_running()
        self._stop_master()

    def cancel(self) -> None:
        """Stop whatever runs now (interrupt); later calls fail with kind `cancelled`."""
        self._cancelled.set()
        self.kill_running()

    def kill_running(self) -> None:
        with self._lock:
            running = list(self._running)
        for proc in running:
            if proc.poll() is None:
                proc.kill()

    # -- commands --------------------------------------------------------------------
    def _popen(self, script: str, stdin, stdout, even_if_cancelled: bool = False) -> Tuple[subprocess.Popen, BinaryIO]:
        if self._cancelled.is_set() and not even_if_cancelled:
            raise RemoteError("cancelled", "interrupted")
        argv = self.settings.argv(self.control_path, master=False) + ["--", self.destination, sh_command(script)]
        err = tempfile.TemporaryFile()
        proc = _spawn(argv, stdin=stdin, stdout=stdout, stderr=err)
        with self._lock:
            self._running.append(proc)
        return proc, err

    def _done(self, proc: subprocess.Popen) -> None:
        with self._lock:
            if proc in self._running:
                self._running.remove(proc)

    def run(self, script: str, timeout: float, stdin: Union[None, bytes, BinaryIO] = None,
            even_if_cancelled: bool = False) -> Result:
        """Run a sh script on the host; its output in memory (for small outputs).
        `even_if_cancelled`: the cleanup, which runs after an interrupt too."""
        started = time.monotonic()
        pipe_in = subprocess.PIPE if isinstance(stdin, bytes) else (stdin or subprocess.DEVNULL)
        proc, err = self._popen(script, pipe_in, subprocess.PIPE, even_if_cancelled)
        timed_out = False
        try:
            try:
                out, _ = proc.communicate(stdin if isinstance(stdin, bytes) else None, timeout=max(0.01, timeout))
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.kill()
                out, _ = proc.communicate()
            return Result(None if timed_out else proc.returncode, out, read_stderr(err),
                          time.monotonic() - started, timed_out)
        finally:
            self._done(proc)
            err.close()

    def stream(self, script: str, timeout: float, sink: Callable[[BinaryIO], object]) -> Tuple[Result, object]:
        """Run a script whose stdout `sink` consumes as it comes (a bundle); the ssh
        process is killed at the timeout, which ends the stream."""
        started = time.monotonic()
        proc, err = self._popen(script, subprocess.DEVNULL, subprocess.PIPE)
        expired = threading.Event()

        def watchdog() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(max(0.01, timeout), watchdog)
        timer.daemon = True
        timer.start()
        value = None
        try:
            try:
                value = sink(proc.stdout)
            finally:
                proc.stdout.close()
                if _wait_or_kill(proc, max(0.1, timeout - (time.monotonic() - started))) is None:
                    expired.set()
            timer.cancel()
            timed_out = expired.is_set()
            return Result(None if timed_out else proc.returncode, b"", read_stderr(err),
                          time.monotonic() - started, timed_out), value
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self._done(proc)
            err.close()

    def hold(self, script: str) -> subprocess.Popen:
        """Start a script whose stdin akdiag holds open until `release`: the script reads
        it to its end, which comes when akdiag releases it, is killed (even with SIGKILL:
        the pipe closes with the process), or the connection drops.  Killed on cancel()."""
        proc, err = self._popen(script, subprocess.PIPE, subprocess.DEVNULL)
        err.close()
        return proc

    def release(self, proc: subprocess.Popen, timeout: float) -> Optional[int]:
        """Close a held script's stdin and wait for it to finish (its exit status, None when
        it did not finish in time and its ssh process was killed)."""
        _close_quietly(proc.stdin)
        try:
            return _wait_or_kill(proc, max(0.01, timeout))
        finally:
            self._done(proc)

    # -- the host's clock ------------------------------------------------------------
    def measure_clock(self, timeout: float, samples: int = 5) -> dict:
        """The host's clock minus the local one, from `date +%s.%N` asked `samples`
        times over one open session: the sample with the shortest round trip counts, its
        remote time compared with the local time at the middle of the round trip."""
        started = time.monotonic()
        end = started + timeout
        proc, err = self._popen('while read -r _x; do date +%s.%N || exit 1; done', subprocess.PIPE,
                                subprocess.PIPE)
        best: Optional[Tuple[float, float, bool]] = None  # (round trip, offset, whole seconds only)
        buffer = b""
        try:
            for index in range(samples + 1):  # the first one warms the session up
                sent_wall, sent = time.time(), time.monotonic()
                proc.stdin.write(b"x\n")
                proc.stdin.flush()
                line, buffer = _next_answer(proc, err, buffer, end, timeout)
                round_trip = time.monotonic() - sent
                remote, coarse = _parse_date(line.decode("ascii", "replace").strip())
                if index == 0:
                    continue
                offset = remote - (sent_wall + round_trip / 2.0)
                if best is None or round_trip < best[0]:
                    best = (round_trip, offset, coarse)
        except (OSError, ValueError) as exc:
            raise RemoteError("remote_failed", f"cannot read the host's clock: {exc}") from exc
        finally:
            _close_quietly(proc.stdin)
            _wait_or_kill(proc, max(0.1, min(2.0, end - time.monotonic())))
            self._done(proc)
            err.close()
        assert best is not None
        return _clock_figures(*best, samples)


def _next_answer(proc: subprocess.Popen, err: BinaryIO, buffer: bytes, end: float,
                 timeout: float) -> Tuple[bytes, bytes]:
    """The next line the clock session prints, and what it printed after it; RemoteError
    when it does not answer by `end` or ends."""
    while b"\n" not in buffer:
        left = end - time.monotonic()
        ready = select.select([proc.stdout], [], [], max(0.0, left))[0] if left > 0 else []
        if not ready:
            raise RemoteError("timeout", f"the host's clock did not answer within {timeout:.0f} s")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            tail = stderr_last_line(read_stderr(err))
            raise RemoteError("remote_failed", tail or "date +%s.%N gave no answer", stderr_tail=tail)
        buffer += chunk
    line, rest = buffer.split(b"\n", 1)
    return line, rest


def _clock_figures(round_trip: float, offset: float, coarse: bool, samples: int) -> dict:
    return {"offset_seconds": round(offset, 4), "round_trip_seconds": round(round_trip, 4),
            "uncertainty_seconds": round(round_trip / 2.0 + (1.0 if coarse else 0.0), 4),
            "samples": samples, "method": "date +%s" if coarse else "date +%s.%N"}


def _parse_date(text: str) -> Tuple[float, bool]:
    """Seconds since the epoch from `date +%s.%N`; (value, whole seconds only) when the
    host's date has no %N (it prints the letter)."""
    if re.fullmatch(r"\d+\.\d+", text):
        return float(text), False
    match = re.match(r"(\d+)", text)
    if not match:
        raise ValueError(f"unexpected answer {text[:40]!r}")
    return float(match.group(1)), True
