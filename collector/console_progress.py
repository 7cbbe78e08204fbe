"""What a run says while it works, on stderr: on a terminal one self-rewriting line (steps
done of total, elapsed time, the current step); with --verbose every step on a line of its
own with its time, on a terminal or not.  Nothing at all reaches a pipe or a file unless
--verbose asks for it: the progress line is for eyes only.

It reads the run's own log messages (collector.run's ToolLog): "collecting NAME" when a
collector starts, "collected NAME: STATUS (N.N s)" when it ends, then the analysis, the
summary and the packing.  Any other message (a failure, a cut) is printed as a line."""

from __future__ import annotations

import re
import threading
import time
from typing import List, Optional, TextIO

_STARTED = re.compile(r"collecting (\S+)$")
_ENDED = re.compile(r"collected (\S+): ")
# the steps after the collectors, in order: (how the run's log names it, how the line does)
_PHASES = (("analyzing the bundle", "analyzing"), ("writing the summary", "writing the summary"),
           ("packing", "packing"))
TICK_SECONDS = 0.25


class ProgressLine:
    """Called with each message of a run; `close()` erases the line (always call it)."""

    def __init__(self, stream: TextIO, bar: bool, verbose: bool):
        self._stream = stream
        self._bar = bar and not verbose  # verbose lines and a rewritten line do not mix
        self._verbose = verbose
        self._started = time.monotonic()
        self._pending: List[str] = []
        self._collectors = 0
        self._done = 0
        self._phase: Optional[str] = None
        self._shown = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None

    # -- messages ------------------------------------------------------------------
    def __call__(self, message: str) -> None:
        with self._lock:
            step = self._note(message)
            if self._verbose:
                self._line(f"akdiag: {self._elapsed():5.1f} s  {message}")
            elif step and self._bar:
                self._draw()
                self._start_ticker()
            else:  # not a step, or no line to keep up to date (the cluster's run): as it comes
                self._line(f"akdiag: {message}")

    def _note(self, message: str) -> bool:
        """Whether the message is a step of the run (and account for it)."""
        started, ended = _STARTED.match(message), _ENDED.match(message)
        if started:
            self._pending.append(started.group(1))
            self._collectors += 1
            return True
        if ended:
            if ended.group(1) in self._pending:
                self._pending.remove(ended.group(1))
            self._done += 1
            return True
        for number, (prefix, shown) in enumerate(_PHASES):
            if message.startswith(prefix):
                self._done = self._collectors + number
                self._phase = shown
                return True
        return False

    # -- drawing -------------------------------------------------------------------
    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def status(self) -> str:
        total = self._collectors + len(_PHASES)
        current = self._phase or (f"collecting {self._pending[0]}" if self._pending else "collectors done")
        if self._pending and not self._phase and len(self._pending) > 1:
            current += f" (+{len(self._pending) - 1} running)"
        return f"akdiag: [{min(self._done, total)}/{total}] {self._elapsed():5.1f} s  {current}"

    def _draw(self) -> None:
        self._write("\r" + self.status() + "\x1b[K")
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _line(self, text: str) -> None:
        """A whole line above the progress line, which is drawn again below it."""
        shown = self._shown
        self._erase()
        self._write(text + "\n")
        if shown:
            self._draw()

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # a closed terminal: progress is never worth an error
            self._stop.set()

    def _start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="akdiag:progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                if self._shown:
                    self._draw()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(1.0)
        with self._lock:
            self._erase()
