"""`akdiag check --output FILE`: the check's text written whole or not at all.  A temporary
file in the same folder (a name starting with a dot and not ending in .prom, which
node_exporter's textfile collector passes over) is written, flushed to disk, made 0644 so
that an unprivileged exporter or agent can read it, then renamed over FILE: a reader sees
the old file or the new one, never part of one.  A failure leaves the old file as it was."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

OUTPUT_MODE = 0o644


class OutputFileError(Exception):
    """FILE could not be written; the message says why."""


def write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    if path.is_dir():
        raise OutputFileError(f"cannot write {path}: it is a folder")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    except OSError as exc:
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
            os.fchmod(stream.fileno(), OUTPUT_MODE)
        os.replace(temporary, str(path))
    except BaseException as exc:  # a full disk, or a signal: no temporary file stays behind
        if os.path.lexists(temporary):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
