"""The command line as a newcomer meets it (issue 15, part 3): real runs of `akdiag` in a
real pseudo-terminal (the pty module) and through real pipes: help grouped by purpose with
examples, short flags, human sizes, the progress line and colours on a terminal only,
NO_COLOR, a table that keeps to 80 columns, a closed pipe, collect --only/--skip."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.simulate import SimulatedHost
from conftest import REPO, akdiag

ANSI = "\x1b["
SECTIONS = ("Output:", "What to collect:", "Logs:", "Privacy:", "Encryption:", "Cluster:", "Other options:",
            "Examples:")


def _env(extra=None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("NO_COLOR", "COLUMNS", "TERM"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def on_terminal(*args, env=None, timeout=120, stderr=None) -> tuple:
    """Run akdiag with stdin, stdout and stderr (unless `stderr` is given) on a fresh
    pseudo-terminal; (exit status, all it wrote there).  Bounded: a run that does not end by
    `timeout` is killed and fails."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "collector", *args], stdin=slave, stdout=slave,
                            stderr=slave if stderr is None else stderr, env=_env(env), close_fds=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"akdiag {' '.join(args)} did not end within {timeout} s")
        return proc.wait(10), output.decode("utf-8", "replace")
    finally:
        os.close(master)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle folder of the simulated host with its two faults (findings of every severity);
    the host is stopped once it is collected, so that the other tests' hosts run alone."""
    out = tmp_path_factory.mktemp("bundle")
    with SimulatedHost(tmp_path_factory.mktemp("bundlehost")) as sim:
        sim.build().start().break_like_production()
        done = akdiag("collect", "--basedir", str(sim.basedir), "--catalog", str(sim.catalog_file),
                      "-o", str(out), "-q", "--format", "dir", "--log-bytes", "64K")
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


# --------------------------------------------------------------------------- help

def test_collect_help_lists_options_under_headings_and_ends_with_examples():
    done = akdiag("collect", "--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    places = [text.find("\n" + heading + "\n") for heading in SECTIONS]
    assert all(place >= 0 for place in places) and places == sorted(places), places
    section = {heading: text[start:end] for heading, start, end in zip(SECTIONS, places, places[1:] + [len(text)])}
    assert "-o, --output" in section["Output:"] and "-q, --quiet" in section["Output:"]
    assert "-v, --verbose" in section["Output:"]
    assert "--log-bytes SIZE" in section["Logs:"] and "[default: 2M]" in section["Logs:"]
    assert "[default: 100M]" in section["Logs:"]
    assert "--redact-pattern" in section["Privacy:"] and "--encrypt" in section["Encryption:"]
    assert "--only COLLECTOR" in section["What to collect:"] and "--list-collectors" in section["What to collect:"]
    assert "--host USER@ADDRESS" in section["Cluster:"]
    assert re.findall(r"^  (-\S+)", section["Other options:"], re.M) == ["-h,"], section["Other options:"]
    assert "akdiag collect -o /var/tmp --since 2h" in section["Examples:"]


def test_every_command_has_examples_and_the_version_has_a_short_flag():
    for command in ("check", "report", "diff", "demo"):
        done = akdiag(command, "--help")
        assert done.returncode == 0 and "\nExamples:\n  akdiag " + command in done.stdout, (command, done.stdout)
    top = akdiag("--help")
    assert "-V, --version" in top.stdout and "\nExamples:\n" in top.stdout
    version = akdiag("-V")
    assert version.returncode == 0 and re.match(r"akdiag, version \S+", version.stdout)


def test_an_option_added_later_finds_its_heading_by_name_or_by_itself():
    """How others add options to `collect`: one decorator line, the heading by name in
    COLLECT_SECTIONS or named by the option itself; an unknown one is listed, never lost."""
    import click

    from collector.cli import COLLECT_SECTIONS
    from collector.cli_help import SectionedCommand, section_option

    @click.command(cls=SectionedCommand, sections=COLLECT_SECTIONS)
    @click.option("--case-id")
    @section_option("Privacy", "--scrub-more", is_flag=True)
    @click.option("--brand-new", is_flag=True)
    def command(case_id, scrub_more, brand_new):
        pass

    with click.Context(command) as ctx:
        grouped = command.grouped_help(ctx)
    assert [row[0] for row in grouped["Output"]] == ["--case-id TEXT"]
    assert [row[0] for row in grouped["Privacy"]] == ["--scrub-more"]
    assert [row[0] for row in grouped["Other options"]] == ["--brand-new", "--help"]


# --------------------------------------------------------------------------- options

def test_short_flags_and_human_sizes(host, tmp_path):
    host.start(["api", "webcontrol"])
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file), "-o", str(out),
                  "-q", "--format", "dir", "--log-bytes", "2M", "--log-total-bytes", "10MiB", "--timeout", "2m",
                  "--only", "system", "--only", "logs")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    path = Path(done.stdout.strip())  # -q: the path alone
    assert done.stdout.count("\n") == 1 and path.parent == out.resolve()
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["options"]["log_bytes"] == 2 * 1024 * 1024
    assert manifest["options"]["log_total_bytes"] == 10 * 1024 * 1024
    assert manifest["options"]["timeout"] == 120
    ran = {c["name"]: c["status"] for c in manifest["collectors"]}
    assert ran["system"] == "ok" and ran["logs"] in ("ok", "partial") and ran["processes"] == "skipped"


def test_bad_sizes_and_collector_names_are_usage_errors(tmp_path):
    size = akdiag("collect", "-o", str(tmp_path), "--log-bytes", "2X")
    assert size.returncode == 2 and "--log-bytes" in size.stderr and "Traceback" not in size.stderr
    name = akdiag("collect", "-o", str(tmp_path), "--skip", "nosuch")
    assert name.returncode == 2 and "nosuch: not a collector" in name.stderr
    none_left = akdiag("collect", "-o", str(tmp_path), "--only", "system", "--skip", "system")
    assert none_left.returncode == 2 and "no collector" in none_left.stderr
    assert list(tmp_path.iterdir()) == []


def test_list_collectors_names_what_only_and_skip_take():
    done = akdiag("collect", "--list-collectors")
    listed = [line.split()[0] for line in done.stdout.splitlines()]
    assert done.returncode == 0 and {"system", "processes", "logs", "datastores"} <= set(listed)
    quick = akdiag("check", "--list-collectors")
    assert quick.returncode == 0 and "logs" not in [line.split()[0] for line in quick.stdout.splitlines()]


# --------------------------------------------------------------------------- progress

def test_progress_line_on_a_terminal_and_nothing_in_a_pipe(host, tmp_path):
    host.start(["api"])
    args = ("collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file), "--format", "dir",
            "--only", "system", "--only", "processes", "--only", "pidfiles")
    (tmp_path / "tty").mkdir()
    status, shown = on_terminal(*args, "-o", str(tmp_path / "tty"))
    assert status == 0, shown
    steps = re.findall(r"\rakdiag: \[(\d+)/(\d+)\] +(\d+\.\d) s  (\S[^\r\x1b]*)\x1b\[K", shown)
    assert steps, shown
    assert steps[-1][1] == "6"  # three collectors, the analysis, the summary, the packing
    assert any(current.startswith("collecting ") for *_, current in steps)
    assert any(current == "packing" for *_, current in steps)
    assert "\r\x1b[KBundle:" in shown  # the line is erased before the summary

    (tmp_path / "pipe").mkdir()
    piped = akdiag(*args, "-o", str(tmp_path / "pipe"))
    assert piped.returncode == 0
    assert "\r" not in piped.stderr and ANSI not in piped.stderr and "akdiag: [" not in piped.stderr
    assert ANSI not in piped.stdout and "Bundle:" in piped.stdout

    (tmp_path / "file").mkdir()
    with open(tmp_path / "stderr.txt", "w") as stderr:  # stdout on the terminal, stderr into a file
        status, shown = on_terminal(*args, "-o", str(tmp_path / "file"), stderr=stderr)
    assert status == 0 and "Bundle:" in shown and "akdiag: [" not in shown
    logged = (tmp_path / "stderr.txt").read_text()
    assert "\r" not in logged and ANSI not in logged and "akdiag: [" not in logged


def test_verbose_says_each_step_with_its_time_even_in_a_pipe(host, tmp_path):
    host.start(["api"])
    done = akdiag("collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file), "--format", "dir",
                  "--only", "system", "--only", "processes", "-v", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert re.search(r"^akdiag: +\d+\.\d s  collected processes: ok \(\d+\.\d s\)$", done.stderr, re.M), done.stderr
    assert re.search(r"^akdiag: +\d+\.\d s  packing", done.stderr, re.M)
    assert "\r" not in done.stderr and ANSI not in done.stderr


# --------------------------------------------------------------------------- colours and width

def test_severities_coloured_on_a_terminal_unless_no_color(bundle):
    status, shown = on_terminal("check", "--bundle", str(bundle))
    assert status == 2, shown
    assert "\x1b[31m\x1b[1mCRITICAL\x1b[0m" in shown and "\x1b[33m\x1b[1mWARNING\x1b[0m" in shown
    status, plain = on_terminal("check", "--bundle", str(bundle), env={"NO_COLOR": "1"})
    assert status == 2 and ANSI not in plain and "CRITICAL  process.down" in plain
    piped = akdiag("check", "--bundle", str(bundle))
    assert piped.returncode == 2 and ANSI not in piped.stdout and "CRITICAL  process.down" in piped.stdout


def test_check_table_keeps_to_80_columns_without_cutting_a_word(bundle):
    wide = akdiag("check", "--bundle", str(bundle), "--format", "json")
    findings = json.loads(wide.stdout)["findings"]
    assert any(len(f["title"]) > 40 for f in findings)  # else nothing here needs wrapping
    done = akdiag("check", "--bundle", str(bundle), env={"COLUMNS": "80"})
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    words = set(done.stdout.split())
    for finding in findings:
        for word in finding["title"].split():
            if len(word) < 20:
                assert word in words, (word, finding["title"])
    unbounded = akdiag("check", "--bundle", str(bundle))
    assert max(len(line) for line in unbounded.stdout.splitlines()) > 80  # a pipe keeps each finding on one line


# --------------------------------------------------------------------------- closed pipes

def test_check_into_head_ends_quietly_with_its_verdict(host):
    host.start().break_like_production()
    shell = subprocess.run(
        ["bash", "-c", 'set -o pipefail; "$0" -m collector check --basedir "$1" --catalog "$2" | head -1',
         sys.executable, str(host.basedir), str(host.catalog_file)],
        capture_output=True, text=True, env=_env(), timeout=120)
    assert shell.returncode == 2, shell.stderr  # check's own CRITICAL, through pipefail
    assert shell.stdout.startswith("SEVERITY") and shell.stdout.count("\n") == 1
    assert shell.stderr == ""


def test_a_pipe_closed_before_anything_is_written(bundle, tmp_path):
    """The reader is gone before akdiag writes a byte: every write fails with EPIPE."""
    for args, status in ((("check", "--bundle", str(bundle)), 2),
                         (("check", "--bundle", str(bundle), "--format", "nagios"), 2),
                         (("diff", str(bundle), str(bundle)), 0)):
        reader, writer = os.pipe()
        os.close(reader)
        try:
            done = subprocess.run([sys.executable, "-m", "collector", *args], stdout=writer, stderr=subprocess.PIPE,
                                  env=_env(), timeout=120)
        finally:
            os.close(writer)
        assert done.returncode == status, done.stderr
        assert done.stderr == b"", done.stderr


# --------------------------------------------------------------------------- completion

def test_shell_completion_as_the_readme_sets_it_up():
    script = akdiag(env={"_AKDIAG_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_akdiag_completion()" in script.stdout
    commands = akdiag(env={"_AKDIAG_COMPLETE": "bash_complete", "COMP_WORDS": "akdiag co", "COMP_CWORD": "1"})
    assert commands.stdout.split() == ["plain,collect"]
    options = akdiag(env={"_AKDIAG_COMPLETE": "bash_complete", "COMP_WORDS": "akdiag collect --log-",
                          "COMP_CWORD": "2"})
    assert set(options.stdout.split()) == {"plain,--log-lines", "plain,--log-bytes", "plain,--log-total-bytes"}


# --------------------------------------------------------------------------- start-up

HEAVY = ("psutil", "yaml", "jinja2", "py7zr", "pymongo", "redis", "pika", "collector.catalog", "collector.run",
         "collector.collectors", "collector.analyzers")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["collect", "--help"], ["check", "--help"],
                                  ["demo", "--help"]])
def test_help_imports_nothing_heavy(args):
    """The start-up target (issue 14): `akdiag --help` loads click and the command line only;
    the speed itself is bench/bench_startup.py's."""
    code = ("import sys\nfrom collector.cli import main\ntry:\n    main(sys.argv[1:], prog_name='akdiag')\n"
            "except SystemExit:\n    pass\n"
            f"print('LOADED', sorted(m for m in sys.modules if m.startswith({HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=_env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


def test_table_cells_wrap_between_words_and_cut_only_a_word_too_long():
    from collector import texttable

    rows = [("SEVERITY", "ID", "TITLE"), ("CRITICAL", "process.down", "the quick brown fox jumps over the dog"),
            ("info", "x", "a-very-long-single-word-that-cannot-fit-anywhere")]
    lines = texttable.render(rows, width=40)
    assert max(len(line) for line in lines) <= 40
    assert "the quick brown fox" in lines[1] and lines[2].split() == ["jumps", "over", "the", "dog"]
    assert lines[3].endswith("…") and len(lines[3]) == 40
    assert texttable.render(rows, width=None)[2].endswith("a-very-long-single-word-that-cannot-fit-anywhere")
