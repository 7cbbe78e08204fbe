"""Planted token shapes with no key name, SMTP AUTH transcripts and private keys
(issue 11 item 4), in log files under BASEDIR/logs."""

from __future__ import annotations

import base64
import json

from .items import Corpus, pad

TAIL_LINES = 400  # the corpus runs collect with --log-lines TAIL_LINES

TS = "2026-11-29T10:{:02d}:{:02d}.{:03d}Z"


def stamp(i: int) -> str:
    return TS.format((i // 60) % 60, i % 60, (i * 37) % 1000)


def _b64_needle(text: str, marker: str) -> str:
    """The base64 characters that encode `marker` inside base64(text)."""
    k = text.index(marker)
    start, end = (k // 3) * 4, ((k + len(marker)) // 3 + 1) * 4
    return base64.b64encode(text.encode()).decode()[start:end]


def _pem(kind: str, marker: str, lines: int = 5) -> str:
    body = [pad(f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{i}", 64) for i in range(lines)]
    body[1] = pad("MIIEvQIBADAN" + marker, 64)
    body[-1] = pad("QWx0Y3JhZnQ" + marker, 44)
    return "\n".join([f"-----BEGIN {kind}-----", *body, f"-----END {kind}-----"])


def tokens(c: Corpus) -> None:
    """Item 4: token shapes that carry no key name."""
    src = "logs/procintegras.log"
    t = lambda fam, form: c.mark(fam, form, src)  # noqa: E731
    aws = t("token_aws", "AWS access key id AKIA").upper()
    asia = t("token_aws", "AWS temporary key id ASIA").upper()
    secret = t("token_aws", "AWS secret key after its key id")
    c.add(src,
          f"{stamp(70)} INFO s3 upload as AKIA{pad(aws, 16, 'QWERTYUIOP234567')} ok",
          f"{stamp(71)} INFO sts session ASIA{pad(asia, 16, 'QWERTYUIOP234567')} expires 3600s",
          f"{stamp(72)} DEBUG aws creds AKIAIOSFODNN7EXAMPLE:{pad('wJalrX' + secret, 40, 'UtnFEMI/K7MDENG/bPxRfiCY')}")
    for form, build in (
            ("Slack bot token xoxb", lambda m: f"xoxb-123456789012-1234567890123-{pad(m, 24)}"),
            ("Slack user token xoxp", lambda m: f"xoxp-123456789012-123456789012-1234567890123-{pad(m, 32)}"),
            ("Slack app token xapp", lambda m: f"xapp-1-A0123ABCD-1234567890123-{pad(m, 64)}")):
        c.add(src, f"{stamp(73)} INFO notify via {build(t('token_slack', form))} channel=#ops")
    for form, build in (("GitHub ghp_", lambda m: "ghp_" + pad(m, 36)), ("GitHub gho_", lambda m: "gho_" + pad(m, 36)),
                        ("GitHub ghs_", lambda m: "ghs_" + pad(m, 36)),
                        ("GitHub fine-grained github_pat_",
                         lambda m: f"github_pat_11ABCDEFG0{pad(m, 12)}_{pad('x', 59)}")):
        c.add(src, f"{stamp(74)} DEBUG git clone using {build(t('token_github', form))}")
    for form, build in (("Stripe sk_live_", lambda m: "sk_live_" + pad(m, 24)),
                        ("Stripe rk_live_", lambda m: "rk_live_" + pad(m, 24)),
                        ("Stripe sk_test_", lambda m: "sk_test_" + pad(m, 24)),
                        ("Stripe whsec_", lambda m: "whsec_" + pad(m, 32))):
        c.add(src, f"{stamp(75)} INFO billing client {build(t('token_stripe', form))}")
    sg = t("token_sendgrid", "SendGrid SG.x.y")
    c.add(src, f"{stamp(76)} INFO relay key SG.{pad(sg, 22)}.{pad('Qw', 43)}")
    for form in ("Google API key AIza in text", "Google API key AIza in a URL"):
        g = t("token_google", form)
        c.add(src, f"{stamp(77)} INFO geocode https://maps.googleapis.com/maps/api/geocode/json?k=AIza{pad(g, 35)}"
              if "URL" in form else f"{stamp(77)} INFO maps client AIza{pad(g, 35)} ready")
    payload = base64.urlsafe_b64encode(b'{"sub":"1","name":"ak","iat":1764410000}').decode().rstrip("=")
    for form in ("JWT in free text", "JWT after id_token=", "JWT in a JSON string"):
        m = t("token_jwt", form)
        jwt = f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{payload}.{pad(m, 43)}"
        c.add(src, json.dumps({"msg": "session", "jwt_value": jwt}) if "JSON" in form
              else f"{stamp(78)} DEBUG callback id_token={jwt}" if "id_token" in form
              else f"{stamp(78)} DEBUG session refreshed with {jwt}")
    for form, build in (
            ("Telegram bot token in a URL path",
             lambda m: f"https://api.telegram.org/bot123456789:AA{pad(m, 33)}/sendMessage"),
            ("Telegram bot token bare", lambda m: f"987654321:AA{pad(m, 33)}"),
            ("Slack webhook URL", lambda m: f"https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/{pad(m, 24)}"),
            ("Discord webhook URL", lambda m: f"https://discord.com/api/webhooks/123456789012345678/{pad(m, 68)}"),
            ("Teams webhook URL", lambda m: "https://contoso.webhook.office.com/webhookb2/1a2b@3c4d/IncomingWebhook/"
                                            f"{pad(m, 32)}/5e6f"),
            ("Mattermost hook URL", lambda m: f"https://chat.example.com/hooks/{pad(m, 26)}")):
        c.add(src, f"{stamp(79)} INFO POST {build(t('token_url_path', form))} 200")


def smtp_and_keys(c: Corpus) -> None:
    src = "logs/akmtad.log"
    plain = c.mark("smtp_auth", "AUTH PLAIN payload", src)
    login = c.mark("smtp_auth", "AUTH LOGIN password line after 334 UGFzc3dvcmQ6", src)
    inline = c.mark("smtp_auth", "AUTH LOGIN with the user inline, password on the next line", src)
    c.add(src,
          f"{stamp(80)} smtp[4411] C: EHLO mx.example.net", f"{stamp(80)} smtp[4411] S: 250-AUTH PLAIN LOGIN",
          f"{stamp(81)} smtp[4411] C: AUTH PLAIN {pad('AGFrbWF0ZAB' + plain, 28)}",
          f"{stamp(82)} smtp[4412] C: AUTH LOGIN", f"{stamp(82)} smtp[4412] S: 334 VXNlcm5hbWU6",
          f"{stamp(82)} smtp[4412] C: YWttYWlsZXI=", f"{stamp(82)} smtp[4412] S: 334 UGFzc3dvcmQ6",
          f"{stamp(83)} smtp[4412] C: {pad('cDRzcw' + login, 20)}", f"{stamp(83)} smtp[4412] S: 235 2.7.0 ok",
          f"{stamp(84)} smtp[4413] C: AUTH LOGIN YWttYWlsZXI=", f"{stamp(84)} smtp[4413] S: 334 UGFzc3dvcmQ6",
          f"{stamp(84)} smtp[4413] C: {pad('c2VjcmV0' + inline, 20)}")
    k = lambda form: c.mark("private_key", form, src)  # noqa: E731
    for kind in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY",
                 "DSA PRIVATE KEY"):
        c.add(src, f"{stamp(85)} DEBUG loaded key:", _pem(kind, k(f"PEM {kind} block")))
    pgp = k("PGP PRIVATE KEY BLOCK")
    c.add(src, f"{stamp(86)} DEBUG gpg export:", "-----BEGIN PGP PRIVATE KEY BLOCK-----", "Version: GnuPG v2", "",
          pad("lQOYBGV" + pgp, 64), pad("xQOYBGV" + pgp, 40), "=a1B2", "-----END PGP PRIVATE KEY BLOCK-----")
    putty = k("PuTTY private key file")
    c.add(src, f"{stamp(87)} DEBUG ppk:", "PuTTY-User-Key-File-3: ssh-ed25519", "Encryption: none",
          "Comment: ak@app1", "Public-Lines: 2", pad("AAAAC3NzaC1lZDI1NTE5AAAAI", 64), "Bq3K9ZtQ", "Private-Lines: 1",
          pad("AAAAIGb" + putty, 44), "Private-MAC: 7b2c0f5e3d4a1b6c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e")
    inline_pem = k("PEM inline in a JSON string with \\n escapes")
    c.add(src, json.dumps({"msg": "tls", "key": _pem("PRIVATE KEY", inline_pem, 3) + "\n"}))
    wrapped_marker = k("base64-wrapped PEM (k8s tls.key)")
    pem = _pem("RSA PRIVATE KEY", wrapped_marker)
    blob = base64.b64encode(pem.encode()).decode()
    c.set_needles(wrapped_marker, _b64_needle(pem, wrapped_marker))
    c.add(src, f"{stamp(88)} DEBUG secret tls.key: {blob}")
    # a tail whose BEGIN line was cut off (the tail keeps only the last lines), and a
    # file that ends inside a key (no END)
    cut = "logs/sso.log"
    cm = c.mark("private_key", "key body at the start of a tail whose BEGIN was cut off", cut)
    body = [pad(f"MIIEowIBAAKCAQEA{i}", 64) for i in range(5)] + [pad(f"Qx{i}" + cm, 64) for i in range(3)]
    c.add(cut, *[f"{stamp(i)} INFO sso heartbeat {i}" for i in range(30)],
          "-----BEGIN RSA PRIVATE KEY-----", *body, "-----END RSA PRIVATE KEY-----",
          *[f"{stamp(i)} INFO sso heartbeat {i}" for i in range(30, 30 + TAIL_LINES - 4)])
    open_end = "logs/tls-rotate.log"
    om = c.mark("private_key", "key block at the end of a file, no END line", open_end)
    c.add(open_end, f"{stamp(89)} INFO rotating key", "-----BEGIN EC PRIVATE KEY-----", pad("MHcCAQEEI" + om, 64),
          pad("AwEHoUQDQgAE" + om, 64))
