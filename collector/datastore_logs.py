"""Where the datastores on this host keep their own logs: each one's configuration at
its standard place (or as a running server's command line names it) says which
folder and which file names; without one, the stock package's log folder.

A `LogRoot` is a folder and the file names in it that are that datastore's logs
(``None``: every log in the folder).  Paths named by a configuration file are used only
when that file could not have been planted by another user (collector.trust): a
config that names /etc/shadow as its log is root's own doing, not a stranger's.
Folders that do not exist are simply not there; the logs collector lists and reads
the roots (collector.collectors.logs) with the same rules as BASEDIR/logs.

`PLACES` holds every standard path; `HOST_ROOT` is "/" in production and a test
points it at a folder holding a fake host's /etc and /var/log (paths a configuration
names are taken below it too).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import yaml

from collector import trust
from collector.cmdline import read_cmdline
from collector.safeopen import read_capped
from collector.live import open_regular
from collector.yamlfile import compose_text

HOST_ROOT = "/"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_PROCESSES = 5000  # /proc entries looked at for ssdb-server and kvrocks

PLACES: Dict[str, dict] = {
    "mongodb": {"configs": ["/etc/mongod.conf"], "log": "/var/log/mongodb/mongod.log"},
    "rabbitmq": {"configs": ["/etc/rabbitmq/rabbitmq-env.conf"], "folder": "/var/log/rabbitmq"},
    "clickhouse": {"configs": ["/etc/clickhouse-server/config.xml"],
                   "logs": ["/var/log/clickhouse-server/clickhouse-server.log",
                            "/var/log/clickhouse-server/clickhouse-server.err.log"]},
    "ssdb": {"configs": ["/etc/ssdb.conf", "/etc/ssdb/ssdb.conf", "/usr/local/ssdb/ssdb.conf"],
             "folders": ["/etc/ssdb"], "process": "ssdb-server"},
    "kvrocks": {"configs": ["/etc/kvrocks/kvrocks.conf", "/etc/kvrocks.conf"], "folder": "/var/log/kvrocks",
                "process": "kvrocks"},
    "redis": {"configs": ["/etc/redis/redis.conf"], "log": "/var/log/redis/redis-server.log"},
}


@dataclass
class LogRoot:
    name: str  # also its folder in the bundle: logs/_datastores/<name>/
    path: str  # the folder, as on the host (HOST_ROOT left out)
    names: Optional[List[str]]  # the log file names in it (their rotations go with them); None: every *.log
    source: str  # where the place came from: a config file and key, or "standard place"
    prefix: Optional[str] = None  # instead of `names`: every file whose name starts so (glog's files)
    owner: Optional[int] = None  # only files this uid owns are read (the place came from a user's config)

    def local(self) -> str:
        """The folder where it is read (below HOST_ROOT)."""
        return at_host(self.path)

    def owns(self, name: str, base: str) -> bool:
        """Whether a file of the folder (`base`: the live log it is a rotation of) is this root's."""
        if self.prefix is not None:
            return name.startswith(self.prefix)
        if self.names is None:
            return base.endswith(".log")
        return base in self.names


def at_host(path: str) -> str:
    return os.path.join(HOST_ROOT, path.lstrip("/")) if HOST_ROOT != "/" else path


def _read_config(path: str, notes: List[str]) -> Optional[str]:
    """The text of a usable config file, or None (missing: silently; untrusted or
    unreadable: with a note).  A config owned by a datastore's own user (as packages
    install them) is used, but the logs it names are then read only when that user
    owns them (`_CONFIG_OWNER`): it cannot make akdiag read what it could not."""
    local = at_host(path)
    if not os.path.lexists(local):
        return None
    _CONFIG_OWNER.pop(path, None)
    problem = trust.untrusted_reason(local)
    if problem:
        owner = _owned_by_a_user(local)
        if owner is None:
            notes.append(f"{path}: not used to find the logs ({problem})")
            return None
        _CONFIG_OWNER[path] = owner
    try:
        fd, _st = open_regular(local, follow_symlink=True)
    except OSError as exc:
        notes.append(f"{path}: cannot be read ({exc.strerror or exc})")
        return None
    try:
        data, _cut = read_capped(fd, MAX_CONFIG_BYTES)
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


_CONFIG_OWNER: Dict[str, int] = {}  # config path -> the non-root user that owns it


def _owned_by_a_user(local: str) -> Optional[int]:
    """The uid of a regular config file owned by one user and writable by no one else."""
    try:
        st = os.stat(local)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return st.st_uid


def _root(name: str, folder: str, names: Optional[List[str]], config: str, key: str,
          prefix: Optional[str] = None) -> "LogRoot":
    return LogRoot(name, folder, names, f"{config} {key}", prefix, _CONFIG_OWNER.get(config))


def _split(path: str) -> Tuple[str, str]:
    return os.path.dirname(path) or "/", os.path.basename(path)


# -- each datastore's configuration --------------------------------------------------------


def _mongodb(notes: List[str], _comms: Dict[str, List[int]]) -> List[LogRoot]:
    place = PLACES["mongodb"]
    for config in place["configs"]:
        text = _read_config(config, notes)
        if text is None:
            continue
        path = _mongod_log_path(text)
        if path:
            folder, name = _split(path)
            return [_root("mongodb", folder, [name], config, "systemLog.path")]
    folder, name = _split(place["log"])
    return [LogRoot("mongodb", folder, [name], "standard place")]


def _mongod_log_path(text: str) -> Optional[str]:
    try:
        node = compose_text(text)
    except (yaml.YAMLError, RecursionError):
        node = None
    if isinstance(node, yaml.MappingNode):
        path = _scalar_at(_scalar_at(node, "systemLog"), "path")
        return path.value if isinstance(path, yaml.ScalarNode) and path.value.startswith("/") else None
    match = re.search(r"^\s*logpath\s*=\s*(/\S+)", text, re.M)  # the old INI-like form
    return match.group(1) if match else None


def _scalar_at(node, key: str):
    """The value node of `key` in a YAML mapping node (None when there is none)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _rabbitmq(notes: List[str], _comms: Dict[str, List[int]]) -> List[LogRoot]:
    place = PLACES["rabbitmq"]
    for config in place["configs"]:
        values = _shell_values(_read_config(config, notes) or "")
        logs = values.get("RABBITMQ_LOGS") or values.get("LOGS")
        if logs and logs.startswith("/"):
            folder, name = _split(logs)
            return [_root("rabbitmq", folder, None, config, "RABBITMQ_LOGS")]
        base = values.get("RABBITMQ_LOG_BASE") or values.get("LOG_BASE")
        if base and base.startswith("/"):
            return [_root("rabbitmq", base.rstrip("/") or "/", None, config, "RABBITMQ_LOG_BASE")]
    return [LogRoot("rabbitmq", place["folder"], None, "standard place")]


def _shell_values(text: str) -> Dict[str, str]:
    values = {}
    for match in re.finditer(r"^\s*(?:export\s+)?([A-Z_]+)=(['\"]?)([^'\"\n]*)\2\s*$", text, re.M):
        values[match.group(1)] = match.group(3).strip()
    return values


def _clickhouse(notes: List[str], _comms: Dict[str, List[int]]) -> List[LogRoot]:
    place = PLACES["clickhouse"]
    paths, source = list(place["logs"]), "standard place"
    for config in place["configs"]:
        text = _read_config(config, notes)
        logger = re.search(r"<logger>(.*?)</logger>", text or "", re.S)
        if not logger:
            continue
        named = [m.group(1).strip() for m in re.finditer(r"<(?:log|errorlog)>\s*([^<]+?)\s*</(?:log|errorlog)>",
                                                         logger.group(1))]
        named = [p for p in named if p.startswith("/")]
        if named:
            paths, source = named, config
            break
    folders: Dict[str, List[str]] = {}
    for path in paths:
        folder, name = _split(path)
        folders.setdefault(folder, []).append(name)
    return [_root("clickhouse" if n == 0 else f"clickhouse-{n + 1}", folder, names, source, "<logger>")
            if source != "standard place" else LogRoot("clickhouse" if n == 0 else f"clickhouse-{n + 1}", folder,
                                                       names, source)
            for n, (folder, names) in enumerate(folders.items())]


def _pids_by_comm() -> Dict[str, List[int]]:
    """The PIDs by command name, read from /proc (at most MAX_PROCESSES entries): for a
    caller without the run's process table."""
    found: Dict[str, List[int]] = {}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()][:MAX_PROCESSES]
    except OSError:
        return found
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm", "rb") as handle:
                comm = handle.read(64).strip().decode("utf-8", "replace")
        except OSError:
            continue
        found.setdefault(comm, []).append(int(pid))
    return found


def _process_configs(process: str, option: Optional[str], comms: Dict[str, List[int]]) -> List[str]:
    """Config files named on the command lines of running `process` servers."""
    found: List[str] = []
    for pid in comms.get(process[:15], ()):
        words = read_cmdline(pid) or []
        config = _config_word(words[1:], option)
        if config:
            cwd = _cwd_of(str(pid))
            full = config if config.startswith("/") or cwd is None else os.path.join(cwd, config)
            if full not in found:
                found.append(full)
    return found


def _config_word(words: List[str], option: Optional[str]) -> Optional[str]:
    for n, word in enumerate(words):
        if option and word == option and n + 1 < len(words):
            return words[n + 1]
        if word.endswith(".conf"):
            return word
    return None


def _cwd_of(pid: str) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _conf_values(text: str) -> Dict[str, str]:
    """`key value`, `key = value` and SSDB's indented `key: value` lines (the last wins;
    SSDB's nesting shown as parent.key)."""
    values, parent = {}, ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indented = raw[:1] in (" ", "\t")
        match = re.match(r"\s*([\w.\-]+)\s*(?:=|:|\s)\s*(.*)$", line)
        if not match:
            continue
        key, value = match.group(1), match.group(2).strip()
        if not indented:
            parent = key if not value else ""
        values[f"{parent}.{key}" if indented and parent else key] = value
    return values


def _ssdb(notes: List[str], comms: Dict[str, List[int]]) -> List[LogRoot]:
    place = PLACES["ssdb"]
    configs = list(place["configs"])
    for folder in place["folders"]:
        try:
            configs += sorted(os.path.join(folder, n) for n in os.listdir(at_host(folder)) if n.endswith(".conf"))
        except OSError:
            pass
    configs = _process_configs(place["process"], None, comms) + configs
    roots: List[LogRoot] = []
    for config in dict.fromkeys(configs):
        text = _read_config(config, notes)
        if text is None:
            continue
        values = _conf_values(text)
        output = values.get("logger.output", "")
        if not output or output in ("stdout", "stderr"):
            continue
        work_dir = os.path.join(os.path.dirname(config), values.get("work_dir", "."))
        path = os.path.normpath(os.path.join(work_dir, output))
        folder, name = _split(path)
        port = values.get("server.port", "")
        name_in_bundle = f"ssdb-{port}" if port.isdigit() else f"ssdb-{len(roots) + 1}"
        if all(r.path != folder or r.names != [name] for r in roots):
            roots.append(_root(name_in_bundle, folder, [name], config, "logger.output"))
    return roots


def _kvrocks(notes: List[str], comms: Dict[str, List[int]]) -> List[LogRoot]:
    place = PLACES["kvrocks"]
    for config in dict.fromkeys(_process_configs(place["process"], "-c", comms) + place["configs"]):
        values = _conf_values(_read_config(config, notes) or "")
        folder = values.get("log-dir") or values.get("dir")
        if folder and folder.startswith("/"):
            return [_root("kvrocks", folder.rstrip("/") or "/", None, config, "log-dir", prefix="kvrocks")]
    return [LogRoot("kvrocks", place["folder"], None, "standard place", prefix="kvrocks")]


def _redis(notes: List[str], _comms: Dict[str, List[int]]) -> List[LogRoot]:
    place = PLACES["redis"]
    for config in place["configs"]:
        logfile = _conf_values(_read_config(config, notes) or "").get("logfile", "").strip('"')
        if logfile.startswith("/"):
            folder, name = _split(logfile)
            return [_root("redis", folder, [name], config, "logfile")]
    folder, name = _split(place["log"])
    return [LogRoot("redis", folder, [name], "standard place")]


# each finder: (notes, the host's PIDs by command name) -> roots; SSDB's and Kvrocks's
# also look at the configs their running servers name
FINDERS = (_mongodb, _rabbitmq, _clickhouse, _ssdb, _kvrocks, _redis)


def datastore_log_roots(comms: Optional[Dict[str, List[int]]] = None) -> Tuple[List[LogRoot], List[str]]:
    """The datastores' log folders that exist on this host, and notes on configs that
    could not be used.  `comms`: the host's PIDs by command name (the run's process
    table); read from /proc once when not given."""
    notes: List[str] = []
    roots: List[LogRoot] = []
    comms = _pids_by_comm() if comms is None else comms
    for finder in FINDERS:
        for root in finder(notes, comms):
            if os.path.isdir(root.local()) and all(r.name != root.name for r in roots):
                roots.append(root)
    return roots, notes
