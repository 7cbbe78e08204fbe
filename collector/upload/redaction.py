"""An upload address as akdiag may show it: a pre-signed URL's query string is its
signature (a secret that lets anyone write to the store), and a password in the address
is one too.  Every message, error and record names the address through `safe_url`, and a
server's answer quoted in a message goes through `scrub` first (an object store's error
page echoes the signature it was given)."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

HIDDEN = "…"
_SHORTEST_SECRET = 4  # query values shorter than this are not hunted for in quoted text


def safe_url(url: str) -> str:
    """`url` with its query replaced by `?…`, its fragment dropped and any password removed:
    https://user:pw@host/p?X-Amz-Signature=abc -> https://user@host/p?…"""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return "<an address that cannot be read>"
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}@{hostport}"
    query = HIDDEN if (parts.query or url.rstrip("#").endswith("?")) else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def secrets_of(url: str) -> list:
    """The parts of `url` that must never be shown: the whole query, each of its values
    (raw and decoded) and the password, longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = set()
    if parts.query:
        found.add(parts.query)
        for _name, value in parse_qsl(parts.query, keep_blank_values=True):
            found.add(value)
        for piece in parts.query.split("&"):
            found.add(piece.partition("=")[2])
            found.add(unquote(piece.partition("=")[2]))
    if parts.password:
        found.update((parts.password, unquote(parts.password)))
    return sorted((s for s in found if len(s) >= _SHORTEST_SECRET), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` with every secret part of `url` replaced by `…` (a server's answer, an
    exception's message)."""
    for secret in secrets_of(url):
        text = text.replace(secret, HIDDEN)
    return text


def hidden_in_command_line(words: list, options=("--upload", "--url")) -> list:
    """A command line's words with the addresses of `options` shown by `safe_url` (the
    manifest records the command line)."""
    shown, hide_next = [], False
    for word in words:
        if hide_next and not word.startswith("-"):
            word = safe_url(word)
        elif word.startswith(tuple(f"{option}=" for option in options)):
            name, _, value = word.partition("=")
            word = f"{name}={safe_url(value)}"
        hide_next = word in options
        shown.append(word)
    return shown
