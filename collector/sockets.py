"""The host's TCP and UDP sockets, read the way ss(8) reads them: the kernel's socket
tables through netlink (sock_diag), in binary, or /proc/net/{tcp,udp}[6] where netlink
is refused; and the processes that hold them, by their descriptors in /proc/PID/fd.

Every socket of a table is reduced to what the collectors use: its state and inode,
and for a listening one its address and port.  Finding a socket's process means reading
every descriptor link of every process (what makes `ss -p` and psutil slow on a host of
100,000 sockets): `find_owners` looks only for the sockets asked about, reads the
processes with the fewest descriptors first and stops when it has found them all."""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set

# the kernel's TCP states (include/net/tcp_states.h) by the names psutil gives them
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
              7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "SYN_RECV"}
TCP_LISTEN = 10
UDP_STATE = "NONE"  # psutil's word for a UDP socket's state
MAX_SOCKETS = 2_000_000  # a bound on the tables read, far above any real host

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLMSG_HEADER = struct.Struct("=IHHII")
_RECV_BYTES = 1 << 20
_TABLES = ((socket.AF_INET, socket.IPPROTO_TCP, "/proc/net/tcp"),
           (socket.AF_INET6, socket.IPPROTO_TCP, "/proc/net/tcp6"),
           (socket.AF_INET, socket.IPPROTO_UDP, "/proc/net/udp"),
           (socket.AF_INET6, socket.IPPROTO_UDP, "/proc/net/udp6"))


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket or a UDP socket bound with no peer."""

    protocol: str  # tcp, tcp6, udp, udp6
    address: str
    port: int
    inode: int


@dataclass
class Tables:
    """What one read of the kernel's socket tables keeps: states by inode, counts, listeners."""

    state_by_inode: Dict[int, int] = field(default_factory=dict)  # the TCP state, UDP_CODE for UDP
    tcp_counts: List[int] = field(default_factory=lambda: [0] * 16)  # sockets by TCP state
    listeners: List[Listener] = field(default_factory=list)
    sockets: int = 0
    source: str = "netlink"  # or "/proc/net" where netlink was refused
    errors: List[str] = field(default_factory=list)

    @property
    def tcp_states(self) -> Dict[str, int]:
        states: Dict[str, int] = {}
        for code, count in enumerate(self.tcp_counts):
            if count:
                word = TCP_STATES.get(code, "UNKNOWN")
                states[word] = states.get(word, 0) + count
        return states


UDP_CODE = 0  # no TCP state has it


def state_name(code: int) -> str:
    return UDP_STATE if code == UDP_CODE else TCP_STATES.get(code, "UNKNOWN")


def read_tables() -> Tables:
    """Every TCP and UDP socket of this network namespace, IPv4 and IPv6."""
    tables = Tables()
    for family, proto, path in _TABLES:
        before = tables.sockets
        try:
            _netlink_into(tables, family, proto)
        except OSError as exc:
            if tables.sockets > before:  # cut short mid-dump: /proc/net's rows would count its sockets twice
                tables.errors.append(f"the sock_diag dump of {path} was cut short: {exc}")
                continue
            tables.source = "/proc/net"  # refused before it gave anything (a seccomp filter, no sock_diag)
            _add_rows(tables, _proc_rows(path, family, tables.errors), proto, family)
        if tables.sockets > MAX_SOCKETS:
            tables.errors.append(f"more than {MAX_SOCKETS} sockets: the rest of the tables was not read")
            break
    return tables


def _protocol(proto: int, family: int) -> str:
    return ("tcp" if proto == socket.IPPROTO_TCP else "udp") + ("6" if family == socket.AF_INET6 else "")


def _add_rows(tables: Tables, rows: Iterable[tuple], proto: int, family: int) -> None:
    is_tcp = proto == socket.IPPROTO_TCP
    for state, inode, address, port, has_peer in rows:
        tables.sockets += 1
        if is_tcp:
            tables.tcp_counts[state & 15] += 1
        if inode:
            tables.state_by_inode[inode] = state if is_tcp else UDP_CODE
        if (state == TCP_LISTEN if is_tcp else not has_peer) and port:
            tables.listeners.append(Listener(_protocol(proto, family), _address(address, family), port, inode))


def _address(raw: bytes, family: int) -> str:
    return socket.inet_ntop(family, raw[:4] if family == socket.AF_INET else raw[:16])


# -- netlink (sock_diag) -------------------------------------------------------------------

# nlmsghdr (length, type, flags, seq, pid) then inet_diag_msg (family, state, timer,
# retrans, sport and dport in network order, src, dst, interface, cookie, expires, rqueue,
# wqueue, uid, inode): the length, the state, both ports and the inode in one call
_DIAG_MESSAGE = struct.Struct("=I12xxB2x2sH60xI")
_DIAG_SIZE = _DIAG_MESSAGE.size  # 88


def _netlink_into(tables: Tables, family: int, proto: int) -> None:
    """Adds one table's sockets; OSError when netlink is refused."""
    request = struct.pack("=BBBBI", family, proto, 0, 0, 0xFFFFFFFF) + bytes(48)  # inet_diag_req_v2, every state
    header = _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY,
                                _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as channel:
        channel.settimeout(10.0)
        channel.sendall(header + request)
        while tables.sockets <= MAX_SOCKETS:
            data = channel.recv(_RECV_BYTES)
            if not data or _parse_batch(data, tables, family, proto):
                return


def _parse_batch(data: bytes, tables: Tables, family: int, proto: int) -> bool:
    """Adds the batch's sockets to `tables`; True at the dump's end.  The hot loop of a
    host of 100,000 sockets: one unpack per socket, the address decoded for listeners only."""
    is_tcp = proto == socket.IPPROTO_TCP
    by_inode, counts, unpack = tables.state_by_inode, tables.tcp_counts, _DIAG_MESSAGE.unpack_from
    offset, end, added = 0, len(data), 0
    while offset + 16 <= end:
        kind = data[offset + 4] | data[offset + 5] << 8
        if kind != _SOCK_DIAG_BY_FAMILY:
            if kind == _NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, offset + 16)[0]
                if code:
                    raise OSError(code, f"sock_diag: {os.strerror(code)}")
            tables.sockets += added
            return kind in (_NLMSG_DONE, _NLMSG_ERROR)
        if offset + _DIAG_SIZE > end:
            break
        length, state, sport, dport, inode = unpack(data, offset)
        added += 1
        if is_tcp:
            counts[state & 15] += 1
            if inode:
                by_inode[inode] = state
            if state == TCP_LISTEN:
                _add_listener(tables, data, offset, family, proto, sport, inode)
        else:
            if inode:
                by_inode[inode] = UDP_CODE
            if not dport and sport != b"\0\0":
                _add_listener(tables, data, offset, family, proto, sport, inode)
        offset += (length + 3) & ~3
        if length < 16:
            break
    tables.sockets += added
    return False


def _add_listener(tables: Tables, data: bytes, offset: int, family: int, proto: int, sport: bytes,
                  inode: int) -> None:
    address = data[offset + 24:offset + 40]  # inet_diag_sockid's source address
    tables.listeners.append(Listener(_protocol(proto, family), _address(address, family),
                                     int.from_bytes(sport, "big"), inode))


# -- /proc/net (where netlink is refused) --------------------------------------------------


def _proc_rows(path: str, family: int, errors: List[str]) -> List[tuple]:
    rows: List[tuple] = []
    try:
        with open(path, "rb") as handle:
            handle.readline()
            for line in handle:
                fields = line.split()
                if len(fields) < 10:
                    continue
                rows.append(_proc_row(fields, family))
                if len(rows) > MAX_SOCKETS:
                    break
    except FileNotFoundError:
        return rows  # a kernel without IPv6
    except (OSError, ValueError) as exc:
        errors.append(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
    return rows


def _proc_row(fields: List[bytes], family: int) -> tuple:
    """One line of /proc/net/tcp: "sl local rem st ... inode": the addresses in hex, as the
    kernel's 32-bit words in host order."""
    local, remote = fields[1].split(b":"), fields[2].split(b":")
    state, inode = int(fields[3], 16), int(fields[9])
    has_peer = int(remote[1], 16) != 0
    raw = bytes.fromhex(local[0].decode())
    address = b"".join(struct.pack("=I", word) for word in struct.unpack(f">{len(raw) // 4}I", raw))
    return state, inode, address, int(local[1], 16), has_peer


# -- whose sockets -------------------------------------------------------------------------


FIRST_DESCRIPTORS = 64  # a server opens its listeners as it starts: among its lowest descriptors


def socket_inodes(pid: int, first: Optional[int] = None, after: int = 0,
                  names: Optional[List[str]] = None) -> Optional[List[int]]:
    """The inodes of the sockets `pid` holds (with `first`, among its `first` lowest
    descriptors; with `after`, past its `after` lowest; `names`: its descriptors, listed
    already); None when its descriptors cannot be read."""
    try:
        folder = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if names is None:
            names = os.listdir(folder)
        if first is not None or after:
            names = sorted(names, key=int)[after:first]
        inodes = []
        for name in names:
            try:
                link = os.readlink(name, dir_fd=folder)
            except OSError:
                continue  # closed meanwhile
            if link.startswith("socket:["):
                inodes.append(int(link[8:-1]))
        return inodes
    except (OSError, ValueError):
        return None
    finally:
        os.close(folder)


def _descriptors(pid: int) -> Optional[List[str]]:
    """The names of the process's descriptors (None when they cannot be read)."""
    try:
        return os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None


@dataclass
class Owners:
    """The processes found holding the wanted sockets, and how far the look got."""

    owners: Dict[int, int] = field(default_factory=dict)  # {inode: pid}
    hidden: int = 0  # processes whose descriptors could not be read
    links: int = 0  # descriptor links read
    missed: int = 0  # wanted sockets not found (hidden, or time ran out)
    timed_out: bool = False


def find_owners(wanted: Set[int], pids: Iterable[int], seconds: float) -> Owners:
    """The processes of the `wanted` sockets, read as cheaply as can be: first each
    process's FIRST_DESCRIPTORS lowest descriptors (a server opens its listeners as it
    starts), then the others' rest; the processes with the fewest first (a listener is
    most often held by a master with few).  It stops when all are found, or after `seconds`."""
    found = Owners()
    end = time.monotonic() + seconds
    counted = []  # (count, pid, its descriptors' names when they are all among the first round's)
    for pid in pids:
        names = _descriptors(pid)
        if names is None:
            found.hidden += 1
        else:
            counted.append((len(names), pid, names if len(names) <= FIRST_DESCRIPTORS else None))
    counted.sort(key=lambda entry: entry[:2])
    left = set(wanted) - {0}
    for first_round in (True, False):
        for count, pid, names in counted:
            if not left:
                break
            if time.monotonic() > end:
                found.timed_out = True
                break
            if first_round:
                inodes = (socket_inodes(pid, names=names) if names is not None  # listed already
                          else socket_inodes(pid, first=FIRST_DESCRIPTORS))
                found.links += min(count, FIRST_DESCRIPTORS)
            elif count > FIRST_DESCRIPTORS:
                inodes = socket_inodes(pid, after=FIRST_DESCRIPTORS)
                found.links += count - FIRST_DESCRIPTORS
            else:
                continue
            for inode in inodes or ():
                if inode in left:
                    found.owners[inode] = pid
                    left.discard(inode)
        if found.timed_out:
            break
    found.missed = len(left)
    return found
