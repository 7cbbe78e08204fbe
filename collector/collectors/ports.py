"""Every listening socket on the host: protocol, address, port, PID, process name.

ports.json: {"listening": [...], "ephemeral_range": [low, high] | null, "notes": [...], "errors": [...]}
The kernel's ephemeral port range lets the diff tell a program's fixed port from one the
kernel handed out at random (bound to port 0), which differs on every start.
"""

from __future__ import annotations

from typing import List, Optional

from collector.context import Context

EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def ephemeral_range(path: str = EPHEMERAL_RANGE_FILE) -> Optional[List[int]]:
    try:
        with open(path, "r", encoding="ascii", errors="replace") as handle:
            low, high = (int(part) for part in handle.readline(64).split())
    except (OSError, ValueError):
        return None
    return [low, high] if 0 < low <= high <= 65535 else None


def collect(ctx: Context) -> dict:
    """The listening sockets come from the run's one socket snapshot (ctx.sockets)."""
    note = ctx.sockets.hidden_note()
    return {"listening": ctx.sockets.listening(), "ephemeral_range": ephemeral_range(),
            "notes": [note] if note else [], "errors": ctx.sockets.errors(owners=True)}
