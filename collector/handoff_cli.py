"""The command line of the hand-off to support: `collect`'s --case-id, --max-size, --split
and --dry-run (applied in collector.cli with one decorator line each), and `akdiag pack`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from collector.bundle.handoff import BadCaseId, Handoff, checked_case_id
from collector.cli_options import SIZE, load_catalog_or_exit, valid_patterns
from collector.console import EXIT_OK, EXIT_OUTPUT, error, human_size, usage_error

MIN_MAX_SIZE = 64 * 1024  # below this not even the summary page fits
MIN_VOLUME = 64 * 1024


def _case_id(_ctx, _param, value: Optional[str]) -> str:
    if value is None:
        return ""
    try:
        return checked_case_id(value)
    except BadCaseId as exc:
        raise click.BadParameter(str(exc)) from None


case_id_option = click.option(
    "--case-id", callback=_case_id, metavar="ID",
    help="Support case number, put in the bundle's name, its manifest and its summary (letters, digits, - and .).")
max_size_option = click.option(
    "--max-size", type=SIZE, metavar="SIZE",
    help="The archive fits this size (e.g. 25M): log tails are trimmed, oldest lines first, to fit; "
         "the records never are (too small for them: exit 2, nothing written).")
split_option = click.option(
    "--split", "split_size", type=SIZE, metavar="SIZE",
    help="Write the 7z archive as volumes of this size (.7z.001, .7z.002...; `7z x` on the first opens them), "
         "with their checksums in .7z.sha256.")
dry_run_option = click.option(
    "--dry-run", is_flag=True,
    help="Print what would be collected (files with sizes and tails, commands, datastore addresses, options) "
         "and write nothing.")


def checked_handoff(case_id: str, max_size: Optional[int], split_size: Optional[int], fmt: str,
                    cluster: bool, dry_run: bool) -> Handoff:
    """The hand-off options, or a usage error for a combination that cannot work."""
    if cluster and (max_size or split_size or dry_run):
        usage_error("--max-size, --split and --dry-run are for one host; a cluster run takes --case-id")
    if max_size is not None and fmt == "dir":
        usage_error("--max-size needs an archive (--format 7z or tar.gz)")
    if max_size is not None and max_size < MIN_MAX_SIZE:
        usage_error(f"--max-size {human_size(max_size)} is too small: a bundle's records and summary alone take "
                    f"more than {human_size(MIN_MAX_SIZE)}")
    checked_split(split_size, fmt)
    return Handoff(case_id=case_id, max_size=max_size, split=split_size)


def checked_split(split_size: Optional[int], fmt: str) -> None:
    """--split of `collect` and `pack`: 7-Zip volumes, none smaller than MIN_VOLUME."""
    if split_size is not None and fmt != "7z":
        usage_error("--split makes 7-Zip volumes: it needs --format 7z")
    if split_size is not None and split_size < MIN_VOLUME:
        usage_error(f"--split {human_size(split_size)}: volumes take at least {human_size(MIN_VOLUME)}")


def run_dry(request, encrypt: bool) -> int:
    """Print the plan of `request` (collector/plan.py); nothing is written."""
    from collector.plan import build_plan, plan_text

    click.echo(plan_text(build_plan(request, encrypt)), nl=False)
    return EXIT_OK


@click.command("pack")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--output", "output_dir", type=click.Path(file_okay=False),
              help="Folder to write the archive into [default: beside FOLDER].")
@click.option("--format", "fmt", type=click.Choice(["7z", "tar.gz"]), default="7z", show_default=True)
@click.option("--encrypt", is_flag=True, help="Encrypt the 7z archive (AES-256, file names hidden too).")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="File holding the archive password [else $AKDIAG_PASSWORD, else a prompt].")
@split_option
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="YAML file merged over the built-in catalog (its redaction patterns are applied).")
@click.option("--redact-pattern", "redact_patterns", multiple=True, metavar="REGEX",
              help="Also mask this regular expression in the files changed by hand (repeatable).")
def pack_command(folder, output_dir, fmt, encrypt, password_file, split_size, catalog_file, redact_patterns):
    """Pack a bundle folder (collect --format dir) after reviewing it.

    The folder is checked against its manifest: files changed by hand are scrubbed
    again and named in the manifest (review.changed), files removed are named
    (review.removed); a file added by hand, or a symlink, is refused. The folder itself
    is left as it is.

    \b
    Exit codes:
      0  packed
      2  not a bundle folder, a file added by hand, a bad option
      3  the archive could not be written
    """
    from collector.pack import ReviewError, pack_reviewed
    from collector.password import password_for_archive
    from collector.run import OutputError

    if encrypt and fmt != "7z":
        usage_error("--encrypt needs --format 7z")
    checked_split(split_size, fmt)
    catalog = load_catalog_or_exit(catalog_file)
    patterns = valid_patterns(redact_patterns)
    password = password_for_archive(encrypt, password_file)
    target = Path(output_dir) if output_dir else Path(folder).resolve().parent
    try:
        done = pack_reviewed(Path(folder), target, fmt, password, patterns, tuple(catalog.redact), split_size)
    except ReviewError as exc:
        usage_error(str(exc))
    except (OutputError, OSError) as exc:
        error(f"nothing packed: {exc}")
        sys.exit(EXIT_OUTPUT)
    click.echo(f"Bundle:    {done.placed.path.resolve()}")
    click.echo(f"Size:      {human_size(done.placed.size)}")
    if done.placed.checksum:
        click.echo(f"Checksums: {done.placed.checksum}")
    click.echo(f"Reviewed:  {len(done.review.unchanged)} unchanged, {len(done.review.changed)} changed by hand "
               f"(scrubbed again), {len(done.review.removed)} removed")
    for rel in done.review.changed:
        click.echo(f"  changed: {rel}")
    for rel in done.review.removed:
        click.echo(f"  removed: {rel}")
    sys.exit(EXIT_OK)
