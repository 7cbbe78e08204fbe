"""The archive password: from a file, else AKDIAG_PASSWORD, else asked on the terminal;
and bundles opened with it, asked for once and only when a bundle is encrypted."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Optional, TypeVar

import click

from collector.console import usage_error

T = TypeVar("T")


def bundle_password(password_file: Optional[str], confirm: bool) -> str:
    """The archive password: from a file, else AKDIAG_PASSWORD, else asked on the
    terminal.  Never a command-line argument: the process table would show it, and
    akdiag itself collects the process table."""
    if password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            usage_error(f"cannot read the password file {password_file}: {exc}")
        if not password:
            usage_error(f"the password file {password_file} is empty")
        return password
    if os.environ.get("AKDIAG_PASSWORD"):
        # Taken out of the environment, so that no process akdiag starts inherits it.
        return os.environ.pop("AKDIAG_PASSWORD")
    if not sys.stdin.isatty():
        usage_error("a password is needed: give --password-file FILE or set AKDIAG_PASSWORD")
    return click.prompt("Archive password", hide_input=True, confirmation_prompt=confirm)


def password_for_archive(encrypt: bool, password_file: Optional[str]) -> Optional[str]:
    """The password of an archive to write: None without --encrypt.  A password file
    given without --encrypt is refused: the administrator meant an encrypted bundle, and
    would otherwise get a plain one."""
    if password_file and not encrypt:
        usage_error(f"--password-file {password_file} is given without --encrypt: the archive would not be "
                    "encrypted; add --encrypt (or leave --password-file out for a plain archive)")
    return bundle_password(password_file, confirm=True) if encrypt else None


def asking_password(action: Callable[[Optional[str]], T], password_file: Optional[str]) -> T:
    """`action(password)`; with --password-file the password is read first, else asked
    for only when the bundle turns out to be encrypted."""
    from collector.bundle.reader import BundleEncrypted

    password = bundle_password(password_file, confirm=False) if password_file else None
    try:
        return action(password)
    except BundleEncrypted:
        if password is not None:
            raise
    return action(bundle_password(password_file, confirm=False))


@contextlib.contextmanager
def open_bundles(paths, password_file: Optional[str]):
    """Readers over every bundle; the password is asked once, when one is encrypted."""
    from collector.bundle.reader import BundleEncrypted, open_bundle

    password = bundle_password(password_file, confirm=False) if password_file else None
    with contextlib.ExitStack() as stack:
        readers = []
        for path in paths:
            try:
                readers.append(stack.enter_context(open_bundle(path, password)))
            except BundleEncrypted:
                if password is not None:
                    raise
                password = bundle_password(password_file, confirm=False)
                readers.append(stack.enter_context(open_bundle(path, password)))
        yield readers
