"""A real RabbitMQ for the tests: the management API as guest, and a module fixture that
makes a private vhost, users and queues (with a few messages) and removes them after."""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.request
from typing import Any, Optional
from urllib.parse import quote

import pytest

from servers import real_server


class RabbitAdmin:
    """The management HTTP API as guest (allowed from 127.0.0.1 only)."""

    def __init__(self, host: str, port: int):
        self.base = f"http://{host}:{port}/api"
        self.auth = "Basic " + base64.b64encode(b"guest:guest").decode()

    def call(self, method: str, path: str, body: Optional[Any] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Authorization": self.auth, "Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def rabbit():
    """A private vhost on the real broker: user (management tag), plain user, queues."""
    host, port = real_server("AKDIAG_TEST_RABBITMQ")
    api_host, api_port = real_server("AKDIAG_TEST_RABBITMQ_API")
    admin = RabbitAdmin(api_host, api_port)
    tag = secrets.token_hex(4)
    vhost, user, password = f"akdiag-test-{tag}", f"akdiag-{tag}", f"pw-{secrets.token_hex(12)}"
    v = quote(vhost, safe="")
    admin.call("PUT", f"/vhosts/{v}", {})
    plain = f"akdiag-plain-{tag}"  # no management tag: the management API refuses it
    admin.call("PUT", f"/users/{user}", {"password": password, "tags": "management"})
    admin.call("PUT", f"/users/{plain}", {"password": password, "tags": ""})
    for name in (user, plain):
        admin.call("PUT", f"/permissions/{v}/{name}", {"configure": ".*", "write": ".*", "read": ".*"})
    for queue in ("oxy_triggers", "trk_actions", "trk_pixel", "akmta_default", "geo_akmta_eu", "other_queue"):
        admin.call("PUT", f"/queues/{v}/{queue}", {"durable": False, "auto_delete": False})
    for queue, count in (("oxy_triggers", 3), ("trk_actions", 2), ("akmta_default", 1)):
        for _ in range(count):
            admin.call("POST", f"/exchanges/{v}/amq.default/publish",
                       {"properties": {}, "routing_key": queue, "payload": "x", "payload_encoding": "string"})
    # the API's message counts appear after its statistics interval (about 5 s)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        queues = {q["name"]: q.get("messages") for q in admin.call("GET", f"/queues/{v}")}
        if queues.get("trk_actions") == 2 and queues.get("akmta_default") == 1 and queues.get("trk_pixel") == 0:
            break
        time.sleep(0.5)
    yield {"host": host, "port": port, "api_port": api_port, "vhost": vhost, "user": user, "plain_user": plain,
           "password": password, "admin": admin}
    admin.call("DELETE", f"/vhosts/{v}")
    admin.call("DELETE", f"/users/{user}")
    admin.call("DELETE", f"/users/{plain}")




def publish(rabbit: dict, queue: str, count: int) -> None:
    v = quote(rabbit["vhost"], safe="")
    for _ in range(count):
        rabbit["admin"].call("POST", f"/exchanges/{v}/amq.default/publish",
                             {"properties": {}, "routing_key": queue, "payload": "x", "payload_encoding": "string"})
