"""Parsers for what systemd's tools print: `systemctl show` property blocks, systemd's
timestamps, a unit's journal in `-o short-iso-precise` (its transitions as events) and
`coredumpctl list` (JSON or the plain table).  Plain functions over text: no host access."""

from __future__ import annotations

import json
import re
import signal
import time
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional

from collector.live import iso_utc

# The component a unit runs, by the start of its name (the unit that starts akd is "platform").
UNIT_COMPONENTS = (
    ("mongod", "mongodb"), ("mongodb", "mongodb"), ("rabbitmq", "rabbitmq"), ("ssdb", "ssdb"),
    ("kvrocks", "kvrocks"), ("clickhouse", "clickhouse"), ("redis", "redis"),
)
# si_code of the main process's end (ExecMainCode): CLD_EXITED, CLD_KILLED, CLD_DUMPED, ...
EXIT_CODES = {1: "exited", 2: "killed", 3: "dumped", 4: "trapped", 5: "stopped", 6: "continued"}
SHOW_PROPERTIES = ("Id", "ActiveState", "SubState", "Result", "NRestarts", "ExecMainStatus", "ExecMainCode",
                   "ExecMainPID", "ExecMainStartTimestamp", "ExecMainExitTimestamp", "ActiveEnterTimestamp",
                   "InactiveEnterTimestamp", "FragmentPath", "LoadState")


def unit_component(unit: str) -> Optional[str]:
    name = unit.lower()
    return next((component for prefix, component in UNIT_COMPONENTS if name.startswith(prefix)), None)


def signal_name(number: Optional[int]) -> Optional[str]:
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# --------------------------------------------------------------------------- systemctl show

def parse_show(text: str) -> List[Dict[str, str]]:
    """`systemctl show` of several units: one block of Key=Value lines per unit, blocks
    separated by an empty line."""
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key.strip()] = value
    if current:
        blocks.append(current)
    return blocks


_SYSTEMD_TIME = re.compile(r"^(?:[A-Za-z]{3} )?(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(?: (\S+))?$")


def parse_timestamp(value: Optional[str]) -> Optional[float]:
    """A Unix time from systemd's "Tue 2026-12-01 15:10:05 UTC" (a zone other than UTC is
    the host's own, which systemctl used), "@1764601805" (--timestamp=unix), or a number
    of microseconds; None for "", "n/a", 0 or anything else."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text in ("n/a", "0"):
        return None
    if text.startswith("@"):
        try:
            return float(text[1:]) or None
        except ValueError:
            return None
    if text.isdigit():
        return int(text) / 1e6 or None
    match = _SYSTEMD_TIME.match(text)
    if not match:
        return None
    moment = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
    fraction = int((match.group(2) or "0").ljust(6, "0")) / 1e6
    zone = match.group(3)
    if zone in ("UTC", "GMT", "Z"):
        return moment.replace(tzinfo=timezone.utc).timestamp() + fraction
    offset = _numeric_offset(zone)
    if offset is not None:
        return (moment - offset).replace(tzinfo=timezone.utc).timestamp() + fraction
    return time.mktime(moment.timetuple()[:8] + (-1,)) + fraction  # the host's zone


def _numeric_offset(zone: Optional[str]) -> Optional[timedelta]:
    match = re.match(r"^([+-])(\d{2}):?(\d{2})$", zone or "")
    if not match:
        return None
    delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
    return delta if match.group(1) == "+" else -delta


def _int(value: Optional[str]) -> Optional[int]:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def unit_record(block: Dict[str, str]) -> dict:
    """One unit of services.json from its `systemctl show` block."""
    unit = block.get("Id", "")
    code = _int(block.get("ExecMainCode"))
    started = parse_timestamp(block.get("ExecMainStartTimestamp")) or parse_timestamp(block.get("ActiveEnterTimestamp"))
    exited = parse_timestamp(block.get("ExecMainExitTimestamp")) or parse_timestamp(block.get("InactiveEnterTimestamp"))
    status = _int(block.get("ExecMainStatus"))
    return {
        "unit": unit, "component": unit_component(unit),
        "load_state": block.get("LoadState") or None,
        "active_state": block.get("ActiveState") or None, "sub_state": block.get("SubState") or None,
        "result": block.get("Result") or None, "restarts": _int(block.get("NRestarts")),
        "exit_code": EXIT_CODES.get(code) if code else None,
        "exit_status": status if code else None,
        "signal": signal_name(status) if code in (2, 3) and status else None,
        "main_pid": _int(block.get("ExecMainPID")) or None,
        "started_at": iso_utc(started), "exited_at": iso_utc(exited),
        "fragment_path": block.get("FragmentPath") or None,
        "journal": None,
    }


# --------------------------------------------------------------------------- the journal

_JOURNAL_LINE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?([+-]\d{2}:?\d{2}|Z)\s+\S+\s+(\S+?)(?:\[(\d+)\])?:\s(.*)$")
_TRANSITIONS = (
    ("started", re.compile(r"^Started (.+?)\.?$")),
    ("stopped", re.compile(r"^Stopped (.+?)\.?$")),
    ("failed", re.compile(r"^Failed to start (.+?)\.?$")),
    ("failed", re.compile(r"^(?:\S+: )?Failed with result '([^']+)'\.?$")),
    ("killed", re.compile(r"^(?:\S+: )?Main process exited, code=(?:killed|dumped), status=(\S+)$")),
    ("killed", re.compile(r"^(?:\S+: )?A process of this unit has been killed by the OOM killer\.?$")),
    ("restarting", re.compile(r"^(?:\S+: )?Scheduled restart job, restart counter is at (\d+)\.?$")),
)


def journal_time(stamp: str, fraction: Optional[str], zone: str) -> Optional[str]:
    """"2026-12-01T15:10:05.123456+0000" as UTC "2026-12-01T15:10:05.123456Z"."""
    try:
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    offset = timedelta(0) if zone == "Z" else _numeric_offset(zone)
    if offset is None:
        return None
    moment = moment - offset
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{micros}Z" if fraction else "Z")


def journal_events(text: str, unit: str) -> List[dict]:
    """The unit's transitions in its journal: what the service manager itself (systemd,
    PID 1 or a user manager) wrote; a service printing "Started ..." is not one."""
    events = []
    for line in text.splitlines():
        match = _JOURNAL_LINE.match(line)
        if not match or match.group(4) != "systemd":
            continue
        message = match.group(6).strip()
        for kind, pattern in _TRANSITIONS:
            if pattern.match(message):
                events.append({"time": journal_time(match.group(1), match.group(2), match.group(3)),
                               "unit": unit, "kind": kind, "message": message[:500]})
                break
    return events


# --------------------------------------------------------------------------- coredumpctl

def _dump_time(value) -> Optional[str]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso_utc(value / 1e6 if value > 1e11 else float(value))
    return iso_utc(parse_timestamp(str(value))) if value is not None else None


def _signal_text(value) -> Optional[str]:
    if value is None or value == "":
        return None
    number = _int(value)
    if number is not None:
        return signal_name(number)
    text = str(value).strip()
    return text if text.startswith("SIG") else f"SIG{text}"


def _size(value) -> Optional[int]:
    """Bytes from a number or coredumpctl's "32.7K" / "1.2M" / "-"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = re.match(r"^(\d+(?:\.\d+)?)([BKMGT]?)$", str(value or "").strip())
    if not match:
        return None
    scale = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[match.group(2)]
    return int(float(match.group(1)) * scale)


def _dump(time_value, pid, sig, exe, size, corefile) -> dict:
    exe = str(exe) if exe not in (None, "", "-", "n/a") else None
    return {"time": _dump_time(time_value), "pid": _int(pid), "process": exe.rsplit("/", 1)[-1] if exe else None,
            "executable": exe, "signal": _signal_text(sig), "size": _size(size),
            "path": None, "stored": str(corefile) if corefile not in (None, "") else None}


def parse_coredumpctl_json(text: str) -> List[dict]:
    """`coredumpctl list --json=short`: an array of objects (time in microseconds)."""
    data = json.loads(text) if text.strip() else []
    if not isinstance(data, list):
        raise ValueError("coredumpctl's JSON is not a list")
    return [_dump(e.get("time"), e.get("pid"), e.get("sig"), e.get("exe"), e.get("size"), e.get("corefile"))
            for e in data if isinstance(e, dict)]


_TABLE_ROW = re.compile(r"^(?:[A-Za-z]{3} )?(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?: \S+)?)\s+(\d+)\s+\d+\s+\d+\s+"
                        r"(\S+)\s+(\S+)\s+(\S+)(?:\s+(\S+))?\s*$")


def parse_coredumpctl_table(text: str) -> List[dict]:
    """The plain table of older systemd: TIME PID UID GID SIG COREFILE EXE [SIZE]."""
    dumps = []
    for line in text.splitlines():
        match = _TABLE_ROW.match(line.strip())
        if match:
            stamp, pid, sig, corefile, exe, size = match.groups()
            dumps.append(_dump(stamp, pid, sig, exe, size, corefile))
    return dumps
