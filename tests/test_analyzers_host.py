"""The host analyzer.  A full disk, low memory or a high load cannot be made on the test
machine: those faults are written into a real bundle's system.json, each beside its
healthy twin.  The placeholder secret and a missing BASEDIR are made for real."""

from __future__ import annotations

import json
import secrets
from typing import Optional

import pytest
import yaml

from conftest import collect_bundle
from triage_helpers import edit_json, findings_of, healthy_system, matching, one

GIB = 2 ** 30


@pytest.fixture
def system_bundle(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "config"), cpu_sample_seconds=0.05)
    edit_json(reader, "system.json", healthy_system)
    return reader


def _fs(mount: str, percent_free: float, inodes_percent_free: float = 80.0, fstype: str = "ext4") -> dict:
    total = 100 * GIB
    free = int(total * percent_free / 100)
    return {"mountpoint": mount, "device": "/dev/sda1", "fstype": fstype, "total": total, "used": total - free,
            "free": free, "percent_used": 100 - percent_free, "percent_free": percent_free,
            "inodes_total": 1000000, "inodes_free": int(10000 * inodes_percent_free),
            "inodes_percent_free": inodes_percent_free}


def _with(reader, change):
    edit_json(reader, "system.json", change)
    return findings_of(reader)


def test_healthy_host_has_no_host_finding(system_bundle):
    findings = findings_of(system_bundle)
    assert [f for f in findings if f["area"] == "host"] == []


@pytest.mark.parametrize("percent_free,severity", [(8.0, "warning"), (3.0, "critical")])
def test_filesystem_running_out_of_space(system_bundle, percent_free, severity):
    findings = _with(system_bundle, lambda d: d["filesystems"].append(_fs("/opt", percent_free)))
    finding = one(findings, "disk.space_low", "/opt")
    assert finding["severity"] == severity
    assert finding["evidence"]["file"] == "system.json"
    assert finding["evidence"]["figures"]["percent_free"] == percent_free


def test_filesystem_at_the_limit_and_read_only_images_are_not_low(system_bundle):
    findings = _with(system_bundle, lambda d: d["filesystems"].extend(
        [_fs("/opt", 10.0), _fs("/snap/core/1", 0.0, 0.0, fstype="squashfs")]))
    assert not matching(findings, "disk.space_low")
    assert not matching(findings, "disk.inodes_low")


@pytest.mark.parametrize("inodes_free,severity", [(7.0, "warning"), (1.0, "critical")])
def test_filesystem_running_out_of_inodes(system_bundle, inodes_free, severity):
    findings = _with(system_bundle, lambda d: d["filesystems"].append(_fs("/var", 60.0, inodes_free)))
    assert one(findings, "disk.inodes_low", "/var")["severity"] == severity
    assert not matching(findings, "disk.space_low", "/var")


def test_low_available_memory(system_bundle):
    findings = _with(system_bundle, lambda d: d["memory"].update(available=GIB, percent_available=6.25))
    assert one(findings, "memory.low")["severity"] == "warning"


def test_memory_just_above_the_limit_is_fine(system_bundle):
    findings = _with(system_bundle, lambda d: d["memory"].update(percent_available=10.5))
    assert not matching(findings, "memory.low")


def test_swap_in_use(system_bundle):
    findings = _with(system_bundle, lambda d: d["swap"].update(used=GIB // 4, percent=12.5))
    finding = one(findings, "swap.in_use")
    assert finding["severity"] == "warning" and finding["evidence"]["figures"]["percent"] == 12.5


def test_load_above_twice_the_cpus(system_bundle):
    findings = _with(system_bundle, lambda d: d.update(load_average=[9.5, 7.0, 5.0]))
    finding = one(findings, "load.high")
    assert finding["severity"] == "warning" and finding["evidence"]["figures"]["cpus"] == 4


def test_load_of_twice_the_cpus_is_fine(system_bundle):
    findings = _with(system_bundle, lambda d: d.update(load_average=[8.0, 8.0, 8.0]))
    assert not matching(findings, "load.high")


@pytest.mark.parametrize("percent,severity", [(85.0, "warning"), (97.0, "critical")])
def test_host_open_files_near_file_max(system_bundle, percent, severity):
    findings = _with(system_bundle, lambda d: d["open_files"].update(
        allocated=int(percent * 10000), max=1000000, percent=percent))
    assert one(findings, "files.system_limit")["severity"] == severity


def test_clock_not_synchronized(system_bundle):
    findings = _with(system_bundle, lambda d: d["time"].update(clock_synchronized=False))
    assert one(findings, "clock.unsynchronized")["severity"] == "warning"


def test_clock_unknown_is_no_finding(system_bundle):
    findings = _with(system_bundle, lambda d: d["time"].update(clock_synchronized=None))
    assert not matching(findings, "clock.unsynchronized")


def test_placeholder_secret_in_main_json(host, tmp_path):
    main = host.basedir / "config" / "main.json"
    config = json.loads(main.read_text())
    config["TRACKING_CRYPT_KEY"] = "abcdefghijklmnopqrstuvwxyzABCDEF"
    main.write_text(json.dumps(config))
    _result, reader = collect_bundle(host, tmp_path / "out", only=("config",))
    finding = one(findings_of(reader), "config.placeholder_secret")
    assert finding["severity"] == "warning"
    assert finding["subject"] == "main.json:TRACKING_CRYPT_KEY"
    assert finding["evidence"]["file"] == "config/index.json"
    assert "abcdefghijklmnopqrstuvwxyzABCDEF" not in json.dumps(finding)


def test_real_secrets_are_no_finding(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("config",))
    assert not matching(findings_of(reader), "config.placeholder_secret")
    assert reader.json("config/index.json")["weak_secrets"] == []


def _set_secrets(host, values: dict, consts: Optional[dict] = None) -> None:
    main = host.basedir / "config" / "main.json"
    config = json.loads(main.read_text())
    config.update(values)
    main.write_text(json.dumps(config))
    if consts is not None:
        folder = host.basedir / "config" / "json_consts"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "custom.node.json").write_text(json.dumps(consts))


# the same keys, left at placeholders or too short ("dirty"), and with real secrets ("clean")
DIRTY = {"RABBITMQ_PASS": "ChangeMe", "CONTROLDB_PASS": "password", "SSDB_HBSUPP_PASS": "xxxxxxxx",
         "WEBAPI_PRIVATE_KEY": "123456", "TRACKING_CRYPT_KEY": "<your crypt key here>",
         "CLICKHOUSE_SYSTEM": {"HOST": "127.0.0.1", "PORT": 9000, "PASSWORD": "k3Y9q_Zt"}}
DIRTY_CONSTS = {"APIKEY": "TODO"}
SHORT = "k3Y9q_Zt"


def _clean() -> dict:
    return {key: secrets.token_urlsafe(18) for key in DIRTY if key != "CLICKHOUSE_SYSTEM"} | {
        "CLICKHOUSE_SYSTEM": {"HOST": "127.0.0.1", "PORT": 9000, "PASSWORD": "Zt8-k3Y9q_Lm"}}  # 12: the minimum


def test_placeholders_and_short_secrets_are_named_never_shown(host, tmp_path):
    _set_secrets(host, DIRTY, DIRTY_CONSTS)
    result, reader = collect_bundle(host, tmp_path / "out", only=("config",))
    findings = {f["subject"]: f for f in matching(findings_of(reader), "config.placeholder_secret")}
    placeholder = "is still a common placeholder, not a secret"
    assert {subject: f["title"] for subject, f in findings.items()} == {
        "main.json:RABBITMQ_PASS": f"main.json:RABBITMQ_PASS {placeholder}",
        "main.json:CONTROLDB_PASS": f"main.json:CONTROLDB_PASS {placeholder}",
        "main.json:SSDB_HBSUPP_PASS": f"main.json:SSDB_HBSUPP_PASS {placeholder}",
        "main.json:WEBAPI_PRIVATE_KEY": f"main.json:WEBAPI_PRIVATE_KEY {placeholder}",
        "main.json:TRACKING_CRYPT_KEY": f"main.json:TRACKING_CRYPT_KEY {placeholder}",
        "main.json:CLICKHOUSE_SYSTEM.PASSWORD": "main.json:CLICKHOUSE_SYSTEM.PASSWORD is 8 characters, under the "
                                                "minimum 12",
        "custom.node.json:APIKEY": f"custom.node.json:APIKEY {placeholder}",
    }
    assert {f["severity"] for f in findings.values()} == {"warning"}
    short = findings["main.json:CLICKHOUSE_SYSTEM.PASSWORD"]["evidence"]["figures"]
    assert (short["reason"], short["length"], short["minimum"]) == ("short", 8, 12)
    # no value reaches the findings or any file of the bundle
    shown = json.dumps(list(findings.values()))
    for value in ("ChangeMe", "xxxxxxxx", "123456", "<your crypt key here>", SHORT, "TODO"):
        assert value not in shown, value
    raw = b"".join(p.read_bytes() for p in sorted(result.path.rglob("*")) if p.is_file())
    for value in ("ChangeMe", "your crypt key", SHORT):
        assert value.encode() not in raw, value


def test_real_secrets_in_the_same_keys_are_no_finding(host, tmp_path):
    _set_secrets(host, _clean(), {"APIKEY": secrets.token_hex(16)})
    _result, reader = collect_bundle(host, tmp_path / "out", only=("config",))
    assert not matching(findings_of(reader), "config.placeholder_secret")


def test_the_minimum_length_comes_from_the_catalog(host, tmp_path):
    _set_secrets(host, _clean())
    catalog = yaml.safe_load(host.catalog_file.read_text()) or {}
    catalog["thresholds"] = {"secret_min_length": 30}
    host.catalog_file.write_text(yaml.safe_dump(catalog))
    _result, reader = collect_bundle(host, tmp_path / "out", only=("config",))
    titles = [f["title"] for f in matching(findings_of(reader), "config.placeholder_secret")]
    assert "main.json:CLICKHOUSE_SYSTEM.PASSWORD is 12 characters, under the minimum 30" in titles
    assert "main.json:RABBITMQ_PASS is 24 characters, under the minimum 30" in titles


def test_a_bundle_from_before_weak_secrets_still_names_its_placeholders(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("config",))
    edit_json(reader, "config/index.json", lambda data: (data.pop("weak_secrets"), data.update(
        placeholder_secrets=["main.json:TRACKING_CRYPT_KEY"])))
    finding = one(findings_of(reader), "config.placeholder_secret")
    assert finding["title"] == "main.json:TRACKING_CRYPT_KEY is still the documented placeholder secret"


def test_missing_basedir_is_critical(host, tmp_path):
    host.basedir = tmp_path / "no-such-folder"
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system",), cpu_sample_seconds=0.05)
    finding = one(findings_of(reader), "basedir.missing")
    assert finding["severity"] == "critical" and "no-such-folder" in finding["title"]


def test_existing_basedir_is_no_finding(system_bundle):
    assert not matching(findings_of(system_bundle), "basedir.missing")


def test_failed_collector_is_a_warning_and_skipped_is_none(system_bundle):
    def fail_config(manifest):
        for outcome in manifest["collectors"]:
            if outcome["name"] == "config":
                outcome.update(status="failed", error="RuntimeError: boom")
    assert not matching(findings_of(system_bundle), "collector.failed")  # skipped ones are not failures
    edit_json(system_bundle, "manifest.json", fail_config)
    finding = one(findings_of(system_bundle), "collector.failed", "config")
    assert finding["severity"] == "warning" and "boom" in finding["title"]
