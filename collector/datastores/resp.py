"""Replies of Redis-protocol servers (SSDB, Kvrocks, Redis): one INFO parser that tells
SSDB's array reply from Redis's text reply, and a small RESP2 decoder (used by the
tests' servers and to read captured replies).

SSDB answers INFO with an array: ["ssdb-server", "version", "1.9.8", "links", "1", ...,
"binlogs", "    capacity : 20000000\\n    min_seq  : 0\\n...", ...]; Redis and Kvrocks answer
with one text block of "# Section" headers and "key:value" lines.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple, Union

Reply = Union[bytes, str, int, None, list]

_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?\d+\.\d+$")
_FIELD_LINE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*:\s?(.*)$")
MAX_LINES = 200


class IncompleteReply(Exception):
    """More bytes are needed to decode a whole reply."""


class ReplyError(Exception):
    """A RESP error reply (-ERR ...), decoded."""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def scalar(value: str) -> Any:
    """'12' -> 12, '0.5' -> 0.5, anything else unchanged."""
    value = value.strip()
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


# -- INFO -------------------------------------------------------------------------------


def parse_info(reply: Reply) -> dict:
    """INFO's reply as {"format": "ssdb", "server", "fields"} for SSDB's array, or
    {"format": "redis", "sections": {section: {key: value}}} for Redis's text."""
    if isinstance(reply, (list, tuple)):
        return _parse_ssdb_info(list(reply))
    if isinstance(reply, (bytes, str)):
        return {"format": "redis", "sections": parse_redis_info_text(_text(reply))}
    raise ValueError(f"INFO replied with {type(reply).__name__}, neither an array (SSDB) nor text (Redis)")


def _parse_ssdb_info(items: List[Any]) -> dict:
    values = [_text(item) for item in items]
    if not values:
        raise ValueError("INFO replied with an empty array")
    server = values[0]
    fields: Dict[str, Any] = {}
    pairs = values[1:]
    for index in range(0, len(pairs), 2):
        key = pairs[index]
        value = pairs[index + 1] if index + 1 < len(pairs) else None
        fields[key] = None if value is None else _ssdb_value(value)
    return {"format": "ssdb", "server": server, "fields": fields}


def _ssdb_value(value: str) -> Any:
    if "\n" not in value:
        return scalar(value)
    lines = [line.rstrip() for line in value.split("\n")]
    content = [line for line in lines if line.strip()]
    matches = [_FIELD_LINE.match(line) for line in content]
    if content and all(matches):
        return {m.group(1): scalar(m.group(2)) for m in matches if m}
    return lines[:MAX_LINES]


def parse_redis_info_text(text: str) -> Dict[str, Dict[str, Any]]:
    sections: Dict[str, Dict[str, Any]] = {}
    current = sections.setdefault("default", {})
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            current = sections.setdefault(line.lstrip("#").strip().lower(), {})
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if _is_keyspace_value(value):
            current[key] = {k: scalar(v) for k, v in (part.split("=", 1) for part in value.split(","))}
        else:
            current[key] = scalar(value)
    if not sections.get("default"):
        sections.pop("default", None)
    return sections


def _is_keyspace_value(value: str) -> bool:
    parts = value.split(",")
    return bool(parts) and all("=" in part for part in parts) and value.count("=") == len(parts)


def ssdb_summary(parsed: dict) -> dict:
    """The figures a support engineer asks for first, from SSDB's parsed INFO."""
    fields = parsed.get("fields", {})
    return {
        "server": parsed.get("server"),
        "version": fields.get("version"),
        "links": fields.get("links"),
        "total_calls": fields.get("total_calls"),
        "dbsize": fields.get("dbsize"),
        "binlogs": fields.get("binlogs"),
        "serv_key_range": fields.get("serv_key_range"),
        "data_key_range": fields.get("data_key_range"),
        "leveldb_stats": fields.get("leveldb.stats"),
        "other": {k: v for k, v in fields.items()
                  if k not in ("version", "links", "total_calls", "dbsize", "binlogs", "serv_key_range",
                               "data_key_range", "leveldb.stats")},
    }


def info_version(parsed: dict) -> Optional[str]:
    if parsed.get("format") == "ssdb":
        value = parsed.get("fields", {}).get("version")
        return None if value is None else str(value)
    server = parsed.get("sections", {}).get("server", {})
    for key in ("kvrocks_version", "version", "redis_version"):
        if server.get(key) not in (None, ""):
            return str(server[key])
    return None


def ssdb_dbsize(reply: Reply) -> Optional[int]:
    """SSDB's DBSIZE is an array of one string (leveldb's estimate of bytes on disk);
    Redis's is an integer."""
    if isinstance(reply, (list, tuple)):
        reply = reply[0] if reply else None
    if reply is None:
        return None
    value = scalar(_text(reply)) if not isinstance(reply, int) else reply
    if not isinstance(value, int):
        raise ValueError(f"DBSIZE replied {value!r}, not a number")
    return value


# -- RESP2 decoding ---------------------------------------------------------------------------


def decode(data: bytes, pos: int = 0) -> Tuple[Any, int]:
    """One RESP2 value from `data` at `pos`: (value, position after it).  Errors come
    back as ReplyError instances (not raised); IncompleteReply when more bytes are needed;
    ValueError when the bytes are not RESP."""
    end = data.find(b"\r\n", pos)
    if end < 0:
        raise IncompleteReply()
    kind = data[pos:pos + 1]
    line = data[pos + 1:end]
    after = end + 2
    if kind == b"+":
        return line, after
    if kind == b"-":
        return ReplyError(line.decode("utf-8", "replace")), after
    if kind == b":":
        return int(line), after
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, after
        if len(data) < after + length + 2:
            raise IncompleteReply()
        if data[after + length:after + length + 2] != b"\r\n":
            raise ValueError("bulk string not followed by CRLF")
        return data[after:after + length], after + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = decode(data, after)
            items.append(item)
        return items, after
    raise ValueError(f"not RESP: starts with {kind!r}")


def encode_command(*args: Union[str, bytes, int]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)
