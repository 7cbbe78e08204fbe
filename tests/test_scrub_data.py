"""The bundle writer scrubs akdiag's own JSON records as data: a secret-named key's
value is masked whatever its type, every other string is scrubbed as text, numbers
stay numbers, and the record keeps its shape and stays valid JSON."""

from __future__ import annotations

import json

import pytest

from collector.bundle.scrubdata import SECRET_KEY_RULE, scrub_data
from collector.bundle.writer import BundleWriter
from collector.decoding import TooDeep
from collector.redact import MASK, Scrubber


@pytest.fixture
def writer(tmp_path):
    return BundleWriter(tmp_path / "bundle", Scrubber.for_bundle())


def _shape(data):
    """Keys and value types, recursively (a masked value is a string)."""
    if isinstance(data, dict):
        return {k: _shape(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_shape(v) for v in data]
    return type(data).__name__


def _written(writer, relpath, data):
    record = writer.write_json(relpath, data)
    return json.loads((writer.root / record.path).read_text())


def test_a_clean_record_is_written_as_it_is(writer):
    record = {"pid": 4242, "name": "AK:api", "cmdline": "/opt/akd/ak/bin/api --port 8962", "cpu": 1.5,
              "running": True, "note": None, "children": [], "sizes": {"total": 79_151_234_567, "free": 89151234567}}
    assert _written(writer, "processes.json", record) == record
    assert writer.scrubber.counts.total() == 0


def test_a_command_line_with_a_secret_and_a_closing_quote_keeps_the_record_valid(writer):
    # `--set password: x` used to make the line rule eat the closing quote of processes.json
    record = {"table": [{"pid": 7, "cmdline": 'helm upgrade --set password: "x1Secret"', "cpu": 0.0},
                        {"pid": 8, "cmdline": "app --password=ZqDirty1 --port 80", "cpu": 2.0}]}
    written = _written(writer, "processes.json", record)
    assert _shape(written) == _shape(record)
    text = json.dumps(written)
    assert "x1Secret" not in text and "ZqDirty1" not in text
    assert written["table"][1]["cmdline"].endswith("--port 80")


def test_a_secret_flag_in_an_argument_list_masks_the_next_argument(writer):
    record = {"command": ["mailer", "--smtp-pass", "Zq7Flag1", "--port", "25", "--no-password", "kept"],
              "ssh": ["ssh", "-p", "2222", "db1"]}
    written = _written(writer, "compose.json", record)
    assert written["command"] == ["mailer", "--smtp-pass", MASK, "--port", "25", "--no-password", "kept"]
    assert written["ssh"] == record["ssh"]


@pytest.mark.parametrize("value", ["s3cret", 123456, 12.5, ["a", "b"], {"user": "u", "pw": "p"}])
def test_a_secret_named_key_is_masked_whatever_its_type(writer, value):
    written = _written(writer, "system.json", {"db": {"password": value, "port": 27017}})
    assert written == {"db": {"password": MASK, "port": 27017}}
    assert writer.scrubber.counts.by_rule() == {SECRET_KEY_RULE: 1}


@pytest.mark.parametrize("value", [None, "", [], {}, True, False, "enabled", "Disabled", "none", MASK])
def test_an_empty_boolean_or_setting_secret_value_holds_nothing_to_hide(writer, value):
    assert _written(writer, "system.json", {"requirepass": value}) == {"requirepass": value}


def test_measurements_stay_numbers_and_a_phone_key_is_pseudonymized(writer):
    record = {"bytes_total": 89151234567, "duration_ms": 79031234567, "phone": 89151234567,
              "contact": {"mobile": "+7 915 123-45-67"}}
    written = _written(writer, "system.json", record)
    assert written["bytes_total"] == 89151234567 and written["duration_ms"] == 79031234567
    assert written["phone"].startswith("phone-") and written["contact"]["mobile"].startswith("phone-")


def test_keys_are_scrubbed_as_text_and_never_merge(writer):
    record = {"alice@example.org": 1, "bob@example.org": 2, "<redacted>": 3}
    written = _written(writer, "logs/index.json", {"by_sender": record})["by_sender"]
    assert len(written) == 3 and sorted(written.values()) == [1, 2, 3]
    assert not any("@example.org" in key for key in written)


def test_strings_are_scrubbed_as_text_and_multi_line_strings_line_by_line(writer):
    record = {"stdout": "AK:api running\nlast mail to alice@example.org\ntoken=ZqTok123 ok\n"}
    written = _written(writer, "commands/akd-processes.json", record)
    assert "alice@example.org" not in written["stdout"] and "ZqTok123" not in written["stdout"]
    assert written["stdout"].startswith("AK:api running\n")


def test_akdiags_own_key_names_that_sound_secret_are_not_masked(writer):
    index = {"files": [], "placeholder_secrets": ["main.json:crypt_key"], "secret_digests": [
        {"file": "config/main.json", "key": "crypt_key", "digest": "ab" * 16}]}
    assert _written(writer, "config/index.json", index) == index
    details = {"endpoints": [{"name": "ssdb_hb", "details": {"auth": "not needed"}}]}
    assert _written(writer, "datastores.json", details) == details


def test_a_bare_phone_string_gets_no_quotes_inside_the_string(writer):
    written = _written(writer, "system.json", {"who": "89151234567"})
    assert written["who"].startswith("phone-") and '"' not in written["who"]


def test_a_record_nested_too_deep_is_refused(writer):
    deep = current = {}
    for _ in range(300):
        current["a"] = {}
        current = current["a"]
    with pytest.raises(TooDeep):
        writer.write_json("system.json", deep)


def test_scrub_data_gives_a_copy(writer):
    data = {"password": "x", "list": ["alice@example.org"]}
    copy = scrub_data(writer.scrubber, data, "x.json")
    assert data == {"password": "x", "list": ["alice@example.org"]} and copy["password"] == MASK


# -- names -------------------------------------------------------------------------------

def test_a_host_given_file_name_is_scrubbed_like_the_record_that_names_it(writer):
    relpath = "logs/mail/alice@example.org.log"
    record = writer.write_bytes(relpath, b"hello\n")
    assert "alice@example.org" not in record.path and record.path.startswith("logs/mail/email-")
    index = _written(writer, "logs/index.json", {"files": [{"tail": {"bundle_path": relpath}}]})
    assert index["files"][0]["tail"]["bundle_path"] == record.path
    assert (writer.root / record.path).read_bytes() == b"hello\n"
    assert [f.path for f in writer.files()] == ["logs/index.json", record.path]
    # the name's replacement is counted against the file, once however often it is written
    writer.write_bytes(relpath, b"hello again\n")
    counts = [r for r in writer.scrubber.counts.as_records() if r["file"] == record.path]
    assert counts == [{"rule": "pii_email", "file": record.path, "count": 1}]


def test_akdiags_own_names_are_never_renamed(tmp_path):
    writer = BundleWriter(tmp_path, Scrubber.for_bundle(extra_patterns=("index", "manifest")))
    assert writer.write_json("logs/index.json", {}).path == "logs/index.json"
    assert writer.write_json("manifest.json", {}).path == "manifest.json"
    assert writer.write_bytes("logs/index-2.log", b"x").path == "logs/<redacted>-2.log"


# -- properties ------------------------------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_KEYS = st.sampled_from(["name", "size", "cmdline", "password", "SMTP_PASS", "api_key", "note", "phone", "user",
                         "alice@example.org", "free_bytes", "token"])
_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(
    ["--password s3cr3t", "mongodb://u:pw@db1/x", "bob@example.net", "+7 915 123-45-67", "Bearer abc.def",
     '--set password: "x"', "line one\nline two password=zz", "<redacted>", "89151234567"]))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _TEXT)
_RECORDS = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=30)


def _same_shape(before, after, key=None):
    """After scrubbing: same keys (as many), same list lengths, same types, except a
    masked value (a string) and a phone-keyed number turned into its pseudonym."""
    if isinstance(after, str) and (after == MASK or (key in ("phone",) and isinstance(before, int))):
        return True
    if isinstance(before, dict):
        return (isinstance(after, dict) and len(after) == len(before)
                and all(_same_shape(v, w, k) for (k, v), w in zip(before.items(), after.values())))
    if isinstance(before, list):
        return isinstance(after, list) and len(after) == len(before) and all(
            _same_shape(v, w, key) for v, w in zip(before, after))
    return type(after) is type(before) and (not isinstance(before, (int, float)) or after == before)


@settings(max_examples=200, deadline=None)
@given(_RECORDS)
def test_scrubbing_keeps_every_records_shape_and_json_validity(record):
    scrubbed = scrub_data(Scrubber.for_bundle(), record, "x.json", own_record=True)
    assert _same_shape(record, scrubbed)
    assert json.loads(json.dumps(scrubbed)) == scrubbed
    text = json.dumps(scrubbed)
    for secret in ("s3cr3t", "bob@example.net", "alice@example.org"):
        assert secret not in text


def test_two_names_scrubbed_to_one_stay_two_files(writer):
    first = writer.write_bytes("logs/Alice@Example.org.log", b"one\n")
    second = writer.write_bytes("logs/alice@example.org.log", b"two\n")
    assert first.path != second.path and second.path == first.path + ".akdiag-1"
    assert (writer.root / first.path).read_bytes() == b"one\n" and (writer.root / second.path).read_bytes() == b"two\n"
    assert writer.write_bytes("logs/Alice@Example.org.log", b"again\n").path == first.path  # the same file again


@pytest.mark.parametrize("opener", ["-----BEGIN RSA PRIVATE KEY-----", "password:", "secret: |", "--password"])
def test_no_rule_state_carries_from_one_string_to_the_next(writer, opener):
    record = {"first": opener, "second": "harmless words", "list": [opener, "kept as it is"], "pid": 42}
    written = _written(writer, "processes.json", record)
    assert list(written) == ["first", "second", "list", "pid"]
    assert written["second"] == "harmless words" and written["pid"] == 42
    # a list is items of their own too, except an argument list, where a secret flag's value is the next item
    assert written["list"][1] == (MASK if opener == "--password" else "kept as it is")


def test_a_version_under_a_version_key_is_not_taken_for_an_address(tmp_path):
    writer = BundleWriter(tmp_path, Scrubber.for_bundle(("emails", "phones", "ips")))
    record = {"version": "1.2.3.4", "platform_version": "v2025.1.0.7", "server": "10.1.2.3", "build": "1.2.3.4-rc1"}
    written = _written(writer, "system.json", record)
    assert written["version"] == "1.2.3.4" and written["platform_version"] == "v2025.1.0.7"
    assert written["build"] == "1.2.3.4-rc1" and written["server"].startswith("ip-")
