"""Print `name==version` for every runtime dependency of pyproject.toml at the lowest
version its floor (`>=`) allows, one a line, for `pip install -r`.  A dependency
without a `>=` floor is an error: the lowest-versions CI step must pin every one."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from collector.zipapp_wheels import _pyproject_dependencies  # noqa: E402  (reads [project] dependencies)


def lowest(requirement: str) -> str:
    found = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*>=\s*([^,;\s]+)\s*", requirement)
    if not found:
        sys.exit(f"lowest.py: no plain '>=' floor in {requirement!r}")
    return f"{found.group(1)}=={found.group(2)}"


if __name__ == "__main__":
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    print("\n".join(lowest(r) for r in _pyproject_dependencies(pyproject.read_text(encoding="utf-8"))))
