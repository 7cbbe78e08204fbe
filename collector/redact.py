"""Redaction rules, subscriber pseudonyms, and the scrubber that applies them line by line.

Each rule is a small named record with a cheap pre-filter: lower-case substrings
(or, for rules no substring can announce, such as phone numbers, a regular
expression run over the whole file at C speed).  The full rule runs only on the
lines the pre-filter picks.  The scrubber is used by one place, the bundle writer,
so every byte of a bundle passes through it.  A rule that raises withholds the line:
redaction fails closed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

MASK = "<redacted>"
HTML_MASK = "&lt;redacted&gt;"  # the mask once a report has escaped it
WITHHELD = "[akdiag: line withheld: redaction failed on it]"
CUT_MARK = "[cut]"

_SECRET_KEY = re.compile(
    r"(?i)(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|crypt[_-]?key|access[_-]?key"
    r"|requirepass|masterauth|default_pass|credentials?)$"
    r"|(?:^|[_.\-])(?:pass|pwd)$"
)


def is_secret_key(key: str) -> bool:
    """Whether a configuration key's name says its value is a secret."""
    return bool(_SECRET_KEY.search(key.strip().strip("\"'")))


Replacement = Union[str, Callable[["re.Match[str]"], str]]


@dataclass(frozen=True)
class Rule:
    """A named redaction: `pattern` matches, `replace` gives the replacement text (a
    string or a function of the match; returning the match unchanged means no-op).
    `prefilter`: lower-case substrings one of which a line must hold; `prefilter_re`:
    bytes patterns that find candidate lines instead, for rules with no fixed text
    (each simple enough for the regex engine to scan a whole file fast)."""

    name: str
    prefilter: Tuple[str, ...]
    pattern: "re.Pattern[str]"
    replace: Replacement
    prefilter_re: Tuple["re.Pattern[bytes]", ...] = ()

    def applies(self, lowered: str) -> bool:
        if self.prefilter_re:
            raw = lowered.encode("utf-8", "surrogateescape")
            return any(pattern.search(raw) for pattern in self.prefilter_re)
        return any(token in lowered for token in self.prefilter)

    def apply(self, line: str) -> Tuple[str, int]:
        """The line with every match replaced, and how many matches changed."""
        changed = 0

        def substitute(match: "re.Match[str]") -> str:
            nonlocal changed
            new = self.replace if isinstance(self.replace, str) else self.replace(match)
            if new != match.group(0):
                changed += 1
            return new

        return self.pattern.sub(substitute, line), changed


def _masked(value: Optional[str]) -> bool:
    """Already masked: scrubbing again (an HTML page made of scrubbed files) changes nothing."""
    return value is not None and (MASK in value or HTML_MASK in value)


def _splice(match: "re.Match[str]", group: int, text: str) -> str:
    whole = match.group(0)
    start, end = match.span(group)
    offset = match.start(0)
    return whole[: start - offset] + text + whole[end - offset:]


def _mask_group(group: int) -> Callable[["re.Match[str]"], str]:
    """Replace capture group `group` by the mask, keeping the rest of the match."""

    def replace(match: "re.Match[str]") -> str:
        value = match.group(group)
        if value is None or _masked(value):
            return match.group(0)
        return _splice(match, group, MASK)

    return replace


_CLOSED_QUOTES = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.|'')*'(?!')")


def _masked_value(value: str, quoted: bool) -> str:
    """The mask in the value's own quoting.  A quoted value that does not close on its
    line (a YAML scalar continued on the next) keeps its open quote and a trailing
    backslash, so that the file still parses."""
    if value[:1] in "\"'" and not _CLOSED_QUOTES.fullmatch(value):
        return value[0] + MASK + ("\\" if value.endswith("\\") and value[0] == '"' else "")
    return f'"{MASK}"' if quoted or value[:1] in "\"'" else MASK


def _mask_value_of_secret_key(key_group: int, value_group: int, quoted: bool):
    def replace(match: "re.Match[str]") -> str:
        if not is_secret_key(match.group(key_group)):
            return match.group(0)
        value = match.group(value_group)
        if value in ('""', "''", "null", "None", "") or _masked(value):
            return match.group(0)
        return _splice(match, value_group, _masked_value(value, quoted))

    return replace


# values of an "authorization" key that are settings, not credentials (mongod's
# getCmdLineOpts has security.authorization: enabled)
_NOT_CREDENTIALS = ("enabled", "disabled", "true", "false", "none", "required", "optional", "null")

_KEYWORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential")
# a command-line value: up to the next space or quote; a quote escaped in JSON text
# (\") belongs to the value, so a secret with a quote in it is masked whole
_ARG_VALUE = r'(?:[^\s"\\]|\\.)+'
_P_WORDS = ("a", "z", "g", "ie", "ic", "ipe", "rint", "rint0", "rintf", "thread", "edantic", "ath", "erm", "rune",
            "rogname", "roto_dist", "arallel", "rofile", "ython")

SECRET_RULES: Tuple[Rule, ...] = (
    Rule(
        "pem_private_key_inline",
        ("private key-----",),
        re.compile(r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)"),
        lambda m: m.group(0) if m.group(2) in (MASK, HTML_MASK) else m.group(1) + MASK + m.group(3),
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
        lambda m: m.group(0) if m.group(2).lower() in _NOT_CREDENTIALS else _mask_group(2)(m),
    ),
    Rule(
        "query_token",
        ("token=", "key=", "sig", "password=", "secret="),
        re.compile(
            r"(?i)([?&;](?:access_token|refresh_token|token|api_?key|key|sig|signature|password|secret)=)"
            r"([^&\s\"'#<>]+)"
        ),
        _mask_group(2),
    ),
    Rule(
        "cli_secret_flag",
        ("--pass", "--pwd", "--secret", "--token", "--auth", "-password", "key"),  # --api-key, --private-key
        re.compile(
            r"(?i)((?<![\w-])--?(?:[a-z0-9]+[-_])*(?:password|passwd|pass|pwd|secret|token|api-?key|auth-?token"
            r"|private-?key)(?:=|\s+))"
            r"(?!--)(" + _ARG_VALUE + ")"
        ),
        _mask_group(2),
    ),
    Rule(
        "cli_short_password",
        ("-p",),
        # -pSECRET as mysql takes it; digits too (a password may be a number); not the
        # single-dash words of compilers, find and Erlang's command line
        re.compile(r"((?<![\w\-])-p)(?!(?:" + "|".join(_P_WORDS) + r")(?=[\s\"]|$))(" + _ARG_VALUE + ")"),
        _mask_group(2),
    ),
    Rule(
        "json_secret_value",
        _KEYWORDS,
        re.compile(r"(([\"'])([^\"'\\]{1,200})\2\s*[:=]\s*)"
                   r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.|'')*'(?!')|-?[0-9][^,\s}\]]*|true|false)"),
        _mask_value_of_secret_key(3, 4, quoted=True),
    ),
    Rule(
        "key_value_secret",
        _KEYWORDS,
        re.compile(
            r"((?<![\w\"'.\-])([A-Za-z][A-Za-z0-9_.\-]{0,100})\s*[:=]\s*)"
            # a quoted value; after a separator with a space (`key = a b`, `key: a b`, INI and
            # YAML) the rest of the line; else everything up to the next space
            r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.|'')*'(?!')|(?<=\s)\S(?:[^\n]*\S)?|(?:[^\s\"'\\]|\\.)+)"
        ),
        _mask_value_of_secret_key(2, 3, quoted=False),
    ),
    Rule(
        "redis_conf_secret",
        ("requirepass", "masterauth"),
        re.compile(r"(?i)((?<![\w-])(?:requirepass|masterauth)\s+)([^\s:=]\S*)"),
        _mask_group(2),
    ),
)


# -- subscriber personal data --------------------------------------------------------

PII_KINDS = ("emails", "phones", "ips", "hosts")
DEFAULT_PII_KINDS = ("emails", "phones")

_EMAIL = r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])"
# +7 915 123-45-67, +44 (20) 7946 0958, 8 (915) 123-45-67, 79151234567
_PHONE = (r"(?<![\w+.:/-])(?:\+\d{1,3}[ \-]?\(?\d{2,4}\)?(?:[ \-]?\d{2,4}){2,3}"
          r"|8[ \-]?\(9\d{2}\)[ \-]?\d{3}[ \-]?\d{2}[ \-]?\d{2}|[78]9\d{9})(?![\w.:-])")
_IPV4 = r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])"
_HOST_TLDS = ("com", "net", "org", "ru", "io", "info", "biz", "de", "uk", "local", "internal", "lan", "corp",
              "cloud", "online", "site", "su", "by", "kz", "ua", "eu", "me", "co", "app", "dev", "tech")
# after `//` (a URL's host) or at a word's start; not a path's part, not a call (`log.info(`)
_HOST = (r"(?:(?<=//)|(?<![\w.@/-]))(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:"
         + "|".join(_HOST_TLDS) + r")(?![\w.(-])")
_KEEP_IPS = ("127.0.0.1", "0.0.0.0", "255.255.255.255")


class Pseudonymizer:
    """Consistent pseudonyms: the same value gets the same token everywhere in one
    bundle (HMAC-SHA256 with a random per-bundle key that never enters the bundle)."""

    def __init__(self, key: Optional[bytes] = None):
        self._key = key or os.urandom(32)
        self._lock = threading.Lock()
        self.mapping: Dict[str, str] = {}

    def token(self, kind: str, value: str) -> str:
        normal = value.lower() if kind in ("email", "host") else re.sub(r"[^\d.]", "", value) or value
        if kind == "phone" and len(normal) == 11 and normal.startswith("8"):
            normal = "7" + normal[1:]  # a Russian number written with its trunk prefix
        digest = hmac.new(self._key, f"{kind}:{normal}".encode("utf-8", "surrogateescape"),
                          hashlib.sha256).hexdigest()[:12]
        token = f"{kind}-{digest}"
        with self._lock:
            self.mapping.setdefault(token, value)
        return token

    def rules(self, kinds: Iterable[str]) -> Tuple[Rule, ...]:
        kinds = set(kinds)
        rules = []
        if "emails" in kinds:
            rules.append(Rule("pii_email", ("@",), re.compile(_EMAIL), lambda m: self.token("email", m.group(0))))
        if "phones" in kinds:
            rules.append(Rule("pii_phone", (), re.compile(_PHONE), self._phone,
                              prefilter_re=(re.compile(rb"9\d{9}"), re.compile(rb"\+\d"), re.compile(rb"\(9"))))
        if "ips" in kinds:
            rules.append(Rule("pii_ip", (), re.compile(_IPV4), self._ip,
                              prefilter_re=(re.compile(rb"\d\.\d{1,3}\.\d{1,3}\.\d"),)))
        if "hosts" in kinds:
            rules.append(Rule("pii_host", (), re.compile(_HOST, re.IGNORECASE),
                              lambda m: self.token("host", m.group(0)),
                              prefilter_re=(re.compile(rb"(?i)\.(?:" + "|".join(_HOST_TLDS).encode() + rb")\b"),)))
        return tuple(rules)

    _NUMBER_BEFORE = re.compile(r"(?:^|[:\[,])\s*$")
    _NUMBER_AFTER = re.compile(r"\s*(?:[,}\]]|$)")

    def _phone(self, match: "re.Match[str]") -> str:
        """A phone written as bare digits where JSON or YAML hold a number (`"k": 89151234567`)
        becomes a quoted token: the file stays valid JSON and YAML."""
        token = self.token("phone", match.group(0))
        line, start, end = match.string, match.start(), match.end()
        if (self._NUMBER_BEFORE.search(line, 0, start) and self._NUMBER_AFTER.match(line, end)
                and line[start - 1:start] != '"'):
            return f'"{token}"'
        return token

    def _ip(self, match: "re.Match[str]") -> str:
        address = match.group(0)
        return address if address in _KEEP_IPS else self.token("ip", address)


# -- counting and applying -------------------------------------------------------------

class RedactionCounts:
    """Thread-safe counts of replacements by (rule, bundle file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter = Counter()

    def add(self, rule: str, path: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(rule, path)] += n

    def forget_file(self, path: str) -> None:
        with self._lock:
            for key in [key for key in self._counts if key[1] == path]:
                del self._counts[key]

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


def custom_rules(patterns: Iterable[str], first: int = 1) -> Tuple[Rule, ...]:
    """The customer's own patterns (--redact-pattern, the catalog's `redact:`): each
    match is masked.  They have no pre-filter, so they look at every line.  A rule is
    named by its number (custom:1, ...), never by its pattern: the pattern may be the
    very text the customer wants kept out of the bundle."""
    from collector.userpattern import Budget, UserPattern  # time-bounded: a pattern may backtrack forever

    budget = Budget()
    return tuple(Rule(f"custom:{first + i}", ("",), UserPattern(p, budget), MASK) for i, p in enumerate(patterns))


class Scrubber:
    """Applies the rules to one line at a time, counting what it replaced."""

    def __init__(self, rules: Iterable[Rule] = SECRET_RULES, counts: Optional[RedactionCounts] = None,
                 pseudonymizer: Optional[Pseudonymizer] = None):
        self.rules: Tuple[Rule, ...] = tuple(rules)
        self.counts = counts if counts is not None else RedactionCounts()
        self.pseudonymizer = pseudonymizer
        self._tokens = self._prefilter_tokens()
        self._prefilter_patterns = tuple(p for r in self.rules for p in r.prefilter_re)

    @classmethod
    def for_bundle(cls, pii_kinds: Iterable[str] = DEFAULT_PII_KINDS, extra_patterns: Iterable[str] = (),
                   pseudonymizer: Optional[Pseudonymizer] = None, pseudonym_key: Optional[bytes] = None) -> "Scrubber":
        """The scrubber of one bundle: secrets always, the customer's patterns, and
        pseudonyms for the personal data kinds asked for (none with --no-pseudonymize)."""
        pii_kinds = tuple(pii_kinds)
        pseudonymizer = pseudonymizer or (Pseudonymizer(pseudonym_key) if pii_kinds else None)
        pii_rules = pseudonymizer.rules(pii_kinds) if pseudonymizer else ()
        return cls(SECRET_RULES + custom_rules(extra_patterns) + pii_rules, pseudonymizer=pseudonymizer)

    def for_file(self, path: str) -> "FileScrubber":
        return FileScrubber(self, path)

    def scrub_text(self, text: str, path: str = "<text>") -> str:
        return self.scrub_bytes(text.encode("utf-8", "surrogateescape"), path).decode("utf-8", "surrogateescape")

    def scrub_bytes(self, data: bytes, path: str, starts_mid_line: bool = False) -> bytes:
        """Scrub a file's bytes line by line (lines end at b"\\n" only; bytes that are not
        UTF-8 survive through surrogateescape).  Lines the pre-filters do not pick cannot
        match and are copied as they are, without a Python loop over them: that keeps
        scrubbing fast on large log tails.  `starts_mid_line`: the data begins inside a
        line (a tail cut by its byte cap), so its first word may be the end of a secret."""
        file_scrubber = self.for_file(path)
        if starts_mid_line:
            data = self._mask_cut_head(data, path)
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

    _PEM_END = re.compile(rb"-----END [A-Z0-9 ]*PRIVATE KEY-----")
    _PEM_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")

    def _mask_cut_head(self, data: bytes, path: str) -> bytes:
        """A tail that starts inside a line: the rest of that line may hold a secret whose
        key was cut off (`ord = s3cret`, `s3cret --port 1`), which no rule can recognise,
        so the partial line is withheld whole; and the tail may start inside a PEM key
        block, which is withheld up to its end."""
        end = self._PEM_END.search(data)
        begin = self._PEM_BEGIN.search(data)
        if end and (begin is None or end.start() < begin.start()):
            self.counts.add("pem_private_key_block", path)
            return (MASK + "\n").encode() + data[end.start():]
        newline = data.find(b"\n")
        head = data if newline < 0 else data[:newline]
        if head:
            self.counts.add("cut_line_head", path)
            data = CUT_MARK.encode() + data[len(head):]
        return data

    def _prefilter_tokens(self) -> Optional[Tuple[bytes, ...]]:
        tokens = set()
        for rule in self.rules:
            if rule.prefilter_re:
                continue
            if "" in rule.prefilter:
                return None
            tokens.update(token.encode("utf-8") for token in rule.prefilter)
        # a token that holds another finds no line the shorter one misses: one scan less
        return tuple(sorted(t for t in tokens if not any(o != t and o in t for o in tokens)))

    def _candidate_line_starts(self, data: bytes) -> Optional[List[int]]:
        """Offsets of the lines a pre-filter picks; None when every line must be
        scrubbed (a rule with no pre-filter, or a PEM block spanning lines)."""
        lowered = data.lower()
        if self._tokens is None or b"private key-----" in lowered:
            return None
        starts = set()
        for token in self._tokens:
            index = lowered.find(token)
            while index >= 0:
                starts.add(lowered.rfind(b"\n", 0, index) + 1)
                line_end = lowered.find(b"\n", index)
                if line_end < 0:
                    break
                index = lowered.find(token, line_end)
        for pattern in self._prefilter_patterns:
            for match in pattern.finditer(data):
                starts.add(data.rfind(b"\n", 0, match.start()) + 1)
        return sorted(starts)


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
            end = self._PEM_END.search(line)
            if end:
                self._in_pem_block = False
                return line[end.start():]
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
            line, changed = rule.apply(line)
            if changed:
                self.scrubber.counts.add(rule.name, self.path, changed)
                lowered = line.lower()
        return line


def _scrub_raw_line(file_scrubber: FileScrubber, raw: bytes) -> bytes:
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
