"""Properties over generated secrets (issue 11 items 2-5, 7): a secret-named key's value,
or a token of a known shape, put anywhere on a line or anywhere in a configuration
file of any format, never survives the bundle's scrubber.

A form the scrubber cannot handle yet goes into MISSED_TODAY (an xfail with its reason)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.redact import Scrubber

MISSED = "a form the scrubber does not handle yet"
# few examples: each form is its own test, and most of them fail (and shrink) until issue 11 is done
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SECRET = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789_.~!$^*+-",
                 min_size=6, max_size=24).map(lambda s: "Zq9" + s)
# secret words of the vocabulary, as word lists; spelled below in every convention
KEY_WORDS = st.sampled_from([
    ("password",), ("smtp", "pass"), ("smtp", "password"), ("api", "key"), ("api", "keys"), ("secret",),
    ("secret", "key"), ("secret", "key", "base"), ("client", "secret"), ("access", "token"), ("tokens",),
    ("private", "key"), ("signing", "key"), ("encryption", "key"), ("passphrase",), ("pwd",), ("psw",), ("pw",),
    ("session", "id"), ("auth", "token"), ("credentials",), ("db", "password"), ("dsn",), ("webhook", "secret"),
])
SPELLINGS = {
    "snake": lambda w: "_".join(w), "screaming": lambda w: "_".join(w).upper(), "kebab": lambda w: "-".join(w),
    "camel": lambda w: w[0] + "".join(x.capitalize() for x in w[1:]),
    "pascal": lambda w: "".join(x.capitalize() for x in w), "flat_upper": lambda w: "".join(w).upper(),
    "dotted": lambda w: ".".join(w),
}
KEY = st.builds(lambda words, spelling: SPELLINGS[spelling](words), KEY_WORDS, st.sampled_from(sorted(SPELLINGS)))
HARMLESS = st.lists(st.sampled_from(["mode: fast", "ERROR db:", "user=bob", "took=5ms", "state: ok", "host=mx1",
                                     "[api]", "retry=3", "level=info", "msg=\"send\"", "2026-11-29T10:00:00Z", "-",
                                     "id: 42", "path=/api/v1", "{}", "user: ak,"]), max_size=5)


def _pascal(key: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in key.replace("-", "_").replace(".", "_").split("_"))


# one key/value pair written as a form of issue 11 item 2 (a line, or lines for item 7)
FORMS = {
    "equals": lambda k, v: f"{k}={v}",
    "colon": lambda k, v: f"{k}: {v}",
    "arrow": lambda k, v: f"{k} => {v}",
    "json_pair": lambda k, v: f'"{k}": "{v}"',
    "quoted_key_single": lambda k, v: f"'{k}': '{v}'",
    "logfmt_quoted": lambda k, v: f'{k}="{v}"',
    "query_string": lambda k, v: f"GET /api/v1/x?list=5&{k}={v}&lang=ru HTTP/1.1",
    "header": lambda k, v: f"X-{_pascal(k)}: {v}",
    "json_in_string": lambda k, v: json.dumps({"msg": "request", "body": json.dumps({"user": "ak", k: v})}),
    "go_struct": lambda k, v: f"{{Host:mx1 {_pascal(k)}:{v} Port:25}}",
    "go_map": lambda k, v: f"map[mode:fast {k}:{v} user:ak]",
    "xml_element": lambda k, v: f"<{k}>{v}</{k}>",
    "xml_attribute": lambda k, v: f'<add key="{k}" value="{v}"/>',
    "cli_flag": lambda k, v: f"--{k.replace('_', '-')} {v}",
    "cli_flag_equals": lambda k, v: f"--{k.replace('_', '-')}={v}",
    "list_value": lambda k, v: f"{k}: [{v}, other]",
    "yaml_next_line": lambda k, v: f"{k}:\n    {v}",
    "json_pretty_next_line": lambda k, v: f'"{k}":\n      "{v}",',
}
# Forms the line rules before issue 11 miss for some keys or positions: every one of them
# (after `mode: fast ERROR db:` even `password=` is missed; plural, short and camelCase
# keys are not in the vocabulary; arrows, XML, escaped JSON and next-line values never).
MISSED_TODAY: set = set()  # forms the scrubber misses: xfail, with the reason
_SCRUBBER = Scrubber.for_bundle()


def _scrub(text: str, path: str = "logs/app.log") -> str:
    return _SCRUBBER.scrub_text(text, path)


def _form_param(name):
    marks = [pytest.mark.xfail(strict=False, reason=MISSED)] if name in MISSED_TODAY else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("form", [_form_param(name) for name in FORMS])
@SETTINGS
@given(key=KEY, secret=SECRET, before=HARMLESS, after=HARMLESS)
def test_a_secret_pair_anywhere_on_a_line_never_survives(form, key, secret, before, after):
    line = " ".join(before + [FORMS[form](key, secret)] + after)
    assert secret not in _scrub(line + "\n"), line


# token shapes with no key name (item 4): (name, builder of the token from a random body)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
TOKENS = {
    "aws_key_id": (st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16),
                   lambda b: "AKIA" + b),
    "github": (st.text(alphabet=ALNUM, min_size=36, max_size=36), lambda b: "ghp_" + b),
    "slack": (st.text(alphabet=ALNUM, min_size=24, max_size=24), lambda b: f"xoxb-123456789012-1234567890123-{b}"),
    "stripe": (st.text(alphabet=ALNUM, min_size=24, max_size=32), lambda b: "sk_live_" + b),
    "google": (st.text(alphabet=ALNUM + "_-", min_size=35, max_size=35), lambda b: "AIza" + b),
    "sendgrid": (st.text(alphabet=ALNUM, min_size=22, max_size=22), lambda b: f"SG.{b}.{'x' * 43}"),
    "jwt": (st.text(alphabet=ALNUM + "_-", min_size=30, max_size=43),
            lambda b: f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.{b}"),
    "telegram_url": (st.text(alphabet=ALNUM + "_-", min_size=33, max_size=33),
                     lambda b: f"https://api.telegram.org/bot123456789:AA{b}/sendMessage"),
    "slack_webhook": (st.text(alphabet=ALNUM, min_size=24, max_size=24),
                      lambda b: f"https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/{b}"),
}


@pytest.mark.parametrize("shape", [pytest.param(name)
                                   for name in TOKENS])
@SETTINGS
@given(data=st.data(), before=HARMLESS, after=HARMLESS)
def test_a_token_of_a_known_shape_anywhere_never_survives(shape, data, before, after):
    body_strategy, build = TOKENS[shape]
    body = data.draw(body_strategy.filter(lambda b: len(set(b)) > 4))
    line = " ".join(before + [build(body)] + after)
    assert body not in _scrub(line + "\n"), line


def _document(fmt: str, entries, secret_at: int, key: str, secret: str) -> str:
    """A configuration file of `fmt` holding harmless `entries` and the secret pair at `secret_at`."""
    pairs = list(entries)
    pairs.insert(secret_at, (key, secret))
    if fmt == "json":
        return json.dumps({"section": dict(pairs), "version": 2}, indent=2)
    if fmt == "yaml":
        return "section:\n" + "".join(f"  {k}: {json.dumps(v) if k == key and '#' in v else v}\n" for k, v in pairs)
    if fmt == "ini":
        return "[section]\n" + "".join(f"{k} = {v}\n" for k, v in pairs)
    if fmt == "xml":
        return "<config>\n" + "".join(f"  <{k}>{v}</{k}>\n" for k, v in pairs) + "</config>\n"
    if fmt == "logfmt":
        return " ".join(f"{k}={v}" for k, v in pairs) + "\n"
    raise ValueError(fmt)


# all missed today for some keys (api_keys, pw, dsn, session_id, ...), XML for every key
DOC_FORMATS = [pytest.param(fmt)
               for fmt in ("json", "yaml", "ini", "logfmt", "xml")]
HARMLESS_ENTRIES = st.lists(st.tuples(st.sampled_from(["host", "port", "mode", "user", "timeout", "retries",
                                                       "queue", "region"]),
                                      st.sampled_from(["mx1", "25", "fast", "ak", "30s", "3", "trk_actions", "eu"])),
                            max_size=6, unique_by=lambda e: e[0])


@pytest.mark.parametrize("fmt", DOC_FORMATS)
@SETTINGS
@given(entries=HARMLESS_ENTRIES, position=st.integers(min_value=0, max_value=6),
       words=KEY_WORDS, spelling=st.sampled_from(["snake", "screaming", "camel", "pascal"]), secret=SECRET)
def test_a_secret_in_a_configuration_file_of_any_format_never_survives(fmt, entries, position, words, spelling,
                                                                        secret):
    key = SPELLINGS[spelling](words)
    document = _document(fmt, entries, min(position, len(entries)), key, secret)
    assert secret not in _scrub(document, f"config/json_consts/custom.generated.{fmt}"), document


# -- subscriber data and measurements (item 9) ---------------------------------------------

LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=3, max_size=20).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum() and ".." not in s)
DOMAIN = st.sampled_from(["example.org", "mail.example.net", "yandex.ru", "corp.example.com", "gmail.com"])


@SETTINGS
@given(local=LOCAL, domain=DOMAIN, before=HARMLESS, after=HARMLESS)
def test_an_email_anywhere_on_a_line_is_pseudonymized(local, domain, before, after):
    email = f"zq9{local}@{domain}"
    line = " ".join(before + [f"rcpt={email}"] + after)
    assert f"zq9{local}" not in _scrub(line + "\n").lower(), line


@SETTINGS
@given(local=LOCAL, domain=DOMAIN, before=HARMLESS)
def test_a_percent_encoded_email_is_pseudonymized(local, domain, before):
    line = " ".join(before + [f"GET /unsubscribe?email=zq9{local}%40{domain}&list=3"])
    assert f"zq9{local}" not in _scrub(line + "\n").lower(), line


MEASURE_KEY = st.sampled_from(["bytes", "size", "total", "free", "used_bytes", "duration_ms", "account_id"])


@SETTINGS
@given(key=MEASURE_KEY, number=st.integers(min_value=0, max_value=999_999_999).map(lambda n: 79_000_000_000 + n))
def test_a_measurement_in_a_numeric_field_is_kept(key, number):
    text = json.dumps({"disk": {key: number, "mount": "/data"}}, indent=1)
    assert str(number) in _scrub(text + "\n", "system.json"), text
