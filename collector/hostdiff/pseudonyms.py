"""Pseudonyms (a per-bundle key) in the compared values, and pairing the names two bundles use."""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar

# collector.redact.Pseudonymizer.token: "<kind>-<first 12 hex digits of an HMAC>", with a
# random key per bundle, so one value has a different token in every bundle
PSEUDONYM = re.compile(r"\b(email|phone|ip|host)-[0-9a-f]{12}\b")


def is_pseudonym(value: Any) -> bool:
    """A value that is one pseudonym token as a whole (a pseudonymized host name)."""
    return isinstance(value, str) and PSEUDONYM.fullmatch(value) is not None


def _without_pseudonyms(value: Any) -> Any:
    """The value with each pseudonym token reduced to its kind, so that two bundles'
    values that differ only by their (per-bundle) pseudonyms become equal."""
    if isinstance(value, str):
        return PSEUDONYM.sub(lambda match: f"{match.group(1)}-?", value)
    if isinstance(value, (list, tuple)):
        return type(value)(_without_pseudonyms(item) for item in value)
    if isinstance(value, dict):
        return {_without_pseudonyms(k): _without_pseudonyms(v) for k, v in value.items()}
    return value


def only_pseudonyms_differ(old: Any, new: Any) -> bool:
    return old != new and _without_pseudonyms(old) == _without_pseudonyms(new)


def pseudonymized_note(count: int, one: str, many: str) -> str:
    """E.g. "3 configuration values are pseudonymized with a per-bundle key: cannot tell
    whether they changed"."""
    if count == 1:
        return f"1 {one} is pseudonymized with a per-bundle key: cannot tell whether it changed"
    return f"{count} {many} are pseudonymized with a per-bundle key: cannot tell whether they changed"


def pair_names(before: Iterable, after: Iterable) -> Tuple[List[tuple], int]:
    """Pairs (old name, new name) of the things two bundles name: the same name, else the
    same name once its pseudonyms are left out (None for a name of one side only); and
    how many names could not be paired: several names of a side that look alike without
    their pseudonyms, facing some on the other side."""
    before, after = set(before), set(after)
    pairs = [(name, name) for name in before & after]
    alike: Dict[Any, Tuple[list, list]] = {}
    for side, names in ((0, before - after), (1, after - before)):
        for name in names:
            alike.setdefault(_without_pseudonyms(name), ([], []))[side].append(name)
    unpaired = 0
    for olds, news in alike.values():
        if olds and news and len(olds) + len(news) > 2:
            unpaired += max(len(olds), len(news))
        elif olds and news:
            pairs.append((olds[0], news[0]))
        else:
            pairs += [(name, None) for name in olds] + [(None, name) for name in news]
    return pairs, unpaired


def either(pair: tuple) -> Any:
    """The new name of a pair, else the old one."""
    return pair[0] if pair[1] is None else pair[1]


T = TypeVar("T")


def compare_pairs(a: Dict[Any, Any], b: Dict[Any, Any], only_pseudonyms: Callable[[tuple, tuple], bool],
                  change_of: Callable[[tuple, tuple], Optional[T]]) -> Tuple[List[T], int]:
    """The changes between two bundles' named values (`change_of(names, values)`, None for
    none), by name pairs in order; and how many could not be compared: names that could
    not be paired, and pairs in which `only_pseudonyms(names, values)`."""
    pairs, pseudonymized = pair_names(a, b)
    changes = []
    for names in sorted(pairs, key=lambda pair: str(either(pair))):
        values = (a.get(names[0]), b.get(names[1]))
        if only_pseudonyms(names, values):
            pseudonymized += 1
            continue
        change = change_of(names, values)
        if change is not None:
            changes.append(change)
    return changes, pseudonymized
