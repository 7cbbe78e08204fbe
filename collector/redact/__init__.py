"""Redaction: secrets masked, subscribers' personal data pseudonymized, at the one write
point every byte of a bundle passes through (the bundle writer).

    vocabulary  the one secret vocabulary (is_secret_key)
    pairs       key/value pairs in text, every one on a line; XML elements and attributes
    blocks      values that go on over following lines
    tokens      secrets known by their shape (cloud tokens, JWTs, private keys, SMTP AUTH)
    cmdline     command-line flags and short forms
    urls        credentials in URLs, plain or percent-encoded
    pii         pseudonyms for e-mails, phones, IP addresses and host names
    scrubber    the Scrubber that applies them, line by line, failing closed
"""

from collector.redact.pii import DEFAULT_PII_KINDS, PII_KINDS, Pseudonymizer
from collector.redact.rule import CUT_MARK, HTML_MASK, MASK, WITHHELD, Rule
from collector.redact.scrubber import SECRET_RULES, FileScrubber, RedactionCounts, Scrubber, custom_rules
from collector.redact.vocabulary import is_secret_key, key_words, redact_structure

__all__ = ["CUT_MARK", "DEFAULT_PII_KINDS", "FileScrubber", "HTML_MASK", "MASK", "PII_KINDS", "Pseudonymizer",
           "RedactionCounts", "Rule", "SECRET_RULES", "Scrubber", "WITHHELD", "custom_rules", "is_secret_key",
           "key_words", "redact_structure"]
