"""Human sizes and durations (collector.units) and the click types that read them."""

import click
import pytest
from click.testing import CliRunner

from collector.cli_options import DURATION, SIZE
from collector.units import BadUnit, format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize("text, expected", [
    ("4096", 4096), ("10K", 10240), ("1kb", 1024), ("2M", 2 * 1024 ** 2), ("100MiB", 100 * 1024 ** 2),
    ("25MB", 25 * 1024 ** 2), ("1.5GiB", 1536 * 1024 ** 2), ("2 m", 2 * 1024 ** 2), ("1T", 1024 ** 4),
])
def test_sizes_read_as_administrators_write_them(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "2Mi", "-1", "0.1", "2i", "5q", "1.5.2M", "M"])
def test_a_bad_size_says_what_is_expected(text):
    with pytest.raises(BadUnit, match="size|byte"):
        parse_size(text)


@pytest.mark.parametrize("text, expected", [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1d", 86400.0),
                                            ("2.5", 2.5), ("90S", 90.0)])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5w", "-1s", "h", "1h30m"])
def test_a_bad_duration_says_what_is_expected(text):
    with pytest.raises(BadUnit, match="duration"):
        parse_duration(text)


def test_formatting_reads_back():
    assert format_size(512) == "512 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 * 1024 ** 3) == "3.0 GiB"
    assert format_duration(2.5) == "2.5s"
    assert format_duration(90) == "1m30s"
    assert format_duration(3600) == "1h"
    assert parse_duration("1h") == 3600


def test_click_options_take_human_units_and_refuse_bad_ones():
    @click.command()
    @click.option("--size", type=SIZE, default=1024)
    @click.option("--every", type=DURATION, default=30)
    def show(size, every):
        click.echo(f"{size} {every}")

    runner = CliRunner()
    assert runner.invoke(show, ["--size", "2M", "--every", "5m"]).output == "2097152 300.0\n"
    assert runner.invoke(show, []).output == "1024 30.0\n"
    bad = runner.invoke(show, ["--size", "lots"])
    assert bad.exit_code == 2 and "not a size" in bad.output
