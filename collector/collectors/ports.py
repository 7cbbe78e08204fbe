"""Every listening socket on the host: protocol, address, port, PID, process name.

ports.json: {"listening": [...], "errors": [...]}
"""

from __future__ import annotations

from collector import live
from collector.context import Context


def collect(ctx: Context) -> dict:
    return {"listening": live.listening_sockets(), "errors": []}
