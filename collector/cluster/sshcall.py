"""One ssh call as akdiag makes it: the options it gives the system's OpenSSH client, what
the call returns, and what its stderr says went wrong (collector/cluster/ssh.py runs them)."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import List, Optional, Tuple

DEFAULT_CONNECT_TIMEOUT = 10.0
STDERR_KEEP = 64 * 1024
# OpenSSH's own chatter that is never the reason a step failed.
_NOISE = re.compile(r"^(Warning: Permanently added|\*\* |Pseudo-terminal will not be allocated|"
                    r"Connection to \S+ closed\.?$|Shared connection to \S+ closed\.?$|Transferred: )")
_KINDS = (
    ("auth_failed", re.compile(r"Permission denied|Too many authentication failures|no mutual signature", re.I)),
    ("host_key", re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|"
                            r"host key .* not known|No \S+ host key is known", re.I)),
    ("unreachable", re.compile(r"Connection refused|No route to host|Connection timed out|timed out|"
                               r"Could not resolve hostname|Name or service not known|Network is unreachable|"
                               r"Connection closed by|Connection reset|kex_exchange_identification|"
                               r"Temporary failure in name resolution|proxy|banner exchange", re.I)),
)


class RemoteError(Exception):
    """A step on a host that failed: `kind` (unreachable, auth_failed, host_key, timeout,
    no_python, ssh_error, remote_failed, transfer_failed, cancelled), the exit status and
    the last line of stderr."""

    def __init__(self, kind: str, message: str, exit_status: Optional[int] = None,
                 stderr_tail: Optional[str] = None):
        super().__init__(message)
        self.kind = kind
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail


@dataclass(frozen=True)
class SshSettings:
    program: str = "ssh"
    config_file: Optional[str] = None  # ssh -F FILE
    options: Tuple[str, ...] = ()  # ssh -o OPTION each (--ssh-option)
    extra_args: Tuple[str, ...] = ()  # words of AKDIAG_SSH_OPTIONS, given to ssh as they are
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @classmethod
    def from_environment(cls, config_file: Optional[str], options, connect_timeout: float) -> "SshSettings":
        extra = tuple(shlex.split(os.environ.get("AKDIAG_SSH_OPTIONS", "")))
        return cls(config_file=config_file, options=tuple(options), extra_args=extra,
                   connect_timeout=connect_timeout)

    def argv(self, control_path: str, master: bool) -> List[str]:
        """ssh and its options, up to (not including) the destination.  akdiag's own
        options come first: for ssh the first value given wins."""
        argv = [self.program]
        if self.config_file:
            argv += ["-F", self.config_file]
        for option in ("BatchMode=yes", f"ConnectTimeout={max(1, int(round(self.connect_timeout)))}",
                       f"ControlPath={control_path}", "ControlMaster=" + ("yes" if master else "no"),
                       "ControlPersist=no", "ClearAllForwardings=yes", "ForwardAgent=no", "ForwardX11=no",
                       "RequestTTY=no", "RemoteCommand=none", "PermitLocalCommand=no", "ServerAliveInterval=15",
                       "ServerAliveCountMax=3"):
            argv += ["-o", option]
        for option in self.options:
            argv += ["-o", option]
        return argv + list(self.extra_args)


def stderr_last_line(data: bytes) -> Optional[str]:
    lines = [line.strip() for line in data.decode("utf-8", "replace").replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line and not _NOISE.match(line)]
    return lines[-1][:500] if lines else None


def classify(stderr_tail: Optional[str]) -> str:
    for kind, pattern in _KINDS:
        if stderr_tail and pattern.search(stderr_tail):
            return kind
    return "ssh_error"


def sh_command(script: str) -> str:
    """The remote command line: the script run by `sh -c`, whatever the login shell."""
    return "sh -c " + shlex.quote(script)


@dataclass
class Result:
    exit_status: Optional[int]
    stdout: bytes
    stderr: bytes
    duration: float
    timed_out: bool

    @property
    def stderr_tail(self) -> Optional[str]:
        return stderr_last_line(self.stderr)

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def read_stderr(handle) -> bytes:
    try:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - STDERR_KEEP))
        return handle.read()
    except (OSError, ValueError):
        return b""
