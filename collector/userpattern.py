"""Regular expressions from the user (--redact-pattern, the catalog's `redact:`), run
under a time bound.

Python's `re` cannot be interrupted: a pattern with catastrophic backtracking such as
`(\\w+\\s?)+$` holds the interpreter, the deadline and every signal handler until it
returns.  User patterns therefore run on the `regex` engine (the same syntax as `re`
for the patterns `re` accepts), which takes a `timeout=` and, with `concurrent=True`,
releases the GIL while it matches, so the other threads and the deadline go on.

Each call is bounded by PER_CALL_SECONDS (so a signal waits at most that long when a
pattern runs on the main thread), and all the user patterns of one scrubber share a
budget of BUDGET_SECONDS for their slow calls; once it is spent, each call gets
SHORT_CALL_SECONDS, and once it is spent twice over SPENT_CALL_SECONDS, which a line
of ordinary length needs a hundredth of (a pattern runs in microseconds on most
lines): the rest of the bundle is still scrubbed while a hostile line costs little,
and the user patterns' time in a run stays below 2 x BUDGET_SECONDS plus 1 ms a line.  A call that times out raises PatternTimedOut; the
scrubber withholds the line (redaction fails closed) and the pattern keeps the count,
which the run records.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

PER_CALL_SECONDS = 0.5
BUDGET_SECONDS = 3.0
SLOW_CALL_SECONDS = 0.005  # calls faster than this (nearly all: microseconds) spend no budget
SHORT_CALL_SECONDS = 0.01  # each call's bound once the budget is spent...
SPENT_CALL_SECONDS = 0.001  # ...and once it is spent twice over


class PatternTimedOut(Exception):
    """A user pattern ran out of time on a line (or its budget is spent): the line is withheld."""


def compile_error(pattern: str) -> Optional[str]:
    """Why `pattern` cannot be used (None when it compiles)."""
    import regex  # here: most runs have no user pattern, and start-up stays lean

    try:
        regex.compile(pattern)
    except (regex.error, TypeError, ValueError, OverflowError, RecursionError) as exc:
        return str(exc) or type(exc).__name__
    return None


class Budget:
    """Time shared by the user patterns of one scrubber."""

    def __init__(self, seconds: float = BUDGET_SECONDS):
        self._left = seconds
        self._lock = threading.Lock()

    def left(self) -> float:
        with self._lock:
            return self._left

    def spend(self, seconds: float) -> None:
        with self._lock:
            self._left -= seconds


class UserPattern:
    """A compiled user pattern with the `sub` that redaction rules call, bounded in time."""

    def __init__(self, source: str, budget: Optional[Budget] = None, per_call: float = PER_CALL_SECONDS):
        import regex

        self.source = source
        self._compiled = regex.compile(source)
        self._budget = budget or Budget()
        self._per_call = per_call
        self._lock = threading.Lock()
        self.timeouts = 0  # lines withheld because this pattern ran out of time

    def sub(self, repl, string: str, count: int = 0) -> str:
        limit = self._limit()
        started = time.monotonic()
        try:
            return self._compiled.sub(repl, string, count=count, timeout=limit, concurrent=True)
        except TimeoutError as exc:
            self._count_timeout()
            raise PatternTimedOut(f"the pattern ran longer than {limit:.2f} s on one line") from exc
        finally:
            spent = time.monotonic() - started
            if spent >= SLOW_CALL_SECONDS:
                self._budget.spend(spent)

    def _limit(self) -> float:
        left = self._budget.left()
        if left > 0:
            return max(min(self._per_call, left), SHORT_CALL_SECONDS)
        return SHORT_CALL_SECONDS if left > -BUDGET_SECONDS else SPENT_CALL_SECONDS

    def _count_timeout(self) -> None:
        with self._lock:
            self.timeouts += 1


def timed_out(rules) -> dict:
    """{rule name: lines withheld} for the user patterns among `rules` that ran out of time."""
    return {rule.name: rule.pattern.timeouts for rule in rules
            if isinstance(rule.pattern, UserPattern) and rule.pattern.timeouts}
