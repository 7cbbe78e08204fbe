"""Names are data too (file names in the bundle, the archive's own name with
--pseudonymize hosts), the customer's patterns never show up even on akdiag's own
command line, and --pseudonym-key makes pseudonyms the same across runs."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from collector.pseudonym_key import KeyFileError, load_or_create

from conftest import akdiag

EMAIL = "dana.subscriber@example.org"
LOG_LINE = "ZqTailShown6620 delivered"


def _collect(host, out: Path, *args: str):
    out.mkdir(parents=True, exist_ok=True)
    done = akdiag("collect", "--basedir", str(host.basedir), "--catalog", str(host.catalog_file),
                  "--output", str(out), "--quiet", "--log-lines", "20", "--datastore-timeout", "0.3", *args)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def _everything(root: Path) -> str:
    files = [p for p in root.rglob("*") if p.is_file()]
    return "\n".join([p.relative_to(root).as_posix() for p in files]
                     + [p.read_bytes().decode("utf-8", "replace") for p in files])


def test_a_log_named_after_a_subscriber_is_renamed_and_the_report_still_shows_it(host, tmp_path):
    (host.basedir / "logs" / "mail" / EMAIL).mkdir(parents=True)
    (host.basedir / "logs" / "mail" / EMAIL / "bounce.log").write_text(f"{LOG_LINE} to {EMAIL}\n")
    root = _collect(host, tmp_path / "out", "--format", "dir")
    assert EMAIL not in _everything(root)
    index = json.loads((root / "logs" / "index.json").read_text())
    tails = [f["tail"]["bundle_path"] for f in index["files"] if (f.get("tail") or {}).get("bundle_path")
             and "bounce" in f["tail"]["bundle_path"]]
    assert len(tails) == 1 and re.fullmatch(r"logs/mail/email-[0-9a-f]{12}/bounce\.log", tails[0])
    assert (root / tails[0]).is_file()
    manifest = json.loads((root / "manifest.json").read_text())
    assert tails[0] in {f["path"] for f in manifest["files"]}
    redactions = json.loads((root / "redactions.json").read_text())
    assert any(r["file"] == tails[0] and r["rule"] == "pii_email" for r in redactions["by_file"])
    html = (root / "summary.html").read_text()
    assert LOG_LINE in html and tails[0] in html
    for path in root.rglob("*.json"):  # every record still parses
        json.loads(path.read_text())


def test_pseudonymized_hosts_hide_the_hostname_in_the_archive_name_and_its_folder(host, tmp_path):
    bundle = _collect(host, tmp_path / "out", "--format", "tar.gz", "--pseudonymize", "hosts")
    hostname = socket.gethostname()
    assert re.match(r"akdiag-host-[0-9a-f]{12}-\d{8}T\d{6}Z\.tar\.gz$", bundle.name), bundle.name
    with tarfile.open(bundle) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile(bundle.name[:-len(".tar.gz")] + "/manifest.json"))
    assert {n.split("/")[0] for n in names} == {bundle.name[:-len(".tar.gz")]}
    assert manifest["hostname"] == bundle.name.split("-")[1] + "-" + bundle.name.split("-")[2]
    assert hostname not in bundle.name and manifest["hostname"] != hostname


def test_a_redact_pattern_never_appears_even_on_a_command_line(host, tmp_path):
    pattern = r"ZqPat\d{4}"
    host.start(["api"])
    # what akdiag's own entry in the process table looks like: the pattern as an argument
    host.start_extra("api", extra_args=["--redact-pattern", pattern, "--note", "ZqPat1234"])
    root = _collect(host, tmp_path / "out", "--format", "dir", "--redact-pattern", pattern)
    text = _everything(root)
    assert "ZqPat" not in text
    processes = json.loads((root / "processes.json").read_text())  # still valid JSON
    cmdlines = [i.get("cmdline") or "" for p in processes["expected"] for i in p["resources"]]
    assert any("--redact-pattern <redacted> --note <redacted>" in c for c in cmdlines), cmdlines


# -- --pseudonym-key -----------------------------------------------------------------------

def _email_token(root: Path) -> str:
    tokens = set(re.findall(r"email-[0-9a-f]{12}", (root / "logs" / "trk.log").read_text()))
    assert len(tokens) == 1
    return tokens.pop()


def test_a_pseudonym_key_gives_the_same_pseudonyms_in_two_runs(host, tmp_path):
    (host.basedir / "logs" / "trk.log").write_text(f"sent to {EMAIL}\n")
    key = tmp_path / "keys" / "akdiag.key"
    key.parent.mkdir()
    first = _collect(host, tmp_path / "a", "--format", "dir", "--pseudonym-key", str(key))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    second = _collect(host, tmp_path / "b", "--format", "dir", "--pseudonym-key", str(key))
    assert _email_token(first) == _email_token(second)
    key_text = key.read_text().strip()
    assert len(key_text) == 64 and key_text not in _everything(first)
    third = _collect(host, tmp_path / "c", "--format", "dir")  # no key: a key of its own
    assert _email_token(third) != _email_token(first)


def test_an_unsafe_key_file_is_refused(host, tmp_path):
    key = tmp_path / "shared.key"
    key.write_text("a" * 64 + "\n")
    key.chmod(0o640)
    done = akdiag("collect", "--basedir", str(host.basedir), "--output", str(tmp_path), "--pseudonym-key", str(key))
    assert done.returncode == 2 and "can be read or written by others" in done.stderr
    assert list(tmp_path.glob("akdiag-*")) == []


def test_key_file_checks(tmp_path):
    created = tmp_path / "new.key"
    key = load_or_create(created)
    assert load_or_create(created) == key and len(key) == 64
    link = tmp_path / "link.key"
    link.symlink_to(created)
    with pytest.raises(KeyFileError, match="symbolic link"):
        load_or_create(link)
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyFileError):
        load_or_create(dangling)
    assert not (tmp_path / "elsewhere").exists()  # never created through the link
    short = tmp_path / "short.key"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a pseudonym key"):
        load_or_create(short)
    basedir = tmp_path / "basedir"
    basedir.mkdir()
    with pytest.raises(KeyFileError, match="inside BASEDIR"):
        load_or_create(basedir / "k.key", basedir)
    assert not (basedir / "k.key").exists()
    (basedir / "logs").mkdir()
    (basedir / "logs" / "k.key").write_text("c" * 64)  # would be collected as a log
    (basedir / "logs" / "k.key").chmod(0o600)
    with pytest.raises(KeyFileError, match="inside BASEDIR"):
        load_or_create(basedir / "logs" / "k.key", basedir)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_a_key_file_owned_by_another_user_is_refused(tmp_path):
    key = tmp_path / "theirs.key"
    key.write_text("b" * 64)
    key.chmod(0o600)
    os.chown(key, 65534, 65534)
    with pytest.raises(KeyFileError, match="owned by uid 65534"):
        load_or_create(key)


def test_a_set_password_argument_keeps_processes_json_valid(host, tmp_path):
    host.start(["api"])
    host.start_extra("api", extra_args=["--set", 'password: "ZqSet7788"', "--set", "mode: fast"])
    root = _collect(host, tmp_path / "out", "--format", "dir")
    processes = json.loads((root / "processes.json").read_text())
    api = [p for p in processes["expected"] if p["name"] == "api"][0]
    assert api["status"] == "running" and len(api["resources"]) == 2
    assert "ZqSet7788" not in _everything(root)
    findings = json.loads((root / "findings.json").read_text())
    assert "api" not in {f.get("subject") for f in findings.get("findings", []) if "down" in f.get("id", "")}
