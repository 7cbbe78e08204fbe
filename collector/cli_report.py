"""`akdiag report` and `akdiag diff`: commands over bundles already written (one bundle or
cluster archive re-rendered; two compared)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from collector.cli_help import SectionedCommand
from collector.cli_options import load_catalog_or_exit
from collector.console import EXIT_OK, EXIT_OUTPUT, echo_out, error, usage_error


@click.command(cls=SectionedCommand, examples=(
    ("akdiag report BUNDLE.7z --open", "BUNDLE.summary.html and BUNDLE.findings.json here, opened in a browser."),
    ("akdiag report BUNDLE.7z -o /tmp/summary.html", "The summary written to /tmp/summary.html."),
))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("-o", "--output", "output_file", type=click.Path(dir_okay=False),
              help="Where to write the summary [default: ./<bundle name>.summary.html]; the findings go "
                   "beside it as <name>.findings.json.")
@click.option("--open", "open_it", is_flag=True, help="Open the summary in a web browser.")
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False),
              help="YAML file merged over the built-in catalog (thresholds).")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="File holding an encrypted bundle's password [else $AKDIAG_PASSWORD, else a prompt].")
def report(bundle, output_file, open_it, catalog_file, password_file):
    """Re-render the summary and findings of an existing bundle with this akdiag.

    BUNDLE is a bundle folder, .7z or .tar.gz.  Nothing inside it is changed.

    \b
    Exit codes:
      0  the summary and findings were written
      2  bad option or catalog; not a bundle, a wrong password, or a bundle newer than this akdiag
      3  the summary could not be written; or it was, but the bundle holds no usable process
         (or port) data, so the verdict is unknown, as `check` says it
    """
    from collector.bundle.reader import BundleError
    from collector.bundle.writer import BundleWriteError
    from collector.cluster.report import rerender_cluster
    from collector.console import open_in_browser, print_report, report_exit_code
    from collector.password import asking_password
    from collector.rerender import NewerSchemaError, default_output, rerender

    catalog = load_catalog_or_exit(catalog_file)
    output = Path(output_file) if output_file else default_output(Path(bundle))
    try:
        done = asking_password(lambda password: rerender(Path(bundle), output, catalog, password,
                                                         render_cluster=rerender_cluster), password_file)
    except NewerSchemaError as exc:
        usage_error(f"{bundle}: {exc}")
    except BundleError as exc:
        usage_error(str(exc))
    except BundleWriteError as exc:
        error(str(exc))
        sys.exit(EXIT_OUTPUT)
    print_report(done)
    if open_it:
        open_in_browser(done.html_path)
    sys.exit(report_exit_code(done.analysis.findings))


@click.command(cls=SectionedCommand, examples=(
    ("akdiag diff before.7z after.7z", "What changed; exit 1 on a regression."),
    ("akdiag diff before.7z after.7z --format html -o diff.html", "The same as a web page."),
))
@click.argument("old", type=click.Path(exists=True))
@click.argument("new", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True)
@click.option("-o", "--output", "output_file", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option("--allow-different-hosts", is_flag=True, help="Compare bundles of two different hosts.")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="File holding encrypted bundles' password [else $AKDIAG_PASSWORD, else a prompt].")
def diff(old, new, fmt, output_file, allow_different_hosts, password_file):
    """What changed between two bundles of one host (e.g. before and after an upgrade).

    OLD and NEW are bundle folders, .7z (encrypted too) or .tar.gz archives.

    \b
    Exit codes:
      0  no regression (no new critical or warning finding, no process lost)
      1  a regression
      2  error: a bundle that cannot be read, a wrong password, different hosts
    """
    from collector.bundle.reader import BundleError
    from collector.commands import diff_text, write_outside_bundle
    from collector.diff import DifferentHostsError
    from collector.password import open_bundles

    try:
        with open_bundles([Path(old), Path(new)], password_file) as (old_reader, new_reader):
            result = _diff_readers(old_reader, new_reader, allow_different_hosts)
    except (BundleError, DifferentHostsError) as exc:
        usage_error(str(exc))
    text = diff_text(result, fmt, output_file)
    if output_file:
        write_outside_bundle(Path(output_file), text)
        click.echo(f"Diff: {Path(output_file).resolve()}", err=True)
    else:
        echo_out(text, nl=False)
    sys.exit(1 if result.regression else EXIT_OK)


def _diff_readers(old, new, allow_different_hosts: bool):
    """Two cluster archives (or one and a bundle) are compared host by host by the cluster
    package; two bundles by collector.diff."""
    from collector.bundle import schema

    if old.exists(schema.CLUSTER_MANIFEST) or new.exists(schema.CLUSTER_MANIFEST):
        from collector.cluster.diff import diff_clusters

        return diff_clusters(old, new, allow_different_hosts)
    from collector.diff import diff_bundles

    return diff_bundles(old, new, allow_different_hosts)
