"""Where a bundle goes: the address checked before anything is collected or sent, and
each file paired with its own destination.

    https://host/path?signature   PUT (a pre-signed object store URL) or POST multipart
    sftp://user@host[:port]/path  the system's OpenSSH sftp, batch mode, keys only

The address comes from --url, else $AKDIAG_UPLOAD_URL, else the site catalog's
`upload: {url: ...}`; the method and the form field from their options, else the
catalog, else PUT and `file`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from collector.upload.redaction import safe_url

ENVIRONMENT = "AKDIAG_UPLOAD_URL"
METHODS = ("put", "post")
DEFAULT_METHOD = "put"
DEFAULT_FIELD = "file"
SCHEMES = ("https", "http", "sftp")
_FIELD = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,100}$")


class BadTarget(ValueError):
    """An address or option that cannot be used; the message never holds the URL's secret."""


@dataclass(frozen=True)
class UploadTarget:
    url: str
    method: str = DEFAULT_METHOD  # put or post (HTTP); "sftp" for sftp://
    field: str = DEFAULT_FIELD  # the multipart form field (POST)
    source: str = "--url"  # where the address came from, for messages

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def shown(self) -> str:
        return safe_url(self.url)


@dataclass(frozen=True)
class UploadSettings:
    ca_file: Optional[str] = None
    insecure_http: bool = False
    max_size: Optional[int] = None  # bytes, per file
    timeout: float = 60.0  # seconds without progress (connect, each send, the answer)
    retries: int = 4  # attempts after the first, on network errors and 5xx
    ssh_config: Optional[str] = None
    ssh_options: Tuple[str, ...] = ()


def configured_target(urls: Sequence[str], method: Optional[str], field: Optional[str],
                      catalog_upload: Optional[Mapping] = None,
                      environ: Optional[Mapping] = None) -> List[UploadTarget]:
    """The targets given by --url (one or one per file), else by the environment, else by
    the catalog; BadTarget when none is set."""
    catalog_upload = catalog_upload or {}
    environ = os.environ if environ is None else environ
    if urls:
        source, addresses = "--url", list(urls)
    elif environ.get(ENVIRONMENT):
        source, addresses = f"${ENVIRONMENT}", [environ[ENVIRONMENT]]
    elif catalog_upload.get("url"):
        source, addresses = "the catalog's upload.url", [catalog_upload["url"]]
    else:
        raise BadTarget(f"no upload address: give --url URL, set ${ENVIRONMENT}, or put "
                        "`upload: {url: ...}` in the --catalog file")
    method = (method or catalog_upload.get("method") or DEFAULT_METHOD).lower()
    field = field or catalog_upload.get("field") or DEFAULT_FIELD
    return [parse_target(address, method, field, source) for address in addresses]


def parse_target(url: str, method: str = DEFAULT_METHOD, field: str = DEFAULT_FIELD,
                 source: str = "--url") -> UploadTarget:
    """A checked target; BadTarget names what is wrong (never the address's secret)."""
    shown = safe_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise BadTarget(f"{source}: {shown} is not a valid address ({_no_secret(exc)})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise BadTarget(f"{source}: {shown}: akdiag sends to https://, sftp:// (or, with --insecure-http, "
                        f"http://) addresses, not {scheme + '://' if scheme else 'a bare path'}")
    if not parts.hostname:
        raise BadTarget(f"{source}: {shown} names no host")
    if port == 0:
        raise BadTarget(f"{source}: {shown}: port 0")
    if scheme == "sftp":
        if parts.password is not None:
            raise BadTarget(f"{source}: {shown}: sftp runs in batch mode with keys only; remove the password "
                            "from the address and authorize a key (ssh-copy-id)")
        if parts.query:
            raise BadTarget(f"{source}: {shown}: an sftp address has no query")
        if parts.hostname.startswith("-") or (parts.username or "").startswith("-"):
            raise BadTarget(f"{source}: {shown}: a host or user name cannot start with -")
        return UploadTarget(url.strip(), "sftp", field, source)
    if method not in METHODS:
        raise BadTarget(f"--method must be put or post, not {method!r}")
    if not _FIELD.match(field):
        raise BadTarget(f"--field {field!r}: a form field name of letters, digits, _ . - [ ] only")
    return UploadTarget(url.strip(), method, field, source)


def check_scheme_allowed(target: UploadTarget, insecure_http: bool) -> None:
    if target.scheme == "http" and not insecure_http:
        raise BadTarget(f"{target.source}: {target.shown} is plain http: the bundle and the address's "
                        "signature would cross the network unencrypted; use https, or --insecure-http "
                        "on a network you trust")


def pair_files(files: Sequence[Path], targets: Sequence[UploadTarget]) -> List[Tuple[Path, UploadTarget]]:
    """Each file with its destination: one address per file, or one for all of them:
    a folder (an address ending in /, or sftp with several files) gets each file by its
    name; POST sends every file to the same endpoint; a PUT URL names one object."""
    if len(targets) == len(files):
        return [(path, _in_folder(target, path) if _is_folder(target) and not _posts(target) else target)
                for path, target in zip(files, targets)]
    if len(targets) != 1:
        raise BadTarget(f"{len(targets)} addresses for {len(files)} files: give one --url, or one per file")
    target = targets[0]
    if _posts(target):
        return [(path, target) for path in files]
    if names_one_object(target):
        raise BadTarget(f"{target.shown} names one object, and {len(files)} files are to be sent: give one "
                        "pre-signed --url per file (in the files' order), or an address ending in /")
    return [(path, _in_folder(target, path)) for path in files]


def _posts(target: UploadTarget) -> bool:
    """A form POST: every file goes to the endpoint itself, whatever its address ends in."""
    return target.method == "post" and target.scheme != "sftp"


def names_one_object(target: UploadTarget) -> bool:
    """A PUT URL not ending in / (a pre-signed URL is for one object)."""
    return target.method == "put" and target.scheme != "sftp" and not _is_folder(target)


def _is_folder(target: UploadTarget) -> bool:
    return urlsplit(target.url).path.endswith("/") or (target.scheme == "sftp" and not urlsplit(target.url).path)


def _in_folder(target: UploadTarget, path: Path) -> UploadTarget:
    parts = urlsplit(target.url)
    if target.scheme == "sftp" and not parts.path:
        folder = "/~/"  # no path: the user's home
    else:
        folder = parts.path if parts.path.endswith("/") else parts.path + "/"
    name = path.name if target.scheme == "sftp" else quote(path.name)
    return UploadTarget(urlunsplit((parts.scheme, parts.netloc, folder + name, parts.query, "")),
                        target.method, target.field, target.source)


def sftp_parts(target: UploadTarget) -> Tuple[Optional[str], str, Optional[int], str]:
    """(user, host, port, remote path) of an sftp:// target; a path under /~/ is in the
    user's home, any other is absolute; no path is the home folder itself."""
    parts = urlsplit(target.url)
    path = unquote(parts.path)
    if path in ("", "/~", "/~/"):
        remote = "."
    elif path.startswith("/~/"):
        remote = path[3:]
    else:
        remote = path
    user = unquote(parts.username) if parts.username else None
    return user, parts.hostname, parts.port, remote


def _no_secret(exc: Exception) -> str:
    return type(exc).__name__
