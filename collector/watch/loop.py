"""`akdiag watch`'s loop: every interval a light sample appended to the history ring;
when a trigger fires, a full bundle (collector.run.collect) into the output folder, at
most one per cooldown, the folder kept within --keep and --max-disk.

It never ends by itself: a stop signal (collector.interrupt) raises Interrupted wherever
the main thread is (asleep between samples, sampling, taking a bundle), and each step's
clean-up removes what it had started.  Nothing that goes wrong in a sample or a bundle
ends the loop: it is logged (once while it lasts) and the next interval comes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from collector import interrupt
from collector.catalog import Catalog
from collector.history import DEFAULT_KEEP_SECONDS, DEFAULT_MAX_BYTES, HistoryError, HistoryRing, history_folder
from collector.live import iso_utc, path_inside
from collector.units import format_duration, format_size
from collector.heap import limit_arenas, release_memory
from collector.watch.sampler import take_sample
from collector.watch.shelf import BundleShelf, is_disk_full
from collector.watch.triggers import Fired, Trigger, TriggerJudge

GIB = 1024 ** 3


class WatchRefused(Exception):
    """watch cannot start (its output or history folder inside BASEDIR, an output folder
    that cannot be made); `exit_code` is the console's (2 bad input, 3 output)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class WatchSettings:
    basedir: Path
    basedir_source: str
    catalog: Catalog
    output_dir: Path
    triggers: List[Trigger]
    interval: float = 30.0
    cooldown: float = 900.0
    keep: int = 10
    max_disk: int = 2 * GIB
    min_free: int = GIB // 2
    history_keep: float = DEFAULT_KEEP_SECONDS
    history_size: int = DEFAULT_MAX_BYTES
    fmt: str = "7z"
    bundle_timeout: float = 300.0
    datastore_timeout: float = 1.0
    skip: tuple = ()
    command_line: str = "akdiag watch"
    history_root: Optional[Path] = field(default=None)  # the state folder (default: collector.state's)


def log_line(message: str) -> None:
    """One event, one line on stderr (the journal under systemd)."""
    interrupt.say(f"akdiag watch: {iso_utc(time.time())} {message}")


def prepare(settings: WatchSettings) -> None:
    """Refuse what watch must never do, before its first sample: write under BASEDIR."""
    basedir, output = settings.basedir, settings.output_dir
    if path_inside(output, basedir):
        raise WatchRefused(f"output folder {output} is inside BASEDIR {basedir}, where akdiag never writes: "
                           "choose another with --output (e.g. /var/lib/akdiag/bundles)", 2)
    history = history_folder(basedir, settings.history_root)
    if path_inside(history, basedir):
        raise WatchRefused(f"akdiag's state folder ({history.parent.parent}) is inside BASEDIR {basedir}: "
                           "set AKDIAG_STATE_DIR to a folder outside it", 2)
    try:
        output.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise WatchRefused(f"cannot create the output folder {output}: {exc.strerror or exc}", 3) from exc
    if not output.is_dir():
        raise WatchRefused(f"output folder {output} is not a folder", 3)


class Watch:
    def __init__(self, settings: WatchSettings, say: Callable[[str], None] = log_line):
        self.settings = settings
        self.say = say
        self.ring = HistoryRing(history_folder(settings.basedir, settings.history_root), settings.history_size,
                                settings.history_keep, basedir=settings.basedir)
        self.shelf = BundleShelf(settings.output_dir, settings.keep, settings.max_disk, settings.min_free)
        self.judge = TriggerJudge(settings.triggers)
        self.previous: Optional[dict] = None
        self.last_bundle_at: Optional[float] = None  # monotonic
        self.samples = 0
        self.bundles = 0
        self._problems: Dict[str, str] = {}

    def run(self) -> None:
        """Sample every interval until a stop signal ends it (Interrupted propagates)."""
        self.say(self._start_line())
        limit_arenas()
        next_at = time.monotonic()
        while True:
            self.step()
            next_at += self.settings.interval
            now = time.monotonic()
            if next_at < now:  # a sample or a bundle took longer than the interval: no catching up
                next_at = now
            time.sleep(next_at - now)  # a stop signal ends the sleep at once

    def _start_line(self) -> str:
        s = self.settings
        return (f"watching BASEDIR {s.basedir} ({s.basedir_source}) every {format_duration(s.interval)}; "
                f"triggers: {'; '.join(t.describe() for t in s.triggers)}; bundles ({s.fmt}) into {s.output_dir} "
                f"(at most one per {format_duration(s.cooldown)}, keep {s.keep}, {format_size(s.max_disk)}); "
                f"history in {self.ring.folder} ({format_duration(s.history_keep)}, "
                f"{format_size(s.history_size)})")

    def step(self) -> Optional[Fired]:
        """One sample, kept in the ring and judged; the trigger that fired, if any.  The
        memory it freed is given back (a long-running watch stays flat)."""
        try:
            return self._step()
        finally:
            release_memory()

    def _step(self) -> Optional[Fired]:
        sample = self._sample()
        if sample is None:
            return None
        self.samples += 1
        self._keep(sample)
        previous, self.previous = self.previous, sample
        fired = self.judge.judge(previous, sample)
        if fired is not None:
            self._on_fired(fired)
        return fired

    def _sample(self) -> Optional[dict]:
        s = self.settings
        try:
            sample, result = take_sample(s.basedir, s.basedir_source, s.catalog, s.interval, s.datastore_timeout,
                                         s.skip)
        except Exception as exc:  # a sample that fails is logged; the next interval tries again
            interrupt.checkpoint()
            self._problem("sample", f"sample failed: {type(exc).__name__}: {exc}")
            return None
        if result.reasons:
            self._problem("sample", f"sample could not check everything: {'; '.join(result.reasons)}")
        else:
            self._solved("sample", "samples check everything again")
        return sample

    def _keep(self, sample: dict) -> None:
        try:
            self.ring.append(sample)
        except HistoryError as exc:
            self._problem("history", f"history not kept: {exc}")
            return
        self._solved("history", f"history kept again in {self.ring.folder}")

    def _problem(self, kind: str, message: str) -> None:
        """Logged once while it lasts (the same words every 30 s would drown the journal)."""
        if self._problems.get(kind) != message:
            self.say(message)
        self._problems[kind] = message

    def _solved(self, kind: str, message: str) -> None:
        if self._problems.pop(kind, None) is not None:
            self.say(message)

    # ------------------------------------------------------------------ bundles

    def cooldown_left(self) -> float:
        if self.last_bundle_at is None:
            return 0.0
        return max(0.0, self.last_bundle_at + self.settings.cooldown - time.monotonic())

    def _on_fired(self, fired: Fired) -> None:
        left = self.cooldown_left()
        if left > 0:
            self.say(f"trigger {fired.label_id}: {fired.reason}; no bundle: cooldown for {format_duration(left)} more")
            return
        problem = self.shelf.room_problem()
        if problem:
            self.say(f"trigger {fired.label_id}: {fired.reason}; bundle refused: {problem}")
            return
        self.say(f"trigger {fired.label_id}: {fired.reason}; taking a bundle")
        self.last_bundle_at = time.monotonic()
        path = self._take_bundle(fired)
        if path is not None:
            self.bundles += 1
            for line in self.shelf.prune():
                self.say(line)

    def _take_bundle(self, fired: Fired) -> Optional[Path]:
        from collector.run import CollectRequest, OutputError, collect

        s = self.settings
        request = CollectRequest(basedir=s.basedir, basedir_source=s.basedir_source, catalog=s.catalog,
                                 output_dir=s.output_dir, label=f"watch-{fired.label_id}", fmt=s.fmt,
                                 timeout=s.bundle_timeout, command_line=s.command_line)
        try:
            result = collect(request)
        except Exception as exc:  # the disk, the output folder, a bug: logged, sampling goes on
            interrupt.checkpoint()
            if is_disk_full(exc):
                self.say(f"disk full: no bundle written ({exc}); {self.shelf.disk_filled()}")
            elif isinstance(exc, OutputError):
                self.say(f"no bundle written: {exc}")
            else:
                self.say(f"no bundle written: internal error: {type(exc).__name__}: {exc}")
            return None
        cut = f"; cut short: {result.cut}" if result.cut else ""
        self.say(f"bundle written: {result.path} ({format_size(result.size)}, {result.duration:.1f} s{cut})")
        return result.path
