"""A stdout whose reader has gone (`akdiag check | head -1`): the output just ends, with
no traceback and no "internal error"; the command exits with its own status."""

from __future__ import annotations

import os
import sys

import click


def quiet_closed_stdout() -> None:
    """stdout's reader has gone (`akdiag check | head -1`): what is left to print goes to
    /dev/null, as Python's documentation advises, so that neither a later write nor the
    flush at exit raises again (no traceback, no "Exception ignored")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def echo_out(text: str, nl: bool = True) -> None:
    """A command's result on stdout; a closed pipe just ends the output (the command then
    exits with its own status, as if it had been read)."""
    try:
        click.echo(text, nl=nl)
    except BrokenPipeError:
        quiet_closed_stdout()
