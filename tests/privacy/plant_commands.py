"""Planted command lines (real processes and `akd --processes` output) and file names
(issue 11 items 5 and 8)."""

from __future__ import annotations

from .items import EMAIL, KEEP, PHONE, Corpus

# title of a platform process -> extra argv words; {m:form} is replaced by a new marker
PLATFORM_ARGV = (
    ("AK:api", ["--config", "/opt/akd/config/main.json", "--smtp-pass", "{--smtp-pass V}",
                "--client-secret={--client-secret=V}"]),
    ("AK:proctask", ["--requirepass", "{--requirepass V}", "--masterauth", "{--masterauth V}"]),
    ("AK:procworkflow", ["--passphrase", "{--passphrase V}", "--secret-key", "{--secret-key V}",
                         "--api-key={--api-key=V}"]),
    ("AK:trkaction", ["--smtpPassword", "{--smtpPassword V (camelCase flag)}", "--SMTP_PASS={--SMTP_PASS=V}",
                      "--auth-token", "{--auth-token V}"]),
    ("AK:procsenderev", ["--set", "password: {--set 'password: V' (the issue's JSON breaker)}",
                         "--set", "smtp.user=ak"]),
    ("AK:procpush", ["--smtp-pass", "two words {--smtp-pass 'value with spaces'}", "--db-password",
                     "{--db-password 'quoted, with a space'} x"]),
    ("AK:stataggregator", ["-Dx.password={-Dx.password=V}", "-Dspring.datasource.password={-Dspring...password=V}",
                           "-Djavax.net.ssl.keyStorePassword={-D...keyStorePassword=V}"]),
    ("AK:procrpc", ["--token", "{--token V}", "--pwd", "{--pwd V}", "--webhook-secret={--webhook-secret=V}"]),
    ("AK:trkread", ["-passphrase", "{Go single-dash -passphrase V}", "-smtp.password={Go -smtp.password=V}"]),
)
# (argv[0], extra argv words) of tools an administrator runs beside the platform
TOOL_ARGV = (
    ("mysql", ["-h", "db1", "-uroot", "-p{mysql -pV}", "altcraft"]),
    ("mysqldump", ["--user=root", "--password={mysqldump --password=V}", "altcraft"]),
    ("redis-cli", ["-h", "127.0.0.1", "-p", "6666", "-a", "{redis-cli -a V}", "ping"]),
    ("sshpass", ["-p", "{sshpass -p V}", "ssh", "-p2222", "ak@db1"]),
    ("curl", ["-s", "-u", "admin:{curl -u user:V}", "https://hooks.example.net/x"]),
    ("curl", ["--user", "admin:{curl --user user:V}", "-H", "Authorization: Bearer {curl -H 'Authorization: Bearer V'}",
              "-H", "X-Api-Key: {curl -H 'X-Api-Key: V'}", "https://api.example.net/"]),
    ("java", ["-Dkeystore.pass={java -Dkeystore.pass=V}", "-Dmail.smtp.password={java -Dmail.smtp.password=V}",
              "-jar", "/opt/app.jar"]),
    ("clickhouse-client", ["--user", "default", "--password", "{clickhouse-client --password V}",
                           "--query", "SELECT 1"]),
    ("mongosh", ["mongodb://ak:{mongosh URL password}@db1:27017/admin", "--eval", "db.stats()"]),
    ("openssl", ["pkcs12", "-export", "-passout", "pass:{openssl -passout pass:V}", "-in", "c.pem"]),
    ("sh", ["-c", "PGPASSWORD={sh -c 'PGPASSWORD=V pg_dump'} pg_dump -h db1 altcraft"]),
    ("rabbitmqadmin", ["-u", "admin", "-p", "{rabbitmqadmin -p V}", "list", "queues"]),
    ("redis-server", ["--port", "6666", "--requirepass", "{redis-server --requirepass V}"]),
)
AKD_LINES = (
    "AK:api                   4242     running  /opt/akd/ak/bin/api --smtp-pass {akd: --smtp-pass V}",
    "AK:procworkflow          4243     running  /opt/akd/ak/bin/procworkflow -config main.json "
    "-passphrase {akd: Go -passphrase V}",
    "AK:proctask              4244     running  --client-secret={akd: --client-secret=V} "
    "--db-password {akd: --db-password V}",
    "AK:akmtad                4245     running  -smtp.password={akd: Go -smtp.password=V} -listen :25",
    "AK:trkaction             4246     running  env TRACKING_CRYPT_KEY={akd: TRACKING_CRYPT_KEY=V}",
    "AK:webcontrol            4247     running  --mongo mongodb://ak:{akd: URL password}@db1/altcraft",
    "AK:proctrigger           4248     stopped  last error: auth failed (password: {akd: password: in a message})",
    "AK:trkpush               4249     running  --requirepass {akd: --requirepass V} "
    "--masterauth {akd: --masterauth V}",
    "AK:procsmsev             4250     running  --set password: {akd: --set 'password: V'}",
    "AK:procresume            4251     running  mysql -uak -p{akd: mysql -pV} ak",
    "AK:prochook              4252     running  redis-cli -a {akd: redis-cli -a V} ping",
    "AK:procintegras          4253     running  curl -u ak:{akd: curl -u user:V} https://x.example.net",
    "AK:procpixel             4254     running  --secret-key {akd: --secret-key V} --passphrase {akd: --passphrase V}",
    "AK:cookie_saver          4255     running  ssh -p2222 ak@db1 (tunnel)",
)


def _fill(c: Corpus, family: str, source: str, template: str) -> str:
    """Replace each {form} in `template` by a new marker of `family`."""
    out, rest = [], template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        form, _, rest = tail.partition("}")
        out += [head, c.mark(family, form, source) + "-Cl1"]
    return "".join(out) + rest


def plant(c: Corpus) -> None:
    for title, words in PLATFORM_ARGV:
        c.processes.append((title, None, [_fill(c, "cmdline_process", f"process {title}", w) for w in words]))
    for argv0, words in TOOL_ARGV:
        c.processes.append((argv0, argv0, [_fill(c, "cmdline_process", f"process {argv0}", w) for w in words]))
    c.literal("keep_cmdline", "ssh -p2222 (a port, not a password) in a process", "process sshpass", KEEP, "-p2222")
    c.akd_lines.extend(_fill(c, "cmdline_akd", "akd --processes", line) for line in AKD_LINES)
    c.literal("keep_cmdline", "ssh -p2222 in akd output", "akd --processes", KEEP, "ssh -p2222 ak@")
    # file and folder names (item 8)
    for form, name in (("e-mail in a log file name", "logs/bounces-{m}.ivanov@example.org.log"),
                       ("e-mail as a folder name", "logs/exports/{m}.petrova@mail.ru/export.log"),
                       ("%40-encoded e-mail in a file name", "logs/unsub-{m}%40example.com.log")):
        m = c.mark("names", form, name, kind=EMAIL).lower()
        c.add(name.format(m=m), "2026-11-29T10:00:00Z INFO export done")
    c.literal("names", "phone in a log file name", "logs/sms-89167201122.log", PHONE, "89167201122")
    c.add("logs/sms-89167201122.log", "2026-11-29T10:00:00Z INFO sms log")
    # --redact-pattern: the customer's own pattern, and the text it matches
    m = c.mark("redact_pattern", "--redact-pattern value (akdiag's own command line) and its match", "logs/billing.log")
    c.redact_patterns.append(f"CONTRACT-{m}-[0-9]{{4}}")
    c.add("logs/billing.log", f"2026-11-29T10:00:00Z INFO contract CONTRACT-{m}-4711 renewed")


def akd_script(lines) -> str:
    """A simulated `akd` that prints `lines` after the real process list (a quoted
    here-document: the shell expands nothing in them)."""
    body = "\n".join(lines)
    return f"cat <<'AKD_CORPUS_EOF'\n{body}\nAKD_CORPUS_EOF\n"
