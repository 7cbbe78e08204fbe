"""The service manager's view of the platform and its datastores, and core dumps.

Where systemd runs (/run/systemd/system exists): the units of MongoDB, RabbitMQ, SSDB,
Kvrocks, ClickHouse and Redis that the manager has loaded, and the unit that starts akd
(named by the cgroup of a running platform process, or by an ExecStart that names
BASEDIR/akd), all read with one `systemctl show`; each unit's journal within the window
into services/<unit>.journal.txt, its transitions parsed into `events`.  Where systemd
does not run, `manager` is null with a note (not an error: nothing to ask).  Core dumps
in every case (collector.collectors.coredumps).

services.json: see the README's bundle layout.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Set

from collector import live, proctable
from collector.bounded import CommandResult, run_command
from collector.bundle import schema
from collector.collectors import coredumps, systemd
from collector.context import Context
from collector.safeopen import fstat_regular, read_capped

SYSTEMD_RUNTIME = "/run/systemd/system"  # sd_booted(3): systemd is the service manager
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/lib/systemd/system", "/usr/lib/systemd/system")
DATASTORE_UNITS = ("mongod.service", "mongodb.service", "rabbitmq-server.service", "ssdb.service",
                   "kvrocks.service", "clickhouse-server.service", "redis-server.service", "redis.service")
DATASTORE_PATTERNS = ("mongod*", "mongodb*", "rabbitmq*", "ssdb*", "kvrocks*", "clickhouse*", "redis*")
DEFAULT_WINDOW = 24 * 3600  # seconds of journal without --since
JOURNAL_LINES = 300
JOURNAL_BYTES = 256 * 1024
MAX_UNITS = 40
UNIT_FILE_BYTES = 64 * 1024
MAX_UNIT_FILES = 5000  # per folder
SHOW_OUTPUT = 1024 * 1024
CGROUP_BYTES = 16 * 1024


def collect(ctx: Context) -> dict:
    errors: List[str] = []
    notes: List[str] = []
    since = ctx.options.since if ctx.options.since is not None else time.time() - DEFAULT_WINDOW
    platform_pids = _platform_pids(ctx, errors)
    record = {"manager": None, "since": live.iso_utc(since), "units": [], "events": [], "notes": notes,
              "coredumps": None, "errors": errors}
    runs = os.path.isdir(SYSTEMD_RUNTIME)
    if not runs:
        notes.append(f"systemd is not the service manager here ({SYSTEMD_RUNTIME} is absent; PID 1 is "
                     f"{_pid1_name()}): unit states and their journals could not be read")
    elif not shutil.which("systemctl"):
        errors.append(f"systemd runs ({SYSTEMD_RUNTIME} exists) but no systemctl is on PATH: units not checked")
    else:
        record["manager"] = "systemd"
        _units(ctx, record, platform_pids, since)
    folders = [str(ctx.basedir), str(ctx.basedir / "ak" / "bin")] + _cwds(platform_pids, notes)
    record["coredumps"] = coredumps.collect_coredumps(ctx.basedir, folders, record["manager"] == "systemd", since,
                                                      ctx.deadline.bound, errors)
    return record


def _pid1_name() -> str:
    try:
        with open("/proc/1/comm", "rb") as handle:
            return handle.read(64).decode("utf-8", "replace").strip() or "unknown"
    except OSError:
        return "unknown"


def _platform_pids(ctx: Context, errors: List[str]) -> List[int]:
    """PIDs of the platform's programs: an AK: title, or akd itself (from the run's one
    read of /proc, ctx.processes)."""
    akd = str(ctx.basedir / "akd")
    try:
        table = ctx.processes.table()
    except proctable.ProcUnreadable as exc:
        errors.append(f"the platform's processes could not be listed: {exc}")
        return []
    pids = []
    for pid, info in table.items():
        cmdline = info.get("cmdline") or []
        name = live.argv0_name(cmdline)
        if (name and name.startswith("AK:")) or (cmdline and cmdline[0] == akd):
            pids.append(pid)
    return sorted(pids)


def _cwds(pids: List[int], notes: List[str]) -> List[str]:
    folders, denied = [], 0
    for pid in pids:
        try:
            folders.append(os.readlink(f"/proc/{pid}/cwd"))
        except PermissionError:
            denied += 1
        except OSError:
            continue
    if denied:
        notes.append(f"the working folders of {denied} platform processes could not be read (run as root): "
                     "core files there were not looked for")
    return list(dict.fromkeys(folders))


# --------------------------------------------------------------------------- units

def _units(ctx: Context, record: dict, platform_pids: List[int], since: float) -> None:
    errors, notes = record["errors"], record["notes"]
    platform = _cgroup_units(platform_pids) | _units_starting_akd(ctx.basedir, errors)
    loaded = _listed_units(ctx, errors)
    if loaded is None:
        return  # systemctl does not answer: asking again for the units' states would fail the same way
    names = list(dict.fromkeys(sorted(platform) + list(DATASTORE_UNITS) + loaded))[:MAX_UNITS]
    blocks = _show(ctx, names, errors)
    if blocks is None:
        return
    for block in blocks:
        if block.get("LoadState") in (None, "", "not-found") or not block.get("Id"):
            continue
        unit = systemd.unit_record(block)
        if block["Id"] in platform:
            unit["component"] = "platform"
        if unit["component"] is None:
            continue
        record["units"].append(unit)
    if not record["units"]:
        notes.append("systemd runs, but no unit of the platform or its datastores is loaded on this host")
    for unit in record["units"]:
        if ctx.deadline.remaining() < 1:
            errors.append(f"journal of {unit['unit']} and after: not read, the collector's time ran out")
            break
        _journal(ctx, unit, since, record)
    record["events"].sort(key=lambda event: event.get("time") or "")


def _unit_from_cgroup(text: str) -> Optional[str]:
    """The service in a /proc/<pid>/cgroup (v2 "0::/system.slice/akd.service", or v1's
    name=systemd line): the deepest path part that names a service."""
    for line in text.splitlines():
        _id, _sep, rest = line.partition(":")
        controllers, _sep, path = rest.partition(":")
        if controllers not in ("", "name=systemd"):
            continue
        services = [part for part in path.split("/") if part.endswith(".service")]
        if services:
            return services[-1]
    return None


def _cgroup_units(pids: List[int]) -> Set[str]:
    units = set()
    for pid in pids:
        try:
            fd = os.open(f"/proc/{pid}/cgroup", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            data, _truncated = read_capped(fd, CGROUP_BYTES)
        except OSError:
            continue
        finally:
            os.close(fd)
        unit = _unit_from_cgroup(data.decode("utf-8", "replace"))
        if unit and not unit.startswith("user@"):
            units.add(unit)
    return units


def _units_starting_akd(basedir: Path, errors: List[str]) -> Set[str]:
    """Services whose ExecStart names BASEDIR/akd, from the unit files themselves."""
    akd = re.compile(r"^\s*ExecStart\w*\s*=.*?" + re.escape(str(basedir / "akd")) + r"(\s|$)", re.MULTILINE)
    found = set()
    for folder in UNIT_DIRS:
        try:
            names = sorted(os.listdir(folder))[:MAX_UNIT_FILES]
        except OSError:
            continue
        for name in names:
            if name.endswith(".service") and _unit_file_matches(os.path.join(folder, name), akd):
                found.add(name)
    return found


def _unit_file_matches(path: str, pattern: "re.Pattern") -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fstat_regular(fd, path)  # closes it when it is not a regular file (a mask's /dev/null)
    except OSError:
        return False
    try:
        data, _truncated = read_capped(fd, UNIT_FILE_BYTES)
    except OSError:
        return False
    finally:
        os.close(fd)
    return bool(pattern.search(data.decode("utf-8", "replace")))


def _command(ctx: Context, argv: List[str], max_output: int, errors: List[str]) -> Optional[CommandResult]:
    """A systemd tool's run, bounded; None (with the error recorded) when it gave nothing usable."""
    result = run_command(argv, timeout=ctx.deadline.bound(ctx.options.command_timeout), max_output=max_output)
    if result.error:
        errors.append(f"{' '.join(argv[:3])}: {result.error}")
        return None
    if result.exit_code != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip().splitlines()
        errors.append(f"{' '.join(argv[:3])} exited with code {result.exit_code}: "
                      f"{stderr[-1] if stderr else 'no message'}")
        return None
    return result


def _listed_units(ctx: Context, errors: List[str]) -> Optional[List[str]]:
    """Loaded datastore services (instances such as redis-server@6380.service too); None
    when systemctl gave no answer."""
    argv = ["systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager", "--type=service",
            "--", *DATASTORE_PATTERNS]
    result = _command(ctx, argv, SHOW_OUTPUT, errors)
    if result is None:
        return None
    units = []
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        words = line.replace("\u25cf", " ").split()
        if words and words[0].endswith(".service"):
            units.append(words[0])
    return units


def _show(ctx: Context, names: List[str], errors: List[str]) -> Optional[List[Dict[str, str]]]:
    argv = ["systemctl", "show", "--no-pager", "--property=" + ",".join(systemd.SHOW_PROPERTIES), "--", *names]
    result = _command(ctx, argv, SHOW_OUTPUT, errors)
    if result is None:
        return None
    if result.stdout_truncated:
        errors.append(f"systemctl show printed more than {SHOW_OUTPUT} bytes; units not read")
        return None
    return systemd.parse_show(result.stdout.decode("utf-8", "replace"))


def _journal(ctx: Context, unit: dict, since: float, record: dict) -> None:
    name = unit["unit"]
    argv = ["journalctl", "-u", name, "-o", "short-iso-precise", "--no-pager", "-n", str(JOURNAL_LINES),
            "--since", f"@{int(since)}"]
    result = run_command(argv, timeout=ctx.deadline.bound(ctx.options.command_timeout), max_output=JOURNAL_BYTES)
    if result.error or result.exit_code != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip().splitlines()
        record["errors"].append(f"journal of {name}: " + (result.error or f"journalctl exited with code "
                                f"{result.exit_code}: {stderr[-1] if stderr else 'no message'}"))
        if not result.stdout:
            return
    raw = result.stdout.split(b"\n", 1)[-1] if result.stdout_truncated else result.stdout  # a cut first line
    text = raw.decode("utf-8", "replace")
    if b"not seeing messages from other users" in result.stderr:
        _note_once(record["notes"], "journalctl: this user sees only its own journal; run as root (or in the "
                                    "systemd-journal group) for the units' lines")
    relpath = f"{schema.SERVICES_DIR}/{name}.journal.txt"
    written = ctx.writer.write_bytes(relpath, raw)
    lines = [line for line in text.splitlines() if line and not line.startswith("-- ")]
    unit["journal"] = {"bundle_path": written.path,  # as the writer named it (names are scrubbed too)
                       "lines": len(lines), "truncated": result.stdout_truncated}
    record["events"] += systemd.journal_events(text, name)


def _note_once(notes: List[str], note: str) -> None:
    if note not in notes:
        notes.append(note)
