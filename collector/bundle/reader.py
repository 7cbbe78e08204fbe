"""Reading a bundle: a folder, a .7z or a .tar.gz.  Analyzers and the report read
only through this, never the live host."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import time
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterator, Optional, Tuple

from collector.bundle import schema
from collector.untrusted import MIB, read_regular, load_json_bounded

# Bounds on a bundle someone hands to `report`, `check --bundle`, `diff` or `pack`: a
# member is read only when it is a regular file inside the bundle, within its cap.
MAX_JSON_MEMBER = 32 * MIB
MAX_TEXT_MEMBER = 64 * MIB
MAX_MEMBERS = 200_000  # files and folders in an archive
MAX_INDEX_ENTRIES = 20_000  # files an index may list: akdiag's own stop there (collectors/logs.py)
MAX_MEMBER_DEPTH = 32  # folders deep
MAX_EXTRACTED = 8 * 1024 * MIB
EXTRACT_SECONDS = 600.0


class BundleError(Exception):
    """A bundle that cannot be opened or read; the message says why."""


class BundleEncrypted(BundleError):
    """An encrypted archive opened without its password: ask for it and try again."""


class BundleReader:
    """Reads one bundle folder.  Each member's path is resolved (links followed) once
    and the answer kept: the analyzers and the report ask for the same files again and
    again, and a bundle being read is not changed under them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._real_root: Optional[str] = None
        self._inside_cache: Dict[str, bool] = {}
        self._parsed: Optional[Dict[str, Any]] = None  # JSON members kept once parsed (keep_parsed_json)

    def keep_parsed_json(self) -> "BundleReader":
        """From now on each JSON member is parsed once and the same object handed to every
        caller (`check` judges processes.json in ten places).  Only for callers that never
        change what json() returns: the analyzers, the check's figures."""
        if self._parsed is None:
            self._parsed = {}
        return self

    def _inside(self, relpath: str) -> bool:
        """Whether the member's real path (links resolved) is inside the bundle."""
        known = self._inside_cache.get(relpath)
        if known is not None:
            return known
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root).rstrip(os.sep) + os.sep
        inside = os.path.realpath(os.path.join(self.root, relpath)).startswith(self._real_root)
        self._inside_cache[relpath] = inside
        return inside

    def path(self, relpath: str) -> Path:
        return self.root / relpath

    def exists(self, relpath: str) -> bool:
        return (self.root / relpath).is_file()

    def read(self, relpath: str, limit: int, head: bool = False) -> bytes:
        """A member's bytes (with `head`, its first `limit` bytes): OSError when it is not a
        regular file inside the bundle (a FIFO, a device, a link leading out) or is larger
        than `limit`."""
        if not self._inside(relpath):
            raise OSError(f"{relpath} points outside the bundle")
        return read_regular(self.root / relpath, limit, head=head)

    def json(self, relpath: str) -> Optional[Any]:
        """A JSON member, or None when it is missing, unreadable, too large or too deep."""
        if self._parsed is not None and relpath in self._parsed:
            return self._parsed[relpath]
        try:
            data = load_json_bounded(self.read(relpath, MAX_JSON_MEMBER))
        except (OSError, ValueError):
            data = None
        if self._parsed is not None:
            self._parsed[relpath] = data
        return data

    def member(self, relpath: Any, prefix: str) -> Tuple[Optional[Path], Optional[str]]:
        """(the file a bundle record points to, None) or (None, why not): refused when the
        path is not a plain path inside the bundle's `prefix` folder (a hostile or damaged
        index) or the file is missing."""
        if not isinstance(relpath, str) or not relpath:
            return None, "no file recorded"
        pure = PurePosixPath(relpath)
        if pure.is_absolute() or any(part in ("..", ".", "") for part in pure.parts) or not relpath.startswith(prefix):
            return None, f"{relpath!r} is not a path inside the bundle's {prefix} folder; not shown"
        if not self._inside(relpath):
            return None, f"{relpath} points outside the bundle; not shown"
        target = self.root / relpath
        try:
            status = target.stat()
        except OSError:
            return None, f"{relpath} is missing from this bundle"
        if not stat.S_ISREG(status.st_mode):
            return None, f"{relpath} is not a regular file; not read"
        if status.st_size > MAX_TEXT_MEMBER:
            return None, f"{relpath} is larger than the {MAX_TEXT_MEMBER // MIB} MiB a bundle file may have; not read"
        return target, None

    def text(self, relpath: str, limit: Optional[int] = None) -> Optional[str]:
        """A text member (its first `limit` bytes), or None when it cannot be read."""
        try:
            data = self.read(relpath, limit or MAX_TEXT_MEMBER, head=bool(limit))
        except OSError:
            return None
        return data.decode("utf-8", "replace")

    @property
    def manifest(self) -> dict:
        return self.json(schema.MANIFEST) or {}

    @property
    def schema_version(self) -> Optional[int]:
        return self.manifest.get("schema_version")


def _single_top_folder(folder: Path) -> Path:
    entries = [p for p in folder.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def _check_member(name: str) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise BundleError(f"the archive holds an unsafe path {name!r}; refusing to extract it")
    if len(path.parts) > MAX_MEMBER_DEPTH:
        raise BundleError(f"the archive holds a path {len(path.parts)} folders deep (more than {MAX_MEMBER_DEPTH}); "
                          "refusing to extract it")


class _Budget:
    """Count, size and time bounds of one extraction."""

    def __init__(self, archive: Path):
        self.archive = archive
        self.members = 0
        self.size = 0
        self.ends = time.monotonic() + EXTRACT_SECONDS

    def add(self, name: str, size: int) -> None:
        _check_member(name)
        self.members += 1
        self.size += max(0, size or 0)
        if self.members > MAX_MEMBERS:
            raise BundleError(f"{self.archive} holds more than {MAX_MEMBERS} files; refusing to extract it")
        if self.size > MAX_EXTRACTED:
            raise BundleError(f"{self.archive} unpacks to more than {MAX_EXTRACTED // MIB} MiB; refusing to extract it")

    def check_time(self) -> None:
        if time.monotonic() > self.ends:
            raise BundleError(f"{self.archive} took more than {EXTRACT_SECONDS:.0f} s to extract; given up")


def _extract_7z(archive: Path, target: Path, password: Optional[str]) -> None:
    import py7zr

    budget = _Budget(archive)
    try:
        with py7zr.SevenZipFile(archive, "r", password=password) as z:
            for info in z.list():
                budget.add(info.filename, info.uncompressed)
            z.extractall(path=target)
    except BundleError:
        raise
    except py7zr.exceptions.PasswordRequired as exc:
        raise BundleEncrypted(f"{archive} is encrypted: give its password") from exc
    except (py7zr.exceptions.Bad7zFile, py7zr.exceptions.CrcError, OSError, ValueError, KeyError) as exc:
        raise BundleError(f"cannot read {archive}: {exc} (wrong password or damaged archive?)") from exc
    except Exception as exc:  # py7zr raises assorted errors on a wrong password
        hint = "wrong password or damaged archive" if password else "damaged archive"
        raise BundleError(f"cannot read {archive}: {hint} ({type(exc).__name__}: {exc})") from exc


# Python's own checks where it has them (3.12, and the security releases before it)
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _extract_tar(archive: Path, target: Path) -> None:
    budget = _Budget(archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # one at a time: the index is never held whole
                budget.add(member.name, member.size)
                budget.check_time()
                if not (member.isfile() or member.isdir()):
                    raise BundleError(f"the archive holds a link or device {member.name!r}; refusing it")
                tar.extract(member, target, set_attrs=False, **_TAR_FILTER)
                tar.members = []  # extracted: not kept in memory
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"cannot read {archive}: {exc}") from exc


@contextlib.contextmanager
def open_bundle(path: Path, password: Optional[str] = None) -> Iterator[BundleReader]:
    """A reader over a bundle folder or archive (extracted to a private temporary folder);
    a cluster archive's too (its root holds cluster.json: see collector/cluster/)."""
    path = Path(path)
    if path.is_dir():
        is_root = (path / schema.MANIFEST).exists() or (path / schema.CLUSTER_MANIFEST).exists()
        yield BundleReader(path if is_root else _single_top_folder(path))
        return
    if not path.exists():
        raise BundleError(f"{path} does not exist")
    if not path.is_file():
        raise BundleError(f"{path} is neither a folder nor a regular file: not a bundle")
    from collector import tempfiles

    temp = tempfiles.make_folder("read")  # 0700, and what is decrypted into it 0600
    try:
        with tempfiles.private_files():
            if path.name.endswith(".7z"):
                _extract_7z(path, temp, password)
            elif path.name.endswith((".tar.gz", ".tgz", ".tar")):
                _extract_tar(path, temp)
            else:
                raise BundleError(f"{path} is not a bundle (.7z, .tar.gz or a folder)")
        tempfiles.make_private(temp)  # the archive's own modes were applied: not beyond its owner
        root = _single_top_folder(temp)
        if not (root / schema.MANIFEST).exists() and not (root / schema.CLUSTER_MANIFEST).exists():
            raise BundleError(f"{path} holds no {schema.MANIFEST}: not an akdiag bundle")
        yield BundleReader(root)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
