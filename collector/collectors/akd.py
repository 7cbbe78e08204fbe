"""Output of `{BASEDIR}/akd --processes`, the platform's own list of its processes.

commands/akd-processes.json: {command, exists, exit_code, duration, timed_out, stdout, stderr, error}
The output itself is in commands/akd-processes.txt and .stderr.txt.

akd is run only when a less-privileged user could not have planted or changed it
(collector.trust); otherwise the record says "not run: ..." and why.
"""

from __future__ import annotations

import os
import stat
from typing import Optional

from collector.bounded import run_command
from collector.context import Context
from collector.trust import fd_problem, untrusted_reason

STDOUT_FILE = "commands/akd-processes.txt"
STDERR_FILE = "commands/akd-processes.stderr.txt"
MAX_OUTPUT = 1024 * 1024


def collect(ctx: Context) -> dict:
    akd = ctx.basedir / "akd"
    argv = [str(akd), "--processes"]
    record = {"command": " ".join(argv), "exists": False, "exit_code": None, "duration": None,
              "timed_out": False, "stdout": None, "stderr": None, "error": None, "errors": []}
    try:
        record["exists"] = stat.S_ISREG(os.stat(akd).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as exc:
        record["error"] = f"cannot examine {akd}: {exc.strerror or exc}"
        record["errors"].append(record["error"])
        return record
    if not record["exists"]:
        record["error"] = f"{akd} not found: cannot ask the platform for its process list"
        record["errors"].append(record["error"])
        return record
    if not os.access(akd, os.X_OK):
        record["error"] = f"{akd} is not executable"
        record["errors"].append(record["error"])
        return record
    problem = execution_problem(str(akd))
    if problem:
        record["error"] = f"not run: {problem}; a file another user could have planted is never executed"
        record["errors"].append(record["error"])
        return record
    result = run_command(argv, timeout=ctx.deadline.bound(ctx.options.command_timeout), max_output=MAX_OUTPUT)
    ctx.writer.write_bytes(STDOUT_FILE, result.stdout)
    ctx.writer.write_bytes(STDERR_FILE, result.stderr)
    record.update(exit_code=result.exit_code, duration=round(result.duration, 3), timed_out=result.timed_out,
                  stdout=STDOUT_FILE, stderr=STDERR_FILE, error=result.error,
                  stdout_truncated=result.stdout_truncated)
    if result.error:
        record["errors"].append(f"{record['command']}: {result.error}")
    elif result.exit_code != 0:
        record["errors"].append(f"{record['command']} exited with code {result.exit_code}")
    return record


def execution_problem(path: str) -> Optional[str]:
    """Why `path` must not be executed, checked right before it is.

    The folders from / down to the file are checked first, then the file is opened
    (O_NOFOLLOW on its resolved path) and its owner and mode read from the open file,
    and the path must still name that very file.  Between this check and the exec only
    the owners of those folders (root, or the user akdiag runs as) can change what the
    path names, because no folder on the way is writable by anyone else: the remaining
    window cannot be used by a less-privileged user.  (Executing /proc/self/fd/N instead
    would close even that window for binaries, but breaks a script akd that looks up
    its own folder from $0.)"""
    problem = untrusted_reason(path)
    if problem:
        return problem
    real = os.path.realpath(path)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        return f"cannot open {real}: {exc.strerror or exc}"
    try:
        problem = fd_problem(fd, real)
        if problem:
            return problem
        opened, named = os.fstat(fd), os.lstat(real)
        if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
            return f"{real} changed while it was examined"
    except OSError as exc:
        return f"cannot examine {real}: {exc.strerror or exc}"
    finally:
        os.close(fd)
    return None
