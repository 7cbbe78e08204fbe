"""Servers for the datastore tests: stand-ins (SSDB, MongoDB through mockupdb, HTTP),
hostile ones (tarpit, closer, garbage), and the real ones .ci/services.sh starts."""

from __future__ import annotations

import os
from typing import Tuple

import pytest


def real_server(variable: str) -> Tuple[str, int]:
    """(host, port) of a real server from its environment variable (set by
    `.ci/services.sh start`).  Without it: skipped, or failed when CI is set, since a
    CI run must not pass by skipping the tests that need its servers."""
    value = os.environ.get(variable, "").strip()
    if not value:
        message = (f"{variable} is not set: start the real servers with `eval \"$(.ci/services.sh start)\"` "
                   "before running the `servers` tests")
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)
