"""Reading JSON-shaped data whatever its shape: a bundle may come from another version,
be edited by hand or be cut short, so every reader takes what it finds and never trusts
a type."""

from __future__ import annotations

import math
from typing import Any, List, Optional


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def dicts(value: Any) -> List[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def number(value: Any) -> Optional[float]:
    """A finite int or float, else None (bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_number(value: Any) -> bool:
    return number(value) is not None


def one_line(text: Any, limit: int = 300) -> str:
    """A message on one line, cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
