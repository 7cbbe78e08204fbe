"""How a run ends on a signal: SIGHUP (a dropped SSH session), SIGINT (Ctrl-C), SIGTERM
(a monitoring system's timeout, systemd) and SIGQUIT all end it the same way.

The first signal kills every process group akdiag started (collector.bounded) and raises
`Interrupted` in the main thread, whose clean-up (finally blocks) closes the bundle's
writer and removes every staging and temporary file; later signals are ignored while that
clean-up runs, so that it is never cut short.  The exit status is 128 + the signal's number
(130 for Ctrl-C)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator, Optional

from collector import bounded

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGHUP", "SIGINT", "SIGTERM", "SIGQUIT")
                     if hasattr(signal, name))

_received: Optional[int] = None


class Interrupted(BaseException):
    """A stop signal: not an error of the run, so that no `except Exception` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


def _on_signal(signum, _frame) -> None:
    global _received
    if _received is not None:
        return  # the clean-up of the first one is running: let it finish
    _received = signum
    bounded.stop_children()
    raise Interrupted(signum)


def received() -> Optional[int]:
    return _received


def stopped_by(exc: BaseException) -> Optional[Interrupted]:
    """The stop behind `exc`, or None when no stop signal came.  The handler raises at any
    point of the main thread, even inside a lock's bookkeeping (threading's Condition.wait
    then fails with "release unlocked lock"): whatever propagates after a stop signal is its
    consequence, and ends the run as that stop."""
    if isinstance(exc, Interrupted):
        return exc
    if _received is None:
        return None
    stop = Interrupted(_received)
    stop.__context__ = exc
    return stop


def finish_if_stopped(exc: BaseException, message: str) -> Optional[int]:
    """finish() when a stop is behind `exc` (stopped_by): the exit status; else None, and the
    caller handles `exc` as its own."""
    stop = stopped_by(exc)
    return None if stop is None else finish(stop, message)


def checkpoint() -> None:
    """Raise the stop again where the main thread waits for work: its first raise may have
    been turned into another exception (see stopped_by) and swallowed by an `except`."""
    if _received is not None and threading.current_thread() is threading.main_thread():
        raise Interrupted(_received)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Handle the stop signals while the block runs (main thread only; elsewhere a no-op)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received = None  # a new command (the same process may run several: tests, a library user)
    bounded.allow_children()
    previous = {}
    for signum in STOP_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, _on_signal)
        except (OSError, ValueError):
            continue
    try:
        yield
    finally:
        _received = None  # what comes after the block is not stopped by its signal (see checkpoint)
        for signum, handler in previous.items():
            try:
                signal.signal(signum, handler)
            except (OSError, ValueError):
                pass


def finish(exc: Interrupted, message: str) -> int:
    """After the clean-up: reap what is left, say why the run ended (the terminal may be gone
    with the session: nothing is written then), and give the exit status."""
    bounded.stop_children()
    bounded.reap_children()
    say(f"akdiag: interrupted by {exc.name}: {message}")
    _forget_unwritable_streams()
    return exc.exit_status


def say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _forget_unwritable_streams() -> None:
    """A hung-up terminal fails the final flush, and Python would exit 120 instead."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            setattr(sys, name, None)  # Python skips a None stream at exit; print() and click.echo do too
