"""Real process faults for the processes tests: a platform process whose child (with the
title of another platform process) exited and was never reaped (a real zombie), and a
supervisor that restarts a platform process every ~0.3 s while it writes a start line
and a FATAL line to its log (a real crash loop).  Standard library only; every process
is the test's own and is stopped by `stop()`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from collector.simulate.host import FAKEPROC

DEADLINE = 20.0

# The parent: sets its comm to its title, spawns one child (stdout to /dev/null) that
# exits at once, prints the child's PID and sleeps without calling wait() until it is
# told to stop: then it reaps the child, so that no zombie outlives the test.
_ZOMBIE_PARENT = r"""
import ctypes, os, signal, sys, time
title, binary, child_title, fakeproc = sys.argv[1:5]
ctypes.CDLL(None).prctl(15, title.encode()[:15], 0, 0, 0)
ctypes.CDLL(None).prctl(1, 15, 0, 0, 0)
pid = os.posix_spawn(binary, [child_title, "-S", fakeproc, "--comm", child_title, "--max-seconds", "0"],
                     dict(os.environ), file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
def reap_and_exit(*_):
    os.waitpid(pid, 0)
    os._exit(0)
signal.signal(signal.SIGTERM, reap_and_exit)
print(pid, flush=True)
while True:
    time.sleep(60)
"""

# One run of the crash-looping process: its title, a start line, a FATAL line, exit 1.
_CRASHING = r"""
import ctypes, sys, time
title, log, name = sys.argv[1:4]
ctypes.CDLL(None).prctl(15, title.encode()[:15], 0, 0, 0)
ctypes.CDLL(None).prctl(1, 15, 0, 0, 0)
def stamp():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % int(now % 1 * 1000)
with open(log, "a") as out:
    out.write(f"{stamp()} INFO  [{name}] starting {name} v2025.1.71.3\n")
    out.flush()
    time.sleep(0.2)
    out.write(f"{stamp()} FATAL [{name}] cannot connect to mongodb 127.0.0.1:27017: connection refused\n")
sys.exit(1)
"""

# The supervisor: starts the process again 0.1 s after each exit until it is told to
# stop: then it stops and reaps the current run, so that no zombie outlives the test.
_SUPERVISOR = r"""
import ctypes, os, signal, sys, time
binary, title, script, log, name = sys.argv[1:6]
ctypes.CDLL(None).prctl(1, 15, 0, 0, 0)
current = [0]
def stop(*_):
    try:
        os.kill(current[0], signal.SIGKILL)
        os.waitpid(current[0], 0)
    except OSError:
        pass
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    current[0] = os.posix_spawn(binary, [title, "-S", "-c", script, title, log, name], dict(os.environ))
    os.waitpid(current[0], 0)
    time.sleep(0.1)
"""


class ProcFault:
    def __init__(self, popen: subprocess.Popen):
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


def _binary(basedir: Path, name: str) -> str:
    return str(basedir / "ak" / "bin" / name)


def unreaped_child(basedir: Path, parent: str, child: str) -> tuple:
    """(the parent ProcFault titled AK:<parent>, the PID of its zombie child titled
    AK:<child>) once the child is a zombie."""
    popen = subprocess.Popen([f"AK:{parent}", "-S", "-c", _ZOMBIE_PARENT, f"AK:{parent}", _binary(basedir, child),
                              f"AK:{child}", str(FAKEPROC)],
                             executable=_binary(basedir, parent), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    fault = ProcFault(popen)
    try:
        zombie = int(popen.stdout.readline())
        _wait(lambda: psutil.Process(zombie).status() == psutil.STATUS_ZOMBIE, "the child to become a zombie")
    except BaseException:
        fault.stop()
        raise
    finally:
        popen.stdout.close()
    return fault, zombie


def crash_loop(basedir: Path, name: str, starts: int = 8) -> ProcFault:
    """A supervisor restarting AK:<name> every ~0.3 s, once its log holds `starts` start lines."""
    log = basedir / "logs" / f"{name}.log"
    popen = subprocess.Popen([sys.executable, "-S", "-c", _SUPERVISOR, _binary(basedir, name), f"AK:{name}",
                              _CRASHING, str(log), name], stdin=subprocess.DEVNULL)
    fault = ProcFault(popen)
    try:
        _wait(lambda: start_lines(log) >= starts, f"{starts} start lines in {log.name}")
    except BaseException:
        fault.stop()
        raise
    return fault


def start_lines(log: Path) -> int:
    try:
        return sum(1 for line in log.read_text().splitlines() if " starting " in line)
    except FileNotFoundError:
        return 0


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (psutil.Error, OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"waited {DEADLINE:.0f} s for {what}")
