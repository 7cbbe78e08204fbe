"""`akdiag demo`: a simulated Altcraft host, a bundle collected from it, the host stopped.

On a machine that runs the platform, the demo must neither show that platform's processes
and ports nor confuse the machine's own monitoring.  So, where it can (root, or an
unprivileged user with user namespaces; `unshare` installed), the demo runs itself again
inside new PID, network and mount namespaces: there it sees only its own processes and its
own loopback, and when it ends the kernel ends every process it started.  Its processes
carry their AK: name only in the kernel's process name, not in argv[0], so `pidof AK:api`
on the machine still gives the platform's answer alone.  Where it cannot, its processes are
titled AKdemo:<name> (no platform process's title) and its datastore checks are left out
(they would reach the machine's own); its last line says which of the two it did."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import click

from collector.console import EXIT_OK

INSIDE_ENV = "AKDIAG_DEMO_NAMESPACES"  # set by the demo for its own second run, inside the namespaces
NAMESPACE_FLAGS = ("--pid", "--net", "--mount", "--fork", "--mount-proc", "--kill-child=SIGTERM")
PROBE_SECONDS = 10.0
STOP_WAIT_SECONDS = 30.0  # the demo's clean-up after a stop signal: its processes, its files
# the machine's kernel log and service manager are not the simulated host's: their kills,
# crashes and units would read as the demo's
NOT_SIMULATED = ("kernel", "services")

ISOLATED = ("Isolation: the simulated host ran in its own PID, network and mount namespaces: this machine's "
            "own processes and ports are not in the demo, and nothing of the demo is left running.")
NOT_ISOLATED = ("Isolation: by names ({why}): the simulated processes were titled AKdemo:<name> and the "
                "datastore checks left out, so that this machine's own AK: processes and datastores stay out of "
                "the demo; its listening sockets are still in the bundle's lists.")
DEMO_PREFIX = "AKdemo:"  # without namespaces: titles no real platform process carries


def run_demo(output_dir: str, fmt: str, quiet: bool, verbose: bool) -> int:
    if _inside_namespaces():
        return _demo(output_dir, fmt, quiet, verbose, isolated=True)
    prefix, why = namespace_prefix()
    if prefix:
        return _run_inside(prefix)
    return _demo(output_dir, fmt, quiet, verbose, isolated=False, why=why)


def _inside_namespaces() -> bool:
    """This is the demo's own second run, as the first process of its PID namespace."""
    return os.environ.get(INSIDE_ENV) == "1" and os.getpid() == 1


def namespace_prefix() -> "tuple[Optional[List[str]], str]":
    """(the `unshare` command line that gives the demo its own namespaces, "") when this
    machine allows it, else (None, why not).  Tried once with `true` first: a refusal
    (no privilege, user namespaces off, a container) must not be taken for the demo's result."""
    unshare = shutil.which("unshare")
    if not unshare:
        return None, "unshare is not installed"
    flags = list(NAMESPACE_FLAGS)
    if os.geteuid() != 0:
        flags = ["--user", "--map-root-user"] + flags
    prefix = [unshare] + flags
    try:
        probe = subprocess.run(prefix + ["true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=PROBE_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"unshare could not run: {exc}"
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip().splitlines()
        return None, f"namespaces refused: {reason[-1] if reason else 'exit ' + str(probe.returncode)}"
    return prefix, ""


def _this_akdiag() -> List[str]:
    """The command line that runs this akdiag again: its interpreter and script (the
    console script, the single file), or `-m collector` when started that way."""
    script = sys.argv[0]
    if not script or script == "-c" or Path(script).name == "__main__.py":
        return [sys.executable, "-m", "collector"]
    return [sys.executable, script]


def _run_inside(prefix: List[str]) -> int:
    """The same demo command again, inside the namespaces; its exit status is ours.  A stop
    signal is passed on to it (a terminal's Ctrl-C reaches it anyway), and its own clean-up
    is waited for: it says itself that it was interrupted."""
    from collector.interrupt import Interrupted

    env = dict(os.environ, **{INSIDE_ENV: "1"})
    child = subprocess.Popen(prefix + _this_akdiag() + sys.argv[1:], env=env)
    try:
        code = child.wait()
    except Interrupted as exc:
        _pass_on(child, exc.signum)
        try:
            code = child.wait(STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()  # unshare's --kill-child then stops the demo, and the kernel its namespace
            code = child.wait()
    return code if code >= 0 else 128 - code


def _pass_on(child: subprocess.Popen, signum: int) -> None:
    """The signal to the demo inside (unshare's child, the first process of the namespace:
    it has handlers, so it takes it), and to unshare, which may block it while it waits."""
    import psutil

    try:
        for inner in psutil.Process(child.pid).children():
            inner.send_signal(signum)
        child.send_signal(signum)
    except (psutil.Error, OSError):
        pass


def _bring_loopback_up() -> None:
    """A new network namespace's `lo` is down; the simulated host listens on 127.0.0.1."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


def _demo(output_dir: str, fmt: str, quiet: bool, verbose: bool, isolated: bool, why: str = "") -> int:
    from collector import tempfiles
    from collector.cli_options import command_line, load_catalog_or_exit
    from collector.commands import run_collect
    from collector.run import CollectRequest
    from collector.simulate import SimulatedHost
    from collector.trust import trusted_temp_parent

    if _inside_namespaces():
        _bring_loopback_up()
    with tempfile.TemporaryDirectory(prefix=tempfiles.prefix("demo"), dir=trusted_temp_parent()) as root:
        with SimulatedHost(Path(root), titled_argv0=False, title_prefix="AK:" if isolated else DEMO_PREFIX) as host:
            if not quiet:
                click.echo(f"Simulated Altcraft host in {host.basedir}", err=True)
            host.build().start().break_like_production()
            catalog = load_catalog_or_exit(str(host.catalog_file))
            request = CollectRequest(basedir=host.basedir, basedir_source="demo", catalog=catalog,
                                     output_dir=Path(output_dir), label="demo", fmt=fmt, timeout=120,
                                     command_line=command_line(), options=_demo_options(isolated))
            code = run_collect(request, quiet, verbose, for_support=False)
    if not quiet and code == EXIT_OK:
        click.echo("This is a demo bundle of a simulated host: not for support. Open summary.html inside it "
                   "first (7z x <bundle>).")
        left_out = ", ".join(_left_out(isolated))
        datastores = ("the simulated host runs no datastores, so their findings are expected here. This "
                      "machine's own kernel messages and systemd units are left out" if isolated else
                      "this machine's own kernel messages, systemd units and datastores are left out")
        click.echo(f"The demo's faults are proctrigger (down, stale PID file) and trkread (port taken); "
                   f"{datastores} ({left_out}).")
        click.echo(ISOLATED if isolated else NOT_ISOLATED.format(why=why))
    return code


def _left_out(isolated: bool) -> tuple:
    """Without its own network namespace, the demo's datastore checks would reach this
    machine's datastores (the simulated config names 127.0.0.1's usual ports)."""
    return NOT_SIMULATED if isolated else NOT_SIMULATED + ("datastores",)


def _demo_options(isolated: bool):
    from collector.collectors import names
    from collector.context import CollectOptions

    return CollectOptions(only=tuple(name for name in names() if name not in _left_out(isolated)))
