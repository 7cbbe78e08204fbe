"""Leaks per family on the current code: `python3 -m tests.privacy.report [--mode M ...] [--list]`.

Builds a simulated host in a temporary folder, plants the corpus, runs a real
`akdiag collect` in each mode and prints, per family, how many planted items came
through.  Run it in a PID namespace of its own when other simulated hosts may be
running (e.g. `unshare --pid --net --mount --fork --mount-proc`), like the tests."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from collector.simulate import SimulatedHost

from . import harness
from .items import KEEP, MODES

TESTS = Path(__file__).resolve().parent.parent


def _akdiag():
    sys.path.insert(0, str(TESTS))
    from conftest import akdiag  # the tests' way of running the real command line
    return akdiag


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", action="append", choices=sorted(MODES), help="default: every mode")
    parser.add_argument("--list", action="store_true", help="list every leaked item, not only the counts")
    args = parser.parse_args(argv)
    modes = args.mode or list(MODES)
    akdiag = _akdiag()
    with tempfile.TemporaryDirectory(prefix="privacy-corpus-") as tmp:
        host = SimulatedHost(Path(tmp) / "host").build()
        try:
            corpus = harness.build(host)
            results = [harness.scan(harness.collect(akdiag, host, corpus, mode, Path(tmp) / "runs"), corpus)
                       for mode in modes]
        finally:
            host.stop()
    families = Counter(item.family for item in corpus.items)
    print(f"{len(corpus.items)} planted items ({sum(1 for i in corpus.items if i.kind == KEEP)} measurements to keep)")
    print(f"{'family':<18}{'planted':>8}" + "".join(f"{m:>17}" for m in modes))
    per_mode = [Counter(corpus.by_marker()[m].family for m in r.leaks) for r in results]
    for family in sorted(families):
        print(f"{family:<18}{families[family]:>8}" + "".join(f"{c[family]:>17}" for c in per_mode))
    print(f"{'leaked in total':<26}" + "".join(f"{len(r.leaks):>17}" for r in results))
    print(f"{'measurements lost':<26}" + "".join(f"{len(r.missing_kept):>17}" for r in results))
    print(f"{'unparsable files':<26}" + "".join(f"{len(r.unparsable):>17}" for r in results))
    if args.list:
        for result in results:
            print()
            print(harness.leak_report(result, corpus))
            print(harness.kept_report(result, corpus))
            for path, error in result.unparsable:
                print(f"  does not parse: {path}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
