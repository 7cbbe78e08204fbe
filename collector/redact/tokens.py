"""Secrets known by their shape, with no key to name them: cloud and SaaS tokens, JWTs,
bot tokens and webhook secrets in URL paths, SMTP AUTH payloads, private keys (PEM,
OpenSSH, PGP, PuTTY, a PEM wrapped in base64)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Dict, Tuple

from collector.redact.blocks import Continuation, Taken
from collector.redact.rule import MASK, Rule, add_count, masked
from collector.lazyre import lazy

PEM_BEGIN = lazy(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
PEM_END = lazy(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
PEM_BEGIN_BYTES = lazy(PEM_BEGIN.pattern.encode())
PEM_END_BYTES = lazy(PEM_END.pattern.encode())
# base64 lines of a key body (PEM 64, OpenSSH 70, PGP 64 and its `=crc` line)
KEY_LINE_BYTES = lazy(rb"[ \t]*=?[A-Za-z0-9+/]{4,100}={0,2}[ \t]*\r?")


class PemBlock(Continuation):
    name = "pem_private_key_block"

    def take(self, line: str) -> Taken:
        end = PEM_END.search(line)
        lead = line[: len(line) - len(line.lstrip(" \t"))]  # a key in a YAML block keeps its indentation
        if end is None:
            return lead + MASK, None
        self.done = True
        return line[: min(len(lead), end.start())], line[end.start():]


def scan_pem(line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
    counts: Dict[str, int] = {}
    position = 0
    while True:
        begin = PEM_BEGIN.search(line, position)
        if begin is None:
            return line, counts
        end = PEM_END.search(line, begin.end())
        body = line[begin.end(): end.start() if end else len(line)]
        if end is not None:
            if body and not masked(body):
                line = line[: begin.end()] + MASK + line[end.start():]
                add_count(counts, "pem_private_key_inline")
            position = begin.end() + 1
            continue
        if body.strip():  # a key on one line whose end was cut off (a JSON string, a capped line)
            if not masked(body):
                line = line[: begin.end()] + MASK
                add_count(counts, "pem_private_key_inline")
            return line, counts
        file_scrubber.continue_with(PemBlock())
        add_count(counts, "pem_private_key_block")
        return line, counts


_B64_PEM = lazy(r"LS0tLS1CRUdJT[A-Za-z0-9+/]*={0,2}")


class Base64Block(Continuation):
    """The following lines of a base64 text wrapped over lines."""

    name = "pem_private_key_base64"
    _LINE = lazy(r"[ \t]*[A-Za-z0-9+/]{8,}={0,2}[ \t]*\r?")

    def take(self, line: str) -> Taken:
        if not self._LINE.fullmatch(line):
            return None
        return line[: len(line) - len(line.lstrip())] + MASK, None


def _is_private_key_b64(text: str) -> bool:
    head = text[: len(text[:120]) // 4 * 4]
    try:
        return b"PRIVATE KEY" in base64.b64decode(head + "=" * (-len(head) % 4))
    except (binascii.Error, ValueError):
        return True  # cannot tell: the safe side


def scan_base64_pem(line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
    counts: Dict[str, int] = {}
    for match in reversed(list(_B64_PEM.finditer(line))):
        if not _is_private_key_b64(match.group(0)):
            continue
        line = line[: match.start()] + MASK + line[match.end():]
        add_count(counts, "pem_private_key_base64")
        if not line[match.start() + len(MASK):].strip() and len(match.group(0)) >= 60:
            file_scrubber.continue_with(Base64Block())
    return line, counts


class SmtpAuthExchange(Continuation):
    """The client's base64 lines after `AUTH LOGIN` (user, then password); the server's
    `334` challenges pass; another reply code ends the exchange."""

    name = "smtp_auth"
    _PAYLOAD = lazy(r"(?<![\S])([A-Za-z0-9+/]{2,}={0,2})\s*$")

    def __init__(self, payloads: int):
        self.payloads, self.lines = payloads, 6

    def take(self, line: str) -> Taken:
        self.lines -= 1
        if self.lines < 0 or self.payloads <= 0:
            return None
        if re.search(r"\b334\b", line):
            return line, None
        if re.search(r"\b[2-5]\d\d\b", line):
            return None
        payload = self._PAYLOAD.search(line)
        if payload is None or masked(line):
            return None
        self.payloads -= 1
        self.done = self.payloads <= 0
        return line[: payload.start(1)] + MASK + line[payload.end(1):], None


_SMTP_AUTH = lazy(r"(?i)\bAUTH[ \t]+(PLAIN|LOGIN|XOAUTH2|OAUTHBEARER|CRAM-MD5|NTLM)\b"
                        r"(?:[ \t]+([A-Za-z0-9+/]{2,}={0,2}))?")


def scan_smtp_auth(line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
    counts: Dict[str, int] = {}
    match = _SMTP_AUTH.search(line)
    if match is None:
        return line, counts
    mechanism, payload = match.group(1).upper(), match.group(2)
    if payload and not masked(payload):
        line = line[: match.start(2)] + MASK + line[match.end(2):]
        add_count(counts, "smtp_auth")
    if mechanism == "LOGIN" or (not payload and mechanism in ("PLAIN", "XOAUTH2", "OAUTHBEARER", "CRAM-MD5")):
        file_scrubber.continue_with(SmtpAuthExchange(1 if payload or mechanism != "LOGIN" else 2))
    return line, counts


class PuttyKeyFile(Continuation):
    """A PuTTY key file after its header: the lines after `Private-Lines: N` and the
    `Private-MAC` (or `Private-Hash`) value are masked; other lines are scrubbed as usual."""

    name = "putty_private_key"
    _PRIVATE = lazy(r"\s*Private-Lines:\s*(\d{1,4})\s*$")
    _MAC = lazy(r"(\s*Private-(?:MAC|Hash):\s*)(\S+)")

    def __init__(self) -> None:
        self.private_lines, self.lines = 0, 2000

    def take(self, line: str) -> Taken:
        self.lines -= 1
        if self.lines < 0:
            return None
        if self.private_lines:
            self.private_lines -= 1
            return MASK, None
        count = self._PRIVATE.match(line)
        if count:
            self.private_lines = int(count.group(1))
            return line, None
        mac = self._MAC.match(line)
        if mac:
            self.done = True
            return mac.group(1) + MASK, line[mac.end():]
        return "", line


def scan_putty(line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
    if line.lstrip().startswith("PuTTY-User-Key-File-"):
        file_scrubber.continue_with(PuttyKeyFile())
    return line, {}


_AWS_ID = lazy(r"(?<![A-Za-z0-9])A[KS]IA[A-Z0-9]{16}(?![A-Za-z0-9])")  # access key ids (long-term, temporary)
_AWS_SECRET = lazy(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def scan_aws(line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
    """An access key id, and a 40-character secret key on the same line as one."""
    line, ids = _AWS_ID.subn(MASK, line)
    if not ids:
        return line, {}
    line, keys = _AWS_SECRET.subn(MASK, line)
    return line, {"aws_key": ids + keys}


_WEBHOOK_PATH = lazy(r"(?i)(?:/(?:web)?hooks?(?:b2)?/|hooks\.slack\.com/services/)([^\s?#\"'<>]+)")


def _random_looking(segment: str) -> bool:
    has_digit = any(c.isdigit() for c in segment)
    has_alpha = any(c.isalpha() for c in segment)
    long_word = len(segment) >= 24 and re.fullmatch(r"[\w\-]+", segment) is not None
    return (len(segment) >= 16 and has_digit and has_alpha) or long_word


def _mask_webhook_path(match: "re.Match[str]") -> str:
    path = match.group(1)
    segments = [MASK if _random_looking(s) and not masked(s) else s for s in path.split("/")]
    return match.group(0)[: match.start(1) - match.start(0)] + "/".join(segments)


# GitHub (`ghp_…`, `github_pat_…`) and Stripe (`sk_live_…`, `whsec_…`) tokens: an underscore
# then the token's random part, one pass over the data for all of them
_UNDERSCORE_SHAPES = lazy(rb"_(?:live_|test_|pat_|[A-Za-z0-9]{20})")

TOKEN_RULES: Tuple[Rule, ...] = (
    Rule("pem_private_key", ("private key",), None, scan=scan_pem),
    Rule("pem_private_key_base64", ("ls0tls1crudjt",), None, scan=scan_base64_pem),
    Rule("putty_private_key", ("putty-user-key-file-",), None, scan=scan_putty),
    Rule("smtp_auth", ("auth",), None, scan=scan_smtp_auth),
    Rule("aws_key", (), None, scan=scan_aws, prefilter_re=(lazy(rb"A[KS]IA[A-Z0-9]{16}"),)),
    Rule("slack_token", ("xox", "xapp-"), lazy(r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9\-]{10,}")),
    Rule("github_token", (), prefilter_re=(_UNDERSCORE_SHAPES,), pattern=
         lazy(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    Rule("stripe_key", (), prefilter_re=(_UNDERSCORE_SHAPES,), pattern=lazy(
        r"(?<![A-Za-z0-9_])(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})")),
    Rule("sendgrid_key", ("sg.",), lazy(r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}")),
    Rule("google_api_key", ("aiza",), lazy(r"\bAIza[0-9A-Za-z_\-]{35}")),
    Rule("jwt", ("eyj",), lazy(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    # Telegram's bot tokens: `<bot id>:AA<secret>`, alone or in a URL path after `/bot`
    Rule("bot_token", (":aa",), lazy(r"(?<![A-Za-z0-9:])(?:bot)?\d{5,12}:AA[A-Za-z0-9_\-]{30,}"),
         lambda m: ("bot" if m.group(0).startswith("bot") else "") + MASK),
    Rule("webhook_secret", ("hook",), _WEBHOOK_PATH, _mask_webhook_path),
)
