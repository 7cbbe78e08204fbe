"""Issue 11's families, each line with the secret that must not survive it, in every
pseudonymization mode (item 10: --no-pseudonymize never weakens secret redaction)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from collector.redact import MASK, WITHHELD, Pseudonymizer, Rule, Scrubber, custom_rules

S = "Zq9S3cr3tV4lue"  # the planted secret
B64_KEY = "\n".join(["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
                     "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK", S + "AB"])
MODES = [(), ("emails", "phones"), ("emails", "phones", "ips", "hosts")]

PAIRS = [  # item 2: every pair on a line, whatever came before it
    f"ERROR db: connection failed password={S} mode=fast",
    f"mode: fast password: {S}",
    f"a=1 b=2 token={S}",
    f'"user" => "bob", "password" => "{S}"',
    f'{{"level":"info","msg":"{{\\"password\\":\\"{S}\\"}}"}}',
    f'level=info user=bob password="{S} with space" x=1',
    f"GET /x?a=1&access_token={S}&b=2 HTTP/1.1",
    f"GET /maps?key={S}&q=1", f"GET /cb?code={S}&state=x",
    f"X-Api-Key: {S}", f"X-Auth-Token: {S}", f"X-ClickHouse-Key: {S}",
    f"Cookie: a=1; session={S}", f"Set-Cookie: sid={S}; Path=/; HttpOnly",
    f"Authorization: Bearer {S}", f"Authorization: Basic {S}", f"authorization=Bearer {S} user=bob",
    f'Authorization: Digest username="bob", realm="x", response="{S}"',
    f'Authorization: OAuth oauth_consumer_key="k", oauth_signature="{S}"',
    f"Authorization: ApiKey {S}", f"Authorization: Api-Key {S}", f"Authorization: App {S}",
    f"Authorization: AccessKey {S}", f"Authorization: Token {S}", f"Authorization: {S}",
    f'"Authorization": "Bearer {S}"',
    f"{{User:bob Password:{S} Host:h}}", f"&{{Password:{S}}}",
    f"map[Accept:[*/*] Authorization:[Bearer {S}]]", f"map[Credentials:map[user:ak value:{S}]]",
    f"<password>{S}</password>", f'<add key="SmtpPassword" value="{S}"/>',
    f"<password><![CDATA[{S}]]></password>", f'<entry key="db.password">{S}</entry>',
    f'<connection user="ak" password="{S}"/>',
    f"passwords: [{S}, other]", f'"tokens": ["{S}", "x"]', f"credentials: {{user: a, value: {S}}}",
    f"smtp_pass = {S}", f"SMTPPass={S}", f"пароль: {S}", f"-Dspring.datasource.password={S}",
    f"requirepass {S}", f"sentinel auth-pass mymaster {S}",
]
TOKENS = [  # item 4: known shapes with no key
    f"id AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCY{S[:10]}",
    f"xoxb-123456789012-{S}", f"xapp-1-A0123-{S}", f"POST https://hooks.slack.com/services/T0AB/B0CD/{S}x9y8z7",
    f"ghp_{S}abcdefghijklmnopqrstuvw", f"github_pat_11AB{S}_abcdefghijklmnop",
    f"sk_live_{S}abc", f"rk_live_{S}abc", f"whsec_{S}abcdefghij",
    f"SG.{S}abcd.{S}efghijklmnop", f"AIzaSyA{S}0123456789abcdefghi",
    f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.{S}",
    f"GET https://api.telegram.org/bot123456789:AA{S}abcdefghijklmnopqrstu/sendMessage",
    f"https://discord.com/api/webhooks/123456/{S}abcdefghij",
    f"C: AUTH PLAIN {S}AGJvYgBwYXNz",
]
CMDLINES = [  # item 5
    f"api --smtp-pass {S} --port 1", f"api --client-secret={S}", f"redis-server --requirepass {S}",
    f"redis-server --masterauth {S}", f"gpg --passphrase {S}", f"app --secret-key {S}",
    f"app --smtpPassword '{S} two'", f'app --db-password "{S}, with a space" x',
    f'["app", "--token", "{S} spaced"]', f"mysql -uroot -p{S} altcraft", f"redis-cli -h 127.0.0.1 -a {S} ping",
    f"sshpass -p {S} ssh -p2222 ak@db1", f"curl -u admin:{S} https://x", f"curl --user admin:{S} https://x",
    f"java -Dx.password={S} -jar a.jar", f"mongosh -u ak -p {S} db1", f"rabbitmqadmin -u ak -p {S} list queues",
    f"erl -setcookie {S} -name x", f"openssl pkcs12 -passout pass:{S}", f"sh -c 'PGPASSWORD={S} pg_dump'",
    f"-passphrase {S}",
]
URLS = [  # item 6
    f"mongodb://altcraft:p@ss/w{S}@rd@db1:27017/admin", f"amqp://u:{S}@127.0.0.1:5672/altcraft",
    f"redis://:{S}@10.0.0.5:6666/0", f"dial altcraft:{S}@10.0.0.6:27017", f"dsn ak:{S}@tcp(db1:3306)/ak",
    f"upstream ak:{S}@mail.example.org", f"GET /r?next=https%3A%2F%2Fadmin%3A{S}%40h.example.com%2F",
    f"GET /r?u=https%253A%252F%252Fadmin%253A{S}%2540h.example.com",
    f"https://{S}0123456789abcdef@sentry.example.com/12",
]
ALL_LINES = PAIRS + TOKENS + CMDLINES + URLS


@pytest.mark.parametrize("mode", MODES, ids=["no-pseudonymize", "default", "ips-hosts"])
@pytest.mark.parametrize("line", ALL_LINES)
def test_the_secret_never_survives_in_any_mode(line, mode):
    out = Scrubber.for_bundle(pii_kinds=mode).scrub_text(line, "f")
    assert S not in out and S[:8] not in out, out
    assert MASK in out or "&lt;redacted&gt;" in out


def test_what_is_not_the_secret_stays():
    scrubber = Scrubber.for_bundle(pii_kinds=())
    out = scrubber.scrub_text(f"ERROR db: connection failed password={S} mode=fast", "f")
    assert out == f"ERROR db: connection failed password={MASK} mode=fast"
    assert scrubber.scrub_text(f"Authorization: Digest username=\"bob\", response=\"{S}\"", "f").startswith(
        "Authorization: Digest ")
    assert scrubber.scrub_text(f"map[Accept:[*/*] Authorization:[Bearer {S}]]", "f") == \
        f"map[Accept:[*/*] Authorization:{MASK}]"
    assert scrubber.scrub_text(f"{{User:bob Password:{S} Host:h}}", "f") == f"{{User:bob Password:{MASK} Host:h}}"
    assert scrubber.scrub_text(f'<add key="SmtpPassword" value="{S}"/>', "f") == \
        '<add key="SmtpPassword" value="&lt;redacted&gt;"/>'


@pytest.mark.parametrize("record", [
    {"cmdline": f"prog --set password: {S} --set smtp.user=ak"},
    {"cmdline": f"prog --set 'password: {S}' --x"},
    {"msg": f"login password: {S} retry", "level": "error"},
    {"msg": json.dumps({"token": S, "n": 1})},
    {"args": ["--password", f"{S} spaced"], "other": "x"},
])
def test_a_json_document_stays_json(record):
    """A pair inside a JSON string ends with the string (issue 11: `--set password: x` made
    processes.json invalid)."""
    for text in (json.dumps(record), json.dumps(record, indent=2)):
        out = Scrubber.for_bundle().scrub_text(text, "f.json")
        assert S not in out
        json.loads(out)


# -- item 5: what is not a password on a command line ----------------------------------------

@pytest.mark.parametrize("line", [
    "ssh -p2222 ak@db1", "ssh -p 2222 ak@db1", "sshpass -p x ssh -p2222 ak@db1", "redis-cli -p 6666 ping",
    "docker run -u 1000:1000 img", "pg_dump --no-password --verbose altcraft", "app --password-file /etc/pw",
    "mongod --auth --port 27017", "psql -p5432 -h db1", "mysql -uroot altcraft",
])
def test_ports_and_switches_are_no_passwords(line):
    out = Scrubber.for_bundle(pii_kinds=()).scrub_text(line, "f")
    for word in ("2222", "6666", "1000:1000", "--verbose", "/etc/pw", "--port", "5432", "-uroot"):
        if word in line and not line.startswith("sshpass"):
            assert word in out, out
    if line.startswith("sshpass"):
        assert out == f"sshpass -p {MASK} ssh -p2222 ak@db1"


def test_a_url_with_a_port_then_an_at_in_its_path_keeps_its_port():
    line = "GET http://host:8080/users/@bob 200"
    assert Scrubber.for_bundle(pii_kinds=()).scrub_text(line, "f") == line


# -- item 7: values on following lines ---------------------------------------------------------

MULTILINE = [
    ("yaml block |", f"smtp:\n  password: |\n    {S}\n    second\n  host: mx1\n", "host: mx1"),
    ("yaml block >-", f"smtp:\n  secret_key: >-\n    {S}\n  host: mx1\n", "host: mx1"),
    ("yaml next line", f"smtp:\n  passphrase:\n    {S}\n  host: mx1\n", "host: mx1"),
    ("yaml list", f"smtp:\n  tokens:\n    - {S}\n    - other\n  host: mx1\n", "host: mx1"),
    ("yaml list at the key's indent", f"tokens:\n- {S}\nhost: mx1\n", "host: mx1"),
    ("yaml object", f"smtp:\n  credentials:\n    user: ak\n    value: {S}\n  host: mx1\n", "host: mx1"),
    ("yaml quoted over lines", f'smtp:\n  password: "{S}\n    more"\n  host: mx1\n', "host: mx1"),
    ("json value on the next line", f'{{\n  "password":\n    "{S}",\n  "user": "ak"\n}}\n', '"user": "ak"'),
    ("json list over lines", f'{{\n  "tokens": [\n    "{S}",\n    "x"\n  ],\n  "user": "ak"\n}}\n', '"user": "ak"'),
    ("pem in yaml", f"tls.key: |\n  -----BEGIN RSA PRIVATE KEY-----\n  {S}\n  -----END RSA PRIVATE KEY-----\nx: 1\n",
     "x: 1"),
    ("log line then indented value", f"2026 ERROR smtp login rejected; Password:\n    {S}\n2026 INFO next\n",
     "2026 INFO next"),
    ("xml element over lines", f"<smtp>\n  <password>\n    {S}\n  </password>\n  <host>mx1</host>\n</smtp>\n",
     "<host>mx1</host>"),
    ("pem", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{B64_KEY}\n-----END OPENSSH PRIVATE KEY-----\nafter\n", "after"),
    ("pgp", f"-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: 1\n\n{B64_KEY}\n=AbCd\n"
            f"-----END PGP PRIVATE KEY BLOCK-----\nafter\n", "after"),
    ("pem on one JSON line", f'{{"key": "-----BEGIN EC PRIVATE KEY-----\\n{S}\\n-----END EC PRIVATE KEY-----"}}\n',
     "-----END EC PRIVATE KEY-----"),
    ("pem wrapped in base64", "data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB" + S + "\nx: 1\n",
     "x: 1"),
    ("putty", f"PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: k\nPublic-Lines: 1\nAAAAB3Nza\n"
              f"Private-Lines: 2\n{S}\n{S}x\nPrivate-MAC: {S}ff\nafter\n", "Public-Lines: 1\nAAAAB3Nza"),
    ("smtp auth login", f"C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {S}dXNlcg==\nS: 334 UGFzc3dvcmQ6\nC: {S}cGFzcw==\n"
                        "S: 235 2.7.0 ok\nC: MAIL FROM:<a@b>\n", "S: 235 2.7.0 ok"),
    ("key material before END, its BEGIN cut off", f"{B64_KEY}\n-----END RSA PRIVATE KEY-----\nafter\n", "after"),
]


@pytest.mark.parametrize("mode", MODES, ids=["no-pseudonymize", "default", "ips-hosts"])
@pytest.mark.parametrize("name, text, kept", MULTILINE, ids=[m[0] for m in MULTILINE])
def test_values_on_following_lines(name, text, kept, mode):
    out = Scrubber.for_bundle(pii_kinds=mode).scrub_text(text, "f")
    assert S not in out and S[:8] not in out, out
    assert kept in out, out
    assert out.count("\n") == text.count("\n")  # line for line: a diff of two bundles still lines up


@pytest.mark.parametrize("name, text, kept", [m for m in MULTILINE if m[0].startswith(("yaml", "json"))],
                         ids=[m[0] for m in MULTILINE if m[0].startswith(("yaml", "json"))])
def test_scrubbed_yaml_and_json_still_parse(name, text, kept):
    out = Scrubber.for_bundle().scrub_text(text, "f")
    if name.startswith("json"):
        json.loads(out)
    else:
        yaml.safe_load(out)


@pytest.mark.parametrize("name, text, kept", MULTILINE, ids=[m[0] for m in MULTILINE])
def test_the_prefiltered_path_follows_values_over_lines(name, text, kept):
    noise = "2026-11-29T10:00:00Z INFO worker 3 picked task 4f2a from queue trk_actions\n"
    data = (noise * 3 + text + noise * 3).encode()
    key = b"k" * 32
    fast = Scrubber.for_bundle(pseudonymizer=Pseudonymizer(key))
    slow = Scrubber(fast.rules + custom_rules([r"(?!x)x"]), pseudonymizer=fast.pseudonymizer)
    assert fast.scrub_bytes(data, "f") == slow.scrub_bytes(data, "f")


def test_a_utf16_file_is_scrubbed_and_written_as_utf8():
    data = "\ufeffuser=ak password={}\r\nnext\r\n".format(S).encode("utf-16-le")
    out = Scrubber.for_bundle().scrub_bytes(data, "f")
    assert out == f"user=ak password={MASK}\r\nnext\r\n".encode()


# -- item 9: precision and recall of personal data ------------------------------------------------

@pytest.mark.parametrize("line", [
    '{"total": 79456123456, "used": 79123456789, "free": 89151234567}', "size=79456123456",
    "read 79456123456 bytes", "duration_ms: 89151234567", "fs /data avail 79456123456",
    '"read_bytes": 89161234567,', "took 89151234567 ms", "pid 7915123",
])
def test_measurements_are_no_phones(line):
    assert Scrubber.for_bundle().scrub_text(line, "f") == line


@pytest.mark.parametrize("line", [
    "Altcraft version 1.2.3.4", "version: 10.20.30.40", '"version": "1.2.3.4"', "v1.2.3.4",
    "\tgithub.com/altcraft/akd/pkg/mail.(*Client).Send(...)", "go.mongodb.org/mongo-driver v1.11.0",
    "os.path.join", "time.Time", "org.apache.kafka.clients.NetworkClient", "security.authorization: enabled",
    "config.yaml loaded", "logger.info(\"x\")", "fe80 12:30:45", "mac aa:bb:cc:dd:ee:ff", "::1", "e.g. this",
])
def test_versions_module_paths_and_code_are_no_addresses_or_hosts(line):
    assert Scrubber.for_bundle(pii_kinds=("emails", "phones", "ips", "hosts")).scrub_text(line, "f") == line


@pytest.mark.parametrize("line, value", [
    ("call 8-915-123-45-67 now", "915-123"), ("call 8 (915) 123-45-67", "123-45-67"),
    ("call 8 915 123 45 67", "915 123"), ("href=tel:+79151234567", "9151234567"),
    ("phone=%2B79151234567&x=1", "9151234567"), ("+44 20 7946 0958", "7946"), ("sms-89167201122.log", "9167201122"),
    ("to bob%40example.org", "bob"), ("to пользователь@почта.рф", "пользователь"),
    ("to bob@xn--80ak6aa92e.xn--p1ai", "bob"), ("To: =?utf-8?Q?bob=40example.org?=", "bob"),
])
def test_phone_and_email_forms_are_pseudonymized(line, value):
    out = Scrubber.for_bundle().scrub_text(line, "f")
    assert value not in out, out


@pytest.mark.parametrize("line, value", [
    ("client 2001:db8::8a2e:370:7334 connected", "2001:db8"), ("[fe80::1c2d:3e4f]:8080", "fe80::1c2d"),
    ("client 203.0.113.7", "203.0.113.7"), ("mx1.acme.travel accepted", "acme"), ("smtp.customer.example", "customer"),
    ("GET http://mx.customer.ru/x 200", "customer"),
])
def test_ips_and_hosts_beyond_a_fixed_list(line, value):
    assert value in Scrubber.for_bundle().scrub_text(line, "f")  # not asked for: kept
    assert value not in Scrubber.for_bundle(pii_kinds=("ips", "hosts")).scrub_text(line, "f")


def test_an_email_percent_encoded_gets_the_pseudonym_of_the_plain_one():
    scrubber = Scrubber.for_bundle()
    plain = scrubber.scrub_text("bob@example.org", "f")
    assert scrubber.scrub_text("bob%40example.org", "f") == plain


def test_a_pseudonym_key_makes_pseudonyms_stable_across_bundles():
    key = bytes(range(32))
    first = Scrubber.for_bundle(pseudonym_key=key).scrub_text("bob@example.org 10.0.0.9", "f")
    again = Scrubber.for_bundle(("emails", "ips"), pseudonym_key=key).scrub_text("bob@example.org 10.0.0.9", "f")
    assert first.split()[0] == again.split()[0] and "bob" not in first


# -- item 13: failing closed; counts, never values ----------------------------------------------

def test_a_value_going_on_over_lines_whose_rule_raises_withholds_its_lines():
    class Broken:
        name, done = "broken", False

        def take(self, line):
            raise RuntimeError("boom")

    def start(line, file_scrubber):
        file_scrubber.continue_with(Broken())
        return line, {}

    scrubber = Scrubber((Rule("starts", ("begin",), None, scan=start),))
    assert scrubber.scrub_text("begin\nsecret line\nafter", "f") == f"begin\n{WITHHELD}\nafter"
    assert scrubber.counts.by_rule() == {"rule_error": 1}


def test_a_file_the_scrubber_cannot_go_through_is_withheld_whole(monkeypatch):
    scrubber = Scrubber.for_bundle()

    def explode(*_args):
        raise MemoryError("no room")

    monkeypatch.setattr(scrubber, "_candidate_line_starts", explode)
    assert scrubber.scrub_bytes(f"password={S}\nx\n".encode(), "f") == WITHHELD.encode()
    assert scrubber.counts.by_rule() == {"rule_error": 1}


def test_the_counts_hold_rule_and_file_names_never_values():
    scrubber = Scrubber.for_bundle(("emails", "phones", "ips", "hosts"), extra_patterns=[r"ACME-\d{6}"])
    for index, line in enumerate(ALL_LINES + [m[1] for m in MULTILINE] + ["ACME-123456 bob@example.org"]):
        scrubber.scrub_text(line, f"logs/{index}.log")
    text = json.dumps({"by_rule": scrubber.counts.by_rule(), "by_file": scrubber.counts.as_records()})
    assert S[:8] not in text and "ACME" not in text and "bob" not in text
    assert all(re.fullmatch(r"[a-z_0-9:]+", rule) for rule in scrubber.counts.by_rule())


# -- properties: a generated secret in a random family, after random harmless pairs -----------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

GENERATED = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789_.~!^*+-",
                    min_size=8, max_size=30).map(lambda s: "Zq9" + s + "x7")
HARMLESS = st.lists(st.sampled_from(["mode: fast", "ERROR db:", "user=bob", '"level":"info",', "x-request-id: 5",
                                     "key: routing.a", "GET /a?id=1", "map[a:[b]]", "<host>h</host>", "--port 1"]),
                    max_size=4).map(" ".join)
# token shapes have alphabets of their own; encoded URLs encode the secret
TEMPLATES = [line.replace(S, "{s}") for line in PAIRS + CMDLINES + URLS
             if S in line and "%3A" not in line and "%253A" not in line and "sentry" not in line]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(secret=GENERATED, template=st.sampled_from(TEMPLATES), before=HARMLESS, after=HARMLESS,
       mode=st.sampled_from(MODES))
def test_a_generated_secret_in_any_family_after_any_pairs_never_survives(secret, template, before, after, mode):
    line = " ".join(part for part in (before, template.replace("{s}", secret), after) if part)
    out = Scrubber.for_bundle(pii_kinds=mode).scrub_text(line, "f")
    assert secret not in out and secret[:10] not in out, (line, out)


@pytest.mark.parametrize("mode", MODES, ids=["no-pseudonymize", "default", "ips-hosts"])
def test_the_reports_own_style_and_script_pass_unchanged(mode):
    """summary.html goes through the scrubber whole; its script is allowed by its hash (CSP)."""
    from pathlib import Path
    templates = Path(__file__).resolve().parent.parent / "report_templates"
    for name in ("script.js.j2", "style.css"):
        text = (templates / name).read_text()
        assert Scrubber.for_bundle(pii_kinds=mode).scrub_text(text, "summary.html") == text, name


@pytest.mark.parametrize("status", ["ok", "refused", "not needed", "no password configured", "none", "user altcraft"])
def test_akdiags_own_auth_statuses_stay(status):
    """datastores.json records how authentication went under `auth`: a status, not a credential."""
    line = json.dumps({"details": {"auth": status}})
    assert Scrubber.for_bundle().scrub_text(line, "datastores.json") == line


def test_the_platforms_own_names_run_no_rule():
    """Every line of cookie_saver's and prochook's logs holds a pre-filter token in the
    process's name: no rule runs for it, one runs for a real cookie beside it."""
    ran = []
    probe = Rule("probe", ("cookie", "hook"), None, scan=lambda line, fs: (ran.append(line), (line, {}))[1])
    data = "INFO [cookie_saver] saved 3 visitors\n[prochook] fired\n[cookie_saver] Cookie: sid=1\n"
    assert Scrubber((probe,)).scrub_text(data, "f") == data
    assert ran == ["[cookie_saver] Cookie: sid=1"]
    scrubber = Scrubber.for_bundle()
    assert scrubber.scrub_text("[cookie_saver] Set-Cookie: sid=Zq9abc; Path=/", "f") == \
        f"[cookie_saver] Set-Cookie: {MASK}"
