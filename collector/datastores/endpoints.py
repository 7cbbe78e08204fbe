"""Where each datastore is: its address from BASEDIR/config/main.json, the catalog's
default when there is no main.json, or the user's --catalog when it gives one.

Precedence for a component:
1. the user's --catalog file gives its host or port: that address ("--catalog <file>"),
   with the credentials main.json gives for it;
2. main.json can be read: the address its keys give ("main.json KEY/KEY"); a component
   whose keys it leaves out is "not configured" (newer single-host layouts run only some
   of the datastores), except HTTP services, which go to their catalog process's port;
   a component main.json has no key for at all (CONFIG_KEYS None: the accounts MongoDB,
   the actions and stats SSDBs) is checked at the catalog's default address, and is
   "not configured", not down, when nothing listens there;
3. no readable main.json: the catalog's default address ("catalog default").

Credentials go into Endpoint.secrets and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from collector.catalog import BUILTIN_CATALOG, Catalog, ComponentSpec
from collector.datastores.common import Endpoint, split_host_port
from collector.decoding import decode_text
from collector.safeopen import read_under
from collector.untrusted import load_json_bounded

MAIN_JSON_MAX_BYTES = 16 * 1024 * 1024
ANY_ADDRESS = ("0.0.0.0", "::", "[::]", "*", "")
DEFAULT_VHOST = "altcraft"
DEFAULT_MANAGEMENT_PORT = 15672
DEFAULT_CLICKHOUSE_HTTP_PORT = 8123


class ConfigValueError(ValueError):
    pass


# -- main.json ------------------------------------------------------------------------


def read_main_json(basedir: Path) -> Tuple[Optional[dict], dict]:
    """(parsed main.json or None, {"path", "state": ok|missing|unreadable|invalid, "error"})."""
    path = Path(basedir) / "config" / "main.json"
    info: Dict[str, Any] = {"path": str(path), "state": "ok", "error": None}
    try:
        raw, truncated = read_under(basedir, path, MAIN_JSON_MAX_BYTES)
    except FileNotFoundError:
        info.update(state="missing", error=f"{path} does not exist; the catalog's default addresses are used")
        return None, info
    except OSError as exc:
        info.update(state="unreadable", error=f"cannot read {path}: {exc.strerror or exc}; "
                                               "the catalog's default addresses are used")
        return None, info
    try:
        if truncated:
            raise ValueError(f"larger than {MAIN_JSON_MAX_BYTES} bytes")
        data = load_json_bounded(decode_text(raw)[0])  # a BOM or UTF-16 decoded; too deep refused
        if not isinstance(data, dict):
            raise ValueError("the top level is not a JSON object")
    except ValueError as exc:
        # the parser's message names line and column, never the text around it
        info.update(state="invalid", error=f"{path} is not valid JSON ({exc}); "
                                            "the catalog's default addresses are used")
        return None, info
    return data, info


# -- value helpers --------------------------------------------------------------------


def _host(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigValueError(f"main.json {key} is not a host name: {value!r}")
    return value.strip()


def _port(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ConfigValueError(f"main.json {key} is not a port number: {value!r}")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigValueError(f"main.json {key} is not a port number: {value!r}") from None
    if not 0 < number < 65536:
        raise ConfigValueError(f"main.json {key} is not a port number: {value!r}")
    return number


def _text(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    return str(value)


def _local(endpoint: Endpoint) -> Endpoint:
    """A listen-everywhere address (0.0.0.0) is reached on 127.0.0.1."""
    if endpoint.host is not None and endpoint.host.strip() in ANY_ADDRESS:
        endpoint.notes.append(f"configured address {endpoint.host or '(empty)'} means every interface; "
                              "checked on 127.0.0.1")
        endpoint.host = "127.0.0.1"
    return endpoint


def _member_name(base: str, index: int, count: int) -> str:
    return base if count == 1 else f"{base}[{index}]"


# -- per-component resolvers: main.json -> endpoints (None: main.json does not name it) --

Resolver = Callable[[dict, ComponentSpec], Optional[List[Endpoint]]]


def _mongodb(main: dict, spec: ComponentSpec, prefix: str) -> Optional[List[Endpoint]]:
    auth_db = _text(main.get("MONGO_AUTH_DB")) or "admin"
    user = _text(main.get(f"{prefix}_USER"))
    password = _text(main.get(f"{prefix}_PASS"))
    database = _text(main.get(f"{prefix}_NAME"))
    replica_set = _text(main.get(f"{prefix}_REPL_SET_NAME"))
    members = main.get(prefix)
    addresses: List[Tuple[str, int, str]] = []
    if isinstance(members, list) and members:
        for index, member in enumerate(members):
            key = f"{prefix}[{index}]"
            if not isinstance(member, dict):
                raise ConfigValueError(f"main.json {key} is not an object with IP and PORT")
            host = _host(member.get("IP", member.get("HOST")), f"{key}.IP")
            port = _port(member.get("PORT", spec.port or 27017), f"{key}.PORT")
            addresses.append((host, port, f"main.json {key}" + ("" if replica_set is None else
                                                               f", {prefix}_REPL_SET_NAME")))
    elif f"{prefix}_IP" in main or f"{prefix}_PORT" in main:
        host = _host(main.get(f"{prefix}_IP", spec.host or "127.0.0.1"), f"{prefix}_IP")
        port = _port(main.get(f"{prefix}_PORT", spec.port or 27017), f"{prefix}_PORT")
        used = [k for k in (f"{prefix}_IP", f"{prefix}_PORT") if k in main]
        addresses.append((host, port, "main.json " + "/".join(used)))
    else:
        return None
    endpoints = []
    for index, (host, port, source) in enumerate(addresses):
        endpoints.append(_local(Endpoint(
            name=_member_name(spec.name, index, len(addresses)), kind="mongodb", host=host, port=port,
            source=source, description=spec.description, group=spec.name, user=user,
            secrets={"password": password} if password else {},
            options={"auth_source": auth_db, "database": database, "replica_set": replica_set})))
    return endpoints


def _mongodb_control(main: dict, spec: ComponentSpec) -> Optional[List[Endpoint]]:
    return _mongodb(main, spec, "CONTROLDB")


def _mongodb_filedb(main: dict, spec: ComponentSpec) -> Optional[List[Endpoint]]:
    enabled = main.get("FILEDB_ENABLE")
    if enabled is False or (isinstance(enabled, str) and enabled.lower() in ("false", "0", "no")):
        return []  # named, and switched off
    return _mongodb(main, spec, "FILEDB")


def _ssdb(prefix: str) -> Resolver:
    def resolve(main: dict, spec: ComponentSpec) -> Optional[List[Endpoint]]:
        if f"{prefix}_IP" not in main and f"{prefix}_PORT" not in main:
            return None
        host = _host(main.get(f"{prefix}_IP", spec.host or "127.0.0.1"), f"{prefix}_IP")
        port = _port(main.get(f"{prefix}_PORT", spec.port), f"{prefix}_PORT")
        used = [k for k in (f"{prefix}_IP", f"{prefix}_PORT") if k in main]
        password = _text(main.get(f"{prefix}_PASS"))
        return [_local(Endpoint(name=spec.name, kind=spec.kind, host=host, port=port,
                                source="main.json " + "/".join(used), description=spec.description,
                                group=spec.name, secrets={"password": password} if password else {},
                                options={"password_from": f"main.json {prefix}_PASS"}))]
    return resolve


def _rabbitmq(main: dict, spec: ComponentSpec) -> Optional[List[Endpoint]]:
    if "RABBITMQ_HOST" not in main:
        return None
    default_port = spec.port or 5672
    raw = _host(main.get("RABBITMQ_HOST"), "RABBITMQ_HOST")
    try:
        host, port = split_host_port(raw, default_port)
    except ValueError:
        raise ConfigValueError(f"main.json RABBITMQ_HOST has a bad port: {raw!r}") from None
    source = "main.json RABBITMQ_HOST" + ("" if port != default_port or ":" in raw else
                                          f", port {default_port} from the catalog (main.json has no port key)")
    password = _text(main.get("RABBITMQ_PASS"))
    return [_local(Endpoint(
        name=spec.name, kind="rabbitmq", host=host, port=port, source=source, description=spec.description,
        group=spec.name, user=_text(main.get("RABBITMQ_USER")) or "guest",
        secrets={"password": password} if password else {},
        options={"vhost": _text(main.get("RABBITMQ_VHOST")) or DEFAULT_VHOST,
                 "management_port": spec.management_port or DEFAULT_MANAGEMENT_PORT}))]


def _clickhouse(main: dict, spec: ComponentSpec) -> Optional[List[Endpoint]]:
    conf = main.get("CLICKHOUSE_SYSTEM")
    if conf is None:
        return None
    if not isinstance(conf, dict):
        raise ConfigValueError("main.json CLICKHOUSE_SYSTEM is not an object")
    host = _host(conf.get("HOST", spec.host or "127.0.0.1"), "CLICKHOUSE_SYSTEM.HOST")
    port = _port(conf.get("PORT", spec.port or 9000), "CLICKHOUSE_SYSTEM.PORT")
    password = _text(conf.get("PASSWORD"))
    return [_local(Endpoint(
        name=spec.name, kind="clickhouse", host=host, port=port, source="main.json CLICKHOUSE_SYSTEM.HOST/PORT",
        description=spec.description, group=spec.name, user=_text(conf.get("USER")) or "default",
        secrets={"password": password} if password else {},
        options={"http_port": spec.http_port or DEFAULT_CLICKHOUSE_HTTP_PORT,
                 "database": _text(conf.get("DATABASE_NAME"))}))]


def _kvrocks(key: str) -> Resolver:
    def resolve(main: dict, spec: ComponentSpec) -> Optional[List[Endpoint]]:
        conf = main.get(key)
        if conf is None:
            return None
        if not isinstance(conf, dict):
            raise ConfigValueError(f"main.json {key} is not an object")
        nodes = conf.get("NODES")
        if not isinstance(nodes, list) or not nodes:
            raise ConfigValueError(f"main.json {key}.NODES lists no node")
        password = _text(conf.get("PASSWORD"))
        endpoints = []
        for index, node in enumerate(nodes):
            where = f"{key}.NODES[{index}]"
            if not isinstance(node, dict):
                raise ConfigValueError(f"main.json {where} is not an object with HOST and PORT")
            host = _host(node.get("HOST", node.get("IP", spec.host or "127.0.0.1")), f"{where}.HOST")
            port = _port(node.get("PORT", spec.port or 6666), f"{where}.PORT")
            endpoints.append(_local(Endpoint(
                name=_member_name(spec.name, index, len(nodes)), kind=spec.kind, host=host, port=port,
                source=f"main.json {where}", description=spec.description, group=spec.name,
                secrets={"password": password} if password else {},
                options={"mode": _text(conf.get("MODE")), "password_from": f"main.json {key}.PASSWORD"})))
        return endpoints
    return resolve


def _webcontrol(main: dict, spec: ComponentSpec) -> Optional[List[Endpoint]]:
    if "WEBCONTROL_PUBLIC_PORT" not in main:
        return None
    host = _host(main.get("WEBCONTROL_PUBLIC_IP") or "127.0.0.1", "WEBCONTROL_PUBLIC_IP")
    port = _port(main.get("WEBCONTROL_PUBLIC_PORT"), "WEBCONTROL_PUBLIC_PORT")
    return [_local(Endpoint(name=spec.name, kind="http", host=host, port=port,
                            source="main.json WEBCONTROL_PUBLIC_IP/WEBCONTROL_PUBLIC_PORT",
                            description=spec.description, group=spec.name, options={"service": spec.name}))]


RESOLVERS: Dict[str, Resolver] = {
    "mongodb_control": _mongodb_control,
    "mongodb_filedb": _mongodb_filedb,
    "ssdb_hb": _ssdb("SSDB_HBSUPP"),
    "ssdb_notify": _ssdb("SSDB_NOTIFY"),
    "rabbitmq": _rabbitmq,
    "clickhouse": _clickhouse,
    "kvrocks_duplicates": _kvrocks("CAMP_DUPLICATESDB"),
    "kvrocks_workflow_cache": _kvrocks("PROCWORKFLOW_DISTRIBUTED_CACHE_DB"),
    "webcontrol": _webcontrol,
}
CONFIG_KEYS = {
    "mongodb_control": "CONTROLDB_IP/CONTROLDB_PORT or CONTROLDB",
    "mongodb_accounts": None,
    "mongodb_filedb": "FILEDB_IP/FILEDB_PORT or FILEDB",
    "ssdb_actions": None,
    "ssdb_hb": "SSDB_HBSUPP_IP/SSDB_HBSUPP_PORT",
    "ssdb_notify": "SSDB_NOTIFY_IP/SSDB_NOTIFY_PORT",
    "ssdb_stats": None,
    "rabbitmq": "RABBITMQ_HOST",
    "clickhouse": "CLICKHOUSE_SYSTEM",
    "kvrocks_duplicates": "CAMP_DUPLICATESDB",
    "kvrocks_workflow_cache": "PROCWORKFLOW_DISTRIBUTED_CACHE_DB",
}


# -- resolution ---------------------------------------------------------------------------


def _options_from_catalog(spec: ComponentSpec) -> dict:
    if spec.kind == "rabbitmq":
        return {"vhost": DEFAULT_VHOST, "management_port": spec.management_port or DEFAULT_MANAGEMENT_PORT}
    if spec.kind == "clickhouse":
        return {"http_port": spec.http_port or DEFAULT_CLICKHOUSE_HTTP_PORT}
    if spec.kind == "mongodb":
        return {"auth_source": "admin"}
    if spec.kind == "http":
        return {"service": spec.name}
    return {}


def _not_configured(spec: ComponentSpec, source: str, reason: str) -> Endpoint:
    return Endpoint(name=spec.name, kind=spec.kind, host=None, port=None, source=source,
                    description=spec.description, group=spec.name, options={"not_configured": reason})


def _catalog_default(spec: ComponentSpec, why: str) -> Endpoint:
    return _local(Endpoint(name=spec.name, kind=spec.kind, host=spec.host, port=spec.port,
                           source=f"catalog default ({why})", description=spec.description, group=spec.name,
                           options=_options_from_catalog(spec)))


def _unnamed(spec: ComponentSpec) -> Endpoint:
    """A component that a readable main.json does not name.  One main.json has no key for
    (the accounts MongoDB, the actions and stats SSDBs) may still run at the catalog's
    default address: it is checked there, and nothing listening there is not_configured."""
    keys = CONFIG_KEYS.get(spec.name, "")
    if keys:
        return _not_configured(spec, "main.json", f"main.json does not name it ({keys})")
    if keys is None and spec.host is not None and spec.port is not None:
        endpoint = _catalog_default(spec, "main.json has no key for it")
        endpoint.if_absent = "nothing listens at the catalog's default address and main.json has no key for it"
        return endpoint
    return _not_configured(spec, "main.json", "main.json has no key for it; a --catalog file that gives its "
                                              "host and port has it checked")


def _from_process(spec: ComponentSpec, catalog: Catalog) -> Optional[Endpoint]:
    process = catalog.process(spec.process) if spec.process else None
    if process is None or process.port is None:
        return None
    return _local(Endpoint(name=spec.name, kind="http", host=process.address, port=process.port,
                           source=f"catalog process {process.binary} (its port)", description=spec.description,
                           group=spec.name, options={"service": spec.name}))


def _from_user_catalog(spec: ComponentSpec, config_endpoints: Optional[List[Endpoint]],
                       catalog: Catalog) -> Endpoint:
    source = f"--catalog {spec.defined_in}"
    if spec.kind == "http" and (spec.host is None) != (spec.port is None):
        process = catalog.process(spec.process) if spec.process else None
        host = spec.host or (process.address if process else "127.0.0.1")
        port = spec.port or (process.port if process else None)
        if port is not None:
            return _local(Endpoint(name=spec.name, kind="http", host=host, port=port, source=source,
                                   description=spec.description, group=spec.name, options={"service": spec.name}))
    if spec.host is None or spec.port is None:
        return _not_configured(spec, source, f"{spec.defined_in} gives no host and port for {spec.name}")
    base = config_endpoints[0] if config_endpoints else None
    endpoint = Endpoint(name=spec.name, kind=spec.kind, host=spec.host, port=spec.port, source=source,
                        description=spec.description, group=spec.name,
                        user=base.user if base else None, secrets=dict(base.secrets) if base else {},
                        options={**_options_from_catalog(spec), **(base.options if base else {})})
    if spec.kind == "rabbitmq" and spec.management_port:
        endpoint.options["management_port"] = spec.management_port
    if spec.kind == "clickhouse" and spec.http_port:
        endpoint.options["http_port"] = spec.http_port
    return _local(endpoint)


def resolve_endpoints(basedir: Path, catalog: Catalog) -> Tuple[List[Endpoint], dict]:
    """Every catalog component as endpoints to check (a replica set or a Kvrocks
    cluster gives one per member), and the state of main.json."""
    main, info = read_main_json(basedir)
    builtin = str(BUILTIN_CATALOG)
    endpoints: List[Endpoint] = []
    for spec in catalog.components:
        user_named = bool(spec.defined_in) and spec.defined_in != builtin
        resolver = RESOLVERS.get(spec.name)
        config_endpoints: Optional[List[Endpoint]] = None
        problem: Optional[str] = None
        if main is not None and resolver is not None:
            try:
                config_endpoints = resolver(main, spec)
            except ConfigValueError as exc:
                problem = str(exc)
        if user_named:
            endpoints.append(_from_user_catalog(spec, config_endpoints, catalog))
            continue
        if problem is not None:
            bad = Endpoint(name=spec.name, kind=spec.kind, host=None, port=None, source="main.json",
                           description=spec.description, group=spec.name, problem=problem)
            endpoints.append(bad)
            continue
        if config_endpoints:
            endpoints.extend(config_endpoints)
            continue
        if config_endpoints is not None:  # named by main.json and switched off
            endpoints.append(_not_configured(spec, "main.json", f"main.json switches {spec.name} off "
                                                                  "(FILEDB_ENABLE is false)"))
            continue
        if spec.kind == "http":
            from_process = _from_process(spec, catalog)
            if from_process is not None:
                endpoints.append(from_process)
            else:
                endpoints.append(_not_configured(
                    spec, "none", f"no address known for {spec.name}: give its host and port in a --catalog "
                                  f"file (components: [{{name: {spec.name}, host: ..., port: ...}}])"))
            continue
        if main is not None:
            endpoints.append(_unnamed(spec))
            continue
        if spec.host is not None and spec.port is not None:
            endpoints.append(_catalog_default(spec, f"main.json {info['state']}"))
        else:
            endpoints.append(_not_configured(spec, "catalog", "the catalog gives no default address"))
    return endpoints, info
