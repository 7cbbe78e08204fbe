"""A stop signal ends the run as that stop, even when its exception is turned into another
one on the way (threading's Condition.wait raises "release unlocked lock" when the signal's
exception comes between its release and its try) or swallowed by an `except`."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PRELUDE = """
import os, signal, sys, threading, time
from collector import interrupt
from collector.context import Deadline
from collector.interrupt import Interrupted
from collector.run_steps import run_bounded

def stop_myself():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler raises here
    print("the signal was not handled")
"""


def run_script(body: str) -> str:
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], cwd=REPO,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_an_exception_raised_by_the_stop_is_the_stop():
    out = run_script("""
        with interrupt.stop_on_signals():
            lock = threading.Lock()
            try:
                try:
                    stop_myself()
                finally:
                    lock.release()  # what Condition.wait's `with` does when the signal comes too early
            except BaseException as exc:
                stop = interrupt.stopped_by(exc)
                print(type(exc).__name__, stop.signum, stop.exit_status)
    """)
    assert out == "RuntimeError 15 143"


def test_an_error_without_a_stop_signal_is_an_error():
    out = run_script("""
        with interrupt.stop_on_signals():
            try:
                threading.Lock().release()
            except RuntimeError as exc:
                print(interrupt.stopped_by(exc))
    """)
    assert out == "None"


def test_a_swallowed_stop_is_raised_again_where_the_run_waits():
    out = run_script("""
        with interrupt.stop_on_signals():
            try:
                stop_myself()
            except BaseException:
                pass  # an `except` that took the stop's consequence for an error of its own
            try:
                run_bounded("the analysis", lambda: "done", Deadline(10))
                print("the run went on")
            except Interrupted as exc:
                print("stopped by", exc.name)
        print("after the block:", run_bounded("the analysis", lambda: "done", Deadline(10))[0])
    """)
    assert out.splitlines() == ["stopped by SIGTERM", "after the block: done"]
