"""Each redaction rule with clean and dirty lines, the corpus that must pass unchanged,
and properties over generated secrets."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.bundle.writer import json_bytes
from collector.redact import (MASK, WITHHELD, Pseudonymizer, Rule, Scrubber, custom_rules, is_secret_key,
                              redact_structure)

DIRTY = [
    # (rule, line, expected)
    ("url_credentials", "mongodb://altcraft:S3cr3t@db1:27017/admin", f"mongodb://altcraft:{MASK}@db1:27017/admin"),
    ("url_credentials", "uri=mongodb+srv://u:p%40ss@cluster0.example.net/x", f"uri=mongodb+srv://u:{MASK}@cluster0.example.net/x"),
    ("url_credentials", "amqp://altcraft:mqpass@127.0.0.1:5672/altcraft", f"amqp://altcraft:{MASK}@127.0.0.1:5672/altcraft"),
    ("url_credentials", "redis://:kvpass@10.0.0.5:6666/0", f"redis://:{MASK}@10.0.0.5:6666/0"),
    ("url_credentials", "GET http://admin:hunter2@host/x", f"GET http://admin:{MASK}@host/x"),
    ("authorization_header", "Authorization: Bearer eyJhbGciOi.abc.def", f"Authorization: Bearer {MASK}"),
    ("authorization_header", "authorization: Basic YWRtaW46cGFzcw==", f"authorization: Basic {MASK}"),
    ("authorization_header", '"Authorization": "Token abc123"', f'"Authorization": "Token {MASK}"'),
    ("query_token", "GET /track?token=abcdef123&id=5 200", f"GET /track?token={MASK}&id=5 200"),
    ("query_token", "/api/v1/x?key=AKIA123&sig=zzz", f"/api/v1/x?key={MASK}&sig={MASK}"),
    ("query_token", "/cb?access_token=ya29.a0&state=1", f"/cb?access_token={MASK}&state=1"),
    ("cli_secret_flag", "AK:api --password hunter2 --port 1", f"AK:api --password {MASK} --port 1"),
    ("cli_secret_flag", "prog --password=hunter2", f"prog --password={MASK}"),
    ("cli_secret_flag", "mongodump --pass=x1 --token t0k3n", f"mongodump --pass={MASK} --token {MASK}"),
    ("cli_short_password", "mysql -uroot -pS3cret db", f"mysql -uroot -p{MASK} db"),
    ("json_secret_value", '  "CONTROLDB_PASS": "abc",', f'  "CONTROLDB_PASS": "{MASK}",'),
    ("json_secret_value", '{"PASSWORD":"x","USER":"u"}', f'{{"PASSWORD":"{MASK}","USER":"u"}}'),
    ("json_secret_value", '"TRACKING_CRYPT_KEY": 123456,', f'"TRACKING_CRYPT_KEY": "{MASK}",'),
    ("json_secret_value", '"WEBAPI_PRIVATE_KEY": "k"', f'"WEBAPI_PRIVATE_KEY": "{MASK}"'),
    ("json_secret_value", '"APIKEY": "k"', f'"APIKEY": "{MASK}"'),
    ("key_value_secret", "password: hunter2", f"password: {MASK}"),
    ("key_value_secret", "DB_PASSWORD=abc user=x", f"DB_PASSWORD={MASK} user=x"),
    ("key_value_secret", "secret = 'quoted value'", f"secret = '{MASK}'"),  # the value keeps its own quotes
    ("key_value_secret", "api_key: AKIAXYZ", f"api_key: {MASK}"),
    ("key_value_secret", "default_pass=guest", f"default_pass={MASK}"),
    ("key_value_secret", "client_secret: s", f"client_secret: {MASK}"),
    ("key_value_secret", "login ok pwd=abc", f"login ok pwd={MASK}"),
    ("key_value_secret", "password = correct horse battery staple", f"password = {MASK}"),
    ("key_value_secret", "password: my secret pass", f"password: {MASK}"),
    ("key_value_secret", "password=abc;def&ghi,jkl", f"password={MASK}"),
    ("key_value_secret", "x-api-key: abcdef", f"x-api-key: {MASK}"),
    ("key_value_secret", "X-Access-Key: abcdef", f"X-Access-Key: {MASK}"),
    ("cli_secret_flag", "mysqldump --password -Xsecret db", f"mysqldump --password {MASK} db"),
    ("cli_secret_flag", "run --db-password X --v", f"run --db-password {MASK} --v"),
    ("cli_secret_flag", "run --mongo-password=X", f"run --mongo-password={MASK}"),
    ("cli_secret_flag", '["run", "--password=ab\\"cd", "x"]', f'["run", "--password={MASK}", "x"]'),
    ("cli_short_password", "mysql -p123456 -h db", f"mysql -p{MASK} -h db"),
    ("cli_short_password", '["mysql", "-pab\\"cd"]', f'["mysql", "-p{MASK}"]'),
    ("redis_conf_secret", "requirepass foobared", f"requirepass {MASK}"),
    ("redis_conf_secret", "masterauth foobared", f"masterauth {MASK}"),
    ("pem_private_key_inline", '"k": "-----BEGIN RSA PRIVATE KEY-----\\nMIIE\\n-----END RSA PRIVATE KEY-----"',
     f'"k": "-----BEGIN RSA PRIVATE KEY-----{MASK}-----END RSA PRIVATE KEY-----"'),
]

CLEAN = [
    "2026-11-29T15:02:22.123Z INFO [api] processed batch id=00000000deadbeef in 12 ms",
    "request_id=550e8400-e29b-41d4-a716-446655440000 status=200",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "md5 d41d8cd98f00b204e9800998ecf8427e",
    "Altcraft platform v2024.2.68.2.2206 started",
    "listening on 127.0.0.1:8801; redis port 6379; mongodb 27017",
    "AK:trk_amazon_sns AK:procworkflow AK:api",
    "ERROR connection refused 127.0.0.1:27017 (attempt 3)",
    "authentication failed for user altcraft",
    "password authentication failed for user \"altcraft\"",
    "mkdir -p /opt/akd/logs && redis-cli -p 6379 ping",
    '"CONTROLDB_PORT": 27017,',
    '"RABBITMQ_USER": "altcraft",',
    '"SSDB_NOTIFY_PASS": "",',
    "timestamp 1732892542123 epoch 1732892542",
    "tokens_processed=15 keys_scanned=2000",
    "primary key violation on table events",
    "mongodb://db1:27017,db2:27017/?replicaSet=rs0",
    "version 1.9.8 build 2026-01-01",
    '"authorization": "enabled",',
    "/usr/lib/erlang/erts/bin/beam.smp -- -root /usr/lib/erlang -progname erl -- -home /var/lib/rabbitmq -pa ''",
    "cc -pthread -pipe -O2 -o x x.c",
    "find /opt/akd/logs -name '*.gz' -print",
    "pg_dump --no-password --verbose altcraft",
    "bypass mode: on",
]


@pytest.mark.parametrize("rule, dirty, expected", DIRTY)
def test_dirty_lines_are_scrubbed_by_their_rule(rule, dirty, expected):
    scrubber = Scrubber.for_bundle(pii_kinds=())
    assert scrubber.scrub_text(dirty, "f") == expected
    assert scrubber.counts.by_rule().get(rule, 0) >= 1


@pytest.mark.parametrize("line", CLEAN)
def test_clean_lines_pass_unchanged(line):
    scrubber = Scrubber.for_bundle()  # with the default pseudonyms on
    assert scrubber.scrub_text(line, "f") == line
    assert scrubber.counts.total() == 0


def test_pem_block_over_several_lines():
    text = "key file:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQE\n-----END PRIVATE KEY-----\nafter"
    out = Scrubber().scrub_text(text, "f")
    assert "MIIEvQIBADANBg" not in out and "kqhkiG9w0BAQE" not in out
    assert out.endswith("-----END PRIVATE KEY-----\nafter")


def test_secret_key_names():
    for key in ("CONTROLDB_PASS", "SSDB_HBSUPP_PASS", "PASSWORD", "WEBAPI_PRIVATE_KEY", "TRACKING_CRYPT_KEY",
                "APIKEY", "api_key", "requirepass", "masterauth", "default_pass", "db.pwd", "token", "X_TOKEN"):
        assert is_secret_key(key), key
    for key in ("CONTROLDB_PORT", "PASSAGE", "TOKEN_TTL", "keyspace", "RABBITMQ_USER", "passes_count"):
        assert not is_secret_key(key), key


def test_emails_and_phones_get_consistent_pseudonyms():
    scrubber = Scrubber.for_bundle()
    first = scrubber.scrub_text("to Alice.Smith@Example.org, +7 915 123-45-67", "a.log")
    second = scrubber.scrub_text("bounce alice.smith@example.org 89151234567 8 (915) 123-45-67", "b.log")
    email = re.search(r"email-[0-9a-f]{12}", first).group(0)
    phone = re.search(r"phone-[0-9a-f]{12}", first).group(0)
    assert second.count(email) == 1 and second.count(phone) == 2
    assert "alice" not in (first + second).lower() and "915" not in first + second
    assert scrubber.pseudonymizer.mapping[email] == "Alice.Smith@Example.org"
    assert scrubber.counts.by_rule() == {"pii_email": 2, "pii_phone": 3}


def test_pseudonyms_differ_between_bundles():
    a = Scrubber.for_bundle().scrub_text("x@example.org", "f")
    b = Scrubber.for_bundle().scrub_text("x@example.org", "f")
    assert a != b  # a random key per bundle: tokens cannot be joined across customers


def test_ips_and_hosts_only_when_asked():
    line = "client 203.0.113.7 via mx1.customer-mail.ru to 127.0.0.1"
    assert Scrubber.for_bundle().scrub_text(line, "f") == line
    out = Scrubber.for_bundle(pii_kinds=("emails", "phones", "ips", "hosts")).scrub_text(line, "f")
    assert "203.0.113.7" not in out and "customer-mail" not in out
    assert "127.0.0.1" in out  # loopback identifies nobody and helps support
    hosts = Scrubber.for_bundle(pii_kinds=("hosts",))
    assert "customer" not in hosts.scrub_text("GET http://mx.customer.ru/x 200", "f")
    for kept in ('logger.info("sent")', "/var/www/site.com/index.html"):
        assert hosts.scrub_text(kept, "f") == kept


def test_no_pseudonymize_keeps_pii_but_not_secrets():
    out = Scrubber.for_bundle(pii_kinds=()).scrub_text("x@example.org password=abc", "f")
    assert out == f"x@example.org password={MASK}"


def test_custom_patterns_and_their_counts():
    scrubber = Scrubber.for_bundle(extra_patterns=(r"ACME-\d{6}",))
    assert scrubber.scrub_text("contract ACME-123456 signed", "f") == f"contract {MASK} signed"
    assert scrubber.counts.by_rule() == {"custom:1": 1}


def test_a_rule_that_raises_withholds_the_line():
    def explode(match):
        raise RuntimeError("boom")

    scrubber = Scrubber((Rule("broken", ("x",), re.compile("x"), explode),))
    assert scrubber.scrub_text("a x b\nclean", "f") == f"{WITHHELD}\nclean"
    assert scrubber.counts.by_rule() == {"rule_error": 1}


@pytest.mark.parametrize("head", [b"ETVALUE rest of line", b"rer eyJSECRETTOKEN rest", b"ord SECRETPW --port 1",
                                  b"word = SECRETPW", b"SECRET;PART2", b"x"])
def test_the_partial_first_line_of_a_tail_is_withheld(head):
    out = Scrubber().scrub_bytes(head + b"\nnext password=abc\n", "f", starts_mid_line=True)
    assert out == b"[cut]\nnext password=<redacted>\n"
    assert Scrubber().scrub_bytes(head + b"\nnext\n", "f") == head + b"\nnext\n"  # a whole line is kept


def test_cut_head_inside_a_pem_block_is_masked():
    out = Scrubber().scrub_bytes(b"AAAB3Nza\n-----END RSA PRIVATE KEY-----\nafter\n", "f", starts_mid_line=True)
    assert b"AAAB3Nza" not in out and out.endswith(b"-----END RSA PRIVATE KEY-----\nafter\n")


def test_bytes_that_are_not_utf8_and_crlf_survive():
    data = b"caf\xe9 \xff\xfe line\r\npassword=abc\r\n"
    assert Scrubber().scrub_bytes(data, "f") == b"caf\xe9 \xff\xfe line\r\npassword=" + MASK.encode() + b"\r\n"


def test_redact_structure_masks_objects_under_secret_keys():
    data = {"PRIVATE_KEY": {"n": 1}, "list": [{"token": ["a"]}], "PASSWORD": "left-to-the-writer"}
    assert redact_structure(data) == {"PRIVATE_KEY": MASK, "list": [{"token": MASK}],
                                      "PASSWORD": "left-to-the-writer"}


# -- properties -------------------------------------------------------------------------

SECRET = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789_.~!$^*()+-",
                 min_size=6, max_size=40).map(lambda s: "Zq9" + s)
WORDS = st.lists(st.sampled_from(["INFO", "ERROR", "[api]", "user", "ok", "127.0.0.1:8801", "-", "x=1"]),
                 max_size=4).map(" ".join)
POSITIONS = [
    "password={s}", "PASSWORD: {s}", "db_pass = {s}", '"CONTROLDB_PASS": "{s}"', "'secret': '{s}'",
    "--password {s}", "--password={s}", "-p{s}", "mongodb://altcraft:{s}@db1:27017/admin",
    "amqp://u:{s}@127.0.0.1/altcraft", "Authorization: Bearer {s}", "Authorization: Basic {s}",
    "GET /x?token={s}&id=1", "/y?sig={s}", "requirepass {s}", "api_key: {s}", "token={s}",
]


# values with spaces and separators: after a spaced separator (INI, YAML, `key: value`
# text) the rest of the line is the value; after `=` everything up to the next space
SPACED_SECRET = st.text(alphabet="abcdefghijk23456789 ;&,=:#/", min_size=4, max_size=30).map(
    lambda s: "Zq9" + s.strip() + "x")
SPACED_POSITIONS = ["password = {s}", "PASSWORD: {s}", "db_pass : {s}", "x-api-key: {s}"]
GLUED_POSITIONS = ["password={s}", "CONTROLDB_PASS={s}", "--password={s}", "--db-password {s}", "-p{s}"]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(secret=SPACED_SECRET, position=st.sampled_from(SPACED_POSITIONS + GLUED_POSITIONS), before=WORDS)
def test_a_secret_with_spaces_or_separators_never_survives(secret, position, before):
    value = secret.replace(" ", "") if position in GLUED_POSITIONS else secret
    line = " ".join(part for part in (before, position.format(s=value)) if part)
    out = Scrubber.for_bundle(pii_kinds=()).scrub_text(line, "f")
    assert value not in out and not any(len(piece) > 3 and piece in out for piece in re.split(r"[ ;&,=:#/]", value))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(secret=SECRET, position=st.sampled_from(POSITIONS), before=WORDS, after=WORDS)
def test_a_generated_secret_never_survives(secret, position, before, after):
    value = secret if "://" not in position else re.sub(r"[@/:\s]", "", secret)
    if position.startswith(("'secret'", '"CONTROLDB')):
        value = re.sub(r"['\"\\]", "", value)
    line = " ".join(part for part in (before, position.format(s=value), after) if part)
    out = Scrubber.for_bundle().scrub_text(line, "f")
    assert value not in out


@pytest.mark.parametrize("number", [89151234567, 79151234567, [89000000000, 1], {"tel": 89151234567}])
def test_a_phone_written_as_a_json_or_yaml_number_stays_parseable(number):
    scrubber = Scrubber.for_bundle()
    as_json = scrubber.scrub_text(json.dumps(number), "f.json")
    as_yaml = scrubber.scrub_text(yaml.safe_dump({"k": number}), "f.yaml")
    assert "9151234567" not in as_json + as_yaml and "9000000000" not in as_json + as_yaml
    assert "phone-" in json.dumps(json.loads(as_json)) and "phone-" in json.dumps(yaml.safe_load(as_yaml))


@settings(max_examples=150, deadline=None)
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["PASSWORD", "CONTROLDB_PASS", "name", "port", "api_key", "NODES",
                                         "token", "HOST", "note"]), children, max_size=5)),
    max_leaves=20))
def test_scrubbed_json_and_yaml_still_parse(data):
    scrubber = Scrubber.for_bundle()
    json.loads(scrubber.scrub_bytes(json_bytes(redact_structure(data)), "f.json").decode("utf-8", "surrogateescape"))
    yaml.safe_load(scrubber.scrub_text(yaml.safe_dump(redact_structure(data), allow_unicode=True), "f.yaml"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([p.format(s="Zq9abcdef") for p in POSITIONS] + CLEAN
                                          + ["x@example.org", "+7 915 123-45-67", ""]),
                          st.text(max_size=40)), max_size=12))
def test_the_prefiltered_path_equals_scrubbing_every_line(lines):
    data = "\n".join(lines).encode("utf-8", "surrogateescape")
    key = b"k" * 32
    fast = Scrubber.for_bundle(pseudonymizer=Pseudonymizer(key))
    slow = Scrubber(fast.rules + custom_rules([r"(?!x)x"]), pseudonymizer=fast.pseudonymizer)
    assert fast.scrub_bytes(data, "f") == slow.scrub_bytes(data, "f")


def test_scrubbing_is_idempotent_on_an_escaped_report():
    scrubber = Scrubber.for_bundle()
    once = scrubber.scrub_text("AK:api -pS3cret --password X mongodb://u:pw@h/ email a@example.org", "f")
    escaped = once.replace("<", "&lt;").replace(">", "&gt;")
    assert scrubber.scrub_text(escaped, "summary.html") == escaped
    assert scrubber.scrub_text(once, "again") == once
