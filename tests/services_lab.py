"""A real systemd-journald in a private mount and PID namespace, for the services tests.

Run as PID 1 of a new PID namespace (`unshare --mount --pid --fork --mount-proc`), as
root: /run and the journal folder become private tmpfs mounts (and /dev/kmsg /dev/null,
so that the host's kernel log stays out), the distribution's systemd-journald starts on
them, and this process, PID 1 here as systemd is on a host, sends the unit transitions
systemd writes (UNIT=<unit>, identifier "systemd") and a service's own lines.  Then the
services collector runs against it with the real journalctl (and systemctl, which finds
no service manager on its bus), and its result is written as JSON to argv[2].

    python services_lab.py journal|collect OUT.json BASEDIR BUNDLE_DIR
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

JOURNALD = ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald")
SOCKET = "/run/systemd/journal/socket"

# (unit, identifier, message): what systemd 252 writes for a unit killed by the OOM killer
# and restarted, and a line of the service itself that must not be read as a transition.
ENTRIES = (
    ("mongod.service", "systemd", "Starting mongod.service - MongoDB Database Server..."),
    ("mongod.service", "systemd", "Started mongod.service - MongoDB Database Server."),
    ("mongod.service", "mongod", "Started listening on 127.0.0.1:27017"),
    ("mongod.service", "systemd", "mongod.service: A process of this unit has been killed by the OOM killer."),
    ("mongod.service", "systemd", "mongod.service: Main process exited, code=killed, status=9/KILL"),
    ("mongod.service", "systemd", "mongod.service: Failed with result 'oom-kill'."),
    ("mongod.service", "systemd", "mongod.service: Consumed 1min 2.345s CPU time."),
    ("mongod.service", "systemd", "mongod.service: Scheduled restart job, restart counter is at 28."),
    ("mongod.service", "systemd", "Stopped mongod.service - MongoDB Database Server."),
    ("rabbitmq-server.service", "systemd", "Started rabbitmq-server.service - RabbitMQ broker."),
)


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def start_journald() -> subprocess.Popen:
    mount("--make-rprivate", "/")
    mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", "/run")
    if os.path.isdir("/var/log/journal"):
        mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", "/var/log/journal")
    mount("--bind", "/dev/null", "/dev/kmsg")
    os.makedirs("/run/systemd/journal")
    binary = next(path for path in JOURNALD if os.path.exists(path))
    proc = subprocess.Popen([binary], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(SOCKET):
            return proc
        time.sleep(0.05)
    raise SystemExit("systemd-journald did not open its socket")


def send_entries() -> None:
    """Native journal protocol, from PID 1: what `journalctl -u` reads as the manager's."""
    assert os.getpid() == 1, "the lab must run as PID 1 of its PID namespace"
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    for unit, identifier, message in ENTRIES:
        sender.sendto(f"MESSAGE={message}\nSYSLOG_IDENTIFIER={identifier}\nUNIT={unit}\nPRIORITY=6\n".encode(), SOCKET)
        time.sleep(0.002)  # distinct timestamps
    sender.close()
    time.sleep(0.3)


def make_ctx(basedir: Path, bundle: Path, **options):
    from collector.bundle.writer import BundleWriter
    from collector.catalog import load_catalog
    from collector.context import CollectOptions, Context, Deadline
    from collector.redact.scrubber import Scrubber

    writer = BundleWriter(bundle, Scrubber())
    return Context(basedir=basedir, basedir_source="test", catalog=load_catalog(), deadline=Deadline(30),
                   writer=writer.for_collector("services"), options=CollectOptions(**options))


def main() -> None:
    mode, out, basedir, bundle = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    journald = start_journald()
    try:
        send_entries()
        from collector.collectors import services

        ctx = make_ctx(basedir, bundle)
        if mode == "journal":
            record = {"units": [{"unit": "mongod.service"}, {"unit": "rabbitmq-server.service"},
                                {"unit": "clickhouse-server.service"}], "events": [], "errors": [], "notes": []}
            for unit in record["units"]:
                services._journal(ctx, unit, time.time() - 3600, record)
            later = {"units": [{"unit": "mongod.service"}], "events": [], "errors": [], "notes": []}
            services._journal(make_ctx(basedir, bundle / "later"), later["units"][0], time.time() + 3600, later)
            record["window_after_the_lines"] = later
        else:
            os.makedirs(services.SYSTEMD_RUNTIME)  # as where systemd runs: systemctl is asked
            record = services.collect(ctx)
        out.write_text(json.dumps(record))
    finally:
        journald.kill()
        journald.wait()


if __name__ == "__main__":
    main()
