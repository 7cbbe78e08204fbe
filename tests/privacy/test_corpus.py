"""Issue 11's proof: a few hundred planted secrets and subscriber data, one marker each,
through a real `akdiag collect` in four modes; the extracted bundle is grepped, file
names included, for every marker.

Each failure message is a to-do list: every leaked item with its family and the files
it reached.  The ratchet over known_leaks.json also says what got better or worse
since the baseline was recorded.  The summary per family: `python3 -m tests.privacy.report`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections import Counter

import psutil
import pytest

from collector.simulate import SimulatedHost
from conftest import akdiag

from . import harness, plant_config
from .bundlecheck import MAX_PARSED_BYTES, bundle_folders, unparsable_files
from .items import EMAIL, KEEP, KINDS, MODES, PHONE, SECRET, Corpus

REQUIRED_FAMILIES = {
    "kv_line", "json_in_string", "query_string", "header", "cookie", "authorization", "go_dump", "xml", "ini",
    "list_object", "vocab", "token_aws", "token_slack", "token_github", "token_stripe", "token_sendgrid",
    "token_google", "token_jwt", "token_url_path", "smtp_auth", "private_key", "cmdline_process", "cmdline_akd",
    "url", "multiline", "encoding", "names", "redact_pattern", "pii_email", "pii_phone", "pii_ip", "pii_host",
    "keep_measure", "keep_version", "keep_module", "keep_cmdline", "config_json",
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    host = SimulatedHost(tmp_path_factory.mktemp("privacy-host")).build()
    try:
        corpus = harness.build(host)
        yield host, corpus, tmp_path_factory.mktemp("privacy-runs")
    finally:
        host.stop()


@pytest.fixture(scope="module")
def results(planted):
    """One collection per mode, made when a test first asks for it."""
    host, corpus, workdir = planted
    cache = {}

    def result(mode):
        if mode not in cache:
            cache[mode] = harness.scan(harness.collect(akdiag, host, corpus, mode, workdir), corpus)
        return cache[mode]

    return result


def test_the_corpus_covers_every_family_with_unique_markers(planted):
    _host, corpus, _w = planted
    items = corpus.items
    assert len([i for i in items if i.kind != KEEP and i.family != "uncollected"]) >= 300
    assert REQUIRED_FAMILIES <= {i.family for i in items}
    assert {i.kind for i in items} == set(KINDS)
    markers = [i.marker for i in items]
    assert len(set(markers)) == len(markers)
    assert all(re.fullmatch(r"Zq7m\d{4}", m) for m in markers)


def test_item_keys_are_unique(planted):
    """The baseline names items by family, form and place: each name must be one item."""
    _host, corpus, _w = planted
    keys = Counter(harness.item_key(i) for i in corpus.items)
    assert [k for k, n in keys.items() if n > 1] == []


@pytest.mark.parametrize("mode", list(MODES))
def test_nothing_scrubbed_at_the_baseline_fails_now(results, planted, mode):
    """The ratchet: an item that was masked, a measurement that was kept and a
    file that parsed when known_leaks.json was written still are.  After a fix, record the
    progress with `python3 -m tests.privacy.report --write-baseline`."""
    _host, corpus, _w = planted
    baseline = json.loads(harness.BASELINE.read_text())
    new = harness.regressions(results(mode), corpus, baseline)
    assert new == [], "fails now, not in known_leaks.json:\n" + "\n".join(new)


def _host_text(host) -> str:
    """Everything the corpus put on the host: files (UTF-16 read without its zero
    bytes), file names, the processes' command lines and akd's output."""
    parts = []
    for path in host.basedir.rglob("*"):
        parts.append(str(path.relative_to(host.basedir)))
        if path.is_file() and path.suffix != ".pid" and "ak/bin" not in path.as_posix():
            data = path.read_bytes()
            parts.append(data.decode("utf-8", "replace"))
            parts.append(data.replace(b"\x00", b"").decode("utf-8", "replace"))
    for proc in host.foreign:
        parts.append(" ".join(psutil.Process(proc.pid).cmdline()))
    parts.append(subprocess.run([str(host.basedir / "akd"), "--processes"], capture_output=True, text=True).stdout)
    return "\n".join(parts).lower()


def test_every_item_is_really_planted(planted):
    """The grep can only prove something if each needle is on the host to begin with."""
    host, corpus, _w = planted
    text = _host_text(host)
    absent = [harness.describe(i) for i in corpus.items if not any(n.lower() in text for n in i.needles)]
    assert absent == []


@pytest.mark.parametrize("mode", list(MODES))
def test_no_planted_item_leaks(results, planted, mode):
    _host, corpus, _w = planted
    result = results(mode)
    assert not result.leaks, harness.leak_report(result, corpus)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_json_and_yaml_file_in_the_bundle_parses(results, mode):
    result = results(mode)
    assert result.unparsable == [], "\n".join(f"{path}: {error}" for path, error in result.unparsable)


@pytest.mark.parametrize("mode", list(MODES))
def test_measurements_are_kept(results, planted, mode):
    _host, corpus, _w = planted
    result = results(mode)
    assert result.missing_kept == [], harness.kept_report(result, corpus)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_tail_the_log_index_names_is_in_the_bundle(results, mode):
    """Names are scrubbed consistently (item 8): logs/index.json still finds each tail,
    also the tails of files whose names hold an e-mail or a phone number."""
    result = results(mode)
    index = json.loads((result.root / "logs" / "index.json").read_text())
    tails = [entry["tail"]["bundle_path"] for entry in index["files"] if entry.get("tail")]
    assert len(tails) >= 20
    missing = [path for path in tails if not (result.root / path).is_file()]
    assert missing == [], "tails named in logs/index.json but not in the bundle:\n" + "\n".join(missing)


def test_secrets_are_masked_whatever_the_pseudonymize_mode(results, planted):
    """--no-pseudonymize never weakens secret redaction (item 10): the same secrets come
    through with and without it."""
    _host, corpus, _w = planted
    kinds = {i.marker: i.kind for i in corpus.items}
    secret_leaks = {mode: {m for m in results(mode).leaks if kinds[m] == SECRET}
                    for mode in ("default", "no-pseudonymize")}
    only_without = secret_leaks["no-pseudonymize"] - secret_leaks["default"]
    items = corpus.by_marker()
    assert not only_without, "secrets that leak only with --no-pseudonymize:\n" + "\n".join(
        harness.describe(items[m]) for m in sorted(only_without))


def test_no_pseudonymize_keeps_subscriber_data(results, planted):
    """Subscriber data stays with --no-pseudonymize: the plain forms are in the bundle."""
    _host, corpus, _w = planted
    result = results("no-pseudonymize")
    texts = "\n".join(text for _name, text in harness._texts(result))
    plain = [i for i in corpus.items if i.kind in (EMAIL, PHONE) and i.family in ("pii_email", "pii_phone")]
    missing = [harness.describe(i) for i in plain if not any(n.lower() in texts for n in i.needles)]
    assert missing == []


def test_uncollected_formats_are_listed(planted):
    """Files a real host keeps that akdiag does not collect today: their items are
    planted all the same, so a collection that starts reading them is checked."""
    _host, corpus, _w = planted
    sources = Counter(i.source for i in corpus.items if i.family == "uncollected")
    assert set(sources) == set(plant_config.UNCOLLECTED_TODAY)


def test_pseudonymize_hosts_names_the_archive_after_the_pseudonym(results):
    result = results("ips-hosts")
    own = f"akdiag-{socket.gethostname()}-".lower()
    assert not any(own in name.lower() for name in (result.bundle.name, result.root.name)), result.bundle.name


def test_the_grep_finds_markers_in_contents_utf16_and_names_and_nothing_else(tmp_path):
    """The scan itself: a marker in a file, in UTF-16 text, in a file name; a clean bundle
    has no leak; a kept measurement is found only where it is."""
    corpus = Corpus()
    in_text = corpus.mark("kv_line", "in a text file", "t")
    in_utf16 = corpus.mark("encoding", "in UTF-16", "u")
    in_name = corpus.mark("names", "in a file name", "n", kind=EMAIL)
    clean = corpus.mark("kv_line", "masked", "c")
    kept = corpus.literal("keep_measure", "a size", "k", KEEP, "79456123456")
    lost = corpus.literal("keep_measure", "another size", "k", KEEP, "79456123457")
    root = tmp_path / "akdiag-x" / "akdiag-x"
    root.mkdir(parents=True)
    (root / "a.log").write_text(f"password={in_text.upper()} size=79456123456\n")
    (root / "w.log").write_bytes(f"token={in_utf16}".encode("utf-16-le"))
    (root / f"{in_name.lower()}@example.org.log").write_text("x\n")
    (root / "ok.json").write_text('{"password": "<redacted>"}')
    result = harness.scan(harness.ModeResult("default", tmp_path / "akdiag-x.7z", root), corpus)
    assert set(result.leaks) == {in_text, in_utf16, in_name} and clean not in result.leaks
    assert result.leaks[in_name] == [f"<name> {in_name.lower()}@example.org.log"]
    assert result.missing_kept == [lost] and kept not in result.missing_kept
    assert result.unparsable == []
    nothing = harness.scan(harness.ModeResult("no-pseudonymize", tmp_path / "b.7z", root), corpus)
    assert set(nothing.leaks) == {in_text, in_utf16}  # e-mails stay without pseudonyms


@pytest.mark.malformed_bundle  # broken on purpose: the suite-wide check would fail it
def test_the_parse_check_names_each_broken_file(tmp_path):
    bundle = tmp_path / "out" / "akdiag-x"
    (bundle / "config").mkdir(parents=True)
    (bundle / "manifest.json").write_text("{}")
    (bundle / "config" / "bad.json").write_text('{"a": "unterminated}')
    (bundle / "config" / "bad.yaml").write_text("a: [1, 2\n")
    (bundle / "config" / "good.yml").write_text("a: 1\n---\nb: 2\n")
    (bundle / "huge.json").write_bytes(b"[" * (MAX_PARSED_BYTES + 1))  # skipped: the check stays cheap
    (bundle / "notes.txt").write_text("{not json")
    assert list(bundle_folders(tmp_path)) == [bundle]
    assert [path for path, _error in unparsable_files(bundle)] == ["config/bad.json", "config/bad.yaml"]
