"""CI runs the README's test command, as it stands in the README (Development)."""

from __future__ import annotations

import re

from conftest import REPO


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"The test command \(CI runs exactly this\):\s*```sh\n(.*?)\n```", readme, re.S)
    assert block, "README: the Development section names no test command"
    command = block.group(1).strip()
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert command in ci_lines, f".ci/run does not run the README's test command {command!r}"
    commands = [line for line in ci_lines if line and not line.startswith("#")]
    assert commands[-1] == command, ".ci/run must end with the README's test command: its status is CI's"
    assert "pytest" not in "\n".join(commands), ".ci/run runs tests besides the README's test command"
