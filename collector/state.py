"""akdiag's own state on the host, outside every bundle and never under BASEDIR: the key
that lets two bundles of one host say "this secret changed" without holding the secret
or anything from which it could be guessed."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Optional

from collector.live import path_inside

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
    Raises OSError when it can be neither read nor created."""
    folder = state_dir()
    if path_inside(folder, basedir):
        raise OSError(f"akdiag's state folder {folder} is inside BASEDIR; refusing to write there")
    path = folder / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another run created it first
        return _read_key(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(os.urandom(KEY_BYTES))
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    with open(path, "rb") as handle:
        key = handle.read(KEY_BYTES + 1)
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
