"""Plant the corpus on a simulated host, run a real `akdiag collect` in each mode,
extract the archive with the stock 7z, and grep every file (and every file name) for
every item's needles."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

from collector.simulate.host import AKD_SCRIPT

from . import plant_commands, plant_config, plant_logs, plant_tokens
from .bundlecheck import unparsable_files
from .items import KEEP, MODES, Corpus, Item

ARCHIVE_PASSWORD = "corpus archive password 7z"
TOOLS_DIR = "/opt/tools/bin"
_MARKER = re.compile(r"zq7m\d{4}")


def build(host) -> Corpus:
    """Plant every item on `host` (a built SimulatedHost) and start its processes."""
    corpus = Corpus()
    plant_logs.plant(corpus)
    plant_config.plant(corpus, host.basedir)
    plant_commands.plant(corpus)
    corpus.write(host.basedir)
    (host.basedir / "akd").write_text(AKD_SCRIPT.replace("{version}", host.platform_version)
                                      + plant_commands.akd_script(corpus.akd_lines))
    for title, argv0, words in corpus.processes:
        if argv0 is None:  # a platform process: AK:<binary>
            host.start_extra(title[3:], title=title, extra_args=words)
        else:  # a tool beside the platform (no port of its own); argv[0] is a path that
            # does not exist, so that the interpreter behind it never looks for a standard
            # library beside a real program of that name
            host.start_extra("procactions", title=argv0, argv0=f"{TOOLS_DIR}/{argv0}", extra_args=words)
    return corpus


@dataclass
class ModeResult:
    mode: str
    bundle: Path
    root: Path
    leaks: Dict[str, List[str]] = field(default_factory=dict)   # marker -> files it was found in
    missing_kept: List[str] = field(default_factory=list)      # markers of measurements not found
    unparsable: List[tuple] = field(default_factory=list)


def collect(akdiag: Callable, host, corpus: Corpus, mode: str, workdir: Path) -> ModeResult:
    extra, _kinds = MODES[mode]
    out = workdir / mode
    out.mkdir(parents=True)
    argv = ["collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file), "--output", str(out),
            "--log-lines", str(plant_tokens.TAIL_LINES), "--quiet", *extra]
    for pattern in corpus.redact_patterns:
        argv += ["--redact-pattern", pattern]
    password = None
    if mode == "encrypt":
        password = ARCHIVE_PASSWORD
        (workdir / "password").write_text(password + "\n")
        argv += ["--password-file", str(workdir / "password")]
    done = akdiag(*argv, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"akdiag collect ({mode}) exited {done.returncode}: {done.stderr[-2000:]}")
    bundle = Path(done.stdout.strip().splitlines()[-1])
    root = extract(bundle, workdir / f"{mode}-x", password)
    return ModeResult(mode, bundle, root)


def extract(bundle: Path, target: Path, password: str = None) -> Path:
    argv = ["7z", "x", "-y", f"-o{target}", str(bundle)] + ([f"-p{password}"] if password else [])
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"7z could not extract {bundle.name}: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    (root,) = [p for p in target.iterdir() if p.is_dir()]
    return root


def _texts(result: ModeResult):
    """(name shown in the report, lower-cased searchable text) of every file and name."""
    yield "<archive name>", f"{result.bundle.name}\n{result.root.name}".lower()
    for path in sorted(result.root.rglob("*")):
        rel = path.relative_to(result.root).as_posix()
        yield f"<name> {rel}", rel.lower()
        if not path.is_file():
            continue
        data = path.read_bytes()
        text = data.decode("utf-8", "replace")
        if b"\x00" in data:  # UTF-16 kept as it was: its ASCII reads without the zero bytes
            text += "\n" + data.replace(b"\x00", b"").decode("utf-8", "replace")
        yield rel, text.lower()


def scan(result: ModeResult, corpus: Corpus) -> ModeResult:
    forbidden = MODES[result.mode][1]
    items = corpus.by_marker()
    literal = [item for item in corpus.items if item.needles != (item.marker,)]
    found: Dict[str, set] = defaultdict(set)
    for name, text in _texts(result):
        for marker in set(_MARKER.findall(text)):
            found[marker].add(name)
        for item in literal:
            if any(needle.lower() in text for needle in item.needles):
                found[item.marker.lower()].add(name)
    for marker_lower, names in found.items():
        item = items.get(marker_lower[:4].capitalize() + marker_lower[4:])
        if item is not None and item.kind in forbidden:
            result.leaks[item.marker] = sorted(names)
    result.missing_kept = [i.marker for i in corpus.items if i.kind == KEEP and i.marker.lower() not in found]
    result.unparsable = unparsable_files(result.root)
    return result


def describe(item: Item) -> str:
    return f"{item.marker} [{item.family}] {item.form} (planted in {item.source})"


def leak_report(result: ModeResult, corpus: Corpus) -> str:
    """The to-do list: every leaked item, grouped by family, with the files it reached."""
    items = corpus.by_marker()
    by_family: Dict[str, List[str]] = defaultdict(list)
    for marker, names in sorted(result.leaks.items()):
        item = items[marker]
        shown = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
        by_family[item.family].append(f"    {describe(item)} -> {shown}")
    lines = [f"{len(result.leaks)} planted items leaked in mode {result.mode!r} (to see a planted line and the "
             "bundle: `python3 -m tests.privacy.report --keep DIR`, then grep DIR for the marker):"]
    for family in sorted(by_family):
        lines.append(f"  {family}: {len(by_family[family])}")
        lines.extend(by_family[family])
    return "\n".join(lines)


def kept_report(result: ModeResult, corpus: Corpus) -> str:
    items = corpus.by_marker()
    return "\n".join([f"{len(result.missing_kept)} measurements not kept in mode {result.mode!r}:"]
                     + [f"  {describe(items[m])}: {items[m].needles[0]!r} not found" for m in result.missing_kept])


# -- the ratchet: what leaked when the baseline was written ---------------------------------

BASELINE = Path(__file__).with_name("known_leaks.json")


def item_key(item: Item) -> str:
    """An item's name that survives renumbering: family, form and where it was planted."""
    return f"{item.family} | {item.form} | {item.source}"


def baseline_record(results: List[ModeResult], corpus: Corpus) -> dict:
    items = corpus.by_marker()
    return {r.mode: {"leaks": sorted(item_key(items[m]) for m in r.leaks),
                     "missing_kept": sorted(item_key(items[m]) for m in r.missing_kept),
                     "unparsable": sorted(path for path, _error in r.unparsable)} for r in results}


def regressions(result: ModeResult, corpus: Corpus, baseline: dict) -> List[str]:
    """What fails now that did not fail when the baseline was written."""
    known = baseline.get(result.mode, {})
    now = baseline_record([result], corpus)[result.mode]
    return [f"{what}: {key}" for what in ("leaks", "missing_kept", "unparsable")
            for key in now[what] if key not in set(known.get(what, ()))]
