"""Sending a finished bundle to support: HTTPS PUT (a pre-signed object store URL), HTTPS
POST multipart (a ticket system) or sftp://, with retries, a progress bar on a terminal,
and the address's secret (its query, its password) never shown.

    targets = configured_target(urls, method, field, catalog.upload)   # BadTarget: bad input
    pairs = plan(files, targets, settings)                           # BadTarget: bad input
    for path, target in pairs: send(path, target, settings, say)     # UploadError: failed

The parts: target.py (addresses), redaction.py (what may be shown), http.py, sftp.py,
retry.py (backoff), progress.py (the bar)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

from collector.units import format_size
from collector.upload.progress import Progress
from collector.upload.redaction import safe_url
from collector.upload.retry import UploadError
from collector.upload.target import (BadTarget, UploadSettings, UploadTarget, check_scheme_allowed,
                                     configured_target, names_one_object, pair_files)

__all__ = ["BadTarget", "Sent", "UploadError", "UploadSettings", "UploadTarget", "bundle_files",
           "check_targets", "configured_target", "files_to_send", "plan", "safe_url", "send"]

_VOLUME_OR_SUM = re.compile(r"^(\d{3,}(\.sha256)?|sha256)$")
_MAPPING = re.compile(r"\.mapping(-\d+)?\.json$")  # collector.bundle.archive.write_mapping_beside


@dataclass
class Sent:
    path: Path
    destination: str  # the address as it may be shown
    size: int
    seconds: float
    answer: str

    def line(self) -> str:
        return (f"{self.path.name} -> {self.destination} ({self.answer}; "
                f"{format_size(self.size)} in {self.seconds:.1f} s)")


def plan(files: Sequence[Path], targets: Sequence[UploadTarget],
         settings: UploadSettings) -> List[Tuple[Path, UploadTarget]]:
    """Each file with its destination, everything checked before a byte is sent: the
    files exist and are regular, none is over --max-upload-size, the addresses are
    allowed (http:// only with --insecure-http) and the private CA can be read."""
    if not files:
        raise BadTarget("no file to send")
    check_targets(targets, settings)
    for path in files:
        _check_file(path, settings.max_size)
    return pair_files(list(files), list(targets))


def check_targets(targets: Sequence[UploadTarget], settings: UploadSettings) -> None:
    """What can be checked before the files exist: http:// allowed, the private CA read."""
    for target in targets:
        check_scheme_allowed(target, settings.insecure_http)
    if settings.ca_file:
        from collector.upload.http import tls_context

        try:
            tls_context(settings.ca_file)
        except UploadError as exc:
            raise BadTarget(str(exc)) from None


def _check_file(path: Path, max_size) -> None:
    if _MAPPING.search(path.name):
        raise BadTarget(f"{path} is the pseudonym -> original table (--keep-mapping): it stays with you and is "
                        "never sent; nothing was sent")
    if not path.exists():
        volumes = sorted(path.parent.glob(path.name + ".[0-9][0-9][0-9]"))
        hint = f" (its volumes are here: {volumes[0].name}, ...: send them all)" if volumes else ""
        raise BadTarget(f"{path}: no such file{hint}")
    if not path.is_file():
        raise BadTarget(f"{path}: not a regular file (a --format dir bundle is sent after `akdiag pack` or "
                        "as an archive)")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise BadTarget(f"{path}: cannot be read ({exc.strerror or exc})") from None
    size = path.stat().st_size
    if max_size is not None and size > max_size:
        raise BadTarget(f"{path} is {format_size(size)}, over --max-upload-size {format_size(max_size)}: nothing "
                        "was sent (split it: collect --split SIZE)")


def send(path: Path, target: UploadTarget, settings: UploadSettings, say: Callable[[str], None],
         progress_enabled=None) -> Sent:
    """One file to its destination, with retries; UploadError when it could not be sent."""
    started = time.monotonic()
    size = path.stat().st_size
    if target.scheme == "sftp":
        from collector.upload.sftp import send_sftp

        answer = send_sftp(path, target, settings, say)
    else:
        from collector.upload.http import send_http

        progress = Progress(path.name, size, enabled=progress_enabled)
        answer = send_http(path, target, settings, progress, say)
    return Sent(path, target.shown, size, time.monotonic() - started, answer)


def files_to_send(bundle: Path, targets: Sequence[UploadTarget]) -> Tuple[List[Path], List[Path]]:
    """(the files of a written bundle to send, those left out): to one pre-signed PUT URL
    (one object) a single archive goes without its .sha256 files; anything else sends them all."""
    files = bundle_files(bundle)
    data = [path for path in files if not path.name.endswith(".sha256")]
    if len(targets) == 1 and names_one_object(targets[0]) and len(data) == 1:
        return data, [path for path in files if path not in data]
    return files, []


def bundle_files(path: Path) -> List[Path]:
    """The files of a written bundle, in the order to send them: the archive (or its
    volumes .001, .002, ...), then the .sha256 files beside them."""
    path = Path(path)
    base = path.with_suffix("") if re.fullmatch(r"\.\d{3,}", path.suffix) else path
    siblings = [p for p in base.parent.glob(base.name + ".*")
                if _VOLUME_OR_SUM.match(p.name[len(base.name) + 1:]) and p.is_file()]
    data = ([base] if base.is_file() else []) + sorted(p for p in siblings if not p.name.endswith(".sha256"))
    sums = sorted(p for p in siblings if p.name.endswith(".sha256"))
    return data + sums
