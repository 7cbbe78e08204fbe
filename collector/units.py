"""Human sizes and durations, read and written the same way by every command:
sizes as `2M`, `100MiB`, `1.5GiB`, `25MB` or plain bytes; durations as `30s`, `5m`, `1h`,
`1d` or plain seconds.

A size suffix is binary whether or not it carries the `i`: administrators type `25M` for
an attachment limit and mean mebibytes, as 7-Zip's `-v25m` and `sort -S 25M` do."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_DURATION_FACTORS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class BadUnit(ValueError):
    """A size or duration that cannot be read; its message says what is expected."""


def parse_size(text: str) -> int:
    """Bytes of `text`: '2M' -> 2097152, '1.5GiB', '100MiB', '25MB', '4096', '10K'."""
    match = _SIZE.match(str(text))
    if not match or (match.group(3) and match.group(3).lower() == "i"):
        raise BadUnit(f"{text!r} is not a size: give bytes or a number with K, M, G or T (e.g. 25M, 1.5GiB)")
    number, prefix = float(match.group(1)), match.group(2).lower()
    if match.group(3) and not prefix and match.group(3).lower() != "b":
        raise BadUnit(f"{text!r} is not a size: give bytes or a number with K, M, G or T (e.g. 25M, 1.5GiB)")
    value = int(number * _SIZE_FACTORS[prefix])
    if value < 0 or (number and not value):
        raise BadUnit(f"{text!r} is less than one byte")
    return value


def parse_duration(text: str) -> float:
    """Seconds of `text`: '30s' -> 30.0, '5m' -> 300.0, '1h', '1d', '2.5' (seconds)."""
    match = _DURATION.match(str(text))
    if not match:
        raise BadUnit(f"{text!r} is not a duration: give seconds or a number with s, m, h or d (e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _DURATION_FACTORS[match.group(2).lower()]


def format_size(size: float) -> str:
    """1536 -> '1.5 KiB'; 512 -> '512 B'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024.0
    return f"{size} B"  # pragma: no cover


def format_duration(seconds: float) -> str:
    """90 -> '1m30s'; 3600 -> '1h'; 2.5 -> '2.5s'."""
    if seconds < 60:
        return f"{seconds:g}s"
    whole = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)
