"""MongoDB stand-ins: PyPI's mockupdb driven by the real pymongo, answering OP_MSG
commands with one responder keyed on the lower-cased command name, with replies shaped
as MongoDB's reference documentation shows them."""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, Iterable, Optional, Union

from bson import Int64, Timestamp
from mockupdb import MockupDB

WIRE_VERSION = 21
NOW = datetime.datetime(2026, 11, 29, 12, 0, 0)
LAG_SECONDS = 45


def hello(replica_set: Optional[str] = None) -> dict:
    doc = {"ismaster": True, "isWritablePrimary": True, "maxBsonObjectSize": 16777216,
           "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000, "localTime": NOW,
           "logicalSessionTimeoutMinutes": 30, "connectionId": 7, "minWireVersion": 0,
           "maxWireVersion": WIRE_VERSION, "readOnly": False}
    if replica_set:
        doc.update(setName=replica_set, setVersion=3, hosts=["db1:27017", "db2:27017", "db3:27017"],
                   primary="db1:27017", me="db1:27017", secondary=False)
    return doc


BUILD_INFO = {
    "version": "7.0.14", "gitVersion": "ce59cfc6a3c5e5c067dca0d30697edd68d4f5188", "modules": [],
    "allocator": "tcmalloc", "javascriptEngine": "mozjs", "sysInfo": "deprecated",
    "versionArray": [7, 0, 14, 0], "openssl": {"running": "OpenSSL 3.0.2 15 Mar 2022",
                                               "compiled": "OpenSSL 3.0.2 15 Mar 2022"},
    "buildEnvironment": {"distmod": "ubuntu2204", "distarch": "x86_64", "target_arch": "x86_64"},
    "bits": 64, "debug": False, "maxBsonObjectSize": 16777216, "storageEngines": ["devnull", "wiredTiger"],
}

SERVER_STATUS = {
    "host": "db1:27017", "version": "7.0.14", "process": "mongod", "pid": Int64(2112),
    "uptime": 86400.0, "uptimeMillis": Int64(86400000), "uptimeEstimate": Int64(86400), "localTime": NOW,
    "asserts": {"regular": 0, "warning": 0, "msg": 0, "user": 12, "tripwire": 0, "rollovers": 0},
    "connections": {"current": 25, "available": 838835, "totalCreated": 1200, "rejected": 0, "active": 5,
                    "threaded": 25, "exhaustIsMaster": 0, "exhaustHello": 2, "awaitingTopologyChanges": 2},
    "globalLock": {"totalTime": Int64(86400000000), "currentQueue": {"total": 3, "readers": 1, "writers": 2},
                   "activeClients": {"total": 4, "readers": 2, "writers": 2}},
    "mem": {"bits": 64, "resident": 1024, "virtual": 3072, "supported": True},
    "opcounters": {"insert": Int64(100), "query": Int64(2000), "update": Int64(300), "delete": Int64(10),
                   "getmore": Int64(50), "command": Int64(10000)},
    "storageEngine": {"name": "wiredTiger", "supportsCommittedReads": True, "persistent": True},
    "wiredTiger": {"cache": {"bytes currently in the cache": Int64(734003200),
                             "maximum bytes configured": Int64(8053063680),
                             "tracked dirty bytes in the cache": Int64(1048576),
                             "pages read into cache": Int64(1234)}},
}


def repl_set_status() -> dict:
    def member(_id, name, state, state_str, optime, health=1, **extra):
        return {"_id": _id, "name": name, "health": health, "state": state, "stateStr": state_str, "uptime": 3600,
                "optime": {"ts": Timestamp(int((optime - datetime.datetime(1970, 1, 1)).total_seconds()), 1),
                           "t": Int64(5)},
                "optimeDate": optime, "lastHeartbeatMessage": "", "syncSourceHost": "", "syncSourceId": -1,
                "configVersion": 3, "configTerm": 5, **extra}
    return {
        "set": "rs0", "date": NOW, "myState": 1, "term": Int64(5), "heartbeatIntervalMillis": Int64(2000),
        "members": [
            member(0, "db1:27017", 1, "PRIMARY", NOW, self=True),
            member(1, "db2:27017", 2, "SECONDARY", NOW - datetime.timedelta(seconds=LAG_SECONDS),
                   syncSourceHost="db1:27017", syncSourceId=0),
            member(2, "db3:27017", 8, "(not reachable/healthy)", datetime.datetime(1970, 1, 1), health=0,
                   lastHeartbeatMessage="Couldn't get a connection within the time limit"),
        ],
    }


LIST_DATABASES = {
    "databases": [
        {"name": "admin", "sizeOnDisk": Int64(40960), "empty": False},
        {"name": "altcraft_system", "sizeOnDisk": Int64(2147483648), "empty": False},
        {"name": "altcraft_account_1", "sizeOnDisk": Int64(536870912), "empty": False},
        {"name": "local", "sizeOnDisk": Int64(73728), "empty": False},
    ],
    "totalSize": Int64(2684469248), "totalSizeMb": Int64(2560),
}

SECRET_EMAIL = "alice.secret@example.com"

CURRENT_OP = {
    "inprog": [
        {"type": "op", "host": "db1:27017", "desc": "conn123", "connectionId": 123, "client": "10.0.0.5:51234",
         "appName": "AK:procworkflow", "active": True, "opid": 4567, "secs_running": Int64(95),
         "microsecs_running": Int64(95000000), "op": "query", "ns": "altcraft_system.subscribers",
         "command": {"find": "subscribers", "filter": {"email": SECRET_EMAIL, "status": 1},
                     "$db": "altcraft_system"},
         "planSummary": "COLLSCAN", "numYields": 100, "waitingForLock": False},
        {"type": "op", "host": "db1:27017", "desc": "conn124", "connectionId": 124, "client": "10.0.0.6:40000",
         "active": True, "opid": 4568, "secs_running": Int64(2), "microsecs_running": Int64(2000000),
         "op": "update", "ns": "altcraft_system.tasks",
         "command": {"q": {"_id": 1}, "u": {"$set": {"state": "done"}}}, "waitingForLock": False},
    ],
}

HOST_INFO = {
    "system": {"currentTime": NOW, "hostname": "db1", "cpuAddrSize": 64, "memSizeMB": Int64(16000),
               "memLimitMB": Int64(16000), "numCores": 8, "numPhysicalCores": 4, "numCpuSockets": 1,
               "cpuArch": "x86_64", "numaEnabled": False},
    "os": {"type": "Linux", "name": "Ubuntu", "version": "22.04"},
    "extra": {"versionString": "Linux version 5.15.0-91-generic", "libcVersion": "2.35",
              "kernelVersion": "5.15.0-91-generic", "cpuFrequencyMHz": "2400.000", "pageSize": Int64(4096),
              "numPages": 4000000, "maxOpenFiles": 64000},
}

PEM_SECRET = "pem-pass-8d1f"
TLS_SECRET = "tls-pass-3c9a"
CMD_LINE_OPTS = {
    "argv": ["/usr/bin/mongod", "--config", "/etc/mongod.conf", "--sslPEMKeyPassword", PEM_SECRET],
    "parsed": {"config": "/etc/mongod.conf",
               "net": {"bindIp": "127.0.0.1", "port": 27017, "tls": {"certificateKeyFilePassword": TLS_SECRET}},
               "security": {"authorization": "enabled", "keyFile": "/etc/mongo.key"},
               "storage": {"dbPath": "/var/lib/mongodb"}},
}

UNAUTHORIZED = {"ok": 0, "errmsg": "not authorized on admin to execute command { hostInfo: 1, $db: \"admin\" }",
                "code": 13, "codeName": "Unauthorized"}
NOT_REPLICA_SET = {"ok": 0, "errmsg": "not running with --replSet", "code": 76,
                   "codeName": "NoReplicationEnabled"}
AUTH_FAILED = {"ok": 0, "errmsg": "Authentication failed.", "code": 18, "codeName": "AuthenticationFailed"}

Reply = Union[dict, Callable[[Any], dict]]


def default_replies(replica_set: bool = True) -> Dict[str, Reply]:
    return {
        "ping": {},
        "buildinfo": BUILD_INFO,
        "serverstatus": SERVER_STATUS,
        "replsetgetstatus": repl_set_status() if replica_set else NOT_REPLICA_SET,
        "listdatabases": LIST_DATABASES,
        "currentop": CURRENT_OP,
        "hostinfo": HOST_INFO,
        "getcmdlineopts": CMD_LINE_OPTS,
        "endsessions": {},
    }


class MongoStandIn:
    """mockupdb on 127.0.0.1 and a free port; `replies` maps a lower-cased command name
    to its reply document (ok: 1 is added unless the document says ok: 0)."""

    def __init__(self, replies: Optional[Dict[str, Reply]] = None, refuse: Iterable[str] = (),
                 replica_set: bool = True):
        self.replies = default_replies(replica_set) if replies is None else dict(replies)
        for name in refuse:
            self.replies[name.lower()] = UNAUTHORIZED
        self.replica_set = replica_set
        self.seen: list = []
        self.server = MockupDB(auto_ismaster=True, max_wire_version=WIRE_VERSION, port=0)
        self.server._address = ("127.0.0.1", 0)  # mockupdb binds "localhost" otherwise
        self.server.autoresponds(self._respond)

    def _respond(self, request) -> bool:
        doc = request.doc or {}
        name = next(iter(doc), "").lower()
        self.seen.append(name)
        if name in ("ismaster", "hello"):
            return request.reply(hello("rs0" if self.replica_set else None))
        if name in ("saslstart", "saslcontinue", "authenticate"):
            return request.reply(AUTH_FAILED)  # SCRAM is not simulated: every login fails
        reply = self.replies.get(name)
        if reply is None:
            return request.reply({"ok": 0, "errmsg": f"no such command: '{name}'", "code": 59,
                                  "codeName": "CommandNotFound"})
        if callable(reply):
            reply = reply(request)
        doc = dict(reply)
        doc.setdefault("ok", 1)
        return request.reply(doc)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> "MongoStandIn":
        self.server.run()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> "MongoStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
