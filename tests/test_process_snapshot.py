"""One read of /proc per run, shared by the collectors that look at the host's processes
(processes, services, the datastores' log folders), against real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from collector import live
from collector.bundle.writer import BundleWriter
from collector.catalog import load_catalog
from collector.collectors import logs, processes, services
from collector.context import CollectOptions, Context, Deadline, ProcessSnapshot
from collector.datastore_logs import _pids_by_comm, _process_configs
from collector.redact import Scrubber

# a process that names itself kvrocks (its comm) and a config on its command line, as a
# kvrocks server started with `kvrocks -c /etc/kvrocks/kvrocks.conf` shows itself
_NAMED = ("import sys, time\nopen('/proc/self/comm', 'w').write(sys.argv[1])\nprint('ready', flush=True)\n"
          "time.sleep(60)\n")


def _ctx(host, bundle: Path, name: str, snapshot: ProcessSnapshot) -> Context:
    return Context(basedir=host.basedir, basedir_source="test", catalog=load_catalog(host.catalog_file),
                   deadline=Deadline(30), writer=BundleWriter(bundle, Scrubber()).for_collector(name),
                   options=CollectOptions(cpu_sample_seconds=0.1), processes=snapshot)


def _platform_pids_by_psutil(basedir: Path) -> list:
    """What the services collector found before it used the run's table: psutil's scan."""
    akd = str(basedir / "akd")
    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        name = live.argv0_name(cmdline)
        if (name and name.startswith("AK:")) or (cmdline and cmdline[0] == akd):
            pids.append(proc.pid)
    return sorted(pids)


def test_the_collectors_of_a_run_read_proc_once(host, tmp_path):
    host.start(["api"])
    snapshot = ProcessSnapshot()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    results = {}

    def run(name, collect):
        results[name] = collect(_ctx(host, bundle, name, snapshot))

    threads = [threading.Thread(target=run, args=(name, collect)) for name, collect in
               (("processes", processes.collect), ("services", services.collect), ("logs", logs.collect))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert snapshot.reads == 1
    assert set(results) == {"processes", "services", "logs"}
    api = next(r for r in results["processes"]["expected"] if r["name"] == "api")
    assert api["status"] == "running" and api["pids"] == [host.processes["api"].pid]
    assert "cpu_percent" not in snapshot.table()[api["pids"][0]]  # the collector's rows are copies
    errors: list = []
    found = services._platform_pids(_ctx(host, bundle, "services", snapshot), errors)
    assert errors == [] and host.processes["api"].pid in found
    assert found == _platform_pids_by_psutil(host.basedir)


def test_a_servers_config_is_found_by_its_name_from_the_table_or_from_proc(tmp_path):
    script = tmp_path / "named.py"
    script.write_text(_NAMED)
    config = tmp_path / "kvrocks.conf"
    config.write_text("dir /var/lib/kvrocks\n")
    server = subprocess.Popen([sys.executable, str(script), "kvrocks", "-c", str(config)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        by_table = ProcessSnapshot().pids_by_name()
        by_proc = _pids_by_comm()
        assert server.pid in by_table.get("kvrocks", []) and server.pid in by_proc.get("kvrocks", [])
        assert _process_configs("kvrocks", "-c", by_table) == [str(config)]
        assert _process_configs("kvrocks", "-c", by_proc) == [str(config)]
        assert _process_configs("ssdb-server", None, by_table) == []
    finally:
        server.kill()
        server.wait()


def test_readers_in_threads_share_the_one_read():
    snapshot = ProcessSnapshot()
    seen = []
    readers = [threading.Thread(target=lambda: seen.append(snapshot.table())) for _ in range(6)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(30)
    assert snapshot.reads == 1 and len(seen) == 6 and all(table is seen[0] for table in seen)
    me = seen[0][os.getpid()]
    assert me["cmdline"] == psutil.Process().cmdline()
    assert abs(me["create_time"] - psutil.Process().create_time()) < 1.0


def test_a_table_not_read_is_not_read_for_who_only_would_use_it():
    """table_if_read (the pidfiles collector's): None at once when nobody reads /proc, the
    table once another has read it, and never a read of its own."""
    snapshot = ProcessSnapshot()
    assert snapshot.table_if_read(0.2) is None and snapshot.reads == 0
    table = snapshot.table()
    assert snapshot.table_if_read(0.0) is table and snapshot.reads == 1


def test_a_read_under_way_is_waited_for_within_the_bound():
    snapshot = ProcessSnapshot()
    reading, looked = threading.Event(), threading.Event()
    real_read = snapshot.cmdlines.read

    def slow_read(pid):  # the first reader holds the table's lock until the look below (a busy host's /proc)
        reading.set()
        looked.wait(10)
        return real_read(pid)

    snapshot.cmdlines.read = slow_read
    reader = threading.Thread(target=snapshot.table)
    reader.start()
    assert reading.wait(10)
    assert snapshot.table_if_read(0.0) is None  # under way, not waited for
    looked.set()
    found = snapshot.table_if_read(60.0)
    reader.join(30)
    assert found is not None and os.getpid() in found and snapshot.reads == 1
