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
from typing import Any, Optional

from collector.decoding import MAX_DEPTH, TooDeep
from collector.redact import MASK, RedactionCounts, Scrubber, is_secret_key

# the rule name a masked secret-named key counts under in redactions.json
SECRET_KEY_RULE = "secret_key_value"
# keys of akdiag's own records whose names sound secret and whose values are not secrets
# (config/index.json lists key names and digests, never values)
OWN_NOT_SECRET_KEYS = frozenset({"placeholder_secrets", "secret_digests", "secret_digests_note"})
_PHONE_KEY = re.compile(r"(?i)phone|mobile|msisdn|(?:^|[_\-.])tel(?:$|[_\-.])|telephone")


# -- walking ---------------------------------------------------------------------------

def scrub_string(scrubber: Scrubber, text: str, path: str) -> str:
    """`text` scrubbed as one piece of text, the same way wherever it appears (a file's
    name and the index that names it get the same result)."""
    scrubbed = scrubber.scrub_text(text, path)
    # a phone rule quotes a bare number it finds where JSON holds numbers (a whole line);
    # inside a string value the quotes would be part of the text
    if (scrubbed != text and len(scrubbed) > 1 and scrubbed[0] == scrubbed[-1] == '"'
            and not (text[:1] == text[-1:] == '"')):
        scrubbed = scrubbed[1:-1]
    return scrubbed


def _holds_something(value: Any) -> bool:
    """Whether a secret-named key's value needs masking (one masked before does not)."""
    return not (value is None or isinstance(value, bool) or value in ("", [], {}) or value == MASK)


class DataScrubber:
    """Scrubs one file's structured data, counting under that file's bundle path."""

    def __init__(self, scrubber: Scrubber, path: str, own_record: bool = False, max_depth: int = MAX_DEPTH):
        self.scrubber = scrubber
        self.path = path
        self.not_secret = OWN_NOT_SECRET_KEYS if own_record else frozenset()
        self.max_depth = max_depth

    @property
    def counts(self) -> RedactionCounts:
        return self.scrubber.counts

    def value(self, data: Any, key: Optional[str] = None, depth: int = 0) -> Any:
        if depth > self.max_depth:
            raise TooDeep(f"nested deeper than {self.max_depth} levels")
        if isinstance(data, dict):
            return self._mapping(data, depth)
        if isinstance(data, (list, tuple)):
            return [self.value(item, key, depth + 1) for item in data]
        if isinstance(data, str):
            return scrub_string(self.scrubber, data, self.path)
        if isinstance(data, bool) or data is None:
            return data
        if isinstance(data, (int, float)):
            return self._number(data, key)
        return scrub_string(self.scrubber, str(data), self.path)  # what json_bytes would write with str()

    def _mapping(self, data: dict, depth: int) -> dict:
        out: dict = {}
        for key, value in data.items():
            name = key if isinstance(key, str) else str(key)
            if name not in self.not_secret and is_secret_key(name) and _holds_something(value):
                scrubbed = MASK
                self.counts.add(SECRET_KEY_RULE, self.path)
            else:
                scrubbed = self.value(value, name, depth + 1)
            out[self._unique(out, self._key(key))] = scrubbed
        return out

    def _key(self, key: Any) -> Any:
        if isinstance(key, str):
            return scrub_string(self.scrubber, key, self.path)
        return key  # numbers, booleans and None as keys (YAML) hold nothing to hide

    @staticmethod
    def _unique(out: dict, key: Any) -> Any:
        """Two keys scrubbed to the same text stay two keys."""
        if key not in out:
            return key
        n = 2
        while f"{key} ({n})" in out:
            n += 1
        return f"{key} ({n})"

    def _number(self, number: Any, key: Optional[str]) -> Any:
        """A measurement stays a number; a number whose key says phone is scrubbed as the
        phone it is (a pseudonym is a string)."""
        if key is None or isinstance(number, float) or not _PHONE_KEY.search(key):
            return number
        text = str(number)
        scrubbed = scrub_string(self.scrubber, text, self.path)
        return number if scrubbed == text else scrubbed


def scrub_data(scrubber: Scrubber, data: Any, path: str, own_record: bool = False) -> Any:
    """A scrubbed copy of JSON-like `data` (see the module's text); raises TooDeep."""
    return DataScrubber(scrubber, path, own_record).value(data)

