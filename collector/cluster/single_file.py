"""The single-file akdiag a cluster run copies to the hosts: the one given
(--akdiag-file), the .pyz this akdiag runs from, or one built into akdiag's cache; and an
akdiag already installed on a host, used when it is not older than this one."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Dict, Optional

from collector import __version__, zipapp_main
from collector.bundle.split import sha256_of
from collector.cluster.ssh import RemoteError

# The bootstrap's facts this package needs, read here only: the oldest Python the single
# file runs on, the member that marks an akdiag single file, and where it unpacks.
MIN_PYTHON = zipapp_main.MIN_PYTHON


def version_tuple(text: Optional[str]) -> tuple:
    numbers = re.findall(r"\d+", text or "")
    return tuple(int(n) for n in numbers[:4])


def usable_installed_akdiag(remote: Dict[str, Optional[str]], file_given: bool) -> Optional[str]:
    """The host's own akdiag (its path), when it is not older than this one and no
    --akdiag-file was given (the caller's file is always the one run); else None."""
    path = remote.get("akdiag")
    if file_given or not path or not path.startswith("/"):
        return None
    found = version_tuple(remote.get("akdiag_version"))
    return path if found and found >= version_tuple(__version__) else None


def running_single_file() -> Optional[Path]:
    """The .pyz this akdiag runs from, when it runs from one (its bootstrap is the
    __main__ module, loaded from the archive; akdiag's code runs from the cache)."""
    import sys
    import zipfile

    main = sys.modules.get("__main__")
    candidates = [getattr(getattr(main, "__loader__", None), "archive", None), sys.argv[0] if sys.argv else None]
    for candidate in candidates:
        if not candidate or not os.path.isfile(candidate) or not zipfile.is_zipfile(candidate):
            continue
        try:
            with zipfile.ZipFile(candidate) as archive_file:
                if zipapp_main.MANIFEST in archive_file.namelist():
                    return Path(candidate).resolve()
        except (OSError, zipfile.BadZipFile):
            continue
    return None


def single_file_cache() -> Path:
    """Where a single file built for the hosts is kept: the first of the places the
    single file itself would unpack into (AKDIAG_CACHE_DIR, XDG_CACHE_HOME, ~/.cache)."""
    root, _final = next(zipapp_main.cache_roots())
    return Path(root)


class SingleFile:
    """The single-file akdiag to copy to hosts: --akdiag-file, else the .pyz this akdiag
    runs from, else one built (once, on first need) into akdiag's cache folder."""

    def __init__(self, given: Optional[Path]):
        self.given = Path(given) if given else None
        self._lock = threading.Lock()
        self._path: Optional[Path] = None
        self._error: Optional[str] = None

    def cache_name(self) -> str:
        """Its name in a host's cache folder: the version and a digest of the content, so
        that a host keeps one copy per build and never runs a stale one."""
        path = self.path()
        with self._lock:
            if not getattr(self, "_name", None):
                self._name = f"akdiag-{__version__}-{sha256_of(path)[:12]}.pyz"
            return self._name

    def path(self) -> Path:
        with self._lock:
            if self._path is None and self._error is None:
                try:
                    self._path = self._find()
                except Exception as exc:  # recorded for every host that needed it
                    self._error = f"{type(exc).__name__}: {exc}"
            if self._path is None:
                raise RemoteError("no_akdiag", f"no single-file akdiag to copy to the host ({self._error}); "
                                  "give one with --akdiag-file")
            return self._path

    def _find(self) -> Path:
        if self.given is not None:
            if not self.given.is_file():
                raise FileNotFoundError(f"{self.given} does not exist")
            return self.given
        own = running_single_file()
        if own is not None:
            return own
        from collector import zipapp  # the single-file build (collector/zipapp.py)

        target = single_file_cache() / f"akdiag-{__version__}.pyz"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            zipapp.build_single_file(target)
        return target
