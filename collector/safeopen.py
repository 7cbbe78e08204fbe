"""Opening paths under BASEDIR without ever leaving it.

BASEDIR is opened once (`SafeRoot`); every path below it is opened relative to an open
directory descriptor, one component at a time, each with O_NOFOLLOW (folders also with
O_DIRECTORY), so that what was checked is what is opened: there is no moment at which a
folder swapped for a symlink by another user is followed.  A symlink met on the way is
resolved here, not by the kernel: its target is walked the same way from the folder it
sits in (or from BASEDIR for an absolute target naming BASEDIR), and a target that leaves
BASEDIR is refused (`LeavesBasedir`).  At most MAX_LINKS links are followed per path.

Names are str as os.listdir gives them (bytes that are not UTF-8 kept as surrogates);
`escaped_name` turns one into valid UTF-8 for a bundle path or an index (%XX escapes).
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from typing import List, Sequence, Tuple, Union

MAX_LINKS = 40
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW | _CLOEXEC

PathLike = Union[str, Sequence[str]]


class NotRegularFile(OSError):
    """What was opened is not a regular file (a FIFO, a device, or swapped after an lstat)."""


def fstat_regular(fd: int, name: str) -> os.stat_result:
    """The fstat of an open descriptor that must be a regular file; anything else is
    refused (NotRegularFile) and the descriptor closed, as on any error."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, f"{name} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return st


class LeavesBasedir(OSError):
    """A symlink on the way points outside BASEDIR; it is not followed."""

    def __init__(self, link: str, target: str):
        super().__init__(errno.EXDEV, f"symlink {link} points outside BASEDIR: {target}")
        self.link = link
        self.target = target


def _percent_bytes(exc: UnicodeDecodeError):
    return "".join(f"%{byte:02X}" for byte in exc.object[exc.start:exc.end]), exc.end


codecs.register_error("akdiag-percent", _percent_bytes)


def escaped_name(name: str) -> str:
    """A file name as valid UTF-8 that every archive format stores as it is: each byte
    that is not UTF-8 becomes %XX, and so does a backslash, which 7-Zip and py7zr take
    for a folder separator (deterministic; names without either are unchanged)."""
    try:
        name.encode("utf-8")
        clean = True
    except UnicodeEncodeError:
        clean = False
    if clean and "\\" not in name:
        return name
    return os.fsencode(name).decode("utf-8", "akdiag-percent").replace("\\", "%5C")


def split(path: PathLike) -> List[str]:
    if isinstance(path, str):
        return [p for p in path.split("/") if p not in ("", ".")]
    return [p for p in path if p not in ("", ".")]


def describe_error(exc: OSError) -> str:
    if isinstance(exc, LeavesBasedir):
        return str(exc)
    return exc.strerror or str(exc)


class SafeRoot:
    """An open BASEDIR.  The folder itself is opened through its path as given (the
    operator named it, or collector.basedir checked it); nothing below is."""

    def __init__(self, path):
        self.path = os.path.abspath(str(path))
        self.real = os.path.realpath(self.path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "SafeRoot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except (OSError, AttributeError):
            pass

    def display(self, parts: Sequence[str]) -> str:
        return os.path.join(self.path, *parts)

    # -- the public calls --------------------------------------------------------
    def open_dir(self, path: PathLike, follow: bool = True) -> Tuple[int, List[str]]:
        """(descriptor, canonical components below BASEDIR) of a folder."""
        return self._walk(split(path), follow, "dir")

    def open_file(self, path: PathLike, follow: bool = True) -> Tuple[int, os.stat_result, List[str]]:
        """(descriptor, its fstat, canonical components) of a regular file; anything
        else is refused (NotRegularFile) and never opened when it is seen as such first."""
        fd, parts = self._walk(split(path), follow, "file")
        return fd, fstat_regular(fd, self.display(parts)), parts

    def stat(self, path: PathLike) -> Tuple[os.stat_result, List[str]]:
        """(stat of what the path leads to, canonical components); nothing is opened
        but the folders on the way."""
        return self._walk(split(path), True, "stat")

    def read_small(self, path: PathLike, max_bytes: int, follow: bool = True) -> Tuple[bytes, bool]:
        """(bytes, truncated) of a regular file, never more than `max_bytes`."""
        fd, _st, _parts = self.open_file(path, follow)
        try:
            return read_capped(fd, max_bytes)
        finally:
            os.close(fd)

    # -- the walk ----------------------------------------------------------------
    def _walk(self, parts: List[str], follow: bool, want: str):
        stack: List[int] = []  # descriptors of the folders below BASEDIR on the way
        names: List[str] = []  # their names: the canonical path so far
        links = 0
        try:
            while True:
                current = stack[-1] if stack else self.fd
                if not parts:  # the path was BASEDIR itself, or ended in ".."
                    return self._finish_at(current, names, want)
                name = parts.pop(0)
                if name == "..":
                    if not stack:
                        raise LeavesBasedir(self.display(names), "..")
                    os.close(stack.pop())
                    names.pop()
                    continue
                last = not parts
                try:
                    result = self._step(current, name, last, want)
                except _Symlink as link:
                    if not follow:
                        raise OSError(errno.ELOOP, f"{self.display(names + [name])} is a symlink: not followed")
                    links += 1
                    if links > MAX_LINKS:
                        raise OSError(errno.ELOOP, f"more than {MAX_LINKS} symlinks in {self.display(names + [name])}")
                    parts[:0] = self._link_parts(names + [name], link.target, stack, names)
                    continue
                if last:
                    return result, names + [name]
                stack.append(result)
                names.append(name)
        finally:
            for fd in stack:
                os.close(fd)

    def _finish_at(self, fd: int, names: List[str], want: str):
        if want == "stat":
            return os.fstat(fd), list(names)
        if want == "dir":
            return os.dup(fd), list(names)
        raise NotRegularFile(errno.EISDIR, f"{self.display(names)} is not a regular file")

    def _step(self, dir_fd: int, name: str, last: bool, want: str):
        """Open (or stat) one component; raises _Symlink when it is a link."""
        if last and want in ("stat", "file"):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise _Symlink(os.readlink(name, dir_fd=dir_fd))
            if want == "stat":
                return st
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFile(errno.EINVAL, f"{name} is not a regular file")
        flags = FILE_FLAGS if last and want == "file" else DIR_FLAGS
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError:
                raise exc from None  # not a symlink: a file where a folder was expected
            raise _Symlink(target) from None

    def _link_parts(self, link: List[str], target: str, stack: List[int], names: List[str]) -> List[str]:
        """The components to walk instead of a link; an absolute target restarts at
        BASEDIR (closing the folders opened so far) when it names a place inside it."""
        if not target.startswith("/"):
            return split(target)
        for prefix in dict.fromkeys((self.real, self.path)):
            if target == prefix or target.startswith(prefix.rstrip("/") + "/"):
                while stack:
                    os.close(stack.pop())
                names.clear()
                return split(target[len(prefix):])
        raise LeavesBasedir(self.display(link), target)


class _Symlink(Exception):
    def __init__(self, target: str):
        super().__init__(target)
        self.target = target


def read_capped(fd: int, max_bytes: int) -> Tuple[bytes, bool]:
    """(bytes, truncated) read from `fd`, never more than max_bytes + 1 of them."""
    chunks, total = [], 0
    while total <= max_bytes:
        chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    data = b"".join(chunks)
    return data[:max_bytes], len(data) > max_bytes



def read_under(basedir, path, max_bytes: int) -> Tuple[bytes, bool]:
    """(bytes, truncated) of the regular file `path` (absolute below `basedir`, or
    relative to it), opened from BASEDIR folder by folder; links inside BASEDIR are
    followed, links that leave it refused (LeavesBasedir)."""
    rel = os.path.relpath(str(path), str(basedir)) if os.path.isabs(str(path)) else str(path)
    if rel == ".." or rel.startswith("../"):
        raise LeavesBasedir(str(path), str(path))
    with SafeRoot(basedir) as root:
        return root.read_small(rel, max_bytes)


def list_under(basedir, path) -> List[str]:
    """The names in the folder `path` below `basedir`, opened the same way."""
    with SafeRoot(basedir) as root:
        fd, _parts = root.open_dir(path)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)
