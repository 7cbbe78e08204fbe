"""The secret-key vocabulary of issue 11 item 3, in the spellings the platform and its
neighbours use.  Each entry: (key, shape of its value: "scalar", "list" or "object")."""

VOCAB = (
    ("SMTPPass", "scalar"), ("smtp_pass", "scalar"), ("smtp-pass", "scalar"), ("smtpPassword", "scalar"),
    ("SMTP_PASSWORD", "scalar"), ("tokens", "list"), ("secrets", "list"), ("passwords", "list"),
    ("API_KEYS", "list"), ("apiKeys", "list"), ("secret_key", "scalar"), ("SECRET_KEY_BASE", "scalar"),
    ("signing_key", "scalar"), ("signingKey", "scalar"), ("encryption_key", "scalar"),
    ("ENCRYPTION_KEY", "scalar"), ("private_key", "scalar"), ("privateKey", "scalar"), ("passphrase", "scalar"),
    ("sshPassphrase", "scalar"), ("pw", "scalar"), ("psw", "scalar"), ("pwd", "scalar"), ("auth", "scalar"),
    ("credentials", "object"), ("session_id", "scalar"), ("sessionId", "scalar"), ("JSESSIONID", "scalar"),
    ("dsn", "scalar"), ("DATABASE_DSN", "scalar"), ("пароль", "scalar"), ("clientSecret", "scalar"),
    ("refresh_token", "scalar"), ("authToken", "scalar"), ("webhook_secret", "scalar"), ("hmac_key", "scalar"),
)
