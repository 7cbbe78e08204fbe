"""The one secret vocabulary: whether a key's name says its value is a secret.

A name is split into words whatever its spelling (`SMTPPass`, `smtp_pass`, `smtp-pass`,
`smtpPassword`, `db.pwd`, `X-Api-Key`), digits dropped.  The last word is the name's head,
as in English compounds: `password_file` is a file and `TOKEN_TTL` a duration, while
`CONTROLDB_PASS` and `API_KEYS` hold secrets.  Words that only say how a secret is written
(`SECRET_KEY_BASE`, `password_hash`) are looked through.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, List

from collector.redact.rule import MASK
from collector.lazyre import lazy

# heads that are secrets by themselves (a plural `s` is allowed too)
SECRET_WORDS = frozenset((
    "password", "passwd", "pass", "pwd", "pw", "psw", "passphrase", "passcode", "secret", "token", "credential",
    "creds", "cred", "apikey", "authtoken", "dsn", "cookie", "auth", "oauth", "authorization", "signature", "sig",
    "requirepass", "masterauth", "session", "sessionid", "jsessionid", "phpsessid", "privkey",
))
# a word that ends so is a secret too (`PGPASSWORD`, `clientsecret`, `xtoken`, `basicauth`)
SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "secrets", "token", "tokens", "pwd", "auth",
                   "apikey", "apikeys", "cookie", "cookies", "sessionid", "sessid")
# `<qualifier> key`: a key that is a secret, unlike `routing_key`, `cache_key`, `primary_key`
KEY_QUALIFIERS = frozenset((
    "api", "secret", "private", "priv", "signing", "sign", "signature", "encryption", "encrypt", "decryption",
    "crypt", "crypto", "cipher", "access", "master", "client", "auth", "session", "hmac", "ssh", "app",
    "application", "service", "account", "storage", "shared", "psk", "license", "licence", "jwt", "aes", "rsa",
    "gpg", "pgp", "webhook", "consumer", "admin", "root", "subscription", "write", "tls", "ssl",
))
# two-word heads
SECRET_PAIRS = frozenset((("session", "id"), ("sess", "id"), ("private", "key"), ("secret", "key")))
# words after a secret that say how it is written, not what it is
TRAILING = frozenset(("base", "hash", "b64", "base64", "value", "val", "plain", "plaintext", "raw", "str", "string",
                      "enc", "encrypted", "hex"))
# words before a secret head that make the name about secrets, not one (akdiag's own
# `placeholder_secrets` lists key names; `max_tokens` is a number)
ABOUT_SECRETS = frozenset(("placeholder", "missing", "weak", "num", "max", "min", "total", "count", "n"))
RUSSIAN_STEM = "парол"  # пароль, пароля, паролем

# substrings (lower-case) one of which every secret name holds: the scrubber's pre-filter
PREFILTER = ("pass", "pwd", "pw", "psw", "secret", "token", "key", "auth", "cred", "dsn", "cookie", "sig",
             "sess", "парол", "Парол", "ПАРОЛ")

_WORD = lazy(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[^\W\d_]+")


def key_words(name: str) -> List[str]:
    """`SMTPPass` -> ["smtp", "pass"]; `X-Api-Key` -> ["x", "api", "key"]."""
    return [word.lower() for word in _WORD.findall(name)]


# English words that end in "pass" (a glued name such as SMTPPASS ends in "pass" too)
PASS_WORDS = frozenset(("bypass", "compass", "surpass", "overpass", "underpass", "trespass", "encompass", "impass"))


def _secret_word(word: str, glued_tail: bool = True) -> bool:
    if word in SECRET_WORDS or (word.endswith("s") and word[:-1] in SECRET_WORDS) or word.startswith(RUSSIAN_STEM):
        return True
    if word.endswith(SECRET_SUFFIXES) or (word.endswith("pass") and len(word) > 6 and word not in PASS_WORDS):
        return True
    stem = word[:-1] if word.endswith("keys") else word
    if stem.endswith("key") and stem[:-3] in KEY_QUALIFIERS:
        return True
    # a glued name with a trailing word: SECRETKEYBASE, PASSWORDHASH
    return glued_tail and any(word.endswith(tail) and len(word) > len(tail) + 2
                              and _secret_word(word[: -len(tail)], glued_tail=False) for tail in TRAILING)


@lru_cache(maxsize=8192)
def _is_secret_name(name: str) -> bool:
    words = key_words(name)
    while len(words) > 1 and words[-1] in TRAILING:
        words.pop()
    if not words:
        return False
    head = words[-1]
    if len(words) > 1 and words[-2] in ABOUT_SECRETS:
        return False
    if _secret_word(head):
        return True
    if len(words) > 1 and (words[-2], head) in SECRET_PAIRS:
        return True
    if head in ("key", "keys") and len(words) > 1:
        # `X-ClickHouse-Key`: an HTTP header named "key" carries one
        return words[-2] in KEY_QUALIFIERS or words[0] == "x"
    return False


def is_secret_key(name: str) -> bool:
    """Whether a key's name (a configuration key, a JSON field, an HTTP header, a flag)
    says its value is a secret."""
    return _is_secret_name(str(name).strip().strip("\"'"))


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
