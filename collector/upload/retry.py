"""Attempts with exponential backoff: a network error or a 5xx answer is tried again after
1, 2, 4, ... seconds (30 at most between two), a bounded number of times and never
starting after RETRY_WINDOW from the first attempt; anything else ends at once."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0
RETRY_WINDOW = 600.0  # seconds from the first attempt after which no new attempt starts

T = TypeVar("T")


class UploadError(Exception):
    """A transfer that failed; `retry`: whether trying again may help (network, 5xx)."""

    retry = False


class Retryable(UploadError):
    retry = True


def with_retries(attempt: Callable[[int], T], retries: int, say: Callable[[str], None],
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """`attempt(n)` (n from 1) until it returns, raises a non-retryable UploadError, or the
    retries or the window are spent (the last error is raised then)."""
    started = time.monotonic()
    wait = FIRST_WAIT
    number = 1
    while True:
        try:
            return attempt(number)
        except UploadError as exc:
            if not exc.retry or number > retries:
                raise
            if time.monotonic() - started + wait > RETRY_WINDOW:
                raise
            say(f"{exc}; attempt {number + 1} of {retries + 1} in {wait:g} s")
            sleep(wait)
            wait = min(LONGEST_WAIT, wait * 2)
            number += 1
