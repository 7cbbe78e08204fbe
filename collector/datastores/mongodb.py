"""MongoDB through pymongo, every timeout set (server selection, connect, socket, and a
client-side operation timeout per command): ping, buildInfo, a subset of serverStatus,
replSetGetStatus (members and their lag behind the primary), listDatabases with sizes,
operations running longer than 30 s (count and a summary without values), hostInfo
and getCmdLineOpts with secrets masked.  A command the server refuses is recorded for
that command and the others go on."""

from __future__ import annotations

import contextlib
import datetime
import time
from typing import Any, Dict, List, Optional

import pymongo
from bson.errors import BSONError
from pymongo import errors as mongo_errors
from pymongo.server_type import SERVER_TYPE

from collector.datastores.common import Check, CheckFailed, mask_argv, mask_secrets, ms_since
from collector.plain import one_line
from collector.redact import redact_structure

LONG_OP_SECONDS = 30
MAX_DATABASES = 500
MAX_OPS = 50
AUTH_FAILED = 18
UNAUTHORIZED = 13


def _plain(value: Any) -> Any:
    """BSON values as JSON-friendly ones (dates as ISO text, timestamps as seconds)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    time_attr = getattr(value, "time", None)
    if isinstance(time_attr, int) and hasattr(value, "inc"):  # bson.Timestamp
        return {"t": time_attr, "i": value.inc}
    return str(value)


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return _plain(doc)


def _pick(doc: Any, keys) -> Optional[dict]:
    if not isinstance(doc, dict):
        return None
    return {k: _plain(doc[k]) for k in keys if k in doc}


def _operation_timeout(seconds: float):
    timeout = getattr(pymongo, "timeout", None)  # pymongo 4.2+
    return timeout(seconds) if timeout is not None else contextlib.nullcontext()


class _Mongo:
    def __init__(self, chk: Check):
        self.chk = chk
        ep = chk.endpoint
        ms = max(10, int(chk.remaining() * 1000))
        kwargs: Dict[str, Any] = dict(
            host=ep.host, port=ep.port, directConnection=True, connect=True, appname="akdiag",
            serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms, retryReads=False,
            retryWrites=False, maxPoolSize=1, tz_aware=False,
        )
        if ep.user and ep.password():
            kwargs.update(username=ep.user, password=ep.password(),
                          authSource=ep.options.get("auth_source") or "admin")
        self.client = pymongo.MongoClient(**kwargs)
        chk.on_cleanup(self.client.close)
        self.admin = self.client.admin

    def wait_for_handshake(self) -> None:
        """Wait until the client's monitor has heard the server (or failed to): a server
        that closes the connection or answers garbage fails here at once instead of after
        the whole server-selection timeout."""
        chk = self.chk
        chk.phase = "MongoDB handshake"
        while not chk.out_of_time():
            try:
                descriptions = list(self.client.topology_description.server_descriptions().values())
            except Exception:
                return
            if any(d.server_type != SERVER_TYPE.Unknown for d in descriptions):
                return
            error = next((d.error for d in descriptions if d.error is not None), None)
            if error is not None:
                raise self._failure(error, "MongoDB handshake")
            time.sleep(0.01)
        raise CheckFailed("timeout", chk.timeout_message("MongoDB handshake"))

    def command(self, name: str, spec: dict, required: bool = False) -> Optional[dict]:
        """Run one admin command.  A refusal is recorded for this command (None comes
        back); losing the server or the time ends the check."""
        chk = self.chk
        chk.phase = name
        if chk.out_of_time():
            raise CheckFailed("timeout", chk.timeout_message(name))
        try:
            with _operation_timeout(chk.remaining()):
                return self.admin.command(spec)
        except mongo_errors.OperationFailure as exc:
            if exc.code == AUTH_FAILED:
                ep = chk.endpoint
                raise CheckFailed("auth_failed", f"authentication failed for user {ep.user} "
                                                 f"(authSource {ep.options.get('auth_source') or 'admin'}) "
                                                 f"on {ep.address}") from None
            if isinstance(exc, mongo_errors.ExecutionTimeout) or exc.code == 50:
                raise CheckFailed("timeout", chk.timeout_message(name)) from None
            message = self._refusal(exc)
            if required:
                status = "auth_failed" if exc.code == UNAUTHORIZED else "error"
                raise CheckFailed(status, f"{name} refused on {chk.endpoint.address}: {message}") from None
            chk.command_error(name, message)
            return None
        except Exception as exc:
            raise self._failure(exc, name) from None

    @staticmethod
    def _refusal(exc: mongo_errors.OperationFailure) -> str:
        details = exc.details or {}
        errmsg = one_line(details.get("errmsg") or str(exc).split(", full error:")[0], 200)
        code_name = details.get("codeName")
        code = f"{code_name}, code {exc.code}" if code_name else f"code {exc.code}"
        return f"{errmsg} ({code})"

    def _failure(self, exc: BaseException, what: str) -> CheckFailed:
        chk = self.chk
        where = chk.endpoint.address
        if isinstance(exc, mongo_errors.ServerSelectionTimeoutError):
            # no usable server: what the client's monitor last saw says why
            seen = self._monitor_error()
            if seen is None:
                return CheckFailed("timeout", chk.timeout_message("MongoDB handshake"))
            exc, what = seen, "MongoDB handshake"
        text = str(exc).lower()
        if isinstance(exc, mongo_errors.NetworkTimeout) or "timed out" in text:
            return CheckFailed("timeout", chk.timeout_message(what))
        if isinstance(exc, mongo_errors.ConfigurationError) and ("wire version" in text or "requires" in text):
            return CheckFailed("error", f"{where} runs a MongoDB this client cannot talk to ({one_line(exc, 160)})")
        if isinstance(exc, mongo_errors.OperationFailure):
            return CheckFailed("error", f"{where} refused the MongoDB handshake: {self._refusal(exc)}")
        if "refused" in text:
            return CheckFailed("unreachable", f"connection refused on {where}")
        if isinstance(exc, (mongo_errors.ProtocolError, BSONError)) or any(
                word in text for word in ("message length", "opcode", "bson", "protocol")):
            return CheckFailed("error", f"{where} did not answer in the MongoDB wire protocol ({what})")
        if isinstance(exc, (mongo_errors.AutoReconnect, ConnectionError)) or "closed" in text or "reset" in text:
            return CheckFailed("error", f"{where} closed the connection without a MongoDB reply ({what})")
        return CheckFailed("error", f"{what} on {where} failed: {type(exc).__name__}: {one_line(exc, 160)}")

    def _monitor_error(self) -> Optional[BaseException]:
        try:
            descriptions = self.client.topology_description.server_descriptions()
        except Exception:
            return None
        for description in descriptions.values():
            if description.error is not None:
                return description.error
        return None


def _server_status(doc: dict) -> dict:
    cache = _get(doc, "wiredTiger", "cache") or {}
    return {
        "host": _get(doc, "host"),
        "version": _get(doc, "version"),
        "process": _get(doc, "process"),
        "pid": _get(doc, "pid"),
        "uptime_s": _get(doc, "uptime"),
        "local_time": _get(doc, "localTime"),
        "connections": _pick(doc.get("connections"), ("current", "available", "totalCreated", "active",
                                                        "rejected")),
        "memory_mb": _pick(doc.get("mem"), ("bits", "resident", "virtual", "supported")),
        "opcounters": _pick(doc.get("opcounters"), ("insert", "query", "update", "delete", "getmore", "command")),
        "asserts": _pick(doc.get("asserts"), ("regular", "warning", "msg", "user", "tripwire", "rollovers")),
        "wiredtiger_cache": {
            "used_bytes": cache.get("bytes currently in the cache"),
            "dirty_bytes": cache.get("tracked dirty bytes in the cache"),
            "max_bytes": cache.get("maximum bytes configured"),
        } if cache else None,
        "global_lock": {
            "current_queue": _pick(_get(doc, "globalLock", "currentQueue"), ("total", "readers", "writers")),
            "active_clients": _pick(_get(doc, "globalLock", "activeClients"), ("total", "readers", "writers")),
        } if isinstance(doc.get("globalLock"), dict) else None,
        "storage_engine": _get(doc, "storageEngine", "name"),
        "repl": _pick(doc.get("repl"), ("setName", "isWritablePrimary", "ismaster", "secondary", "primary", "me")),
    }


_EPOCH_DAY = datetime.datetime(1970, 1, 2)


def _optime_date(member: dict) -> Optional[datetime.datetime]:
    """The member's last applied operation time; None when unknown (an unreachable
    member reports the epoch)."""
    value = member.get("optimeDate")
    if isinstance(value, datetime.datetime):
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    else:
        optime = member.get("optime")
        ts = optime.get("ts") if isinstance(optime, dict) else None
        seconds = getattr(ts, "time", None)
        value = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds) \
            if isinstance(seconds, int) else None
    if value is None or value < _EPOCH_DAY:
        return None
    return value


def _repl_status(doc: dict) -> dict:
    members = [m for m in doc.get("members") or [] if isinstance(m, dict)]
    primary = next((m for m in members if m.get("stateStr") == "PRIMARY" or m.get("state") == 1), None)
    primary_date = _optime_date(primary) if primary else None
    out: List[dict] = []
    for member in members:
        date = _optime_date(member)
        lag = None
        if primary_date is not None and date is not None:
            lag = round(max(0.0, (primary_date - date).total_seconds()), 3)
        out.append({
            "name": _plain(member.get("name")),
            "state": _plain(member.get("stateStr")),
            "state_code": _plain(member.get("state")),
            "health": _plain(member.get("health")),
            "self": bool(member.get("self", False)),
            "optime_date": _plain(date),
            "lag_s": lag,
            "uptime_s": _plain(member.get("uptime")),
            "sync_source": _plain(member.get("syncSourceHost") or member.get("syncingTo")),
            "last_heartbeat_message": _plain(member.get("lastHeartbeatMessage")) or None,
        })
    lags = [m["lag_s"] for m in out if m["lag_s"] is not None]
    return {
        "set": _plain(doc.get("set")),
        "my_state": _plain(doc.get("myState")),
        "primary": _plain(primary.get("name")) if primary else None,
        "max_lag_s": max(lags) if lags else None,
        "members": out,
    }


def _databases(doc: dict) -> dict:
    databases = [d for d in doc.get("databases") or [] if isinstance(d, dict)]
    databases.sort(key=lambda d: -(d.get("sizeOnDisk") or 0))
    return {
        "count": len(databases),
        "total_size_bytes": _plain(doc.get("totalSize")),
        "databases": [{"name": _plain(d.get("name")), "size_on_disk": _plain(d.get("sizeOnDisk")),
                       "empty": _plain(d.get("empty"))} for d in databases[:MAX_DATABASES]],
        "truncated": len(databases) > MAX_DATABASES,
    }


def _op_seconds(op: dict) -> Optional[float]:
    if isinstance(op.get("secs_running"), (int, float)):
        return float(op["secs_running"])
    if isinstance(op.get("microsecs_running"), (int, float)):
        return op["microsecs_running"] / 1e6
    return None


def _long_operations(doc: dict) -> dict:
    """Operations running longer than LONG_OP_SECONDS: what they are and how long they
    run, never the values of their queries (names of the fields only)."""
    ops = [op for op in doc.get("inprog") or [] if isinstance(op, dict)]
    long_ops = [op for op in ops if (_op_seconds(op) or 0) > LONG_OP_SECONDS]
    long_ops.sort(key=lambda op: -(_op_seconds(op) or 0))
    summary = []
    for op in long_ops[:MAX_OPS]:
        command = op.get("command") if isinstance(op.get("command"), dict) else {}
        command_name = next(iter(command), None)
        query = command.get("filter") or command.get("q") or command.get("query")
        summary.append({
            "opid": _plain(op.get("opid")),
            "secs_running": _op_seconds(op),
            "op": _plain(op.get("op")),
            "ns": _plain(op.get("ns")),
            "desc": _plain(op.get("desc")),
            "client": _plain(op.get("client") or op.get("client_s")),
            "app_name": _plain(op.get("appName")),
            "command": command_name,
            "command_fields": [str(k) for k in command][:30],
            "filter_fields": [str(k) for k in query][:30] if isinstance(query, dict) else None,
            "plan_summary": _plain(op.get("planSummary")),
            "waiting_for_lock": _plain(op.get("waitingForLock")),
        })
    return {"threshold_s": LONG_OP_SECONDS, "count": len(long_ops), "inspected": len(ops),
            "operations": summary, "truncated": len(long_ops) > MAX_OPS}


def _host_info(doc: dict) -> dict:
    return {
        "system": _pick(doc.get("system"), ("hostname", "cpuAddrSize", "memSizeMB", "memLimitMB", "numCores",
                                              "numPhysicalCores", "cpuArch", "numaEnabled")),
        "os": _pick(doc.get("os"), ("type", "name", "version")),
        "extra": _pick(doc.get("extra"), ("versionString", "libcVersion", "kernelVersion", "cpuFrequencyMHz",
                                            "maxOpenFiles", "pageSize", "numPages")),
    }


def _cmdline(doc: dict) -> dict:
    argv = doc.get("argv") if isinstance(doc.get("argv"), list) else []
    parsed = doc.get("parsed") if isinstance(doc.get("parsed"), dict) else {}
    return {"argv": mask_argv([str(a) for a in argv]), "parsed": mask_secrets(redact_structure(_plain(parsed)))}


def check(chk: Check) -> None:
    mongo = _Mongo(chk)
    mongo.wait_for_handshake()
    ep = chk.endpoint
    if ep.user and not ep.password():
        chk.note(f"main.json gives user {ep.user} but no password: connected without authentication")
    chk.detail("auth", "user " + ep.user if ep.user and ep.password() else "none")
    started = time.monotonic()
    mongo.command("ping", {"ping": 1}, required=True)
    chk.set("latency_ms", ms_since(started))

    build = mongo.command("buildInfo", {"buildInfo": 1})
    if build:
        chk.set("version", _get(build, "version"))
        chk.detail("build_info", {"version": _get(build, "version"), "git_version": _get(build, "gitVersion"),
                                  "modules": _get(build, "modules"), "allocator": _get(build, "allocator"),
                                  "bits": _get(build, "bits"), "debug": _get(build, "debug"),
                                  "storage_engines": _get(build, "storageEngines"),
                                  "openssl": _get(build, "openssl", "running")})
    status = mongo.command("serverStatus", {"serverStatus": 1, "metrics": 0, "locks": 0})
    if status:
        summary = _server_status(status)
        chk.detail("server_status", summary)
        if chk.record.get("version") is None:
            chk.set("version", summary.get("version"))
    repl = mongo.command("replSetGetStatus", {"replSetGetStatus": 1})
    if repl:
        chk.detail("replica_set", _repl_status(repl))
    dbs = mongo.command("listDatabases", {"listDatabases": 1, "nameOnly": False})
    if dbs:
        chk.detail("databases", _databases(dbs))
    ops = mongo.command("currentOp", {"currentOp": 1, "active": True, "secs_running": {"$gt": LONG_OP_SECONDS}})
    if ops:
        chk.detail("long_operations", _long_operations(ops))
    host = mongo.command("hostInfo", {"hostInfo": 1})
    if host:
        chk.detail("host_info", _host_info(host))
    opts = mongo.command("getCmdLineOpts", {"getCmdLineOpts": 1})
    if opts:
        chk.detail("command_line", _cmdline(opts))
