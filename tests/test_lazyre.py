"""Patterns compiled on first use: the same answers as re.compile, nothing compiled at import."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from collector.lazyre import LazyPattern, lazy
from conftest import REPO


def test_a_lazy_pattern_answers_as_the_compiled_one():
    text = "user=Bob password=Hunter2 PASSWORD = x"
    for pattern, flags in ((r"(?i)password\s*=\s*(\S+)", 0), (r"password", re.I), (rb"\d+", 0)):
        eager, deferred = re.compile(pattern, flags), lazy(pattern, flags)
        subject = text.encode() + b" 42" if isinstance(pattern, bytes) else text
        assert deferred.pattern == pattern and "_compiled" not in vars(deferred)  # not compiled yet
        assert [m.span() for m in deferred.finditer(subject)] == [m.span() for m in eager.finditer(subject)]
        assert deferred.sub(lambda m: m.group(0)[:1], subject) == eager.sub(lambda m: m.group(0)[:1], subject)
        assert deferred.flags == eager.flags and deferred.groups == eager.groups
        assert deferred.compiled() is deferred.compiled()


def test_many_threads_at_the_first_use():
    deferred, found = lazy(r"b+"), []
    threads = [threading.Thread(target=lambda: found.append(deferred.search("abbbc").group(0))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == ["bbb"] * 16


def test_importing_the_rules_and_analyzers_compiles_none_of_their_patterns():
    probe = ("import sys, collector.redact, collector.analyzers, collector.analyzers.logs, collector.analyzers.processes\n"
             "from collector.lazyre import LazyPattern\n"
             "mods = [m for n, m in list(sys.modules.items()) if n.startswith(('collector.redact', 'collector.analyzers'))]\n"
             "lazies = [v for m in mods for v in vars(m).values() if isinstance(v, LazyPattern)]\n"
             "print(len(lazies), sum('_compiled' in vars(v) for v in lazies))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=str(REPO), check=True)
    lazies, compiled = map(int, done.stdout.split())
    assert lazies >= 20 and compiled == 0, done.stdout
    assert isinstance(lazy("x"), LazyPattern)
