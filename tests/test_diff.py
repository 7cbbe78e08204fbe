"""`akdiag diff` between two real bundles of the simulated host."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from collector.bundle.reader import BundleReader
from collector.collectors.ports import ephemeral_range
from collector.diff import DifferentHostsError, diff_bundles, render_html, render_text
from conftest import akdiag, collect_bundle
from servers.rabbit import publish, rabbit  # noqa: F401  (a fixture)

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


@pytest.mark.servers
def test_each_change_appears_once_with_its_direction(host, rabbit, tmp_path):
    components = f"components:\n  - {{name: rabbitmq, management_port: {rabbit['api_port']}}}\n"
    _use_rabbit(host, rabbit)
    _write_catalog(host, components)
    host.start(PROCESSES)
    old_result, _ = collect_bundle(host, tmp_path / "old", fmt="7z")

    host.stop_process("proctrigger")  # a process stops; its PID file stays, now stale
    old_port = host.ports["procrpc"]
    host.stop_process("procrpc")  # its port moves
    host.ports["procrpc"] = old_port + 7
    _write_catalog(host, components)
    host.start(["procrpc"])
    _edit_config(host, DEFAULT_LOG_LEVEL="debug", CONTROLDB_PASS="a-brand-new-secret")
    publish(rabbit, "oxy_triggers", 5)
    new_result, _ = collect_bundle(host, tmp_path / "new", fmt="7z")

    done = akdiag("diff", str(old_result.path), str(new_result.path), "--format", "json")
    assert done.returncode == 1, done.stderr  # a process was lost: a regression
    report = json.loads(done.stdout)
    found = {_key(c, section) for section, changes in report["sections"].items() for c in changes
             if section not in ("findings",)}
    expected = {
        ("processes", "proctrigger", "status", "removed"),
        ("processes", "procrpc", "started_at", "changed"),
        ("processes", "procrpc", "port", "changed"),
        ("pidfiles", "proctrigger.pid", "state", "changed"),
        ("ports", f"tcp 127.0.0.1:{old_port}", "listening", "removed"),
        ("ports", f"tcp 127.0.0.1:{old_port + 7}", "listening", "added"),
        ("config", "config/main.json DEFAULT_LOG_LEVEL", "DEFAULT_LOG_LEVEL", "changed"),
        ("config", "config/main.json CONTROLDB_PASS", "CONTROLDB_PASS", "changed"),
        ("datastores", "rabbitmq", "queue oxy_triggers", "rose"),
    }
    assert found == expected
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
    new_ids = {(f["id"], f["subject"]) for f in report["findings"]["new"]}
    assert ("process.down", "proctrigger") in new_ids
    assert report["findings"]["resolved"] == [] and report["findings"]["unchanged"] >= 0
    text = akdiag("diff", str(old_result.path), str(new_result.path))
    assert text.returncode == 1 and "REGRESSION" in text.stdout and "proctrigger: running -> down" in text.stdout


def test_no_change_is_no_regression(host, tmp_path):
    host.start(["api"])
    old, reader_old = collect_bundle(host, tmp_path / "a")
    new, reader_new = collect_bundle(host, tmp_path / "b")
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
