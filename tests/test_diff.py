"""`akdiag diff` between two real bundles of the simulated host."""

from __future__ import annotations

import json
import secrets
import socket
from collections import Counter
from pathlib import Path

import pytest
import redis
import yaml

from collector.bundle.reader import BundleReader
from collector.catalog import load_catalog
from collector.collectors import names, registry
from collector.collectors.ports import ephemeral_range
from collector.context import CollectOptions
from collector.diff import SOURCE_COLLECTORS, DifferentHostsError, diff_bundles, is_pseudonym, render_html, render_text
from collector.redact import Pseudonymizer
from collector.run import CollectRequest, collect
from conftest import akdiag, collect_bundle
from servers import real_server
from servers.rabbit import publish, rabbit  # noqa: F401  (a fixture)
from triage_helpers import edit_json

PROCESSES = ["api", "proctrigger", "procrpc", "procworkflow"]


def _use_rabbit(host, rabbit) -> None:
    path = host.basedir / "config" / "main.json"
    config = json.loads(path.read_text())
    config.update(RABBITMQ_HOST=f"{rabbit['host']}:{rabbit['port']}", RABBITMQ_USER=rabbit["user"],
                  RABBITMQ_PASS=rabbit["password"], RABBITMQ_VHOST=rabbit["vhost"])
    path.write_text(json.dumps(config, indent=2))


def _write_catalog(host, extra_components: str) -> None:
    moved = [{"binary": b, "port": p} for b, p in host.ports.items() if p != host.catalog.process(b).port]
    host.catalog_file.write_text(yaml.safe_dump({"processes": moved}) + extra_components)


def _edit_config(host, **changes) -> None:
    path = host.basedir / "config" / "main.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config, indent=2))


def _key(change: dict, section: str) -> tuple:
    return section, change["subject"], change["field"], change["change"]


# Findings about the test machine itself, not about the simulated platform: its memory,
# swap, disks, load and file handles, the clock, a datastore's answer time (slow when the
# machine is busy) and listeners of other programs; they may come or go between two
# bundles taken seconds apart, whatever the test does.
MACHINE_FINDINGS = ("memory.low", "swap.in_use", "disk.space_low", "disk.inodes_low", "load.high",
                    "files.system_limit", "clock.unsynchronized", "datastore.slow", "ports.owner_unknown")


def _all_changes(report: dict) -> Counter:
    """Every change of every section (findings included), counted: a duplicate shows as 2."""
    return Counter(_key(c, section) for section, changes in report["sections"].items() for c in changes
                   if not (section == "findings" and c["subject"].split(" ")[0] in MACHINE_FINDINGS))


@pytest.mark.servers
def test_each_change_appears_once_with_its_direction(host, rabbit, tmp_path):
    components = f"components:\n  - {{name: rabbitmq, management_port: {rabbit['api_port']}}}\n"
    _use_rabbit(host, rabbit)
    _write_catalog(host, components)
    host.start(PROCESSES)
    old_result, _ = collect_bundle(host, tmp_path / "old", fmt="7z", only=NOT_THE_KERNEL)

    host.stop_process("proctrigger")  # a process stops; its PID file stays, now stale
    old_port = host.ports["procrpc"]
    host.stop_process("procrpc")  # its port moves
    host.ports["procrpc"] = old_port + 7
    _write_catalog(host, components)
    host.start(["procrpc"])
    _edit_config(host, DEFAULT_LOG_LEVEL="debug", CONTROLDB_PASS="a-brand-new-secret")
    publish(rabbit, "oxy_triggers", 5)
    new_result, _ = collect_bundle(host, tmp_path / "new", fmt="7z", only=NOT_THE_KERNEL)

    done = akdiag("diff", str(old_result.path), str(new_result.path), "--format", "json")
    assert done.returncode == 1, done.stderr  # a process was lost: a regression
    report = json.loads(done.stdout)
    expected = Counter({
        ("processes", "proctrigger", "status", "removed"),
        ("processes", "procrpc", "started_at", "changed"),
        ("processes", "procrpc", "port", "changed"),
        ("pidfiles", "proctrigger.pid", "state", "changed"),
        ("ports", f"tcp 127.0.0.1:{old_port}", "listening", "removed"),
        ("ports", f"tcp 127.0.0.1:{old_port + 7}", "listening", "added"),
        ("config", "config/main.json DEFAULT_LOG_LEVEL", "DEFAULT_LOG_LEVEL", "changed"),
        ("config", "config/main.json CONTROLDB_PASS", "CONTROLDB_PASS", "changed"),
        ("datastores", "rabbitmq", "queue oxy_triggers", "rose"),
        ("findings", "process.down proctrigger", "finding", "added"),
        ("findings", "pidfile.stale proctrigger", "finding", "added"),
    })
    assert _all_changes(report) == expected
    by_key = {_key(c, s): c for s, changes in report["sections"].items() for c in changes}
    status = by_key[("processes", "proctrigger", "status", "removed")]
    assert (status["old"], status["new"], status["regression"]) == ("running", "down", True)
    port = by_key[("processes", "procrpc", "port", "changed")]
    assert (port["old"], port["new"]) == (old_port, old_port + 7)
    queue = by_key[("datastores", "rabbitmq", "queue oxy_triggers", "rose")]
    assert queue["delta"] == 5
    secret = by_key[("config", "config/main.json CONTROLDB_PASS", "CONTROLDB_PASS", "changed")]
    assert "a-brand-new-secret" not in done.stdout and host.secret_seed not in done.stdout
    assert secret["old"] == secret["new"] == "<secret changed>"
    new_ids = sorted((f["id"], f["subject"]) for f in report["findings"]["new"] if f["id"] not in MACHINE_FINDINGS)
    assert new_ids == [("pidfile.stale", "proctrigger"), ("process.down", "proctrigger")]
    assert [f for f in report["findings"]["resolved"] if f["id"] not in MACHINE_FINDINGS] == []
    assert report["findings"]["unchanged"] > 0
    text = akdiag("diff", str(old_result.path), str(new_result.path))
    assert text.returncode == 1 and "REGRESSION" in text.stdout and "proctrigger: running -> down" in text.stdout


# The kernel's message buffer is the whole machine's: the kernel tests, run beside these by
# other test workers, write segfaults and OOM kills into it that a second bundle would see.
NOT_THE_KERNEL = tuple(name for name in names() if name != "kernel")


def test_no_change_is_no_regression(host, tmp_path):
    host.start(["api"])
    old, reader_old = collect_bundle(host, tmp_path / "a", only=NOT_THE_KERNEL)
    new, reader_new = collect_bundle(host, tmp_path / "b", only=NOT_THE_KERNEL)
    for reader in (reader_old, reader_new):  # a collector's failure shows as itself, not as a diff
        assert {c["name"]: c["status"] for c in reader.manifest["collectors"]
                if c["status"] != "skipped"} == dict.fromkeys(NOT_THE_KERNEL, "ok")
    diff = diff_bundles(reader_old, reader_new)
    assert [c.as_dict() for c in diff.changes] == [] and not diff.regression
    assert "Nothing changed." in render_text(diff)
    done = akdiag("diff", str(old.path), str(new.path))
    assert done.returncode == 0, done.stderr


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    sock.listen(1)
    return sock


def _free_fixed_port(low: int) -> socket.socket:
    """A listener on a free port below the kernel's ephemeral range."""
    for port in range(low - 1, low - 2000, -1):
        try:
            return _listen(port)
        except OSError:
            continue
    raise RuntimeError("no free port below the ephemeral range")


def test_ephemeral_listeners_of_other_programs_are_not_compared(host, tmp_path):
    host.start(["api"])
    low, _high = ephemeral_range() or (32768, 60999)
    _r, old = collect_bundle(host, tmp_path / "a", only=("processes", "ports"))
    ephemeral, fixed = _listen(0), _free_fixed_port(low)
    ephemeral_port, fixed_port = ephemeral.getsockname()[1], fixed.getsockname()[1]
    try:
        _r, new = collect_bundle(host, tmp_path / "b", only=("processes", "ports"))
    finally:
        ephemeral.close()
        fixed.close()
    assert new.json("ports.json")["ephemeral_range"] == list(ephemeral_range())
    diff = diff_bundles(old, new)
    subjects = {c.subject for c in diff.section("ports")}
    assert f"tcp 127.0.0.1:{ephemeral_port}" not in subjects
    assert f"tcp 127.0.0.1:{fixed_port}" in subjects
    assert any("ephemeral ports" in note for note in diff.not_compared)


def test_bundles_of_different_hosts_are_refused(host, tmp_path):
    _r, old = collect_bundle(host, tmp_path / "a", only=("system",))
    _r, new = collect_bundle(host, tmp_path / "b", only=("system",))
    manifest = new.json("manifest.json")
    manifest["hostname"] = "another-host"
    (new.root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DifferentHostsError, match="--allow-different-hosts"):
        diff_bundles(old, new)
    done = akdiag("diff", str(old.root), str(new.root))
    assert done.returncode == 2 and "different hosts" in done.stderr
    assert akdiag("diff", str(old.root), str(new.root), "--allow-different-hosts").returncode in (0, 1)


def test_different_schema_versions_compare_what_agrees(host, tmp_path):
    host.start(["api"])
    _r, old = collect_bundle(host, tmp_path / "a", only=("processes", "system"))
    _r, new = collect_bundle(host, tmp_path / "b", only=("processes", "system"))
    manifest = old.json("manifest.json")
    manifest["schema_version"] = 0
    (old.root / "manifest.json").write_text(json.dumps(manifest))
    diff = diff_bundles(old, new)
    assert any("schema versions differ" in reason for reason in diff.not_compared)
    assert any("pidfiles.json is missing from the old and new bundle" in r for r in diff.not_compared)


def test_html_diff_uses_the_report_style(host, tmp_path):
    host.start(["api"])
    _r, old = collect_bundle(host, tmp_path / "a", only=("processes", "ports"))
    host.stop_process("api")
    _r, new = collect_bundle(host, tmp_path / "b", only=("processes", "ports"))
    html = render_html(diff_bundles(old, new))
    assert 'id="diff-processes"' in html and "api" in html and "<link" not in html
    output = tmp_path / "diff.html"
    done = akdiag("diff", str(old.root), str(new.root), "--format", "html", "--output", str(output))
    assert done.returncode == 1 and output.read_text().startswith("<!DOCTYPE html>")


def test_html_diff_shows_control_characters_as_symbols(host, tmp_path):
    """A config value with a terminal escape (as a host may hold) becomes a visible symbol
    in the page, as in the summary, never a raw control character."""
    _r, old = collect_bundle(host, tmp_path / "a", only=("config",))
    _edit_config(host, WEBCONTROL_HOSTNAME="app\x1b[31m.example")
    _r, new = collect_bundle(host, tmp_path / "b", only=("config",))
    html = render_html(diff_bundles(old, new))
    assert "WEBCONTROL_HOSTNAME" in html and "\u241b[31m" in html and "\x1b" not in html


def test_a_bundle_that_cannot_be_read_is_exit_2(tmp_path):
    (tmp_path / "junk.7z").write_bytes(b"not an archive")
    done = akdiag("diff", str(tmp_path / "junk.7z"), str(tmp_path / "junk.7z"))
    assert done.returncode == 2 and "cannot read" in done.stderr


def test_encrypted_bundles_open_with_the_password(host, tmp_path):
    host.start(["api"])
    password = tmp_path / "pw"
    password.write_text("s3cret-pw\n")
    paths = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        done = akdiag("collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file), "--output",
                      str(tmp_path / name), "--encrypt", "--password-file", str(password), "--quiet",
                      "--log-lines", "5")
        assert done.returncode == 0, done.stderr
        paths.append(done.stdout.strip())
    done = akdiag("diff", *paths, "--password-file", str(password))
    assert done.returncode in (0, 1), done.stderr
    refused = akdiag("diff", *paths, env={"AKDIAG_PASSWORD": "wrong"})
    assert refused.returncode == 2 and "password" in refused.stderr


def test_each_section_file_names_the_collector_that_writes_it():
    assert SOURCE_COLLECTORS == {spec.output: spec.name for spec in registry().values()}


# -- pseudonyms --------------------------------------------------------------------------

PSEUDONYMIZED_KINDS = ("emails", "phones", "ips", "hosts")  # akdiag collect --pseudonymize ips,hosts


def _collect_pseudonymized(host, out: Path) -> BundleReader:
    """A real bundle of the configuration, with pseudonyms for e-mails, phones, IPs and host
    names (a random key per bundle, as every collection has)."""
    out.mkdir(parents=True)
    request = CollectRequest(basedir=host.basedir, basedir_source="test", catalog=load_catalog(host.catalog_file),
                             output_dir=out, fmt="dir", timeout=60, options=CollectOptions(only=("config",)),
                             pii_kinds=PSEUDONYMIZED_KINDS)
    return BundleReader(collect(request).path)


def _pseudonymize_hostname(reader: BundleReader) -> str:
    """The manifest's host name as the bundle of a host named by a full domain name holds it
    (this machine's short name is no domain name, which the host rule leaves alone)."""
    manifest = reader.manifest
    manifest["hostname"] = Pseudonymizer().token("host", "app1.example.com")
    reader.path("manifest.json").write_text(json.dumps(manifest))
    return manifest["hostname"]


def test_pseudonyms_do_not_read_as_changes(host, tmp_path):
    # the simulated main.json already names two hosts (WEBCONTROL_HOSTNAME, TRACKING_HOSTNAME)
    _edit_config(host, NOTIFY_EMAIL="alerts@example.com", SUPPORT_EMAIL="support@example.com",
                 ABUSE_EMAIL="abuse@example.com",
                 MX_HOSTS={"mx1.example.com": {"PORT": 25}, "mx2.example.com": {"PORT": 25}})
    old = _collect_pseudonymized(host, tmp_path / "a")
    _edit_config(host, SUPPORT_EMAIL="support-desk")  # a real change: a pseudonym to a plain value
    config = json.loads((host.basedir / "config" / "main.json").read_text())
    del config["ABUSE_EMAIL"]  # a real change: a pseudonym to nothing
    (host.basedir / "config" / "main.json").write_text(json.dumps(config, indent=2))
    new = _collect_pseudonymized(host, tmp_path / "b")
    before, after = old.json("config/main.json"), new.json("config/main.json")
    for key in ("NOTIFY_EMAIL", "WEBCONTROL_HOSTNAME", "TRACKING_HOSTNAME"):  # each bundle has its own token
        assert is_pseudonym(before[key]) and is_pseudonym(after[key]) and before[key] != after[key], key
    names_old, names_new = _pseudonymize_hostname(old), _pseudonymize_hostname(new)

    diff = diff_bundles(old, new)
    changes = sorted((c.subject, c.change, c.old, c.new) for c in diff.changes)
    assert changes == [("config/main.json ABUSE_EMAIL", "removed", before["ABUSE_EMAIL"], None),
                       ("config/main.json SUPPORT_EMAIL", "changed", before["SUPPORT_EMAIL"], "support-desk")]
    # NOTIFY_EMAIL, the two host names, and the ports of the two MX hosts (whose names,
    # pseudonymized, cannot be told apart)
    assert diff.not_compared.count("5 configuration values are pseudonymized with a per-bundle key: cannot "
                                   "tell whether they changed") == 1
    assert (f"the host names are pseudonymized ({names_old} and {names_new}): akdiag cannot tell whether both "
            "bundles come from one host") in diff.not_compared
    done = akdiag("diff", str(old.root), str(new.root))
    assert done.returncode == 0, done.stderr
    assert "SUPPORT_EMAIL changed" in done.stdout and "NOTIFY_EMAIL" not in done.stdout


# -- a file missing from one bundle ----------------------------------------------------------

def _fail_collector(reader: BundleReader, name: str, error: str) -> None:
    """The bundle as a run whose collector raised leaves it: recorded failed, no file."""
    manifest = reader.manifest
    for record in manifest["collectors"]:
        if record["name"] == name:
            reader.path(record["output"]).unlink()
            record.update(status="failed", error=error, output=None)
    reader.path("manifest.json").write_text(json.dumps(manifest))


def test_a_file_missing_from_one_bundle_is_not_compared(host, tmp_path):
    only = ("processes", "pidfiles", "ports", "config")
    host.start()  # its own listening sockets: none other may exist (a test worker's own namespace)
    old_result, old = collect_bundle(host, tmp_path / "a", only=only)
    _edit_config(host, DEFAULT_LOG_LEVEL="debug")
    new_result, new = collect_bundle(host, tmp_path / "b", only=only)
    assert old.json("processes.json")["expected"] and old.json("ports.json")["listening"]  # all would be "gone"
    new.path("processes.json").unlink()
    new.path("ports.json").unlink()
    _fail_collector(old, "pidfiles", "OSError: boom")

    diff = diff_bundles(old, new)
    # findings.json was written at collection, before the files were removed: left aside
    # here, as processes of other simulated hosts on this machine may change them
    assert [(c.section, c.subject, c.change, c.regression) for c in diff.changes if c.section != "findings"] == [
        ("config", "config/main.json DEFAULT_LOG_LEVEL", "changed", False)]  # what both bundles have compares
    notes = diff.not_compared
    assert notes.count("processes: not compared: processes.json is missing from the new bundle") == 1
    assert notes.count("ports: not compared: ports.json is missing from the new bundle") == 1
    assert notes.count("pidfiles: not compared: the pidfiles collector failed (OSError: boom) in the old bundle, "
                       "so it has no usable pidfiles.json") == 1
    done = akdiag("diff", str(old_result.path), str(new_result.path))
    assert done.returncode == (1 if diff.regression else 0), done.stderr
    assert "processes.json is missing from the new bundle" in done.stdout and "gone" not in done.stdout


# -- datastore figures -------------------------------------------------------------------------

def _resp_record(datastores: dict, name: str, details: dict) -> None:
    record = next(e for e in datastores["endpoints"] if e["name"] == name)
    record.update(status="ok", details=details)


def _ssdb_details(links: int, size: int) -> dict:
    return {"auth": "ok", "info": {"server": "ssdb-server", "version": "1.9.8", "links": links, "total_calls": 9,
                                   "dbsize": size, "binlogs": {}, "other": {}}, "dbsize_bytes": size}


def _kvrocks_details(clients: int, memory: int, keys: int) -> dict:
    return {"auth": "ok", "info": {"server": {"kvrocks_version": "2.8.0"}, "clients": {"connected_clients": clients},
                                   "memory": {"used_memory": memory}, "persistence": {},
                                   "keyspace": {"db0": {"keys": keys, "expires": 0}}}}


def test_ssdb_and_kvrocks_figures_with_their_deltas(host, tmp_path):
    _r, old = collect_bundle(host, tmp_path / "a", only=("datastores",))
    _r, new = collect_bundle(host, tmp_path / "b", only=("datastores",))

    def before(data):
        _resp_record(data, "ssdb_hb", _ssdb_details(links=3, size=10_000_000))
        _resp_record(data, "kvrocks_duplicates", _kvrocks_details(clients=2, memory=1_000_000, keys=100))

    def after(data):
        _resp_record(data, "ssdb_hb", _ssdb_details(links=7, size=25_000_000))
        # memory moved by 5 % (noise); keys and clients moved
        _resp_record(data, "kvrocks_duplicates", _kvrocks_details(clients=1, memory=1_050_000, keys=160))

    edit_json(old, "datastores.json", before)
    edit_json(new, "datastores.json", after)
    diff = diff_bundles(old, new)
    found = sorted((c.subject, c.field, c.change, c.as_dict().get("delta"), c.regression) for c in diff.changes)
    assert found == [("kvrocks_duplicates", "connections", "fell", -1, False),
                     ("kvrocks_duplicates", "keys db0", "rose", 60, False),
                     ("ssdb_hb", "connections", "rose", 4, False),
                     ("ssdb_hb", "database size", "rose", 15_000_000, False)]
    assert not diff.regression  # figures alone are no regression


@pytest.mark.servers
def test_kvrocks_figures_of_a_real_redis(host, tmp_path):
    address, port = real_server("AKDIAG_TEST_REDIS")
    database = _empty_database(address, port)
    client = redis.Redis(host=address, port=port, db=database, protocol=2, socket_timeout=5)
    _edit_config(host, CAMP_DUPLICATESDB={"MODE": "single", "NODES": [{"HOST": address, "PORT": port}]})
    prefix = f"akdiag:test:{secrets.token_hex(4)}:"
    try:
        client.set(prefix + "first", "1")
        _r, old = collect_bundle(host, tmp_path / "a", only=("datastores",))
        client.set(prefix + "big", b"x" * (16 * 2 ** 20))  # 16 MB: used memory rises well beyond noise
        client.set(prefix + "second", "2")
        _r, new = collect_bundle(host, tmp_path / "b", only=("datastores",))
    finally:
        client.delete(prefix + "first", prefix + "big", prefix + "second")
        client.close()
    diff = diff_bundles(old, new)
    found = Counter((c.subject, c.field, c.change) for c in diff.changes
                    if not _other_clients_of_the_shared_server(c.field, database))
    assert found == Counter({("kvrocks_duplicates", f"keys db{database}", "rose"): 1,
                             ("kvrocks_duplicates", "used memory", "rose"): 1})
    keys = next(c for c in diff.changes if c.field == f"keys db{database}")
    assert (keys.old, keys.new, keys.as_dict()["delta"]) == (1, 3, 2)
    memory = next(c for c in diff.changes if c.field == "used memory")
    assert memory.as_dict()["delta"] >= 16 * 2 ** 20


def _empty_database(address: str, port: int) -> int:
    """A Redis database no key is in, so that its key count is this test's alone."""
    client = redis.Redis(host=address, port=port, protocol=2, socket_timeout=5)
    try:
        used = {int(name[2:]) for name in client.info("keyspace")}
    finally:
        client.close()
    return secrets.choice([n for n in range(1, 16) if n not in used])  # another run may look for one too


def _other_clients_of_the_shared_server(field: str, database: int) -> bool:
    """The Redis server is shared with the tests running at the same time: their connections
    and their keys (in other databases) may change between the two bundles."""
    return field == "connections" or (field.startswith("keys db") and field != f"keys db{database}")


# -- text width ------------------------------------------------------------------------------

def test_a_long_value_stays_whole_in_a_file_and_a_pipe(host, tmp_path):
    long_value = "v" * 299 + "!"
    _edit_config(host, DEFAULT_LOG_LEVEL="info")
    _r, old = collect_bundle(host, tmp_path / "a", only=("config",))
    _edit_config(host, DEFAULT_LOG_LEVEL=long_value)
    _r, new = collect_bundle(host, tmp_path / "b", only=("config",))
    output = tmp_path / "diff.txt"
    written = akdiag("diff", str(old.root), str(new.root), "--output", str(output))
    piped = akdiag("diff", str(old.root), str(new.root), env={"COLUMNS": "80"})
    assert written.returncode == piped.returncode == 0, (written.stderr, piped.stderr)
    expected = f"  - config/main.json: DEFAULT_LOG_LEVEL changed: 'info' -> '{long_value}'"
    assert expected in output.read_text().splitlines()
    assert expected in piped.stdout.splitlines()
    on_terminal = render_text(diff_bundles(old, new), width=80).splitlines()  # a terminal's width
    cut = [line for line in on_terminal if "DEFAULT_LOG_LEVEL" in line]
    assert cut == [expected[:79] + "\u2026"]
    assert max(len(line) for line in on_terminal if line.startswith("  ")) <= 80
