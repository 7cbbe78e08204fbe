"""Key/value pairs in text: every pair on a line is examined, whatever came before it.

One pattern finds each `key <sep>` (`=`, `:`, `=>`, `:=`, a percent-encoded `=`), the key
bare, quoted or quoted inside a JSON string (`\\"key\\"`); the vocabulary decides whether
the key names a secret; the value's extent is read from what follows it (a quoted string,
a bracketed list or object, a query parameter, the rest of a `key: value` text, one word)
and from what encloses the pair (a JSON string, an XML tag).  A value that goes on over
following lines hands the file's scrubber a continuation (see blocks.py)."""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

from collector.redact.blocks import BracketBlock, IndentedBlock, QuoteBlock, XmlBlock, bracket_depth
from collector.redact.rule import HTML_MASK, MASK, add_count, masked
from collector.redact.vocabulary import is_secret_key, key_words
from collector.lazyre import lazy

_PAIR = lazy(
    r"(?:\\\"(?P<ek>[^\"\\\n]{1,100})\\\""            # \"key\" inside a JSON string
    r"|(?P<qc>[\"'])(?P<qk>[^\"'\\\n]{1,100})(?P=qc)"  # "key", 'key'
    r"|(?<![\w.])(?P<bk>[^\W\d][\w.\-]{0,100}))"       # key, X-Api-Key, db.pwd, -Dx.password
    r"(?P<sp>[ \t]*)(?P<sep>=>|:=|=|:(?![/:])|%3[Dd])(?P<after>[ \t]*)")

# values that are no secret: settings of an "authorization" key (mongod's
# security.authorization: enabled), empty values, nulls
NOT_CREDENTIALS = frozenset(("enabled", "disabled", "true", "false", "none", "required", "optional", "null",
                             "nil", "<nil>", "", '""', "''", "[]", "{}", "yes", "no", "on", "off"))
# what akdiag's own datastore checks record under `auth` (datastores.json details.auth)
AUTH_STATUS = lazy(r"ok|refused|failed|not needed|no password configured|none|user [\w.@\-]{1,64}")
_QUERY_ONLY = frozenset(("key", "code"))  # `?key=…` an API key, `?code=…` an OAuth code; a `key:` elsewhere is not
_STRUCTURAL = lazy(r"[ \t]*(?:-[ \t]+)?")
_BLOCK_SCALAR = lazy(r"[|>][1-9+\-]*[ \t]*(?:#.*)?$")
_SCHEME = lazy(r"([A-Za-z][A-Za-z\-]{0,19})[ \t]+(?=\S)")
_GLUED_END = lazy(r"[\s\"]|\\\"|</")
_QUERY_END = lazy(r"[&#\s\"'<>]|%26")
_AUTH_HEADS = ("authorization", "auth", "cookie", "cookies")
_SPACE = lazy(r"\s")
_JSON_END = lazy(r"[,}\]]")
_OPENER = {")": "(", "]": "[", "}": "{"}


def _inside_quotes(line: str, end: int, quote: str) -> bool:
    """Whether `end` falls inside a `quote`-quoted string opened earlier on the line."""
    count = line.count(quote, 0, end) - line.count("\\" + quote, 0, end)
    return count % 2 == 1


def _closing_quote(line: str, start: int) -> int:
    """Index of the quote closing the string opened at `start`, or -1."""
    quote = line[start]
    index = start + 1
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and line.startswith("''", index):
                index += 2
                continue
            return index
        index += 1
    return -1


def _bare_end(line: str, start: int, stop_quote: Optional[str], rest_of_line: bool, query: bool,
              json_like: bool) -> int:
    if query:
        end = _QUERY_END.search(line, start)
        return end.start() if end else len(line)
    if stop_quote:  # the pair sits inside a quoted string: the value ends with it
        close = line.find(stop_quote, start)
        end = len(line) if close < 0 else close - (1 if line[close - 1:close] == "\\" else 0)
        if not rest_of_line:
            space = _SPACE.search(line, start, end)
            end = space.start() if space else end
        return end
    if json_like:
        end = _JSON_END.search(line, start)
        return end.start() if end else len(line)
    if rest_of_line:
        return len(line)
    end = _GLUED_END.search(line, start)
    end = end.start() if end else len(line)
    value = line[start:end]
    while value and value[-1] in _OPENER and value.count(value[-1]) > value.count(_OPENER[value[-1]]):
        value = value[:-1]  # `{User:bob Password:x}`: the brace closes the dump, not the value
    return start + len(value)


def _name(head: str, query: bool, quoted: bool) -> str:
    if head in ("authorization", "auth"):
        return "authorization_header"
    return "query_token" if query else "json_secret_value" if quoted else "key_value_secret"


def scan_pairs(line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
    counts: Dict[str, int] = {}
    position = 0
    while True:
        match = _PAIR.search(line, position)
        if match is None:
            return line, counts
        key = match.group("ek") or match.group("qk") or match.group("bk")
        key_start = match.start()
        query = bool(match.group("bk")) and (line[key_start - 1:key_start] in ("?", "&")
                                              or line[max(0, key_start - 3):key_start].upper() in ("%3F", "%26"))
        if not (is_secret_key(key) or (query and key.lower() in _QUERY_ONLY)):
            position = match.end()
            continue
        replaced = _mask_value(line, match, key, query, file_scrubber)
        if replaced is None:
            position = match.end()
            continue
        line, position, name = replaced
        add_count(counts, name)


def _mask_value(line: str, match: "re.Match[str]", key: str, query: bool,
                file_scrubber: Any) -> Optional[Tuple[str, int, str]]:
    """The line with the pair's value masked, where scanning goes on, and the rule's
    name; None when the value is no secret (or goes on over the next lines only)."""
    start = match.end()
    words = key_words(key)
    head = words[-1] if words else ""
    escaped, quoted_key = bool(match.group("ek")), bool(match.group("qk") or match.group("ek"))
    structural = _STRUCTURAL.fullmatch(line, 0, match.start()) is not None
    in_dq = _inside_quotes(line, match.start(), '"')
    in_tag = line.rfind("<", 0, match.start()) > line.rfind(">", 0, match.start())
    mask = HTML_MASK if in_tag else MASK
    name = _name(head, query, quoted_key)
    rest = line[start:]
    if not rest.strip() or (rest.lstrip().startswith("#") and (match.group("after") or match.group("sp"))):
        if structural and match.group("sep") in (":", "=", "=>"):
            file_scrubber.continue_with(IndentedBlock(match.start(), keep_keys=True,
                                                      items_at_indent=not quoted_key, name=name))
        elif match.group("sep") == ":":  # `ERROR login rejected; Password:`, the value indented below
            file_scrubber.continue_with(IndentedBlock(0, keep_keys=True, items_at_indent=False, name=name, limit=1))
        return None
    if structural and not quoted_key and _BLOCK_SCALAR.match(rest):
        file_scrubber.continue_with(IndentedBlock(match.start(), keep_keys=False, items_at_indent=False, name=name))
        return None
    value_start = start
    if line.startswith(("map[", "&{"), start):  # Go: a map, a pointer to a struct
        start = line.index("[" if line.startswith("map[", start) else "{", start)
    char = line[start]
    if escaped or line.startswith('\\"', start):
        if not line.startswith('\\"', start):
            return None
        close = line.find('\\"', start + 2)
        end = len(line) if close < 0 else close + 2
        return _put(line, start, end, '\\"' + mask + '\\"', name)
    if char in "\"'":
        close = _closing_quote(line, start)
        inner = line[start + 1: close if close >= 0 else len(line)]
        if inner.lower() in NOT_CREDENTIALS or masked(inner) or (head == "auth" and AUTH_STATUS.fullmatch(inner)):
            return None
        scheme = _SCHEME.match(inner) if head in _AUTH_HEADS else None
        kept = char + (scheme.group(0) if scheme else "")
        if close < 0:
            if structural:
                file_scrubber.continue_with(QuoteBlock(char, name=name))
            tail = "\\" if char == '"' and line.endswith("\\") else ""
            return _put(line, start, len(line), kept + mask + tail, name)
        return _put(line, start, close + 1, kept + mask + char, name)
    if char in "[{":
        depth, end = bracket_depth(line[start:])
        if end < 0:
            if structural:
                file_scrubber.continue_with(BracketBlock(depth, name=name))
                return None if not line[start + 1:].strip() else _put(line, start + 1, len(line), mask, name)
            return _put(line, start, len(line), mask, name)
        value = line[start: start + end + 1]
        if masked(value) or value[1:-1].strip() == "":
            return None
        as_string = quoted_key and not in_dq
        return _put(line, value_start, start + end + 1, f'"{mask}"' if as_string else mask, name)
    stop_quote = '"' if in_dq else ("'" if _inside_quotes(line, match.start(), "'") else None)
    spaced = bool(match.group("sp") or match.group("after"))
    kept = ""
    if head in _AUTH_HEADS:
        scheme = _SCHEME.match(line, start)
        if scheme and not masked(line[scheme.end():scheme.end() + len(MASK)]):
            kept, start, spaced = scheme.group(0), scheme.end(), True
    json_like = quoted_key and not in_dq
    end = _bare_end(line, start, stop_quote, spaced and not query, query, json_like)
    value = line[start:end].rstrip()
    if (not kept and value.lower() in NOT_CREDENTIALS) or not value or masked(value):
        return None
    if head == "auth" and AUTH_STATUS.fullmatch(value):
        return None
    end = start + len(value)
    as_string = json_like and not kept
    return _put(line, start - len(kept), end, kept + (f'"{mask}"' if as_string else mask), name)


def _put(line: str, start: int, end: int, text: str, name: str) -> Tuple[str, int, str]:
    return line[:start] + text + line[end:], start + len(text), name


# -- XML elements and attributes ---------------------------------------------------------

_TAG = lazy(r"<(?P<tag>[A-Za-z_][\w:.\-]{0,100})(?P<attrs>(?:\s+[\w:.\-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)"
                  r"\s*(?P<empty>/?)>")
_ATTR = lazy(r"([\w:.\-]+)(\s*=\s*)(\"[^\"]*\"|'[^']*')")
_NAMING_ATTRS = ("key", "name", "id", "property", "param", "setting", "field")
_VALUE_ATTRS = ("value", "val", "content", "data")


def scan_xml(line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
    """`<password>x</password>` (CDATA too), `<add key="SmtpPassword" value="x"/>`,
    `<entry key="password">x</entry>`; an element's content may go on over lines."""
    counts: Dict[str, int] = {}
    position = 0
    while True:
        tag = _TAG.search(line, position)
        if tag is None:
            return line, counts
        attrs = tag.group("attrs")
        named = {a.group(1).lower(): a.group(3)[1:-1] for a in _ATTR.finditer(attrs)}
        secret = is_secret_key(tag.group("tag").split(":")[-1]) or any(
            is_secret_key(named[a]) for a in _NAMING_ATTRS if a in named)
        position = tag.end()
        if not secret:
            continue
        new_attrs = _ATTR.sub(lambda a: a.group(0) if a.group(1).lower() not in _VALUE_ATTRS or masked(a.group(3))
                              or len(a.group(3)) == 2 else a.group(1) + a.group(2) + a.group(3)[0] + HTML_MASK
                              + a.group(3)[0], attrs)
        if new_attrs != attrs:
            add_count(counts, "xml_secret")
            line = line[: tag.start("attrs")] + new_attrs + line[tag.end("attrs"):]
            position += len(new_attrs) - len(attrs)
        if tag.group("empty"):
            continue
        close = re.compile(r"</" + re.escape(tag.group("tag")) + r"\s*>").search(line, position)
        if close is None:
            if line[position:].strip() and not masked(line[position:]):
                line = line[:position] + HTML_MASK
                add_count(counts, "xml_secret")
            file_scrubber.continue_with(XmlBlock(tag.group("tag")))
            return line, counts
        content = line[position: close.start()]
        if content.strip() and not masked(content) and "<" + tag.group("tag") not in content:
            line = line[:position] + HTML_MASK + line[close.start():]
            add_count(counts, "xml_secret")
            position += len(HTML_MASK)
