"""Real SSH hosts for the cluster tests: one real OpenSSH sshd per simulated host, on a
free loopback port, each inside its own PID namespace with that host's simulated
Altcraft processes (tests/cluster_launcher.py), so that no host sees another's AK:
processes.  Host keys and the client key are made here with ssh-keygen; the client
uses an `ssh -F` config whose known_hosts holds the hosts' keys (host key checking
stays on).  Everything started is stopped by `SshLab.stop()`.
"""

from __future__ import annotations

import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from servers.hostile import free_port

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().with_name("cluster_launcher.py")
SSHD = "/usr/sbin/sshd"
READY_SECONDS = 60.0


def lab_missing() -> Optional[str]:
    """Why real SSH hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (PID namespaces, sshd)"
    for tool in (SSHD, shutil.which("ssh"), shutil.which("ssh-keygen"), shutil.which("unshare")):
        if not tool or not os.path.exists(tool):
            return f"{tool or 'ssh/ssh-keygen/unshare'} is not installed (Debian: openssh-server, util-linux)"
    return None




def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL)
    return (path.with_suffix(".pub") if path.suffix else Path(str(path) + ".pub")).read_text().strip()


@dataclass
class LabHost:
    name: str
    port: int
    root: Path
    tmpdir: Path  # the host's TMPDIR: where akdiag's remote folder goes (and must be gone after)

    @property
    def home(self) -> Path:
        return self.root / "home"
    proc: Optional[subprocess.Popen] = None
    info: Dict = field(default_factory=dict)

    @property
    def basedir(self) -> str:
        return self.info.get("basedir", str(self.root / "sim" / "akd"))

    @property
    def catalog_file(self) -> Optional[str]:
        return self.info.get("catalog_file")


class SshLab:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        self.client_key = self.root / "client_key"
        self.client_public = keygen(self.client_key)
        self.known_hosts = self.root / "known_hosts"
        self.known_hosts.write_text("")
        self.ssh_config = self.root / "ssh_config"
        self.hosts: Dict[str, LabHost] = {}
        self._config_entries: List[str] = []

    # -- hosts ---------------------------------------------------------------------
    def add_host(self, name: str, start: List[str] = (), authorize: bool = True, slow_akd: int = 0,
                 without_python: bool = False) -> LabHost:
        """A host with a real sshd in its own namespaces, running `start` processes;
        `without_python`: the sessions' PATH holds the usual tools but no python3."""
        root = self.root / name
        (root / "etc").mkdir(parents=True)
        tmpdir = root / "tmp"
        tmpdir.mkdir()
        port = free_port()
        host_public = keygen(root / "etc" / "host_key")
        authorized = root / "etc" / "authorized_keys"
        authorized.write_text((self.client_public if authorize else keygen(root / "etc" / "other_key")) + "\n")
        state = root / "state"
        home = root / "home"  # the host's own home (its ~/.cache): no .bashrc, python3 is the system's
        home.mkdir()
        sshd_config = root / "etc" / "sshd_config"
        sshd_config.write_text(textwrap.dedent(f"""\
            Port {port}
            ListenAddress 127.0.0.1
            HostKey {root / 'etc' / 'host_key'}
            PidFile {root / 'sshd.pid'}
            AuthorizedKeysFile {authorized}
            StrictModes no
            UsePAM no
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            MaxStartups 50:30:100
            MaxSessions 50
            SetEnv AKDIAG_STATE_DIR={state} TMPDIR={tmpdir} HOME={home}{self._bare_path(root) if without_python else ''}
            """))
        with open(self.known_hosts, "a") as handle:
            handle.write(f"[127.0.0.1]:{port} {host_public}\n")
        self._add_config(name, port)
        config = {"name": name, "root": str(root / "sim"), "sshd": SSHD, "sshd_config": str(sshd_config),
                  "port": port, "start": list(start), "slow_akd": slow_akd}
        config_file = root / "launcher.json"
        config_file.write_text(json.dumps(config))
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--uts", "--kill-child",
                                 sys.executable, str(LAUNCHER), str(config_file)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
        host = LabHost(name, port, root, tmpdir, proc)
        self.hosts[name] = host
        ready = select.select([proc.stdout], [], [], READY_SECONDS)[0]
        line = proc.stdout.readline().decode() if ready else ""
        proc.stdout.close()
        host.info = json.loads(line) if line.strip() else {}
        if not host.info.get("ready"):
            raise RuntimeError(f"simulated host {name} did not start: {line!r}; "
                               f"{(root / 'sim' / 'sshd.log').read_text(errors='replace') if (root / 'sim' / 'sshd.log').exists() else ''}")
        return host

    @staticmethod
    def _bare_path(root: Path) -> str:
        folder = root / "bin"
        folder.mkdir()
        for tool in ("sh", "uname", "mktemp", "mkdir", "cat", "wc", "tr", "rm", "mv", "sleep", "date", "head", "ps"):
            found = shutil.which(tool)
            if found:
                (folder / tool).symlink_to(found)
        return f" PATH={folder}"

    def add_unreachable(self, name: str) -> LabHost:
        """A host entry whose port nothing listens on."""
        port = free_port()
        self._add_config(name, port)
        root = self.root / name
        root.mkdir()
        host = LabHost(name, port, root, root)
        self.hosts[name] = host
        return host

    def add_alias(self, alias: str, of: str) -> LabHost:
        """A second name (an ssh config alias) for the running host `of`: one machine, two names."""
        host = self.hosts[of]
        self._add_config(alias, host.port)
        self.hosts[alias] = LabHost(alias, host.port, host.root, host.tmpdir, None, host.info)
        return host

    def _add_config(self, name: str, port: int) -> None:
        self._config_entries.append(textwrap.dedent(f"""\
            Host {name}
              HostName 127.0.0.1
              Port {port}
              User root
              IdentityFile {self.client_key}
              IdentitiesOnly yes
              IdentityAgent none
              UserKnownHostsFile {self.known_hosts}
              GlobalKnownHostsFile /dev/null
              StrictHostKeyChecking yes
              PasswordAuthentication no
              KbdInteractiveAuthentication no
              LogLevel ERROR
            """))
        self.ssh_config.write_text("\n".join(self._config_entries))

    def hosts_file(self, entries: List[dict]) -> Path:
        """A hosts YAML; each entry names a lab host and may add roles, timeout."""
        import yaml

        hosts = []
        for entry in entries:
            host = self.hosts[entry["name"]]
            record = {"name": host.name, "ssh": host.name, "basedir": host.basedir}
            if host.catalog_file:
                record["catalog"] = host.catalog_file
            record.update({k: v for k, v in entry.items() if k != "name"})
            hosts.append(record)
        path = self.root / "hosts.yaml"
        path.write_text(yaml.safe_dump({"hosts": hosts}, sort_keys=False))
        return path

    # -- teardown --------------------------------------------------------------------
    def stop(self) -> None:
        """SIGKILL to each `unshare`: --kill-child takes the namespace's init down, and the
        kernel every process of the namespace with it (sshd, sessions, simulated processes)."""
        for host in self.hosts.values():
            if host.proc is not None and host.proc.poll() is None:
                host.proc.send_signal(signal.SIGKILL)
        for host in self.hosts.values():
            if host.proc is not None:
                try:
                    host.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass


def build_single_file(target: Path) -> Path:
    """akdiag.pyz for this machine's architecture (every Python version), with the
    function the single-file build offers."""
    from collector import zipapp

    return zipapp.build_single_file(target, zipapp.default_wheel_dir(), machines=(platform.machine(),))
