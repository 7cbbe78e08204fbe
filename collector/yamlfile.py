"""Reading a user's YAML file (the catalog, the cluster's hosts) as a node tree, so
that every error can name the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Type

import yaml


def where(source: str, node: yaml.Node) -> str:
    """'<file>, line N' of a node, for error messages."""
    return f"{source}, line {node.start_mark.line + 1}"


def compose_file(path: Path, what: str, error: Type[Exception]) -> Optional[yaml.Node]:
    """The file's YAML node tree (None for an empty file).  Raises `error` with a message
    naming the file (and the line of a YAML mistake); `what` names the file's role."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{source}: cannot read the {what}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{source}: the {what} is not UTF-8 text ({exc})") from exc
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise error(f"{source}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
