"""The network collector and the explanation of an unreachable datastore, end to end on
real parts: a collection run inside a network and mount namespace of its own, with a
veth pair and its address, an `unreachable` and a `blackhole` route, a firewall rule
that drops one port (nft, where installed), an /etc/hosts and a resolv.conf of the
test's own bound over the real ones, and a main.json whose datastores sit behind each
of those.  A listener that never accepts, flooded while the collection runs, makes
the kernel's listen-overflow counter grow for real."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from collector.bundle.reader import BundleReader
from collector.collectors.netproc import parse_route_v4, parse_route_v6, parse_snmp_tables, read_counters
from collector.simulate import SimulatedHost
from conftest import REPO
from triage_helpers import findings_of, matching, one

FILTERED_PORT = 4431
FLOODED_PORT = 26661  # a listener that never accepts: its queue is full
CLOSED_PORT = 27999
HOSTS_NAME = "akdiag-db.test"
NAMESERVER = "192.0.2.53"  # TEST-NET-1: no route reaches it in the namespace, so DNS fails at once

_SETUP = r"""
set -e
mount --make-rprivate /
mount --bind "$AK_HOSTS" /etc/hosts
mount --bind "$AK_RESOLV" /etc/resolv.conf
ip link set lo up
ip link add akv0 type veth peer name akv1
ip addr add 10.77.0.1/24 dev akv0
ip link set akv0 up
ip link set akv1 up
ip route add unreachable 10.89.0.0/16
ip route add blackhole 10.88.0.0/16
if [ -n "$AK_NFT" ]; then
  nft add table inet akdiag
  nft add chain inet akdiag input '{ type filter hook input priority 0; }'
  nft add rule inet akdiag input tcp dport "$AK_FILTERED" drop
fi
exec "$@"
"""

# Runs inside the namespace: floods a listener that never accepts while collecting.
_COLLECT = r"""
import socket, sys, threading, time
from pathlib import Path
from collector.catalog import load_catalog
from collector.context import CollectOptions
from collector.run import CollectRequest, collect

listener = socket.socket()
listener.bind(("127.0.0.1", int(sys.argv[4])))
listener.listen(0)
stop = threading.Event()

def flood():
    held = []
    while not stop.is_set():
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(listener.getsockname())
        held.append(client)
        if len(held) > 200:
            held.pop(0).close()
        time.sleep(0.005)

threading.Thread(target=flood, daemon=True).start()
basedir, out, catalog = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
request = CollectRequest(basedir=basedir, basedir_source="test", catalog=load_catalog(Path(catalog)),
                         output_dir=out, fmt="dir", timeout=60,
                         options=CollectOptions(only=("system", "ports", "datastores", "network"),
                                                datastore_timeout=1.5, cpu_sample_seconds=0.5))
started = time.monotonic()
result = collect(request)
stop.set()
print(round(time.monotonic() - started, 2))
print(result.path)
"""


def _can_make_namespaces() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = "ip link add akp0 type veth peer name akp1 && ip route add blackhole 10.88.0.0/16"
    return subprocess.run(["unshare", "--net", "sh", "-c", probe], capture_output=True, timeout=10).returncode == 0


def _main_json(basedir: Path) -> None:
    config = {
        "BASEDIR": str(basedir),
        "CONTROLDB_IP": HOSTS_NAME, "CONTROLDB_PORT": CLOSED_PORT,  # resolves by /etc/hosts; nothing listens
        "SSDB_HBSUPP_IP": "10.89.0.5", "SSDB_HBSUPP_PORT": 4420,  # an unreachable route
        "SSDB_NOTIFY_IP": "10.77.0.1", "SSDB_NOTIFY_PORT": FILTERED_PORT,  # own address, port dropped
        "RABBITMQ_HOST": "nonexistent.invalid",  # resolves nowhere
        "CLICKHOUSE_SYSTEM": {"HOST": "10.88.0.5", "PORT": 9000},  # a blackhole route
        "CAMP_DUPLICATESDB": {"NODES": [{"HOST": "127.0.0.1", "PORT": FLOODED_PORT}]},  # listen queue full
    }
    (basedir / "config" / "main.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def netns_bundle(tmp_path_factory):
    if not _can_make_namespaces():
        pytest.skip("needs root, unshare(1), ip(8) and veth pairs and blackhole routes in a new network namespace")
    root = tmp_path_factory.mktemp("netns")
    sim = SimulatedHost(root / "host").build()
    _main_json(sim.basedir)
    hosts, resolv = root / "hosts", root / "resolv.conf"
    hosts.write_text(f"127.0.0.1 localhost\n10.77.0.1 {HOSTS_NAME} akdiag-db\n10.0.0.9 unrelated.test\n")
    resolv.write_text(f"# test resolver\nnameserver {NAMESERVER}\nsearch example.test\noptions timeout:1 attempts:1\n")
    out = root / "out"
    out.mkdir()
    nft = bool(shutil.which("nft"))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               AK_HOSTS=str(hosts), AK_RESOLV=str(resolv), AK_NFT="1" if nft else "",
               AK_FILTERED=str(FILTERED_PORT))
    done = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", _SETUP, "sh", sys.executable, "-c", _COLLECT,
                           str(sim.basedir), str(out), str(sim.catalog_file), str(FLOODED_PORT)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    seconds, path = done.stdout.strip().splitlines()[-2:]
    return BundleReader(Path(path)), nft, float(seconds)


def _network(reader: BundleReader) -> dict:
    return reader.json("network.json")


def _endpoint(reader: BundleReader, name: str) -> dict:
    return next(e for e in reader.json("datastores.json")["endpoints"] if e["name"] == name)


def _unreachable_hint(findings, name: str) -> str:
    found = [f for f in findings if f["subject"] == name and f["id"] in ("datastore.unreachable", "datastore.timeout")]
    assert len(found) == 1, (name, [(f["id"], f["subject"]) for f in findings])
    return found[0]["hint"]


def test_interfaces_routes_and_resolver_of_the_namespace(netns_bundle):
    reader, _nft, _seconds = netns_bundle
    data = _network(reader)
    interfaces = {i["name"]: i for i in data["interfaces"]}
    assert interfaces["akv0"]["up"] is True and interfaces["akv0"]["mtu"] == 1500
    assert {"family": "ipv4", "address": "10.77.0.1", "prefix": 24} in interfaces["akv0"]["addresses"]
    assert interfaces["lo"]["up"] is True
    routes = {r["destination"]: r for r in data["routes"] if r["family"] == "ipv4"}
    assert routes["10.77.0.0/24"]["interface"] == "akv0" and routes["10.77.0.0/24"]["type"] == "unicast"
    assert routes["10.89.0.0/16"]["type"] == "reject"
    assert routes["10.88.0.0/16"]["type"] == "blackhole"
    assert data["default_routes"] == []
    assert data["resolv_conf"]["nameservers"] == [NAMESERVER]
    assert data["resolv_conf"]["search"] == ["example.test"]
    assert data["resolv_conf"]["options"] == ["timeout:1", "attempts:1"]
    # only the /etc/hosts lines that name a datastore host
    assert data["hosts_entries"] == [{"address": "10.77.0.1", "names": [HOSTS_NAME, "akdiag-db"]}]
    assert data["errors"] == []


def test_datastore_names_resolved_within_the_bound(netns_bundle):
    reader, _nft, _seconds = netns_bundle
    resolution = {r["host"]: r for r in _network(reader)["resolution"]}
    assert set(resolution) == {HOSTS_NAME, "nonexistent.invalid"}  # addresses are not looked up
    assert resolution[HOSTS_NAME]["addresses"] == ["10.77.0.1"] and resolution[HOSTS_NAME]["error"] is None
    assert resolution[HOSTS_NAME]["endpoints"] == ["mongodb_control"]
    failed = resolution["nonexistent.invalid"]
    assert failed["addresses"] == [] and failed["error"]
    assert failed["duration"] <= 3.5  # RESOLVE_SECONDS and a margin: never hangs


def test_listen_overflows_counted_while_collecting(netns_bundle):
    reader, _nft, _seconds = netns_bundle
    data = _network(reader)
    assert data["counters"]["listen_overflows"] > 0
    assert data["counters_growth"]["listen_overflows"] > 0 and data["counters_growth"]["interval_s"] >= 0.4
    assert data["counters"]["out_segs"] > 0
    finding = one(findings_of(reader), "network.listen_overflows")
    assert finding["severity"] == "warning" and "overflowing now" in finding["title"]


def test_refused_local_port_is_explained_by_no_listener(netns_bundle):
    reader, _nft, _seconds = netns_bundle
    assert _endpoint(reader, "mongodb_control")["status"] == "unreachable"
    hint = _unreachable_hint(findings_of(reader), "mongodb_control")
    assert f"nothing listens on port {CLOSED_PORT} on this host" in hint


def test_reject_and_blackhole_routes_are_named(netns_bundle):
    reader, _nft, _seconds = netns_bundle
    findings = findings_of(reader)
    assert "the route to 10.89.0.5 is 10.89.0.0/16, a reject" in _unreachable_hint(findings, "ssdb_hb")
    assert "the route to 10.88.0.5 is 10.88.0.0/16, a blackhole" in _unreachable_hint(findings, "clickhouse")


def test_unresolvable_name_is_explained_with_the_resolver(netns_bundle):
    reader, _nft, _seconds = netns_bundle
    findings = findings_of(reader)
    hint = _unreachable_hint(findings, "rabbitmq")
    assert "the name nonexistent.invalid does not resolve" in hint
    assert f"nameserver(s) {NAMESERVER} (no route reaches it)" in hint and "/etc/hosts has no line for it" in hint
    dns = one(findings, "network.dns_failed", "nonexistent.invalid")
    assert dns["severity"] == "critical" and "rabbitmq" in dns["title"]
    assert not matching(findings, "network.dns_failed", HOSTS_NAME)


def test_dropped_port_is_explained_as_filtered(netns_bundle):
    reader, nft, _seconds = netns_bundle
    if not nft:
        pytest.skip("nft(8) is not installed: no firewall rule to drop the port")
    assert _endpoint(reader, "ssdb_notify")["status"] in ("unreachable", "timeout")
    hint = _unreachable_hint(findings_of(reader), "ssdb_notify")
    assert "neither accepted nor refused" in hint and "filtered" in hint


def test_full_listen_queue_is_named_for_a_local_port_that_listens(netns_bundle):
    reader, _nft, _seconds = netns_bundle
    assert _endpoint(reader, "kvrocks_duplicates")["status"] in ("unreachable", "timeout")
    hint = _unreachable_hint(findings_of(reader), "kvrocks_duplicates")
    assert "TCP listen queues on this host overflowed" in hint and f"port {FLOODED_PORT}" in hint


def test_the_collection_is_bounded(netns_bundle):
    reader, _nft, seconds = netns_bundle
    manifest = reader.manifest
    network = next(c for c in manifest["collectors"] if c["name"] == "network")
    assert network["status"] == "ok", network
    assert seconds < 30  # datastore checks 1.5 s, name resolution 3 s at most: nothing hangs


# -- the /proc parsers on real text -----------------------------------------------------------


def test_counters_match_the_kernels_own_files():
    text = Path("/proc/net/snmp").read_text() + Path("/proc/net/netstat").read_text()
    table = parse_snmp_tables(text)
    errors: list = []
    before = read_counters(errors)
    sock = socket.create_connection(("127.0.0.1", _listening_port()), timeout=5)
    sock.close()
    after = read_counters(errors)
    assert errors == []
    assert before["out_segs"] >= table[("Tcp", "OutSegs")]
    assert after["active_opens"] > before["active_opens"]  # a real connection counted
    assert set(before) >= {"listen_overflows", "listen_drops", "syn_drops", "retrans_segs", "out_segs"}


def _listening_port() -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    _listening_port.keep = server  # type: ignore[attr-defined]
    return server.getsockname()[1]


def test_route_tables_parsed_from_the_kernels_format():
    v4 = parse_route_v4("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
                        "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
                        "*\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
                        "garbage line\n")
    assert v4 == [{"family": "ipv4", "destination": "0.0.0.0/0", "gateway": "10.0.0.1", "interface": "eth0",
                   "metric": 100, "type": "unicast"},
                  {"family": "ipv4", "destination": "10.88.0.0/16", "gateway": None, "interface": None,
                   "metric": 0, "type": "blackhole"}]
    v6 = parse_route_v6(
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001"
        " 00000400 00000001 00000000 00000003     eth0\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000"
        " ffffffff 00000001 00000000 00200200       lo\n")
    assert v6 == [{"family": "ipv6", "destination": "::/0", "gateway": "fd00::1", "interface": "eth0",
                   "metric": 1024, "type": "unicast"}]  # the kernel's own last-resort reject route left out


def test_collector_on_this_machine_without_main_json(tmp_path):
    """Run directly, as any run does: no main.json means the catalog's addresses (all IP
    literals), so nothing to resolve; every other section is read from the live host."""
    from collector.catalog import load_catalog
    from collector.collectors import network
    from collector.context import CollectOptions, Context, Deadline

    ctx = Context(basedir=tmp_path, basedir_source="test", catalog=load_catalog(), deadline=Deadline(10),
                  writer=None, options=CollectOptions(cpu_sample_seconds=0.05))
    started = time.monotonic()
    data = network.collect(ctx)
    assert time.monotonic() - started < 5
    assert data["resolution"] == []
    assert any(i["name"] == "lo" for i in data["interfaces"])
    assert data["counters"]["out_segs"] is not None
    assert data["counters_growth"]["interval_s"] >= 0.04
    conntrack = data["conntrack"]
    if Path("/proc/sys/net/netfilter/nf_conntrack_max").exists():
        assert conntrack["max"] == int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
    else:
        assert conntrack == {"count": None, "max": None, "percent": None} and data["notes"]


_AS_NOBODY = r"""
import json, sys
from pathlib import Path
from collector.catalog import load_catalog
from collector.collectors import network
from collector.context import CollectOptions, Context, Deadline

ctx = Context(basedir=Path(sys.argv[1]), basedir_source="test", catalog=load_catalog(), deadline=Deadline(10),
              writer=None, options=CollectOptions(cpu_sample_seconds=0.05))
print(json.dumps(network.collect(ctx)))
"""


def test_unprivileged_run_records_what_it_could_not_read(tmp_path):
    """As the user nobody, with a resolv.conf only root may read (bound over the real one
    in a mount namespace of the test's own): the rest is collected, and the unreadable
    file is an error naming it (the run marks the collector partial), never an empty resolver."""
    python = "/usr/bin/python3"
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare") or not Path(python).exists():
        pytest.skip("needs root, setpriv(1), unshare(1) and the system's python3 to run as the user nobody")
    import psutil
    import yaml

    folder = Path(tempfile.mkdtemp(prefix="akdiag-nobody-net-"))
    try:
        for module in (psutil, yaml):
            shutil.copytree(Path(module.__file__).parent, folder / Path(module.__file__).parent.name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755)
        secret_resolver = folder / "resolv.conf"
        secret_resolver.write_text("nameserver 10.1.2.3\n")
        secret_resolver.chmod(0o600)
        basedir = folder / "akd"
        basedir.mkdir(mode=0o755)
        script = ('mount --make-rprivate / && mount --bind "$1" /etc/resolv.conf && shift && '
                  'exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"')
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{folder}{os.pathsep}{REPO}", "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(secret_resolver),
                               python, "-c", _AS_NOBODY, str(basedir)],
                              capture_output=True, text=True, timeout=60, env=env, cwd="/")
        if done.returncode != 0 and "No module named" in done.stderr:
            why = done.stderr.strip().splitlines()[-1]
            pytest.skip(f"the system's python3 cannot run akdiag as nobody here: {why}")
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert "cannot read /etc/resolv.conf: permission denied (run as root to read it)" in data["errors"]
    assert data["resolv_conf"]["nameservers"] == [] and "permission denied" in data["resolv_conf"]["error"]
    assert any(i["name"] == "lo" for i in data["interfaces"])
    assert data["counters"]["out_segs"] is not None
