"""Whether pip reaches a package index that has what a test installs: the `install`
tests need one.  Without it they skip, except in CI (CI=true), where they fail, as the
`servers` tests do without their servers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest


def index_or_skip(requirements) -> None:
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                               "-d", folder, *requirements], capture_output=True, text=True, timeout=300)
    if done.returncode == 0:
        return
    reason = f"pip cannot download {' '.join(requirements)}: {done.stderr.strip()[-200:]}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
