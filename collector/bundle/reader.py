"""Reading a bundle: a folder, a .7z or a .tar.gz.  Analyzers and the report read
only through this, never the live host."""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Optional, Tuple

from collector.bundle import schema


class BundleError(Exception):
    """A bundle that cannot be opened or read; the message says why."""


class BundleEncrypted(BundleError):
    """An encrypted archive opened without its password: ask for it and try again."""


class BundleReader:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, relpath: str) -> Path:
        return self.root / relpath

    def exists(self, relpath: str) -> bool:
        return (self.root / relpath).is_file()

    def json(self, relpath: str) -> Optional[Any]:
        try:
            return json.loads((self.root / relpath).read_bytes().decode("utf-8", "surrogateescape"))
        except (OSError, ValueError):
            return None

    def member(self, relpath: Any, prefix: str) -> Tuple[Optional[Path], Optional[str]]:
        """(the file a bundle record points to, None) or (None, why not): refused when the
        path is not a plain path inside the bundle's `prefix` folder (a hostile or damaged
        index) or the file is missing."""
        if not isinstance(relpath, str) or not relpath:
            return None, "no file recorded"
        pure = PurePosixPath(relpath)
        if pure.is_absolute() or any(part in ("..", ".", "") for part in pure.parts) or not relpath.startswith(prefix):
            return None, f"{relpath!r} is not a path inside the bundle's {prefix} folder; not shown"
        try:
            root = self.root.resolve()
            target = (self.root / relpath).resolve()
        except (OSError, RuntimeError):
            return None, f"{relpath} cannot be resolved"
        if root not in target.parents:
            return None, f"{relpath} points outside the bundle; not shown"
        if not target.is_file():
            return None, f"{relpath} is missing from this bundle"
        return target, None

    def text(self, relpath: str, limit: Optional[int] = None) -> Optional[str]:
        try:
            with open(self.root / relpath, "rb") as handle:
                data = handle.read(limit) if limit else handle.read()
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


def _extract_7z(archive: Path, target: Path, password: Optional[str]) -> None:
    import py7zr

    try:
        with py7zr.SevenZipFile(archive, "r", password=password) as z:
            for name in z.getnames():
                _check_member(name)
            z.extractall(path=target)
    except py7zr.exceptions.PasswordRequired as exc:
        raise BundleEncrypted(f"{archive} is encrypted: give its password") from exc
    except (py7zr.exceptions.Bad7zFile, py7zr.exceptions.CrcError, OSError, ValueError, KeyError) as exc:
        raise BundleError(f"cannot read {archive}: {exc} (wrong password or damaged archive?)") from exc
    except Exception as exc:  # py7zr raises assorted errors on a wrong password
        hint = "wrong password or damaged archive" if password else "damaged archive"
        raise BundleError(f"cannot read {archive}: {hint} ({type(exc).__name__}: {exc})") from exc


def _extract_tar(archive: Path, target: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                _check_member(member.name)
                if not (member.isfile() or member.isdir()):
                    raise BundleError(f"the archive holds a link or device {member.name!r}; refusing it")
            tar.extractall(target)
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
    if not path.is_file():
        raise BundleError(f"{path} does not exist")
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
