"""Leaks per family on the current code: `python3 -m tests.privacy.report [--mode M ...] [--list]`.

Builds a simulated host in a temporary folder, plants the corpus, runs a real
`akdiag collect` in each mode and prints, per family, how many planted items came
through.  Run it in a PID namespace of its own when other simulated hosts may be
running (e.g. `unshare --pid --net --mount --fork --mount-proc`), like the tests."""

from __future__ import annotations

import argparse
import contextlib
import json
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


@contextlib.contextmanager
def _kept(folder: str):
    Path(folder).mkdir(parents=True, exist_ok=True)
    if any(Path(folder).iterdir()):
        raise SystemExit(f"{folder} is not empty")
    yield folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", action="append", choices=sorted(MODES), help="default: every mode")
    parser.add_argument("--list", action="store_true", help="list every leaked item, not only the counts")
    parser.add_argument("--keep", metavar="DIR", help="build the host and keep the bundles in DIR (new or empty) "
                                                      "instead of a temporary folder, to look at them")
    parser.add_argument("--write-baseline", action="store_true",
                        help=f"record what fails now in {harness.BASELINE.name} (every mode must be run)")
    parser.add_argument("--json", metavar="FILE", help="also write {mode: {marker: [files]}} of the leaks to FILE")
    args = parser.parse_args(argv)
    modes = args.mode or list(MODES)
    akdiag = _akdiag()
    with (_kept(args.keep) if args.keep else tempfile.TemporaryDirectory(prefix="privacy-corpus-")) as tmp:
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
    if harness.BASELINE.exists():
        baseline = json.loads(harness.BASELINE.read_text())
        fixed = [len(set(baseline.get(r.mode, {}).get("leaks", ()))
                     - set(harness.baseline_record([r], corpus)[r.mode]["leaks"])) for r in results]
        print(f"{'fixed since baseline':<26}" + "".join(f"{n:>17}" for n in fixed))
        print(f"{'new since baseline':<26}" + "".join(f"{len(harness.regressions(r, corpus, baseline)):>17}"
                                                      for r in results))
    if args.write_baseline:
        if set(modes) != set(MODES):
            parser.error("--write-baseline needs every mode")
        harness.BASELINE.write_text(json.dumps(harness.baseline_record(results, corpus), indent=1,
                                               ensure_ascii=False) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({r.mode: {"leaks": r.leaks, "missing_kept": r.missing_kept,
                                                        "unparsable": r.unparsable} for r in results}, indent=1))
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
