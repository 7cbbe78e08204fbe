"""The `akd --processes` section: how the platform's own status command ended and the
head of what it printed (the whole output is in the bundle)."""

from __future__ import annotations

from typing import Optional

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.report.format import strings
from collector.report.sources import read_head

MAX_AKD_STDOUT_BYTES = 200 * 1024  # shown in the HTML; the full output is in the bundle
MAX_AKD_STDERR_BYTES = 64 * 1024


def akd_view(reader: BundleReader, data: Optional[dict]) -> dict:
    data = data or {}
    view = {
        "command": data.get("command"), "exists": data.get("exists"), "exit_code": data.get("exit_code"),
        "duration": data.get("duration"), "timed_out": data.get("timed_out"), "error": data.get("error"),
        "stdout_truncated": data.get("stdout_truncated"), "errors": strings(data.get("errors"), schema.AKD),
        "stdout": None, "stdout_path": data.get("stdout"), "stdout_capped": False, "stdout_size": None,
        "stdout_note": None, "stderr": None, "stderr_path": data.get("stderr"), "stderr_capped": False,
    }
    if data.get("stdout"):
        path, problem = reader.member(data.get("stdout"), schema.COMMANDS_DIR + "/")
        if path:
            view["stdout"], view["stdout_capped"], view["stdout_size"] = read_head(path, MAX_AKD_STDOUT_BYTES)
        else:
            view["stdout_note"] = problem
    if data.get("stderr"):
        path, _problem = reader.member(data.get("stderr"), schema.COMMANDS_DIR + "/")
        if path:
            text, view["stderr_capped"], _size = read_head(path, MAX_AKD_STDERR_BYTES)
            view["stderr"] = text if text.strip() else None
    return view
