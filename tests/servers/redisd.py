"""A real redis-server of the test's own, on 127.0.0.1 and a free port, with or without
`requirepass`: started in the foreground as a child of the test (no data saved), and
stopped by its PID when the test ends.  Debian's redis-server must be installed (as
.ci/services.sh requires); without it the test is skipped, or fails when CI is set."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Optional

import pytest

from servers.hostile import free_port

START_SECONDS = 10.0


def _redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install -y redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    return binary


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(0.5)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")  # +PONG, or -NOAUTH when it wants a password
    except OSError:
        return False


class RedisServer:
    """`with RedisServer(password=...) as server:` server.host, server.port."""

    host = "127.0.0.1"

    def __init__(self, password: Optional[str] = None):
        self.password = password
        self.port = 0
        self.process: Optional[subprocess.Popen] = None
        self._dir: Optional[tempfile.TemporaryDirectory] = None

    def start(self) -> "RedisServer":
        binary = _redis_server_binary()
        self._dir = tempfile.TemporaryDirectory(prefix="akdiag-redis-")
        self.port = free_port()
        args = [binary, "--bind", self.host, "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", self._dir.name, "--logfile", os.path.join(self._dir.name, "log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        end = time.monotonic() + START_SECONDS
        while not _answers(self.port):
            if self.process.poll() is not None or time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"redis-server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
