"""--split: a finished archive cut into 7-Zip volumes (`<name>.7z.001`, `.002`, ...),
which are the archive's bytes in pieces: stock `7z x <name>.7z.001` joins and opens them,
encrypted ones too.  Each volume is written under a temporary name in the output folder
and linked under its final name once complete; the set takes the first name none of whose
volumes exists yet (-2, -3... as a single archive does).  The checksums go beside them in
`sha256sum -c` format."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import List

from collector import tempfiles
from collector.bundle import archive

CHUNK = 1024 * 1024
MAX_VOLUMES = 999  # 7-Zip numbers volumes with three digits


def volume_count(size: int, volume_size: int) -> int:
    return max(1, -(-size // volume_size))


def _volume_names(base: Path, count: int) -> List[Path]:
    return [base.parent / f"{base.name}.{number:03d}" for number in range(1, count + 1)]


def _write_piece(source, output_dir: Path, length: int) -> Path:
    fd, temp = tempfile.mkstemp(prefix=tempfiles.prefix("partial"), dir=str(output_dir))
    try:
        with os.fdopen(fd, "wb") as handle:
            left = length
            while left:
                chunk = source.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(errno.EIO, "the archive ended before its last volume")
                handle.write(chunk)
                left -= len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(temp)
        raise
    return Path(temp)


def _link_all(pieces: List[Path], targets: List[Path]) -> bool:
    """Link every piece under its target, or none (False when a name is taken)."""
    done: List[Path] = []
    try:
        for piece, target in zip(pieces, targets):
            try:
                os.link(piece, target)  # never replaces: a name taken meanwhile fails here
            except FileExistsError:
                remove_all(done)
                return False
            done.append(target)
    except BaseException:  # a stop signal or an error half-way: no partial set is left
        remove_all(done)
        raise
    return True


def remove_all(paths: List[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def place_volumes(packed: Path, output_dir: Path, name: str, fmt: str, volume_size: int) -> List[Path]:
    """Cut `packed` into volumes of `volume_size` bytes (the last one smaller) placed in
    `output_dir`; their paths, first volume first."""
    count = volume_count(packed.stat().st_size, volume_size)
    if count > MAX_VOLUMES:
        raise OSError(errno.EFBIG, f"--split would make {count} volumes; 7-Zip numbers at most {MAX_VOLUMES}")
    pieces: List[Path] = []
    try:
        with open(packed, "rb") as source:
            size = packed.stat().st_size
            for number in range(count):
                pieces.append(_write_piece(source, output_dir, min(volume_size, size - number * volume_size)))
        for base in archive._candidates(output_dir, name, fmt):
            targets = _volume_names(base, count)
            if base.exists() or checksum_path([base]).exists():
                continue
            if _link_all(pieces, targets):
                return targets
        raise FileExistsError(errno.EEXIST, f"no free name for the volumes of {name}")
    finally:
        for piece in pieces:
            piece.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_path(volumes: List[Path]) -> Path:
    """`<name>.7z.sha256` beside the archive or its volumes."""
    first = volumes[0]
    base = first.with_suffix("") if len(volumes) > 1 or first.suffix[1:].isdigit() else first
    return base.parent / f"{base.name}.sha256"


def write_checksums(volumes: List[Path]) -> Path:
    """A `sha256sum -c` file naming each volume (or the archive) by its base name, written
    under a temporary name and linked into place (never over another file)."""
    text = "".join(f"{sha256_of(v)}  {v.name}\n" for v in volumes)
    target = checksum_path(volumes)
    fd, temp = tempfile.mkstemp(prefix=tempfiles.prefix("partial"), dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.link(temp, target)
    finally:
        os.unlink(temp)
    return target
