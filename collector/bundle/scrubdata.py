"""Structured data scrubbed as data: a JSON-like value is walked key by key, so that no
text rule can break its quoting or change its shape.

- the value of a secret-named key is replaced by the mask whatever it holds (a string,
  a number, a list, an object); None, "", an empty container and booleans stay, as
  they hold nothing to hide;
- every other string, keys included, is scrubbed as text (secrets in it, the
  customer's patterns, pseudonyms); two keys never merge into one;
- numbers stay numbers (a size is never taken for a phone), unless their key says
  they are a phone number.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

from collector.decoding import MAX_DEPTH, TooDeep
from collector.redact import MASK, RedactionCounts, Scrubber, is_secret_key
from collector.redact.cmdline import is_secret_flag

# the rule name a masked secret-named key counts under in redactions.json
SECRET_KEY_RULE = "secret_key_value"
SECRET_FLAG_RULE = "cli_secret_flag"  # the same name as the text rule for a flag's value
# keys of akdiag's own records whose names sound secret and whose values are not secrets:
# config/index.json lists key names and digests, never values; a datastore record's
# details.auth is akdiag's login status (ok, refused, not needed, user NAME).  Their
# values are still scrubbed as text.
OWN_NOT_SECRET_KEYS = frozenset({"placeholder_secrets", "secret_digests", "secret_digests_note", "auth"})
# values of a secret-named key that are settings, not secrets (mongod's
# security.authorization: enabled), kept as the line rules keep them
SETTING_WORDS = frozenset({"enabled", "disabled", "true", "false", "none", "required", "optional", "null", "nil",
                           "yes", "no", "on", "off"})
# a version under a key that says so is no IP address: "version": "1.2.3.4"
_VERSION_KEY = re.compile(r"(?i)version|(?:^|[_\-.])(?:ver|release|build)(?:$|[_\-.])")
_VERSION = re.compile(r"v?\d{1,9}(?:\.\d{1,9}){1,4}(?:[-+~][0-9A-Za-z.\-+~]{1,40})?")
_PHONE_KEY = re.compile(r"(?i)phone|mobile|msisdn|(?:^|[_\-.])tel(?:$|[_\-.])|telephone")


# -- text ---------------------------------------------------------------------------

def _unquoted(text: str, scrubbed: str) -> str:
    """A phone rule quotes a bare number it finds where JSON holds numbers (a whole
    line); inside a string value the quotes would be part of the text."""
    if (scrubbed != text and len(scrubbed) > 1 and scrubbed[0] == scrubbed[-1] == '"'
            and not (text[:1] == text[-1:] == '"')):
        return scrubbed[1:-1]
    return scrubbed


def scrub_string(scrubber: Scrubber, text: str, path: str) -> str:
    """`text` scrubbed as one piece of text, the same way wherever it appears (a file's
    name and the index that names it get the same result)."""
    return _unquoted(text, scrubber.scrub_text(text, path))


def counting_copy(scrubber: Scrubber) -> Scrubber:
    """The same scrubber (rules, pseudonyms) counting into counts of its own."""
    counting = object.__new__(type(scrubber))
    counting.__dict__.update(vars(scrubber))
    counting.counts = RedactionCounts()
    return counting


def scrub_strings(scrubber: Scrubber, texts: List[str], path: str) -> List[str]:
    """scrub_string of each text.  One pass over them all (one text a line: the
    pre-filters skip the clean ones at C speed) only finds the texts that change; each
    of those is then scrubbed and counted on its own, so that no rule whose state spans
    lines (a value on the next line, a PEM block) carries from one text to the next."""
    if not texts:
        return []
    joined = "\n".join(texts)
    if joined.count("\n") == len(texts) - 1:  # no text holds lines of its own: all of them at once
        together: Sequence[int] = range(len(texts))
    else:
        together = [i for i, text in enumerate(texts) if "\n" not in text]
        joined = "\n".join(texts[i] for i in together)
    out = list(texts)
    if len(together) < len(texts):
        kept = set(together)
        for i in (i for i in range(len(texts)) if i not in kept):
            out[i] = scrub_string(scrubber, texts[i], path)
    if not together:
        return out
    lines = counting_copy(scrubber).scrub_text(joined, path).split("\n")
    if len(lines) != len(together):  # no rule adds or removes a line; if one did, never guess
        return [scrub_string(scrubber, text, path) for text in texts]
    if len(together) == len(texts) and lines == texts:  # the usual case: nothing to change
        return out
    for i, line in zip(together, lines):
        if line != texts[i]:
            out[i] = scrub_string(scrubber, texts[i], path)
    return out


# -- walking ---------------------------------------------------------------------------

_MASKED, _TEXT, _KEPT, _NESTED = range(4)


def _action(secret: bool, phone: bool, version: bool, value: Any) -> int:
    """What a mapping's value gets, decided alike by both walks: masked (a secret-named
    key's), scrubbed as text, kept (a number, a boolean, None; a version under a key that
    says so, never an address), or walked into."""
    kind = type(value)
    if secret and _holds_something(value):
        return _MASKED
    if kind is str:
        return _KEPT if version and _VERSION.fullmatch(value) else _TEXT
    if kind in _PLAIN or (kind is int and not phone):
        return _KEPT
    return _NESTED


def _holds_something(value: Any) -> bool:
    """Whether a secret-named key's value needs masking (one masked before, or a setting
    word, does not)."""
    if isinstance(value, str):
        return bool(value) and value != MASK and value.strip().lower() not in SETTING_WORDS
    return not (value is None or isinstance(value, bool) or value in ([], {}))


MAX_PLANS = 1000  # kinds of records remembered while one file is walked
_PLAIN = (type(None), bool, float)  # values a mapping keeps as they are (ints: unless phone-keyed)


class DataScrubber:
    """Scrubs one file's structured data, counting under that file's bundle path: a
    first walk masks secret-named keys' values (counting them) and gathers every text,
    the texts are scrubbed together, and a second walk, the first's mirror, builds the
    scrubbed copy.  The second walk is left out where `value(..., copy=False)` allows it
    and nothing was masked or changed.  Both walks visit the texts in one order: keep
    their branches alike."""

    def __init__(self, scrubber: Scrubber, path: str, own_record: bool = False, max_depth: int = MAX_DEPTH):
        self.scrubber = scrubber
        self.path = path
        self.not_secret = OWN_NOT_SECRET_KEYS if own_record else frozenset()
        self.max_depth = max_depth
        self._texts: List[str] = []
        self._kinds: Dict[str, tuple] = {}
        self._keys: Dict[str, int] = {}  # a key's text -> its place in _texts (keys are scrubbed once a file)
        self._plans: Dict[tuple, list] = {}  # a mapping's keys -> (name, secret, phone, version) of each
        self._masked = 0
        self._scrubbed: List[str] = []
        self._next = 0

    def _kind(self, name: str) -> tuple:
        """(secret-named, phone-named, version-named) of a key; records repeat their keys,
        so remembered."""
        kind = self._kinds.get(name)
        if kind is None:
            kind = (name not in self.not_secret and is_secret_key(name), bool(_PHONE_KEY.search(name)),
                    bool(_VERSION_KEY.search(name)))
            self._kinds[name] = kind
        return kind

    @property
    def counts(self) -> RedactionCounts:
        return self.scrubber.counts

    def value(self, data: Any, copy: bool = True) -> Any:
        """The scrubbed copy of `data`; with `copy` false, `data` itself when scrubbing
        changes nothing in it (for a JSON encoder with default=str, which writes both
        alike: tuples as lists, other objects as their str())."""
        self._texts, self._keys, self._plans, self._masked = [], {}, {}, 0
        self._gather(data, None, 0)
        self._scrubbed = scrub_strings(self.scrubber, self._texts, self.path)
        if not copy and not self._masked and self._scrubbed == self._texts:
            return data
        self._next = 0
        filled = self._fill(data, None)
        if self._next != len(self._scrubbed):  # the walks disagreed: a text would land under another key
            raise RuntimeError(f"scrubbing {self.path}: {self._next} texts put back of {len(self._scrubbed)}")
        return filled

    # -- the first walk: masks counted, texts gathered ----------------------------------
    def _gather(self, data: Any, key: Optional[str], depth: int) -> None:
        if depth > self.max_depth:
            raise TooDeep(f"nested deeper than {self.max_depth} levels")
        if isinstance(data, dict):
            self._gather_mapping(data, depth)
        elif isinstance(data, (list, tuple)):
            self._gather_list(data, key, depth)
        elif isinstance(data, str):
            self._texts.append(data)
        elif isinstance(data, bool) or data is None:
            pass
        elif isinstance(data, (int, float)):
            if key is not None and isinstance(data, int) and self._kind(key)[1]:
                self._texts.append(str(data))  # a phone number, though written as a number
        else:
            self._texts.append(str(data))  # what json_bytes would write with str()

    def _gather_list(self, data: Any, key: Optional[str], depth: int) -> None:
        """A list's items; one after a secret flag (`["mailer", "--smtp-pass", "x"]`, a
        command line held as a list) is that flag's value."""
        after_flag = False
        for item in data:
            if after_flag and _flag_value(item):
                self.counts.add(SECRET_FLAG_RULE, self.path)
                self._masked += 1
            else:
                self._gather(item, key, depth + 1)
            after_flag = isinstance(item, str) and is_secret_flag(item)

    def _gather_mapping(self, data: dict, depth: int) -> None:
        """Records repeat their keys: a mapping with the keys (in their order) of one seen
        before takes their kinds from its plan, every key's text gathered already."""
        plan = self._plans.get(tuple(data))
        if plan is None:
            self._gather_keys_and_values(data, depth)
            return
        for (name, secret, phone, version), value in zip(plan, data.values()):
            self._gather_value(name, _action(secret, phone, version, value), value, depth)

    def _gather_keys_and_values(self, data: dict, depth: int) -> None:
        """_gather_mapping of keys not seen together before: each key's text is gathered
        where it first comes, and a plan made when every key is a string."""
        texts, keys = self._texts, self._keys
        plan = []
        for key, value in data.items():
            if isinstance(key, str):
                if key not in keys:  # each key text scrubbed (and counted) once
                    keys[key] = len(texts)
                    texts.append(key)
                name = key
            else:  # numbers, booleans and None as keys (YAML) hold nothing to hide
                name = str(key)
                plan = None
            secret, phone, version = self._kind(name)
            if plan is not None:
                plan.append((name, secret, phone, version))
            self._gather_value(name, _action(secret, phone, version, value), value, depth)
        if plan is not None and len(self._plans) < MAX_PLANS:
            self._plans[tuple(data)] = plan

    def _gather_value(self, name: str, action: int, value: Any, depth: int) -> None:
        if action == _TEXT:
            self._texts.append(value)
        elif action == _MASKED:
            self.counts.add(SECRET_KEY_RULE, self.path)
            self._masked += 1
        elif action == _NESTED:
            self._gather(value, name, depth + 1)

    # -- the second walk: the copy, with the scrubbed texts in the first walk's order -----
    def _text(self) -> str:
        text = self._scrubbed[self._next]
        self._next += 1
        return text

    def _fill(self, data: Any, key: Optional[str]) -> Any:
        if isinstance(data, dict):
            return self._fill_mapping(data)
        if isinstance(data, (list, tuple)):
            return self._fill_list(data, key)
        if isinstance(data, str):
            return self._text()
        if isinstance(data, bool) or data is None:
            return data
        if isinstance(data, (int, float)):
            if key is not None and isinstance(data, int) and self._kind(key)[1]:
                text = self._text()
                return data if text == str(data) else text
            return data  # a measurement stays a number
        return self._text()

    def _fill_list(self, data: Any, key: Optional[str]) -> list:
        out, after_flag = [], False
        for item in data:
            out.append(MASK if after_flag and _flag_value(item) else self._fill(item, key))
            after_flag = isinstance(item, str) and is_secret_flag(item)
        return out

    def _fill_mapping(self, data: dict) -> dict:
        out: dict = {}
        scrubbed, keys = self._scrubbed, self._keys
        for key, value in data.items():
            if isinstance(key, str):
                if keys[key] == self._next:  # its first time: the key's text comes here
                    self._next += 1
                name, key = key, scrubbed[keys[key]]
            else:
                name = str(key)
            action = _action(*self._kind(name), value)
            if action == _MASKED:
                value = MASK
            elif action == _TEXT:
                value = self._text()
            elif action == _NESTED:
                value = self._fill(value, name)
            out[_unique(out, key)] = value
        return out


def _flag_value(item: Any) -> bool:
    """Whether a list item after a secret flag is its value (to mask)."""
    return isinstance(item, str) and _holds_something(item) and not item.startswith("-")


def _unique(out: dict, key: Any) -> Any:
    """Two keys scrubbed to the same text stay two keys."""
    if key not in out:
        return key
    n = 2
    while f"{key} ({n})" in out:
        n += 1
    return f"{key} ({n})"


def scrub_data(scrubber: Scrubber, data: Any, path: str, own_record: bool = False) -> Any:
    """A scrubbed copy of JSON-like `data` (see the module's text); raises TooDeep."""
    return DataScrubber(scrubber, path, own_record).value(data)


def scrub_for_json(scrubber: Scrubber, data: Any, path: str, own_record: bool = False) -> Any:
    """scrub_data for a JSON encoder with default=str: `data` itself, not a copy, when
    scrubbing changes nothing in it (akdiag's records mostly; the copy is the slow half)."""
    return DataScrubber(scrubber, path, own_record).value(data, copy=False)
