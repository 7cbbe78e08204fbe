"""Every file in BASEDIR/pids, catalog or not, with its state.

pidfiles.json: {"folder": path, "exists": bool, "files": [{name, path, state, pid, detail,
owner_name, catalog}], "errors": [...]}
"""

from __future__ import annotations

import os

from collector import live
from collector.context import Context

MAX_FILES = 2000


def collect(ctx: Context) -> dict:
    folder = ctx.basedir / "pids"
    result = {"folder": str(folder), "exists": folder.is_dir(), "files": [], "errors": []}
    if not result["exists"]:
        result["errors"].append(f"PID folder {folder} does not exist or is not a folder")
        return result
    known = {spec.pidfile_name: spec for spec in ctx.catalog.processes}
    try:
        names = sorted(os.listdir(folder))[:MAX_FILES]
    except OSError as exc:
        result["errors"].append(f"cannot list {folder}: {exc.strerror or exc}")
        return result
    for name in names:
        ctx.deadline.check()
        spec = known.get(name)
        title = spec.title if spec else _title_from_name(name)
        record = live.pidfile_state(folder / name, title)
        record["name"] = name
        record["catalog"] = spec is not None
        result["files"].append(record)
    return result


def _title_from_name(name: str):
    """A PID file named like a platform binary (`<binary>.pid`) expects AK:<binary>."""
    return f"AK:{name[:-4]}" if name.endswith(".pid") else None
