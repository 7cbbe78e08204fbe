"""`collect --upload`: the bundle is written, then sent; a bad address stops the run
before anything is collected, a failed transfer leaves the bundle and its path (exit 6),
and the manifest's command line never holds the address's signature.  Also the pieces:
which files of a bundle are sent, how an address is shown."""

from __future__ import annotations

import json
import time
import subprocess
from pathlib import Path

import pytest

from upload_servers import (QUERY, SIGNATURE, Scenario, UploadServer, assert_no_secret, clean_env, make_ca,
                            openssl_missing)

from collector.upload import bundle_files
from collector.upload.redaction import hidden_in_command_line, safe_url, scrub

needs_openssl = pytest.mark.skipif(openssl_missing() is not None, reason=str(openssl_missing()))


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("ca"))


def collect(host, out: Path, *args, env=None) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
                           "--catalog", str(host.catalog_file), "--output", str(out), "--timeout", "60",
                           "--format", "tar.gz", *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=180, env=clean_env(env))


def manifest_of(archive: Path) -> dict:
    import tarfile

    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/manifest.json"))
        return json.load(tar.extractfile(member))


@needs_openssl
def test_collect_upload_sends_the_written_bundle_and_hides_the_signature(host, tmp_path, ca):
    out = tmp_path / "out"
    out.mkdir()
    with UploadServer(ca) as server:
        done = collect(host, out, "--upload", server.url(query=QUERY), "--ca-file", ca.ca_file)
    assert done.returncode == 0, done.stderr
    [archive] = out.glob("*.tar.gz")
    assert [r.body for r in server.received] == [archive.read_bytes()]
    assert f"Uploaded:  {archive.name} -> " in done.stdout
    assert_no_secret(done)
    manifest = manifest_of(archive)
    assert f"--upload 'https://127.0.0.1:{server.port}/bucket/bundle.7z?…'" in manifest["command_line"]
    assert SIGNATURE not in json.dumps(manifest) and "AKIAEXAMPLEKEYID" not in json.dumps(manifest)


@needs_openssl
def test_collect_upload_that_fails_keeps_the_bundle_and_exits_6(host, tmp_path, ca):
    out = tmp_path / "out"
    out.mkdir()
    with UploadServer(ca, Scenario(statuses=[503])) as server:
        done = collect(host, out, "--upload", "--ca-file", ca.ca_file, "--upload-retries", "1", "--quiet",
                       env={"AKDIAG_UPLOAD_URL": server.url(query=QUERY)})
    assert done.returncode == 6
    assert server.requests == 2
    [archive] = out.glob("*.tar.gz")
    assert done.stdout.strip() == str(archive.resolve())  # --quiet: the path, as without --upload
    assert f"stays here: {archive.resolve()}" in done.stderr
    assert_no_secret(done)


@needs_openssl
def test_collect_upload_over_the_size_limit_sends_nothing_and_keeps_the_bundle(host, tmp_path, ca):
    out = tmp_path / "out"
    out.mkdir()
    with UploadServer(ca) as server:
        done = collect(host, out, "--upload", server.url(query=QUERY), "--ca-file", ca.ca_file,
                       "--max-upload-size", "1K")
    assert done.returncode == 6
    assert server.requests == 0
    [archive] = out.glob("*.tar.gz")
    assert "over --max-upload-size 1.0 KiB" in done.stderr
    assert f"stays here: {archive.resolve()}" in done.stderr
    assert_no_secret(done)


@needs_openssl
def test_collect_upload_stopped_by_sigterm_says_the_bundle_stays(host, tmp_path, ca):
    import signal
    import sys

    out = tmp_path / "out"
    out.mkdir()
    with UploadServer(ca, Scenario(stall=60)) as server:
        proc = subprocess.Popen([sys.executable, "-m", "collector", "collect", "--basedir", str(host.basedir),
                                 "--catalog", str(host.catalog_file), "--output", str(out), "--format", "tar.gz",
                                 "--upload", server.url(query=QUERY), "--ca-file", str(ca.ca_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        deadline = time.monotonic() + 120
        while server.requests == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    [archive] = out.glob("*.tar.gz")
    assert proc.returncode == 143, stderr
    assert f"the bundle was written and stays here: {archive.resolve()}" in stderr
    assert SIGNATURE not in stdout + stderr


def test_collect_upload_with_a_bad_address_collects_nothing(host, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    plain = collect(host, out, "--upload", f"http://127.0.0.1:9/x?{QUERY}")
    folder = collect(host, out, "--upload", "https://127.0.0.1:9/x", "--format", "dir")
    nowhere = collect(host, out, "--upload")
    assert (plain.returncode, folder.returncode, nowhere.returncode) == (2, 2, 2)
    assert "plain http" in plain.stderr and "--format 7z or tar.gz" in folder.stderr
    assert "no upload address" in nowhere.stderr
    assert list(out.iterdir()) == []
    assert_no_secret(plain)


def test_upload_options_without_upload_and_upload_with_a_cluster_are_refused(host, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = collect(host, out, "--upload-method", "post")
    assert done.returncode == 2 and "need --upload" in done.stderr
    cluster = collect(host, out, "--host", "app1", "--upload", "https://127.0.0.1:9/x")
    assert cluster.returncode == 2 and "akdiag upload ARCHIVE" in cluster.stderr
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- the pieces

def test_bundle_files_are_the_archive_or_its_volumes_then_the_checksums(tmp_path):
    one = tmp_path / "akdiag-a-20261201T120000Z.7z"
    one.write_bytes(b"x")
    (tmp_path / "akdiag-a-20261201T120000Z.7z.sha256").write_text("sum")
    (tmp_path / "akdiag-a-20261201T120000Z.7z.mapping.json").write_text("{}")  # never sent
    (tmp_path / "akdiag-a-20261201T1200.7z").write_bytes(b"another bundle")
    assert [p.name for p in bundle_files(one)] == [one.name, one.name + ".sha256"]
    split = tmp_path / "akdiag-b-20261201T120000Z.7z"
    for name in (".002", ".001", ".010", ".001.sha256", ".002.sha256", ".010.sha256", ".sha256"):
        Path(str(split) + name).write_text("v")
    expected = [split.name + n for n in (".001", ".002", ".010", ".001.sha256", ".002.sha256", ".010.sha256",
                                         ".sha256")]
    assert [p.name for p in bundle_files(split)] == expected
    assert [p.name for p in bundle_files(Path(str(split) + ".001"))] == expected


def test_one_presigned_url_gets_the_archive_and_a_folder_gets_its_checksum_too(tmp_path):
    from collector.upload import files_to_send
    from collector.upload.target import parse_target

    archive = tmp_path / "akdiag-a-20261201T120000Z.7z"
    archive.write_bytes(b"x")
    checksum = tmp_path / (archive.name + ".sha256")
    checksum.write_text("sum")
    one_object = parse_target(f"https://store.example/b/case.7z?{QUERY}")
    assert files_to_send(archive, [one_object]) == ([archive], [checksum])
    assert files_to_send(archive, [parse_target("https://store.example/b/case-42/")]) == ([archive, checksum], [])
    assert files_to_send(archive, [parse_target("https://t.example/up", "post")]) == ([archive, checksum], [])
    assert files_to_send(archive, [parse_target("sftp://u@h.example/in")]) == ([archive, checksum], [])
    volumes = [Path(str(archive) + ".001"), Path(str(archive) + ".002")]
    archive.unlink()
    for volume in volumes:
        volume.write_bytes(b"v")
    assert files_to_send(archive, [one_object]) == (volumes + [checksum], [])  # refused by plan(): several objects


@pytest.mark.parametrize("url, shown", [
    (f"https://store.example/b/k.7z?{QUERY}", "https://store.example/b/k.7z?…"),
    ("https://user:s3cret@host.example:8443/up?token=abcdef#frag", "https://user@host.example:8443/up?…"),
    ("https://host.example/up", "https://host.example/up"),
    ("sftp://support@files.example:2222/~/in/", "sftp://support@files.example:2222/~/in/"),
])
def test_an_address_is_shown_without_its_query_or_password(url, shown):
    assert safe_url(url) == shown


def test_quoted_text_and_the_command_line_lose_the_secret():
    url = f"https://h.example/k?{QUERY}"
    quoted = f"signature {SIGNATURE} credential AKIAEXAMPLEKEYID/20261201/us-east-1/s3 given"
    assert SIGNATURE not in scrub(quoted, url) and "AKIAEXAMPLEKEYID" not in scrub(quoted, url)
    words = hidden_in_command_line(["akdiag", "collect", "--upload", url, "--quiet", f"--upload={url}",
                                    "--upload", "--label", "x"])
    assert words == ["akdiag", "collect", "--upload", "https://h.example/k?…", "--quiet",
                     "--upload=https://h.example/k?…", "--upload", "--label", "x"]



def test_the_help_names_the_environment_variable_the_target_reads():
    from collector import cli_upload
    from collector.upload import target

    assert cli_upload.ENVIRONMENT == target.ENVIRONMENT
