"""akdiag's own temporary files and folders: names that carry their owner's PID (and PID
namespace), so that a run can sweep what a killed run (SIGKILL, power loss) left behind.

    .akdiag-<pid>-<pid namespace>-<kind>-<random>

Only entries of exactly that shape, owned by the current user, of this PID namespace, and
whose owner is dead (or whose PID now belongs to a process that is not akdiag, or that
started after the entry was made) are removed."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterator, List, Optional

KINDS = ("stage", "partial", "read", "check", "demo", "ssh")
_NAME = re.compile(r"\.akdiag-(?P<pid>\d+)-(?P<ns>\d+)-(?P<kind>[a-z]+)-[A-Za-z0-9_]+")
_START_SLACK = 2.0  # seconds: process start times and file times come from different clocks


def _pid_namespace() -> str:
    try:
        return re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or "0"
    except OSError:
        return "0"


def prefix(kind: str) -> str:
    """The start of a temporary name of this run (for mkdtemp/mkstemp's `prefix`)."""
    assert kind in KINDS, kind
    return f".akdiag-{os.getpid()}-{_pid_namespace()}-{kind}-"


def make_folder(kind: str, folder: Optional[str] = None) -> Path:
    """A private (0700) temporary folder of this run, in `folder` (default: the system's)."""
    return Path(tempfile.mkdtemp(prefix=prefix(kind), dir=folder))


def _is_akdiag(cmdline: List[str]) -> bool:
    text = " ".join(cmdline)
    return "akdiag" in text or "-m collector" in text


def owner_is_gone(pid: int, made_at: float) -> bool:
    """Whether the run that made an entry at `made_at` (its mtime) is over: no process has
    its PID, or the one that has it is not akdiag or started after the entry was made."""
    if pid == os.getpid():
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if process.create_time() > made_at + _START_SLACK:
            return True  # the PID was reused after the entry was made
        return not _is_akdiag(process.cmdline())
    except psutil.NoSuchProcess:
        return True
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return False  # cannot tell: keep it


def sweep(folder, kinds=KINDS) -> List[str]:
    """Remove what dead akdiag runs left in `folder`; the names removed.  Never fails."""
    removed: List[str] = []
    ours = _pid_namespace()
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".akdiag-")]
    except OSError:
        return removed
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        if not match or match.group("kind") not in kinds or match.group("ns") != ours:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if info.st_uid != os.geteuid():
                continue
            is_file = match.group("kind") == "partial"
            if not (stat.S_ISREG(info.st_mode) if is_file else stat.S_ISDIR(info.st_mode)):
                continue
            if not owner_is_gone(int(match.group("pid")), info.st_mtime):
                continue
            if is_file:
                os.unlink(entry.path)
            else:
                shutil.rmtree(entry.path)  # fd-based on Linux: a planted link is removed, not followed
            removed.append(entry.name)
        except OSError:
            continue
    return removed


def sweep_temporary_folder() -> List[str]:
    """The system temporary folder's leftovers (bundles being read, checks, demos, ssh)."""
    return sweep(tempfile.gettempdir())



_umask_lock = threading.Lock()
_umask_users = 0
_umask_before = 0


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """While the block runs, files and folders are created for their owner only (umask 077),
    e.g. what a bundle being read is decrypted into.  The umask is the process's: blocks in
    several threads share it, and the first one's umask comes back after the last one."""
    global _umask_users, _umask_before
    with _umask_lock:
        if _umask_users == 0:
            _umask_before = os.umask(0o077)
        _umask_users += 1
    try:
        yield
    finally:
        with _umask_lock:
            _umask_users -= 1
            if _umask_users == 0:
                os.umask(_umask_before)


def make_private(folder: Path) -> None:
    """Every folder below `folder` 0700 and every file 0600 (links are not followed)."""
    for root, folders, files in os.walk(folder):
        for name in folders:
            _chmod_quietly(os.path.join(root, name), 0o700)
        for name in files:
            _chmod_quietly(os.path.join(root, name), 0o600)


def _chmod_quietly(path: str, mode: int) -> None:
    try:
        if not os.path.islink(path):
            os.chmod(path, mode)
    except OSError:
        pass
