"""Calls with a time bound: a function in a daemon thread, and a subprocess whose
output is capped.  A call that overruns is abandoned (threads) or killed (our own child)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional


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


def run_command(argv: List[str], timeout: float, max_output: int = 4 * 1024 * 1024) -> CommandResult:
    """Run a command with no stdin, a timeout, and output capped at `max_output` bytes
    per stream; on timeout its whole process group is killed (it is our own child)."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return CommandResult(argv, None, b"", b"", time.monotonic() - started, False, False, False,
                             error=f"cannot run {argv[0]}: {exc.strerror or exc}")
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        stdout, stderr = proc.communicate()
    return CommandResult(
        argv, None if timed_out else proc.returncode,
        stdout[-max_output:], stderr[-max_output:], time.monotonic() - started, timed_out,
        len(stdout) > max_output, len(stderr) > max_output,
        error=f"no result within {timeout:g} s; stopped it" if timed_out else None,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except OSError:
        proc.kill()
