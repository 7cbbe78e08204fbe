"""Helpers of the analyzer, check and report tests: a simulated host whose own processes
have names no other test uses (so processes of another test running at the same time
cannot be mistaken for them), a collection from it, and findings looked up by id."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Callable, Iterable, List, Optional

import yaml

from collector.analyzers import analyze
from collector.bundle.reader import BundleReader
from collector.catalog import load_catalog
from collector.context import CollectOptions
from collector.run import CollectRequest, collect
from collector.simulate import SimulatedHost
from servers.hostile import free_port  # noqa: F401  (used here and by the tests)


def findings_of(reader: BundleReader, **overrides) -> List[dict]:
    """Today's analysis of a bundle, with the built-in thresholds (some overridden)."""
    thresholds = dict(load_catalog().thresholds, **overrides)
    return analyze(reader, thresholds).findings


def matching(findings: Iterable[dict], finding_id: str, subject: Optional[str] = None) -> List[dict]:
    return [f for f in findings if f["id"] == finding_id and (subject is None or f["subject"] == subject)]


def one(findings: Iterable[dict], finding_id: str, subject: Optional[str] = None) -> dict:
    found = matching(findings, finding_id, subject)
    assert len(found) == 1, (finding_id, subject, [(f["id"], f["subject"]) for f in findings])
    return found[0]


def about(findings: Iterable[dict], subject: str) -> List[str]:
    """The ids of the findings about one subject."""
    return sorted(f["id"] for f in findings if f["subject"] == subject)


def edit_json(reader: BundleReader, relpath: str, change: Callable[[dict], None]) -> None:
    path = reader.path(relpath)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1))


class LoneHost:
    """A SimulatedHost plus processes of its own with unique names (`name(role)`):
    roles map to catalog entries (port, remote)."""

    def __init__(self, root: Path, roles: dict, **sim_options):
        self.tag = secrets.token_hex(3)
        self.roles = roles
        entries = [dict({"binary": self.name(role), "description": f"test process {role}"}, **spec)
                   for role, spec in roles.items()]
        self.own_catalog = root / "own-catalog.yaml"
        root.mkdir(parents=True, exist_ok=True)
        self.own_catalog.write_text(yaml.safe_dump({"processes": entries}, sort_keys=False))
        self.sim = SimulatedHost(root / "host", catalog=load_catalog(self.own_catalog), **sim_options).build()
        self.catalog_file = root / "catalog.yaml"
        moved = yaml.safe_load(self.sim.catalog_file.read_text()) or {}
        self.catalog_file.write_text(yaml.safe_dump(
            {"processes": entries + list(moved.get("processes") or [])}, sort_keys=False))

    def name(self, role: str) -> str:
        return f"zt{self.tag}{role}"[:12]

    def port(self, role: str) -> int:
        return self.sim.ports[self.name(role)]

    def start(self, *roles: str) -> "LoneHost":
        self.sim.start([self.name(role) for role in roles])
        return self

    def collect(self, out: Path, only=("processes", "pidfiles", "ports"), fmt: str = "dir", **options):
        """A bundle of the host (`only` those collectors; None: all): a reader over the
        folder, or the archive's path for another format."""
        out.mkdir(parents=True, exist_ok=True)
        options.setdefault("cpu_sample_seconds", 0.05)
        request = CollectRequest(basedir=self.sim.basedir, basedir_source="test",
                                 catalog=load_catalog(self.catalog_file), output_dir=out, fmt=fmt,
                                 timeout=options.pop("timeout", 60), options=CollectOptions(only=only, **options))
        path = collect(request).path
        return BundleReader(path) if fmt == "dir" else path

    def stop(self) -> None:
        self.sim.stop()




GIB = 2 ** 30


def healthy_system(data: dict) -> None:
    """system.json of a quiet host, whatever the test machine's own state is."""
    total = 100 * GIB
    data["filesystems"] = [{"mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "total": total,
                            "used": total // 2, "free": total // 2, "percent_used": 50.0, "percent_free": 50.0,
                            "inodes_total": 1000000, "inodes_free": 800000, "inodes_percent_free": 80.0}]
    data["memory"] = {"total": 16 * GIB, "available": 8 * GIB, "used": 8 * GIB, "percent_available": 50.0}
    data["swap"] = {"total": 2 * GIB, "used": 0, "free": 2 * GIB, "percent": 0.0}
    data["load_average"] = [1.0, 1.0, 1.0]
    data["cpu"] = {"count": 4, "physical": 2, "percent": 10.0}
    data["open_files"] = {"allocated": 5000, "max": 1000000, "percent": 0.5}
    data.setdefault("time", {})["clock_synchronized"] = True


def settled_processes(lone: "LoneHost"):
    """processes.json of only this test's own processes, started an hour ago."""
    from collector.live import iso_utc
    import time

    old = iso_utc(time.time() - 3600)

    def change(data: dict) -> None:
        data["expected"] = [p for p in data["expected"] if p["name"].startswith(f"zt{lone.tag}")]
        for record in data["expected"]:
            for resource in record["resources"]:
                resource["started_at"] = old
    return change


def quiet_bundle(root: Path):
    """(reader, host) of a bundle of a host with one process of its own running for an
    hour and nothing wrong: the baseline that each triage test changes one thing in."""
    lone = LoneHost(root / "lone", {"main": {}}).start("main")
    try:
        reader = lone.collect(root / "out", only=("system", "processes", "pidfiles", "ports", "config"))
    finally:
        lone.stop()
    edit_json(reader, "processes.json", settled_processes(lone))
    edit_json(reader, "system.json", healthy_system)
    return reader, lone
