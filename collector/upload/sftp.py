"""sftp:// transfers through the system's OpenSSH `sftp` in batch mode: keys only (no
password or passphrase prompt can hang the run), the host key checked as ssh always does,
each run bounded in time (ConnectTimeout and keep-alives end a stalled connection; the
whole run is killed past its deadline)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable, List

from collector import bounded, tempfiles
from collector.upload.retry import Retryable, UploadError, with_retries
from collector.upload.target import UploadSettings, UploadTarget, sftp_parts

MIN_RATE = 16 * 1024  # bytes per second on average, as for HTTP
SSH_FAILED = 255  # sftp's exit code when the connection itself failed
_NOT_RETRIED = ("Permission denied", "Host key verification failed", "No such file", "Couldn't",
                "REMOTE HOST IDENTIFICATION HAS CHANGED", "Could not resolve hostname")
_GLOB = re.compile(r'([*?\[\]])')


def send_sftp(path: Path, target: UploadTarget, settings: UploadSettings, say: Callable[[str], None]) -> str:
    size = path.stat().st_size
    return with_retries(lambda _number: _attempt(path, size, target, settings), settings.retries, say)


def sftp_argv(target: UploadTarget, settings: UploadSettings, batch: Path) -> List[str]:
    user, host, port, _remote = sftp_parts(target)
    alive = max(1, int(settings.timeout // 3))
    argv = ["sftp", "-b", str(batch)]
    if settings.ssh_config:
        argv += ["-F", settings.ssh_config]
    argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(settings.timeout))}",
             "-o", f"ServerAliveInterval={alive}", "-o", "ServerAliveCountMax=3"]
    for option in settings.ssh_options:
        argv += ["-o", option]
    if port:
        argv += ["-P", str(port)]
    return argv + ["--", f"{user}@{host}" if user else host]


def batch_text(path: Path, remote: str) -> str:
    """One `put` (sftp's batch syntax: double quotes, backslash escapes; the local name
    is globbed by sftp, so its wildcards are escaped)."""
    local = _GLOB.sub(r"\\\1", str(path.resolve()))
    return f"put {_quoted(local)} {_quoted(remote)}\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attempt(path: Path, size: int, target: UploadTarget, settings: UploadSettings) -> str:
    if shutil.which("sftp") is None:
        raise UploadError("no `sftp` command on this host (Debian/Ubuntu: openssh-client; RHEL: openssh-clients)")
    _user, _host, _port, remote = sftp_parts(target)
    folder = tempfiles.make_folder("ssh")
    try:
        batch = folder / "batch"
        batch.write_text(batch_text(path, remote), encoding="utf-8")
        deadline = settings.timeout + size / MIN_RATE + 10
        result = bounded.run_command(sftp_argv(target, settings, batch), timeout=deadline, max_output=64 * 1024)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result.exit_code == 0:
        return f"stored as {remote}"
    said = _last_lines(result.stderr.decode("utf-8", "replace"))
    if result.timed_out:
        raise Retryable(f"{target.shown}: sftp gave no result within {deadline:.0f} s; stopped it")
    if result.error:
        raise UploadError(f"{target.shown}: {result.error}")
    reason = f"sftp failed (exit code {result.exit_code}){': ' + said if said else ''}"
    if result.exit_code == SSH_FAILED and not any(word in said for word in _NOT_RETRIED):
        raise Retryable(f"{target.shown}: {reason}")
    raise UploadError(f"{target.shown}: {reason}")


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[-count:])[:500]
