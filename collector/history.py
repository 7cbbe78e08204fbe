"""The recent history of one platform host: light samples that `akdiag watch` appends, and
that a bundle carries as history.json when they exist.

It lives in akdiag's state folder (collector.state), never under BASEDIR, in a folder of its
own per BASEDIR (two platforms on one host never mix).  The ring is two JSON-lines segments:
samples are appended to the newer one; when it reaches half the ring's size it replaces the
older one.  So the disk holds at most `max_bytes` (plus one sample), whatever the run time,
and a reader sees the newest samples first when it must cut.

A sample (make_sample) is plain data:

    {"t": 1796155200.0,                 # seconds since the epoch (UTC)
     "status": "OK",                    # the check's verdict: OK WARNING CRITICAL UNKNOWN
     "findings": [{"id": "process.down", "severity": "critical", "subject": "api"}],
     "processes": {"api": {"up": 1, "pids": 1, "rss": 52428800, "cpu_seconds": 12.5,
                           "open_fds": 40, "max_fds": 65536, "threads": 9,
                           "started": 1796150000.0, "connections": 12}},
     "datastores": {"mongodb": {"up": 1, "latency_seconds": 0.002}},
     "queues": {"oxy_triggers": 120},     # messages (None: not counted)
     "mounts": {"/": {"free_bytes": 1000, "free_inodes": 50}}}

A value the check could not read is None ("no data", never 0)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, List, Optional, Tuple

from collector.live import open_regular, path_inside
from collector.logtail import read_tail
from collector.plain import as_dict, dicts, number
from collector.state import state_dir
from collector.trust import untrusted_reason

HISTORY_FOLDER = "history"
NEWER, OLDER = "samples.0.jsonl", "samples.1.jsonl"
DEFAULT_MAX_BYTES = 24 * 1024 * 1024  # a day at 30 s of a 33-process host, with room
DEFAULT_KEEP_SECONDS = 24 * 3600.0
MAX_SAMPLE_BYTES = 256 * 1024  # a sample past this is not kept (a runaway host must not fill the ring)


class HistoryError(OSError):
    """The history cannot be kept or read (its folder is unsafe, inside BASEDIR, or unwritable)."""


def history_folder(basedir: Path, root: Optional[Path] = None) -> Path:
    """The folder of BASEDIR's history: <state folder>/history/<digest of BASEDIR's real path>."""
    real = os.path.realpath(str(basedir))
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(root or state_dir()) / HISTORY_FOLDER / digest


def make_sample(snapshot: dict, findings: Iterable[dict], status: str, when: Optional[float] = None) -> dict:
    """A sample from a check's monitoring snapshot (collector.checkformats.snapshot) and findings."""
    snapshot = as_dict(snapshot)
    return {
        "t": round(time.time() if when is None else when, 3),
        "status": str(status),
        "findings": [{"id": str(f.get("id")), "severity": str(f.get("severity")),
                      "subject": f.get("subject")} for f in dicts(list(findings))
                     if f.get("severity") in ("critical", "warning")],
        "processes": {str(p.get("name")): _process(p) for p in dicts(snapshot.get("processes"))},
        "datastores": {str(d.get("name")): {"up": d.get("up"), "latency_seconds": number(d.get("latency_seconds"))}
                       for d in dicts(snapshot.get("datastores"))},
        "queues": {str(name): number(as_dict(q).get("messages")) for name, q in as_dict(snapshot.get("queues")).items()},
        "mounts": {str(m.get("mountpoint")): {"free_bytes": number(m.get("free_bytes")),
                                              "free_inodes": number(m.get("files_free"))}
                   for m in dicts(snapshot.get("mounts"))},
    }


def _process(figures: dict) -> dict:
    connections = as_dict(figures.get("connections"))
    return {"up": figures.get("up"), "pids": figures.get("pids"), "rss": number(figures.get("resident_memory_bytes")),
            "cpu_seconds": number(figures.get("cpu_seconds")), "open_fds": number(figures.get("open_fds")),
            "max_fds": number(figures.get("max_fds")), "threads": number(figures.get("threads")),
            "started": number(figures.get("start_time_seconds")),
            "connections": sum(int(n) for n in connections.values() if number(n) is not None) if connections else None}


# On disk, each of these sections is stored as {"f": [field, ...], "r": {name: [value, ...]}},
# and each finding as [id, severity, subject]: a sample then takes under half the bytes (no
# key repeated per process or finding), so the ring holds twice the hours in its size.
# read() gives back the shape above.
PACKED_SECTIONS = ("processes", "datastores", "mounts")
PACKED_FORMAT = 2


def _compact(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53 else value


def _packed(sample: dict) -> dict:
    packed = dict(sample, v=PACKED_FORMAT)
    packed["findings"] = [[f.get("id"), f.get("severity"), f.get("subject")] for f in dicts(sample.get("findings"))]
    for section in PACKED_SECTIONS:
        rows = as_dict(sample.get(section))
        fields = sorted({key for row in rows.values() for key in as_dict(row)})
        packed[section] = {"f": fields, "r": {name: [_compact(as_dict(row).get(key)) for key in fields]
                                              for name, row in rows.items()}}
    return packed


def _unpacked(stored: dict) -> dict:
    if stored.get("v") != PACKED_FORMAT:
        return stored
    sample = {key: value for key, value in stored.items() if key != "v"}
    sample["findings"] = [{"id": f[0], "severity": f[1], "subject": f[2]} for f in stored.get("findings") or []
                          if isinstance(f, list) and len(f) == 3]
    for section in PACKED_SECTIONS:
        table = as_dict(stored.get(section))
        fields = [str(f) for f in table.get("f") or [] if isinstance(f, str)]
        sample[section] = {str(name): dict(zip(fields, values)) for name, values in as_dict(table.get("r")).items()
                           if isinstance(values, list)}
    return sample


class HistoryRing:
    """The two segments in `folder`; `basedir`, when given, is a folder the ring must never be in."""

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 keep_seconds: float = DEFAULT_KEEP_SECONDS, basedir: Optional[Path] = None):
        self.folder = Path(folder)
        self.max_bytes = max(2 * 1024, int(max_bytes))
        self.keep_seconds = keep_seconds
        self.basedir = basedir

    def _checked_folder(self, create: bool) -> None:
        if self.basedir is not None and path_inside(self.folder, self.basedir):
            raise HistoryError(f"the history folder {self.folder} is inside BASEDIR; refusing to use it")
        if create:
            try:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(f"cannot create the history folder {self.folder}: {exc.strerror or exc}") from exc
        problem = untrusted_reason(str(self.folder)) if self.folder.exists() else None
        if problem:
            raise HistoryError(f"the history folder is not safe to use: {problem}")

    def append(self, sample: dict) -> None:
        """Add one sample (one line, written with one write call); rotate first when due."""
        line = (json.dumps(_packed(sample), separators=(",", ":"), sort_keys=True, default=str) + "\n").encode("utf-8")
        if len(line) > MAX_SAMPLE_BYTES:
            raise HistoryError(f"a sample of {len(line)} bytes is over the {MAX_SAMPLE_BYTES}-byte limit; not kept")
        self._checked_folder(create=True)
        newer = self.folder / NEWER
        try:
            if newer.exists() and newer.stat().st_size + len(line) > self.max_bytes // 2:
                os.replace(str(newer), str(self.folder / OLDER))
            fd = os.open(str(newer), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise HistoryError(f"cannot write the history in {self.folder}: {exc.strerror or exc}") from exc

    def read(self, since: Optional[float] = None, now: Optional[float] = None) -> List[dict]:
        """The samples of the last `keep_seconds` (or after `since`), oldest first.  A line that
        does not parse (a sample cut by a crash) is skipped; an absent ring reads as []."""
        self._checked_folder(create=False)
        now = time.time() if now is None else now
        start = max(since if since is not None else float("-inf"), now - self.keep_seconds)
        samples: List[dict] = []
        for name in (NEWER, OLDER):
            segment, cut = _read_segment(self.folder / name, self.max_bytes // 2 + MAX_SAMPLE_BYTES)
            samples += [sample for sample in segment if _within(sample, start, now)]
            if cut:  # a ring kept larger than this reader's size: the older segment would leave a hole
                break
        samples.sort(key=lambda s: s["t"])
        return samples

    def disk_bytes(self) -> int:
        total = 0
        for name in (OLDER, NEWER):
            try:
                total += (self.folder / name).stat().st_size
            except OSError:
                pass
        return total


def _read_segment(path: Path, limit: int) -> Tuple[List[dict], bool]:
    """The samples in the newest `limit` bytes of one segment (whole lines: a ring kept
    larger than this reader's size gives its newest samples), and whether older ones were
    left out."""
    try:
        fd, info = open_regular(path)
    except FileNotFoundError:
        return [], False
    except OSError as exc:
        raise HistoryError(f"cannot read the history {path}: {exc.strerror or exc}") from exc
    try:
        tail = read_tail(fd, info.st_size, max_lines=info.st_size + 1, max_bytes=limit)
    except OSError as exc:
        raise HistoryError(f"cannot read the history {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    lines = tail.data.splitlines()
    samples = []
    for line in lines[1:] if tail.first_line_cut else lines:
        try:
            sample = json.loads(line)
        except ValueError:
            continue
        if isinstance(sample, dict):
            samples.append(_unpacked(sample))
    return samples, tail.start_offset > 0


def _within(sample: dict, start: float, now: float) -> bool:
    t = number(sample.get("t"))
    return t is not None and start <= t <= now + 60  # a clock set back leaves no sample "from the future"
