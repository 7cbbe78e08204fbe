"""Many logs failing on the same message in the same minute: one finding, not one per log.

A message is a failing line's text without its time stamp, level word and bracketed
tags (`[api]`, `<0.12.0>`), with numbers and ids replaced (`{n}`, `{id}`: no angle
brackets, which a page escapes) but network addresses kept (`127.0.0.1:27017`,
`[::1]:6666`, `mongo1:27017`): "dial tcp 127.0.0.1:27017: connect: connection refused
(attempt 3)" from 31 logs is one message.
When FOLD_AT or more logs write it in one UTC minute, `log.same_error` names it once with
the logs as evidence, and replaces those logs' own findings of that message."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

from collector.analyzers.findings import WARNING, Finding
from collector.analyzers.logscan import Line
from collector.analyzers.logtime import HostClock, line_time
from collector.live import iso_utc
from collector.lazyre import lazy

FOLD_AT = 3  # logs sharing a message within one minute
MESSAGE_LIMIT = 160
MAX_MESSAGES_PER_LOG = 500  # distinct messages remembered per log (the rest are counted only)
EVIDENCE_LOGS = 50

_PREFIX = lazy(
    r"^(?:\s*(?:\[[^\]]{0,40}\]|<[^>\s]{0,20}>|\{[^}]{0,40}\}|-|:|"
    r"(?:ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC|EMERG|ALERT|WARN|WARNING|INFO|"
    r"(?:level|lvl|severity)=\"?\w+\"?)\b:?))+\s*", re.I)
# One pass: an address is kept whole (tried first at each place), an id or a number replaced.
_TOKEN = lazy(r"(?P<a>\[[0-9A-Fa-f:.]+\](?::\d{1,5})?|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"
                    r"|\b[A-Za-z][\w.-]*:\d{2,5}\b)"
                    r"|(?P<i>\b[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\b"
                    r"|\b(?=[0-9A-Fa-f]*\d)[0-9A-Fa-f]{8,}\b)"
                    r"|(?P<n>\d+(?:\.\d+)?)")
_REPLACEMENT = {"i": "{id}", "n": "{n}"}
_DIGITS = frozenset("0123456789")


def _token(match) -> str:
    return _REPLACEMENT.get(match.lastgroup) or match.group()


def normalize(message: str) -> str:
    """The message with ids and numbers replaced, addresses kept, spaces collapsed.
    Only the words holding a digit go through the expression (the cost is per line)."""
    return " ".join(word if _DIGITS.isdisjoint(word) else _TOKEN.sub(_token, word)
                    for word in message.split())[:MESSAGE_LIMIT]


def line_message(line: Line, data: bytes, clock: HostClock):
    """(UTC time or None, the line's text after its stamp)."""
    moment, end = line_time(data, line.offset, clock)
    return moment, line.text[end - line.offset:].strip() if end > line.offset else line.text.strip()


@dataclass
class Seen:
    """One message in one log."""
    kinds: Set[str] = field(default_factory=set)  # 'refused', 'error'
    count: int = 0
    minutes: Dict[int, float] = field(default_factory=dict)  # minute -> first time in it
    first_line: int = 0


@dataclass
class LogMessages:
    subject: str
    relpath: str
    messages: Dict[str, Seen] = field(default_factory=dict)
    unplaced: Set[str] = field(default_factory=set)  # kinds of lines no group can speak for (no time)
    _keys: Dict[str, str] = field(default_factory=dict, repr=False)  # a line's text -> its message (repeats)

    def add(self, line: Line, data: bytes, clock: HostClock, kinds: Set[str]) -> Optional[float]:
        """Count the line under its message; its UTC time (None: it has no stamp)."""
        moment, text = line_message(line, data, clock)
        key = self._keys.get(text) if moment is not None else ""
        if key is None:
            key = normalize(_PREFIX.sub("", text))
            if len(self._keys) < MAX_MESSAGES_PER_LOG * 20:
                self._keys[text] = key
        if not key or (key not in self.messages and len(self.messages) >= MAX_MESSAGES_PER_LOG):
            self.unplaced |= kinds
            return moment
        seen = self.messages.setdefault(key, Seen(first_line=line.number))
        seen.kinds |= kinds
        seen.count += 1
        seen.minutes.setdefault(int(moment // 60), moment)
        return moment


@dataclass
class Group:
    message: str
    logs: List[LogMessages]
    since: float
    minute_peak: int  # the most logs in one minute

    def finding(self) -> Finding:
        evidence = [{"log": log.subject, "file": log.relpath, "lines": log.messages[self.message].count,
                     "first_line": log.messages[self.message].first_line} for log in self.logs[:EVIDENCE_LOGS]]
        lines = sum(log.messages[self.message].count for log in self.logs)
        return Finding(
            "log.same_error", WARNING, self.message,
            f"{len(self.logs)} logs report '{self.message}' from {iso_utc(self.since)[11:19]} UTC "
            f"({lines} lines; up to {self.minute_peak} logs in one minute)", self.logs[0].relpath,
            {"message": self.message, "logs": len(self.logs), "lines": lines, "since": iso_utc(self.since),
             "minute_peak": self.minute_peak, "evidence_logs": evidence, "fold_at": FOLD_AT,
             "more_logs": max(0, len(self.logs) - EVIDENCE_LOGS)},
            "One cause behind many processes: fix what the message names (often a datastore the platform "
            "cannot reach: see the datastores section) rather than each process.")


def groups_of(logs: List[LogMessages]) -> List[Group]:
    """The messages FOLD_AT or more logs share within one minute, most logs first."""
    by_minute: Dict[str, Dict[int, List[LogMessages]]] = {}
    for log in logs:
        for key, seen in log.messages.items():
            for minute in seen.minutes:
                by_minute.setdefault(key, {}).setdefault(minute, []).append(log)
    groups = []
    for key, minutes in by_minute.items():
        shared = sorted(minute for minute, members in minutes.items() if len(members) >= FOLD_AT)
        if not shared:
            continue
        members: Dict[str, LogMessages] = {}
        for minute in shared:
            members.update((log.subject, log) for log in minutes[minute])
        since = min(log.messages[key].minutes[shared[0]] for log in minutes[shared[0]])
        ordered = sorted(members.values(), key=lambda log: log.subject)
        groups.append(Group(key, ordered, since, max(len(minutes[m]) for m in shared)))
    return sorted(groups, key=lambda g: (-len(g.logs), g.since, g.message))


def folded(groups: List[Group]) -> Dict[str, Set[str]]:
    """{log subject: the messages a group speaks for}."""
    covered: Dict[str, Set[str]] = {}
    for group in groups:
        for log in group.logs:
            covered.setdefault(log.subject, set()).add(group.message)
    return covered


def fully_covered(log: LogMessages, messages: Optional[Set[str]], kind: str) -> bool:
    """Every line of `kind` in the log belongs to a folded message."""
    if not messages or kind in log.unplaced:
        return False
    keys = [key for key, seen in log.messages.items() if kind in seen.kinds]
    return bool(keys) and all(key in messages for key in keys)
