"""The datastores' own logs (mongod, RabbitMQ, ClickHouse, SSDB, Kvrocks, Redis), found
by their real configuration files at their standard places, here below a fake host root
(collector.datastore_logs.HOST_ROOT), listed in logs/index.json under their own root."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest

from collector import datastore_logs
from collector.bundle.writer import BundleWriter
from collector.catalog import load_catalog
from collector.collectors import logs
from collector.context import CollectOptions, Context, Deadline
from collector.redact import Scrubber
from tests.conftest import collect_bundle
from triage_helpers import findings_of


@pytest.fixture
def hostroot(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "hostroot"
    root.mkdir()
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(datastore_logs, "HOST_ROOT", str(root))
    return root


def put(root: Path, path: str, data: bytes, mtime: float = None) -> Path:
    full = root / path.lstrip("/")
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_bytes(data)
    if mtime is not None:
        os.utime(full, (mtime, mtime))
    return full


def run(tmp_path: Path, **options) -> tuple:
    basedir = tmp_path / "akd"
    (basedir / "logs").mkdir(parents=True, exist_ok=True)
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    writer = BundleWriter(bundle, Scrubber())
    ctx = Context(basedir=basedir, basedir_source="test", catalog=load_catalog(), deadline=Deadline(60),
                  writer=writer.for_collector("logs"), options=CollectOptions(**options))
    return logs.collect(ctx), bundle


def root_named(index: dict, name: str) -> dict:
    return next(r for r in index["roots"] if r["name"] == name)


def file_in(root: dict, path: str) -> dict:
    return next(e for e in root["files"] if e["path"] == path)


MONGOD_CONF = b"""# mongod.conf, as the package ships it, log moved
storage:
  dbPath: /var/lib/mongodb
systemLog:
  destination: file
  logAppend: true
  path: /data/mongo-logs/mongod.log
net:
  port: 27017
  bindIp: 127.0.0.1
"""


def mongod_line(moment: float, n: int) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + ".000+00:00"
    return (b'{"t":{"$date":"%s"},"s":"I",  "c":"NETWORK",  "id":22943,   "ctx":"listener",'
            b'"msg":"Connection accepted","attr":{"connectionId":%d}}\n' % (stamp.encode(), n))


def test_mongod_log_found_by_its_config(tmp_path, hostroot):
    put(hostroot, "/etc/mongod.conf", MONGOD_CONF)
    put(hostroot, "/data/mongo-logs/mongod.log", b"".join(mongod_line(time.time() - 60 + n, n) for n in range(50)))
    put(hostroot, "/data/mongo-logs/mongod.log.2026-11-30T10-00-00", mongod_line(time.time() - 3600, 0))
    put(hostroot, "/data/mongo-logs/not-mongo.txt", b"other\n")
    index, bundle = run(tmp_path, log_lines=10)
    root = root_named(index, "mongodb")
    assert root["path"] == "/data/mongo-logs" and root["source"] == "/etc/mongod.conf systemLog.path"
    assert sorted(e["path"] for e in root["files"]) == ["mongod.log", "mongod.log.2026-11-30T10-00-00"]
    live = file_in(root, "mongod.log")
    assert live["tail"]["bundle_path"] == "logs/_datastores/mongodb/mongod.log" and live["tail"]["lines"] == 10
    assert (bundle / live["tail"]["bundle_path"]).read_bytes().endswith(b'"connectionId":49}}\n')
    assert file_in(root, "mongod.log.2026-11-30T10-00-00")["tail"] is None
    assert root["totals"]["tailed"] == 1 and index["errors"] == []


def test_kvrocks_ssdb_rabbitmq_and_clickhouse_by_their_configs(tmp_path, hostroot):
    put(hostroot, "/etc/kvrocks/kvrocks.conf", b"bind 127.0.0.1\nport 6666\ndir /var/lib/kvrocks\n"
                                                b"log-dir /data/kvlogs\nlog-level info\n")
    put(hostroot, "/data/kvlogs/kvrocks.INFO", b"I20261130 14:00:00.123456 1 server.cc:1] Ready\n")
    put(hostroot, "/data/kvlogs/000001.sst", b"data, not a log\n")
    put(hostroot, "/etc/ssdb/ssdb.conf", b"# ssdb-server config\nwork_dir = ./var\npidfile = ./var/ssdb.pid\n\n"
                                         b"server:\n\tip: 127.0.0.1\n\tport: 4420\n\nlogger:\n\tlevel: debug\n"
                                         b"\toutput: log.txt\n\trotate:\n\t\tsize: 1000000000\n")
    put(hostroot, "/etc/ssdb/var/log.txt", b"2026-11-30 14:00:00.123 [INFO ] ssdb-server 1.9.8\n")
    put(hostroot, "/var/log/rabbitmq/rabbit@app1.log", b"2026-11-30 14:00:00.123456+00:00 [info] <0.1.0> ready\n")
    put(hostroot, "/var/log/rabbitmq/rabbit@app1_upgrade.log", b"2026-11-30 14:00:00.1+00:00 [info] <0.1.0> x\n")
    put(hostroot, "/etc/clickhouse-server/config.xml",
        b"<clickhouse><logger><level>trace</level><log>/data/ch/server.log</log>"
        b"<errorlog>/data/ch/server.err.log</errorlog></logger></clickhouse>")
    put(hostroot, "/data/ch/server.log", b"2026.11.30 14:00:00.123456 [ 1 ] {} <Information> Ready\n")
    put(hostroot, "/data/ch/server.err.log", b"2026.11.30 14:00:00.123456 [ 1 ] {} <Error> boom\n")
    index, bundle = run(tmp_path)
    names = {r["name"]: r for r in index["roots"]}
    assert set(names) == {"kvrocks", "ssdb-4420", "rabbitmq", "clickhouse"}  # no mongod, no redis here
    assert [e["path"] for e in names["kvrocks"]["files"]] == ["kvrocks.INFO"]
    assert names["ssdb-4420"]["path"] == "/etc/ssdb/var" and names["ssdb-4420"]["files"][0]["state"] == "tailed"
    assert sorted(e["path"] for e in names["rabbitmq"]["files"]) == ["rabbit@app1.log", "rabbit@app1_upgrade.log"]
    assert names["rabbitmq"]["source"] == "standard place"
    assert sorted(e["path"] for e in names["clickhouse"]["files"]) == ["server.err.log", "server.log"]
    err = file_in(names["clickhouse"], "server.err.log")["tail"]["bundle_path"]
    assert (bundle / err).read_bytes().endswith(b"<Error> boom\n")


def test_no_datastore_folder_means_no_root(tmp_path, hostroot):
    index, _ = run(tmp_path)
    assert index["roots"] == [] and index["errors"] == []


def test_a_symlink_out_of_the_datastore_folder_is_not_followed(tmp_path, hostroot):
    secret = put(hostroot, "/etc/shadow-like", b"root:$6$secret-hash:19000:0:99999:7:::\n")
    (hostroot / "var/log/redis").mkdir(parents=True)
    os.symlink(str(secret), hostroot / "var/log/redis/redis-server.log")
    index, bundle = run(tmp_path)
    entry = file_in(root_named(index, "redis"), "redis-server.log")
    assert entry["tail"] is None and "outside" in entry["reason"]
    assert not list((bundle / "logs").rglob("redis-server.log"))


def test_a_config_owned_by_a_user_names_only_that_users_logs(tmp_path, hostroot):
    conf = put(hostroot, "/etc/redis/redis.conf", b'port 6379\nlogfile "/data/r/redis-server.log"\n')
    os.chown(conf, 65534, 65534)
    theirs = put(hostroot, "/data/r/redis-server.log", b"1:M 30 Nov 2026 14:00:00.123 * Ready\n")
    os.chown(theirs, 65534, 65534)
    index, _ = run(tmp_path)
    root = root_named(index, "redis")
    assert root["owner"] == 65534 and file_in(root, "redis-server.log")["state"] == "tailed"
    os.chown(theirs, 0, 0)  # now root's: the user's config cannot make akdiag read it
    index, _ = run(tmp_path)
    entry = file_in(root_named(index, "redis"), "redis-server.log")
    assert entry["tail"] is None and "not read" in entry["reason"]


def test_since_reaches_into_a_datastores_gzip_rotation(tmp_path, hostroot):
    put(hostroot, "/etc/mongod.conf", MONGOD_CONF)
    now = time.time()
    older = [mongod_line(now - 7200 + n * 10, n) for n in range(360)]  # two hours ago .. one hour ago
    newer = [mongod_line(now - 3600 + n * 10, 1000 + n) for n in range(360)]
    put(hostroot, "/data/mongo-logs/mongod.log.1.gz", gzip.compress(b"".join(older)), now - 3600)
    put(hostroot, "/data/mongo-logs/mongod.log", b"".join(newer), now)
    since = now - 5400 + 5  # half-way into the rotation, between two lines
    index, bundle = run(tmp_path, since=since)
    root = root_named(index, "mongodb")
    rotated, live = file_in(root, "mongod.log.1.gz"), file_in(root, "mongod.log")
    assert rotated["tail"]["bundle_path"] == "logs/_datastores/mongodb/mongod.log.1"
    got = (bundle / rotated["tail"]["bundle_path"]).read_bytes() + (bundle / live["tail"]["bundle_path"]).read_bytes()
    expected = b"".join(line for n, line in enumerate(older) if now - 7200 + n * 10 >= since) + b"".join(newer)
    assert got == expected and live["window"]["cut"] is False


def test_end_to_end_collect_lists_datastore_logs_under_their_root(host, tmp_path, hostroot):
    put(hostroot, "/etc/mongod.conf", MONGOD_CONF)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()).encode()
    failed = (b'{"t":{"$date":"%s.000+00:00"},"s":"E",  "c":"STORAGE",  "id":22435,   "ctx":"initandlisten",'
              b'"msg":"WiredTiger error","attr":{"error":28,"message":"No space left on device"}}\n' % stamp)
    put(hostroot, "/data/mongo-logs/mongod.log", mongod_line(time.time(), 1) + failed)
    _result, reader = collect_bundle(host, tmp_path / "out", only=("logs",))
    index = reader.json("logs/index.json")
    entry = file_in(root_named(index, "mongodb"), "mongod.log")
    assert reader.read(entry["tail"]["bundle_path"], 1 << 20).startswith(b'{"t":{"$date"')
    assert index["files"] is not None and "root" in index  # the BASEDIR root's fields stay where they were
    judged = [f for f in findings_of(reader) if f["id"] == "log.errors"]  # the analyzers read datastore logs too
    assert [f["subject"] for f in judged] == ["mongodb: mongod.log"], judged


_COLLECT_WITHOUT_DAC = """
import json, sys
from pathlib import Path
from collector import datastore_logs
from collector.bundle.writer import BundleWriter
from collector.catalog import load_catalog
from collector.collectors import logs
from collector.context import CollectOptions, Context, Deadline
from collector.redact import Scrubber
datastore_logs.HOST_ROOT = sys.argv[1]
writer = BundleWriter(Path(sys.argv[3]), Scrubber())
ctx = Context(basedir=Path(sys.argv[2]), basedir_source="test", catalog=load_catalog(), deadline=Deadline(30),
              writer=writer.for_collector("logs"), options=CollectOptions())
print(json.dumps(logs.collect(ctx)))
"""


def test_a_datastore_folder_it_may_not_read_is_a_recorded_error(tmp_path, hostroot):
    """Root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH meets file modes as any user does."""
    import json
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv(1) to drop the capabilities that bypass file modes")
    folder = hostroot / "var/log/mongodb"
    put(hostroot, "/var/log/mongodb/mongod.log", b"x\n")
    os.chown(folder, 65534, 65534)
    folder.chmod(0o700)
    (tmp_path / "akd" / "logs").mkdir(parents=True)
    (tmp_path / "bundle").mkdir()
    done = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-all",
                           sys.executable, "-c", _COLLECT_WITHOUT_DAC, str(hostroot), str(tmp_path / "akd"),
                           str(tmp_path / "bundle")], capture_output=True, text=True, timeout=60,
                          cwd=str(Path(__file__).resolve().parent.parent))
    assert done.returncode == 0, done.stderr
    index = json.loads(done.stdout)
    root = root_named(index, "mongodb")
    assert root["exists"] is False and root["files"] == []
    assert any("permission denied" in line for line in root["errors"])
    assert any(line.startswith("/var/log/mongodb") for line in index["errors"])  # the collector is partial
