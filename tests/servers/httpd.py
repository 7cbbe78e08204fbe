"""A small HTTP server on 127.0.0.1 answering fixed routes: the services' status
handlers, a fake RabbitMQ management API, a fake ClickHouse HTTP interface."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

Route = Union[Tuple[int, Any], Callable[[BaseHTTPRequestHandler], Tuple[int, Any]]]


class FakeHTTP:
    def __init__(self, routes: Optional[Dict[str, Route]] = None, port: int = 0):
        self.routes: Dict[str, Route] = dict(routes or {})
        self.requests: List[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                path = self.path.split("?", 1)[0]
                server.requests.append({"path": self.path, "headers": dict(self.headers)})
                route = server.routes.get(path)
                if route is None:
                    status, body = 404, "not found"
                elif callable(route):
                    status, body = route(self)
                else:
                    status, body = route
                raw = body if isinstance(body, bytes) else (
                    body.encode() if isinstance(body, str) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, (str, bytes))
                                 else "text/plain")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "FakeHTTP":
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="fake-http").start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "FakeHTTP":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def health_routes(service: str, ready: bool = True, failed: Optional[List[str]] = None) -> Dict[str, Route]:
    readiness = (200, {"status": "OK"}) if ready else (503, {"status": "FAIL", "failed": failed or ["mongo"]})
    return {f"/{service}/health": (200, "OK"), f"/{service}/readiness": readiness}
