"""The bundle leaves the customer's network: a planted corpus of secrets and e-mails
must not survive a real collection, and encrypted archives must hide everything."""

from __future__ import annotations

import ast
import json
import re
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, akdiag

MARKERS = {
    "cmdline": "ZqCmdline7731",
    "log_kv": "ZqLogKv8842",
    "log_url": "ZqLogUrl9953",
    "log_bearer": "ZqBearer1064",
    "log_pem": "ZqPemBody2175",
    "log_split": "ZqSplitOverCap3286ABCDEFGHIJKLMNOP",
    "log_head": "ZqTailHead4397",
    "akd": "ZqAkdOut5408",
    "custom": "ACME-778899",
}
EMAILS = ["alice.subscriber@example.org", "bob+promo@mail.example.net"]
LOG_BYTES = 4096
LOG_LINES = 12


def _plant(host) -> None:
    logs = host.basedir / "logs"
    (logs / "procworkflow.log").write_text(
        "2026-11-29T10:00:00Z INFO start\n"
        f"2026-11-29T10:00:01Z INFO send to {EMAILS[0]} ok\n"
        f"2026-11-29T10:00:02Z ERROR login failed password={MARKERS['log_kv']} for {EMAILS[1]}\n"
        f"2026-11-29T10:00:03Z DEBUG dial mongodb://altcraft:{MARKERS['log_url']}@127.0.0.1:27017/admin\n"
        f"2026-11-29T10:00:04Z DEBUG header Authorization: Bearer {MARKERS['log_bearer']}\n"
        "-----BEGIN RSA PRIVATE KEY-----\n"
        f"MIIEpAIBAAKCAQEA{MARKERS['log_pem']}\n"
        "-----END RSA PRIVATE KEY-----\n"
        f"2026-11-29T10:00:05Z INFO contract {MARKERS['custom']} renewed\n"
    )
    # A line longer than the tail cap whose secret straddles the cut: the key is cut off.
    head = "2026-11-29T10:00:06Z DEBUG payload " + "x" * 3000 + " api_key="
    secret = MARKERS["log_split"]
    rest = " " + "y" * (LOG_BYTES - len(secret) // 2 - 2)
    line = head + secret + rest + "\n"
    (logs / "api.log").write_text(line)
    cut_at = len(line) - LOG_BYTES
    assert len(head) < cut_at < len(head) + len(secret), "the cap must fall inside the secret"
    # A secret exactly at the start of a tail (the tail is the last LOG_LINES lines).
    after = [f"to {EMAILS[0]}"] + [f"line {i}" for i in range(LOG_LINES - 2)]
    (logs / "trkaction.log").write_text(
        "old line\n" * 3 + f"password={MARKERS['log_head']} at the first line of the tail\n" + "\n".join(after) + "\n")
    (host.basedir / "akd").write_text(
        "#!/bin/sh\n"
        f"echo 'Altcraft platform v2025.1'\necho 'AK:api running (mongodb://u:{MARKERS['akd']}@db1/x)'\n"
        f"echo 'last mail to {EMAILS[1]}'\n")


def _all_files(root: Path):
    return [p for p in root.rglob("*") if p.is_file()]


def _extract(bundle: Path, target: Path, password: str = None) -> Path:
    argv = ["7z", "x", "-y", f"-o{target}", str(bundle)] + ([f"-p{password}"] if password else [])
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    (root,) = [p for p in target.iterdir() if p.is_dir()]
    return root


@pytest.fixture
def planted(host):
    host.start(["api", "procworkflow"])
    host.start_extra("api", extra_args=["--password", MARKERS["cmdline"]])
    _plant(host)
    return host


def test_no_planted_secret_or_email_survives_a_collection(planted, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--basedir", str(planted.basedir), "--catalog", str(planted.catalog_file),
                  "--output", str(out), "--log-bytes", str(LOG_BYTES), "--log-lines", str(LOG_LINES),
                  "--redact-pattern", r"ACME-\d{6}", "--keep-mapping", "--quiet")
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip())
    root = _extract(bundle, tmp_path / "x")
    everything = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in _all_files(root))
    for name, marker in MARKERS.items():
        assert marker not in everything, name
    assert MARKERS["log_split"][-10:] not in everything  # not even the half after the cut
    assert planted.secret_seed not in everything  # every secret of main.json
    for email in EMAILS:
        assert email not in everything.lower()
    # each e-mail is one pseudonym, the same in every file
    tokens = {}
    for path in _all_files(root):
        for token in re.findall(r"email-[0-9a-f]{12}", path.read_text(errors="replace")):
            tokens.setdefault(token, set()).add(path.relative_to(root).as_posix())
    mapping = json.loads(bundle.with_name(bundle.name + ".mapping.json").read_text())
    by_email = {mapping[t].lower(): t for t in tokens}
    assert set(by_email) >= set(EMAILS)
    # others only in the host's own kernel log (its drivers name their authors' addresses)
    assert all(tokens[by_email[e]] <= {"kernel/messages.txt"} for e in set(by_email) - set(EMAILS))
    assert {"logs/procworkflow.log", "logs/trkaction.log"} <= tokens[by_email[EMAILS[0]]]
    assert {"logs/procworkflow.log", "commands/akd-processes.txt"} <= tokens[by_email[EMAILS[1]]]
    # the mapping lives beside the bundle, owner-only, never inside it
    mapping_file = bundle.with_name(bundle.name + ".mapping.json")
    assert stat.S_IMODE(mapping_file.stat().st_mode) == 0o600
    assert not any(p.name.endswith("mapping.json") for p in _all_files(root))
    # the report counts what was replaced
    redactions = json.loads((root / "redactions.json").read_text())
    for rule in ("pii_email", "url_credentials", "key_value_secret", "authorization_header",
                 "pem_private_key_block", "cli_secret_flag", "cut_line_head", "custom:1"):
        assert redactions["by_rule"].get(rule, 0) >= 1, rule
    for name in ("redactions.json", "manifest.json"):  # the customer's pattern is not written
        assert "ACME" not in (root / name).read_text(), name
    assert "--redact-pattern '<pattern>'" in json.loads((root / "manifest.json").read_text())["command_line"]
    assert "Redactions" in (root / "summary.html").read_text()


def test_no_mapping_file_without_keep_mapping(planted, tmp_path):
    done = akdiag("collect", "--basedir", str(planted.basedir), "--output", str(tmp_path), "--quiet",
                  "--log-lines", "5")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir() if "mapping" in p.name] == []


def test_no_pseudonymize_keeps_emails_but_not_secrets(planted, tmp_path):
    done = akdiag("collect", "--basedir", str(planted.basedir), "--output", str(tmp_path), "--format", "dir",
                  "--no-pseudonymize", "--quiet")
    assert done.returncode == 0, done.stderr
    root = Path(done.stdout.strip())
    text = (root / "logs" / "procworkflow.log").read_text()
    assert EMAILS[0] in text and MARKERS["log_kv"] not in text


def test_encrypted_archive_opens_only_with_its_password(planted, tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text("correct horse battery staple\n")
    out = tmp_path / "out"
    out.mkdir()
    done = akdiag("collect", "--basedir", str(planted.basedir), "--output", str(out), "--encrypt",
                  "--password-file", str(password_file), "--quiet", "--log-lines", "5")
    assert done.returncode == 0, done.stderr
    bundle = Path(done.stdout.strip())
    listing = subprocess.run(["7z", "l", "-pwrong-password", str(bundle)], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
    assert listing.returncode != 0
    assert "manifest.json" not in listing.stdout + listing.stderr  # file names are hidden too
    no_password = subprocess.run(["7z", "l", "-p", str(bundle)], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL)
    assert "manifest.json" not in no_password.stdout
    root = _extract(bundle, tmp_path / "x", password="correct horse battery staple")
    assert json.loads((root / "manifest.json").read_text())["tool"]["name"] == "akdiag"


def test_encrypt_takes_the_password_from_the_environment_never_an_argument(planted, tmp_path):
    done = akdiag("collect", "--basedir", str(planted.basedir), "--output", str(tmp_path), "--encrypt", "--quiet",
                  "--log-lines", "5", env={"AKDIAG_PASSWORD": "from-env-Zq"})
    assert done.returncode == 0, done.stderr
    root = _extract(Path(done.stdout.strip()), tmp_path / "x", password="from-env-Zq")
    assert "from-env-Zq" not in "".join(p.read_text(errors="replace") for p in _all_files(root))
    refused = akdiag("collect", "--encrypt", "--password", "x", "--output", str(tmp_path))
    assert refused.returncode == 2 and "No such option" in refused.stderr


@pytest.mark.parametrize("command", [["collect"], ["collect", "--dry-run"], ["pack"]])
def test_a_password_file_without_encrypt_is_refused_not_ignored(command, tmp_path):
    """An administrator who gives a password file means an encrypted bundle: writing a
    plain one instead would hand support (or a mail server) every file in the clear."""
    password_file = tmp_path / "pw"
    password_file.write_text("correct horse battery staple\n")
    out = tmp_path / "out"
    out.mkdir()
    target = ["--basedir", str(tmp_path)] if command[0] == "collect" else [str(tmp_path)]
    done = akdiag(*command, *target, "--output", str(out), "--password-file", str(password_file))
    assert done.returncode == 2, done.stderr
    assert "--password-file" in done.stderr and "--encrypt" in done.stderr and "not be encrypted" in done.stderr
    assert list(out.iterdir()) == []


def test_encrypt_without_a_password_source_is_a_clear_error(tmp_path):
    done = akdiag("collect", "--basedir", str(tmp_path), "--output", str(tmp_path), "--encrypt",
                  env={"AKDIAG_PASSWORD": ""})
    assert done.returncode == 2
    assert "--password-file" in done.stderr and "AKDIAG_PASSWORD" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_redact_pattern_is_a_usage_error(tmp_path):
    done = akdiag("collect", "--basedir", str(tmp_path), "--output", str(tmp_path), "--redact-pattern", "(oops")
    assert done.returncode == 2 and "not a valid regular expression" in done.stderr


# -- one write point ----------------------------------------------------------------------

# Modules allowed to write files, and why none of them is a way into a bundle around the scrubber.
ALLOWED_WRITERS = {
    "collector/bundle/writer.py": "the one write point: scrubs every byte it stores",
    "collector/bundle/archive.py": "packs the finished, scrubbed folder; writes the mapping beside the bundle",
    "collector/bundle/sevenzip.py": "writes the plain 7z archive of the scrubbed folder, for archive.py",
    "collector/bundle/prepack.py": "begins that archive early, from files the bundle writer wrote and scrubbed",
    "collector/simulate/host.py": "builds the simulated host, never a bundle",
    "collector/state.py": "creates akdiag's own secret-digest key, outside BASEDIR and every bundle",
    "collector/history.py": "appends watch's samples (figures and finding ids, no log text) to its own ring "
                            "in akdiag's state folder, outside BASEDIR; a bundle gets them through the writer",
    "collector/pseudonym_key.py": "creates the --pseudonym-key file the user named, outside BASEDIR and every bundle",
    "collector/console_pipe.py": "puts /dev/null in place of a stdout whose reader has gone",
    "collector/zipapp.py": "builds the single file akdiag.pyz, never a bundle",
    "collector/zipapp_main.py": "the single file's bootstrap: unpacks wheels into akdiag's private cache",
    "collector/bundle/split.py": "cuts the finished, scrubbed archive into volumes and writes their checksums",
    "collector/checkformats/output.py": "writes `check --output FILE`, the check's own text, never a bundle",
    "collector/upload/sftp.py": "writes sftp's batch file (put commands) into a private temporary folder",
}
_WRITE_MODES = re.compile(r"[wax+]")


def _is_bundle_writer(receiver: ast.AST) -> bool:
    """`writer.write_bytes(...)`, `ctx.writer.write_bytes(...)`: the bundle writer."""
    if isinstance(receiver, ast.Name):
        return receiver.id == "writer"
    return isinstance(receiver, ast.Attribute) and receiver.attr == "writer"


def _write_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("write_text", "write_bytes", "dump", "copy", "copy2", "copyfile", "copytree", "writeall",
                    "mkstemp", "link", "symlink"):
            if name in ("write_text", "write_bytes") and _is_bundle_writer(func.value):
                continue  # calls of the bundle writer itself
            yield node.lineno, name
        elif name in ("open", "fdopen", "SevenZipFile"):
            modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
            if any(_WRITE_MODES.search(str(m)) for m in modes):
                yield node.lineno, f"{name}(mode={modes})"
        if name == "open" and isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "os":
            flags = ast.dump(node)
            if any(flag in flags for flag in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND")):
                yield node.lineno, "os.open for writing"


def test_nothing_writes_files_but_the_bundle_writer():
    offenders = []
    for path in sorted((REPO / "collector").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in ALLOWED_WRITERS:
            continue
        for lineno, call in _write_calls(ast.parse(path.read_text(), rel)):
            offenders.append(f"{rel}:{lineno}: {call}")
    assert offenders == [], "files written outside the bundle writer:\n" + "\n".join(offenders)


def test_the_code_walk_finds_a_planted_write():
    sneaky = ast.parse("open(target, 'wb').write(data)\nPath(x).write_text(y)\nos.open(p, os.O_WRONLY)\n")
    assert [call for _line, call in sorted(_write_calls(sneaky))] == ["open(mode=['wb'])", "write_text", "os.open for writing"]


def test_secret_digests_tell_a_change_without_the_secret(host, tmp_path):
    from conftest import collect_bundle
    _r, first = collect_bundle(host, tmp_path / "a", only=("config",))
    _r, again = collect_bundle(host, tmp_path / "b", only=("config",))
    config = json.loads((host.basedir / "config" / "main.json").read_text())
    config["CONTROLDB_PASS"] = "a-new-password"
    (host.basedir / "config" / "main.json").write_text(json.dumps(config))
    _r, changed = collect_bundle(host, tmp_path / "c", only=("config",))

    def digests(reader):
        return {d["key"]: d["digest"] for d in reader.json("config/index.json")["secret_digests"]}

    assert digests(first) == digests(again)
    assert digests(first)["CONTROLDB_PASS"] != digests(changed)["CONTROLDB_PASS"]
    assert digests(first)["RABBITMQ_PASS"] == digests(changed)["RABBITMQ_PASS"]
    assert "CLICKHOUSE_SYSTEM.PASSWORD" in digests(first)
    import os
    key = Path(os.environ["AKDIAG_STATE_DIR"]) / "secret-digest.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and not str(key).startswith(str(host.basedir))
    for reader in (first, changed):
        text = "".join(p.read_text(errors="replace") for p in _all_files(reader.root))
        assert "a-new-password" not in text and host.secret_seed not in text
        assert key.read_bytes().hex() not in text


def test_redactions_count_what_the_final_files_hold(tmp_path):
    """redactions.json is written last: the manifest's own replacements are counted, once
    each, though the manifest is written more than once during a run."""
    basedir, out = tmp_path / "base", tmp_path / "out"
    basedir.mkdir()
    out.mkdir()
    done = akdiag("collect", "--basedir", str(basedir), "--output", str(out), "--format", "dir",
                  "--label", "ops@example.com", "--quiet")
    assert done.returncode == 0, done.stderr
    root = Path(done.stdout.strip().splitlines()[-1])
    manifest_text = (root / "manifest.json").read_text()
    assert "ops@example.com" not in manifest_text
    redactions = json.loads((root / "redactions.json").read_text())
    counted = sum(r["count"] for r in redactions["by_file"] if r["file"] == "manifest.json")
    assert counted == len(re.findall(r"email-[0-9a-f]{12}", manifest_text)) >= 1
