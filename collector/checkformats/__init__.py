"""The check's formats for monitoring systems: Prometheus's text exposition and Zabbix's
discovery and values, made from a CheckResult and the snapshot of its bundle
(collector.checkformats.snapshot), and `--output FILE` written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from collector.checkformats import prometheus, zabbix
from collector.checkformats.output import OutputFileError, write_atomically
from collector.checkformats.snapshot import snapshot

RENDERERS = {"prometheus": prometheus.render, "zabbix-discovery": zabbix.render_discovery,
             "zabbix-values": zabbix.render_values}
FORMATS = tuple(RENDERERS)

__all__ = ["RENDERERS", "FORMATS", "emit", "snapshot", "OutputFileError"]


def emit(text: str, output_file: Optional[str]) -> Optional[str]:
    """Print the check's text, or write it to `output_file` atomically: None, or why the
    file could not be written (said on stderr here)."""
    if not output_file:
        click.echo(text)
        return None
    try:
        write_atomically(Path(output_file), text + "\n")
    except OutputFileError as exc:
        click.echo(f"akdiag check: {exc}", err=True)
        return str(exc)
    return None
