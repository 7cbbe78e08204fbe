"""One machine listed twice (an alias and its address, two names of one host) is
collected once.  The probe reads the host's machine id (/etc/machine-id), its boot id and
the PID namespace its session runs in; the three together name the system a collect would
see.  The machine id alone is not enough: cloned virtual machines and containers built from
one image often share it, and they differ in boot id or PID namespace.  When any of the three
is missing the host is not compared (collected as listed: a doubt never drops a host).

Only a keyed digest of the three is kept (systemd asks that the machine id itself not be
published); the first name to be probed collects, the others are recorded as duplicates
of it."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from typing import Dict, Optional

_KEY = b"akdiag cluster: same machine"
_MACHINE_ID = re.compile(r"^[0-9a-f]{32}$")
_BOOT_ID = re.compile(r"^[0-9a-f-]{36}$")
_NAMESPACE = re.compile(r"^pid:\[\d+\]$")


def machine_identity(probe: Dict[str, str]) -> Optional[str]:
    """A digest of the probe's `machine_id`, `boot_id` and `pid_ns`; None when one is
    missing or not in its usual form."""
    machine_id = (probe.get("machine_id") or "").strip().lower()
    boot_id = (probe.get("boot_id") or "").strip().lower()
    namespace = (probe.get("pid_ns") or "").strip()
    if not (_MACHINE_ID.match(machine_id) and _BOOT_ID.match(boot_id) and _NAMESPACE.match(namespace)):
        return None
    text = "\0".join((machine_id, boot_id, namespace)).encode("ascii")
    return hmac.new(_KEY, text, hashlib.sha256).hexdigest()[:20]


class SameMachine(Exception):
    """This host is a machine another host of the run already collects."""

    def __init__(self, first: str):
        super().__init__(first)
        self.first = first


class MachineRegistry:
    """The machines seen by the run's probes, shared by the hosts' threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._first: Dict[str, str] = {}

    def claim(self, identity: Optional[str], name: str) -> Optional[str]:
        """None when `name` is the first host seen on this machine (it collects); else the
        name of that first host."""
        if identity is None:
            return None
        with self._lock:
            first = self._first.setdefault(identity, name)
        return None if first == name else first


def link_duplicates(records) -> list:
    """Each duplicate's record names the host collected for it (`duplicate_of`); that
    host's record gets `also_listed_as` and the duplicates' roles (the machine has them
    all).  The notes cluster.json keeps, one per duplicate."""
    by_name = {r["name"]: r for r in records}
    notes = []
    for record in records:
        first = by_name.get(record.get("duplicate_of") or "")
        if record.get("status") != "duplicate" or first is None:
            continue
        first.setdefault("also_listed_as", []).append(record["name"])
        first["roles"] = list(dict.fromkeys(list(first.get("roles") or []) + list(record.get("roles") or [])))
        notes.append(f"{record['name']} ({record['destination']}) is the same machine as {first['name']} "
                     f"({first['destination']}): the same machine id, boot and PID namespace; collected once, "
                     f"as {first['name']}")
    return notes
