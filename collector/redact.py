"""Redaction rules and the scrubber that applies them line by line.

Each rule is a small named record with a cheap pre-filter: the regular expression
runs only on lines that contain one of the pre-filter's lower-case substrings.
The scrubber is used by exactly one place, the bundle writer, so every byte of a
bundle passes through it.  A rule that raises withholds the line (fails closed).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

MASK = "<redacted>"
WITHHELD = "[akdiag: line withheld: redaction failed on it]"

_SECRET_KEY = re.compile(
    r"(?i)(?:password|passwd|secret|token|api_?key|private_?key|crypt_?key"
    r"|requirepass|masterauth|default_pass|credentials?)$"
    r"|(?:^|[_.\-])(?:pass|pwd)$"
)


def is_secret_key(key: str) -> bool:
    """Whether a configuration key's name says its value is a secret."""
    return bool(_SECRET_KEY.search(key.strip().strip("\"'")))


def _is_already_masked(value: str) -> bool:
    return MASK in value


Replacement = Union[str, Callable[["re.Match[str]"], str]]


@dataclass(frozen=True)
class Rule:
    name: str
    prefilter: Tuple[str, ...]
    pattern: "re.Pattern[str]"
    replace: Replacement

    def applies(self, lowered: str) -> bool:
        return any(token in lowered for token in self.prefilter)

    def apply(self, line: str) -> Tuple[str, int]:
        return self.pattern.subn(self.replace, line)


def _mask_group(group: int) -> Callable[["re.Match[str]"], str]:
    """Replace capture group `group` by the mask, keeping the rest of the match."""

    def replace(match: "re.Match[str]") -> str:
        start, end = match.span(group)
        if start < 0 or _is_already_masked(match.group(group)):
            return match.group(0)
        whole_start = match.start(0)
        text = match.group(0)
        return text[: start - whole_start] + MASK + text[end - whole_start:]

    return replace


def _mask_value_of_secret_key(key_group: int, value_group: int, quoted: bool):
    def replace(match: "re.Match[str]") -> str:
        if not is_secret_key(match.group(key_group)):
            return match.group(0)
        value = match.group(value_group)
        if value in ('""', "''", "null", "None", "") or _is_already_masked(value):
            return match.group(0)
        masked = f'"{MASK}"' if quoted or value[:1] in "\"'" else MASK
        whole_start = match.start(0)
        start, end = match.span(value_group)
        text = match.group(0)
        return text[: start - whole_start] + masked + text[end - whole_start:]

    return replace


_KEYWORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential")

SECRET_RULES: Tuple[Rule, ...] = (
    Rule(
        "pem_private_key_inline",
        ("private key-----",),
        re.compile(r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)"),
        lambda m: m.group(1) + MASK + m.group(3),
    ),
    Rule(
        "url_credentials",
        ("://",),
        re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"'<>]*:)([^\s@/\"'<>]+)(@)"),
        _mask_group(2),
    ),
    Rule(
        "authorization_header",
        ("authorization",),
        re.compile(r"(?i)(authorization\"?\s*[:=]\s*\"?(?:(?:bearer|basic|token|digest|negotiate)\s+)?)([^\s\",]+)"),
        _mask_group(2),
    ),
    Rule(
        "query_token",
        ("token=", "key=", "sig=", "signature=", "password=", "secret="),
        re.compile(
            r"(?i)([?&;](?:access_token|refresh_token|token|api_?key|key|sig|signature|password|secret)=)"
            r"([^&\s\"'#<>]+)"
        ),
        _mask_group(2),
    ),
    Rule(
        "cli_secret_flag",
        ("--pass", "--pwd", "--secret", "--token", "--api", "--auth", "-password", "--key"),
        re.compile(
            r"(?i)((?<![\w-])--?(?:password|passwd|pass|pwd|secret|token|api-?key|auth-?token|private-?key)(?:=|\s+))"
            r"(?!-)(\S+)"
        ),
        _mask_group(2),
    ),
    Rule(
        "cli_short_password",
        (" -p", "\x00-p"),
        re.compile(r"((?<![\w\-])-p)(?!\d+(?:\s|$))([^\s\x00]+)"),
        _mask_group(2),
    ),
    Rule(
        "json_secret_value",
        _KEYWORDS,
        re.compile(r"(\"([^\"\\]{1,200})\"\s*:\s*)(\"(?:[^\"\\]|\\.)*\"|-?[0-9][^,\s}\]]*|true|false)"),
        _mask_value_of_secret_key(2, 3, quoted=True),
    ),
    Rule(
        "key_value_secret",
        _KEYWORDS,
        re.compile(
            r"((?<![\w\"'.\-])([A-Za-z][A-Za-z0-9_.\-]{0,100})\s*[:=]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)"
        ),
        _mask_value_of_secret_key(2, 3, quoted=False),
    ),
    Rule(
        "redis_conf_secret",
        ("requirepass", "masterauth"),
        re.compile(r"(?i)^(\s*(?:requirepass|masterauth)\s+)(\S+)"),
        _mask_group(2),
    ),
)


class RedactionCounts:
    """Thread-safe counts of replacements by (rule, bundle file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter = Counter()

    def add(self, rule: str, path: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(rule, path)] += n

    def as_records(self) -> List[dict]:
        with self._lock:
            items = sorted(self._counts.items())
        return [{"rule": rule, "file": path, "count": n} for (rule, path), n in items]

    def by_rule(self) -> dict:
        totals: Counter = Counter()
        with self._lock:
            for (rule, _path), n in self._counts.items():
                totals[rule] += n
        return dict(sorted(totals.items()))

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())


class Scrubber:
    """Applies the rules to one line at a time, counting what it replaced."""

    def __init__(self, rules: Iterable[Rule] = SECRET_RULES, counts: Optional[RedactionCounts] = None):
        self.rules: Tuple[Rule, ...] = tuple(rules)
        self.counts = counts if counts is not None else RedactionCounts()

    def with_extra_patterns(self, patterns: Iterable[str]) -> "Scrubber":
        """A scrubber that also masks whatever the user's regular expressions match."""
        extra = tuple(
            Rule(f"custom:{p}", ("",), re.compile(p), MASK) for p in patterns
        )
        return Scrubber(self.rules + extra, self.counts)

    def for_file(self, path: str) -> "FileScrubber":
        return FileScrubber(self, path)

    def scrub_bytes(self, data: bytes, path: str) -> bytes:
        """Scrub a file's bytes line by line (lines end at b"\n" only; bytes that are not
        UTF-8 survive through surrogateescape).  Lines that hold none of any rule's
        pre-filter tokens cannot match and are copied as they are, without a Python
        loop over them: that is what keeps scrubbing fast on large log tails."""
        file_scrubber = self.for_file(path)
        starts = self._candidate_line_starts(data)
        if starts is None:
            return b"\n".join(_scrub_raw_line(file_scrubber, raw) for raw in data.split(b"\n"))
        pieces, position = [], 0
        for start in starts:
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            pieces.append(data[position:start])
            pieces.append(_scrub_raw_line(file_scrubber, data[start:end]))
            position = end
        pieces.append(data[position:])
        return b"".join(pieces)

    def _prefilter_tokens(self) -> Optional[Tuple[bytes, ...]]:
        tokens = set()
        for rule in self.rules:
            if "" in rule.prefilter:
                return None
            tokens.update(token.encode("utf-8") for token in rule.prefilter)
        return tuple(sorted(tokens))

    def _candidate_line_starts(self, data: bytes) -> Optional[List[int]]:
        """Offsets of the lines that hold a pre-filter token; None when every line
        must be scrubbed (a rule with no pre-filter, or a PEM block spanning lines)."""
        tokens = self._prefilter_tokens()
        lowered = data.lower()
        if tokens is None or b"private key-----" in lowered:
            return None
        starts = set()
        for token in tokens:
            index = lowered.find(token)
            while index >= 0:
                starts.add(lowered.rfind(b"\n", 0, index) + 1)
                line_end = lowered.find(b"\n", index)
                if line_end < 0:
                    break
                index = lowered.find(token, line_end)
        return sorted(starts)

    def scrub_text(self, text: str, path: str = "<text>") -> str:
        """Scrub a whole text (lines split on newline only)."""
        fs = self.for_file(path)
        return "\n".join(fs.line(line) for line in text.split("\n"))


class FileScrubber:
    """Scrubs the lines of one file in order, with the state multi-line rules need
    (a PEM private key block spans lines)."""

    _PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
    _PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")

    def __init__(self, scrubber: Scrubber, path: str):
        self.scrubber = scrubber
        self.path = path
        self._in_pem_block = False

    def line(self, line: str) -> str:
        try:
            return self._scrub(line)
        except Exception:  # fail closed: never let an unscrubbed line through
            self.scrubber.counts.add("rule_error", self.path)
            return WITHHELD

    def _scrub(self, line: str) -> str:
        if self._in_pem_block:
            if self._PEM_END.search(line):
                self._in_pem_block = False
                return line[self._PEM_END.search(line).start():]
            self.scrubber.counts.add("pem_private_key_block", self.path)
            return MASK
        begin = self._PEM_BEGIN.search(line)
        if begin and not self._PEM_END.search(line, begin.end()):
            self._in_pem_block = True
            self.scrubber.counts.add("pem_private_key_block", self.path)
            return line[: begin.end()]
        lowered = line.lower()
        for rule in self.scrubber.rules:
            if not rule.applies(lowered):
                continue
            masks_before = line.count(MASK)
            line, matched = rule.apply(line)
            if matched:
                added = line.count(MASK) - masks_before
                if added > 0:
                    self.scrubber.counts.add(rule.name, self.path, added)
                lowered = line.lower()
        return line


def _scrub_raw_line(file_scrubber: "FileScrubber", raw: bytes) -> bytes:
    text = raw.decode("utf-8", "surrogateescape")
    return file_scrubber.line(text).encode("utf-8", "surrogateescape")


def redact_structure(data: Any) -> Any:
    """A copy of parsed JSON/YAML data where a secret-named key holding an object or
    a list is masked whole.  Scalar values are left to the bundle writer's line rules,
    which mask them and count each replacement."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if isinstance(key, str) and is_secret_key(key) and isinstance(value, (dict, list)) and value:
                out[key] = MASK
            else:
                out[key] = redact_structure(value)
        return out
    if isinstance(data, list):
        return [redact_structure(item) for item in data]
    return data
