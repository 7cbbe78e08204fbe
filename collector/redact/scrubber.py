"""The scrubber: applies the rules to a file line by line, with the state values that go
on over lines need, counting what it replaced.

Each rule has a cheap pre-filter: lower-case substrings (or, for rules no substring can
announce, such as phone numbers, a regular expression run over the whole file at C
speed).  The full rules run only on the lines the pre-filters pick, and on the lines
after them while a value goes on.  A rule that raises withholds the line: redaction
fails closed."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple, Union

from collector.redact.blocks import Continuation
from collector.redact.cmdline import CMDLINE_RULES
from collector.redact.pairs import scan_pairs, scan_xml
from collector.redact.pii import DEFAULT_PII_KINDS, Pseudonymizer
from collector.redact.rule import CUT_MARK, MASK, WITHHELD, Rule
from collector.redact.tokens import KEY_LINE_BYTES, PEM_BEGIN_BYTES, PEM_END_BYTES, TOKEN_RULES
from collector.redact.urls import URL_RULES, encoded_rule
from collector.redact.vocabulary import PREFILTER
from collector.lazyre import lazy

_REDIS_CONF = Rule(
    "redis_conf_secret", ("requirepass", "masterauth", "auth-pass"),
    lazy(r"(?i)((?<![\w-])(?:requirepass|masterauth|sentinel[ \t]+auth-pass[ \t]+\S+)[ \t]+)([^\s:=]\S*)"),
    lambda m: m.group(0) if MASK in m.group(2) else m.group(1) + MASK)
_PAIR_RULES = (
    Rule("xml_secret", PREFILTER, None, scan=scan_xml),
    Rule("key_value_secret", PREFILTER + ("code=",), None, scan=scan_pairs),  # and the query's `?code=`
)
_PLAIN_SECRET_RULES: Tuple[Rule, ...] = TOKEN_RULES + URL_RULES + CMDLINE_RULES + (_REDIS_CONF,) + _PAIR_RULES
SECRET_RULES: Tuple[Rule, ...] = _PLAIN_SECRET_RULES + (encoded_rule(_PLAIN_SECRET_RULES),)


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


def _pattern_texts(patterns: Tuple[str, ...]) -> Tuple[Rule, ...]:
    """The customer's patterns are what they want kept out of the bundle too: their own
    text (akdiag's command line in the process table) is masked wherever it appears."""
    texts = [p for p in patterns if len(p) >= 4]
    if not texts:
        return ()
    pattern = re.compile("|".join(re.escape(p) for p in sorted(texts, key=len, reverse=True)))
    return (Rule("redact_pattern_text", tuple({p.lower() for p in texts}), pattern, MASK),)


_UTF16_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def _as_utf8(data: bytes, starts_mid_line: bool) -> bytes:
    """A UTF-16 file (known by its BOM) as UTF-8, and a UTF-8 BOM dropped: the rules see
    its text, and so does whoever searches the bundle."""
    if starts_mid_line:
        return data
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:]
    for bom, encoding in _UTF16_BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding).encode("utf-8", "surrogateescape")
            except (UnicodeDecodeError, UnicodeEncodeError):
                return data
    return data


class Scrubber:
    """Applies the rules to one file at a time, counting what it replaced."""

    def __init__(self, rules: Iterable[Rule] = SECRET_RULES, counts: Optional[RedactionCounts] = None,
                 pseudonymizer: Optional[Pseudonymizer] = None):
        self.rules: Tuple[Rule, ...] = tuple(rules)
        self.counts = counts if counts is not None else RedactionCounts()
        self.pseudonymizer = pseudonymizer
        # per rule: its tokens and patterns, so that a line is looked at once for all tokens
        self._line_tokens = tuple(sorted({t for rule in self.rules for t in rule.prefilter}))
        self._plan = tuple((rule, frozenset(rule.prefilter), rule.prefilter_re) for rule in self.rules)
        self._tokens = self._prefilter_tokens()
        self._scanners = _token_scanners(self._tokens or ())
        self._prefilter_patterns = tuple({p.pattern: p for r in self.rules for p in r.prefilter_re}.values())

    @classmethod
    def for_bundle(cls, pii_kinds: Iterable[str] = DEFAULT_PII_KINDS, extra_patterns: Iterable[str] = (),
                   pseudonymizer: Optional[Pseudonymizer] = None,
                   pseudonym_key: Optional[bytes] = None) -> "Scrubber":
        """The scrubber of one bundle: secrets always, the customer's patterns, and
        pseudonyms for the personal data kinds asked for (none with --no-pseudonymize).
        `pseudonym_key`: the key of stable pseudonyms (--pseudonym-key), else a random one."""
        pii_kinds = tuple(pii_kinds)
        pseudonymizer = pseudonymizer or (Pseudonymizer(pseudonym_key) if pii_kinds else None)
        pii_rules = pseudonymizer.rules(pii_kinds) if pseudonymizer else ()
        extra_patterns = tuple(extra_patterns)
        return cls(SECRET_RULES + custom_rules(extra_patterns) + _pattern_texts(extra_patterns) + pii_rules,
                   pseudonymizer=pseudonymizer)

    def for_file(self, path: str) -> "FileScrubber":
        return FileScrubber(self, path)

    def scrub_text(self, text: str, path: str = "<text>") -> str:
        return self.scrub_bytes(text.encode("utf-8", "surrogateescape"), path).decode("utf-8", "surrogateescape")

    def scrub_bytes(self, data: bytes, path: str, starts_mid_line: bool = False) -> bytes:
        """Scrub a file's bytes line by line (lines end at b"\\n" only; bytes that are not
        UTF-8 survive through surrogateescape; a UTF-16 file with its BOM is written as
        UTF-8).  Lines the pre-filters do not pick cannot match and are copied as
        they are, without a Python loop over them: that keeps scrubbing fast on large
        log tails.  `starts_mid_line`: the data begins inside a line (a tail cut by its
        byte cap), so its first word may be the end of a secret."""
        data = _as_utf8(data, starts_mid_line)
        try:
            data = self._mask_headless_key(data, path, starts_mid_line)
            return self._scrub_lines(data, path)
        except Exception:  # fail closed: a file the scrubber could not go through is not written
            self.counts.add("rule_error", path)
            return WITHHELD.encode()

    def _scrub_lines(self, data: bytes, path: str) -> bytes:
        file_scrubber = self.for_file(path)
        starts = self._candidate_line_starts(data)
        if starts is None:
            return b"\n".join(_scrub_raw_line(file_scrubber, raw) for raw in data.split(b"\n"))
        pieces, position = [], 0
        for start in starts:
            if start < position:
                continue  # already taken by a value that went on over lines
            pieces.append(data[position:start])
            position = start
            while True:
                end = data.find(b"\n", position)
                end = len(data) if end < 0 else end
                pieces.append(_scrub_raw_line(file_scrubber, data[position:end]))
                position = end
                if not file_scrubber.continuation or end >= len(data):
                    break
                pieces.append(b"\n")
                position = end + 1
        pieces.append(data[position:])
        return b"".join(pieces)

    def _mask_headless_key(self, data: bytes, path: str, starts_mid_line: bool) -> bytes:
        """A tail that starts inside a private key (its BEGIN line cut off): the key lines
        before the first END line are masked.  A tail that starts inside a line: the rest
        of that line may hold a secret whose key was cut off (`ord = s3cret`), which no
        rule can recognise, so the partial line is withheld whole."""
        end = PEM_END_BYTES.search(data)
        if end and not PEM_BEGIN_BYTES.search(data, 0, end.start()):
            if starts_mid_line:
                self.counts.add("pem_private_key_block", path)
                return (MASK + "\n").encode() + data[end.start():]
            line_start = data.rfind(b"\n", 0, end.start()) + 1
            lines = data[:line_start].split(b"\n")[:-1]
            keep = len(lines)
            while keep and KEY_LINE_BYTES.fullmatch(lines[keep - 1]):
                keep -= 1
            if keep < len(lines):
                self.counts.add("pem_private_key_block", path, len(lines) - keep)
                lines[keep:] = [MASK.encode()] * (len(lines) - keep)
                data = b"\n".join(lines) + b"\n" + data[line_start:]
        if not starts_mid_line:
            return data
        newline = data.find(b"\n")
        head = data if newline < 0 else data[:newline]
        if head:
            self.counts.add("cut_line_head", path)
            data = CUT_MARK.encode() + data[len(head):]
        return data

    def _prefilter_tokens(self) -> Optional[Tuple[bytes, ...]]:
        tokens = set()
        for rule in self.rules:
            if "" in rule.prefilter:
                return None
            tokens.update(token.encode("utf-8") for token in rule.prefilter)
        # a token that holds another finds no line the shorter one misses: one scan less
        return tuple(sorted(t for t in tokens if not any(o != t and o in t for o in tokens)))

    def _candidate_line_starts(self, data: bytes) -> Optional[List[int]]:
        """Offsets of the lines a pre-filter picks; None when every line must be
        scrubbed (a rule with no pre-filter)."""
        if self._tokens is None:
            return None
        lowered = data.lower()
        starts = set()
        for scanner in self._scanners:
            index = _find(scanner, lowered, 0)
            while index >= 0:
                starts.add(lowered.rfind(b"\n", 0, index) + 1)
                line_end = lowered.find(b"\n", index)
                if line_end < 0:
                    break
                index = _find(scanner, lowered, line_end)
        for pattern in self._prefilter_patterns:
            for match in pattern.finditer(data):
                starts.add(data.rfind(b"\n", 0, match.start()) + 1)
        return sorted(starts)


# the platform's own names that hold a pre-filter token but never name a secret (every
# line of cookie_saver's and prochook's logs holds one): the rules are not run for them
_PLATFORM_NAMES = (("cookie_saver", "c00kie_saver"), ("cookiesaver", "c00kiesaver"), ("prochook", "procho0k"))


def _without_platform_names(lowered: str) -> str:
    for name, stand_in in _PLATFORM_NAMES:
        if name in lowered:
            lowered = lowered.replace(name, stand_in)
    return lowered


def _token_scanners(tokens: Iterable[bytes]) -> Tuple[Union[bytes, "re.Pattern[bytes]"], ...]:
    """The pre-filter's tokens grouped by their first byte, a group into one pattern
    (`s(?:ecret|ess|ig)`): the regex engine skips to that byte at C speed, so a group
    costs one pass over the data instead of one per token."""
    groups: Dict[bytes, List[bytes]] = {}
    for token in tokens:
        groups.setdefault(token[:1], []).append(token)
    scanners: List[Union[bytes, "re.Pattern[bytes]"]] = []
    for first, group in sorted(groups.items()):
        if len(group) == 1:
            scanners.append(group[0])
        else:
            rests = sorted((re.escape(token[1:]) for token in group), key=len, reverse=True)
            scanners.append(re.compile(re.escape(first) + b"(?:" + b"|".join(rests) + b")"))
    return tuple(scanners)


def _find(scanner: Union[bytes, "re.Pattern[bytes]"], data: bytes, start: int) -> int:
    if isinstance(scanner, bytes):
        return data.find(scanner, start)
    match = scanner.search(data, start)
    return match.start() if match else -1


class FileScrubber:
    """Scrubs the lines of one file in order, with the state values that go on over
    lines need (a YAML block, a PEM key body): `continuation`."""

    def __init__(self, scrubber: Scrubber, path: str):
        self.scrubber = scrubber
        self.path = path
        self.continuation: Optional[Continuation] = None

    def continue_with(self, continuation: Continuation) -> None:
        self.continuation = continuation

    def line(self, line: str) -> str:
        try:
            return self._scrub(line)
        except Exception:  # fail closed: never let an unscrubbed line through
            self.continuation = None
            self.scrubber.counts.add("rule_error", self.path)
            return WITHHELD

    def _scrub(self, line: str) -> str:
        continuation = self.continuation
        if continuation is not None:
            taken = continuation.take(line)
            if taken is None:
                self.continuation = None
            else:
                out, rest = taken
                if out != (line if rest is None else line[: len(line) - len(rest)]):
                    self.scrubber.counts.add(continuation.name, self.path)
                if continuation.done:
                    self.continuation = None
                return out if rest is None else out + self._apply_rules(rest)
        return self._apply_rules(line)

    def _apply_rules(self, line: str) -> str:
        lowered = _without_platform_names(line.lower())
        present = frozenset(token for token in self.scrubber._line_tokens if token in lowered)
        raw: Optional[bytes] = None
        for rule, tokens, patterns in self.scrubber._plan:
            if present.isdisjoint(tokens):
                if not patterns:
                    continue
                if raw is None:
                    raw = line.encode("utf-8", "surrogateescape")
                if not any(pattern.search(raw) for pattern in patterns):
                    continue
            line, changed = rule.run(line, self)
            if changed:
                raw = None
                for name, n in changed.items():
                    self.scrubber.counts.add(name, self.path, n)
        return line


def _scrub_raw_line(file_scrubber: FileScrubber, raw: bytes) -> bytes:
    text = raw.decode("utf-8", "surrogateescape")
    return file_scrubber.line(text).encode("utf-8", "surrogateescape")
