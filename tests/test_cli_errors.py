"""An exception no command expected: exit 1, the traceback and a one-line message on
stderr (a bug report's material), no bare traceback and nothing written."""

from __future__ import annotations

from click.testing import CliRunner

import collector.run
from collector.cli import EXIT_INTERNAL, main


def test_an_unexpected_exception_is_an_internal_error(host, tmp_path, monkeypatch):
    def broken(request, progress=None):
        raise ZeroDivisionError("planted by the test")

    monkeypatch.setattr(collector.run, "collect", broken)
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(main, ["collect", "--basedir", str(host.basedir), "--output", str(out), "--quiet"])
    assert result.exit_code == EXIT_INTERNAL == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("akdiag: internal error: ZeroDivisionError: planted by the test")
    assert "Traceback (most recent call last)" in result.output
    assert list(out.iterdir()) == []


def test_usage_errors_keep_their_own_exit_code(tmp_path):
    result = CliRunner().invoke(main, ["collect", "--format", "rar", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "rar" in result.output
