"""A one-line progress bar on stderr, drawn only when stderr is a terminal (a log file or
a pipe gets the start and end lines only), redrawn at most a few times a second."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from collector.units import format_size

_REDRAW_EVERY = 0.2  # seconds
_WIDTH = 24


class Progress:
    def __init__(self, name: str, total: int, stream: Optional[TextIO] = None, enabled: Optional[bool] = None):
        self.name = name
        self.total = max(0, total)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.sent = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    def restart(self) -> None:
        """A new attempt sends the file from its start."""
        self.sent = 0
        self._started = time.monotonic()

    def advance(self, count: int) -> None:
        self.sent += count
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at >= _REDRAW_EVERY or self.sent >= self.total):
            self._drawn_at = now
            self._draw(now)

    def line(self, now: Optional[float] = None) -> str:
        fraction = min(1.0, self.sent / self.total) if self.total else 1.0
        filled = int(round(fraction * _WIDTH))
        elapsed = max(1e-6, (now or time.monotonic()) - self._started)
        rate = self.sent / elapsed
        return (f"{self.name} [{'#' * filled}{'.' * (_WIDTH - filled)}] {fraction * 100:3.0f}% "
                f"{format_size(self.sent)} / {format_size(self.total)} {format_size(rate)}/s")

    def _draw(self, now: float) -> None:
        try:
            self.stream.write("\r" + self.line(now) + "\033[K")
            self.stream.flush()
            self._drawn = True
        except (OSError, ValueError):  # the terminal went away: no more drawing
            self.enabled = False

    def close(self) -> None:
        """Ends the bar's line, so the next message starts on a line of its own."""
        if self._drawn:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._drawn = False


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
