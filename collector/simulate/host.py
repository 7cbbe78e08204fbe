"""SimulatedHost: a throw-away Altcraft host for the demo, the tests and the benchmark.

It only ever touches its own folder and its own child processes."""

from __future__ import annotations

import gzip
import json
import os
import random
import secrets
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import yaml

from collector.catalog import Catalog, ProcessSpec, load_catalog

FAKEPROC = Path(__file__).with_name("fakeproc.py")
PORT_SHIFTS = (10000, 20000, 30000)
READY_TIMEOUT = 15.0
PLATFORM_VERSION = "v2025.1.71.3.1003"

AKD_SCRIPT = """#!/bin/sh
# Simulated `akd`: prints each platform process with the PID from its PID file.
if [ "$1" != "--processes" ]; then echo "usage: akd --processes" >&2; exit 2; fi
here=${0%/*}
echo "Altcraft platform {version}"
for f in "$here"/pids/*.pid; do
  [ -f "$f" ] || continue
  name=${f##*/}; name=${name%.pid}
  pid=; read -r pid < "$f" 2>/dev/null
  case "$pid" in ''|*[!0-9]*) state=invalid ;; *) if [ -d "/proc/$pid" ]; then state=running; else state=stopped; fi ;; esac
  printf 'AK:%-20s %-8s %s\\n' "$name" "$pid" "$state"
done
"""


def port_is_free(port: int, address: str = "127.0.0.1") -> bool:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _real_python() -> str:
    return os.path.realpath(sys.executable)


def _link_python(target: Path) -> None:
    """The interpreter under another name (a hard link costs nothing; else a copy),
    so that the process's executable is BASEDIR/ak/bin/<binary> as on a real host."""
    python = _real_python()
    try:
        os.link(python, target)
    except OSError:
        shutil.copy2(python, target)


def sample_config(ports: Dict[str, int], secret_seed: str) -> dict:
    """A main.json shaped like the vendor's, with secrets unique to this host."""
    return {
        "BASEDIR": "/opt/akd",
        "PRODUCT_NAME": "Altcraft Platform",
        "DEFAULT_LOG_LEVEL": "info",
        "MONGO_AUTH_DB": "admin",
        "CONTROLDB_IP": "127.0.0.1", "CONTROLDB_PORT": 27017, "CONTROLDB_NAME": "altcraft_system",
        "CONTROLDB_USER": "altcraft", "CONTROLDB_PASS": f"ctl-{secret_seed}",
        "FILEDB_ENABLE": False,
        "SSDB_HBSUPP_IP": "127.0.0.1", "SSDB_HBSUPP_PORT": 4420, "SSDB_HBSUPP_PASS": f"hb-{secret_seed}",
        "SSDB_NOTIFY_IP": "127.0.0.1", "SSDB_NOTIFY_PORT": 4430, "SSDB_NOTIFY_PASS": "",
        "RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_VHOST": "altcraft", "RABBITMQ_USER": "altcraft",
        "RABBITMQ_PASS": f"mq-{secret_seed}",
        "CLICKHOUSE_SYSTEM": {"HOST": "127.0.0.1", "PORT": 9000, "USER": "default", "DATABASE_NAME": "altcraft",
                              "PASSWORD": f"ch-{secret_seed}", "IS_DEBUG": False},
        "CAMP_DUPLICATESDB": {"MODE": "single", "PASSWORD": f"kv-{secret_seed}",
                              "NODES": [{"HOST": "127.0.0.1", "PORT": 6666}]},
        "WEBCONTROL_HOSTNAME": "altcraft.example.com", "WEBCONTROL_PUBLIC_IP": "127.0.0.1",
        "WEBCONTROL_PUBLIC_PORT": ports.get("webcontrol", 8082),
        "TRACKING_HOSTNAME": "trk.example.com", "TRACKING_PREFIX": "t",
        "TRACKING_CRYPT_KEY": f"crypt-{secret_seed}", "WEBAPI_PRIVATE_KEY": f"pk-{secret_seed}",
    }


_MESSAGES = (
    "INFO  [{b}] processed batch id={h} of {n} messages in {ms} ms",
    "INFO  [{b}] GET /api/v1/campaigns/{n}/stats 200 {ms}ms request_id={u}",
    "DEBUG [{b}] worker {w} picked task {h} from queue trk_actions (depth {n})",
    "INFO  [{b}] delivered message {u} to mx{w}.example.net in {ms} ms",
    "WARN  [{b}] queue trk_actions depth {n} above soft limit",
    "INFO  [{b}] subscriber profile {h} updated, segment {w} recalculated in {ms} ms",
)


def sample_log_lines(binary: str, count: int, start: float, seed: int = 0) -> List[str]:
    """Log lines shaped like the platform's, varied enough that compression figures
    measured on them mean something; every 97th line is an error."""
    rng = random.Random(f"{binary}:{seed}")
    lines = []
    for i in range(count):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i))
        if i % 97 == 13:
            message = f"ERROR [{binary}] connection refused 127.0.0.1:27017 (attempt {i})"
        else:
            message = rng.choice(_MESSAGES).format(
                b=binary, h="%016x" % rng.getrandbits(64), n=rng.randint(1, 99999), ms=rng.randint(1, 5000),
                u="%08x-%04x-4%03x-a%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                                  rng.getrandbits(12), rng.getrandbits(48)),
                w=rng.randint(1, 32))
        lines.append(f"{stamp}.{rng.randint(0, 999):03d}Z {message}")
    return lines


class SimulatedHost:
    """A BASEDIR with ak/bin, akd, pids, logs and config/main.json, and real
    processes titled AK:<name> listening on their catalog ports (moved by a fixed
    shift where a port is taken: see `catalog_file`)."""

    def __init__(self, root: Path, catalog: Optional[Catalog] = None, port_shift: Optional[int] = None,
                 log_lines: int = 200, platform_version: str = PLATFORM_VERSION, titled_argv0: bool = True,
                 title_prefix: str = "AK:"):
        self.root = Path(root)
        # False: argv[0] is the binary's path and the AK: name only the kernel's process name
        # (comm), which akdiag matches but `pidof AK:<name>` does not (the demo's processes
        # must not answer a monitoring system's pidof on a platform host)
        self.titled_argv0 = titled_argv0
        # another prefix than AK: (with the catalog override naming the titles) keeps the
        # simulated processes apart from a real platform's on the same machine
        self.title_prefix = title_prefix
        self.basedir = self.root / "akd"
        self.catalog = catalog or load_catalog()
        self.port_shift = port_shift
        self.log_lines = log_lines
        self.platform_version = platform_version
        self.secret_seed = secrets.token_hex(8)
        self.ports: Dict[str, int] = {}
        self.processes: Dict[str, subprocess.Popen] = {}
        self.foreign: List[subprocess.Popen] = []
        self.catalog_file = self.root / "catalog-simulated.yaml"

    # -- building ----------------------------------------------------------------
    def build(self) -> "SimulatedHost":
        for sub in ("ak/bin", "pids", "logs", "config/json_consts"):
            (self.basedir / sub).mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        self._write_catalog_override()
        self._write_binaries()
        self._write_akd()
        self._write_config()
        self._write_logs()
        return self

    def _choose_ports(self) -> None:
        for spec in self.catalog.processes:
            if spec.port is None:
                continue
            if self.port_shift is not None:
                self.ports[spec.binary] = spec.port + self.port_shift
                continue
            candidates = [spec.port] + [spec.port + s for s in PORT_SHIFTS if spec.port + s < 65536]
            self.ports[spec.binary] = next((p for p in candidates if port_is_free(p)), candidates[-1])

    def title(self, spec: ProcessSpec) -> str:
        return self.title_prefix + spec.title[len("AK:"):] if spec.title.startswith("AK:") else spec.title

    def _write_catalog_override(self) -> None:
        changed = []
        for spec in self.catalog.processes:
            entry = {"binary": spec.binary}
            if spec.binary in self.ports and self.ports[spec.binary] != spec.port:
                entry["port"] = self.ports[spec.binary]
            if self.title(spec) != spec.title:
                entry["title"] = self.title(spec)
            if len(entry) > 1:
                changed.append(entry)
        self.catalog_file.write_text(yaml.safe_dump({"processes": changed}, sort_keys=False))

    def _write_binaries(self) -> None:
        for spec in self.catalog.processes:
            target = self.basedir / "ak" / "bin" / spec.binary
            if target.exists():
                continue
            _link_python(target)

    def _write_akd(self) -> None:
        akd = self.basedir / "akd"
        akd.write_text(AKD_SCRIPT.replace("{version}", self.platform_version))
        akd.chmod(0o755)

    def _write_config(self) -> None:
        config = sample_config(self.ports, self.secret_seed)
        (self.basedir / "config" / "main.json").write_text(json.dumps(config, indent=2))
        (self.basedir / "config" / "json_consts" / "custom.gender_markers.json").write_text(
            json.dumps({"markers": ["mr", "mrs"], "API_TOKEN": f"tok-{self.secret_seed}"}, indent=2))

    def _write_logs(self) -> None:
        start = time.time() - self.log_lines
        for spec in self.catalog.processes:
            if spec.retired_in:
                continue
            lines = sample_log_lines(spec.binary, self.log_lines, start)
            (self.basedir / "logs" / f"{spec.binary}.log").write_text("\n".join(lines) + "\n")
        rotated = "\n".join(sample_log_lines("api", 50, start - 86400)) + "\n"
        (self.basedir / "logs" / "api.log.1").write_text(rotated)
        with gzip.open(self.basedir / "logs" / "api.log.2.gz", "wt") as handle:
            handle.write(rotated)

    # -- processes ---------------------------------------------------------------
    def start(self, binaries: Optional[Iterable[str]] = None) -> "SimulatedHost":
        """Start the given processes (default: every one not retired) and wait until
        each has bound its port or failed to."""
        if not (self.basedir / "akd").exists():
            self.build()
        names = list(binaries) if binaries is not None else [p.binary for p in self.catalog.processes
                                                               if not p.retired_in]
        started = [(name, self._spawn(self.catalog.process(name))) for name in names]
        for name, proc in started:
            self._wait_ready(name, proc)
            self.processes[name] = proc
            self.write_pidfile(name, str(proc.pid))
        return self

    def _spawn(self, spec: ProcessSpec, title: Optional[str] = None, open_files: int = 0,
               argv0: Optional[str] = None, extra_args: Iterable[str] = ()) -> subprocess.Popen:
        title = title or self.title(spec)
        binary = self.basedir / "ak" / "bin" / spec.binary
        argv0 = argv0 or (title if self.titled_argv0 else str(binary))
        argv = [argv0, "-S", str(FAKEPROC), "--comm", title]
        if self.ports.get(spec.binary):
            argv += ["--port", str(self.ports[spec.binary]), "--address", spec.address]
        if open_files:
            argv += ["--open-files", str(open_files)]
        argv += list(extra_args)
        return subprocess.Popen(argv, executable=str(binary),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                close_fds=True)

    @staticmethod
    def _wait_ready(name: str, proc: subprocess.Popen) -> str:
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
        line = proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        proc.stdout.close()
        if not line.startswith("ready"):
            proc.kill()
            raise RuntimeError(f"simulated process {name} did not start")
        return line

    def start_extra(self, binary: str, title: Optional[str] = None, open_files: int = 0,
                    argv0: Optional[str] = None, extra_args: Iterable[str] = ()) -> subprocess.Popen:
        """One more process for `binary`: a second PID for one title, one with another
        title, or one whose argv[0] is a path (found only by its comm)."""
        proc = self._spawn(self.catalog.process(binary), title, open_files, argv0, extra_args)
        self._wait_ready(binary, proc)
        self.foreign.append(proc)
        return proc

    def start_foreign(self, port: int, title: str = "foreign-httpd") -> subprocess.Popen:
        """A program that is not part of the platform, listening on `port`."""
        program = self.root / "foreign-bin" / title
        if not program.exists():
            program.parent.mkdir(parents=True, exist_ok=True)
            _link_python(program)
        argv = [str(program), "-S", str(FAKEPROC), "--comm", title, "--port", str(port)]
        proc = subprocess.Popen(argv, executable=str(program), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._wait_ready(title, proc)
        self.foreign.append(proc)
        return proc

    def stop_process(self, binary: str, keep_pidfile: bool = True) -> int:
        """Stop one simulated process (our own child); its PID file stays, now stale."""
        proc = self.processes.pop(binary)
        proc.terminate()
        proc.wait(10)
        if not keep_pidfile:
            (self.basedir / "pids" / f"{binary}.pid").unlink(missing_ok=True)
        return proc.pid

    def write_pidfile(self, binary: str, content: str) -> Path:
        path = self.basedir / "pids" / f"{binary}.pid"
        path.write_text(content + "\n")
        return path

    @staticmethod
    def dead_pid() -> int:
        """The PID of a process that has just exited: a stale PID."""
        proc = subprocess.Popen([sys.executable, "-S", "-c", "pass"])
        proc.wait()
        return proc.pid

    def break_like_production(self) -> "SimulatedHost":
        """The demo's faults: one process down with a stale PID file, and one port held by
        a foreign program (the platform process started after it and could not bind)."""
        if "proctrigger" in self.processes:
            self.stop_process("proctrigger")
        trkread = self.catalog.process("trkread")
        if trkread and "trkread" in self.processes:
            self.stop_process("trkread", keep_pidfile=False)
            self.start_foreign(self.ports["trkread"])
            self.start(["trkread"])
        return self

    def stop(self) -> None:
        for proc in list(self.processes.values()) + self.foreign:
            if proc.poll() is None:
                proc.terminate()
        for proc in list(self.processes.values()) + self.foreign:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.processes.clear()
        self.foreign.clear()

    def __enter__(self) -> "SimulatedHost":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
