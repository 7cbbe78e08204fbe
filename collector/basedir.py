"""Where the platform lives: --basedir, else AKDIAG_BASEDIR, else the folder of a
running AK: process's executable (.../ak/bin/<binary>), else /opt/akd."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

import psutil

DEFAULT_BASEDIR = Path("/opt/akd")


def basedir_from_processes() -> Optional[Path]:
    for proc in psutil.process_iter(["name", "cmdline", "exe"], ad_value=None):
        cmdline = proc.info.get("cmdline") or []
        titled = bool(cmdline) and cmdline[0].startswith("AK:") or (proc.info.get("name") or "").startswith("AK:")
        exe = proc.info.get("exe")
        if not titled or not exe:
            continue
        path = Path(exe)
        if len(path.parts) >= 4 and path.parent.name == "bin" and path.parent.parent.name == "ak":
            return path.parent.parent.parent
    return None


def resolve_basedir(option: Optional[str]) -> Tuple[Path, str]:
    """(BASEDIR, where it came from)."""
    if option:
        return Path(option), "--basedir"
    env = os.environ.get("AKDIAG_BASEDIR")
    if env:
        return Path(env), "AKDIAG_BASEDIR"
    found = basedir_from_processes()
    if found is not None:
        return found, "running AK: process"
    return DEFAULT_BASEDIR, "default"
