"""Whether a secret's value is too weak to keep: the vendor's documented placeholder, a
common placeholder word (changeme, password, admin, test, <your key>, xxxx, ...), or
shorter than the minimum length.  Judged in memory while the configuration is read:
what leaves is the reason (and the length of a short one), never the value."""

from __future__ import annotations

import re
from typing import Any, Optional

DOCUMENTED_PLACEHOLDER = "abcdefghijklmnopqrstuvwxyzABCDEF"
# the platform documents no minimum length for its secrets (its generated keys are 32
# characters): catalog threshold `secret_min_length` decides, this is its fallback
DEFAULT_MIN_LENGTH = 12

# compared without case and without separators ("Change-Me", "change me" -> "changeme")
_WORDS = frozenset("""
    changeme changeit changethis changeplease password passwd passw0rd pass pwd p4ssw0rd secret secretkey
    mysecret admin administrator root toor test testing tester default example sample demo dummy guest qwerty
    qwerty123 letmein welcome abc123 abcdef abcdefgh todo tbd fixme placeholder none null nil empty undefined
    unset mypassword yourpassword yoursecret yourkey yourapikey apikey key token foobar foo bar
    altcraft akd
""".split())
_WORD_WITH_DIGITS = re.compile(r"(?:password|passwd|pass|secret|admin|test|changeme|default|qwerty|welcome|"
                               r"altcraft|root|guest)\d{0,4}[!.]?")
_PATTERNS = (
    re.compile(r"(.)\1{2,}"),             # one character repeated: xxx, ********, 00000000
    re.compile(r"<[^<>]*>"),              # <your key here>
    re.compile(r"\{\{[^{}]*\}\}"),        # {{ secret }} of a template never filled in
    re.compile(r"0?1234567?8?9?0?|9876543?2?1?0?"),  # 123456, 12345678, 0123456789
    # yourpasswordhere, insert_api_key_here, my-secret
    re.compile(r"(?:your|my|insert|put|enter|set|paste)?(?:your|the|own|new)?(?:password|passwd|pass|secret|key|"
               r"apikey|token|privatekey|cryptkey)(?:goes)?(?:here)?"),
)


def _normalized(value: str) -> str:
    return re.sub(r"[\s_\-.]+", "", value.strip().lower())


def is_placeholder(value: str) -> bool:
    """A value people leave in place of a secret (case and separators do not matter)."""
    stripped = value.strip()
    word = _normalized(stripped)
    if not word or word in _WORDS or _WORD_WITH_DIGITS.fullmatch(word):
        return True
    return any(p.fullmatch(stripped) or p.fullmatch(word) for p in _PATTERNS)


def weakness(value: Any, min_length: int) -> Optional[dict]:
    """Why a secret's value is weak ({"reason": "documented_placeholder" | "placeholder"
    | "short", "length", "minimum"}), or None.  A value that is no text or number (a
    list, an object, a boolean) or is empty is not judged."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    if not text:
        return None
    if text == DOCUMENTED_PLACEHOLDER:
        return {"reason": "documented_placeholder"}
    if is_placeholder(text):
        return {"reason": "placeholder"}
    if len(text) < min_length:
        return {"reason": "short", "length": len(text), "minimum": min_length}
    return None


def min_length_of(thresholds: Any) -> int:
    """The catalog's `secret_min_length`, or the default when it is absent or no whole number."""
    value = thresholds.get("secret_min_length") if isinstance(thresholds, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else DEFAULT_MIN_LENGTH
