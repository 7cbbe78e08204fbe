"""A real `akdiag watch` process for the tests: started as an administrator would, its
stderr read line by line as it comes, its history ring read from its state folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

from collector.history import HistoryRing, history_folder

REPO = Path(__file__).resolve().parent.parent
LEFTOVER = re.compile(r"^\.akdiag-")


def child_env(state: Path, tmp: Path) -> dict:
    """akdiag's state folder and temporary folder of this watch only (to find leftovers)."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, AKDIAG_STATE_DIR=str(state), TMPDIR=str(tmp))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class WatchProcess:
    def __init__(self, argv: Sequence[str], env: dict, basedir: Path):
        self.basedir = basedir
        self.env = env
        self.lines: List[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, basedir: Path, catalog: Path, output: Path, state: Path, tmp: Path, *options: str):
        argv = [sys.executable, "-m", "collector", "watch", "--basedir", str(basedir), "--catalog", str(catalog),
                "--output", str(output), "--interval", "1s", "--format", "tar.gz", "--min-free", "0", *options]
        return cls(argv, child_env(state, tmp), basedir)

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 90.0, count: int = 1) -> List[str]:
        """The log lines matching `pattern`, once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.log().splitlines() if re.search(pattern, line)]
            if len(found) >= count:
                return found
            assert self.proc.poll() is None, f"watch ended ({self.proc.returncode}):\n{self.log()}"
            time.sleep(0.1)
        raise AssertionError(f"no {count} line(s) matching {pattern!r} within {timeout} s:\n{self.log()}")

    def samples(self) -> List[dict]:
        return ring_samples(self.basedir, Path(self.env["AKDIAG_STATE_DIR"]))

    def wait_for_samples(self, count: int, after: float = 0.0, timeout: float = 90.0) -> List[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            samples = [s for s in self.samples() if s["t"] > after]
            if len(samples) >= count:
                return samples
            assert self.proc.poll() is None, f"watch ended ({self.proc.returncode}):\n{self.log()}"
            time.sleep(0.2)
        raise AssertionError(f"fewer than {count} samples after {after} within {timeout} s:\n{self.log()}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Send `signum`; the seconds until the process ended."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        self.proc.wait(timeout)
        took = time.monotonic() - started
        self._reader.join(5)
        return took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def ring_samples(basedir: Path, state: Path) -> List[dict]:
    return HistoryRing(history_folder(basedir, state), basedir=basedir).read()


def leftovers(*folders: Path) -> List[str]:
    """akdiag's working files (.akdiag-<pid>-...) still in the folders."""
    return [f"{folder}/{name}" for folder in folders if folder.is_dir() for name in os.listdir(folder)
            if LEFTOVER.match(name)]


def tree(folder: Path) -> List[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def bundles_in(folder: Path, trigger: Optional[str] = None) -> List[str]:
    pattern = re.compile(r"^akdiag-.+-watch-" + (re.escape(trigger) if trigger else r".+") +
                         r"-\d{8}T\d{6}Z(-\d+)?\.tar\.gz$")
    return sorted(name for name in os.listdir(folder) if pattern.match(name))
