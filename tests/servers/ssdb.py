"""A small SSDB stand-in speaking RESP2 on 127.0.0.1, answering `ping`, `info`,
`dbsize`, `version` and `auth` byte for byte as a real SSDB 1.9.8 does (the replies
captured in ssdb-1.9.8-replies.txt beside this file), rejecting HELLO and every other
command as SSDB does, and resetting a connection that does not start with '*'."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Dict, List, Optional

from collector.datastores.resp import IncompleteReply, decode
from servers.hostile import _Server

CAPTURE = Path(__file__).with_name("ssdb-1.9.8-replies.txt")


def captured_replies() -> Dict[str, bytes]:
    """{command: raw reply bytes} from the capture, whose replies are written with
    \\r and \\n escapes (a real newline inside a bulk string is written \\n too)."""
    replies: Dict[str, bytes] = {}
    lines = CAPTURE.read_text().splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^([A-Z]+)(?: \d+)?\b", line)
        if match and index + 1 < len(lines) and lines[index + 1][:1] in "*+-:$":
            raw = lines[index + 1].replace("\\r", "\r").replace("\\n", "\n").encode()
            replies[match.group(1).lower()] = raw
    return replies


REPLIES = captured_replies()
AUTH_OK = b"*1\r\n$1\r\n1\r\n"  # proc_auth's ["ok", "1"] through SSDB's redis link
AUTH_BAD = b"-ERR invalid password\r\n"
NOAUTH = b"-NOAUTH authentication required\r\n"


class FakeSSDB(_Server):
    def __init__(self, password: Optional[str] = None, port: int = 0):
        super().__init__(port)
        self.password = password
        self.commands: List[List[bytes]] = []  # every command received, for the tests

    def _reply(self, args: List[bytes], state: dict) -> bytes:
        command = args[0].decode(errors="replace").lower() if args else ""
        if self.password and not state["auth"] and command != "auth":
            return NOAUTH
        if command == "auth":
            if len(args) != 2:
                return b"-ERR \r\n"
            if not self.password or args[1].decode(errors="replace") == self.password:
                state["auth"] = True
                return AUTH_OK
            return AUTH_BAD
        if command in REPLIES:
            return REPLIES[command]
        return f"-ERR Unknown Command: {command}\r\n".encode()

    def serve(self, conn: socket.socket) -> None:
        buffer = b""
        state = {"auth": False}
        try:
            while not self._stopped.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
                while buffer:
                    stripped = buffer.lstrip(b"\r\n")
                    if stripped and not stripped.startswith(b"*"):
                        conn.close()  # SSDB resets a connection that speaks neither protocol it knows
                        return
                    try:
                        args, end = decode(stripped)
                    except IncompleteReply:
                        break
                    buffer = stripped[end:]
                    self.commands.append(args)
                    conn.sendall(self._reply(args, state))
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass
