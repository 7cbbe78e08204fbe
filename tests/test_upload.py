"""`akdiag upload` against real servers on loopback: an HTTPS server with a CA the test
makes (openssl), a CONNECT proxy, servers that fail, refuse, stall and read slowly.  The
address's signature must never appear in anything akdiag prints."""

from __future__ import annotations

import hashlib
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from upload_servers import (QUERY, SIGNATURE, ConnectProxy, Scenario, UploadServer, assert_no_secret, clean_env,
                            make_ca, openssl_missing)

pytestmark = pytest.mark.skipif(openssl_missing() is not None, reason=str(openssl_missing()))

@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def bundle(tmp_path) -> Path:
    path = tmp_path / "akdiag-host1-20261201T120000Z.7z"
    path.write_bytes(os.urandom(300 * 1024) + b"end of the bundle")
    return path


def upload(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", "upload", *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=timeout, env=clean_env(env))


# --------------------------------------------------------------------------- PUT and POST

def test_put_to_a_presigned_url_sends_the_exact_bytes(ca, bundle):
    with UploadServer(ca) as server:
        done = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file)
    assert done.returncode == 0, done.stderr
    [received] = server.received
    assert received.method == "PUT"
    assert received.path == f"/bucket/bundle.7z?{QUERY}"  # the signature reached the server as given
    assert received.body == bundle.read_bytes()
    assert f"Uploaded:  {bundle.name} -> https://127.0.0.1:{server.port}/bucket/bundle.7z?…" in done.stdout
    assert "\r" not in done.stderr  # no terminal: no progress bar
    assert_no_secret(done)


def test_post_sends_a_multipart_form_with_the_field_asked(ca, bundle):
    with UploadServer(ca) as server:
        default = upload(bundle, "--url", server.url("/upload", "token=" + SIGNATURE), "--method", "post",
                         "--ca-file", ca.ca_file)
        named = upload(bundle, "--url", server.url("/upload", "token=" + SIGNATURE), "--method", "post",
                       "--field", "attachment", "--ca-file", ca.ca_file)
    assert default.returncode == 0 and named.returncode == 0, default.stderr + named.stderr
    first, second = server.received
    assert first.method == "POST" and first.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert first.form_file() == ("file", bundle.name, bundle.read_bytes())
    assert second.form_file() == ("attachment", bundle.name, bundle.read_bytes())
    assert_no_secret(default)
    assert_no_secret(named)


def test_post_to_an_endpoint_ending_in_a_slash_goes_to_the_endpoint_itself(ca, bundle):
    """A ticket system's upload endpoint (`.../upload/`) is not a folder: the form is posted
    to it, with one file as with several."""
    with UploadServer(ca) as server:
        done = upload(bundle, "--url", server.url("/api/upload/", "token=" + SIGNATURE), "--method", "post",
                      "--ca-file", ca.ca_file)
    assert done.returncode == 0, done.stderr
    (received,) = server.received
    assert received.method == "POST" and received.path == "/api/upload/?token=" + SIGNATURE
    assert received.form_file() == ("file", bundle.name, bundle.read_bytes())


def test_a_large_file_is_streamed_not_read_into_memory(ca, tmp_path):
    """200 MiB sent by a process whose peak memory stays far below that (the file is read
    in chunks as it is sent)."""
    large = tmp_path / "large.7z"
    with open(large, "wb") as handle:
        for _ in range(200):
            handle.write(os.urandom(1024) * 1024)
    digest = hashlib.sha256()
    with open(large, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    measure = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(done.returncode)")
    with UploadServer(ca, Scenario(keep_body=False)) as server:
        done = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "collector", "upload", str(large),
                               "--url", server.url(query=QUERY), "--ca-file", str(ca.ca_file)],
                              capture_output=True, text=True, timeout=300, env=clean_env())
    assert done.returncode == 0, done.stderr
    [received] = server.received
    assert (received.size, received.sha256) == (200 * 1024 * 1024, digest.hexdigest())
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    assert peak_kib < 100 * 1024, f"peak memory {peak_kib} KiB for a 200 MiB file"


def test_a_password_in_the_address_is_sent_as_basic_auth_and_never_shown(ca, bundle):
    import base64

    with UploadServer(ca) as server:
        url = server.url("/upload").replace("https://", "https://case42:Pa%24%24w0rd-secret@")
        done = upload(bundle, "--url", url, "--method", "post", "--ca-file", ca.ca_file)
    assert done.returncode == 0, done.stderr
    expected = "Basic " + base64.b64encode(b"case42:Pa$$w0rd-secret").decode()
    assert server.received[0].headers["Authorization"] == expected
    assert f"https://case42@127.0.0.1:{server.port}/upload" in done.stdout
    assert "w0rd-secret" not in done.stdout + done.stderr


# --------------------------------------------------------------------------- TLS

def test_an_unknown_ca_is_refused_and_ca_file_makes_it_trusted(ca, bundle):
    with UploadServer(ca) as server:
        refused = upload(bundle, "--url", server.url(query=QUERY), "--retries", "3")
        assert server.received == []
        accepted = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file)
    assert refused.returncode == 6
    assert "certificate is not trusted" in refused.stderr and "--ca-file" in refused.stderr
    assert "attempt 2" not in refused.stderr  # a certificate does not change by trying again
    assert f"Not sent: {bundle.name}" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    assert [r.body for r in server.received] == [bundle.read_bytes()]
    assert_no_secret(refused)


def test_a_ca_file_that_is_not_a_certificate_is_bad_input(tmp_path, bundle):
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    done = upload(bundle, "--url", "https://127.0.0.1:9/x", "--ca-file", junk)
    assert done.returncode == 2
    assert "--ca-file" in done.stderr


# --------------------------------------------------------------------------- failures

def test_two_503s_then_success_is_retried_with_backoff(ca, bundle):
    with UploadServer(ca, Scenario(statuses=[503, 503, 201])) as server:
        done = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file)
    assert done.returncode == 0, done.stderr
    assert server.requests == 3
    assert [r.body for r in server.received] == [bundle.read_bytes()]
    assert "503" in done.stderr and "attempt 2 of 5 in 1 s" in done.stderr and "attempt 3 of 5 in 2 s" in done.stderr
    assert_no_secret(done)


def test_413_is_not_retried_and_says_too_large(ca, bundle):
    with UploadServer(ca, Scenario(statuses=[413])) as server:
        done = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file)
    assert done.returncode == 6
    assert server.requests == 1
    assert "too large for the server" in done.stderr
    assert_no_secret(done)


def test_413_before_the_body_is_read_is_still_understood(ca, tmp_path):
    """A server (or a proxy) that answers 413 from the headers and closes without reading
    the body: the write fails, and the answer already received is what is reported."""
    large = tmp_path / "large.7z"
    large.write_bytes(os.urandom(8 * 1024 * 1024))
    with UploadServer(ca, Scenario(statuses=[413], answer_first=True)) as server:
        done = upload(large, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file)
    assert done.returncode == 6
    assert server.requests == 1
    assert "too large for the server (8.0 MiB" in done.stderr, done.stderr
    assert_no_secret(done)


def test_a_refusal_that_echoes_the_signature_does_not_show_it(ca, bundle):
    answer = (f"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature "
              f"we calculated does not match</Message><SignatureProvided>{SIGNATURE}</SignatureProvided>"
              f"<CanonicalRequest>PUT /bucket/bundle.7z {QUERY}</CanonicalRequest></Error>").encode()
    with UploadServer(ca, Scenario(statuses=[403], answer=answer, answer_type="application/xml")) as server:
        done = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file)
    assert done.returncode == 6
    assert server.requests == 1  # a 4xx is not retried
    assert "403" in done.stderr and "SignatureDoesNotMatch" in done.stderr
    assert_no_secret(done)


def test_a_server_that_never_answers_is_given_up_in_bounded_time(ca, bundle):
    with UploadServer(ca, Scenario(stall=60)) as server:
        started = time.monotonic()
        done = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file, "--timeout", "2s",
                      "--retries", "1")
        elapsed = time.monotonic() - started
    assert done.returncode == 6
    assert server.requests == 2  # tried again once
    assert "no answer in time" in done.stderr
    assert elapsed < 20  # two attempts of ~2 s and a 1 s backoff, with start-up
    assert_no_secret(done)


def test_a_slow_server_shows_a_progress_bar_on_a_terminal(ca, tmp_path):
    big = tmp_path / "big.7z"
    big.write_bytes(os.urandom(1024 * 1024))
    env = clean_env()
    main, child = pty.openpty()
    with UploadServer(ca, Scenario(chunk_pause=0.08)) as server:
        proc = subprocess.Popen([sys.executable, "-m", "collector", "upload", str(big), "--url",
                                 server.url(query=QUERY), "--ca-file", str(ca.ca_file)],
                                stdout=subprocess.PIPE, stderr=child, env=env)
        os.close(child)
        seen = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        stdout, _ = proc.communicate(timeout=60)
        os.close(main)
    text = seen.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert server.received[0].body == big.read_bytes()
    assert "big.7z [" in text and "100%" in text and "1.0 MiB / 1.0 MiB" in text
    assert text.count("\r") >= 3  # redrawn as the bytes went
    assert SIGNATURE not in text + stdout.decode()


# --------------------------------------------------------------------------- bad input

def test_plain_http_is_refused_unless_insecure_http(bundle):
    with UploadServer() as server:
        refused = upload(bundle, "--url", server.url(query=QUERY))
        assert server.requests == 0
        allowed = upload(bundle, "--url", server.url(query=QUERY), "--insecure-http")
    assert refused.returncode == 2
    assert "plain http" in refused.stderr and "--insecure-http" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert server.received[0].body == bundle.read_bytes()
    assert_no_secret(refused)
    assert_no_secret(allowed)


@pytest.mark.parametrize("url, said", [
    ("ftp://127.0.0.1/x", "not ftp://"),
    ("https:///nohost?" + QUERY, "names no host"),
    ("https://127.0.0.1:99999/x?" + QUERY, "not a valid address"),
    ("sftp://user:password@127.0.0.1/x", "keys only"),
    ("sftp://-oProxyCommand=x/x", "cannot start with -"),
])
def test_a_bad_address_is_bad_input(bundle, url, said):
    done = upload(bundle, "--url", url)
    assert done.returncode == 2
    assert said in done.stderr
    assert_no_secret(done)
    assert "password" not in done.stderr.replace("the password", "")


def test_a_missing_file_and_a_file_over_the_size_limit_send_nothing(ca, bundle, tmp_path):
    with UploadServer(ca) as server:
        missing = upload(tmp_path / "nothing.7z", "--url", server.url(query=QUERY), "--ca-file", ca.ca_file)
        too_big = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file,
                         "--max-upload-size", "100K")
        fits = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file, "--max-upload-size", "1M")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert too_big.returncode == 2 and "over --max-upload-size 100.0 KiB" in too_big.stderr
    assert fits.returncode == 0
    assert server.requests == 1


# --------------------------------------------------------------------------- proxy

def test_https_proxy_is_used_through_connect_and_no_proxy_bypasses_it(ca, bundle):
    with UploadServer(ca) as server, ConnectProxy() as proxy:
        proxied = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file,
                         env={"HTTPS_PROXY": proxy.url})
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"]
        bypassed = upload(bundle, "--url", server.url(query=QUERY), "--ca-file", ca.ca_file,
                          env={"HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1"})
    assert proxied.returncode == 0 and bypassed.returncode == 0, proxied.stderr + bypassed.stderr
    assert proxy.tunnels == [f"127.0.0.1:{server.port}"]  # not used the second time
    assert [r.body for r in server.received] == [bundle.read_bytes()] * 2
    assert_no_secret(proxied)


def test_http_proxy_carries_an_insecure_http_upload(bundle):
    with UploadServer() as server, ConnectProxy() as proxy:
        done = upload(bundle, "--url", server.url(query=QUERY), "--insecure-http", env={"HTTP_PROXY": proxy.url})
    assert done.returncode == 0, done.stderr
    assert proxy.forwarded == [f"PUT {server.url(query=QUERY)}"]
    assert server.received[0].body == bundle.read_bytes()
    assert_no_secret(done)


def test_a_proxy_that_does_not_answer_is_a_failed_upload(ca, bundle):
    from servers.hostile import refused_port

    done = upload(bundle, "--url", f"https://127.0.0.1:9/x?{QUERY}", "--retries", "0",
                  env={"HTTPS_PROXY": f"http://127.0.0.1:{refused_port()}"})
    assert done.returncode == 6
    assert "refused" in done.stderr.lower()
    assert_no_secret(done)


# --------------------------------------------------------------------------- several files, configured address

def test_split_volumes_go_to_a_folder_address_each_by_its_name(ca, tmp_path):
    volumes = []
    for number in (1, 2):
        volume = tmp_path / f"akdiag-h-20261201T120000Z.7z.00{number}"
        volume.write_bytes(os.urandom(50_000))
        volumes.append(volume)
    sums = tmp_path / "akdiag-h-20261201T120000Z.7z.sha256"
    sums.write_text("abc  akdiag-h-20261201T120000Z.7z.001\n")
    with UploadServer(ca) as server:
        one_object = upload(*volumes, "--url", server.url("/bucket/x.7z", QUERY), "--ca-file", ca.ca_file)
        assert server.requests == 0
        folder = upload(*volumes, sums, "--url", server.url("/bucket/case-42/"), "--ca-file", ca.ca_file)
    assert one_object.returncode == 2 and "one pre-signed --url per file" in one_object.stderr
    assert folder.returncode == 0, folder.stderr
    assert {r.path: r.body for r in server.received} == {
        f"/bucket/case-42/{p.name}": p.read_bytes() for p in volumes + [sums]}


def test_the_address_comes_from_the_catalog_or_the_environment_and_url_wins(ca, bundle, tmp_path):
    catalog = tmp_path / "site.yaml"
    with UploadServer(ca) as catalog_server, UploadServer(ca) as env_server, UploadServer(ca) as url_server:
        catalog.write_text(f"upload:\n  url: {catalog_server.url('/tickets', 'key=' + SIGNATURE)}\n"
                           "  method: post\n  field: attachment\n")
        from_catalog = upload(bundle, "--catalog", catalog, "--ca-file", ca.ca_file)
        from_env = upload(bundle, "--catalog", catalog, "--ca-file", ca.ca_file, "--method", "put",
                          env={"AKDIAG_UPLOAD_URL": env_server.url(query=QUERY)})
        from_url = upload(bundle, "--catalog", catalog, "--ca-file", ca.ca_file, "--method", "put",
                          "--url", url_server.url(query=QUERY), env={"AKDIAG_UPLOAD_URL": env_server.url()})
    assert (from_catalog.returncode, from_env.returncode, from_url.returncode) == (0, 0, 0)
    assert catalog_server.received[0].form_file() == ("attachment", bundle.name, bundle.read_bytes())
    assert env_server.received[0].method == "PUT" and len(env_server.received) == 1
    assert url_server.received[0].body == bundle.read_bytes()
    for done in (from_catalog, from_env, from_url):
        assert_no_secret(done)


def test_a_bad_upload_entry_in_the_catalog_names_its_line(bundle, tmp_path):
    catalog = tmp_path / "site.yaml"
    catalog.write_text(f"upload:\n  url: https://example.invalid/x?sig={SIGNATURE}\n  method: patch\n")
    done = upload(bundle, "--catalog", catalog)
    assert done.returncode == 2
    assert "line 3" in done.stderr and "upload.method" in done.stderr
    catalog.write_text("upload:\n  url: ftp://example.invalid/x\n")
    done = upload(bundle, "--catalog", catalog)
    assert done.returncode == 2 and "upload.url" in done.stderr


def test_the_pseudonym_mapping_is_never_sent(ca, bundle, tmp_path):
    mapping = tmp_path / (bundle.name + ".mapping.json")
    mapping.write_text('{"user1@example.invalid": "someone@real.example"}')
    with UploadServer(ca) as server:
        done = upload(bundle, mapping, "--url", server.url("/bucket/"), "--ca-file", ca.ca_file)
    assert done.returncode == 2
    assert "never sent" in done.stderr
    assert server.requests == 0


def test_no_address_anywhere_is_bad_input(bundle):
    done = upload(bundle)
    assert done.returncode == 2
    assert "--url" in done.stderr and "AKDIAG_UPLOAD_URL" in done.stderr
