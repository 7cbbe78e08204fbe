"""`akdiag upload FILE... [--url URL]` and `collect --upload [URL]`: the options, their
checks (bad input ends with 2 before anything is sent) and what is printed.  The
transfers themselves are collector.upload's.

Exit codes: 0 every file sent; 2 bad input (no or bad address, http:// without
--insecure-http, a missing file, a file over --max-upload-size); 6 a transfer failed
(for `collect --upload`: the bundle was written and stays, its path is printed)."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Tuple

import click

from collector import interrupt
from collector.cli_options import DURATION, SIZE, at_least, load_catalog_or_exit
from collector.console import EXIT_OK, EXIT_UPLOAD_FAILED, error, usage_error

if TYPE_CHECKING:
    from collector.upload import UploadSettings

# collector.upload is imported where a command runs: `akdiag --help` stays quick
ENVIRONMENT = "AKDIAG_UPLOAD_URL"  # collector.upload.target.ENVIRONMENT, which the tests hold equal

DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 4
_retries_type = click.IntRange(min=0, max=10)


@dataclass(frozen=True)
class UploadRequest:
    """What `collect --upload` was asked, checked against the catalog by `prepare_upload`."""
    urls: Tuple[str, ...]
    method: Optional[str]
    field: Optional[str]
    settings: UploadSettings


def _settings(ca_file, insecure_http, max_upload_size, timeout, retries, ssh_config=None, ssh_options=()):
    from collector.upload import UploadSettings

    return UploadSettings(ca_file=ca_file, insecure_http=insecure_http, max_size=max_upload_size,
                          timeout=timeout, retries=retries, ssh_config=ssh_config, ssh_options=tuple(ssh_options))


def _shared_options(prefix: str):
    """The transfer's options, named as `upload` names them, or `--upload-...` on collect
    (whose parameters then start with upload_: collect has a --timeout of its own)."""
    dest = prefix.replace("-", "_")
    return [
        click.option(f"--{prefix}method", f"{dest}method", type=click.Choice(["put", "post"], case_sensitive=False),
                     help="HTTP method: put (a pre-signed object store URL) or post (a multipart form) "
                          "[default: the catalog's upload.method, else put]."),
        click.option(f"--{prefix}field", f"{dest}field", metavar="NAME",
                     help="POST: the form field of the file [default: the catalog's upload.field, else file]."),
        click.option("--ca-file", type=click.Path(dir_okay=False),
                     help="PEM file of a private CA to trust (besides the system's CA store)."),
        click.option("--insecure-http", is_flag=True, help="Allow a plain http:// address (unencrypted)."),
        click.option("--max-upload-size", type=SIZE, metavar="SIZE",
                     help="Refuse, before sending anything, a file larger than this (e.g. 25M)."),
        click.option(f"--{prefix}timeout", f"{dest}timeout", type=DURATION, default=DEFAULT_TIMEOUT, show_default=True,
                     callback=at_least(1),
                     help="Seconds without progress after which an attempt is given up (30s, 2m)."),
        click.option(f"--{prefix}retries", f"{dest}retries", type=_retries_type, default=DEFAULT_RETRIES,
                     show_default=True,
                     help="Attempts after the first on a network error or a 5xx answer (backoff 1, 2, 4 ... s)."),
    ]


def _apply(options, func):
    for option in reversed(options):
        func = option(func)
    return func


@click.command("upload")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="https://... (a pre-signed PUT URL or an upload endpoint) or sftp://user@host[:port]/path; "
                   f"once, or once per file [default: ${ENVIRONMENT}, else the catalog's upload.url].")
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="Site catalog whose `upload:` entry names the vendor's address.")
@click.option("--ssh-config", type=click.Path(dir_okay=False), help="sftp: ssh -F FILE.")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPTION",
              help="sftp: an ssh -o option, e.g. --ssh-option IdentityFile=/root/.ssh/support (repeatable).")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@functools.partial(_apply, _shared_options(""))
def upload_command(files, urls, catalog_file, ssh_config, ssh_options, quiet, method, field, ca_file,
                   insecure_http, max_upload_size, timeout, retries):
    """Send bundle files to support: HTTPS PUT to a pre-signed URL, HTTPS POST to an upload
    endpoint, or sftp.  FILES are archives, split volumes (.7z.001 ...) and .sha256 files.

    The URL's query string (a pre-signed signature) and any password are never printed.
    HTTPS_PROXY and NO_PROXY are honoured.

    \b
    Exit codes:
      0  every file was sent
      2  bad input: no or bad address, http:// without --insecure-http, a missing file,
         a file over --max-upload-size (nothing was sent)
      6  a transfer failed (after its retries); the files not sent are named
    """
    from collector.upload import BadTarget, configured_target, plan

    catalog = load_catalog_or_exit(catalog_file) if catalog_file else None
    settings = _settings(ca_file, insecure_http, max_upload_size, timeout, retries, ssh_config, ssh_options)
    try:
        targets = configured_target(urls, method, field, catalog.upload if catalog else None)
        pairs = plan([Path(name) for name in files], targets, settings)
    except BadTarget as exc:
        usage_error(str(exc))
    sys.exit(send_all(pairs, settings, quiet))


def send_all(pairs, settings, quiet: bool, bundle: Optional[Path] = None) -> int:
    """Sends each file in turn; stops at the first that fails (naming what was not sent)."""
    from collector.upload import UploadError, send

    say = (lambda message: None) if quiet else (lambda message: click.echo(f"akdiag: {message}", err=True))
    for number, (path, target) in enumerate(pairs):
        say(f"sending {path.name} to {target.shown}")
        try:
            sent = send(path, target, settings, say, progress_enabled=False if quiet else None)
        except UploadError as exc:
            error(f"upload failed: {exc}")
            left = [p.name for p, _target in pairs[number:]]
            click.echo(f"Not sent: {', '.join(left)}", err=True)
            if bundle is not None:
                click.echo(f"The bundle was written and stays here: {bundle.resolve()} (send it with "
                           "`akdiag upload` once the problem is fixed)", err=True)
            return EXIT_UPLOAD_FAILED
        if not quiet:
            click.echo(f"Uploaded:  {sent.line()}")
    return EXIT_OK


# --------------------------------------------------------------------------- collect --upload

def upload_options(func):
    """`collect`'s --upload options, handed to the command as one `upload` argument
    (an UploadRequest, or None when --upload is not given)."""
    @functools.wraps(func)
    def wrapper(*args, upload_url, upload_method, upload_field, ca_file, insecure_http, max_upload_size,
                upload_timeout, upload_retries, **kwargs):
        request = None
        if upload_url is not None:
            request = UploadRequest(tuple(u for u in (upload_url,) if u), upload_method, upload_field,
                                    _settings(ca_file, insecure_http, max_upload_size, upload_timeout,
                                              upload_retries))
        elif any((upload_method, upload_field, ca_file, insecure_http, max_upload_size)):
            usage_error("--upload-method, --upload-field, --ca-file, --insecure-http and --max-upload-size "
                        "need --upload")
        return func(*args, upload=request, **kwargs)

    options = [click.option("--upload", "upload_url", is_flag=False, flag_value="", metavar="[URL]",
                            help="Send the bundle once written (https:// or sftp://; alone: "
                                 f"${ENVIRONMENT}, else the catalog's upload.url). Exit code 6 if it "
                                 "could not be sent (the bundle stays).")]
    return _apply(options + _shared_options("upload-"), wrapper)


def prepare_upload(request: Optional[UploadRequest], catalog, fmt: str, quiet: bool = False,
                   cluster: bool = False) -> Optional[Callable[[Path], int]]:
    """Checks `collect --upload` before anything is collected (bad input: exit 2) and
    returns what sends the written bundle (its exit code), or None without --upload."""
    if request is None:
        return None
    from collector.upload import BadTarget, check_targets, configured_target, files_to_send, plan

    if cluster:
        usage_error("--upload is for one host's bundle; send a cluster archive with `akdiag upload ARCHIVE`")
    if fmt == "dir":
        usage_error("--upload needs an archive: --format 7z or tar.gz")
    try:
        targets = configured_target(request.urls, request.method, request.field, catalog.upload)
        check_targets(targets, request.settings)
    except BadTarget as exc:
        usage_error(str(exc))

    def upload_bundle(path: Path) -> int:
        files, left_out = files_to_send(path, targets)
        if left_out and not quiet:
            click.echo(f"akdiag: not sent: {', '.join(p.name for p in left_out)} (the pre-signed URL names one "
                       "object: the archive)", err=True)
        try:
            pairs = plan(files, targets, request.settings)
        except BadTarget as exc:
            error(f"upload not started: {exc}")
            click.echo(f"The bundle was written and stays here: {Path(path).resolve()}", err=True)
            return EXIT_UPLOAD_FAILED
        try:
            return send_all(pairs, request.settings, quiet, bundle=Path(path))
        except BaseException as exc:  # a stop signal, or what it turned into (interrupt.stopped_by)
            # the bundle is written: say so, not "nothing left behind"
            status = interrupt.finish_if_stopped(exc, f"upload stopped; the bundle was written and stays here: "
                                                      f"{Path(path).resolve()}")
            if status is None:
                raise
            return status

    return upload_bundle
