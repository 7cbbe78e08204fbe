"""Planted configuration: main.json, and JSON/YAML/INI/XML files in json_consts.

akdiag copies config/main.json and the `custom.*` files of json_consts (whatever their
format); a YAML, INI or XML file elsewhere under config/ is not collected today, so the
formats are planted as json_consts overrides, and a few items are also planted where a
real host keeps such files (UNCOLLECTED_TODAY) to show when collection reaches them."""

from __future__ import annotations

import json
from pathlib import Path

from .items import KEEP, Corpus, pad
from .plant_tokens import _pem
from .vocabulary import VOCAB

CONSTS = "config/json_consts"
UNCOLLECTED_TODAY = ("config/akmta.yaml", "config/ldap.ini", "config/sso.xml", "config/json_consts/smtp.json")


def _yaml_value(shape: str, m: str) -> str:
    return {"list": f"[{m}-a1, {m}-b2]", "object": f"{{user: akmailer, value: {m}-obj}}"}.get(shape, f"{m}-Kx9")


def main_json(c: Corpus, basedir: Path) -> None:
    """Extra sections in the vendor's main.json (parsed, so scrubbed as data)."""
    src = "config/main.json"
    path = basedir / src
    config = json.loads(path.read_text())
    m = lambda form: c.mark("config_json", form, src)  # noqa: E731
    config.update({
        "NOTIFY_SMTP": {"HOST": "smtp.example.org", "PORT": 587, "USER": "ak", "PASS": m("NOTIFY_SMTP.PASS")},
        "SENTRY_DSN": f"https://{m('Sentry DSN key as URL user')}@sentry.example.com/12",
        "LDAP": {"BIND_DN": "cn=ak,dc=example,dc=org", "BIND_CREDENTIALS": m("LDAP.BIND_CREDENTIALS")},
        "S3": {"ACCESS_KEY_ID": "AKIA" + pad(m("S3.ACCESS_KEY_ID").upper(), 16, "QWERTYUIOP234567"),
               "SECRET_ACCESS_KEY": m("S3.SECRET_ACCESS_KEY")},
        "OAUTH": {"CLIENT_ID": "ak-web", "CLIENT_SECRET": m("OAUTH.CLIENT_SECRET")},
        "WEBHOOK_TOKENS": [m("WEBHOOK_TOKENS list item"), "static"],
        "ADMIN_PASSWORDS": {"root": m("ADMIN_PASSWORDS object value")},
        "SMS_GATEWAY": {"URL": "https://sms.example.net/api", "PSW": m("SMS_GATEWAY.PSW"), "LOGIN": "ak"},
        "TELEGRAM_BOT": f"https://api.telegram.org/bot123456789:AA{pad(m('bot token in a config URL'), 33)}/",
    })
    numeric = m("numeric KVROCKS_PASS")
    config["KVROCKS_PASS"] = int("7" + numeric[-4:] + "31337")
    c.set_needles(numeric, str(config["KVROCKS_PASS"]))
    c.literal("keep_measure", '"DISK_QUOTA_BYTES": 79456123499 in main.json', src, KEEP, "79456123499")
    config["DISK_QUOTA_BYTES"] = 79456123499
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False))


def json_consts(c: Corpus) -> None:
    src = f"{CONSTS}/custom.integrations.json"
    data = {}
    for key, shape in VOCAB:
        m = c.mark("vocab", f"{key} in a JSON config", src)
        data[key] = {"list": [f"{m}-a1", f"{m}-b2"], "object": {"user": "akmailer", "value": f"{m}-obj"}}.get(
            shape, f"{m}-Kx9")
    c.raw[src] = json.dumps({"integrations": data, "timeout": 30}, indent=4, ensure_ascii=False).encode()
    gcp = f"{CONSTS}/custom.gcp.json"
    pk = c.mark("private_key", "PEM in a service-account JSON (\\n escapes)", gcp)
    c.raw[gcp] = json.dumps({"type": "service_account", "project_id": "ak-prod",
                             "private_key": _pem("PRIVATE KEY", pk, 3) + "\n",
                             "client_id": "1234567890"}, indent=2).encode()
    mon = f"{CONSTS}/custom.monitoring.json"
    values = {}
    for key, value in (("total", 79456123411), ("free", 71234567890), ("size", 89012345611), ("bytes", 79001234511),
                       ("duration_ms", 89161234511), ("account_id", 79031234511)):
        c.literal("keep_measure", f'"{key}": {value} in a JSON config', mon, KEEP, str(value))
        values[key] = value
    c.literal("keep_version", '"version": "1.2.3.4" in a JSON config', mon, KEEP, "1.2.3.4")
    values["version"] = "1.2.3.4"
    c.raw[mon] = json.dumps({"disk": values, "module": "github.com/zq7keep/stats"}, indent=2).encode()
    c.literal("keep_module", "Go module path in a JSON config", mon, KEEP, "github.com/zq7keep/stats")


def yaml_consts(c: Corpus) -> None:
    src = f"{CONSTS}/custom.mailer.yaml"
    lines = ["# mailer overrides", "mailer:", "  mode: fast", "  retries: 3"]
    for key, shape in VOCAB:
        m = c.mark("vocab", f"{key} in a YAML config", src)
        lines.append(f"  {key}: {_yaml_value(shape, m)}")
    y = lambda form: c.mark("multiline", form, src)  # noqa: E731
    lines += ["smtp:", "  host: smtp.example.org", "  password: |", f"    {y('YAML literal block scalar |')}-lit",
              "  secret_key: >-", f"    {y('YAML folded block scalar >-')}-fold", "    second line",
              "  passphrase:", f"    {y('YAML value on the next line')}-next",
              "  tokens:", f"    - {y('YAML list items on following lines')}-1", "    - other",
              "  credentials:", "    user: ak", f"    value: {y('YAML object under credentials')}-v",
              "  tls.key: |",
              *["    " + ln for ln in _pem("RSA PRIVATE KEY", y("PEM in a YAML block scalar")).split("\n")],
              f"  quoted: \"password={y('password= inside a quoted YAML string')}\""]
    lines += [f"  total: 79456123422", "  version: 2.3.4.5"]
    c.literal("keep_measure", "total: 79456123422 in YAML", src, KEEP, "79456123422")
    c.literal("keep_version", "version: 2.3.4.5 in YAML", src, KEEP, "2.3.4.5")
    c.add(src, *lines)


def ini_consts(c: Corpus) -> None:
    src = f"{CONSTS}/custom.ldap.ini"
    i = lambda form: c.mark("ini", form, src)  # noqa: E731
    c.add(src, "; LDAP and SMTP for the web interface", "[ldap]", "url = ldap://ldap.example.org",
          "bind_dn = cn=ak,dc=example,dc=org", f"bind_pw = {i('INI bind_pw = ')}",
          f"BindPassword={i('INI BindPassword= no spaces')}",
          "", "[smtp]", "host = smtp.example.org", f"password = \"{i('INI quoted value')}\"",
          f"smtp_pass: {i('INI key: value')}", f"SecretKey = {i('INI SecretKey with spaces')} two words", "",
          "[database]", f"dsn = host=db1 user=ak password={i('INI password inside a dsn value')} dbname=ak",
          f"auth = {i('INI auth =')}")


def xml_consts(c: Corpus) -> None:
    src = f"{CONSTS}/custom.sso.xml"
    x = lambda form: c.mark("xml", form, src)  # noqa: E731
    c.add(src, '<?xml version="1.0" encoding="UTF-8"?>', "<configuration>", "  <appSettings>",
          f'    <add key="SmtpHost" value="smtp.example.org"/>',
          f'    <add key="SmtpPassword" value="{x("<add key=SmtpPassword value=...>")}"/>',
          f'    <add key="ApiToken" value="{x("<add key=ApiToken value=...>")}"/>', "  </appSettings>",
          f"  <password>{x('<password> element')}</password>",
          f"  <smtp host=\"mx1\" user=\"ak\" password=\"{x('password= attribute after others')}\"/>",
          f"  <Secret><![CDATA[{x('CDATA in <Secret>')}]]></Secret>",
          f'  <property name="db.password" value="{x("<property name=db.password value=...>")}"/>',
          "  <clientSecret>", f"    {x('element value on the next line')}", "  </clientSecret>",
          f"  <wsse:Password Type=\"PasswordText\">{x('wsse:Password with attributes')}</wsse:Password>",
          f'  <entry key="privateKey">{x("<entry key=privateKey>")}</entry>',
          "</configuration>")


def properties_consts(c: Corpus) -> None:
    """A Java .properties override and a compose-style YAML environment list."""
    src = f"{CONSTS}/custom.app.properties"
    p = lambda form: c.mark("ini", form, src)  # noqa: E731
    c.add(src, "# web application", "spring.datasource.url=jdbc:postgresql://db1/ak",
          f"spring.datasource.password={p('.properties spring.datasource.password=')}",
          f"mail.smtp.password = {p('.properties mail.smtp.password = ')}",
          f"app.jwt.secret: {p('.properties app.jwt.secret: ')}",
          f"oauth.client-secret={p('.properties oauth.client-secret=')}")
    env = f"{CONSTS}/custom.compose.yaml"
    y = lambda form: c.mark("multiline", form, env)  # noqa: E731
    c.add(env, "services:", "  mailer:", "    image: altcraft/mailer", "    environment:",
          f"      - SMTP_PASSWORD={y('YAML list item KEY=VALUE under environment')}",
          "      - TZ=UTC", f"      - API_TOKEN={y('YAML list item API_TOKEN=')}",
          "    healthcheck:", "      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost/health\"]",
          f"    command: [\"mailer\", \"--smtp-pass\", \"{y('flow list: --smtp-pass then its value')}\"]")


def encoded_consts(c: Corpus) -> None:
    bom = f"{CONSTS}/custom.bom.json"
    b1, b2 = c.mark("encoding", "UTF-8 BOM JSON: nested pass", bom), c.mark("encoding", "UTF-8 BOM JSON: token", bom)
    c.raw[bom] = ("\ufeff" + json.dumps({"smtp": {"host": "mx1", "pass": f"{b1}-bom"}, "token": f"{b2}-bom"},
                                        indent=2)).encode()
    win = f"{CONSTS}/custom.win.json"
    w1 = c.mark("encoding", "UTF-16LE BOM JSON: password", win)
    w2 = c.mark("encoding", "UTF-16LE BOM JSON: apiKey", win)
    document = json.dumps({"password": f"{w1}-u16", "apiKey": f"{w2}-u16"}, indent=2)
    c.raw[win] = b"\xff\xfe" + document.encode("utf-16-le")
    pretty = f"{CONSTS}/custom.pretty.json"
    p = lambda form: c.mark("multiline", form, pretty)  # noqa: E731
    c.add(pretty, "{", "  // edited by hand: not strict JSON", '  "smtp": {', '    "password":',
          f'      "{p("invalid JSON, value on the next line")}",',
          '    "host": "mx1",', "  },", f'  "api_key": "{p("invalid JSON, plain line")}",', "}")


def uncollected(c: Corpus) -> None:
    """Where a real host keeps such files; not collected today (see UNCOLLECTED_TODAY)."""
    u = lambda src, form: c.mark("uncollected", form, src)  # noqa: E731
    c.add("config/akmta.yaml", "smtp:", f"  password: {u('config/akmta.yaml', 'YAML outside json_consts')}")
    c.add("config/ldap.ini", "[ldap]", f"bind_pw = {u('config/ldap.ini', 'INI outside json_consts')}")
    c.add("config/sso.xml", f"<sso><secret>{u('config/sso.xml', 'XML outside json_consts')}</secret></sso>")
    c.raw["config/json_consts/smtp.json"] = json.dumps(
        {"SMTP_PASS": u("config/json_consts/smtp.json", "json_consts file without custom. prefix")}).encode()


def plant(c: Corpus, basedir: Path) -> None:
    main_json(c, basedir)
    json_consts(c)
    yaml_consts(c)
    ini_consts(c)
    xml_consts(c)
    properties_consts(c)
    encoded_consts(c)
    uncollected(c)
