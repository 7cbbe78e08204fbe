"""Calls with a time bound: a function in a daemon thread, and a subprocess whose
output is capped while it is read.  A call that overruns is abandoned (threads) or
killed (our own child).  Every child started here is registered until it is reaped, so
that an interrupted run kills every process group it started (`stop_children`)."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional

# Environment variables that hold a secret of akdiag's own (the archive password): never
# passed to a process akdiag starts.
SECRET_ENVIRONMENT = ("AKDIAG_PASSWORD",)
DRAIN_AFTER_EXIT = 1.0  # seconds to read what a command's own children still print after it exits
READ_CHUNK = 64 * 1024

_children_lock = threading.RLock()  # re-entered by a signal handler in the thread that holds it
_children: Dict[int, subprocess.Popen] = {}
_stopping = threading.Event()
_original_umask: Optional[int] = None


class CallTimeout(Exception):
    pass


def call_with_timeout(func: Callable[[], Any], timeout: float, what: str = "call") -> Any:
    """Run `func` in a daemon thread; raise CallTimeout if it has not returned in time.
    Used for calls that can hang in the kernel (statvfs on a dead NFS mount)."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"bounded:{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise CallTimeout(f"{what} did not return within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --------------------------------------------------------------------------- children

def child_env() -> Dict[str, str]:
    """The environment of every process akdiag starts: its own, without its secrets."""
    return {key: value for key, value in os.environ.items() if key not in SECRET_ENVIRONMENT}


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """While a command runs, files akdiag creates are its owner's only (umask 077); the
    processes it starts get the umask it was given (`child_umask`), so that they create
    files as they always do.  The umask comes back after (a command run in-process)."""
    global _original_umask
    previous = os.umask(0o077)
    outermost = _original_umask is None
    if outermost:
        _original_umask = previous
    try:
        yield
    finally:
        os.umask(previous)
        if outermost:
            _original_umask = None


def child_umask() -> int:
    """The umask a child gets: the one akdiag was started with (-1: leave it as it is)."""
    return -1 if _original_umask is None else _original_umask


def register_child(proc: subprocess.Popen) -> None:
    with _children_lock:
        _children[proc.pid] = proc


def unregister_child(proc: subprocess.Popen) -> None:
    with _children_lock:
        _children.pop(proc.pid, None)


def stopping() -> bool:
    return _stopping.is_set()


def allow_children() -> None:
    """Start children again (a new command after an interrupted one, in one process)."""
    _stopping.clear()


def stop_children() -> None:
    """Kill the process group of every registered child (an interrupted run), and start no
    more.  Safe in a signal handler: no lock is waited for long, nothing is reaped here."""
    _stopping.set()
    with _children_lock:
        children = list(_children.values())
    for proc in children:
        if proc.returncode is None:
            _kill_group(proc)


def reap_children(timeout: float = 2.0) -> None:
    """Wait (bounded) until every registered child is reaped (their threads reap them, or
    this); what is left at the end is killed again."""
    end = time.monotonic() + timeout
    while True:
        with _children_lock:
            children = [proc for proc in _children.values() if proc.returncode is None]
        if not children or time.monotonic() >= end:
            break
        for proc in children:
            _kill_group(proc)
            try:
                proc.wait(max(0.01, min(0.2, end - time.monotonic())))
            except subprocess.TimeoutExpired:
                continue
            except OSError:
                pass


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        try:
            proc.kill()
        except OSError:
            pass


def _has_exited(proc: subprocess.Popen) -> bool:
    """Whether the child has exited, without reaping it: a zombie keeps its PID and
    process group, so that killing the group afterwards cannot hit a stranger."""
    if proc.returncode is not None:
        return True
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return proc.poll() is not None
    try:
        return waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return proc.poll() is not None


# --------------------------------------------------------------------------- commands

@dataclass
class CommandResult:
    argv: List[str]
    exit_code: Optional[int]
    stdout: bytes
    stderr: bytes
    duration: float
    timed_out: bool
    stdout_truncated: bool
    stderr_truncated: bool
    error: Optional[str] = None


class _Tail:
    """The last `cap` bytes of a stream, kept while it is read (never more than 2 x cap)."""

    def __init__(self, cap: int):
        self.cap = max(0, cap)
        self.total = 0
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._data += chunk
        if len(self._data) > 2 * self.cap:
            del self._data[:len(self._data) - self.cap]

    def value(self) -> bytes:
        return bytes(self._data[-self.cap:]) if self.cap else b""

    @property
    def truncated(self) -> bool:
        return self.total > self.cap


def run_command(argv: List[str], timeout: float, max_output: int = 4 * 1024 * 1024) -> CommandResult:
    """Run a command with no stdin, a timeout, and output capped at `max_output` bytes per
    stream (the tail is kept; the rest is read and dropped as it comes); its environment has
    no secret of akdiag's.  It runs in its own process group, killed on timeout and when
    the command ends (nothing it started outlives it), and on an interrupt."""
    started = time.monotonic()
    with _children_lock:  # started and registered at once: an interrupt kills it, or it is not started
        if _stopping.is_set():
            return CommandResult(argv, None, b"", b"", 0.0, False, False, False,
                                 error="not started: akdiag is stopping")
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, close_fds=True, env=child_env(), **umask_option(),
            )
        except OSError as exc:
            return CommandResult(argv, None, b"", b"", time.monotonic() - started, False, False, False,
                                 error=f"cannot run {argv[0]}: {exc.strerror or exc}")
        register_child(proc)
    out, err = _Tail(max_output), _Tail(max_output)
    try:
        timed_out = _read_until_done(proc, {proc.stdout: out, proc.stderr: err}, started + timeout)
        if _stopping.is_set():
            timed_out = False
    finally:
        if proc.returncode is None:  # not reaped yet (an interrupt may have): its group is still ours
            _kill_group(proc)  # the command's own children, still in its group
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()
        unregister_child(proc)
    if _stopping.is_set():
        error = "stopped: akdiag was interrupted"
    else:
        error = f"no result within {timeout:g} s; stopped it" if timed_out else None
    return CommandResult(
        argv, None if (timed_out or error) else proc.returncode, out.value(), err.value(),
        time.monotonic() - started, timed_out, out.truncated, err.truncated, error=error,
    )


def umask_option() -> dict:
    """Popen's `umask` argument giving a child the umask akdiag was started with."""
    import sys

    umask = child_umask()
    return {"umask": umask} if umask >= 0 and sys.version_info >= (3, 9) else {}


def _read_until_done(proc: subprocess.Popen, tails: Dict[Any, _Tail], end: float) -> bool:
    """Read both pipes into their tails until they close; True when `end` came first (the
    group is killed then, and what is still in the pipes is read for a moment more)."""
    selector = selectors.DefaultSelector()
    for stream in tails:
        selector.register(stream, selectors.EVENT_READ)
    timed_out = False
    drain_end: Optional[float] = None  # once the command is over: read its pipes until then at most
    try:
        while selector.get_map():
            now = time.monotonic()
            if drain_end is None:
                if now >= end:
                    timed_out = True
                    _kill_group(proc)
                    drain_end = now + DRAIN_AFTER_EXIT
                elif _stopping.is_set():
                    _kill_group(proc)
                    drain_end = now + DRAIN_AFTER_EXIT
                elif _has_exited(proc):
                    drain_end = now + DRAIN_AFTER_EXIT  # its own children may hold the pipes: not for long
            elif now >= drain_end:
                break
            for key, _events in selector.select(min(0.2, max(0.0, (drain_end or end) - now))):
                chunk = os.read(key.fileobj.fileno(), READ_CHUNK)
                if chunk:
                    tails[key.fileobj].add(chunk)
                else:
                    selector.unregister(key.fileobj)
    finally:
        selector.close()
    return timed_out
