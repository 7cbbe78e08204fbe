"""The kernel's network tables as the network collector reads them from /proc: the
routes (IPv4 and IPv6), the TCP counters and the conntrack figures.  Every read is
bounded in bytes; a file that cannot be read is an error message, never an exception."""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Dict, List, Optional, Tuple

from collector.live import read_text

ROUTE_V4 = "/proc/net/route"
ROUTE_V6 = "/proc/net/ipv6_route"
NETSTAT = "/proc/net/netstat"
SNMP = "/proc/net/snmp"
CONNTRACK_COUNT = "/proc/sys/net/netfilter/nf_conntrack_count"
CONNTRACK_MAX = "/proc/sys/net/netfilter/nf_conntrack_max"
PROC_MAX_BYTES = 1024 * 1024
MAX_ROUTES = 512  # per family
RTF_GATEWAY = 0x0002
RTF_REJECT = 0x0200
IPV6_NO_METRIC = 0xFFFFFFFF  # the kernel's own last-resort "unreachable" default

# counter name in network.json: (the /proc file's line prefix, the kernel's name)
COUNTERS = {
    "listen_overflows": ("TcpExt", "ListenOverflows"),
    "listen_drops": ("TcpExt", "ListenDrops"),
    "syn_drops": ("TcpExt", "TCPReqQFullDrop"),
    "syn_cookies": ("TcpExt", "TCPReqQFullDoCookies"),
    "retrans_segs": ("Tcp", "RetransSegs"),
    "out_segs": ("Tcp", "OutSegs"),
    "attempt_fails": ("Tcp", "AttemptFails"),
    "estab_resets": ("Tcp", "EstabResets"),
    "passive_opens": ("Tcp", "PassiveOpens"),
    "active_opens": ("Tcp", "ActiveOpens"),
    "curr_estab": ("Tcp", "CurrEstab"),
}


def read_int(path: str) -> Tuple[Optional[int], Optional[str]]:
    text, error = read_text(path, 64)
    if text is None:
        return None, error
    try:
        return int(text.strip()), None
    except ValueError:
        return None, f"{path} does not hold a number"


# -- counters ----------------------------------------------------------------------------------


def parse_snmp_tables(text: str) -> Dict[Tuple[str, str], int]:
    """/proc/net/netstat and /proc/net/snmp: pairs of lines "Prefix: names..." then
    "Prefix: values..." -> {(prefix, name): value}."""
    values: Dict[Tuple[str, str], int] = {}
    lines = text.splitlines()
    for header, row in zip(lines[::2], lines[1::2]):
        prefix, _, names = header.partition(":")
        row_prefix, _, numbers = row.partition(":")
        if prefix != row_prefix:
            continue
        for name, number in zip(names.split(), numbers.split()):
            try:
                values[(prefix.strip(), name)] = int(number)
            except ValueError:
                continue
    return values


def read_counters(errors: List[str]) -> Dict[str, Optional[int]]:
    table: Dict[Tuple[str, str], int] = {}
    for path in (NETSTAT, SNMP):
        text, error = read_text(path, PROC_MAX_BYTES)
        if text is None:
            errors.append(error or f"cannot read {path}")
            continue
        table.update(parse_snmp_tables(text))
    return {key: table.get(where) for key, where in COUNTERS.items()}


# -- routes ------------------------------------------------------------------------------------


def read_routes(errors: List[str]) -> List[dict]:
    routes = []
    for path, parse in ((ROUTE_V4, parse_route_v4), (ROUTE_V6, parse_route_v6)):
        text, error = read_text(path, PROC_MAX_BYTES)
        if text is None:
            if error and "No such file" not in error:  # a kernel without IPv6 has no ipv6_route
                errors.append(error)
            continue
        found = parse(text)
        if len(found) > MAX_ROUTES:
            errors.append(f"{path} holds {len(found)} routes; only the first {MAX_ROUTES} are listed")
        routes += found[:MAX_ROUTES]
    return routes


def parse_route_v4(text: str) -> List[dict]:
    """/proc/net/route (the main table).  A reject route (unreachable, prohibit) carries
    RTF_REJECT; a blackhole has no device ("*") and no gateway."""
    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            iface, dest, gateway, flags, metric, mask = (fields[0], _ipv4(fields[1]), _ipv4(fields[2]),
                                                         int(fields[3], 16), int(fields[6]), _ipv4(fields[7]))
            prefix = ipaddress.ip_network(f"{dest}/{mask}", strict=False).prefixlen
        except (ValueError, struct.error):
            continue
        kind = "reject" if flags & RTF_REJECT else "blackhole" if iface == "*" else "unicast"
        routes.append({"family": "ipv4", "destination": f"{dest}/{prefix}",
                       "gateway": gateway if flags & RTF_GATEWAY else None,
                       "interface": None if iface == "*" else iface, "metric": metric, "type": kind})
    return routes


def parse_route_v6(text: str) -> List[dict]:
    """/proc/net/ipv6_route (every table): dest, dest prefix, source, source prefix,
    next hop, metric, refcount, use, flags, device.  Blackhole, unreachable and prohibit
    routes all carry RTF_REJECT here; the kernel's own ::/0 reject route of metric
    0xffffffff is its last resort, not a route anyone added, and is left out."""
    routes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            dest, prefix = _ipv6(fields[0]), int(fields[1], 16)
            gateway, metric, flags = _ipv6(fields[4]), int(fields[5], 16), int(fields[8], 16)
        except ValueError:
            continue
        if flags & RTF_REJECT and metric == IPV6_NO_METRIC and prefix == 0:
            continue
        routes.append({"family": "ipv6", "destination": f"{dest}/{prefix}",
                       "gateway": gateway if gateway != "::" else None,
                       "interface": fields[9], "metric": metric,
                       "type": "reject" if flags & RTF_REJECT else "unicast"})
    return routes


def _ipv4(hex_le: str) -> str:
    return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hex_le, 16)))


def _ipv6(hex32: str) -> str:
    if len(hex32) != 32:
        raise ValueError(hex32)
    return str(ipaddress.IPv6Address(bytes.fromhex(hex32)))
