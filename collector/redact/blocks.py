"""Values that go on over following lines: a YAML block scalar or next-line value, a JSON
value under a key on the line before, an open bracket or quote, an XML element, a PEM
key body.  A rule that sees one start hands the file's scrubber a continuation, which
takes the next lines until the value ends."""

from __future__ import annotations

import re
from typing import Optional, Tuple

from collector.redact.rule import MASK, masked
from collector.lazyre import lazy

Taken = Optional[Tuple[str, Optional[str]]]  # (the line's scrubbed part, the rest to scrub as usual)

_BLOCK_LINE = lazy(r"^([ \t]*(?:-(?:[ \t]+|$))?)(.*?)([\s,\[\]{}]*)$")
# a nested key kept visible: quoted, or one word (a value's words before a `:` are no key)
_KEY_PREFIX = lazy(r"(?:\"[^\"]*\"|'[^']*'|[^\s\"'#:]+)[ \t]*:(?:[ \t]+|$)")


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def mask_line(line: str, keep_keys: bool) -> str:
    """A line of a secret value masked, keeping its indentation, a YAML `- `, brackets and
    a trailing comma (and a nested key, when `keep_keys`), so that the file keeps its shape."""
    lead, body, tail = _BLOCK_LINE.match(line).groups()
    if keep_keys:
        key = _KEY_PREFIX.match(body)
        if key:
            lead, body = lead + body[: key.end()], body[key.end():]
    if not body or masked(body):
        return line
    mask = f'"{MASK}"' if body[0] == '"' else f"'{MASK}'" if body[0] == "'" else MASK
    return lead + mask + tail


class Continuation:
    """Takes the lines of a value that goes on: `take` returns None for a line that is
    not part of it (the value has ended), else the line's masked part and the rest of
    the line after the value's end (None while the value goes on)."""

    name = "key_value_secret"
    done = False

    def take(self, line: str) -> Taken:
        raise NotImplementedError


class IndentedBlock(Continuation):
    """Lines indented deeper than the key (YAML block scalars and next-line values, a JSON
    value put on the line after its key); `- ` items at the key's own indentation too."""

    def __init__(self, indent: int, keep_keys: bool, items_at_indent: bool, name: str = "key_value_secret",
                 limit: int = 1_000_000):
        self.indent, self.keep_keys, self.items_at_indent, self.name = indent, keep_keys, items_at_indent, name
        self.limit = limit

    def take(self, line: str) -> Taken:
        if not line.strip():
            return line, None
        self.limit -= 1
        if self.limit < 0:
            return None
        depth = indent_of(line)
        if depth > self.indent or (self.items_at_indent and depth == self.indent and line.lstrip().startswith("-")):
            return mask_line(line, self.keep_keys), None
        return None


def bracket_depth(text: str, depth: int = 0) -> Tuple[int, int]:
    """Depth after `text` (brackets inside quoted strings do not count), and the index
    where it came back to zero (-1 if it did not)."""
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth <= 0:
                return 0, index
        index += 1
    return depth, -1


class BracketBlock(Continuation):
    """The lines of a list or object opened on its key's line, up to its closing bracket."""

    def __init__(self, depth: int, name: str = "key_value_secret"):
        self.depth, self.name = depth, name

    def take(self, line: str) -> Taken:
        depth, end = bracket_depth(line, self.depth)
        if end < 0:
            self.depth = depth
            return mask_line(line, keep_keys=True), None
        self.done = True
        return mask_line(line[:end], keep_keys=True), line[end:]


class QuoteBlock(Continuation):
    """A quoted value that goes on over lines (a YAML multi-line string): the lines up to
    its closing quote, at most `limit` of them."""

    def __init__(self, quote: str, limit: int = 200, name: str = "key_value_secret"):
        self.quote, self.limit, self.name = quote, limit, name

    def take(self, line: str) -> Taken:
        self.limit -= 1
        if self.limit < 0:
            return None
        pattern = r'(?<!\\)(?:\\\\)*"' if self.quote == '"' else r"'(?!')"
        close = re.search(pattern, line)
        lead = line[: indent_of(line)]
        if close is None:
            return (lead + MASK if line.strip() else line), None
        self.done = True
        return lead, line[close.end() - 1:]


class XmlBlock(Continuation):
    """An XML element whose content goes on over lines, up to its closing tag."""

    def __init__(self, tag: str, limit: int = 200):
        self.close = re.compile(r"</" + re.escape(tag) + r"\s*>")
        self.name, self.limit = "xml_secret", limit

    def take(self, line: str) -> Taken:
        self.limit -= 1
        if self.limit < 0:
            return None
        close = self.close.search(line)
        lead = line[: indent_of(line)]
        if close is None:
            return (lead + MASK if line.strip() else line), None
        self.done = True
        return (lead + MASK if line[: close.start()].strip() else line[: close.start()]), line[close.start():]
