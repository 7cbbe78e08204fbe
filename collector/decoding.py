"""Host files decoded whatever their encoding mark (UTF-8 with a BOM, UTF-16, UTF-32),
and a JSON loader that refuses documents nested too deep instead of letting the
parser exhaust the interpreter's stack."""

from __future__ import annotations

import json
import re
from typing import Any, Tuple

MAX_DEPTH = 200


class TooDeep(ValueError):
    """A document nested deeper than MAX_DEPTH: refused rather than parsed."""


# -- decoding -------------------------------------------------------------------------

def decode_text(raw: bytes) -> Tuple[str, str]:
    """(text, encoding) of a host file: a byte order mark (or, for UTF-16/32 without one,
    the NUL pattern of its first characters, as JSON's RFC describes) says how it is
    encoded; else UTF-8.  Bytes that do not decode survive as surrogate escapes."""
    encoding = json.detect_encoding(raw)
    text = raw.decode(encoding, "surrogateescape" if encoding.startswith("utf-8") else "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    name = {"utf-8": "utf-8", "utf-8-sig": "utf-8 with BOM"}.get(encoding, encoding)
    return text, name


# -- bounded JSON ----------------------------------------------------------------------

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep `text`'s brackets nest outside strings; stops counting past `limit`."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_JSON_STRING.sub("", text)):
        if match.group(0) in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def load_json(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that refuses (TooDeep, a ValueError) a document nested deeper than
    `max_depth`, where the parser would exhaust the interpreter's stack."""
    if json_depth(text, max_depth) > max_depth:
        raise TooDeep(f"nested deeper than {max_depth} levels; not parsed")
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep(f"nested too deep to parse (limit {max_depth})") from None
