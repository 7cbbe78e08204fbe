"""`akdiag check --format prometheus | zabbix-discovery | zabbix-values` and `--output`:
real checks of a simulated host and of its bundle, the exposition linted by the real
`promtool check metrics`, values compared with the bundle's own records."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from collector.check import EXIT_CRITICAL, EXIT_UNKNOWN
from collector.checkformats.output import write_atomically
from collector.checkformats.snapshot import epoch_seconds
from conftest import REPO, akdiag
from triage_helpers import LoneHost, edit_json, free_port

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    message = "promtool is not installed (apt-get install --no-install-recommends prometheus)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}: the exposition must be linted in CI", pytrace=False)
    pytest.skip(message)


def promtool_accepts(text: str) -> None:
    done = subprocess.run([_promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def _unescape(value: str) -> str:
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def samples(text: str) -> dict:
    """{(metric, ((label, value), ...)): float} of an exposition."""
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = tuple(sorted((k, _unescape(v)) for k, v in LABEL.findall(match.group(2) or "")))
        key = (match.group(1), labels)
        assert key not in found, f"duplicate series {key}"
        found[key] = float(match.group(3))
    return found


def value(found: dict, metric: str, **labels):
    return found.get((metric, tuple(sorted((k, str(v)) for k, v in labels.items()))))


@pytest.fixture(scope="module")
def lone(tmp_path_factory):
    """Processes of its own: web (with a port) and main running, gone stopped (down)."""
    host = LoneHost(tmp_path_factory.mktemp("monitored"), {"web": {"port": free_port()}, "main": {}, "gone": {}})
    host.start("web", "main", "gone")
    host.sim.stop_process(host.name("gone"))
    yield host
    host.stop()


def _live(lone, *options):
    return akdiag("check", "--basedir", str(lone.sim.basedir), "--catalog", str(lone.catalog_file),
                  "--skip", "datastores", *options)


# -- Prometheus --------------------------------------------------------------------------------------------

def test_live_prometheus_file_passes_promtool_and_names_each_process(lone, tmp_path):
    target = tmp_path / "textfile" / "akdiag.prom"
    target.parent.mkdir()
    old_umask = os.umask(0o077)  # the file is for an unprivileged exporter whatever root's umask
    try:
        done = _live(lone, "--format", "prometheus", "--output", str(target))
    finally:
        os.umask(old_umask)
    assert done.returncode == EXIT_CRITICAL, done.stdout + done.stderr  # gone is down: the verdict stands
    assert done.stdout == ""
    assert sorted(p.name for p in target.parent.iterdir()) == ["akdiag.prom"]  # no temporary file left
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    text = target.read_text()
    assert text.endswith("\n")
    promtool_accepts(text)
    found = samples(text)
    web, main, gone = lone.name("web"), lone.name("main"), lone.name("gone")
    assert value(found, "akdiag_process_up", name=web) == 1
    assert value(found, "akdiag_process_up", name=main) == 1
    assert value(found, "akdiag_process_up", name=gone) == 0
    assert value(found, "akdiag_port_listening", name=web, port=lone.port("web"), address="127.0.0.1") == 1
    assert value(found, "akdiag_process_resident_memory_bytes", name=web) > 1_000_000
    assert value(found, "akdiag_process_cpu_seconds_total", name=web) >= 0
    assert value(found, "akdiag_process_threads", name=web) >= 1
    assert value(found, "akdiag_process_open_fds", name=web) >= 3
    assert value(found, "akdiag_process_max_fds", name=web) >= value(found, "akdiag_process_open_fds", name=web)
    assert value(found, "akdiag_process_connections", name=web, state="LISTEN") == 1
    assert value(found, "akdiag_process_resident_memory_bytes", name=gone) is None  # down: no figure, not 0
    assert value(found, "akdiag_check_status") == EXIT_CRITICAL
    assert value(found, "akdiag_findings", severity="critical") >= 1
    assert value(found, "akdiag_findings_by_id", id="process.down", severity="critical") >= 1
    assert value(found, "akdiag_filesystem_free_bytes", mountpoint="/", fstype=_fstype(found, "/")) > 0
    assert "# TYPE akdiag_process_cpu_seconds_total counter" in text


def _fstype(found: dict, mountpoint: str) -> str:
    return next(dict(labels)["fstype"] for metric, labels in found
                if metric == "akdiag_filesystem_size_bytes" and dict(labels)["mountpoint"] == mountpoint)


@pytest.fixture
def bundle(lone, tmp_path):
    return lone.collect(tmp_path / "out", only=("system", "processes", "pidfiles", "ports"))


RABBIT = {"name": "rabbitmq", "kind": "rabbitmq", "status": "ok", "latency_ms": 1.5, "connect_ms": 0.25,
          "details": {"queues": {"oxy_triggers": {"exists": True, "messages": 12000, "consumers": 1},
                                 "oxy_triggers_prior": {"exists": False, "messages": None, "consumers": None}},
                      "queue_families": {"trk_*": {"queues": [{"name": "trk_open", "messages": 7, "consumers": 0},
                                                              {"name": "trk_click", "messages": None,
                                                               "consumers": None}]}}}}
ODD_MOUNT = '/mnt/odd "quoted" back\\slash\nnewline'


def test_bundle_values_are_the_bundles_own(bundle):
    """Each figure is the bundle's record: memory, threads, files, CPU, start; queues;
    mounts, one with a name that needs every escape."""
    bundle.path("datastores.json").write_text(json.dumps({"endpoints": [
        RABBIT, {"name": "ssdb_stats", "kind": "ssdb", "status": "not_configured"},
        {"name": "ssdb_hb", "kind": "ssdb", "status": "timeout", "latency_ms": None}]}))
    odd = {"mountpoint": ODD_MOUNT, "fstype": "tmpfs", "total": 4096, "free": 1024, "inodes_total": 10,
           "inodes_free": 3}
    edit_json(bundle, "system.json", lambda data: data["filesystems"].append(odd))
    done = akdiag("check", "--bundle", str(bundle.root), "--format", "prometheus")
    assert done.returncode == EXIT_CRITICAL, done.stderr
    promtool_accepts(done.stdout)
    found = samples(done.stdout)
    records = {p["name"]: p for p in bundle.json("processes.json")["expected"]}
    for name, record in records.items():
        if record["status"] != "running":
            assert value(found, "akdiag_process_up", name=name) == (0 if record["status"] == "down" else None)
            continue
        (pid,) = record["resources"]
        assert value(found, "akdiag_process_up", name=name) == 1
        assert value(found, "akdiag_process_resident_memory_bytes", name=name) == pid["rss"]
        assert value(found, "akdiag_process_threads", name=name) == pid["threads"]
        assert value(found, "akdiag_process_open_fds", name=name) == pid["open_files"]
        assert value(found, "akdiag_process_max_fds", name=name) == pid["open_files_limit"]
        assert value(found, "akdiag_process_cpu_seconds_total", name=name) == pytest.approx(pid["cpu_seconds"])
        assert value(found, "akdiag_process_start_time_seconds", name=name) == epoch_seconds(pid["started_at"])
    assert value(found, "akdiag_rabbitmq_queue_messages", queue="oxy_triggers") == 12000
    assert value(found, "akdiag_rabbitmq_queue_messages", queue="trk_open") == 7
    assert value(found, "akdiag_rabbitmq_queue_messages", queue="trk_click") is None  # not counted: no sample
    assert value(found, "akdiag_rabbitmq_queue_messages", queue="oxy_triggers_prior") is None  # no such queue
    assert value(found, "akdiag_datastore_up", name="rabbitmq", kind="rabbitmq") == 1
    assert value(found, "akdiag_datastore_latency_seconds", name="rabbitmq", kind="rabbitmq") == 0.0015
    assert value(found, "akdiag_datastore_up", name="ssdb_hb", kind="ssdb") == 0
    assert value(found, "akdiag_datastore_up", name="ssdb_stats", kind="ssdb") is None  # not configured
    assert value(found, "akdiag_filesystem_free_bytes", mountpoint=ODD_MOUNT, fstype="tmpfs") == 1024
    assert value(found, "akdiag_filesystem_files_free", mountpoint=ODD_MOUNT, fstype="tmpfs") == 3
    assert 'mountpoint="/mnt/odd \\"quoted\\" back\\\\slash\\nnewline"' in done.stdout


# -- --output ------------------------------------------------------------------------------------------------

def test_readers_see_the_old_file_or_the_new_one_never_a_part(tmp_path):
    target = tmp_path / "akdiag.prom"
    texts = ["a" * 300_000 + "\n", "b" * 200_000 + "\n"]
    write_atomically(target, texts[0])
    seen, stop = [], threading.Event()

    def read_all_the_time():
        while not stop.is_set():
            seen.append(target.read_text())

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for round_number in range(100):
            write_atomically(target, texts[round_number % 2])
    finally:
        stop.set()
        reader.join()
    assert seen and all(text in texts for text in seen), {len(t) for t in seen}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["akdiag.prom"]


def test_a_failed_write_keeps_the_old_file_and_says_unknown(lone, tmp_path):
    """On a full disk (a real tmpfs, in a mount namespace of its own): the old file stays
    whole, no temporary file stays, exit 3 (UNKNOWN) with the reason on stderr."""
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a private full tmpfs")
    script = tmp_path / "full.sh"
    script.write_text(r'''set -e
disk="$1"; shift
mount -t tmpfs -o size=64k tmpfs "$disk"
printf 'akdiag_check_status 0\n' > "$disk/akdiag.prom"
dd if=/dev/zero of="$disk/filler" bs=4k 2>/dev/null || true
set +e
"$@" --output "$disk/akdiag.prom"
echo "exit=$?"
echo "files=$(ls -A "$disk" | tr '\n' ' ')"
echo "old=$(cat "$disk/akdiag.prom")"
''')
    disk = tmp_path / "disk"
    disk.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "collector", "check", "--basedir", str(lone.sim.basedir),
               "--catalog", str(lone.catalog_file), "--skip", "datastores", "--format", "prometheus"]
    done = subprocess.run(["unshare", "--mount", "bash", str(script), str(disk), *command], capture_output=True,
                          text=True, timeout=120, env=env)
    assert f"exit={EXIT_UNKNOWN}" in done.stdout, done.stdout + done.stderr
    assert "files=akdiag.prom filler " in done.stdout, done.stdout
    assert "old=akdiag_check_status 0" in done.stdout
    assert "cannot write" in done.stderr and "No space left on device" in done.stderr, done.stderr


def test_output_into_a_missing_folder_is_unknown(lone, tmp_path):
    done = _live(lone, "--format", "zabbix-values", "--output", str(tmp_path / "missing" / "values.json"))
    assert done.returncode == EXIT_UNKNOWN and "cannot write" in done.stderr, done.stderr
    assert not (tmp_path / "missing").exists()


# -- Zabbix --------------------------------------------------------------------------------------------------

def test_zabbix_discovery_lists_the_processes_and_ports(lone):
    done = _live(lone, "--format", "zabbix-discovery")
    assert done.returncode == EXIT_CRITICAL, done.stderr
    found = json.loads(done.stdout)
    assert isinstance(found, list) and all(isinstance(item, dict) for item in found)
    assert all(set(item) >= {"{#KIND}", "{#NAME}"} and all(k.startswith("{#") and k.endswith("}") for k in item)
               and all(isinstance(v, str) for v in item.values()) for item in found)
    processes = {item["{#PROCESS}"] for item in found if item["{#KIND}"] == "process"}
    assert {lone.name("web"), lone.name("main"), lone.name("gone")} <= processes
    ports = [item for item in found if item["{#KIND}"] == "port"]
    assert {"{#KIND}": "port", "{#NAME}": str(lone.port("web")), "{#PORT}": str(lone.port("web")),
            "{#PROCESS}": lone.name("web"), "{#ADDRESS}": "127.0.0.1"} in ports
    assert any(item["{#KIND}"] == "mount" and item["{#MOUNT}"] == "/" for item in found)


def test_zabbix_values_hold_each_discovered_name(lone):
    done = _live(lone, "--format", "zabbix-values")
    assert done.returncode == EXIT_CRITICAL, done.stderr
    values = json.loads(done.stdout)
    assert values["status"] == EXIT_CRITICAL and values["status_text"] == "CRITICAL"
    assert values["process"][lone.name("web")]["up"] == 1
    assert values["process"][lone.name("web")]["resident_memory_bytes"] > 1_000_000
    assert values["process"][lone.name("gone")]["up"] == 0
    assert values["port"][str(lone.port("web"))]["listening"] == 1
    assert values["findings"]["critical"] >= 1 and values["findings_by_id"]["process.down"] >= 1
    for item in values["discovery"]:  # every discovered name has its values where the README's JSONPath looks
        assert item["{#NAME}"] in values[item["{#KIND}"]], item


def test_the_readmes_alert_rules_pass_promtool(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n# /etc/prometheus/rules/akdiag\.yml[^\n]*\n(.*?)```", readme, re.S)
    assert block, "README's Monitoring section lost its alert rules"
    rules = tmp_path / "akdiag.yml"
    rules.write_text(block.group(1))
    done = subprocess.run([_promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "SUCCESS: 4 rules found" in done.stdout, done.stdout + done.stderr


def test_a_check_that_could_not_be_made_still_says_so_in_each_format(tmp_path):
    missing = str(tmp_path / "no-basedir")
    done = akdiag("check", "--basedir", missing, "--format", "prometheus")
    assert done.returncode == EXIT_UNKNOWN, done.stderr
    promtool_accepts(done.stdout)
    found = samples(done.stdout)
    assert value(found, "akdiag_check_status") == EXIT_UNKNOWN
    assert value(found, "akdiag_check_timestamp_seconds") > 1_700_000_000  # a stale-check alert still works
    assert not [metric for metric, _labels in found if metric.startswith("akdiag_process_")]
    discovery = akdiag("check", "--basedir", missing, "--format", "zabbix-discovery")
    assert discovery.returncode == EXIT_UNKNOWN and json.loads(discovery.stdout) == []
    values = json.loads(akdiag("check", "--basedir", missing, "--format", "zabbix-values").stdout)
    assert values["status"] == EXIT_UNKNOWN and "is not a folder" in values["reasons"][0]
