"""Credentials in URLs: userinfo (a password may hold `@` and `/`), `user:pw@host` with no
scheme (DSNs such as Go's `user:pw@tcp(host:3306)/db`), and percent-encoded values (a
URL nested in a query string) that hold a secret once decoded."""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, Tuple
from urllib.parse import unquote

from collector.redact.rule import MASK, Rule, masked, splice
from collector.lazyre import lazy

# the password runs to the last `@` that a host follows (greedy, then back off)
_URL_USERINFO = lazy(
    r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"'<>?#]*:)([^\s\"'<>]+)@"
    r"(?=[\w.\-\[\]%:]*(?:[/?#,;)\s\"'<>\]\\]|$))")
_PORT_THEN_PATH = lazy(r"\d{1,5}(?:[/?#]|$)")


def _userinfo(match: "re.Match[str]") -> str:
    password = match.group(2)
    if masked(password) or _PORT_THEN_PATH.match(password):
        return match.group(0)  # `http://host:8080/a@b`: a port, not a password
    return splice(match, 2, MASK)


_SCHEMELESS = lazy(
    r"(?<![\w/:.@%+\-\\])([A-Za-z0-9_.\-]{1,64}:)([^\s:@/\"'<>]{1,128})@"
    r"(?=(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])?(?::\d|/|\(|[\s\"',;)\]}>]|$))")
# `to:bob@example.org` is an address after a field name, not a user and a password
_ADDRESS_FIELDS = frozenset(("mailto", "to", "from", "cc", "bcc", "reply-to", "sender", "email", "e-mail", "mail",
                             "user", "login", "recipient", "rcpt", "address", "addr", "contact", "for", "by"))


def _schemeless(match: "re.Match[str]") -> str:
    if masked(match.group(2)) or match.group(1)[:-1].lower() in _ADDRESS_FIELDS:
        return match.group(0)
    return splice(match, 2, MASK)


# a user name that is a key (a Sentry DSN, `https://<32 hex>@host/1`): long and random-looking
_URL_KEY_USER = lazy(r"([A-Za-z][A-Za-z0-9+.\-]*://)([A-Za-z0-9_\-]{20,})@(?=[\w.\-\[])")


def _key_user(match: "re.Match[str]") -> str:
    user = match.group(2)
    if not (any(c.isdigit() for c in user) and any(c.isalpha() for c in user)):
        return match.group(0)
    return splice(match, 2, MASK)


URL_RULES: Tuple[Rule, ...] = (
    Rule("url_credentials", ("://",), _URL_USERINFO, _userinfo),
    Rule("url_credentials", ("://",), _URL_KEY_USER, _key_user),
    Rule("url_credentials", ("@",), _SCHEMELESS, _schemeless),
)

# an encoded `:` or `=` (or an encoded `%`): a user:password or a key=value inside; an
# encoded `@` alone is an e-mail address, the pseudonyms' business
_ENCODED = lazy(r"(?i)[^\s\"'<>&=?]*%(?:25)*(?:3A|3D)[^\s\"'<>&=?]*")


class _NoState:
    """Decoded text is one line on its own: a value going on over lines ends with it."""

    @staticmethod
    def continue_with(_continuation: Any) -> None:
        return None


def encoded_rule(inner: Iterable[Rule]) -> Rule:
    """A percent-encoded value (decoded up to three times) that holds a secret any of
    the `inner` rules finds is masked whole."""
    inner = tuple(inner)

    def holds_secret(text: str) -> bool:
        lowered = text.lower()
        for rule in inner:
            if rule.applies(lowered, text) and rule.run(text, _NoState)[1]:
                return True
        return False

    def scan(line: str, _file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
        changed = 0

        def replace(match: "re.Match[str]") -> str:
            nonlocal changed
            text = match.group(0)
            for _ in range(3):
                decoded = unquote(text)
                if decoded == text:
                    break
                text = decoded
                if holds_secret(text):
                    changed += 1
                    return MASK
            return match.group(0)

        line = _ENCODED.sub(replace, line)
        return line, ({"url_encoded_secret": changed} if changed else {})

    return Rule("url_encoded_secret", ("%3a", "%3d", "%253a", "%253d"), None, scan=scan)
