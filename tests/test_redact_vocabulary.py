"""The one secret vocabulary (issue 11 item 3): a dirty name and a clean name beside it
for every entry, in the spellings the platform and its neighbours use."""

from __future__ import annotations

import pytest

from collector.redact import MASK, Scrubber, is_secret_key, key_words
from collector.redact.vocabulary import PREFILTER

# (entry, names that hold a secret, names beside them that do not)
VOCABULARY = [
    ("password", ["password", "PASSWORD", "smtpPassword", "SMTP_PASSWORD", "db.password", "PGPASSWORD", "passwords",
                  "password1", "password_hash"], ["password_file", "password_min_length", "passwordPolicy"]),
    ("passwd", ["passwd", "ROOT_PASSWD"], ["passwd_path"]),
    ("pass", ["SMTPPass", "smtp_pass", "smtp-pass", "CONTROLDB_PASS", "default_pass", "auth-pass", "SMTPPASS"],
     ["bypass", "PASSAGE", "passes_count", "compass", "BYPASS"]),
    ("pw / pwd / psw", ["pw", "pwd", "psw", "db.pwd", "bind_pw", "SmtpPwd"], ["pwm", "cwd"]),
    ("passphrase", ["passphrase", "sshPassphrase", "SSL_PASSPHRASE"], ["passphrase_prompt"]),
    ("secret", ["secret", "client_secret", "clientSecret", "CLIENTSECRET", "webhook_secret", "secrets"],
     ["secret_name", "secretRef", "secret_file"]),
    ("secret key", ["secret_key", "SECRET_KEY", "SECRET_KEY_BASE", "secretKey", "SECRETKEYBASE"],
     ["secret_key_path", "DATABASE", "KEYBASE"]),
    ("token", ["token", "X_TOKEN", "authToken", "refresh_token", "access_token", "tokens", "AUTHTOKEN"],
     ["TOKEN_TTL", "tokens_processed", "token_type", "max_tokens"]),
    ("api key", ["apikey", "APIKEY", "api_key", "API_KEYS", "apiKeys", "X-Api-Key", "x-api-key"],
     ["api_key_id", "api_version"]),
    ("signing / encryption / private keys", ["signing_key", "signingKey", "encryption_key", "ENCRYPTION_KEY",
                                             "private_key", "privateKey", "WEBAPI_PRIVATE_KEY", "TRACKING_CRYPT_KEY",
                                             "hmac_key", "aws_secret_access_key", "tls.key", "privkey"],
     ["routing_key", "cache_key", "primary_key", "key", "keyspace", "keys_scanned", "sort_key"]),
    ("an HTTP header named key", ["X-ClickHouse-Key", "X-Auth-Token", "X-Access-Key"], ["X-Request-Id"]),
    ("auth", ["auth", "basic_auth", "oauth", "masterauth", "Authorization", "Proxy-Authorization"],
     ["auth_method", "MONGO_AUTH_DB", "authentication", "auth_enabled"]),
    ("credentials", ["credentials", "Credentials", "creds", "credential"], ["credentials_file"]),
    ("session ids", ["session_id", "sessionId", "JSESSIONID", "PHPSESSID", "session"],
     ["session_timeout", "sessions_count"]),
    ("cookies", ["Cookie", "Set-Cookie", "cookies", "setcookie"], ["cookie_saver", "cookie_domain"]),
    ("signatures", ["sig", "signature"], ["signal", "sigterm"]),
    ("DSNs", ["dsn", "DATABASE_DSN", "SENTRY_DSN"], ["dsn_driver"]),
    ("Redis", ["requirepass", "masterauth"], ["requirepass_enabled"]),
    ("Russian", ["пароль", "Пароль", "ПАРОЛЬ", "smtp_пароль", "паролем"], ["пароль_срок"]),
    ("about secrets", [], ["placeholder_secrets", "missing_tokens", "num_tokens"]),
]
CASES = [(entry, name, True) for entry, dirty, _ in VOCABULARY for name in dirty] + \
        [(entry, name, False) for entry, _, clean in VOCABULARY for name in clean]


@pytest.mark.parametrize("entry, name, secret", CASES)
def test_each_vocabulary_entry_has_a_dirty_and_a_clean_name(entry, name, secret):
    assert is_secret_key(name) is secret, f"{entry}: {name}"


@pytest.mark.parametrize("entry, name, secret", CASES)
def test_the_vocabulary_decides_the_text_scrubber_too(entry, name, secret):
    """One vocabulary: a name is a secret's in text (`name=value`, `"name": "value"`) exactly
    when is_secret_key says so."""
    scrubber = Scrubber.for_bundle(pii_kinds=())
    for line in (f"x {name}=Zq9value7 y", f'{{"{name}": "Zq9value7"}}'):
        out = scrubber.scrub_text(line, "f")
        assert ("Zq9value7" not in out) is secret, (line, out)
        assert (MASK in out) is secret


def test_every_secret_name_holds_a_prefilter_token():
    """The scrubber only looks at lines holding a pre-filter token: every dirty name must."""
    for _entry, dirty, _clean in VOCABULARY:
        for name in dirty:
            assert any(token in name.lower() or token in name for token in PREFILTER), name


def test_spellings_are_one_word_list():
    assert key_words("SMTPPass") == key_words("smtp_pass") == key_words("smtp-pass") == ["smtp", "pass"]
    assert key_words("smtpPassword") == key_words("SMTP_PASSWORD") == ["smtp", "password"]
