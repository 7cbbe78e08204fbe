"""The values of command-line options, checked and turned into what the run takes; a bad
one ends the command with a usage error (exit code 2).  Shared by `collect` on this host
and on a cluster."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import click

from collector.console import usage_error

basedir_option = click.option(
    # Neither existence, type nor readability is checked here: a BASEDIR that cannot be
    # read still gives a bundle that says what could not be read and why.
    "--basedir", type=click.Path(readable=False),
    help="Platform folder [default: $AKDIAG_BASEDIR, else the folder of a running AK: process, else /opt/akd].")

# Only click and the standard library at the top: `akdiag --help` imports this module, and
# the catalog (yaml), the run's options and the rest are loaded by the commands that use them.


def load_catalog_or_exit(path: Optional[str]):
    from collector.catalog import CatalogError, load_catalog

    try:
        return load_catalog(Path(path) if path else None)
    except CatalogError as exc:
        usage_error(str(exc))


def collect_options(log_lines: int, log_bytes: int, log_total_bytes: int, datastore_timeout: float,
                    since: Optional[str] = None, only: Optional[tuple] = None):
    from collector.context import CollectOptions

    return CollectOptions(only=only, log_lines=log_lines, log_bytes=log_bytes, log_total_bytes=log_total_bytes,
                          datastore_timeout=datastore_timeout, since=checked_since(since))


def checked_since(text: Optional[str]) -> Optional[float]:
    """Epoch seconds of a --since value (2h, 90m, 2026-11-30T14:00, ...), or None."""
    if text is None:
        return None
    from collector.logtime import BadSince, parse_since

    try:
        return parse_since(text)
    except BadSince as exc:
        usage_error(f"--since: {exc}")


def valid_patterns(patterns) -> tuple:
    from collector.userpattern import compile_error

    for pattern in patterns:
        error = compile_error(pattern)
        if error:
            usage_error(f"--redact-pattern {pattern!r} is not a valid regular expression: {error}")
    return tuple(patterns)


def checked_pii_kinds(more: str, none: bool) -> tuple:
    if none:
        if more:
            usage_error("--pseudonymize and --no-pseudonymize exclude each other")
        return ()
    from collector.pii_kinds import DEFAULT_PII_KINDS

    extra = [word.strip() for word in more.split(",") if word.strip()]
    unknown = [word for word in extra if word not in ("ips", "hosts")]
    if unknown:
        usage_error(f"--pseudonymize takes ips and/or hosts, not {', '.join(unknown)}")
    return DEFAULT_PII_KINDS + tuple(dict.fromkeys(extra))


def pseudonym_key(key_file: Optional[str], pii_kinds: tuple, basedir: Optional[Path] = None) -> Optional[bytes]:
    if not key_file:
        return None
    if not pii_kinds:
        usage_error("--pseudonym-key has no use with --no-pseudonymize")
    from collector.pseudonym_key import KeyFileError, load_or_create

    try:
        return load_or_create(Path(key_file), basedir)
    except KeyFileError as exc:
        usage_error(f"--pseudonym-key: {exc}")


def command_line(argv: Optional[list] = None) -> str:
    """The command line as the manifest records it, with the customer's own redaction
    patterns left out: a pattern may spell out the very text it is there to hide."""
    words, hide_next = ["akdiag"], False
    for word in (sys.argv[1:] if argv is None else argv):
        if hide_next:
            word, hide_next = "<pattern>", False
        elif word == "--redact-pattern":
            hide_next = True
        elif word.startswith("--redact-pattern="):
            word = "--redact-pattern=<pattern>"
        words.append(word)
    from collector.upload.redaction import hidden_in_command_line  # a pre-signed URL's signature is a secret

    return " ".join(shlex.quote(word) for word in hidden_in_command_line(words))


class SizeParam(click.ParamType):
    """A size option: `2M`, `100MiB`, `1.5GiB` or plain bytes (collector.units)."""

    name = "size"

    def convert(self, value, param, ctx):
        from collector.units import BadUnit, parse_size

        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except BadUnit as exc:
            self.fail(str(exc), param, ctx)


class DurationParam(click.ParamType):
    """A duration option: `30s`, `5m`, `1h` or plain seconds (collector.units)."""

    name = "duration"

    def convert(self, value, param, ctx):
        from collector.units import BadUnit, parse_duration

        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except BadUnit as exc:
            self.fail(str(exc), param, ctx)


SIZE = SizeParam()
DURATION = DurationParam()


def at_least(minimum: float):
    """A click callback: a duration (or number) not below `minimum`; None stays None."""

    def check(_ctx, param, value):
        if value is not None and value < minimum:
            raise click.BadParameter(f"{value:g} s is below the least allowed, {minimum:g} s", param=param)
        return value

    return check


def datastore_timeout_option(default: str):
    """--datastore-timeout, the same in every command that checks the datastores."""
    return click.option("--datastore-timeout", type=DURATION, callback=at_least(0.1), default=default,
                        show_default=True, help="Each datastore check's budget, from its client library being "
                                                "loaded; an answer after it is slow, none by twice it a timeout.")


def known_collectors(quick_only: bool) -> list:
    """The collectors' names (the registry imports every collector: only when asked)."""
    from collector.collectors import registry

    return [spec.name for spec in registry().values() if spec.quick or not quick_only]


def collector_names(quick_only: bool = False):
    """A click callback for --only/--skip: names of collectors, checked when the option is used."""

    def check(_ctx, _param, names) -> tuple:
        if not names:
            return ()
        known = known_collectors(quick_only)
        unknown = [name for name in names if name not in known]
        if unknown:
            kind = "a quick collector" if quick_only else "a collector"
            raise click.BadParameter(f"{', '.join(unknown)}: not {kind} (known: {', '.join(known)})")
        return tuple(names)

    return check


def list_collectors_option(quick_only: bool):
    """--list-collectors: print each collector's name and what it reads, and exit 0."""

    def show(ctx, _param, value):
        if not value or ctx.resilient_parsing:
            return
        from collector.collectors import registry

        for spec in registry().values():
            if spec.quick or not quick_only:
                click.echo(f"{spec.name:<14} {spec.description}")
        ctx.exit(0)

    return click.option("--list-collectors", is_flag=True, expose_value=False, is_eager=True, callback=show,
                        help="List the collectors (names for --skip" + ("" if quick_only else " and --only")
                        + ") and exit.")


def selected_collectors(only: tuple, skip: tuple):
    """collect's --only/--skip as CollectOptions.only (None: every collector)."""
    if not (only or skip):
        return None
    from collector.collectors import names

    chosen = tuple(name for name in names() if (not only or name in only) and name not in skip)
    if not chosen:
        usage_error("--only and --skip leave no collector to run")
    return chosen
