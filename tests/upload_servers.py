"""Real servers on loopback for the upload tests: a test CA made with the `openssl`
command, an HTTPS (or plain HTTP) server that receives PUT and POST bodies and answers
as a scenario says (fail, refuse, stall, read slowly), and a tiny CONNECT proxy."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import os
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlsplit


SIGNATURE = "9f3a1c5e7b2d4f60a8c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9"
QUERY = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLEKEYID%2F20261201%2Fus-east-1%2Fs3"
         f"&X-Amz-Expires=3600&X-Amz-Signature={SIGNATURE}")
_PROXY_NAMES = ("https_proxy", "http_proxy", "no_proxy", "all_proxy")


def clean_env(extra=None) -> dict:
    """This process's environment without any proxy setting or upload address, plus `extra`."""
    env = {name: value for name, value in os.environ.items()
           if name.lower() not in _PROXY_NAMES and name != "AKDIAG_UPLOAD_URL"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    env.update(extra or {})
    return env


def assert_no_secret(done) -> None:
    everything = done.stdout + done.stderr
    assert SIGNATURE not in everything
    assert "AKIAEXAMPLEKEYID" not in everything
    assert "X-Amz-Signature" not in everything


def openssl_missing() -> Optional[str]:
    return None if shutil.which("openssl") else "the openssl command is not installed"


@dataclass
class TestCA:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_ca(folder: Path, name: str = "akdiag test CA") -> TestCA:
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                       "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
                                       "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return TestCA(folder / "ca.pem", folder / "server.pem", folder / "server.key")


@dataclass
class Received:
    method: str
    path: str  # with its query
    headers: dict
    body: bytes
    size: int = 0
    sha256: str = ""

    def form_file(self):
        """(field name, file name, bytes) of a multipart POST's file part."""
        raw = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + self.body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        for part in message.iter_parts():
            return (part.get_param("name", header="content-disposition"), part.get_filename(),
                    part.get_payload(decode=True))
        return None


@dataclass
class Scenario:
    statuses: List[int] = field(default_factory=lambda: [201])  # one per request; the last repeats
    answer: bytes = b""  # the body of a failing answer
    answer_type: str = "text/plain"
    chunk_pause: float = 0.0  # seconds between reads of 64 KiB of the body (a slow server)
    answer_first: bool = False  # answer (and close) without reading the body, as a proxy enforcing a limit may
    keep_body: bool = True  # False: only the body's length and SHA-256 are kept (large bodies)
    stall: float = 0.0  # seconds to wait after the body before answering (a server that hangs)


class UploadServer:
    """HTTP(S) on 127.0.0.1 receiving PUT/POST bodies whole, answering per its scenario."""

    def __init__(self, tls: Optional[TestCA] = None, scenario: Optional[Scenario] = None):
        self.scenario = scenario or Scenario()
        self.received: List[Received] = []
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _receive(self):
                number = server.requests
                server.requests += 1
                length = 0 if server.scenario.answer_first else int(self.headers.get("Content-Length", "0"))
                body, digest, size = bytearray(), hashlib.sha256(), 0
                while size < length:
                    chunk = self.rfile.read(min(65536, length - size))
                    if not chunk:
                        break
                    size += len(chunk)
                    digest.update(chunk)
                    if server.scenario.keep_body:
                        body += chunk
                    if server.scenario.chunk_pause:
                        time.sleep(server.scenario.chunk_pause)
                statuses = server.scenario.statuses
                status = statuses[min(number, len(statuses) - 1)]
                if server.scenario.stall:
                    time.sleep(server.scenario.stall)
                if 200 <= status < 300:
                    server.received.append(Received(self.command, self.path, dict(self.headers), bytes(body), size,
                                                    digest.hexdigest()))
                answer = server.scenario.answer if status >= 300 else b""
                self.send_response(status)
                self.send_header("Content-Type", server.scenario.answer_type)
                self.send_header("Content-Length", str(len(answer)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer)

            do_PUT = _receive  # noqa: N815 - the stdlib's names
            do_POST = _receive  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert_file, tls.key_file)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls is not None else "http"

    def url(self, path: str = "/bucket/bundle.7z", query: str = "") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def __enter__(self) -> "UploadServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="upload-server").start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1: CONNECT tunnels (their targets recorded in `tunnels`)
    and plain-http requests in absolute form (their request lines in `forwarded`)."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.tunnels: List[str] = []
        self.forwarded: List[str] = []
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ConnectProxy":
        threading.Thread(target=self._serve, daemon=True, name="connect-proxy").start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode()
            method, target, version = request_line.split(" ", 2)
            if method != "CONNECT":
                self._forward(client, head, method, target, version)
                return
            self.tunnels.append(target)
            host, _, port = target.rpartition(":")
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _relay(client, upstream)


    def _forward(self, client: socket.socket, head: bytes, method: str, target: str, version: str) -> None:
        self.forwarded.append(f"{method} {target}")
        parts = urlsplit(target)
        origin = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        rest = head.split(b"\r\n", 1)[1]
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as upstream:
            upstream.sendall(f"{method} {origin} {version}\r\n".encode() + rest)
            _relay(client, upstream)


def _relay(one: socket.socket, other: socket.socket) -> None:
    peers = {one: other, other: one}
    while True:
        ready, _, _ = select.select(list(peers), [], [], 30)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)
