"""Every file in BASEDIR/pids, catalog or not, with its state.

pidfiles.json: {"folder": path, "exists": bool, "files": [{name, path, state, pid, detail,
owner_name, catalog}], "errors": [...]}

The folder is opened from BASEDIR (collector.safeopen): a `pids` that is a symlink
leaving BASEDIR is refused, and each file is read relative to BASEDIR the same way.
"""

from __future__ import annotations

import os

from collector import live
from collector.context import Context
from collector.safeopen import SafeRoot, describe_error, escaped_name

MAX_FILES = 2000
TABLE_WAIT_SECONDS = 0.5  # for the processes collector's read of /proc, under way (a busy host's takes longer)


def collect(ctx: Context) -> dict:
    folder = ctx.basedir / "pids"
    result = {"folder": str(folder), "exists": False, "files": [], "errors": []}
    try:
        with SafeRoot(ctx.basedir) as root:
            fd, _parts = root.open_dir("pids")
            try:
                names = sorted(os.listdir(fd))[:MAX_FILES]
            finally:
                os.close(fd)
    except (FileNotFoundError, NotADirectoryError):
        result["errors"].append(f"PID folder {folder} does not exist or is not a folder")
        return result
    except OSError as exc:
        result["errors"].append(f"cannot list {folder}: {describe_error(exc)}")
        return result
    result["exists"] = True
    known = {spec.pidfile_name: spec for spec in ctx.catalog.processes}
    table = ctx.processes.table_if_read(TABLE_WAIT_SECONDS)  # the processes collector's, when it runs
    for name in names:
        ctx.deadline.check()
        spec = known.get(name)
        title = spec.title if spec else _title_from_name(name)
        record = live.pidfile_state(folder / name, title, ctx.basedir, table)
        record.update(name=escaped_name(name), path=escaped_name(record["path"]), catalog=spec is not None,
                      detail=record["detail"] and escaped_name(record["detail"]))
        result["files"].append(record)
    return result


def _title_from_name(name: str):
    """A PID file named like a platform binary (`<binary>.pid`) expects AK:<binary>."""
    return f"AK:{name[:-4]}" if name.endswith(".pid") else None
