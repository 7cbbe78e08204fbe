"""One simulated cluster host, run by the cluster tests as the first process of its own
PID, mount and UTS namespaces (`unshare --pid --fork --mount-proc --uts --kill-child`):
it names the host, builds and starts that host's simulated Altcraft processes (so that
no other host sees them), starts the host's real sshd, prints one JSON line when all is
ready, then reaps orphans until sshd exits or the namespace is torn down.

    python tests/cluster_launcher.py CONFIG.json
config: {"name", "root", "sshd": "/usr/sbin/sshd", "sshd_config", "port", "start": [binaries],
         "slow_akd": seconds (0: none), "extra_titles": [binary, ...]}
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from collector.simulate import SimulatedHost  # noqa: E402


def _wait_port(port: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 ignores signals it does not handle
    socket.sethostname(config["name"])
    host = SimulatedHost(Path(config["root"]), log_lines=config.get("log_lines", 50)).build()
    if config.get("slow_akd"):
        akd = host.basedir / "akd"
        text = akd.read_text()
        akd.write_text(text.replace("\nhere=", f"\nsleep {int(config['slow_akd'])}\nhere=", 1))
    host.start(config.get("start") or [])
    sshd = subprocess.Popen([config["sshd"], "-D", "-e", "-f", config["sshd_config"]],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(Path(config["root"]) / "sshd.log", "ab"))
    ready = _wait_port(config["port"], 10.0)
    print(json.dumps({"ready": ready and sshd.poll() is None, "catalog_file": str(host.catalog_file),
                      "basedir": str(host.basedir), "ports": host.ports,
                      "pids": {name: proc.pid for name, proc in host.processes.items()}}), flush=True)
    sys.stdout.close()
    while True:  # the namespace's init: reap every orphan until sshd is gone
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            time.sleep(0.5)
            continue
        if pid == sshd.pid:
            break
    host.stop()


if __name__ == "__main__":
    main()
