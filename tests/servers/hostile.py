"""Servers that misbehave on purpose, each on 127.0.0.1 and a free port:
a tarpit (accepts, never replies), a port that closes every connection at once, and
one that answers anything with random bytes."""

from __future__ import annotations

import random
import socket
import threading
from typing import List


class _Server:
    """A listening socket served by one daemon thread per connection."""

    def __init__(self, port: int = 0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections: List[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"{type(self).__name__}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "_Server":
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve_safely, args=(conn,), daemon=True).start()

    def _serve_safely(self, conn: socket.socket) -> None:
        try:
            self.serve(conn)
        except OSError:
            pass

    def serve(self, conn: socket.socket) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:
        self._stopped.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self.connections:
            try:
                conn.close()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Tarpit(_Server):
    """Accepts every connection, reads what comes, never answers."""

    def serve(self, conn: socket.socket) -> None:
        while not self._stopped.is_set():
            data = conn.recv(65536)
            if not data:
                return


class Closer(_Server):
    """Closes every connection as soon as it is accepted."""

    def serve(self, conn: socket.socket) -> None:
        conn.close()


class Garbage(_Server):
    """Answers the first bytes it receives (or the connection itself, after 50 ms) with
    random bytes cut into CRLF-ended lines, none of them valid in any protocol the
    checks speak, then keeps the connection open until the client leaves."""

    def __init__(self, port: int = 0, size: int = 4096, seed: int = 7):
        super().__init__(port)
        rng = random.Random(seed)
        lines = []
        while sum(len(line) for line in lines) < size:
            body = bytes(rng.choice(range(0x80, 0x100)) for _ in range(62))
            lines.append(b"\x16" + body[1:] + b"\r\n")  # 0x16: a TLS record's first byte
        self.payload = b"".join(lines)

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        try:
            conn.recv(65536)
        except socket.timeout:
            pass
        conn.settimeout(None)
        conn.sendall(self.payload)
        while not self._stopped.is_set():
            if not conn.recv(65536):
                return


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def refused_port() -> int:
    """A port where nothing listens (connections are refused)."""
    return free_port()


def start_tarpits(ports: List[int]) -> List[Tarpit]:
    return [Tarpit(port).start() for port in ports]


__all__ = ["Tarpit", "Closer", "Garbage", "free_port", "refused_port", "start_tarpits"]
