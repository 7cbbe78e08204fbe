"""The kinds of subscriber data that can be pseudonymized, and those that are by default.
A module of their own, not collector.redact: the command line checks its options against
them without loading every redaction rule."""

PII_KINDS = ("emails", "phones", "ips", "hosts")
DEFAULT_PII_KINDS = ("emails", "phones")
