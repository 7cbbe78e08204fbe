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
from typing import Any, Dict, List, Optional

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
    together = [i for i, text in enumerate(texts) if "\n" not in text]
    out = list(texts)
    if len(together) < len(texts):
        kept = set(together)
        for i in (i for i in range(len(texts)) if i not in kept):
            out[i] = scrub_string(scrubber, texts[i], path)
    if not together:
        return out
    joined = "\n".join(texts[i] for i in together)
    lines = counting_copy(scrubber).scrub_text(joined, path).split("\n")
    if len(lines) != len(together):  # no rule adds or removes a line; if one did, never guess
        return [scrub_string(scrubber, text, path) for text in texts]
    for i, line in zip(together, lines):
        if line != texts[i]:
            out[i] = scrub_string(scrubber, texts[i], path)
    return out


# -- walking ---------------------------------------------------------------------------

class _Text:
    """A place in the skeleton for text scrubbed in the batch (`number`: a phone-keyed
    number, kept as a number unless scrubbing changed it)."""
    __slots__ = ("index", "number")

    def __init__(self, index: int, number: Any = None):
        self.index = index
        self.number = number


def _holds_something(value: Any) -> bool:
    """Whether a secret-named key's value needs masking (one masked before, or a setting
    word, does not)."""
    if isinstance(value, str):
        return bool(value) and value != MASK and value.strip().lower() not in SETTING_WORDS
    return not (value is None or isinstance(value, bool) or value in ([], {}))


class DataScrubber:
    """Scrubs one file's structured data, counting under that file's bundle path: a
    first walk masks secret-named keys' values and gathers every text, the texts are
    scrubbed together, and a second walk puts them back."""

    def __init__(self, scrubber: Scrubber, path: str, own_record: bool = False, max_depth: int = MAX_DEPTH):
        self.scrubber = scrubber
        self.path = path
        self.not_secret = OWN_NOT_SECRET_KEYS if own_record else frozenset()
        self.max_depth = max_depth
        self._texts: List[str] = []
        self._key_kinds: Dict[str, tuple] = {}
        self._key_slots: Dict[str, _Text] = {}

    def _kind(self, name: str) -> tuple:
        """(secret-named, phone-named, version-named) of a key; records repeat their keys,
        so remembered."""
        kind = self._key_kinds.get(name)
        if kind is None:
            kind = (name not in self.not_secret and is_secret_key(name), bool(_PHONE_KEY.search(name)),
                    bool(_VERSION_KEY.search(name)))
            self._key_kinds[name] = kind
        return kind

    @property
    def counts(self) -> RedactionCounts:
        return self.scrubber.counts

    def value(self, data: Any) -> Any:
        self._texts, self._key_slots = [], {}
        skeleton = self._gather(data, None, 0)
        scrubbed = scrub_strings(self.scrubber, self._texts, self.path)
        return self._fill(skeleton, scrubbed)

    def _text(self, text: str, number: Any = None) -> _Text:
        self._texts.append(text)
        return _Text(len(self._texts) - 1, number)

    def _key_text(self, key: str) -> _Text:
        """Records repeat their keys: each key text is scrubbed (and counted) once."""
        slot = self._key_slots.get(key)
        if slot is None:
            slot = self._key_slots[key] = self._text(key)
        return slot

    def _gather(self, data: Any, key: Optional[str], depth: int) -> Any:
        if depth > self.max_depth:
            raise TooDeep(f"nested deeper than {self.max_depth} levels")
        if isinstance(data, dict):
            return self._gather_mapping(data, depth)
        if isinstance(data, (list, tuple)):
            return self._gather_list(data, key, depth)
        if isinstance(data, str):
            return self._text(data)
        if isinstance(data, bool) or data is None:
            return data
        if isinstance(data, (int, float)):
            if key is not None and isinstance(data, int) and self._kind(key)[1]:
                return self._text(str(data), data)  # a phone number, though written as a number
            return data  # a measurement stays a number
        return self._text(str(data))  # what json_bytes would write with str()

    def _gather_list(self, data: Any, key: Optional[str], depth: int) -> list:
        """A list's items; one after a secret flag (`["mailer", "--smtp-pass", "x"]`, a
        command line held as a list) is that flag's value."""
        gathered, after_flag = [], False
        for item in data:
            if after_flag and isinstance(item, str) and _holds_something(item) and not item.startswith("-"):
                self.counts.add(SECRET_FLAG_RULE, self.path)
                gathered.append(MASK)
            else:
                gathered.append(self._gather(item, key, depth + 1))
            after_flag = isinstance(item, str) and is_secret_flag(item)
        return gathered

    def _gather_mapping(self, data: dict, depth: int) -> "Dict[Any, Any]":
        pairs = []
        texts = self._texts
        for key, value in data.items():
            name = key if isinstance(key, str) else str(key)
            secret, phone, version = self._kind(name)
            kind = type(value)
            if secret and _holds_something(value):
                self.counts.add(SECRET_KEY_RULE, self.path)
                gathered = MASK
            elif version and kind is str and _VERSION.fullmatch(value):
                gathered = value  # a version number, never an address
            elif kind is str:  # the common cases inline: records are many small values
                texts.append(value)
                gathered = _Text(len(texts) - 1)
            elif value is None or kind is bool or kind is float or (kind is int and not phone):
                gathered = value
            else:
                gathered = self._gather(value, name, depth + 1)
            # numbers, booleans and None as keys (YAML) hold nothing to hide
            pairs.append((self._key_text(key) if isinstance(key, str) else key, gathered))
        return _Mapping(pairs)

    def _fill(self, skeleton: Any, scrubbed: List[str]) -> Any:
        if isinstance(skeleton, _Text):
            text = scrubbed[skeleton.index]
            if skeleton.number is not None and text == self._texts[skeleton.index]:
                return skeleton.number
            return text
        if isinstance(skeleton, _Mapping):
            out: dict = {}
            for key, value in skeleton.pairs:
                key = self._fill(key, scrubbed)
                out[_unique(out, key)] = self._fill(value, scrubbed)
            return out
        if isinstance(skeleton, list):
            return [self._fill(item, scrubbed) for item in skeleton]
        return skeleton


class _Mapping:
    __slots__ = ("pairs",)

    def __init__(self, pairs: list):
        self.pairs = pairs


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
