"""One socket snapshot per run, shared by every collector, against real sockets and
real processes; and the CPU window that the per-process work runs inside."""

from __future__ import annotations

import json
import os
import socket
import threading
from contextlib import ExitStack

import psutil
import pytest

from collector import sockets
from collector.context import SocketSnapshot
from conftest import collect_bundle, expected_by_name
from test_port_owner import as_nobody  # noqa: F401  (the fixture)


def _connected_pairs(stack: ExitStack, count: int) -> socket.socket:
    """A listening loopback socket and `count` established connections to it, both
    ends held by this process; the listener is returned."""
    server = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    server.bind(("127.0.0.1", 0))
    server.listen(count)
    for _ in range(count):
        client = stack.enter_context(socket.create_connection(server.getsockname()))
        accepted, _peer = server.accept()
        stack.enter_context(accepted)
        assert client.fileno() >= 0
    return server


def test_snapshot_is_read_once_whatever_the_number_of_readers():
    with ExitStack() as stack:
        server = _connected_pairs(stack, 3)
        snapshot = SocketSnapshot()
        seen = []
        readers = [threading.Thread(target=lambda: seen.append(snapshot.states_of(os.getpid()))) for _ in range(8)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(30)
        port = server.getsockname()[1]
        listening = [s for s in snapshot.listening() if s["port"] == port]
        states = snapshot.tcp_states()
    assert snapshot.reads == 1
    assert len(seen) == 8 and all(s == seen[0] for s in seen)
    assert seen[0].get("LISTEN", 0) >= 1 and seen[0].get("ESTABLISHED", 0) >= 6, seen[0]
    assert [(s["protocol"], s["pid"]) for s in listening] == [("tcp", os.getpid())]
    assert states.get("ESTABLISHED", 0) >= 6 and states.get("LISTEN", 0) >= 1
    assert snapshot.summary()["reads"] == 1 and snapshot.summary()["sockets"] >= 7
    assert snapshot.errors() == []


def test_a_run_reads_the_sockets_once_for_all_its_collectors(host, tmp_path):
    host.start(["api"])
    with ExitStack() as stack:
        _connected_pairs(stack, 4)
        _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "processes", "ports", "network"),
                                         cpu_sample_seconds=0.2)
    manifest = reader.json("manifest.json")
    statuses = {c["name"]: c["status"] for c in manifest["collectors"]}
    assert all(statuses[name] == "ok" for name in ("system", "processes", "ports", "network")), statuses
    snapshot = manifest["socket_snapshot"]
    assert snapshot["reads"] == 1 and snapshot["error"] is None, snapshot
    assert snapshot["sockets"] >= 9  # the api's listener, this test's listener and its 4 pairs
    assert reader.json("system.json")["tcp_states"].get("ESTABLISHED", 0) >= 8
    api = expected_by_name(reader)["api"]
    assert api["port"]["state"] == "listening"
    assert api["resources"][0]["connections"].get("LISTEN") == 1
    ports = [s for s in reader.json("ports.json")["listening"] if s["port"] == host.ports["api"]]
    assert [s["pid"] for s in ports] == [host.processes["api"].pid]
    assert reader.json("ports.json")["notes"] == []  # root reads every process's descriptors


def test_a_run_without_socket_collectors_reads_no_sockets(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("pidfiles",), cpu_sample_seconds=0.1)
    assert reader.json("manifest.json")["socket_snapshot"] is None


def test_the_cpu_window_covers_the_per_process_work(host, tmp_path):
    """A busy process is seen busy, an idle one idle, though the work runs inside the window."""
    host.start(["api"])
    _result, reader = collect_bundle(host, tmp_path / "out", only=("processes", "system"), cpu_sample_seconds=0.3)
    rows = {row["pid"]: row for row in reader.json("processes.json")["all"]}
    api = expected_by_name(reader)["api"]["resources"][0]
    assert api["cpu_percent"] is not None and 0.0 <= api["cpu_percent"] < 50.0
    assert rows[api["pid"]]["cpu_percent"] == api["cpu_percent"]
    assert all(row["cpu_percent"] is None or row["cpu_percent"] >= 0 for row in rows.values())
    system = reader.json("system.json")["cpu"]
    assert system["percent"] is not None and 0.0 <= system["percent"] <= 100.0


_BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"


def test_a_busy_process_is_measured_busy(host, tmp_path):
    import subprocess
    import sys

    busy = subprocess.Popen([sys.executable, "-c", _BUSY])
    idle = subprocess.Popen(["sleep", "60"])
    try:
        _result, reader = collect_bundle(host, tmp_path / "out", only=("processes",), cpu_sample_seconds=0.3)
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
    rows = {row["pid"]: row for row in reader.json("processes.json")["all"]}
    # a loaded machine gives the busy loop only part of a core: busy is "clearly above idle"
    assert rows[busy.pid]["cpu_percent"] > 5.0, rows[busy.pid]
    assert rows[idle.pid]["cpu_percent"] == 0.0, rows[idle.pid]


_HIDDEN = """
import json, os, sys
from collector import sockets
from collector.context import ProcessSnapshot, SocketSnapshot
from collector.collectors.processes import _pid_record
pid = int(sys.argv[1])
snapshot = SocketSnapshot()
table = ProcessSnapshot().table()
record = _pid_record(table[pid], snapshot)
listening = [s for s in snapshot.listening() if s["port"] == int(sys.argv[2])]
own = snapshot.states_of(pid)
print(json.dumps({"connections": record["connections"], "summary": snapshot.summary(), "own": own,
                  "listening": listening, "note": snapshot.hidden_note()}))
"""


def test_sockets_of_a_process_hidden_from_the_user_are_unknown_not_none(as_nobody):  # noqa: F811
    """Run as nobody, root's process's descriptors cannot be read: its connections are
    unknown (null), never an empty count; its listener is seen, with no owner, and the
    snapshot counts the processes it could not look into."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the sockets must belong to another user than nobody")
    with ExitStack() as stack:
        server = _connected_pairs(stack, 2)
        done = as_nobody("-c", _HIDDEN, str(os.getpid()), str(server.getsockname()[1]))
    if done.returncode != 0 and "No module named" in done.stderr:
        pytest.skip(f"this Python cannot run as the user nobody here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["connections"] is None and seen["own"] is None
    assert [(s["protocol"], s["pid"], s["process"]) for s in seen["listening"]] == [("tcp", None, None)]
    assert seen["summary"]["reads"] == 1 and seen["summary"]["hidden_processes"] >= 1
    assert seen["summary"]["error"] is None
    assert "cannot read the descriptors of" in seen["note"] and "run akdiag as root" in seen["note"]


def test_netlink_and_proc_net_read_the_same_sockets():
    """The two readers of the kernel's tables (netlink where it is allowed, /proc/net where
    not) agree on real sockets: states, inodes, listening addresses and ports."""
    with ExitStack() as stack:
        server = _connected_pairs(stack, 3)
        v6 = stack.enter_context(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
        v6.bind(("::1", 0))
        v6.listen()
        udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 0))
        for family, proto, path in sockets._TABLES:
            by_netlink, by_proc = sockets.Tables(), sockets.Tables()
            sockets._netlink_into(by_netlink, family, proto)
            sockets._add_rows(by_proc, sockets._proc_rows(path, family, []), proto, family)
            assert by_netlink.state_by_inode == by_proc.state_by_inode, path
            assert sorted(by_netlink.listeners, key=repr) == sorted(by_proc.listeners, key=repr), path
        ports = {listener.port: listener for listener in sockets.read_tables().listeners}
        tcp4, tcp6, udp4 = (ports[s.getsockname()[1]] for s in (server, v6, udp))
    assert (tcp4.protocol, tcp4.address) == ("tcp", "127.0.0.1")
    assert (tcp6.protocol, tcp6.address) == ("tcp6", "::1")
    assert (udp4.protocol, udp4.address) == ("udp", "127.0.0.1")


def test_the_look_for_listeners_processes_is_bounded_in_time():
    """Past its time the look stops and says how many it missed; within it, it finds them."""
    with ExitStack() as stack:
        server = _connected_pairs(stack, 2)
        inode = os.stat(f"/proc/self/fd/{server.fileno()}").st_ino
        pids = psutil.pids()
        late = sockets.find_owners({inode}, pids, 0.0)
        in_time = sockets.find_owners({inode}, pids, 30.0)
    assert (late.owners, late.missed, late.links, late.timed_out) == ({}, 1, 0, True)
    assert in_time.owners == {inode: os.getpid()} and in_time.missed == 0 and not in_time.timed_out


def test_the_title_index_matches_as_pidof_does(host):
    """The table's PIDs by title are those live.matches_title accepts, row by row."""
    from collector import live
    from collector.collectors.processes import TitleIndex
    from collector.context import ProcessSnapshot

    host.start(["api", "trk_amazon_sns"] if "trk_amazon_sns" in {p.binary for p in host.catalog.processes}
               else ["api"])
    table = ProcessSnapshot().table()
    index = TitleIndex(table)
    titles = [spec.title for spec in host.catalog.processes] + ["python3", "sleep", "sh"]
    for title in titles:
        expected = sorted(pid for pid, info in table.items()
                          if live.matches_title(title, info.get("cmdline"), info.get("name")))
        assert index.pids(title) == expected, title
    assert index.pids("AK:api") == [host.processes["api"].pid]
