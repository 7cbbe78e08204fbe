"""A 7z archive writer for plain (unencrypted) bundles: Deflate streams and a plain header,
the subset of the 7z format (7-Zip's doc/7zFormat.txt) that stock 7-Zip and py7zr read.

Written without py7zr, whose import alone costs some 12 MB of memory and 0.14 s: the file
is written front to back (a 32-byte start header, the packed streams, the header) and the
start header filled in last.  Each `add_folder` call deflates its files into one stream
(a 7z "folder"); the archive can be cut back to the end of any folder (`truncate`), which
lets collector.bundle.prepack deflate files early and drop those changed since.
An encrypted archive (names hidden in an encrypted header) is py7zr's work, not this one's.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, List, Optional

SIGNATURE = b"7z\xbc\xaf\x27\x1c\x00\x04"  # and the format's version, 0.4
START_HEADER_SIZE = 32
DEFLATE_ID = b"\x04\x01\x08"
CHUNK = 1024 * 1024
FILETIME_EPOCH = 116444736000000000  # 1970-01-01 in 100 ns steps since 1601-01-01
ATTRIBUTE_DIRECTORY, ATTRIBUTE_ARCHIVE, ATTRIBUTE_UNIX = 0x10, 0x20, 0x8000  # the Unix mode in the high 16 bits

# the format's property ids
K_END, K_HEADER, K_MAIN_STREAMS, K_FILES, K_PACK_INFO, K_UNPACK_INFO, K_SUBSTREAMS = 0, 1, 4, 5, 6, 7, 8
K_SIZE, K_CRC, K_FOLDER, K_UNPACK_SIZE, K_NUM_UNPACK_STREAM = 9, 10, 11, 12, 13
K_EMPTY_STREAM, K_EMPTY_FILE, K_NAME, K_MTIME, K_ATTRIBUTES = 14, 15, 17, 20, 21


class Stopped(Exception):
    """`add_folder` was asked to stop between two chunks; the archive is as it was."""


@dataclass
class Entry:
    """One name in the archive: a folder, an empty file, or a file whose bytes are a stream."""

    name: str  # with "/" between parts
    mode: int  # st_mode
    mtime_ns: int
    size: int = 0
    crc: int = 0
    has_stream: bool = False  # its bytes are one of a folder's streams (else a folder or an empty file)
    identity: tuple = ()  # the file as it was read: device, inode, size, mtime, ctime
    digest: Optional[str] = None  # of its bytes, when asked for

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@dataclass
class Folder:
    offset: int  # where its packed stream starts in the file
    packed: int = 0
    entries: List[Entry] = field(default_factory=list)  # its streams, in order

    @property
    def unpacked(self) -> int:
        return sum(e.size for e in self.entries)


def number(value: int) -> bytes:
    """The format's variable-length UINT64: the first byte's leading ones say how many
    little-endian bytes follow; its other bits are the value's highest ones."""
    for extra in range(8):
        if value < 1 << (7 * (extra + 1)):
            mask = (0xFF << (8 - extra)) & 0xFF
            return bytes([mask | (value >> (8 * extra))]) + (value & ((1 << (8 * extra)) - 1)).to_bytes(extra, "little")
    return b"\xff" + value.to_bytes(8, "little")


def bits(flags: List[bool]) -> bytes:
    """A bit vector, first item in the highest bit of the first byte."""
    out = bytearray((len(flags) + 7) // 8)
    for index, flag in enumerate(flags):
        if flag:
            out[index // 8] |= 0x80 >> (index % 8)
    return bytes(out)


def entry_of(path: str, name: str) -> Entry:
    info = os.lstat(path)
    return Entry(name, info.st_mode, info.st_mtime_ns, 0 if stat.S_ISDIR(info.st_mode) else info.st_size)


class Writer:
    """A 7z archive being written into `handle` (opened for reading and writing, empty)."""

    def __init__(self, handle: BinaryIO, level: int):
        self.handle = handle
        self.level = level
        self.folders: List[Folder] = []
        handle.write(bytes(START_HEADER_SIZE))  # filled in by close()

    def end(self) -> int:
        return self.folders[-1].offset + self.folders[-1].packed if self.folders else START_HEADER_SIZE

    def add_folder(self, files: List[tuple], stop: Optional[Callable[[], bool]] = None,
                   digest: Optional[Callable[[], object]] = None) -> Folder:
        """Deflate `files` ((path, name) pairs of regular files) into one stream.  Each
        file is read once through an open handle; its Entry has the size and mtime of what
        was read.  With `digest` (e.g. hashlib.sha256), each entry gets `.digest` of its bytes.
        Stopped (the archive cut back as it was) when `stop()` turns true."""
        folder = Folder(self.end())
        self.handle.seek(folder.offset)
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        # an anonymous mapping, not the heap: given back whole when the folder is done
        with mmap.mmap(-1, CHUNK) as buffer:
            try:
                for path, name in files:
                    folder.entries.append(self._deflate_file(path, name, compressor, folder, buffer, stop, digest))
                tail = compressor.flush()
                self.handle.write(tail)
                folder.packed += len(tail)
            except BaseException:
                self.truncate(len(self.folders))
                raise
        self.folders.append(folder)
        return folder

    def _deflate_file(self, path: str, name: str, compressor, folder: Folder, buffer, stop, digest) -> Entry:
        crc, size = 0, 0
        hashing = digest() if digest else None
        # every view released on the way out, an exception's too: the mapping can then close
        with open(path, "rb") as source, memoryview(buffer) as view:
            info = os.fstat(source.fileno())
            while True:
                if stop is not None and stop():
                    raise Stopped(path)
                count = source.readinto(view)
                if not count:
                    break
                with view[:count] as chunk:
                    crc = zlib.crc32(chunk, crc)
                    if hashing is not None:
                        hashing.update(chunk)
                    packed = compressor.compress(chunk)
                self.handle.write(packed)
                folder.packed += len(packed)
                size += count
        return Entry(name, info.st_mode, info.st_mtime_ns, size, crc, True,
                     (info.st_dev, info.st_ino, size, info.st_mtime_ns, info.st_ctime_ns),
                     hashing.hexdigest() if hashing is not None else None)

    def truncate(self, keep: int) -> None:
        """Keep the first `keep` folders only; the file ends where the last one kept ends."""
        del self.folders[keep:]
        self.handle.seek(self.end())
        self.handle.truncate()

    def close_with(self, folders: List[tuple], files: List[tuple]) -> None:
        """One last folder of `files` (their empty ones as names only), then close() with
        `folders` ((path, name) pairs, as walk() gives them)."""
        entries = [entry_of(path, name) for path, name in files]
        streams = [pair for pair, entry in zip(files, entries) if entry.size > 0]
        if streams:
            self.add_folder(streams)
        self.close([entry_of(path, name) for path, name in folders] + [e for e in entries if e.size == 0])

    def close(self, others: List[Entry]) -> None:
        """The header (every folder's streams, then `others`: folders and empty files) and
        the start header that points at it."""
        self.handle.seek(self.end())
        header = self._header([e for f in self.folders for e in f.entries] + others)
        self.handle.write(header)
        self.handle.truncate()
        tail = struct.pack("<QQI", self.end() - START_HEADER_SIZE, len(header), zlib.crc32(header))
        self.handle.seek(0)
        self.handle.write(SIGNATURE + struct.pack("<I", zlib.crc32(tail)) + tail)
        self.handle.flush()

    def _header(self, entries: List[Entry]) -> bytes:
        out = bytearray([K_HEADER])
        if self.folders:
            out += self._streams_info()
        out += _files_info(entries)
        out.append(K_END)
        return bytes(out)

    def _streams_info(self) -> bytes:
        folders = self.folders
        out = bytearray([K_MAIN_STREAMS, K_PACK_INFO]) + number(0) + number(len(folders)) + bytes([K_SIZE])
        for folder in folders:
            out += number(folder.packed)
        out += bytes([K_END, K_UNPACK_INFO, K_FOLDER]) + number(len(folders)) + b"\x00"  # not external
        for _folder in folders:
            out += b"\x01" + bytes([len(DEFLATE_ID)]) + DEFLATE_ID  # one simple coder: Deflate
        out.append(K_UNPACK_SIZE)
        for folder in folders:
            out += number(folder.unpacked)
        out += bytes([K_END, K_SUBSTREAMS, K_NUM_UNPACK_STREAM])
        for folder in folders:
            out += number(len(folder.entries))
        if any(len(folder.entries) > 1 for folder in folders):
            out.append(K_SIZE)
            for folder in folders:
                for entry in folder.entries[:-1]:
                    out += number(entry.size)
        out += bytes([K_CRC, 1])  # every stream's CRC, none known from a folder's
        for folder in folders:
            for entry in folder.entries:
                out += struct.pack("<I", entry.crc)
        out += bytes([K_END, K_END])
        return bytes(out)


def _files_info(entries: List[Entry]) -> bytes:
    out = bytearray([K_FILES]) + number(len(entries))
    empty = [not e.has_stream for e in entries]
    if any(empty):
        _property(out, K_EMPTY_STREAM, bits(empty))
        _property(out, K_EMPTY_FILE, bits([not e.is_dir for e in entries if not e.has_stream]))
    names = b"".join(e.name.encode("utf-16-le", "surrogatepass") + b"\x00\x00" for e in entries)
    _property(out, K_NAME, b"\x00" + names)
    times = b"".join(struct.pack("<Q", FILETIME_EPOCH + e.mtime_ns // 100) for e in entries)
    _property(out, K_MTIME, b"\x01\x00" + times)  # all defined, not external
    attributes = b"".join(struct.pack("<I", _attributes(e)) for e in entries)
    _property(out, K_ATTRIBUTES, b"\x01\x00" + attributes)
    out.append(K_END)
    return bytes(out)


def _property(out: bytearray, kind: int, data: bytes) -> None:
    out.append(kind)
    out += number(len(data)) + data


def _attributes(entry: Entry) -> int:
    kind = ATTRIBUTE_DIRECTORY if entry.is_dir else ATTRIBUTE_ARCHIVE
    return kind | ATTRIBUTE_UNIX | (stat.S_IMODE(entry.mode) | stat.S_IFMT(entry.mode)) << 16


def walk(folder: str, top: str) -> tuple:
    """(folders, files) below `folder` as (path, name in the archive) pairs, `top/...`,
    sorted; the top folder itself first.  Links are not followed; what is neither a
    regular file nor a folder is left out (a bundle holds none)."""
    folders, files = [(folder, top)], []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if stat.S_ISDIR(os.lstat(os.path.join(root, name)).st_mode))
        relative = os.path.relpath(root, folder)
        prefix = top if relative == "." else f"{top}/{relative.replace(os.sep, '/')}"
        for name in dirs:
            folders.append((os.path.join(root, name), f"{prefix}/{name}"))
        for name in sorted(names):
            path = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                files.append((path, f"{prefix}/{name}"))
    return folders, files


def write_archive(folder: str, target: str, top: str, level: int) -> None:
    """`folder` packed into a new 7z file `target`, its contents under `top/`: every
    non-empty file deflated in one solid stream."""
    folders, files = walk(folder, top)
    with open(target, "w+b") as handle:
        Writer(handle, level).close_with(folders, files)
