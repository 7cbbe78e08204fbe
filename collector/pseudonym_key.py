"""--pseudonym-key FILE: the key that makes pseudonyms the same across runs (and across
the hosts of one cluster collection).  Without it every bundle draws its own key.

The file is created when missing (mode 0600, exclusively, never through a symbolic
link) and refused when someone else owns it or others may read it: whoever reads it
can test guesses of an e-mail against its pseudonym.  It never enters a bundle.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Optional

from collector.live import path_inside

KEY_BYTES = 32
MIN_KEY_CHARS = 32
MAX_FILE_BYTES = 4096


class KeyFileError(Exception):
    """The key file cannot be used; the message says why."""


def new_key_text() -> bytes:
    return os.urandom(KEY_BYTES).hex().encode("ascii") + b"\n"


def load_or_create(path: Path, basedir: Optional[Path] = None) -> bytes:
    """The key held by `path`, created first when it does not exist.  Never under
    BASEDIR: akdiag does not write there, and a file there could be collected."""
    path = Path(path)
    if basedir is not None and path_inside(path, basedir):
        raise KeyFileError(f"{path} is inside BASEDIR {basedir}, which akdiag collects from and never writes "
                           "into; keep the key elsewhere")
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return _create(path, basedir)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyFileError(f"{path} is a symbolic link; give the key file itself") from None
        raise KeyFileError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        _check_private(path, os.fstat(fd))
        data = os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    key = data.strip()
    if len(data) > MAX_FILE_BYTES or len(key) < MIN_KEY_CHARS:
        raise KeyFileError(f"{path} is not a pseudonym key (expected {MIN_KEY_CHARS} to {MAX_FILE_BYTES} "
                           "characters; a missing file is created with a new key)")
    return key


def _check_private(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path} is not a regular file")
    if st.st_uid != os.geteuid():
        raise KeyFileError(f"{path} is owned by uid {st.st_uid}, not by the user running akdiag; refused")
    if st.st_mode & 0o077:
        raise KeyFileError(f"{path} can be read or written by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                           f"make it private: chmod 600 {path}")


def _create(path: Path, basedir: Optional[Path]) -> bytes:
    key = new_key_text()
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # created meanwhile (another run, or a link planted): read it with its checks
        return load_or_create(path, basedir)
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, key)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink()
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    return key.strip()

