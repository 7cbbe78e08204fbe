"""The kernel's messages of the window (since --since, else the last DEFAULT_HOURS, never
before boot): from /dev/kmsg, else `journalctl -k` where journald runs, else `dmesg`.
The messages go to kernel/messages.txt (one "time text" line each, newest kept within
MAX_BYTES), the events parsed from them (collector.kernelmsg) to kernel.json.

kernel.json: {"source": "kmsg" | "journalctl -k" | "dmesg" | null, "since", "boot_time",
"messages_file", "lines", "bytes", "truncated", "events": [{time, kind, pid, process,
rss_bytes, cgroup, device, message}], "errors": [...]}

Reading the kernel's messages needs root or CAP_SYSLOG where kernel.dmesg_restrict=1 (the
default of most distributions): an unprivileged run records why it could not, and the
`kernel.not_checked` finding says so; it never reads as "no kernel problem"."""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections import deque
from typing import Deque, List, Optional, Tuple

from collector import kernelmsg, live
from collector.bounded import run_command
from collector.bundle import schema
from collector.context import Context

KMSG_PATH = "/dev/kmsg"
JOURNALCTL = "journalctl"
DMESG = "dmesg"
JOURNALD_SOCKET_DIR = "/run/systemd/journal"
DMESG_RESTRICT = "/proc/sys/kernel/dmesg_restrict"
MESSAGES_FILE = f"{schema.KERNEL_DIR}/messages.txt"
DEFAULT_HOURS = 24
MAX_BYTES = 4 * 1024 * 1024  # of messages.txt: the newest are kept
MAX_EVENTS = 2000  # the newest are kept
KMSG_RECORD_MAX = 16 * 1024  # a read shorter than a record fails with EINVAL; records are < 8 KiB
COMMAND_TIMEOUT = 10.0

Message = Tuple[float, str]  # (Unix time, text)


class Unreadable(Exception):
    """A source that cannot be read; the message says why, for errors and the note."""


class _Newest:
    """The newest messages whose lines fit in `cap` bytes (older ones are dropped as new
    ones come: memory stays near the cap however much the kernel holds)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.items: Deque[Tuple[Message, int]] = deque()
        self.size = 0
        self.dropped = 0

    def add(self, moment: float, text: str, size: Optional[int] = None) -> None:
        """`size`: the text's length in bytes when the caller knows it (saves encoding it)."""
        cost = (len(text.encode("utf-8", "replace")) if size is None else size) + 29  # + time stamp, space, newline
        self.items.append(((moment, text), cost))
        self.size += cost
        while self.size > self.cap and self.items:
            self.size -= self.items.popleft()[1]
            self.dropped += 1

    def messages(self) -> List[Message]:
        return [message for message, _cost in self.items]


def boot_time() -> float:
    """The Unix time of boot as the kernel's message stamps count it: CLOCK_MONOTONIC (the
    stamps' clock, which stops in a suspend) subtracted from now; /proc/stat's btime
    counts suspended time and is whole seconds."""
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


def read_kmsg(since: float, boot: float, cap: int, deadline, path: Optional[str] = None) -> _Newest:
    """Every /dev/kmsg record from `since` on, newest kept within `cap` bytes; the read
    never blocks (O_NONBLOCK: EAGAIN at the end) and stops at the deadline."""
    path = path or KMSG_PATH
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Unreadable(_open_error(path, exc)) from exc
    newest = _Newest(cap)
    parse = kernelmsg.parse_kmsg_record
    try:
        os.lseek(fd, 0, os.SEEK_SET)  # the oldest record the kernel still holds
        while not deadline.expired():
            try:
                record = os.read(fd, KMSG_RECORD_MAX)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten while read: go on with the next
                    continue
                raise Unreadable(f"{path}: {exc.strerror or exc}") from exc
            if not record:
                break
            parsed = parse(record)
            if parsed is not None:
                moment = boot + parsed[1] / 1e6
                if moment >= since:
                    newest.add(moment, parsed[2], len(record))  # the record's bytes: about the text's
    finally:
        os.close(fd)
    return newest


def _open_error(path: str, exc: OSError) -> str:
    if exc.errno in (errno.EPERM, errno.EACCES):
        restrict = live.read_first_line(DMESG_RESTRICT)
        why = (" (kernel.dmesg_restrict=1: only root or a user with CAP_SYSLOG may read the kernel's messages)"
               if restrict == "1" else "")
        return f"{path}: permission denied{why}"
    return f"{path}: {exc.strerror or exc}"


def read_journal(since: float, cap: int, timeout: float) -> _Newest:
    """`journalctl -k` (this boot) from `since`, output capped (its tail is kept)."""
    if not os.path.isdir(JOURNALD_SOCKET_DIR) or not shutil.which(JOURNALCTL):
        raise Unreadable("journalctl -k: journald does not run here")
    argv = [JOURNALCTL, "-k", "-q", "--no-pager", "-o", "short-iso-precise", "--since", f"@{int(since)}"]
    lines = _command_lines(argv, cap, timeout)
    if not lines and os.geteuid() != 0:
        # journalctl shows a user only the journal files it may read, and -q hides its own
        # warning: nothing shown to this user is not "no kernel message"
        raise Unreadable("journalctl -k: showed this user no kernel message (the system journal is for root "
                         "and the systemd-journal group)")
    newest = _Newest(cap)
    for line in lines:
        parsed = kernelmsg.parse_journal_line(line)
        if parsed is not None and parsed[0] >= since:
            newest.add(*parsed)
    return newest


def read_dmesg(since: float, boot: float, cap: int, timeout: float) -> _Newest:
    if not shutil.which(DMESG):
        raise Unreadable("dmesg: not installed")
    newest = _Newest(cap)
    for line in _command_lines([DMESG], cap, timeout):
        parsed = kernelmsg.parse_dmesg_line(line)
        if parsed is not None and boot + parsed[0] >= since:
            newest.add(boot + parsed[0], parsed[1])
    return newest


def _command_lines(argv: List[str], cap: int, timeout: float) -> List[str]:
    done = run_command(argv, timeout, max_output=cap)
    name = "journalctl -k" if argv[0] == JOURNALCTL else argv[0]
    if done.error:
        raise Unreadable(f"{name}: {done.error}")
    if done.exit_code != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Unreadable(f"{name}: exit code {done.exit_code}" + (f": {said[-1][:300]}" if said else ""))
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    return lines[1:] if done.stdout_truncated else lines  # the first may be cut


def _window_start(ctx: Context, boot: float) -> float:
    since = ctx.options.since if ctx.options.since is not None else time.time() - DEFAULT_HOURS * 3600
    return max(since, boot)


def _read(ctx: Context, since: float, boot: float, errors: List[str]) -> Tuple[Optional[str], Optional[_Newest]]:
    """The first source that can be read; each that cannot is named in `errors` only when
    none can (a host without journald is not a problem when /dev/kmsg answered)."""
    timeout = ctx.deadline.bound(min(COMMAND_TIMEOUT, ctx.options.command_timeout))
    tried = []
    for source, read in (("kmsg", lambda: read_kmsg(since, boot, MAX_BYTES, ctx.deadline)),
                         ("journalctl -k", lambda: read_journal(since, MAX_BYTES, timeout)),
                         ("dmesg", lambda: read_dmesg(since, boot, MAX_BYTES, timeout))):
        try:
            return source, read()
        except Unreadable as exc:
            tried.append(str(exc))
    errors.append("cannot read the kernel's messages: " + "; ".join(tried))
    return None, None


def collect(ctx: Context) -> dict:
    errors: List[str] = []
    boot = boot_time()
    since = _window_start(ctx, boot)
    result = {"source": None, "since": kernelmsg.iso_utc_precise(since), "boot_time": kernelmsg.iso_utc_precise(boot),
              "messages_file": None, "lines": 0, "bytes": 0, "truncated": False, "events": [], "errors": errors}
    source, newest = _read(ctx, since, boot, errors)
    if newest is None:
        return result
    messages = newest.messages()
    if ctx.deadline.expired():
        errors.append("the run's deadline came while the kernel's messages were read: the newest may be missing")
    text = "".join(f"{kernelmsg.iso_utc_precise(moment)} {line}\n" for moment, line in messages)
    record = ctx.writer.write_text(MESSAGES_FILE, text)
    events = kernelmsg.events_of(messages)
    result.update(source=source, messages_file=record.path, lines=len(messages), bytes=record.size,
                  truncated=newest.dropped > 0, events=events[-MAX_EVENTS:])
    return result
