"""Core dumps: systemd-coredump's list (`coredumpctl`) where the kernel hands dumps to it,
else the files `kernel.core_pattern` names (a relative pattern such as "core" is written
into the crashing process's working folder: BASEDIR, its ak/bin and the running platform
processes' folders are looked in).  Names, sizes and times only: a dump is never opened.

services.json's `coredumps`: {source, core_pattern, dumps: [{time, pid, process, signal,
size, path, component}], note}."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from collector.bounded import CallTimeout, call_with_timeout, run_command
from collector.collectors import systemd
from collector import live
from collector.live import iso_utc

CORE_PATTERN = "/proc/sys/kernel/core_pattern"
CORE_USES_PID = "/proc/sys/kernel/core_uses_pid"
MAX_DUMPS = 100  # newest first
MAX_ENTRIES_PER_FOLDER = 20000  # names looked at in one folder, at most
LIST_TIMEOUT = 2.0  # seconds per folder: one on a dead network mount is given up
COREDUMPCTL_OUTPUT = 1024 * 1024
# The datastores' executables, by the name a dump gives (comm or the executable's basename).
DATASTORE_EXECUTABLES = (
    ("mongod", "mongodb"), ("mongos", "mongodb"), ("beam.smp", "rabbitmq"), ("ssdb-server", "ssdb"),
    ("kvrocks", "kvrocks"), ("clickhouse", "clickhouse"), ("redis-server", "redis"),
)
# core_pattern specifiers (core(5)) as expressions; the named ones give a dump's facts
_SPECIFIERS = {"p": r"(?P<pid>\d+)", "P": r"\d+", "i": r"\d+", "I": r"\d+", "u": r"\d+", "g": r"\d+",
               "d": r"\d+", "s": r"(?P<signal>\d+)", "t": r"(?P<time>\d+)", "c": r"\S+", "h": r"[^/]+",
               "e": r"(?P<process>[^/]+?)", "E": r"[^/]+", "f": r"[^/]+", "%": "%"}


def component_of(process: Optional[str], executable: Optional[str], basedir: Path) -> Optional[str]:
    """"platform" for the platform's own programs (an AK: title, a program under
    BASEDIR), the datastore's kind for a datastore's, else None."""
    if executable and (executable == str(basedir) or executable.startswith(str(basedir).rstrip("/") + "/")):
        return "platform"
    name = process or (executable.rsplit("/", 1)[-1] if executable else "")
    if name.startswith("AK:"):
        return "platform"
    return next((kind for prefix, kind in DATASTORE_EXECUTABLES if name.startswith(prefix)), None)


def pattern_regex(name_pattern: str, uses_pid: bool) -> "re.Pattern":
    """The file names a core_pattern's last part gives, as an expression."""
    parts, index = [], 0
    while index < len(name_pattern):
        char = name_pattern[index]
        if char == "%" and index + 1 < len(name_pattern):
            spec = name_pattern[index + 1]
            group = _SPECIFIERS.get(spec, "")
            if "(?P<" in group and f"(?P<{group[4:group.index('>')]}>" in "".join(parts):
                group = re.sub(r"\(\?P<\w+>", "(?:", group)  # a specifier named twice
            parts.append(group)
            index += 2
            continue
        parts.append(re.escape(char))
        index += 1
    body = "".join(parts)
    if uses_pid and "%p" not in name_pattern:
        body += r"(?:\.(?P<pid>\d+))?" if "(?P<pid>" not in body else ""
    return re.compile(f"^{body}$")


def _listing(folder: str, regex: "re.Pattern", basedir: Path, errors: List[str]) -> List[dict]:
    """The dump files in one folder, from their names and lstat (never opened)."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_ENTRIES_PER_FOLDER:
                    errors.append(f"core dumps: {folder} holds more than {MAX_ENTRIES_PER_FOLDER} names; "
                                  "the rest were not looked at")
                    break
                match = regex.match(entry.name)
                if match:
                    found += _file_dump(entry, match, basedir)
    except FileNotFoundError:
        pass
    except OSError as exc:
        errors.append(f"core dumps: cannot list {folder}: {exc.strerror or exc}")
    return found


def _file_dump(entry: "os.DirEntry", match: "re.Match", basedir: Path) -> List[dict]:
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return []
    if not stat.S_ISREG(info.st_mode):
        return []
    facts = match.groupdict()
    pid, sig = facts.get("pid"), facts.get("signal")
    process = facts.get("process")
    folder_component = "platform" if _inside(entry.path, basedir) else None
    return [{"time": iso_utc(info.st_mtime), "pid": int(pid) if pid else None, "process": process,
             "signal": systemd.signal_name(int(sig)) if sig else None, "size": info.st_size,
             "path": entry.path, "component": component_of(process, None, basedir) or folder_component}]


def _inside(path: str, folder: Path) -> bool:
    top = str(folder).rstrip("/") + "/"
    return path.startswith(top) or os.path.realpath(path).startswith(os.path.realpath(str(folder)).rstrip("/") + "/")


def from_core_pattern(pattern: str, folders: List[str], basedir: Path,
                      errors: List[str]) -> Tuple[List[dict], Optional[str]]:
    """(dumps, note) for a core_pattern that names files."""
    uses_pid = live.read_first_line(CORE_USES_PID) == "1"
    head, _slash, name = pattern.rpartition("/")
    if "%" in head:
        return [], f"core_pattern {pattern!r} names a folder by the crashing process: its dumps are not listed"
    regex = pattern_regex(name, uses_pid)
    if pattern.startswith("/"):
        targets = [head or "/"]
    else:
        targets = [os.path.join(folder, head) if head else folder for folder in folders]
    dumps: List[dict] = []
    for target in dict.fromkeys(targets):
        try:
            dumps += call_with_timeout(lambda folder=target: _listing(folder, regex, basedir, errors),
                                       LIST_TIMEOUT, f"listing {target}")
        except CallTimeout as exc:
            errors.append(f"core dumps: {exc}")
    where = targets[0] if pattern.startswith("/") else f"the platform's folders ({', '.join(dict.fromkeys(targets))})"
    return dumps, f"core files named by core_pattern {pattern!r}, looked for in {where}"


def from_coredumpctl(since: float, timeout: Callable[[float], float], basedir: Path,
                     errors: List[str]) -> List[dict]:
    argv = ["coredumpctl", "list", "--no-pager", "--json=short", "--since", f"@{int(since)}"]
    result = run_command(argv, timeout=timeout(10.0), max_output=COREDUMPCTL_OUTPUT)
    text = result.stdout.decode("utf-8", "replace")
    if result.exit_code not in (0, None) and b"json" in result.stderr.lower():  # too old for --json
        argv = [a for a in argv if a != "--json=short"]
        result = run_command(argv, timeout=timeout(10.0), max_output=COREDUMPCTL_OUTPUT)
        text = result.stdout.decode("utf-8", "replace")
        dumps = systemd.parse_coredumpctl_table(text)
    elif result.exit_code == 0 and not result.stdout_truncated:
        try:
            dumps = systemd.parse_coredumpctl_json(text)
        except ValueError as exc:
            errors.append(f"coredumpctl: its JSON could not be read: {exc}")
            dumps = []
    else:
        dumps = []
    if result.error:
        errors.append(f"{' '.join(argv)}: {result.error}")
    elif result.exit_code not in (0, 1) or (result.exit_code == 1 and b"no coredumps" not in result.stderr.lower()):
        stderr = result.stderr.decode("utf-8", "replace").strip().splitlines()
        errors.append(f"coredumpctl exited with code {result.exit_code}: {stderr[-1] if stderr else 'no message'}")
    elif result.stdout_truncated:
        errors.append(f"coredumpctl printed more than {COREDUMPCTL_OUTPUT} bytes; its list was not read")
    for dump in dumps:
        dump["component"] = component_of(dump.get("process"), dump.pop("executable", None), basedir)
    return dumps


def collect_coredumps(basedir: Path, folders: List[str], systemd_runs: bool, since: float,
                      timeout: Callable[[float], float], errors: List[str]) -> Dict:
    pattern = live.read_first_line(CORE_PATTERN)
    record: Dict = {"source": None, "core_pattern": pattern, "dumps": [], "note": None}
    if pattern is None:
        record["note"] = f"{CORE_PATTERN} could not be read: where core dumps go is unknown"
        return record
    if pattern.startswith("|"):
        handler = pattern[1:].split()[0] if pattern[1:].split() else ""
        if "systemd-coredump" in handler and systemd_runs and shutil.which("coredumpctl"):
            record["source"] = "coredumpctl"
            record["dumps"] = _newest(from_coredumpctl(since, timeout, basedir, errors))
            record["note"] = "core dumps kept by systemd-coredump, listed by coredumpctl"
        else:
            record["note"] = f"core dumps are piped to {handler or 'a program'}; they are not listed"
        return record
    if not pattern:
        record["note"] = "core_pattern is empty: the kernel writes no core dump"
        return record
    record["source"] = "core_pattern"
    dumps, record["note"] = from_core_pattern(pattern, folders, basedir, errors)
    record["dumps"] = _newest(dumps)
    return record


def _newest(dumps: List[dict]) -> List[dict]:
    return sorted(dumps, key=lambda d: d.get("time") or "", reverse=True)[:MAX_DUMPS]
