"""The one write point of a bundle.

Every file enters the bundle through BundleWriter, which scrubs it: akdiag's own
records (write_json) and configuration files that parse (write_structured) as data,
key by key (collector/bundle/scrubdata.py, structured.py), so that they stay valid
and keep their shape; everything else line by line (lines are split on b"\\n" only,
and decoded with surrogateescape so that bytes that are not UTF-8 and CRLF endings
come out exactly as they went in).  The names of files whose names come from the
host (log tails, json_consts overrides) are scrubbed too, as one piece of text, the
same way the records that name them are.  Writing without the scrubber needs
`write_unscrubbed_bytes`, whose name says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Callable, Dict, List, Optional

from collector.bundle import structured
from collector.bundle.scrubdata import counting_copy, scrub_for_json, scrub_string
from collector.redact import Scrubber

# folders whose file names come from the host; every other name is akdiag's own
HOST_NAMED_FOLDERS = ("logs/", "config/json_consts/")
_OWN_NAMES = ("logs/index.json",)


class BundleWriteError(Exception):
    """A file could not be written into the bundle (disk full, bad path)."""


class WriterClosed(Exception):
    """A collector wrote after its time was up; the write was refused."""


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    sha256: str
    collector: str
    scrubbed: bool


def _safe_relpath(relpath: str) -> str:
    if relpath and all(part not in ("", ".", "..") for part in relpath.split("/")):
        return relpath  # already plain: what the PurePosixPath below would give back, without its cost
    path = PurePosixPath(relpath)
    if path.is_absolute() or not path.parts or any(p in ("..", ".", "") for p in path.parts):
        raise BundleWriteError(f"refusing bundle path {relpath!r}")
    return str(path)


# json's C encoder (json.dumps only uses it without `indent`), with ", " and ": " as the
# indented form has
_COMPACT = json.JSONEncoder(ensure_ascii=False, default=str, separators=(", ", ": "))


def _item_encoder() -> Callable[[Any], str]:
    """_COMPACT.encode, without making json's C encoder anew for each item where this
    Python's json has one to reuse (what JSONEncoder.iterencode makes, but without a
    circular-reference memo, which threads sharing it would trip over: nesting is bounded
    by the scrubber's depth limit and by the encoder's recursion check)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    try:
        encode = make(None, _COMPACT.default, json.encoder.c_encode_basestring, None, ": ", ", ",
                      False, False, True)
        if "".join(encode({"a": [1, None]}, 0)) == '{"a": [1, null]}':
            return lambda item: "".join(encode(item, 0))
    except Exception:  # another Python's internals: the public way
        pass
    return _COMPACT.encode


_encode_item = _item_encoder()


def json_bytes(data: Any) -> bytes:
    """The canonical JSON encoding of the bundle, for diffs: an object one key a line at
    every level, a list one item a line, each item compact (a record, a list of lists)
    on its line, in stable order.  The items go through json's C encoder, which the
    indented form never uses.  Callers scrub the data first (write_json does)."""
    chunks: List[str] = []
    _layout(data, "\n", chunks)
    chunks.append("\n")
    return "".join(chunks).encode("utf-8", "surrogateescape")


def _layout(data: Any, newline: str, chunks: List[str]) -> None:
    """`data` into `chunks`; `newline`: a line's end and the indentation of the line
    that holds `data`."""
    inner = newline + " "
    if isinstance(data, dict) and data:
        separator = "{" + inner
        for key, value in data.items():
            chunks.append(separator)
            chunks.append(_key(key))
            if isinstance(value, (dict, list, tuple)) and value:
                _layout(value, inner, chunks)
            else:
                chunks.append(_encode_item(value))
            separator = "," + inner
        chunks.append(newline + "}")
    elif isinstance(data, (list, tuple)) and data:
        chunks.append("[" + inner + ("," + inner).join(map(_encode_item, data)) + newline + "]")
    else:
        chunks.append(_COMPACT.encode(data))


def _key(key: Any) -> str:
    """A key and its ": ", as json writes it (a number, a boolean or None as a string)."""
    if isinstance(key, str):
        return _COMPACT.encode(key) + ": "
    encoded = _COMPACT.encode({key: 0})  # '{"1": 0}'; json's own conversion of the key (or its error)
    return encoded[1:-len("0}")]


class BundleWriter:
    def __init__(self, root: Path, scrubber: Scrubber):
        self.root = Path(root)
        self.scrubber = scrubber
        self._lock = threading.Lock()
        self._files: Dict[str, FileRecord] = {}
        self._names: Dict[str, tuple] = {}  # host-given name -> (bundle name, its redaction counts)
        self._owners: Dict[str, str] = {}  # bundle name -> the host-given name it stands for
        self._idle = threading.Condition(self._lock)
        self._writing = 0
        self._closed = False
        self._root_made = False  # made by the first write only: a late one never re-creates it
        self._folders: set = set()  # folders below the root made already (bundle paths)

    # -- names -------------------------------------------------------------------
    def bundle_name(self, relpath: str) -> str:
        """The name `relpath` gets in the bundle: scrubbed as text when it comes from the
        host, as a record holding the same string is; records should name the file by
        the path write_* returns (a name scrubbed to one already taken gets a suffix).
        Its redactions are counted against the file, once per write."""
        relpath = _safe_relpath(relpath)
        return self._scrubbed_name(relpath)[0]

    def _scrubbed_name(self, relpath: str) -> tuple:
        if not relpath.startswith(HOST_NAMED_FOLDERS) or relpath in _OWN_NAMES:
            return relpath, []
        with self._lock:
            known = self._names.get(relpath)
        if known is None:
            counting = self._counting_scrubber()
            name = _safe_relpath(scrub_string(counting, relpath, "<name>"))
            counts = [(r["rule"], r["count"]) for r in counting.counts.as_records()]
            with self._lock:
                known = self._names.get(relpath)
                if known is None:
                    known = self._names[relpath] = (self._unclaimed(name, relpath), counts)
        return known

    def _unclaimed(self, name: str, relpath: str) -> str:
        """`name`, or `name.akdiag-N` when another host name was scrubbed to it already (two
        e-mails differing only in case have one pseudonym).  Called with the lock held."""
        candidate, n = name, 1
        while self._owners.setdefault(candidate, relpath) != relpath:
            candidate, n = f"{name}.akdiag-{n}", n + 1
        return candidate

    def _begin_file(self, relpath: str) -> str:
        """The scrubbed name of a file about to be (re)written, its counts reset: the
        bundle counts what it keeps."""
        name, name_counts = self._scrubbed_name(_safe_relpath(relpath))
        self.scrubber.counts.forget_file(name)
        for rule, count in name_counts:
            self.scrubber.counts.add(rule, name, count)
        return name

    def close(self, wait: float = 5.0) -> None:
        """Refuse every write from now on and wait (bounded) for those under way: the run is
        over and its folder is about to be packed or removed.  Idempotent."""
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._writing == 0, timeout=wait)

    @contextlib.contextmanager
    def reopened(self):
        """The runner's own writes after close() (--max-size trims tails and rewrites the
        manifest and summary): every late collector's own writer is closed by then."""
        with self._idle:
            was_closed, self._closed = self._closed, False
        try:
            yield self
        finally:
            with self._idle:
                self._closed = was_closed

    @contextlib.contextmanager
    def _open_for_write(self, relpath: str):
        """The file's handle and its folders; the root is made by the first write only, so
        that a late write cannot re-create a bundle folder that was removed."""
        with self._idle:
            if self._closed:
                raise WriterClosed(f"{relpath}: the bundle is closed")
            self._writing += 1
            make_root, self._root_made = not self._root_made, True
        try:
            if make_root:
                self.root.mkdir(parents=True, exist_ok=True)
            root, folder = str(self.root), relpath.rpartition("/")[0]
            self._make_folders(root, folder)
            try:
                handle = open(os.path.join(root, relpath), "wb")
            except FileNotFoundError:
                if not folder:
                    raise
                with self._lock:  # removed since it was made (a transfer's folder): made again, as before
                    self._folders.discard(folder)
                self._make_folders(root, folder)
                handle = open(os.path.join(root, relpath), "wb")
            with handle:
                yield handle
        finally:
            with self._idle:
                self._writing -= 1
                self._idle.notify_all()

    def _make_folders(self, root: str, folder: str) -> None:
        """The folders of a (plain) bundle path, each made once: 2,000 log tails share a few."""
        if not folder or folder in self._folders:
            return
        made = root
        for part in folder.split("/"):
            made = os.path.join(made, part)
            try:
                os.mkdir(made)
            except FileExistsError:
                pass
        with self._lock:
            self._folders.add(folder)

    # -- the scrubbed ways in -------------------------------------------------
    def write_json(self, relpath: str, data: Any, collector: str = "akdiag") -> FileRecord:
        """akdiag's own record, scrubbed as data: it stays valid JSON with its shape."""
        name = self._begin_file(relpath)
        return self._store(name, json_bytes(scrub_for_json(self.scrubber, data, name, own_record=True)), collector,
                           scrubbed=True)

    def write_structured(self, relpath: str, raw: bytes, source_name: str, collector: str = "akdiag",
                         parse: bool = True) -> "tuple[FileRecord, structured.Scrubbed]":
        """A host's configuration file, decoded whatever its encoding mark: parsed and
        scrubbed as data in its format (by its name or first character), else (or with
        `parse` false) line by line; the result says which and why.  A file kept as
        lines whose name promises a format gets `.txt` added: every `.json`, `.yaml`...
        file of a bundle parses."""
        counting = self._counting_scrubber()
        result = structured.scrub_file(counting, raw, source_name, self.bundle_name(relpath), parse)
        if result.fmt is None and structured.format_of(relpath):
            relpath += ".txt"
        name = self._begin_file(relpath)
        for count in counting.counts.as_records():
            self.scrubber.counts.add(count["rule"], name, count["count"])
        data = result.text.encode("utf-8", "surrogateescape")
        return self._store(name, data, collector, scrubbed=True), result

    def _counting_scrubber(self) -> Scrubber:
        """This writer's scrubber counting on its own, for text whose final bundle path
        is not known yet."""
        return counting_copy(self.scrubber)

    def write_text(self, relpath: str, text: str, collector: str = "akdiag") -> FileRecord:
        return self.write_bytes(relpath, text.encode("utf-8", "surrogateescape"), collector)

    def write_bytes(self, relpath: str, data: bytes, collector: str = "akdiag",
                    starts_mid_line: bool = False) -> FileRecord:
        """`starts_mid_line`: the data is a tail that begins inside a line."""
        name = self._begin_file(relpath)
        scrubbed = self.scrubber.scrub_bytes(data, name, starts_mid_line)
        return self._store(name, scrubbed, collector, scrubbed=True)

    # -- the one way around the scrubber ---------------------------------------
    def write_unscrubbed_bytes(self, relpath: str, data: bytes, collector: str = "akdiag") -> FileRecord:
        """For data that cannot hold a secret (e.g. figures the tool computed itself)."""
        relpath = _safe_relpath(relpath)
        return self._store(relpath, data, collector, scrubbed=False)

    def write_unscrubbed_stream(self, relpath: str, stream: BinaryIO, collector: str = "akdiag",
                                max_bytes: Optional[int] = None, chunk_size: int = 1024 * 1024) -> FileRecord:
        """A file copied from a stream as it comes (e.g. another host's finished bundle,
        scrubbed by the akdiag that wrote it), without holding it in memory.  More than
        `max_bytes` is refused (the partial file is removed)."""
        relpath = _safe_relpath(relpath)
        target = self.root / relpath
        digest = hashlib.sha256()
        size = 0
        try:
            with self._open_for_write(relpath) as handle:
                while True:
                    chunk = stream.read(chunk_size)
                    if not chunk:
                        break
                    if self._closed:
                        raise WriterClosed(f"{relpath}: the bundle was closed while it was written")
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BundleWriteError(f"{relpath} is larger than {max_bytes} bytes; refused")
                    digest.update(chunk)
                    handle.write(chunk)
        except OSError as exc:
            target.unlink(missing_ok=True)
            raise BundleWriteError(f"cannot write {relpath} into the bundle: {exc.strerror or exc}") from exc
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        record = FileRecord(relpath, size, digest.hexdigest(), collector, scrubbed=False)
        with self._lock:
            self._files[relpath] = record
        return record

    def forget(self, relpath: str) -> None:
        """Remove a file this writer stored (a transfer's temporary copy) and its record."""
        relpath = _safe_relpath(relpath)
        (self.root / relpath).unlink(missing_ok=True)
        with self._lock:
            self._files.pop(relpath, None)

    def trim_to_tail(self, relpath: str, keep_bytes: int) -> Optional[FileRecord]:
        """Cut a stored file (a log tail) down to its last `keep_bytes` bytes or fewer,
        starting at a line's start: its oldest lines go (--max-size).  What stays was
        scrubbed when it was written.  None when the file holds no more than that."""
        relpath = _safe_relpath(relpath)
        with self._lock:
            record = self._files.get(relpath)
        if record is None or record.size <= keep_bytes:
            return None
        kept = b""
        if keep_bytes > 0:
            with open(self.root / relpath, "rb") as handle:
                handle.seek(record.size - keep_bytes - 1)  # and the byte before: is it a line's end?
                kept = handle.read(keep_bytes + 1)
            newline = kept.find(b"\n")
            kept = kept[newline + 1:] if newline >= 0 else b""
        return self._store(relpath, kept, record.collector, record.scrubbed)

    # -------------------------------------------------------------------------
    def _store(self, relpath: str, data: bytes, collector: str, scrubbed: bool) -> FileRecord:
        try:
            with self._open_for_write(relpath) as handle:
                handle.write(data)
        except OSError as exc:
            raise BundleWriteError(f"cannot write {relpath} into the bundle: {exc.strerror or exc}") from exc
        record = FileRecord(relpath, len(data), hashlib.sha256(data).hexdigest(), collector, scrubbed)
        with self._lock:
            self._files[relpath] = record
        return record

    def files(self) -> List[FileRecord]:
        with self._lock:
            return sorted(self._files.values(), key=lambda r: r.path)

    def for_collector(self, name: str) -> "CollectorWriter":
        return CollectorWriter(self, name)


class CollectorWriter:
    """A collector's view of the writer: attributes files to the collector and
    refuses writes once the runner has closed it (the collector ran out of time)."""

    def __init__(self, writer: BundleWriter, collector: str):
        self._writer = writer
        self.collector = collector
        self._closed = threading.Event()

    def close(self) -> None:
        self._closed.set()

    def _check(self) -> None:
        if self._closed.is_set():
            raise WriterClosed(f"collector {self.collector} wrote after its time was up")

    def write_json(self, relpath: str, data: Any) -> FileRecord:
        self._check()
        return self._writer.write_json(relpath, data, self.collector)

    def write_text(self, relpath: str, text: str) -> FileRecord:
        self._check()
        return self._writer.write_text(relpath, text, self.collector)

    def write_bytes(self, relpath: str, data: bytes, starts_mid_line: bool = False) -> FileRecord:
        self._check()
        return self._writer.write_bytes(relpath, data, self.collector, starts_mid_line)

    def write_structured(self, relpath: str, raw: bytes, source_name: str, parse: bool = True):
        self._check()
        return self._writer.write_structured(relpath, raw, source_name, self.collector, parse)


def file_records_as_dicts(records: List[FileRecord]) -> List[dict]:
    return [
        {"path": r.path, "size": r.size, "sha256": r.sha256, "collector": r.collector, "scrubbed": r.scrubbed}
        for r in records
    ]

