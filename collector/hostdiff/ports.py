"""The listening ports section of a diff: fixed listeners, not the kernel's ephemeral ports."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.hostdiff.model import Change
from collector.hostdiff.pseudonyms import either, pair_names, pseudonymized_note
from collector.hostdiff.sources import readable
from collector.plain import as_dict, as_list, is_number

LINUX_EPHEMERAL_RANGE = (32768, 60999)  # the kernel's default, for bundles that do not record theirs


def compare_ports(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    owners = _platform_owners(old, new, not_compared)
    before, skipped_before = _fixed_listeners(old, *owners[0])
    after, skipped_after = _fixed_listeners(new, *owners[1])
    skipped = skipped_before + skipped_after
    if skipped:
        not_compared.append(f"{skipped} listening socket(s) of non-platform programs on ephemeral ports "
                            "(chosen by the kernel, different on every start)")
    pairs, unpaired = pair_names(before, after)
    renamed = [pair for pair in pairs if None not in pair and pair[0] != pair[1]]
    if unpaired + len(renamed):
        not_compared.append(pseudonymized_note(unpaired + len(renamed), "listening address",
                                                "listening addresses"))
    changes = []
    for key_a, key_b in sorted(pairs, key=lambda pair: _port_order(either(pair))):
        if None not in (key_a, key_b):
            continue  # on both sides (a pseudonymized address is counted above)
        key, added = either((key_a, key_b)), key_a is None
        process = after.get(key) if added else before.get(key)
        changes.append(Change("ports", f"{key[0]} {key[1]}:{key[2]}", "listening", "added" if added else "removed",
                              None if added else process, process if added else None,
                              text=f"{'new' if added else 'gone'}: {key[0]} {key[1]}:{key[2]} ({process or 'unknown'})"))
    return changes


def _port_order(key: tuple) -> tuple:
    return key[2] if is_number(key[2]) else 0, str(key[0]), str(key[1])


def _platform_owners(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Tuple[set, set]]:
    """(the platform's PIDs, the catalog's ports) of each bundle, from processes.json.  When
    one bundle cannot tell its platform PIDs, neither side uses PIDs (a platform process's
    ephemeral socket would be kept on one side and left out on the other)."""
    owners = [_platform_pids_and_ports(old), _platform_pids_and_ports(new)]
    if all(readable(reader, schema.PROCESSES) for reader in (old, new)):
        return owners
    not_compared.append(f"ports: {schema.PROCESSES} cannot be read in both bundles, so a socket on an ephemeral "
                        "port is compared only when it is on a catalog port")
    catalog_ports = owners[0][1] | owners[1][1]
    return [(set(), catalog_ports), (set(), catalog_ports)]


def _platform_pids_and_ports(reader: BundleReader) -> Tuple[set, set]:
    expected = as_list(as_dict(reader.json(schema.PROCESSES)).get("expected"))
    pids = {pid for p in expected for pid in as_list(as_dict(p).get("pids"))}
    catalog_ports = {as_dict(as_dict(p).get("port")).get("expected") for p in expected} - {None}
    return pids, catalog_ports


def _fixed_listeners(reader: BundleReader, platform_pids: set, catalog_ports: set) -> Tuple[Dict[tuple, Any], int]:
    """The listening sockets worth comparing, and how many were left out: a socket on an
    ephemeral port is noise unless a platform process holds it or the catalog names the port."""
    ports = as_dict(reader.json(schema.PORTS))
    recorded = as_list(ports.get("ephemeral_range"))
    low, high = recorded if len(recorded) == 2 and all(is_number(v) for v in recorded) else LINUX_EPHEMERAL_RANGE
    kept: Dict[tuple, Any] = {}
    skipped = 0
    for sock in as_list(ports.get("listening")):
        sock = as_dict(sock)
        port = sock.get("port")
        ephemeral = is_number(port) and low <= port <= high
        if ephemeral and sock.get("pid") not in platform_pids and port not in catalog_ports:
            skipped += 1
            continue
        kept[(sock.get("protocol"), sock.get("address"), port)] = sock.get("process")
    return kept, skipped

