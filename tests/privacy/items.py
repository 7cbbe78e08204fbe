"""The corpus's items and the files they are planted in.

An item is one planted secret, piece of subscriber data, or measurement that must be
kept.  Each has one marker (`Zq7m0001`, unique, fixed width) that names it; `needles`
are the strings whose presence in the bundle means it leaked (the marker itself, or
the literal value where a marker cannot be embedded: phone numbers, IP addresses,
base64 text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

# What each kind of item is: a secret is masked in every mode; subscriber data where
# the mode pseudonymizes it; a measurement ("keep") must survive every mode.
SECRET, EMAIL, PHONE, IP, HOST, KEEP = "secret", "email", "phone", "ip", "host", "keep"
KINDS = (SECRET, EMAIL, PHONE, IP, HOST, KEEP)

# mode name -> (extra akdiag arguments, kinds that must not be found in the bundle)
MODES: Dict[str, Tuple[Tuple[str, ...], frozenset]] = {
    "default": ((), frozenset({SECRET, EMAIL, PHONE})),
    "no-pseudonymize": (("--no-pseudonymize",), frozenset({SECRET})),
    "ips-hosts": (("--pseudonymize", "ips,hosts"), frozenset({SECRET, EMAIL, PHONE, IP, HOST})),
    "encrypt": (("--encrypt",), frozenset({SECRET, EMAIL, PHONE})),
}

_FILLER = "aB3dE5gH7jK9mN2pQ4sT6vW8xY0cF1hL"


def pad(text: str, length: int, alphabet: str = _FILLER) -> str:
    """`text` followed by filler characters up to exactly `length` characters."""
    if len(text) >= length:
        return text[:length]
    filler = (alphabet * (length // len(alphabet) + 1))
    return text + filler[: length - len(text)]


@dataclass(frozen=True)
class Item:
    marker: str
    family: str
    kind: str
    form: str       # what was planted, in a few words (the to-do list's line)
    source: str     # where on the host (relative to BASEDIR, or "process", "akd")
    needles: Tuple[str, ...]


@dataclass
class Corpus:
    items: List[Item] = field(default_factory=list)
    texts: Dict[str, List[str]] = field(default_factory=dict)
    raw: Dict[str, bytes] = field(default_factory=dict)
    processes: List[Tuple[str, Optional[str], List[str]]] = field(default_factory=list)
    akd_lines: List[str] = field(default_factory=list)
    redact_patterns: List[str] = field(default_factory=list)

    def _new(self, family: str, kind: str, form: str, source: str, needles: Sequence[str] = ()) -> Item:
        marker = f"Zq7m{len(self.items) + 1:04d}"
        item = Item(marker, family, kind, form, source, tuple(needles) or (marker,))
        self.items.append(item)
        return item

    def mark(self, family: str, form: str, source: str, kind: str = SECRET) -> str:
        """A new item whose needle is its marker; returns the marker to embed."""
        return self._new(family, kind, form, source).marker

    def literal(self, family: str, form: str, source: str, kind: str, *needles: str) -> str:
        """A new item that cannot carry a marker: `needles` are its literal values."""
        return self._new(family, kind, form, source, needles).marker

    def set_needles(self, marker: str, *needles: str) -> None:
        """Where the marker cannot be seen as such (inside base64), what can."""
        index = next(i for i, item in enumerate(self.items) if item.marker == marker)
        item = self.items[index]
        self.items[index] = Item(item.marker, item.family, item.kind, item.form, item.source, tuple(needles))

    def add(self, source: str, *lines: str) -> None:
        self.texts.setdefault(source, []).extend(lines)

    def by_marker(self) -> Dict[str, Item]:
        return {item.marker: item for item in self.items}

    def write(self, basedir: Path) -> None:
        for source, lines in self.texts.items():
            target = basedir / source
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for source, data in self.raw.items():
            target = basedir / source
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
