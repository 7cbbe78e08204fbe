"""What makes `akdiag watch` take a full bundle: an ordered list of small named triggers,
judged on each new sample against the one before it (collector.history's sample shape).
The first trigger that fires names the bundle (`watch-<id>`).

    critical                          a critical finding that was not in the previous sample
                                      (the default when no --on is given)
    process.down                      a finding with this id (critical or warning) that was
                                      not in the previous sample; any finding id
    queue:oxy_triggers>10000 for 10m  RabbitMQ queue's messages above 10000 in every sample
                                      of the last 10 minutes
    memory:api>2G for 5m              the process's resident memory (all its PIDs) above 2 GiB
                                      for 5 minutes; sizes as 512M, 2G, 1.5GiB

`for DURATION` may be left out (over the limit in one sample is enough).  A threshold fires
once per episode: it must go back under its limit (or have no data) before it fires again.
A finding is "new" by its id and subject; the first sample of a run is the baseline, so
what is already wrong when watch starts does not fire."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

from collector.plain import as_dict, dicts, number
from collector.units import BadUnit, format_duration, format_size, parse_duration, parse_size

CRITICAL = "critical"
THRESHOLD_KINDS = ("queue", "memory")
_FINDING_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_THRESHOLD = re.compile(r"^(?P<kind>[a-z]+):(?P<name>[^\s>]+)\s*>\s*(?P<limit>[^\s]+)"
                        r"(?:\s+for\s+(?P<hold>\S+))?$")


class BadTrigger(ValueError):
    """A --on value that cannot be read; its message says what is expected."""


@dataclass(frozen=True)
class Trigger:
    spec: str  # as the administrator wrote it
    kind: str  # "critical", "finding", "queue" or "memory"
    name: str = ""  # the finding id, the queue or the catalog process
    limit: float = 0.0
    hold: float = 0.0  # seconds the threshold must hold

    @property
    def label_id(self) -> str:
        """What the bundle's name carries for a threshold (a finding trigger names the finding)."""
        return f"{self.kind}-{self.name}"

    def describe(self) -> str:
        if self.kind == CRITICAL:
            return "a new critical finding"
        if self.kind == "finding":
            return f"a new {self.name} finding"
        shown = format_size(self.limit) if self.kind == "memory" else f"{self.limit:g} messages"
        held = f" for {format_duration(self.hold)}" if self.hold else ""
        return f"{self.kind} of {self.name} above {shown}{held}"


@dataclass(frozen=True)
class Fired:
    trigger: Trigger
    label_id: str  # e.g. process.down, queue-oxy_triggers
    reason: str  # one line for the log


def parse_triggers(values: Sequence[str]) -> List[Trigger]:
    """--on's values (repeatable, each a comma-separated list), in order; none: the default."""
    words = [word.strip() for value in values for word in str(value).split(",")]
    if any(not word for word in words):
        raise BadTrigger("an empty trigger (a stray comma?)")
    triggers = [parse_trigger(word) for word in words] or [Trigger(CRITICAL, CRITICAL)]
    seen: Set[str] = set()
    return [t for t in triggers if not (t.spec in seen or seen.add(t.spec))]


def parse_trigger(text: str) -> Trigger:
    text = " ".join(text.split())
    if text == CRITICAL:
        return Trigger(CRITICAL, CRITICAL)
    if ":" not in text and ">" not in text:
        if not _FINDING_ID.match(text):
            raise BadTrigger(f"{text!r} is not a finding id (e.g. process.down), 'critical', or a threshold "
                             "(e.g. 'queue:oxy_triggers>10000 for 10m', 'memory:api>2G for 5m')")
        return Trigger(text, "finding", text)
    match = _THRESHOLD.match(text)
    if not match:
        raise BadTrigger(f"{text!r} is not a threshold: write KIND:NAME>LIMIT [for DURATION], "
                         "e.g. 'queue:oxy_triggers>10000 for 10m' or 'memory:api>2G for 5m'")
    kind = match.group("kind")
    if kind not in THRESHOLD_KINDS:
        raise BadTrigger(f"{text!r}: {kind!r} is not a threshold kind (known: {', '.join(THRESHOLD_KINDS)})")
    try:
        limit = _limit(kind, match.group("limit"))
        hold = parse_duration(match.group("hold")) if match.group("hold") else 0.0
    except BadUnit as exc:
        raise BadTrigger(f"{text!r}: {exc}") from exc
    return Trigger(text, kind, match.group("name"), limit, hold)


def _limit(kind: str, text: str) -> float:
    if kind == "memory":
        return float(parse_size(text))
    if not text.isdigit():
        raise BadUnit(f"{text!r} is not a count of messages (a whole number, e.g. 10000)")
    return float(text)


def threshold_value(trigger: Trigger, sample: dict) -> Optional[float]:
    """The sample's figure a threshold looks at, or None (no data)."""
    if trigger.kind == "queue":
        return number(as_dict(sample.get("queues")).get(trigger.name))
    if trigger.kind == "memory":
        return number(as_dict(as_dict(sample.get("processes")).get(trigger.name)).get("rss"))
    return None


def _finding_keys(sample: Optional[dict]) -> List[Tuple[str, str, str]]:
    """(id, subject, severity) of the sample's findings, in the analyzers' order (a cause,
    e.g. process.down, before what follows from it)."""
    return [(str(f.get("id")), str(f.get("subject")), str(f.get("severity")))
            for f in dicts(as_dict(sample).get("findings"))]


class TriggerJudge:
    """The triggers with what they remember between samples (when each threshold started
    to hold, whether it already fired in this episode)."""

    def __init__(self, triggers: Sequence[Trigger]):
        self.triggers = list(triggers)
        self._since: Dict[int, float] = {}
        self._fired: Set[int] = set()

    def judge(self, previous: Optional[dict], sample: dict) -> Optional[Fired]:
        """The first trigger that fires on `sample`; every threshold's streak is kept up to
        date even when an earlier trigger fires."""
        fired = [self._one(index, trigger, previous, sample) for index, trigger in enumerate(self.triggers)]
        return next((f for f in fired if f is not None), None)

    def _one(self, index: int, trigger: Trigger, previous: Optional[dict], sample: dict) -> Optional[Fired]:
        if trigger.kind in (CRITICAL, "finding"):
            return _new_finding(trigger, previous, sample)
        value, when = threshold_value(trigger, sample), number(sample.get("t")) or 0.0
        if value is None or value <= trigger.limit:
            self._since.pop(index, None)
            self._fired.discard(index)
            return None
        since = self._since.setdefault(index, when)
        if index in self._fired or when - since < trigger.hold:
            return None
        self._fired.add(index)
        shown = format_size(value) if trigger.kind == "memory" else f"{value:g} messages"
        return Fired(trigger, trigger.label_id, f"{trigger.describe()}: now {shown}")


def _new_finding(trigger: Trigger, previous: Optional[dict], sample: dict) -> Optional[Fired]:
    if previous is None:
        return None  # the first sample is the baseline
    before = {(fid, subject) for fid, subject, _severity in _finding_keys(previous)}
    for fid, subject, severity in _finding_keys(sample):
        wanted = severity == CRITICAL if trigger.kind == CRITICAL else fid == trigger.name
        if wanted and (fid, subject) not in before:
            return Fired(trigger, fid, f"new {severity} finding {fid} ({subject})")
    return None
