"""The network facts a datastore finding needs: interfaces and addresses, routes, the
resolver's configuration, how every datastore host main.json names resolves (bounded
in time), the kernel's TCP counters (sampled twice, to tell a counter growing now from
one that grew since boot) and conntrack use against its maximum.

network.json: {"interfaces": [{name, up, mtu, speed_mbps, addresses: [{family, address,
prefix}]}], "routes": [{family, destination, gateway, interface, metric, type}],
"default_routes": [route], "resolv_conf": {path, link, nameservers, search, options,
error}, "nsswitch_hosts": str|null, "hosts_entries": [{address, names}] (/etc/hosts lines
naming a datastore host), "resolution": [{host, addresses, error, duration, endpoints}],
"counters": {listen_overflows, listen_drops, syn_drops, syn_cookies, retrans_segs,
out_segs, attempt_fails, estab_resets, passive_opens, active_opens, curr_estab},
"counters_growth": {interval_s, <counter>: delta} | null, "conntrack": {count, max,
percent}, "notes": [...], "errors": [...]}

Everything is read from /proc, /etc and psutil: no subprocess.  The counters and the
routes are those of akdiag's own network namespace.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from typing import Dict, List, Optional

import psutil

from collector.context import Context
from collector.collectors.netproc import (CONNTRACK_COUNT, CONNTRACK_MAX, read_counters, read_int, read_routes,
                                          read_text)

RESOLV_CONF = "/etc/resolv.conf"
HOSTS_FILE = "/etc/hosts"
NSSWITCH = "/etc/nsswitch.conf"
CONFIG_MAX_BYTES = 64 * 1024
HOSTS_MAX_BYTES = 1024 * 1024
MAX_INTERFACES = 256
MAX_ADDRESSES = 64  # per interface
MAX_HOSTS = 32  # datastore host names resolved
RESOLVE_SECONDS = 3.0  # for all of them together, never beyond --datastore-timeout
GAUGES = ("curr_estab",)  # a level, not a count since boot: no growth
_FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}


def collect(ctx: Context) -> dict:
    errors: List[str] = []
    notes: List[str] = []
    first = read_counters(errors)
    sampled_at = time.monotonic()
    hosts = _datastore_hosts(ctx, errors)
    resolve_budget = ctx.deadline.bound(min(RESOLVE_SECONDS, ctx.options.datastore_timeout))
    resolution = resolve_hosts(hosts, resolve_budget)
    routes = read_routes(errors)
    data = {
        "interfaces": _interfaces(errors),
        "routes": routes,
        "default_routes": [r for r in routes if r["destination"] in ("0.0.0.0/0", "::/0") and r["type"] == "unicast"],
        "resolv_conf": _resolv_conf(errors),
        "nsswitch_hosts": _nsswitch_hosts(),
        "hosts_entries": _hosts_entries(list(hosts), errors),
        "resolution": resolution,
    }
    # the second sample: at least the CPU sample's time after the first (the run waits that long anyway)
    wait = ctx.deadline.bound(ctx.options.cpu_sample_seconds) - (time.monotonic() - sampled_at)
    if wait > 0:
        time.sleep(wait)
    second = read_counters([])
    data["counters"] = second if any(v is not None for v in second.values()) else first
    data["counters_growth"] = _growth(first, second, time.monotonic() - sampled_at)
    data["conntrack"] = _conntrack(notes, errors)
    data["notes"] = notes
    data["errors"] = errors
    return data


# -- datastore hosts and their resolution ------------------------------------------------


def _datastore_hosts(ctx: Context, errors: List[str]) -> Dict[str, List[str]]:
    """{host name: [endpoint names]} for every endpoint whose host is a name, not an address."""
    from collector.datastores.endpoints import resolve_endpoints  # its client modules load lazily

    try:
        endpoints, main_json = resolve_endpoints(ctx.basedir, ctx.catalog)
    except Exception as exc:  # a bug there must not cost the interfaces and routes
        errors.append(f"datastore addresses: {type(exc).__name__}: {exc}")
        return {}
    if main_json.get("state") in ("invalid", "unreadable"):
        errors.append(f"datastore host names not resolved: {main_json.get('error')}")
    hosts: Dict[str, List[str]] = {}
    for endpoint in endpoints:
        host = (endpoint.host or "").strip().strip("[]")
        if not host or _is_address(host):
            continue
        hosts.setdefault(host.lower(), []).append(endpoint.name)
    if len(hosts) > MAX_HOSTS:
        errors.append(f"main.json names {len(hosts)} datastore hosts; only the first {MAX_HOSTS} were resolved")
        hosts = dict(list(hosts.items())[:MAX_HOSTS])
    return hosts


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def resolve_hosts(hosts: Dict[str, List[str]], timeout: float) -> List[dict]:
    """Each name through the system's resolver (getaddrinfo: /etc/hosts, DNS, as nsswitch
    says), all at once, each in a daemon thread; a name not answered within `timeout` is
    recorded as such and its thread abandoned."""
    results: Dict[str, dict] = {}
    threads = []
    started = time.monotonic()
    for host in hosts:
        box: dict = {"host": host, "addresses": [], "error": None, "duration": None,
                     "endpoints": list(hosts[host])}
        results[host] = box
        thread = threading.Thread(target=_resolve_one, args=(host, box, started), daemon=True,
                                  name=f"resolve:{host}")
        thread.start()
        threads.append((thread, box))
    for thread, box in threads:
        thread.join(max(0.0, started + timeout - time.monotonic()))
        if thread.is_alive():
            box.update(addresses=[], error=f"no answer within {timeout:.1f} s", timed_out=True,
                       duration=round(timeout, 3))
    return [dict(results[host]) for host in hosts]


def _resolve_one(host: str, box: dict, started: float) -> None:
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
        addresses = []
        for family, _type, _proto, _name, sockaddr in infos:
            if family in _FAMILIES and sockaddr[0] not in addresses:
                addresses.append(sockaddr[0])
        found, error = addresses, None
    except socket.gaierror as exc:
        found, error = [], f"{exc.strerror or exc} (EAI {exc.errno})"
    except (OSError, UnicodeError) as exc:
        found, error = [], f"{type(exc).__name__}: {exc}"
    if "timed_out" not in box:
        box.update(addresses=found, error=error, duration=round(time.monotonic() - started, 3))


# -- interfaces ------------------------------------------------------------------------------


def _interfaces(errors: List[str]) -> List[dict]:
    try:
        stats = psutil.net_if_stats()
        addresses = psutil.net_if_addrs()
    except (psutil.Error, OSError) as exc:
        errors.append(f"interfaces: {exc}")
        return []
    names = sorted(set(stats) | set(addresses))
    if len(names) > MAX_INTERFACES:
        errors.append(f"{len(names)} interfaces; only the first {MAX_INTERFACES} are listed")
        names = names[:MAX_INTERFACES]
    listed = []
    for name in names:
        stat = stats.get(name)
        listed.append({
            "name": name,
            "up": stat.isup if stat else None,
            "mtu": stat.mtu if stat else None,
            "speed_mbps": stat.speed if stat and stat.speed > 0 else None,
            "addresses": [_address(a) for a in addresses.get(name, []) if a.family in _FAMILIES][:MAX_ADDRESSES],
        })
    return listed


def _address(addr) -> dict:
    prefix = None
    if addr.netmask:
        try:
            prefix = ipaddress.ip_network(f"0.0.0.0/{addr.netmask}" if addr.family == socket.AF_INET
                                          else f"::/{addr.netmask}").prefixlen
        except ValueError:
            prefix = None
    return {"family": _FAMILIES[addr.family], "address": addr.address, "prefix": prefix}


# -- resolver configuration --------------------------------------------------------------------


def _resolv_conf(errors: List[str], path: str = RESOLV_CONF) -> dict:
    conf: dict = {"path": path, "link": None, "nameservers": [], "search": [], "options": [], "error": None}
    try:
        conf["link"] = os.readlink(path)
    except OSError:
        pass
    text, error = read_text(path, CONFIG_MAX_BYTES)
    if text is None:
        conf["error"] = error
        if error and "No such file" not in error:
            errors.append(error)
        return conf
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2:
            continue
        key, values = words[0], words[1:]
        if key == "nameserver":
            conf["nameservers"].append(values[0])
        elif key in ("search", "domain"):
            conf["search"] = values[:16]  # the last search or domain line wins
        elif key == "options":
            conf["options"] += values
    conf["nameservers"] = conf["nameservers"][:16]
    conf["options"] = conf["options"][:32]
    return conf


def _nsswitch_hosts(path: str = NSSWITCH) -> Optional[str]:
    text, _error = read_text(path, CONFIG_MAX_BYTES)
    for line in (text or "").splitlines():
        key, sep, value = line.split("#", 1)[0].partition(":")
        if sep and key.strip() == "hosts":
            return " ".join(value.split())
    return None


def _hosts_entries(hosts: List[str], errors: List[str], path: str = HOSTS_FILE) -> List[dict]:
    """The /etc/hosts lines that name one of the datastore hosts (the others are not ours)."""
    if not hosts:
        return []
    text, error = read_text(path, HOSTS_MAX_BYTES)
    if text is None:
        if error and "No such file" not in error:
            errors.append(error)
        return []
    wanted = set(hosts)
    entries = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and any(name.lower() in wanted for name in words[1:]):
            entries.append({"address": words[0], "names": words[1:16]})
    return entries[:64]


# -- counters and conntrack --------------------------------------------------------------------


def _growth(first: Dict[str, Optional[int]], second: Dict[str, Optional[int]], interval: float) -> Optional[dict]:
    deltas = {key: second[key] - first[key] for key in first
              if key not in GAUGES and first.get(key) is not None and second.get(key) is not None}
    if not deltas:
        return None
    return {"interval_s": round(interval, 3), **deltas}


def _conntrack(notes: List[str], errors: List[str]) -> dict:
    count, count_error = read_int(CONNTRACK_COUNT)
    maximum, max_error = read_int(CONNTRACK_MAX)
    problems = [e for e in (count_error, max_error) if e and "No such file" not in e]
    errors += problems
    if count is None and maximum is None and not problems:
        notes.append("connection tracking (nf_conntrack) is not loaded: there is no table to fill")
    percent = round(100.0 * count / maximum, 1) if count is not None and maximum else None
    return {"count": count, "max": maximum, "percent": percent}

