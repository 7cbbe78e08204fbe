"""Planted log files under BASEDIR/logs: Go JSON logs, logfmt, HTTP access and request
dumps, SMTP transcripts, stack traces; every line form of issue 11 items 2, 4, 6, 7, 9."""

from __future__ import annotations

import json

from . import plant_tokens
from .items import EMAIL, HOST, IP, KEEP, PHONE, Corpus, pad
from .plant_tokens import stamp
from .vocabulary import VOCAB

def _value_json(shape: str, marker: str):
    if shape == "list":
        return [f"{marker}-a1", f"{marker}-b2"]
    if shape == "object":
        return {"user": "akmailer", "value": f"{marker}-obj"}
    return f"{marker}-Kx9"


def vocab_go_json(c: Corpus) -> None:
    src = "logs/procworkflow.log"
    for i, (key, shape) in enumerate(VOCAB):
        m = c.mark("vocab", f"{key} in a Go JSON log line", src)
        record = {"level": "error", "ts": stamp(i), "caller": "mailer/smtp.go:88", "msg": "config loaded",
                  "component": "mailer", key: _value_json(shape, m), "retry": 3}
        c.add(src, json.dumps(record, ensure_ascii=False, separators=(",", ":")))


def vocab_logfmt(c: Corpus) -> None:
    src = "logs/api.log"
    for i, (key, shape) in enumerate(VOCAB):
        m = c.mark("vocab", f"{key} in a logfmt line", src)
        value = {"list": f'"[{m}-a1 {m}-b2]"', "object": f'"{{akmailer {m}-obj}}"'}.get(shape, f"{m}-Kx9")
        c.add(src, f'ts={stamp(i)} level=warn msg="smtp auth" host=mx1 {key}={value} attempt=2')


def line_forms(c: Corpus) -> None:
    """Item 2: =, :, =>, several pairs per line, quoted keys, JSON inside a string, Go dumps."""
    src = "logs/webcontrol.log"
    a = lambda form: c.mark("kv_line", form, src)  # noqa: E731
    lines = [
        f"{stamp(1)} ERROR db: timeout after 5s mode: fast password={a('password= after ERROR db: and mode: fast')}",
        f"{stamp(2)} INFO mode=fast user=bob token={a('two pairs on a line (1st)')} "
        f"secret={a('two pairs on a line (2nd)')}",
        f"{stamp(3)} WARN retry=3 state: degraded api_key: {a('api_key: after harmless pairs')} region=eu",
        f"{stamp(4)} DEBUG params {{\"user\" => \"ak\", \"password\" => \"{a('Ruby hash rocket =>')}\"}}",
        f"{stamp(5)} DEBUG opts {{:login => 'ak', :passwd => '{a('symbol key =>')}'}}",
        f"{stamp(6)} DEBUG conf password => {a('bare =>')} timeout => 30",
        f"{stamp(7)} DEBUG kwargs {{'user': 'ak', 'password': '{a('single-quoted key (Python repr)')}'}}",
        f"{stamp(8)} DEBUG hcl \"secret_key\" = \"{a('double-quoted key with =')}\"",
        f"{stamp(9)} DEBUG env SMTP_PASSWORD='{a('quoted value with a space after')} x' SMTP_USER=ak",
        f"{stamp(10)} INFO user=ak pass: {a('pass: short key')} ok",
        f"{stamp(11)} ERROR login failed for user ak (password: {a('password: in parentheses')})",
        f"{stamp(12)} ERROR auth error; Password={a('Password= after a semicolon')}; retrying",
        f"{stamp(13)} INFO args=[--user ak] secret:{a('secret: no space')} took 5ms",
        f"{stamp(14)} WARN db_password = \"{a('db_password = quoted')}\" # from env",
    ]
    j = lambda form: c.mark("json_in_string", form, src)  # noqa: E731
    lines += [
        f'{stamp(20)} DEBUG request body: {{"user":"ak","password":"{j("JSON object in a text line")}"}}',
        json.dumps({"level": "debug", "msg": "request",
                    "body": json.dumps({"smtp_pass": j("escaped JSON in a JSON log string"), "user": "ak"})}),
        json.dumps({"level": "debug", "msg": "payload",
                    "body": json.dumps({"config": {"SMTPPass": j("escaped nested JSON"), "port": 25}})}),
        f'{stamp(21)} msg="upstream said {{\\"token\\":\\"{j("escaped JSON in a logfmt value")}\\"}}" status=401',
    ]
    g = lambda form: c.mark("go_dump", form, src)  # noqa: E731
    lines += [
        f"{stamp(30)} INFO smtp config {{Host:mx1 Port:25 User:ak Password:{g('%+v Password:')} From:noreply}}",
        f"{stamp(31)} INFO client &{{Login:ak Pass:{g('%+v &{{Pass:}}')} Timeout:5s}}",
        f"{stamp(32)} DEBUG cfg={{SMTPPass:{g('%+v SMTPPass:')} TLS:true}}",
        f"{stamp(33)} DEBUG opts {{Name:hook Token:{g('%+v Token:')} Retries:3}}",
        f"{stamp(34)} DEBUG {{APIKey:{g('%+v APIKey: first field')} Timeout:5s}}",
        f"{stamp(35)} DEBUG params map[password:{g('map[password:]')} user:ak]",
        f"{stamp(36)} DEBUG headers map[Accept:[*/*] X-Api-Key:[{g('map[X-Api-Key:[...]]')}]]",
        f"{stamp(37)} DEBUG vars map[mode:fast secret:{g('map[secret:] after mode')}]",
        f"{stamp(38)} DEBUG creds map[Credentials:map[user:ak value:{g('nested map under Credentials')}]]",
    ]
    lo = lambda form: c.mark("list_object", form, src)  # noqa: E731
    lines += [
        f"{stamp(40)} INFO loaded passwords=[{lo('Go slice after passwords=')}-a {lo('second slice item')}-b]",
        f'{stamp(41)} INFO loaded {{"tokens": ["{lo("JSON list of tokens in text")}-1", "x"]}}',
        f'{stamp(42)} INFO loaded {{"credentials": {{"login": "ak", "value": "{lo("object under credentials")}"}}}}',
        json.dumps({"level": "info", "msg": "cfg", "secrets": {"smtp": lo("object under secrets in JSON log"),
                                                                "port": 25}}),
    ]
    c.add(src, *lines)


def http(c: Corpus) -> None:
    """Query strings, secret-named headers, cookies, Authorization in every scheme."""
    access = "logs/webcontrol_access.log"
    q = lambda form: c.mark("query_string", form, access)  # noqa: E731
    for i, key in enumerate(("api_key", "apikey", "client_secret", "access_token", "pwd", "passwd", "auth",
                             "session_id", "X-Amz-Signature", "signature", "private_token", "smtp_pass")):
        c.add(access, f'10.0.0.1 - - [29/Nov/2026:10:00:{i:02d} +0000] "GET /api/v1/subscribe?list=5&{key}='
                      f'{q(key + "= in a query string")}&lang=ru HTTP/1.1" 200 512 "-" "curl/8.0"')
    dump = "logs/webapi.log"
    h = lambda form: c.mark("header", form, dump)  # noqa: E731
    for name in ("X-Api-Key", "X-Auth-Token", "X-ClickHouse-Key", "X-Vault-Token", "X-Access-Token",
                 "Private-Token", "X-Webhook-Secret", "X-Smtp-Password"):
        c.add(dump, f"{stamp(50)} DEBUG > {name}: {h(name + ' header')}")
    k = lambda form: c.mark("cookie", form, dump)  # noqa: E731
    c.add(dump,
          f"{stamp(51)} DEBUG > Cookie: lang=ru; session={k('Cookie session= after lang')}; theme=dark",
          f"{stamp(52)} DEBUG > Cookie: PHPSESSID={k('Cookie PHPSESSID')}",
          f"{stamp(53)} DEBUG > Cookie: a=1; csrftoken={k('Cookie csrftoken')}; ak_sid={k('Cookie 2nd secret')}",
          f"{stamp(54)} DEBUG < Set-Cookie: ak_session={k('Set-Cookie with attributes')}; Path=/; HttpOnly; Secure",
          f"{stamp(55)} DEBUG < Set-Cookie: remember_me={k('Set-Cookie remember_me')}; Max-Age=2592000",
          f"{stamp(56)} DEBUG headers map[Cookie:[sid={k('Cookie in a Go map')}]]",
          json.dumps({"msg": "resp", "headers": {"Set-Cookie": [f"token={k('Set-Cookie in JSON list')}; Path=/"]}}))
    schemes = [
        ("Bearer", lambda m: m), ("Basic", lambda m: pad("YWs6" + m, 24)),
        ("Digest", lambda m: f'username="ak", realm="api", nonce="abc", uri="/", response="{m}"'),
        ("OAuth", lambda m: f'oauth_consumer_key="ck", oauth_token="t1", oauth_signature="{m}"'),
        ("ApiKey", lambda m: m), ("Api-Key", lambda m: m), ("App", lambda m: m), ("AccessKey", lambda m: m),
        ("Token", lambda m: m), ("Negotiate", lambda m: pad("YIIG" + m, 40)), ("NTLM", lambda m: pad("TlRM" + m, 40)),
        ("AWS4-HMAC-SHA256", lambda m: f"Credential=AKIDEXAMPLE/20261129/us-east-1/s3/aws4_request, "
                                       f"SignedHeaders=host, Signature={m}"),
        ("SSWS", lambda m: m), ("Key", lambda m: m), ("GoogleLogin", lambda m: f"auth={m}"),
    ]
    for scheme, value in schemes:
        line = c.mark("authorization", f"Authorization: {scheme} (header dump)", dump)
        c.add(dump, f"{stamp(60)} DEBUG > Authorization: {scheme} {value(line)}")
        mapped = c.mark("authorization", f"Authorization {scheme} in a Go map", dump)
        c.add(dump, f"{stamp(61)} DEBUG request headers map[Accept:[*/*] Authorization:[{scheme} {value(mapped)}]]")
    jm = c.mark("authorization", "Authorization in a JSON log field", dump)
    c.add(dump, json.dumps({"msg": "out", "headers": {"authorization": f"Bearer {jm}"}}))
    pm = c.mark("authorization", "Proxy-Authorization: Basic", dump)
    c.add(dump, f"{stamp(62)} DEBUG > Proxy-Authorization: Basic {pad('cHJveHk6' + pm, 24)}")


def web_server(c: Corpus) -> None:
    """An nginx error log, HTTP/2 lower-case headers, OAuth fragments, environment dumps."""
    src = "logs/nginx_error.log"
    w = lambda family, form: c.mark(family, form, src)  # noqa: E731
    c.add(src,
          f'2026/11/29 10:00:00 [error] 812#0: *1 upstream timed out, client: 10.0.0.1, server: ak, request: '
          f'"POST /api/v1/login?password={w("query_string", "password= in an nginx request field")} HTTP/1.1", '
          f'upstream: "http://127.0.0.1:8801/", host: "ak.example.com", '
          f'referrer: "https://ak.example.com/cb?code={w("query_string", "code= in an nginx referrer")}"',
          f"2026/11/29 10:00:01 [info] 812#0: GET /cb#access_token={w('query_string', '#access_token= fragment')}"
          "&token_type=bearer",
          f"2026/11/29 10:00:02 [info] 812#0: POST /x?data=user%3Dak%26password%3D"
          f"{w('url', 'percent-encoded password= inside a query value')}%26x%3D1",
          f"2026/11/29 10:00:03 [debug] 812#0: http2 header: \"x-api-key: "
          f"{w('header', 'HTTP/2 lower-case x-api-key')}\"",
          f"2026/11/29 10:00:04 [debug] 812#0: http2 header: \"authorization: bearer "
          f"{w('authorization', 'HTTP/2 lower-case authorization: bearer')}\"",
          f"ts=2026-11-29T10:00:05Z level=debug Authorization=\"Basic {w('authorization', 'logfmt Authorization=')}\"")
    env = "logs/proctask.log"
    e = lambda form: c.mark("kv_line", form, env)  # noqa: E731
    c.add(env,
          f"{stamp(190)} INFO environ: HOME=/root SMTP_PASSWORD={e('environment dump, 1st secret')} LANG=C "
          f"RABBITMQ_PASS={e('environment dump, 2nd secret')} TZ=UTC",
          f"{stamp(191)} DEBUG exec [/usr/bin/env KVROCKS_PASSWORD={e('env assignment before a command')} kvrocks]",
          f"{stamp(192)} WARN config reload: old={{mode:fast}} new={{mode:fast smtp_password:{e('after braces')}}}")
    pretty = "logs/procrpc.log"
    p = lambda form: c.mark("multiline", form, pretty)  # noqa: E731
    c.add(pretty, f"{stamp(193)} DEBUG outgoing request:", "{", '  "method": "POST",', '  "headers": {',
          '    "Authorization": [', f'      "Bearer {p("pretty JSON: Authorization list on following lines")}"',
          "    ],", f'    "X-Api-Key": "{p("pretty JSON: X-Api-Key inside headers")}"', "  },",
          '  "body": {', '    "credentials": {', '      "login": "ak",',
          f'      "value": "{p("pretty JSON: value under credentials two levels down")}"', "    }", "  }", "}")


def urls(c: Corpus) -> None:
    src = "logs/procpush.log"
    u = lambda form: c.mark("url", form, src)  # noqa: E731
    c.add(src,
          f"{stamp(90)} DEBUG dial amqp://altcraft:{u('password holding @')}@x@127.0.0.1:5672/altcraft",
          f"{stamp(91)} DEBUG dial mongodb://ak:{u('password holding /')}/x9@db1:27017/admin",
          f"{stamp(92)} DEBUG dial redis://:{u('empty user')}@10.0.0.5:6666/0",
          f"{stamp(93)} DEBUG dial https://ak:{u('password with %40')}%40x@files.example.net/dav",
          f"{stamp(94)} DEBUG dial smtp://ak:{u('password with : and #')}:a#b@mx1:587",
          f"{stamp(95)} DEBUG dial clickhouse://default:{u('clickhouse URL')}@127.0.0.1:9000/altcraft",
          f"{stamp(96)} DEBUG dial mongodb+srv://ak:{u('mongodb+srv')}@cluster0.example.net/x",
          f"{stamp(97)} DEBUG connect ak:{u('scheme-less user:pw@host:port')}@10.0.0.6:27017",
          f"{stamp(98)} DEBUG mysql dsn altcraft:{u('Go MySQL DSN user:pw@tcp(...)')}@tcp(db1:3306)/ak",
          f"{stamp(99)} DEBUG upstream ak:{u('scheme-less user:pw@host')}@mail.example.org",
          f"{stamp(100)} INFO GET /redirect?to=https%3A%2F%2Fadmin%3A{u('percent-encoded nested URL')}"
          "%40host.example.com%2Fx",
          f"{stamp(101)} INFO GET /r?u=https%253A%252F%252Fadmin%253A{u('double percent-encoded URL')}"
          "%2540h.example.com",
          f"{stamp(102)} INFO proxy=http://proxy:{u('proxy URL password')}@10.0.0.9:3128 no_proxy=localhost",
          json.dumps({"msg": "dial", "uri": f"postgres://ak:{u('URL in a JSON log field')}@db1/ak?sslmode=disable"}))


def multiline(c: Corpus) -> None:
    """Item 7 in logs: pretty-printed JSON and next-line values."""
    src = "logs/procleadsaver.log"
    p1, p2 = (c.mark("multiline", f, src) for f in ('pretty JSON "password": then the value on the next line',
                                                     'pretty JSON "secret_key": value two lines down'))
    p3 = c.mark("multiline", "Password: on one line, value indented on the next", src)
    c.add(src, f"{stamp(110)} DEBUG request body:", "{", '  "user": "ak",', '  "password":', f'    "{p1}-x"', "}",
          f"{stamp(111)} DEBUG config:", "{", '  "secret_key":', "", f'      "{p2}-y",', '  "port": 25', "}",
          f"{stamp(112)} ERROR smtp login rejected; Password:", f"    {p3}-z")


def encodings(c: Corpus) -> None:
    """UTF-16 and BOM-marked log files (item 7)."""
    m1 = c.mark("encoding", "password= in a UTF-16LE log with BOM", "logs/export-win.log")
    e1 = c.mark("encoding", "e-mail in a UTF-16LE log", "logs/export-win.log", kind=EMAIL)
    m2 = c.mark("encoding", "Authorization: Bearer in a UTF-16LE log", "logs/export-win.log")
    text = (f"{stamp(120)} INFO export started\r\n{stamp(121)} ERROR login failed password={m1}-u16\r\n"
            f"{stamp(122)} INFO sent to {e1.lower()}@example.org\r\n{stamp(123)} DEBUG Authorization: Bearer {m2}\r\n")
    c.raw["logs/export-win.log"] = b"\xff\xfe" + text.encode("utf-16-le")
    m3 = c.mark("encoding", "token= in a UTF-8 log with BOM", "logs/import-bom.log")
    c.raw["logs/import-bom.log"] = ("\ufeff" + f"{stamp(124)} INFO import api token={m3}-bom\n").encode()
    m4 = c.mark("encoding", "password= in a UTF-16BE log with BOM", "logs/export-mac.log")
    c.raw["logs/export-mac.log"] = b"\xfe\xff" + f"{stamp(125)} ERROR password={m4}-be\n".encode("utf-16-be")


def pii(c: Corpus) -> None:
    src = "logs/procsenderev.log"
    e = lambda form: c.mark("pii_email", form, src, kind=EMAIL).lower()  # noqa: E731
    c.add(src,
          f"{stamp(130)} INFO delivered to {e('plain e-mail')}.ivanov@example.org",
          f"{stamp(131)} INFO delivered to {e('plus-tagged e-mail')}+promo@mail.example.net",
          f"{stamp(132)} INFO GET /unsubscribe?email={e('%40-encoded e-mail')}%40example.com&list=3",
          f"{stamp(133)} INFO GET /u?e={e('%40 lower-case hex')}%40gmail.com",
          f"{stamp(134)} INFO delivered to {e('IDN domain')}@пример.рф",
          f"{stamp(135)} INFO delivered to {e('punycode domain')}@xn--e1afmkfd.xn--p1ai",
          f"{stamp(136)} INFO delivered to иван.{e('Cyrillic local part')}@почта.рф",
          f"{stamp(137)} INFO delivered to {e('Cyrillic local part, ASCII domain')}-пётр@mail.ru",
          f"{stamp(138)} INFO mime To: {e('quoted-printable =40')}=40example.org",
          f"{stamp(139)} INFO bounce <{e('in angle brackets')}@example.org>",
          f"{stamp(140)} INFO link mailto:{e('mailto:')}@example.org",
          f"{stamp(141)} INFO delivered to {e('upper-case').upper()}@EXAMPLE.ORG",
          f"{stamp(142)} INFO GET /unsubscribe/{e('in a URL path')}@example.org/confirm",
          json.dumps({"msg": "sent", "email": e("JSON field") + "@example.com"}),
          f"{stamp(143)} INFO rcpt={e('logfmt rcpt=')}@yandex.ru status=sent")
    phones = [("8-916-701-23-45", "8-9xx-xxx-xx-xx"), ("8 (916) 702-34-56", "8 (9xx) xxx-xx-xx"),
              ("tel:+79167034567", "tel:+7..."), ("%2B79167045678", "%2B7... in a query"),
              ("+7 916 705-67-89", "+7 9xx xxx-xx-xx"), ("+7(916)7067890", "+7(9xx)xxxxxxx"),
              ("8 916 709 01 23", "8 9xx xxx xx xx"), ("+7-916-710-12-34", "+7-9xx-xxx-xx-xx"),
              ("89167112233", "89xxxxxxxxx bare"), ("79167123344", "79xxxxxxxxx in a JSON string")]
    for value, form in phones:
        needles = (value, value.replace("%2B", "")) if value.startswith("%2B") else (value,)
        c.literal("pii_phone", form, src, PHONE, *needles)
        if "JSON" in form:
            c.add(src, json.dumps({"msg": "sms", "phone": value}))
        elif value.startswith("%2B"):
            c.add(src, f"{stamp(150)} INFO GET /sms/send?to={value}&text=hi")
        else:
            c.add(src, f"{stamp(150)} INFO sms to {value} queued")
    for value, form in (("10.77.1.11", "IPv4"), ("2001:db8:77::1f", "IPv6 compressed"),
                        ("fe80::77:1:2", "IPv6 link-local"), ("2001:db8:77:0:0:0:0:3", "IPv6 uncompressed"),
                        ("[2001:db8:77::4]:8080", "IPv6 with a port in brackets")):
        needle = value.strip("[").split("]")[0]
        c.literal("pii_ip", form, src, IP, needle)
        c.add(src, f"{stamp(160)} INFO client {value} connected")
    for form, host in (("host name, TLD not on a fixed list (.clinic)", "mx-{m}.altcraft.clinic"),
                       ("host name, .xyz", "{m}.mail.xyz"), ("host name, .cluster", "db-{m}.internal.cluster"),
                       ("host name, IDN .рф", "{m}.пример.рф"), ("host name, .io", "{m}.relay.io"),
                       ("host in a URL, .pro", "https://{m}.altcraft.pro/api")):
        m = c.mark("pii_host", form, src, kind=HOST).lower()
        c.add(src, f"{stamp(170)} INFO relay {host.format(m=m)} ok")


def keep(c: Corpus) -> None:
    """Measurements that must survive every mode (item 9's precision)."""
    src = "logs/stataggregator.log"
    for value, form in (("79456123456", '"total" bytes in a JSON log'), ("89012345678", '"size" in a JSON log'),
                        ("79001234567", '"bytes" in a JSON log')):
        c.literal("keep_measure", form, src, KEEP, value)
        key = form.split('"')[1]
        c.add(src, json.dumps({"level": "info", "msg": "disk", "mount": "/data", key: int(value)}))
    for value, form in (("79456123457", "bytes= in logfmt"), ("89161234560", "duration_ms= in logfmt"),
                        ("79998887766", "free_bytes= in logfmt")):
        c.literal("keep_measure", form, src, KEEP, value)
        c.add(src, f"ts={stamp(180)} level=info msg=flush {form.split('=')[0]}={value} ok=true")
    for value, form in (("7.13.21.4", "version 7.13.21.4 after 'version'"),
                        ("10.11.12.13", '"version": "10.11.12.13" in JSON')):
        c.literal("keep_version", form, src, KEEP, value)
        c.add(src, json.dumps({"msg": "build", "version": value}) if "JSON" in form
              else f"{stamp(181)} INFO akmtad version {value} started")
    for path in ("github.com/zq7keep/akmta/internal/smtp", "golang.org/x/net/http2",
                 "go.mongodb.org/mongo-driver/mongo"):
        c.literal("keep_module", f"Go module path {path.split('/')[0]}/...", src, KEEP, path)
        # the path once only, as a Go stack trace starts its frame lines
        c.add(src, "goroutine 1 [running]:", f"{path}.(*Client).Do(0xc000123456)", "\t/build/client.go:88 +0x1f")


def plant(c: Corpus) -> None:
    for part in (vocab_go_json, vocab_logfmt, line_forms, http, web_server, plant_tokens.tokens,
                 plant_tokens.smtp_and_keys, urls, multiline, encodings, pii, keep):
        part(c)
