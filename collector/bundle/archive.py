"""Packing a finished bundle folder into its final file, atomically: the archive is
written under a temporary name in the output folder and linked under its final name when
complete, never over another bundle."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tarfile
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Callable, Optional

from collector import tempfiles
from collector.bundle import sevenzip

TAR_GZ_LEVEL = 6


def _safe_name_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:64] or "host"


def bundle_name(hostname: str, label: str, stamp: str) -> str:
    """akdiag-<host>-<label->YYYYmmddTHHMMSSZ, without the extension."""
    label_part = f"{_safe_name_part(label)}-" if label else ""
    return f"akdiag-{_safe_name_part(hostname)}-{label_part}{stamp}"


MAX_NAME_TRIES = 1000


def final_path(output_dir: Path, name: str, fmt: str) -> Path:
    return output_dir / (name if fmt == "dir" else f"{name}.{fmt}")


def _candidates(output_dir: Path, name: str, fmt: str):
    """The bundle's name, then the same with -2, -3...: runs started in the same second."""
    yield final_path(output_dir, name, fmt)
    for number in range(2, MAX_NAME_TRIES + 1):
        yield final_path(output_dir, f"{name}-{number}", fmt)


def pack(staging: Path, output_dir: Path, name: str, fmt: str, password: str = None, early=None) -> Path:
    """Pack `staging` (a finished bundle folder) and move it to its final name, never over
    another file: a name already taken gets a suffix (-2, -3...); the real path is returned.
    `early` (collector.bundle.prepack.Prepack): a plain 7z archive begun while the run worked."""
    if fmt == "dir":
        os.chmod(staging, 0o700)
        return _place_folder(staging, output_dir, name)
    temp = early.finish(staging, name) if early is not None and fmt == "7z" and not password else None
    written = temp is not None
    if not written:
        fd, temp_name = tempfile.mkstemp(prefix=tempfiles.prefix("partial"), dir=str(output_dir))
        os.close(fd)
        temp = Path(temp_name)
    try:
        if not written:
            os.chmod(temp, 0o600)
            _write(staging, temp, name, fmt, password)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        return _place_file(temp, output_dir, name, fmt)
    finally:
        temp.unlink(missing_ok=True)


def _write(staging: Path, temp: Path, name: str, fmt: str, password: Optional[str]) -> None:
    if fmt == "7z":
        _write_7z(staging, temp, name, password)
    elif fmt == "tar.gz":
        _write_tar_gz(staging, temp, name)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _place_file(temp: Path, output_dir: Path, name: str, fmt: str,
                taken: Optional[Callable[[Path], bool]] = None) -> Path:
    """A hard link under the first free name (link() never replaces); where the file system
    has no hard links, an exclusively created placeholder that the archive then replaces.
    `taken(target)` says a name is not free for another reason (a file that comes with it)."""
    for target in _candidates(output_dir, name, fmt):
        if taken is not None and taken(target):
            continue
        try:
            os.link(temp, target)
            return target
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                raise
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        except FileExistsError:
            continue
        os.replace(temp, target)
        return target
    raise FileExistsError(errno.EEXIST, f"no free name for {name} after {MAX_NAME_TRIES} tries")


def _place_folder(staging: Path, output_dir: Path, name: str) -> Path:
    """An empty folder made exclusively under the first free name, then the bundle renamed
    over it (rename replaces an empty folder, and this one is ours)."""
    for target in _candidates(output_dir, name, "dir"):
        try:
            os.mkdir(target, 0o700)
        except FileExistsError:
            continue
        try:
            os.rename(staging, target)
        except BaseException:
            try:
                os.rmdir(target)
            except OSError:
                pass
            raise
        return target
    raise FileExistsError(errno.EEXIST, f"no free name for {name} after {MAX_NAME_TRIES} tries")


# zlib's level for the 7z archive's Deflate (py7zr's own is zlib's default, 6).  On the
# reference host's 26 MB bundle, one core: level 6 packs in 0.73 s of CPU to 5.88 MB,
# level 3 in 0.34 s to 6.45 MB (+10%), level 1 in 0.38 s to 6.73 MB: py7zr's own work
# is most of what is left.  --max-size's estimate deflates its samples at the same level.
DEFLATE_LEVEL = 3
_deflate_lock = threading.Lock()


class LeveledDeflate:
    """A Deflate coder for py7zr at DEFLATE_LEVEL: the raw stream (no zlib header) that
    py7zr's own Deflate writes and stock 7-Zip reads."""

    level = DEFLATE_LEVEL

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(self.level, zlib.DEFLATED, -15)

    def compress(self, data) -> bytes:
        return self._compressor.compress(data)

    def flush(self) -> bytes:
        return self._compressor.flush()


def _use_leveled_deflate(py7zr) -> None:
    """py7zr takes no level for Deflate: its coder table's entry is replaced, once, by
    LeveledDeflate.  Where the table is not what this expects (another py7zr), py7zr's
    own coder stays: the archive is the same, only slower to write."""
    with _deflate_lock:
        try:
            from py7zr import compressor

            table = compressor.algorithm_class_map
            coder, decoder = table[py7zr.FILTER_DEFLATE]
        except (ImportError, AttributeError, KeyError, TypeError, ValueError):
            return
        if coder is getattr(compressor, "DeflateCompressor", None):
            table[py7zr.FILTER_DEFLATE] = (LeveledDeflate, decoder)


def _write_7z(staging: Path, temp: Path, name: str, password: str = None) -> None:
    # Chosen for speed on log text (figures in the README, measured on 22.7 MB of simulated
    # platform logs on one core): Deflate in 7z packs 58 MB/s to 24.0% of the size, where
    # LZMA2 preset 1 packs 11 MB/s to 23.6% and preset 0 28 MB/s to 24.2%.  Stock 7-Zip
    # reads Deflate; it does not read 7z with zstd.  At DEFLATE_LEVEL, not zlib's 6.
    # A plain archive is written by akdiag's own writer, with a plain header (py7zr's
    # import alone costs 12 MB and 0.14 s); an encrypted one by py7zr, its header
    # (the names) encrypted.
    if not password:
        sevenzip.write_archive(str(staging), str(temp), name, DEFLATE_LEVEL)
        return
    import py7zr  # here, not at the top: only an encrypted bundle pays its import

    _use_leveled_deflate(py7zr)
    filters = [{"id": py7zr.FILTER_DEFLATE}, {"id": py7zr.FILTER_CRYPTO_AES256_SHA256}]
    with py7zr.SevenZipFile(temp, "w", filters=filters, password=password, header_encryption=True) as archive:
        archive.writeall(str(staging), arcname=name)


def _write_tar_gz(staging: Path, temp: Path, name: str) -> None:
    with tarfile.open(temp, "w:gz", compresslevel=TAR_GZ_LEVEL) as archive:
        archive.add(str(staging), arcname=name)


MAPPING_NAME_TRIES = 100


def write_mapping_beside(bundle: Path, mapping: dict) -> Path:
    """The pseudonym -> original table, next to the bundle and never inside it, readable
    by its owner only: the administrator keeps it to look up whom support talks about.

    The output folder may be shared (/tmp): the table is written to a new file under an
    unpredictable name (mkstemp: O_EXCL, O_NOFOLLOW), then linked to its final name,
    which never replaces anything already there, a planted symlink included; when the
    name is taken, the next free `<bundle>.mapping-N.json` is used and returned."""
    data = json.dumps(dict(sorted(mapping.items())), indent=1, ensure_ascii=False).encode("utf-8", "surrogateescape")
    fd, temp = tempfile.mkstemp(prefix=f".{bundle.name}.", suffix=".mapping.tmp", dir=str(bundle.parent))
    try:
        os.fchmod(fd, 0o600)
        _write_all(fd, data)
    finally:
        os.close(fd)
    try:
        for target in _mapping_names(bundle):
            try:
                os.link(temp, target)  # fails on any existing name, a symlink too: nothing is followed
                return target
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links: create the final name exclusively
                return _create_exclusively(bundle, data)
        raise FileExistsError(f"{bundle}.mapping.json and {MAPPING_NAME_TRIES - 1} other names are taken: "
                              "the mapping was not written")
    finally:
        Path(temp).unlink(missing_ok=True)


def _mapping_names(bundle: Path):
    for n in range(MAPPING_NAME_TRIES):
        yield bundle.parent / (f"{bundle.name}.mapping.json" if n == 0 else f"{bundle.name}.mapping-{n + 1}.json")


def _create_exclusively(bundle: Path, data: bytes) -> Path:
    for target in _mapping_names(bundle):
        try:
            fd = os.open(str(target), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        return target
    raise FileExistsError(f"{bundle}.mapping.json and {MAPPING_NAME_TRIES - 1} other names are taken")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def size_of(bundle: Path) -> int:
    """Bytes of a finished bundle: the archive, or every file of a bundle folder."""
    if bundle.is_dir():
        return sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    return bundle.stat().st_size


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
