"""Kvrocks and other Redis-protocol caches: auth (when main.json gives a password),
ping, and INFO's server, clients, memory, persistence and keyspace sections.  The same
INFO parser reads SSDB's array reply, so a port that turns out to be SSDB is recorded
as such."""

from __future__ import annotations

from collector.datastores import ssdb
from collector.datastores.common import Check
from collector.datastores.resp import info_version, ssdb_summary
from collector.datastores.respclient import RespClient

INFO_SECTIONS = ("server", "clients", "memory", "persistence", "keyspace")
# the figures kept from each section (all of keyspace); a section's other keys are dropped
KEEP = {
    "server": ("redis_version", "kvrocks_version", "version", "kvrocks_git_sha1", "redis_mode", "os", "arch_bits",
               "process_id", "tcp_port", "uptime_in_seconds", "uptime_in_days", "executable", "config_file"),
    "clients": ("connected_clients", "maxclients", "blocked_clients", "monitor_clients", "rejected_connections"),
    "memory": ("used_memory", "used_memory_human", "used_memory_rss", "used_memory_rss_human",
               "used_memory_peak", "used_memory_peak_human", "maxmemory", "maxmemory_human", "maxmemory_policy",
               "mem_fragmentation_ratio", "used_memory_lua", "used_memory_startup"),
    "persistence": ("loading", "rdb_changes_since_last_save", "rdb_bgsave_in_progress", "rdb_last_save_time",
                    "rdb_last_bgsave_status", "aof_enabled", "aof_rewrite_in_progress", "aof_last_bgrewrite_status",
                    "aof_last_write_status", "bgsave_in_progress", "last_bgsave_time", "last_bgsave_status",
                    "last_bgsave_time_sec", "last_save_time"),
}


def _sections(parsed: dict) -> dict:
    sections = parsed.get("sections", {})
    out = {}
    for name in INFO_SECTIONS:
        section = sections.get(name)
        if section is None:
            out[name] = None
            continue
        keep = KEEP.get(name)
        out[name] = dict(section) if keep is None else {k: section[k] for k in keep if k in section}
    return out


def check(chk: Check) -> None:
    client = RespClient(chk, "Kvrocks/Redis")
    parsed = ssdb.connect_and_read_info(chk, client)
    if parsed is None:
        return
    chk.set("version", info_version(parsed))
    if parsed["format"] == "ssdb":
        chk.note("INFO answered in SSDB's array form: this port serves SSDB, not Kvrocks")
        chk.detail("info", ssdb_summary(parsed))
        return
    chk.detail("info", _sections(parsed))
