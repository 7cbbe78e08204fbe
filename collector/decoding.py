"""Host files decoded whatever their encoding mark (UTF-8 with a BOM, UTF-16, UTF-32).
The bounded JSON loader they are parsed with is collector.untrusted.load_json_bounded."""

from __future__ import annotations

import json
from typing import Tuple

from collector.untrusted import MAX_JSON_DEPTH as MAX_DEPTH  # one cap for every parsed document
from collector.untrusted import JSONTooDeep as TooDeep


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
