"""Output of `{BASEDIR}/akd --processes`, the platform's own list of its processes.

commands/akd-processes.json: {command, exists, exit_code, duration, timed_out, stdout, stderr, error}
The output itself is in commands/akd-processes.txt and .stderr.txt.
"""

from __future__ import annotations

import os

from collector.bounded import run_command
from collector.context import Context

STDOUT_FILE = "commands/akd-processes.txt"
STDERR_FILE = "commands/akd-processes.stderr.txt"
MAX_OUTPUT = 1024 * 1024


def collect(ctx: Context) -> dict:
    akd = ctx.basedir / "akd"
    argv = [str(akd), "--processes"]
    record = {"command": " ".join(argv), "exists": akd.is_file(), "exit_code": None, "duration": None,
              "timed_out": False, "stdout": None, "stderr": None, "error": None, "errors": []}
    if not record["exists"]:
        record["error"] = f"{akd} not found: cannot ask the platform for its process list"
        record["errors"].append(record["error"])
        return record
    if not os.access(akd, os.X_OK):
        record["error"] = f"{akd} is not executable"
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
