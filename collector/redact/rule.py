"""The mask, the Rule record and the small helpers rules share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Union

MASK = "<redacted>"
HTML_MASK = "&lt;redacted&gt;"  # the mask once a report (or XML) has escaped it
WITHHELD = "[akdiag: line withheld: redaction failed on it]"
CUT_MARK = "[cut]"

Replacement = Union[str, Callable[["re.Match[str]"], str]]
# a scanning rule: (line, the file's scrubber) -> (line, {rule name: replacements})
Scan = Callable[[str, Any], Tuple[str, Dict[str, int]]]


@dataclass(frozen=True)
class Rule:
    """A named redaction: `pattern` matches, `replace` gives the replacement text (a
    string or a function of the match; returning the match unchanged means no-op).
    `prefilter`: lower-case substrings one of which a line must hold, or else one of
    `prefilter_re`: bytes patterns for rules with no fixed text (each starting with a
    literal, for the regex engine to scan a whole file fast).  `scan`: a
    rule that is more than one substitution (key/value pairs, multi-line values): it
    gets the line and the file's scrubber, whose state carries values over lines."""

    name: str
    prefilter: Tuple[str, ...]
    pattern: Optional["re.Pattern[str]"]
    replace: Replacement = MASK
    prefilter_re: Tuple["re.Pattern[bytes]", ...] = ()
    scan: Optional[Scan] = None

    def applies(self, lowered: str, line: Optional[str] = None) -> bool:
        if any(token in lowered for token in self.prefilter):
            return True
        if self.prefilter_re:
            raw = (lowered if line is None else line).encode("utf-8", "surrogateescape")
            return any(pattern.search(raw) for pattern in self.prefilter_re)
        return False

    def apply(self, line: str) -> Tuple[str, int]:
        """The line with every match replaced, and how many matches changed."""
        changed = 0

        def substitute(match: "re.Match[str]") -> str:
            nonlocal changed
            new = self.replace if isinstance(self.replace, str) else self.replace(match)
            if new != match.group(0):
                changed += 1
            return new

        return self.pattern.sub(substitute, line), changed

    def run(self, line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
        if self.scan is not None:
            return self.scan(line, file_scrubber)
        line, changed = self.apply(line)
        return line, ({self.name: changed} if changed else {})


def masked(value: Optional[str]) -> bool:
    """Already masked: scrubbing again (an HTML page made of scrubbed files) changes nothing."""
    return value is not None and (MASK in value or HTML_MASK in value)


def splice(match: "re.Match[str]", group: int, text: str) -> str:
    whole = match.group(0)
    start, end = match.span(group)
    offset = match.start(0)
    return whole[: start - offset] + text + whole[end - offset:]


def mask_group(group: int, mask: str = MASK) -> Callable[["re.Match[str]"], str]:
    """Replace capture group `group` by the mask, keeping the rest of the match."""

    def replace(match: "re.Match[str]") -> str:
        value = match.group(group)
        if not value or masked(value):
            return match.group(0)
        return splice(match, group, mask)

    return replace


def add_count(counts: Dict[str, int], name: str, n: int = 1) -> None:
    counts[name] = counts.get(name, 0) + n
