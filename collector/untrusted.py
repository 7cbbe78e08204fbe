"""Reading files and JSON that akdiag did not write itself (a user's catalog, a host's
configuration, a bundle someone hands to `report`), with bounds set before parsing:
a regular file only (a FIFO would block, /dev/zero never ends), a size cap, and for
JSON a nesting depth cap (the parsers recurse).

    data = read_regular(path, limit=8 * MIB)        # ReadRefused (an OSError) otherwise
    value = load_json_bounded(data, max_depth=64)   # JSONTooDeep (a ValueError) when deeper
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import threading
from typing import Any, Dict, Union

from collector.safeopen import read_capped

MIB = 1024 * 1024
MAX_JSON_DEPTH = 64

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class ReadRefused(OSError):
    """A file not read: not a regular file, or larger than its cap.  `strerror` says why."""

    def __init__(self, reason: str):
        super().__init__(errno.EINVAL, reason)


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than its cap: refused before parsing."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: Union[str, os.PathLike], limit: int, follow_links: bool = True, head: bool = False) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.  A FIFO, device, socket or
    folder is refused before it is opened (and checked again on the open descriptor, which
    is opened non-blocking so that a FIFO swapped in meanwhile cannot block); a larger
    file is refused (with `head`: its first `limit` bytes are returned), never read past
    `limit`."""
    mode = (os.stat if follow_links else os.lstat)(path).st_mode
    if not stat.S_ISREG(mode):
        raise ReadRefused(f"it is {_kind(mode)}, not a regular file")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow_links else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReadRefused(f"it is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit and not head:
            raise ReadRefused(f"it is {info.st_size} bytes, more than the {limit} this file may have")
        data, longer = read_capped(fd, limit)
        if longer and not head:
            raise ReadRefused(f"it grew past the {limit} bytes this file may have while it was read")
        return data
    finally:
        os.close(fd)


_STRUCTURE_ONLY = {c: None for c in range(128) if chr(c) not in '[]{}"'}
_JSON_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST_PAIR = re.compile(r"\[\]|\{\}")


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether the brackets of a JSON text nest deeper than `max_depth`, found without a
    recursive parser and at C speed: escapes are dropped (escaped backslashes first, so
    that the pairs are taken left to right as the parser does), then every character but
    quotes and brackets, then strings, then innermost bracket pairs round by round, at
    most `max_depth` rounds."""
    kept = text.replace("\\\\", "").replace('\\"', "").translate(_STRUCTURE_ONLY)
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", kept))
    for _ in range(max_depth):
        reduced = _INNERMOST_PAIR.sub("", brackets)
        if reduced == brackets:  # empty, or malformed: the parser will say so
            return False
        brackets = reduced
    return "[]" in brackets or "{}" in brackets


# Large documents already found shallow enough, by their digest: a bundle's processes.json
# is read by the analysis, the timeline and the summary of one run, ten times at 5,000
# processes, and its depth check costs what its parsing does.  The same text, the same answer.
_SHALLOW_MIN_CHARS = 64 * 1024
_SHALLOW_MAX_KEPT = 256
_shallow: Dict[tuple, bool] = {}
_shallow_lock = threading.Lock()


def _depth_exceeds_once(text: str, max_depth: int) -> bool:
    if len(text) < _SHALLOW_MIN_CHARS:
        return json_depth_exceeds(text, max_depth)
    key = (hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).digest(), len(text), max_depth)
    if key in _shallow:
        return False
    if json_depth_exceeds(text, max_depth):
        return True
    with _shallow_lock:
        if len(_shallow) >= _SHALLOW_MAX_KEPT:
            _shallow.clear()
        _shallow[key] = True
    return False


def load_json_bounded(data: Union[bytes, str], max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads with a nesting cap checked first: JSONTooDeep (a ValueError, like any
    JSON error) for a deeper document.  Bytes are read as UTF-8 (a stray byte kept as a
    surrogate escape, as the bundle reader always did)."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, (bytes, bytearray)) else data
    if _depth_exceeds_once(text, max_depth):
        raise JSONTooDeep(f"the JSON document is nested deeper than {max_depth} levels; refused")
    try:
        return json.loads(text)
    except RecursionError as exc:  # a stack shallower than the cap: refused the same way
        raise JSONTooDeep(f"the JSON document nests too deeply to parse ({exc})") from exc
