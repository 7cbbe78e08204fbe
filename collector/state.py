"""akdiag's own state on the host, outside every bundle and never under BASEDIR: the key
that lets two bundles of one host say "this secret changed" without holding the secret
or anything from which it could be guessed."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import tempfile
from pathlib import Path
from typing import Optional

from collector.live import path_inside
from collector.trust import untrusted_reason

KEY_FILE = "secret-digest.key"
KEY_BYTES = 32


def state_dir() -> Path:
    """AKDIAG_STATE_DIR, else /var/lib/akdiag for root, else ~/.local/state/akdiag."""
    explicit = os.environ.get("AKDIAG_STATE_DIR")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/akdiag")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "akdiag"


def digest_key(basedir: Path) -> bytes:
    """The host's secret-digest key, created once (mode 0600) on first use.
    Raises OSError when it can be neither read nor created, or when the state folder
    could be changed by another user (then its key could be planted or read)."""
    folder = state_dir()
    if path_inside(folder, basedir):
        raise OSError(f"akdiag's state folder {folder} is inside BASEDIR; refusing to write there")
    path = folder / KEY_FILE
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    problem = untrusted_reason(str(folder))
    if problem:
        raise OSError(f"akdiag's state folder is not safe to use: {problem}")
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    # Written whole under an unpredictable name, then linked to its name: a run that
    # reads the key never sees half of one, and an existing name is never replaced.
    fd, temp = tempfile.mkstemp(prefix=".key.", dir=str(folder))
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, os.urandom(KEY_BYTES))
        os.fsync(fd)
        os.close(fd)
        try:
            os.link(temp, path)
        except FileExistsError:  # another run created it first
            pass
    finally:
        os.unlink(temp)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    fd = os.open(str(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise OSError(f"{path} is not an akdiag key ({len(key)} bytes)")
    return key


def secret_digest(key: bytes, value: object) -> str:
    return hmac.new(key, repr(value).encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:32]


def try_digest_key(basedir: Path) -> "tuple[Optional[bytes], Optional[str]]":
    try:
        return digest_key(basedir), None
    except OSError as exc:
        return None, f"secret digests left out: {exc.strerror or exc}"
