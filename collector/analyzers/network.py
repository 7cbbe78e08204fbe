"""The network: TCP listen queues that overflow, conntrack near its maximum, many
retransmits, a datastore host that does not resolve or has no route; and, for a
datastore that cannot be reached, the network fact that explains it
(`explain_unreachable`, used by the datastores analyzer).

Reads network.json (see collector/collectors/network.py), and datastores.json,
ports.json and kernel.json for context."""

from __future__ import annotations

import ipaddress
from typing import Any, Dict, Iterable, List, Optional, Tuple

from collector.analyzers.common import as_dict, dicts, load, number
from collector.analyzers.findings import CRITICAL, INFO, WARNING, Finding, Thresholds
from collector.bundle import schema
from collector.bundle.reader import BundleReader

SOURCE = schema.NETWORK
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
Address = Any  # ipaddress.IPv4Address | ipaddress.IPv6Address


def analyze(reader: BundleReader, thresholds: Thresholds) -> List[Finding]:
    data = load(reader, SOURCE)
    if data is None:
        return []
    findings = _listen_overflows(data, thresholds)
    findings += _conntrack(reader, data, thresholds)
    findings += _retransmits(data, thresholds)
    findings += _unrouted(reader, data)
    findings += _dns(reader, data)
    return findings


# -- kernel counters ------------------------------------------------------------------------------


def _listen_overflows(data: dict, t: Thresholds) -> List[Finding]:
    counters, growth = as_dict(data.get("counters")), as_dict(data.get("counters_growth"))
    total, opens = number(counters.get("listen_overflows")), number(counters.get("passive_opens"))
    recent, interval = number(growth.get("listen_overflows")), number(growth.get("interval_s"))
    if not total:
        return []
    figures = {"listen_overflows": total, "listen_drops": counters.get("listen_drops"),
               "syn_drops": counters.get("syn_drops"), "passive_opens": opens,
               "growth": recent, "growth_interval_s": interval}
    hint = ("A listening program does not accept connections as fast as they come (stuck, or too busy), or its "
            "backlog is too small (net.core.somaxconn): `ss -ltn` shows Recv-Q at Send-Q for that port.")
    if recent and interval:
        return [Finding("network.listen_overflows", WARNING, "tcp",
                        f"TCP listen queues are overflowing now: {recent:.0f} connection(s) dropped in "
                        f"{interval:.1f} s ({total:.0f} since boot)", SOURCE, figures, hint)]
    ratio = total / opens if opens else None
    limit = t.number("network_listen_overflows_ratio_warning")
    figures["ratio"], figures["warning_above_ratio"] = ratio, limit
    severity = WARNING if ratio is None or ratio > limit else INFO
    share = f", {100.0 * ratio:.2f} % of the {opens:.0f} accepted" if ratio is not None else ""
    return [Finding("network.listen_overflows", severity, "tcp",
                    f"TCP listen queues overflowed {total:.0f} times since boot{share}; none while collecting",
                    SOURCE, figures, hint + " A count since boot may be old: collect again to see whether it grows.")]


def _conntrack(reader: BundleReader, data: dict, t: Thresholds) -> List[Finding]:
    conntrack = as_dict(data.get("conntrack"))
    count, maximum = number(conntrack.get("count")), number(conntrack.get("max"))
    if count is None or not maximum or _kernel_reports_conntrack_full(reader):
        return []
    percent = 100.0 * count / maximum
    warning, critical = t.number("network_conntrack_percent_warning"), t.number("network_conntrack_percent_critical")
    if percent < warning:
        return []
    return [Finding("network.conntrack_high", CRITICAL if percent >= critical else WARNING, "conntrack",
                    f"The connection tracking table is {percent:.0f} % full ({count:.0f} of {maximum:.0f})", SOURCE,
                    {"count": count, "max": maximum, "percent": round(percent, 1), "warning_at": warning,
                     "critical_at": critical},
                    "When it is full the kernel drops new connections (\"nf_conntrack: table full\"): raise "
                    "net.netfilter.nf_conntrack_max, or find what opens so many connections.")]


def _kernel_reports_conntrack_full(reader: BundleReader) -> bool:
    kernel = load(reader, schema.KERNEL) or {}
    return any(event.get("kind") == "conntrack_full" for event in dicts(kernel.get("events")))


def _retransmits(data: dict, t: Thresholds) -> List[Finding]:
    counters = as_dict(data.get("counters"))
    retrans, out = number(counters.get("retrans_segs")), number(counters.get("out_segs"))
    minimum = t.number("network_retransmit_min_segments")
    if retrans is None or not out or out < minimum:
        return []
    percent, limit = 100.0 * retrans / out, t.number("network_retransmit_percent_warning")
    if percent <= limit:
        return []
    return [Finding("network.retransmits_high", WARNING, "tcp",
                    f"{percent:.1f} % of TCP segments sent since boot were retransmissions "
                    f"({retrans:.0f} of {out:.0f})", SOURCE,
                    {"retrans_segs": retrans, "out_segs": out, "percent": round(percent, 2),
                     "warning_above_percent": limit},
                    "Packets are lost on the way: look at the links, the MTU and the load of the hosts the platform "
                    "talks to (its datastores).")]


# -- routes and names --------------------------------------------------------------------------------


def _unrouted(reader: BundleReader, data: dict) -> List[Finding]:
    """No default route matters only when a datastore's address is on no network a route covers."""
    routes = dicts(data.get("routes"))
    if dicts(data.get("default_routes")) or not routes and data.get("errors"):
        return []
    lost = []
    for host, addresses in _datastore_addresses(reader, data).items():
        for address in addresses:
            if not _is_local(address, data) and _route_for(address, routes) is None:
                lost.append(f"{address} ({host})" if host != str(address) else str(address))
    if not lost:
        return []
    return [Finding("network.no_default_route", WARNING, "routes",
                    f"There is no default route, and no route reaches datastore address(es) {', '.join(lost[:5])}",
                    SOURCE, {"addresses": lost, "routes": len(routes)},
                    "Add a route to the datastores' network (or the default route this host should have).")]


def _dns(reader: BundleReader, data: dict) -> List[Finding]:
    statuses = _endpoint_statuses(reader)
    resolver = _resolver_words(data)
    findings = []
    for entry in dicts(data.get("resolution")):
        if not entry.get("error"):
            continue
        host, users = str(entry.get("host")), [str(n) for n in entry.get("endpoints") or []]
        all_ok = bool(users) and all(statuses.get(name) == "ok" for name in users)
        severity = WARNING if entry.get("timed_out") or all_ok else CRITICAL
        findings.append(Finding(
            "network.dns_failed", severity, host,
            f"{host} {'was not resolved in time' if entry.get('timed_out') else 'does not resolve'} "
            f"({entry.get('error')}); needed by {', '.join(users) or 'a datastore'}", SOURCE,
            {"host": host, "error": entry.get("error"), "endpoints": users, "duration": entry.get("duration"),
             "nameservers": as_dict(data.get("resolv_conf")).get("nameservers")},
            f"The platform reaches its datastores by this name: {resolver}. Fix the name in main.json, add it to "
            "/etc/hosts, or make the nameserver answer for it."))
    return findings


def _endpoint_statuses(reader: BundleReader) -> Dict[str, str]:
    datastores = load(reader, schema.DATASTORES) or {}
    return {str(e.get("name")): str(e.get("status")) for e in dicts(datastores.get("endpoints"))}


def _resolver_words(data: dict) -> str:
    conf = as_dict(data.get("resolv_conf"))
    servers = [str(s) + _unrouted_words(str(s), data) for s in conf.get("nameservers") or []]
    said = (f"/etc/resolv.conf names nameserver(s) {', '.join(servers)}" if servers
            else "/etc/resolv.conf names no nameserver" + (f" ({conf.get('error')})" if conf.get("error") else ""))
    if conf.get("search"):
        said += f", search {' '.join(str(s) for s in conf['search'])}"
    if data.get("nsswitch_hosts"):
        said += f"; nsswitch.conf hosts: {data['nsswitch_hosts']}"
    return said


def _unrouted_words(server: str, data: dict) -> str:
    address = _parse_address(server)
    if address is None or _is_local(address, data) or _route_for(address, dicts(data.get("routes"))) is not None:
        return ""
    return " (no route reaches it)"


def _datastore_addresses(reader: BundleReader, data: dict) -> Dict[str, List[Address]]:
    """{host as main.json gives it: [its addresses]} for every checked datastore."""
    resolved = {str(e.get("host")).lower(): e for e in dicts(data.get("resolution"))}
    out: Dict[str, List[Address]] = {}
    datastores = load(reader, schema.DATASTORES) or {}
    for endpoint in dicts(datastores.get("endpoints")):
        host = endpoint.get("host")
        if isinstance(host, str) and host and endpoint.get("status") != "not_configured":
            out[host] = addresses_of(host, resolved.get(host.lower()))
    return out


def addresses_of(host: str, resolution: Optional[dict]) -> List[Address]:
    literal = _parse_address(host)
    if literal is not None:
        return [literal]
    found = [_parse_address(str(a)) for a in (as_dict(resolution).get("addresses") or [])]
    return [a for a in found if a is not None]


def _parse_address(text: str) -> Optional[Address]:
    try:
        return ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _own_addresses(data: dict) -> List[Address]:
    own = []
    for interface in dicts(data.get("interfaces")):
        for entry in dicts(interface.get("addresses")):
            address = _parse_address(str(entry.get("address")))
            if address is not None:
                own.append(address)
    return own


def _is_local(address: Address, data: dict) -> bool:
    return address.is_loopback or address.is_unspecified or address in _own_addresses(data)


def _route_for(address: Address, routes: Iterable[dict]) -> Optional[dict]:
    """The kernel's choice among the routes listed: the longest prefix, then the lowest metric."""
    best: Optional[Tuple[Tuple[int, float], dict]] = None
    for route in routes:
        try:
            network = ipaddress.ip_network(str(route.get("destination")), strict=False)
        except ValueError:
            continue
        if network.version != address.version or address not in network:
            continue
        key = (network.prefixlen, -(number(route.get("metric")) or 0))
        if best is None or key > best[0]:
            best = (key, route)
    return best[1] if best else None


# -- why a datastore cannot be reached -------------------------------------------------------------



def explain_unreachable(reader: BundleReader, endpoint: dict) -> Optional[str]:
    """Which network fact explains that a datastore cannot be reached (status unreachable
    or timeout): its name does not resolve, no route reaches its address, nothing listens
    on its port (refused), or packets to it are dropped (filtered).  None when the bundle
    holds nothing that explains it."""
    if endpoint.get("status") not in ("unreachable", "timeout"):
        return None
    data = load(reader, SOURCE) or {}
    host, port = str(endpoint.get("host") or ""), endpoint.get("port")
    cause = _cause(endpoint)
    resolution = next((e for e in dicts(data.get("resolution")) if str(e.get("host")).lower() == host.lower()), None)
    unresolved = bool(resolution and resolution.get("error")) and cause not in ("refused", "no_route")
    if cause == "resolve" or unresolved:  # a check that ran out of time may have waited on the resolver
        return _unresolved(host, resolution, data) if data else None
    addresses = addresses_of(host, resolution)
    if not addresses:
        return None
    address = addresses[0]
    local = _is_local(address, data) or host.lower() in LOOPBACK_NAMES
    if cause == "refused":  # the packets got there: the routes do not matter
        return _refused(reader, address, port, local)
    if cause == "answer":  # connected: only a full listen queue on this host is a network fact
        return _queue_full(data, port) if local and _listeners(reader, port) else None
    route = None if local else _route_for(address, dicts(data.get("routes")))
    if not local and data and (route is None or route.get("type") != "unicast"):
        return _no_route(address, route)
    if cause == "filtered":
        return _filtered(address, port, route, data, local, _listeners(reader, port) if local else None)
    if cause == "no_route" and route is not None:
        return (f"the kernel routes {address} via {_via(route)}, but the host did not answer there "
                "(no reply to ARP or neighbour discovery, or an ICMP \"host unreachable\"): it is down or not on "
                "that network")
    return None


def _cause(endpoint: dict) -> str:
    """The TCP connection's fate: the check's recorded cause, else read from its one-line error
    (datastores/common.py words it; bundles written before the cause was recorded)."""
    recorded = endpoint.get("cause")
    if recorded in ("resolve", "refused", "no_route"):
        return recorded
    if recorded == "timeout":
        return "filtered"  # the TCP connect itself went unanswered
    error = str(endpoint.get("error") or "").lower()
    if "cannot resolve host name" in error:
        return "resolve"
    if "connection refused" in error:
        return "refused"
    if "no route to" in error:
        return "no_route"
    if "no tcp connection to" in error:
        return "filtered"
    if endpoint.get("status") == "timeout":
        return "answer"  # connected (or was still trying when the check ran out of time)
    return "other"


def _unresolved(host: str, resolution: Optional[dict], data: dict) -> str:
    said = f"the name {host} does not resolve"
    if resolution and resolution.get("error"):
        said += f" ({resolution['error']})"
    entries = [e for e in dicts(data.get("hosts_entries")) if host.lower() in
               (str(n).lower() for n in e.get("names") or [])]
    return said + f": {_resolver_words(data)}" + ("" if entries else "; /etc/hosts has no line for it")


def _no_route(address: Address, route: Optional[dict]) -> str:
    if route is None:
        return f"no route reaches {address}: the routing table has no route for it and no default route"
    kind = "blackhole (packets are dropped)" if route.get("type") == "blackhole" else "reject (unreachable or prohibit)"
    return f"the route to {address} is {route.get('destination')}, a {kind} route"


def _refused(reader: BundleReader, address: Address, port: Any, local: bool) -> str:
    if not local:
        return (f"{address} refused the connection: nothing listens on port {port} there, or a firewall on the way "
                "rejects it")
    listeners = _listeners(reader, port)
    if listeners is None:
        return f"nothing listens on port {port} on this host"
    if not listeners:
        return f"nothing listens on port {port} on this host (ports.json lists no listener on it)"
    if not any(_listens_on(w, address) for w in listeners):
        return f"port {port} is listened on {', '.join(listeners)} only, not on {address}"
    return (f"a program listens on port {port} ({', '.join(listeners)}), yet the connection was refused: "
            "a firewall rejects it")


def _listeners(reader: BundleReader, port: Any) -> Optional[List[str]]:
    """The addresses this host's TCP listeners on `port` are bound to; None without ports.json."""
    ports = load(reader, schema.PORTS)
    if ports is None:
        return None
    return sorted({str(s.get("address")) for s in dicts(ports.get("listening"))
                   if s.get("port") == port and str(s.get("protocol", "")).startswith("tcp")})


def _listens_on(listen_address: str, address: Address) -> bool:
    bound = _parse_address(listen_address)
    return bound is None or bound.is_unspecified or bound == address


def _filtered(address: Address, port: Any, route: Optional[dict], data: dict, local: bool,
              listeners: Optional[List[str]]) -> str:
    """A connection neither accepted nor refused.  On this host, with a program listening on
    the port, a full listen queue does that too (the kernel drops the SYN)."""
    queue = _queue_full(data, port) if listeners else None
    if queue:
        return queue
    where = "on this host" if local else f"routed via {_via(route)}" if route else "routed"
    return (f"{address} is {where}, but the connection to port {port} was neither accepted nor refused: a firewall "
            "drops the packets (filtered)" + ("" if local else ", or the host is down"))


def _queue_full(data: dict, port: Any) -> Optional[str]:
    growth = as_dict(data.get("counters_growth"))
    recent = number(growth.get("listen_overflows"))
    if not recent:
        return None
    interval = number(growth.get("interval_s")) or 0.0
    return (f"TCP listen queues on this host overflowed {recent:.0f} times in {interval:.1f} s "
            f"while collecting: the program on port {port} may not be accepting connections")


def _via(route: Optional[dict]) -> str:
    route = route or {}
    gateway, interface = route.get("gateway"), route.get("interface")
    parts = [f"gateway {gateway}" if gateway else "", f"interface {interface}" if interface else ""]
    return " ".join(p for p in parts if p) or str(route.get("destination"))
