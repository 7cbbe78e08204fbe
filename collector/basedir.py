"""Where the platform lives: --basedir, else AKDIAG_BASEDIR, else the folder of a
running AK: process's executable (.../ak/bin/<binary>), else /opt/akd.

A running process names BASEDIR only when its binary, BASEDIR/akd (when there is one)
and every folder above them could not have been planted by a less-privileged user
(collector.trust): any local user can start a process titled AK:, and akdiag, run as
root, later executes BASEDIR/akd."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Tuple

import psutil

from collector.trust import untrusted_reason

DEFAULT_BASEDIR = Path("/opt/akd")


def _candidate(proc_info: dict) -> Optional[Path]:
    cmdline = proc_info.get("cmdline") or []
    titled = bool(cmdline) and cmdline[0].startswith("AK:") or (proc_info.get("name") or "").startswith("AK:")
    exe = proc_info.get("exe")
    if not titled or not exe:
        return None
    path = Path(exe)
    if len(path.parts) >= 4 and path.parent.name == "bin" and path.parent.parent.name == "ak":
        return path
    return None


def candidate_problem(binary: Path) -> Optional[str]:
    """Why the BASEDIR a process's binary points at is not trusted, or None."""
    problem = untrusted_reason(str(binary))
    if problem:
        return f"its binary {binary} is not trusted: {problem}"
    akd = binary.parent.parent.parent / "akd"
    if os.path.lexists(akd):
        problem = untrusted_reason(str(akd))
        if problem:
            return f"{akd} is not trusted: {problem}"
    return None


def basedir_from_processes(refused: Optional[List[str]] = None) -> Optional[Path]:
    """The BASEDIR of the first running AK: process whose files are trusted; each
    refused candidate adds a line to `refused`."""
    seen = set()
    for proc in psutil.process_iter(["name", "cmdline", "exe"], ad_value=None):
        binary = _candidate(proc.info)
        if binary is None or binary in seen:
            continue
        seen.add(binary)
        problem = candidate_problem(binary)
        if problem is None:
            return binary.parent.parent.parent
        if refused is not None:
            refused.append(f"process {proc.pid}: {problem}")
    return None


def resolve_basedir(option: Optional[str]) -> Tuple[Path, str]:
    """(BASEDIR, where it came from).  When running processes were refused, the source
    says why, so that the manifest and the summary show it."""
    if option:
        return Path(option), "--basedir"
    env = os.environ.get("AKDIAG_BASEDIR")
    if env:
        return Path(env), "AKDIAG_BASEDIR"
    refused: List[str] = []
    found = basedir_from_processes(refused)
    if found is not None:
        return found, "running AK: process"
    if refused:
        return DEFAULT_BASEDIR, "default; refused running AK: process(es): " + "; ".join(refused[:3])
    return DEFAULT_BASEDIR, "default"


def basedir_problem(path: Path) -> Optional[str]:
    """Why BASEDIR cannot be read (every collector that reads it records its own part
    of that too), or None."""
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return "does not exist"
    except NotADirectoryError:
        return "is not a folder"
    except OSError as exc:
        return f"cannot be opened ({exc.strerror or exc})"
    os.close(fd)
    return None
