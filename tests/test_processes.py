"""Processes, PID files and ports against real simulated processes."""

from __future__ import annotations

import os

import psutil

from collector.live import matches_title
from conftest import collect_bundle, expected_by_name
from procfaults import unreaped_child

ONLY = ("processes", "pidfiles", "ports")


def _collect(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=ONLY, cpu_sample_seconds=0.1)
    return reader, expected_by_name(reader)


def test_running_process_with_its_pidfile_and_port(host, tmp_path):
    host.start(["api"])
    reader, procs = _collect(host, tmp_path)
    api = procs["api"]
    assert api["status"] == "running"
    assert api["pids"] == [host.processes["api"].pid]
    assert api["pidfile"]["state"] == "ok" and api["pidfile"]["pid"] == host.processes["api"].pid
    assert api["port"]["state"] == "listening"
    assert api["port"]["expected"] == host.ports["api"]
    res = api["resources"][0]
    assert res["rss"] > 1_000_000 and res["threads"] >= 1
    assert res["open_files"] >= 3 and res["open_files_limit"] > 0
    assert res["cmdline"].startswith("AK:api")
    assert res["exe"] == str(host.basedir / "ak" / "bin" / "api")
    assert "LISTEN" in res["connections"]


def test_pidfile_missing(host, tmp_path):
    host.start(["api"])
    (host.basedir / "pids" / "api.pid").unlink()
    _reader, procs = _collect(host, tmp_path)
    assert procs["api"]["status"] == "running"
    assert procs["api"]["pidfile"]["state"] == "missing"


def test_pidfile_unreadable(host, tmp_path):
    (host.basedir / "pids" / "api.pid").mkdir()  # root reads any file: a folder cannot be read as one
    _reader, procs = _collect(host, tmp_path)
    assert procs["api"]["pidfile"]["state"] == "unreadable"
    assert procs["api"]["pidfile"]["detail"] == "directory"


def test_pidfile_invalid(host, tmp_path):
    host.write_pidfile("api", "not-a-pid")
    reader, procs = _collect(host, tmp_path)
    assert procs["api"]["pidfile"]["state"] == "invalid"
    listed = {f["name"]: f for f in reader.json("pidfiles.json")["files"]}
    assert listed["api.pid"]["state"] == "invalid"


def test_pidfile_stale_and_process_down(host, tmp_path):
    host.start(["proctrigger"])
    pid = host.stop_process("proctrigger")
    assert not psutil.pid_exists(pid)
    _reader, procs = _collect(host, tmp_path)
    assert procs["proctrigger"]["status"] == "down"
    assert procs["proctrigger"]["pidfile"]["state"] == "stale"
    assert procs["proctrigger"]["pidfile"]["pid"] == pid


def test_pidfile_reused_by_another_program(host, tmp_path):
    foreign = host.start_foreign(port=0, title="postgres")
    host.write_pidfile("api", str(foreign.pid))
    _reader, procs = _collect(host, tmp_path)
    assert procs["api"]["status"] == "down"
    assert procs["api"]["pidfile"]["state"] == "reused"
    assert procs["api"]["pidfile"]["owner_name"] == "postgres"


def test_port_not_listening(host, tmp_path):
    host.ports["api"] = None  # start it without a port
    host.start(["api"])
    _reader, procs = _collect(host, tmp_path)
    assert procs["api"]["status"] == "running"
    assert procs["api"]["port"]["state"] == "not_listening"


def test_port_conflict_names_the_holder(host, tmp_path):
    foreign = host.start_foreign(host.ports["trkread"], title="foreign-httpd")
    host.start(["trkread"])  # cannot bind: the foreign program holds the port
    _reader, procs = _collect(host, tmp_path)
    port = procs["trkread"]["port"]
    assert procs["trkread"]["status"] == "running"
    assert port["state"] == "conflict"
    assert port["owner_pid"] == foreign.pid
    assert port["owner_name"] == "foreign-httpd"


def test_title_truncated_to_15_bytes_in_comm(host, tmp_path):
    # argv[0] is a path here, so only the kernel's truncated comm carries the title
    proc = host.start_extra("trk_amazon_sns", argv0=str(host.basedir / "ak" / "bin" / "trk_amazon_sns"))
    assert psutil.Process(proc.pid).name() == "AK:trk_amazon_s"
    _reader, procs = _collect(host, tmp_path)
    assert procs["trk_amazon_sns"]["pids"] == [proc.pid]
    assert procs["trk_amazon_sns"]["status"] == "running"


def test_truncated_comm_does_not_match_a_different_full_title():
    assert matches_title("AK:trk_amazon_sns", ["AK:trk_amazon_sns"], "AK:trk_amazon_s")
    assert matches_title("AK:trk_amazon_sns", ["/opt/akd/ak/bin/x"], "AK:trk_amazon_s")
    assert not matches_title("AK:trk_amazon_sns", ["AK:trk_amazon_sqs"], "AK:trk_amazon_s")
    assert not matches_title("AK:api", ["AK:apiserver"], "AK:apiserver")


def test_several_pids_for_one_title(host, tmp_path):
    host.start(["procworkflow"])
    second = host.start_extra("procworkflow")
    _reader, procs = _collect(host, tmp_path)
    record = procs["procworkflow"]
    assert sorted(record["pids"]) == sorted([host.processes["procworkflow"].pid, second.pid])
    assert len(record["resources"]) == 2


def test_remote_capable_and_retired_processes_are_absent_not_down(host, tmp_path):
    _reader, procs = _collect(host, tmp_path)
    assert procs["akmtad"]["status"] == "absent"  # remote-capable
    assert procs["procnotify"]["status"] == "absent"  # retired in v2024.2.68.2.2206
    assert procs["api"]["status"] == "down"


def test_secrets_on_command_lines_are_redacted(host, tmp_path):
    marker = "Zq7-cmdline-secret"
    proc = host.start_extra("api", extra_args=["--password", marker, f"--password={marker}", f"-p{marker}",
                                               f"mongodb://altcraft:{marker}@127.0.0.1:27017/admin"])
    _result, reader = collect_bundle(host, tmp_path / "out", only=ONLY, cpu_sample_seconds=0.1)
    for path in reader.root.rglob("*"):
        if path.is_file():
            assert marker not in path.read_text(errors="replace"), path
    rows = {r["pid"]: r for r in reader.json("processes.json")["all"]}
    assert "--password <redacted>" in rows[proc.pid]["cmdline"]
    assert "mongodb://altcraft:<redacted>@127.0.0.1" in rows[proc.pid]["cmdline"]


def test_every_listening_port_is_listed_with_its_process(host, tmp_path):
    host.start(["api", "webcontrol"])
    reader, _procs = _collect(host, tmp_path)
    listening = reader.json("ports.json")["listening"]
    mine = {s["port"]: s for s in listening if s["pid"] in (host.processes["api"].pid, host.processes["webcontrol"].pid)}
    assert mine[host.ports["api"]]["process"] == "AK:api"
    assert mine[host.ports["webcontrol"]]["protocol"] == "tcp"


def test_pidfiles_lists_files_outside_the_catalog(host, tmp_path):
    (host.basedir / "pids" / "custom_worker.pid").write_text(f"{os.getpid()}\n")
    reader, _procs = _collect(host, tmp_path)
    listed = {f["name"]: f for f in reader.json("pidfiles.json")["files"]}
    assert listed["custom_worker.pid"]["catalog"] is False
    assert listed["custom_worker.pid"]["state"] == "reused"  # this test's PID is not AK:custom_worker


def test_a_title_whose_only_pid_is_a_zombie_is_down_naming_it_and_its_parent(host, tmp_path):
    parent, zombie = unreaped_child(host.basedir, "proctask", "procpush")
    try:
        host.write_pidfile("procpush", str(zombie))
        _reader, procs = _collect(host, tmp_path)
    finally:
        parent.stop()
    record = procs["procpush"]
    assert record["status"] == "down"
    assert record["pids"] == [] and record["resources"] == []
    assert record["zombies"] == [{"pid": zombie, "ppid": parent.pid, "parent_name": "AK:proctask",
                                  "started_at": record["zombies"][0]["started_at"]}]
    assert record["note"] == f"exited; PID {zombie} is a zombie that its parent {parent.pid} (AK:proctask) never reaped"
    pidfile = record["pidfile"]
    assert pidfile["state"] == "stale" and pidfile["zombie"]["ppid"] == parent.pid
    assert pidfile["detail"] == (f"process {zombie} is a zombie: it exited and its parent {parent.pid} "
                                 "(AK:proctask) never reaped it")
    assert procs["proctask"]["status"] == "running"


def test_a_pidfile_naming_a_process_gone_for_good_stays_plainly_stale(host, tmp_path):
    host.write_pidfile("procpush", str(host.dead_pid()))
    _reader, procs = _collect(host, tmp_path)
    assert procs["procpush"]["pidfile"]["state"] == "stale"
    assert "zombie" not in procs["procpush"]["pidfile"] and procs["procpush"]["zombies"] == []


def test_a_pidfile_is_judged_alike_from_the_runs_process_table_and_from_proc(host, tmp_path):
    """live.pidfile_state given the run's read of /proc (as the collectors give it) says
    what it says reading each PID on its own: ok, reused, stale, a zombie, invalid, missing."""
    from collector import live, proctable
    from collector.cmdline import CmdlineReader

    host.start(["api"])
    foreign = host.start_foreign(port=0, title="postgres")
    parent, zombie = unreaped_child(host.basedir, "proctask", "procpush")
    try:
        pids = host.basedir / "pids"
        host.write_pidfile("procpush", str(zombie))
        (pids / "foreign.pid").write_text(f"{foreign.pid}\n")
        (pids / "gone.pid").write_text(f"{host.dead_pid()}\n")
        (pids / "bad.pid").write_text("12ab\n")
        table = proctable.read_table()
        reader = CmdlineReader()
        for pid, row in table.items():
            row["cmdline"] = reader.read(pid)
        cases = [("api.pid", "AK:api", "ok"), ("procpush.pid", "AK:procpush", "stale"),
                 ("foreign.pid", "AK:api", "reused"), ("gone.pid", "AK:api", "stale"),
                 ("bad.pid", "AK:api", "invalid"), ("none.pid", "AK:api", "missing")]
        for name, title, state in cases:
            alone = live.pidfile_state(pids / name, title, host.basedir)
            shared = live.pidfile_state(pids / name, title, host.basedir, table)
            assert shared == alone and alone["state"] == state, (name, alone, shared)
        api = host.processes["api"].pid
        told = {**table, api: dict(table[api], status=psutil.STATUS_ZOMBIE)}  # the row is what is read
        assert live.pidfile_state(pids / "api.pid", "AK:api", host.basedir, told)["state"] == "stale"
    finally:
        parent.stop()
