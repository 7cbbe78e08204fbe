"""Secrets on command lines (processes.json, `akd --processes`): flags whose name holds a
secret word in any spelling, and the well-known short forms.  An argument list written
as JSON (`"--password", "x"`) is a command line too."""

from __future__ import annotations

import re
from typing import Any, Dict, Tuple

from collector.redact.blocks import Continuation, Taken, mask_line
from collector.redact.rule import MASK, Rule, mask_group, masked
from collector.redact.vocabulary import PREFILTER as SECRET_PREFILTER, is_secret_key
from collector.lazyre import lazy

# a command-line value: up to the next space or quote; a quote escaped in JSON text
# (\") belongs to the value, so a secret with a quote in it is masked whole
ARG_VALUE = r'(?:[^\s"\\]|\\.)+'
_NEXT_ARG = r'(?:[ \t]+|"\s*,\s*")'  # a space, or the `", "` between the items of a JSON list
_FLAG = lazy(
    r"(?<![\w\-])--?(?P<name>[A-Za-z][\w.\-]{0,60})"
    r"(?:(?P<sep>=|[ \t]+)(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|" + ARG_VALUE + r")"
    r"|\"\s*,\s*\"(?P<listed>(?:[^\"\\]|\\.)+))")
_BOOLEAN_FLAG = lazy(r"(?i)(?:no|ask|skip|use|without|with|prompt|require|disable|enable)[-_]")
_SHORT_FLAG = lazy(r"-[A-Za-z]")


def scan_flags(line: str, file_scrubber: Any) -> Tuple[str, Dict[str, int]]:
    """`--password x`, `--smtp-pass=x`, `--client-secret "a b"`, `-setcookie x`, `-Dx.password=y`."""
    changed = 0
    position = 0
    while True:
        match = _FLAG.search(line, position)
        if match is None:
            last = _FLAG_ENDING_A_LINE.search(line, position)
            if last and is_secret_key(last.group("name")) and not _BOOLEAN_FLAG.match(last.group("name")):
                file_scrubber.continue_with(NextListItem())
            return line, ({"cli_secret_flag": changed} if changed else {})
        position = match.end("name")  # a flag's value may be the next flag: look at it too
        group = "listed" if match.group("listed") is not None else "value"
        if not _secret_value(match, group):
            continue
        value = match.group(group)
        quote = value[0] if group == "value" and value[:1] in "\"'" and len(value) > 1 and value[-1] == value[0] else ""
        line = line[: match.start(group)] + quote + MASK + quote + line[match.end(group):]
        position = match.start(group) + len(MASK) + 2 * len(quote)
        changed += 1


_LONE_FLAG = lazy(r"--?(?P<name>[A-Za-z][\w.\-]{0,60})")


def is_secret_flag(argument: str) -> bool:
    """Whether a lone command-line argument (`--smtp-pass`, `-requirepass`) is a flag whose
    value, the next argument, is a secret; `--no-password` and `-p` are not."""
    match = _LONE_FLAG.fullmatch(argument)
    return bool(match) and len(match.group("name")) > 1 and is_secret_key(match.group("name")) \
        and not _BOOLEAN_FLAG.match(match.group("name"))


class NextListItem(Continuation):
    """`"--password",` ending a line of a pretty-printed JSON list: the next item is its value."""

    name = "cli_secret_flag"

    def take(self, line: str) -> Taken:
        self.done = True
        if not line.lstrip().startswith('"') or line.lstrip().startswith('"-'):
            return None
        return mask_line(line, keep_keys=False), None


_FLAG_ENDING_A_LINE = lazy(r'"--?(?P<name>[A-Za-z][\w.\-]{0,60})",?\s*$')


def _secret_value(match: "re.Match[str]", group: str) -> bool:
    name, value = match.group("name"), match.group(group)
    if not is_secret_key(name) or _BOOLEAN_FLAG.match(name) or masked(value):
        return False
    if group == "value" and match.group("sep") != "=" and (value.startswith("--") or _SHORT_FLAG.fullmatch(value)):
        return False  # `--auth --port 1`: a switch, then the next flag
    return value.strip("\"'").lower() not in ("", "true", "false")


_P_WORDS = ("a", "z", "g", "ie", "ic", "ipe", "rint", "rint0", "rintf", "thread", "edantic", "ath", "erm", "rune",
            "rogname", "roto_dist", "arallel", "rofile", "ython")
_SHORT_P = lazy(r"((?<![\w\-])-p)(?!(?:" + "|".join(_P_WORDS) + r")(?=[\s\"]|$))(" + ARG_VALUE + ")")
# programs whose -p is a port
_PORT_P = lazy(r"(?:^|[\s/\"'])(?:ssh|scp|sftp|autossh|sshfs|mosh|redis-cli|keydb-cli|kvrocks-cli|nc|ncat"
                     r"|telnet|docker|podman|psql|pg_dump|pg_dumpall|pg_restore|pg_isready|pgbench|iperf3?)"
                     r"(?=[\s\"',]|$)")


def _short_password(match: "re.Match[str]") -> str:
    value = match.group(2)
    if value.isdigit() and len(value) <= 5 and _PORT_P.search(match.string, 0, match.start()):
        return match.group(0)  # `ssh -p2222`
    return mask_group(2)(match)


SHORT_FORMS = (
    # sshpass -p pw, redis-cli -a pw, mongosh -p pw, rabbitmqadmin -p pw: the first such flag after the program
    lazy(r"((?<![\w\-])sshpass\b[^|;&\n]*?(?:\s|\")-p" + _NEXT_ARG + r"?)(" + ARG_VALUE + ")"),
    lazy(r"((?<![\w\-])(?:redis|keydb|kvrocks)-cli\b[^|;&\n]*?(?:\s|\")-a"
               + _NEXT_ARG + r"?)(" + ARG_VALUE + ")"),
    lazy(r"((?<![\w\-])(?:mongo(?:sh|dump|restore|export|import|stat|top|files)?|rabbitmqadmin)\b"
               r"[^|;&\n]*?(?:\s|\")-p"
               + _NEXT_ARG + r")(" + ARG_VALUE + ")"),
    # curl -u user:pw, --user user:pw, --proxy-user user:pw
    lazy(r"((?<![\w\-])(?:-u|-U|--user|--proxy-user)(?:=|[ \t]*|\"\s*,\s*\")[^\s:\"'/@]+:)(" + ARG_VALUE + ")"),
)


def _mask_unless_numbers(match: "re.Match[str]") -> str:
    if match.group(2).isdigit() and match.group(1).rstrip(":")[-1:].isdigit():
        return match.group(0)  # `docker -u 1000:1000`
    return mask_group(2)(match)


CMDLINE_RULES: Tuple[Rule, ...] = (
    Rule("cli_secret_flag", SECRET_PREFILTER, None, scan=scan_flags),
    Rule("cli_short_password", ("-p",), _SHORT_P, _short_password),
    Rule("cli_program_password", ("-p",), SHORT_FORMS[0], mask_group(2)),
    Rule("cli_program_password", ("-cli",), SHORT_FORMS[1], mask_group(2)),
    Rule("cli_program_password", ("-p",), SHORT_FORMS[2], mask_group(2)),
    Rule("cli_user_password", ("-u", "--user", "--proxy-user"), SHORT_FORMS[3], _mask_unless_numbers),
)
