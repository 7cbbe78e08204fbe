"""`akdiag check --format prometheus`: the Prometheus text exposition format (0.0.4, what
node_exporter's textfile collector reads).  Written with the standard library: the format
is a few escaping rules, and akdiag only writes it (no registry, no HTTP server).

Names follow Prometheus's conventions: the `akdiag_` prefix, base units (bytes, seconds),
`_total` on the one counter, a catalog process's series labelled with its name
(`akdiag_process_resident_memory_bytes{name="api"}`).  A figure the bundle does not hold
has no sample: absent data, never a made-up 0."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Tuple

from collector.analyzers import count_by_severity

Sample = Tuple[Dict[str, Any], Any]


def escape_label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: Any) -> Optional[str]:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return None


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> List[str]:
    """The HELP and TYPE lines and one line per sample with a value; nothing at all when
    no sample has one."""
    lines = []
    for labels, value in samples:
        text = format_value(value)
        if text is None:
            continue
        label_text = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
        lines.append(f"{name}{{{label_text}}} {text}" if label_text else f"{name} {text}")
    if not lines:
        return []
    return [f"# HELP {name} {escape_help(help_text)}", f"# TYPE {name} {kind}"] + lines


def _check_families(result) -> List[List[str]]:
    counts = count_by_severity(result.findings)
    by_id = Counter((str(f.get("id")), str(f.get("severity"))) for f in result.findings)
    return [
        family("akdiag_check_status", "gauge", "The check's verdict as its exit code: 0 OK, 1 warning, "
               "2 critical, 3 unknown (could not check).", [({}, result.code)]),
        family("akdiag_check_duration_seconds", "gauge", "How long the check took.", [({}, float(result.duration))]),
        family("akdiag_check_timestamp_seconds", "gauge", "When the check's output was written (Unix time): an "
               "old value means the check stopped running.", [({}, time.time())]),
        family("akdiag_findings", "gauge", "Findings of the check by severity.",
               [({"severity": severity}, counts[severity]) for severity in ("critical", "warning", "info")]),
        family("akdiag_findings_by_id", "gauge", "Findings of the check by finding id and severity.",
               [({"id": fid, "severity": severity}, n) for (fid, severity), n in sorted(by_id.items())]),
    ]


PROCESS_GAUGES = (
    ("up", "akdiag_process_up", "Whether the catalog process runs (1) or is down (0)."),
    ("pids", "akdiag_process_pids", "Running PIDs with the process's title."),
    ("resident_memory_bytes", "akdiag_process_resident_memory_bytes", "Resident memory of the process's PIDs."),
    ("virtual_memory_bytes", "akdiag_process_virtual_memory_bytes", "Virtual memory of the process's PIDs."),
    ("open_fds", "akdiag_process_open_fds", "Open file descriptors of the process's PIDs."),
    ("max_fds", "akdiag_process_max_fds", "The open files limit (soft RLIMIT_NOFILE; the lowest of its PIDs')."),
    ("threads", "akdiag_process_threads", "Threads of the process's PIDs."),
    ("start_time_seconds", "akdiag_process_start_time_seconds", "When the process's oldest PID started "
                                                                "(Unix time)."),
)


def _process_families(processes: List[dict]) -> List[List[str]]:
    out = [family(metric, "gauge", help_text, [({"name": p["name"]}, p.get(key)) for p in processes])
           for key, metric, help_text in PROCESS_GAUGES]
    out.append(family("akdiag_process_cpu_seconds_total", "counter",
                      "User and system CPU time of the process's PIDs since they started.",
                      [({"name": p["name"]}, p.get("cpu_seconds")) for p in processes]))
    out.append(family("akdiag_process_connections", "gauge", "Internet sockets of the process's PIDs by TCP state.",
                      [({"name": p["name"], "state": state}, n) for p in processes
                       for state, n in sorted((p.get("connections") or {}).items())]))
    return out


def _other_families(snap: dict) -> List[List[str]]:
    ports, stores, mounts = snap.get("ports", []), snap.get("datastores", []), snap.get("mounts", [])
    queues = sorted((snap.get("queues") or {}).items())
    store_labels = [({"name": d["name"], "kind": d["kind"]}, d) for d in stores]
    mount_labels = [({"mountpoint": m["mountpoint"], "fstype": m["fstype"]}, m) for m in mounts]
    return [
        family("akdiag_port_listening", "gauge", "Whether the process's catalog port listens, owned by it (1), "
               "or not (0: nothing listens, or another program holds it).",
               [({"name": p["process"], "port": p["port"], "address": p.get("address") or ""}, p["listening"])
                for p in ports]),
        family("akdiag_datastore_up", "gauge", "Whether the datastore answered the check (1) or not (0).",
               [(labels, d["up"]) for labels, d in store_labels]),
        family("akdiag_datastore_latency_seconds", "gauge", "The datastore's answer time to one request.",
               [(labels, d.get("latency_seconds")) for labels, d in store_labels]),
        family("akdiag_datastore_connect_seconds", "gauge", "The time to connect to the datastore.",
               [(labels, d.get("connect_seconds")) for labels, d in store_labels]),
        family("akdiag_rabbitmq_queue_messages", "gauge", "Messages in a RabbitMQ queue the vendor watches.",
               [({"queue": name}, q.get("messages")) for name, q in queues]),
        family("akdiag_rabbitmq_queue_consumers", "gauge", "Consumers of a RabbitMQ queue the vendor watches.",
               [({"queue": name}, q.get("consumers")) for name, q in queues]),
        family("akdiag_filesystem_size_bytes", "gauge", "Size of the mounted filesystem.",
               [(labels, m.get("size_bytes")) for labels, m in mount_labels]),
        family("akdiag_filesystem_free_bytes", "gauge", "Free bytes on the filesystem for unprivileged users "
               "(as df shows them).", [(labels, m.get("free_bytes")) for labels, m in mount_labels]),
        family("akdiag_filesystem_files", "gauge", "Inodes of the filesystem.",
               [(labels, m.get("files")) for labels, m in mount_labels]),
        family("akdiag_filesystem_files_free", "gauge", "Free inodes of the filesystem.",
               [(labels, m.get("files_free")) for labels, m in mount_labels]),
    ]


def render(result) -> str:
    """The exposition of one check result (collector.check.CheckResult)."""
    snap = getattr(result, "snapshot", None) or {}
    families = _check_families(result) + _process_families(snap.get("processes", [])) + _other_families(snap)
    return "\n".join(line for lines in families for line in lines)
