"""`akdiag upload` to sftp:// through the system's OpenSSH sftp, against a real sshd with
an sftp subsystem on loopback (keys and host keys made with ssh-keygen, as the cluster
tests' lab does; host key checking stays on)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from servers.hostile import free_port, refused_port
from sshd_lab import SSHD, keygen, lab_missing
from upload_servers import clean_env

pytestmark = pytest.mark.skipif(lab_missing() is not None or not os.path.exists("/usr/bin/sftp"),
                                reason=str(lab_missing() or "no sftp client"))


class SftpServer:
    def __init__(self, root: Path):
        self.root = root
        (root / "etc").mkdir(parents=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.port = free_port()
        host_public = keygen(root / "etc" / "host_key")
        self.client_key = root / "client_key"
        (root / "etc" / "authorized_keys").write_text(keygen(self.client_key) + "\n")
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public}\n")
        self.config = root / "etc" / "sshd_config"
        self.config.write_text(textwrap.dedent(f"""\
            Port {self.port}
            ListenAddress 127.0.0.1
            HostKey {root / 'etc' / 'host_key'}
            PidFile {root / 'sshd.pid'}
            AuthorizedKeysFile {root / 'etc' / 'authorized_keys'}
            StrictModes no
            UsePAM no
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            Subsystem sftp internal-sftp
            """))
        self.ssh_config = root / "ssh_config"
        self.ssh_config.write_text(textwrap.dedent(f"""\
            Host 127.0.0.1
              IdentityFile {self.client_key}
              IdentitiesOnly yes
              IdentityAgent none
              UserKnownHostsFile {self.known_hosts}
              GlobalKnownHostsFile /dev/null
              StrictHostKeyChecking yes
              LogLevel ERROR
            """))
        self.incoming = root / "incoming"
        self.incoming.mkdir()
        self.proc = None

    def __enter__(self) -> "SftpServer":
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.root / "sshd.log", "ab"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {(self.root / 'sshd.log').read_text(errors='replace')}")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def url(self, path: str) -> str:
        return f"sftp://root@127.0.0.1:{self.port}{path}"


@pytest.fixture
def sftp_server(tmp_path):
    with SftpServer(tmp_path / "sftp") as server:
        yield server


def upload(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", "upload", *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=timeout, env=clean_env())


def test_a_file_is_stored_by_sftp_with_its_exact_bytes(sftp_server, tmp_path):
    bundle = tmp_path / "akdiag-h-20261201T120000Z.7z"
    bundle.write_bytes(os.urandom(700_000))
    into_folder = upload(bundle, "--url", sftp_server.url(f"{sftp_server.incoming}/"),
                         "--ssh-config", sftp_server.ssh_config)
    renamed = upload(bundle, "--url", sftp_server.url(f"{sftp_server.incoming}/case-42.7z"),
                     "--ssh-config", sftp_server.ssh_config)
    assert into_folder.returncode == 0, into_folder.stderr
    assert renamed.returncode == 0, renamed.stderr
    assert (sftp_server.incoming / bundle.name).read_bytes() == bundle.read_bytes()
    assert (sftp_server.incoming / "case-42.7z").read_bytes() == bundle.read_bytes()
    assert f"Uploaded:  {bundle.name} -> sftp://root@127.0.0.1:{sftp_server.port}" in into_folder.stdout


def test_split_volumes_and_checksums_go_into_the_folder(sftp_server, tmp_path):
    files = [tmp_path / f"b.7z.00{n}" for n in (1, 2, 3)] + [tmp_path / "b.7z.sha256"]
    for path in files:
        path.write_bytes(os.urandom(40_000))
    done = upload(*files, "--url", sftp_server.url(str(sftp_server.incoming)), "--ssh-config", sftp_server.ssh_config)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in sftp_server.incoming.iterdir()} == {
        p.name: p.read_bytes() for p in files}


def test_an_unknown_host_key_fails_at_once_without_a_prompt(sftp_server, tmp_path):
    bundle = tmp_path / "b.7z"
    bundle.write_bytes(b"data")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    started = time.monotonic()
    done = upload(bundle, "--url", sftp_server.url(f"{sftp_server.incoming}/"), "--retries", "3",
                  "--ssh-option", f"IdentityFile={sftp_server.client_key}", "--ssh-option", "IdentitiesOnly=yes",
                  "--ssh-option", f"UserKnownHostsFile={empty}", "--ssh-option", "GlobalKnownHostsFile=/dev/null")
    assert done.returncode == 6
    assert "Host key verification failed" in done.stderr
    assert "attempt 2" not in done.stderr  # not a network hiccup: not tried again
    assert time.monotonic() - started < 30
    assert list(sftp_server.incoming.iterdir()) == []


def test_a_missing_remote_folder_is_a_failed_upload(sftp_server, tmp_path):
    bundle = tmp_path / "b.7z"
    bundle.write_bytes(b"data")
    done = upload(bundle, "--url", sftp_server.url("/no/such/folder/b.7z"), "--ssh-config", sftp_server.ssh_config)
    assert done.returncode == 6
    assert "sftp failed" in done.stderr and "attempt 2" not in done.stderr
    assert "Not sent: b.7z" in done.stderr


def test_no_sshd_listening_is_retried_then_given_up_in_bounded_time(tmp_path):
    bundle = tmp_path / "b.7z"
    bundle.write_bytes(b"data")
    started = time.monotonic()
    done = upload(bundle, "--url", f"sftp://root@127.0.0.1:{refused_port()}/tmp/", "--retries", "1",
                  "--timeout", "2s", "--ssh-option", "StrictHostKeyChecking=yes")
    assert done.returncode == 6
    assert "attempt 2 of 2" in done.stderr
    assert time.monotonic() - started < 30
