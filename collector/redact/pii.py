"""Subscribers' personal data (e-mails, phones, IP addresses, host names) replaced by
consistent pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import threading
from typing import Dict, Iterable, Optional, Tuple

from collector.pii_kinds import DEFAULT_PII_KINDS, PII_KINDS  # noqa: F401 (named here too)
from collector.redact.rule import Rule
from collector.redact.vocabulary import key_words
from collector.lazyre import lazy


# local part (Cyrillic too), `@` plain or percent-encoded (or quoted-printable `=40` before a
# lower-case domain, as in a MIME header's encoded words), a domain of Unicode labels or punycode
_EMAIL = (r"(?<![\w.%+\-])[\w.%+\-]{1,64}(?:@|%40|=40(?=[a-z0-9\-]+\.[a-z]))"
          r"(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,24}|xn--[a-z0-9\-]{1,59})(?![\w\-])")
_EMAIL_RE = lazy(_EMAIL)
_AT = lazy(r"@|%40|=40")
# +7 915 123-45-67, +44 (20) 7946 0958, %2B79151234567, tel:+7..., 8 (915) 123-45-67,
# 8-915-123-45-67, 89151234567, 79151234567
_PHONE = (r"(?:(?<=tel:)|(?<![\w+.:/%]))(?:(?:\+|%2[Bb])\d{1,3}[ \-]?\(?\d{2,4}\)?(?:[ \-]?\d{2,4}){2,3}"
          r"|[78][ \-]?\(?9\d{2}\)?[ \-]?\d{3}[ \-]?\d{2}[ \-]?\d{2})(?![\w:\-]|\.\d)")
_IPV4 = r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])"
_IPV6 = r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
_KEEP_IPS = ("127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::")

# a number that is the value of such a key, or is followed by a unit, is a measurement
MEASURE_WORDS = frozenset((
    "size", "sizes", "bytes", "byte", "total", "free", "used", "avail", "available", "count", "counts", "cnt",
    "duration", "ms", "msec", "millis", "us", "ns", "sec", "secs", "seconds", "id", "ids", "pid", "uid", "gid",
    "inode", "inodes", "blocks", "capacity", "limit", "len", "length", "offset", "pos", "position", "time", "ts",
    "timestamp", "epoch", "uptime", "mem", "memory", "rss", "vms", "sum", "max", "min", "avg", "mean", "rate",
    "seq", "sequence", "elapsed", "latency", "usage", "percent", "read", "write", "written", "sent", "received",
    "recv", "rx", "tx", "quota", "disk", "space", "start", "end", "created", "updated", "modified", "mtime",
    "ctime", "atime", "nanos", "micros", "hash", "crc", "checksum", "version", "build", "port", "ports", "queue",
    "depth", "messages", "objects", "docs", "keys", "storage", "index", "data", "bps", "iops", "ops",
))
_KEY_BEFORE = lazy(r"([A-Za-z_][\w.\-]{0,60})[\"']?\s*[:=]\s*[\"']?\s*$")
_WORD_BEFORE = lazy(r"([A-Za-z_]+)\s+$")
_UNIT_AFTER = lazy(r"\s*(?:bytes?|[kmgtp]i?b|b|ms|us|µs|ns|s|sec|secs|seconds?|%)\b", re.IGNORECASE)
_VERSION_BEFORE = lazy(r"(?i)(?:\bv|version|ver|release|build|rev)[\"']?\s*[:=]?\s*[\"']?v?$")

_FILE_EXTENSIONS = frozenset((
    "log", "logs", "json", "yaml", "yml", "txt", "conf", "cfg", "ini", "xml", "html", "htm", "js", "mjs", "ts",
    "py", "pyc", "go", "sh", "bash", "gz", "tgz", "bz", "xz", "zst", "tar", "zip", "pid", "sock", "so", "service",
    "socket", "timer", "target", "md", "csv", "tsv", "tmp", "bak", "old", "lock", "key", "pem", "crt", "cer",
    "cert", "csr", "db", "sql", "sqlite", "dat", "bin", "exe", "jar", "war", "class", "java", "php", "rb", "c",
    "h", "cc", "cpp", "hpp", "rs", "css", "png", "jpg", "jpeg", "gif", "svg", "ico", "pdf", "doc", "docx", "xls",
    "xlsx", "eml", "msg", "toml", "env", "properties", "rules", "repo", "list", "deb", "rpm", "whl", "egg",
    "pyz", "mod", "sum", "lua", "pl", "swp", "out", "err", "state", "tpl", "tmpl", "j", "erl", "beam", "app",
    "config", "local", "d", "err", "cnf", "swift", "kt", "scala", "vue", "jsx", "tsx", "map", "woff", "ttf",
))
# names that are code, not hosts (`os.path`, `self.name`, `time.Time`)
_CODE_WORDS = frozenset((
    "path", "name", "id", "value", "values", "type", "data", "error", "errors", "get", "set", "size", "len",
    "items", "keys", "args", "argv", "kwargs", "self", "this", "prototype", "length", "debug", "warn", "warning",
    "exception", "stdout", "stderr", "stdin", "environ", "getenv", "join", "exists", "split", "format", "now",
    "utcnow", "loads", "dumps", "load", "dump", "append", "update", "close", "open", "read", "write", "main",
    "init", "run", "start", "stop", "result", "status", "response", "request", "body", "headers", "params",
    "config", "settings", "options", "conn", "client", "server", "cursor", "message", "msg", "text",
))
_CODE_FIRST = frozenset(("os", "sys", "re", "self", "this", "ctx", "np", "pd", "math", "json", "logging", "fmt",
                         "window", "location", "navigator", "history", "event", "element", "node", "body", "table",
                         "strings", "bytes", "errors", "sync", "context", "runtime", "reflect", "java", "javax",
                         "args", "kwargs", "options", "opts", "cfg", "config", "settings", "req", "resp", "res",
                         "err", "e", "logger", "log", "console", "window", "document", "module", "exports"))
_REVERSE_DOMAIN_FIRST = frozenset(("com", "org", "net", "io", "ru", "de", "uk", "ua", "by", "kz", "me", "co"))
KNOWN_TLDS = frozenset(("com", "net", "org", "ru", "io", "info", "biz", "de", "uk", "local", "internal", "lan", "corp",
                        "cloud", "online", "site", "su", "by", "kz", "ua", "eu", "me", "co", "app", "dev", "tech",
                        "рф", "store", "shop", "pro", "xyz", "us", "fr", "it", "nl", "pl", "cz", "es", "ch", "at",
                        "se", "no", "fi", "dk", "be", "tr", "cn", "jp", "kr", "in", "br", "ca", "au", "mx", "am",
                        "ge", "uz", "kg", "tj", "az", "md", "lv", "lt", "ee", "il", "email", "mail", "club", "top",
                        "example", "travel", "agency", "media", "digital", "group", "company", "systems", "network",
                        "services", "solutions", "world", "team", "space", "website", "host", "hosting", "link"))
# public code hosts: Go module paths, never a customer's machine
_PUBLIC_HOSTS = frozenset(("github.com", "gitlab.com", "bitbucket.org", "golang.org", "gopkg.in", "go.uber.org",
                           "google.golang.org", "k8s.io", "sigs.k8s.io", "go.mongodb.org", "go.etcd.io",
                           "go.opentelemetry.io", "cloud.google.com", "honnef.co", "go.opencensus.io"))
# a dotted name, matched in linear time; its labels are checked in Python (_HOST_LABEL)
_HOST = r"(?:(?<=//)|(?<![\w.@/\\%\-]))[\w\-]+(?:\.[\w\-]+)+(?![\w(\-\[])(?!\.\w)"
_HOST_LABEL = lazy(r"[^\W_](?:[\w\-]{0,61}[^\W_])?")
_TLD = lazy(r"[^\W\d_]{2,24}|xn--[a-z0-9\-]{1,59}")
_AFTER_HOST_KEY = lazy(r"[\"']?\s*[:=](?!\d)")


_HOST_WORDS = frozenset(("host", "hostname", "hosts", "server", "servers", "fqdn", "domain", "mx", "smtp", "relay",
                         "remote", "peer", "upstream", "endpoint", "address", "addr", "node", "nodes", "to", "from",
                         "via", "connect", "connecting", "connected", "dial", "resolve", "resolving", "lookup", "ping"))
_WORD_OR_KEY_BEFORE = lazy(r"([A-Za-z_][\w\-]*)[\"']?\s*[:=]?\s*[\"'\[]?\s*$")


def _host_context(line: str, start: int, end: int, labels: list) -> bool:
    """A dotted name whose last label is no known top-level domain is a host name only
    where it stands as one: in a URL, before a port, after a word or key naming a host,
    or with three labels or more (`mx1.acme.travel`)."""
    if line[start - 2: start] == "//" or re.match(r":\d", line[end:end + 2]):
        return True
    before = _WORD_OR_KEY_BEFORE.search(line, max(0, start - 40), start)
    if before and _HOST_WORDS.intersection(key_words(before.group(1))):
        return True
    return len(labels) >= 3


def _measurement(line: str, start: int, end: int) -> bool:
    """A number in a field of sizes, counts, durations or ids, or followed by a unit."""
    before = line[max(0, start - 80):start]
    key = _KEY_BEFORE.search(before) or _WORD_BEFORE.search(before)
    if key and MEASURE_WORDS.intersection(key_words(key.group(1))):
        return True
    return _UNIT_AFTER.match(line, end) is not None


class Pseudonymizer:
    """Consistent pseudonyms: the same value gets the same token everywhere in one
    bundle (HMAC-SHA256 with a random per-bundle key that never enters the bundle, or
    the key of --pseudonym-key, which makes them the same across runs)."""

    def __init__(self, key: Optional[bytes] = None):
        self._key = key or os.urandom(32)
        self._lock = threading.Lock()
        self.mapping: Dict[str, str] = {}

    def token(self, kind: str, value: str) -> str:
        if kind in ("email", "host"):
            normal = value.lower()
            if kind == "email":
                normal = re.sub(r"(?i)%40|=40", "@", normal, count=1)
        elif kind == "ip" and ":" in value:
            normal = str(ipaddress.ip_address(value.split("%")[0]))
        else:
            normal = re.sub(r"(?i)%2b", "+", value)
            normal = re.sub(r"[^\d.]", "", normal) or value
        if kind == "phone" and len(normal) == 11 and normal.startswith("8"):
            normal = "7" + normal[1:]  # a Russian number written with its trunk prefix
        digest = hmac.new(self._key, f"{kind}:{normal}".encode("utf-8", "surrogateescape"),
                          hashlib.sha256).hexdigest()[:12]
        token = f"{kind}-{digest}"
        with self._lock:
            self.mapping.setdefault(token, value)
        return token

    def rules(self, kinds: Iterable[str]) -> Tuple[Rule, ...]:
        kinds = set(kinds)
        rules = []
        if "emails" in kinds:
            rules.append(Rule("pii_email", ("@", "%40", "=40"), None, scan=self._emails))
        if "phones" in kinds:
            rules.append(Rule("pii_phone", ("%2b",), lazy(_PHONE), self._phone,
                              prefilter_re=(lazy(rb"9\d\d(?:[ -]\d{3}[ -]\d\d|\d{7})"), lazy(rb"\+\d"),
                                            lazy(rb"\(9"))))
        if "ips" in kinds:
            rules.append(Rule("pii_ip", (), lazy(_IPV4), self._ip,
                              prefilter_re=(lazy(rb"\d\.\d{1,3}\.\d{1,3}\.\d"),)))
            rules.append(Rule("pii_ip", (), lazy(_IPV6), self._ip6,
                              prefilter_re=(lazy(rb"[0-9a-fA-F]::|::[0-9a-fA-F]|(?:[0-9a-fA-F]{1,4}:){5}"),)))
        if "hosts" in kinds:
            rules.append(Rule("pii_host", (), lazy(_HOST), self._host,
                              prefilter_re=(lazy(rb"[A-Za-z0-9]\.[A-Za-z]{2}|\.xn--|[\x80-\xff]\."),)))
        return tuple(rules)

    def _emails(self, line: str, _file_scrubber: object) -> Tuple[str, Dict[str, int]]:
        """E-mail addresses, found from their `@` (tried at every position, the pattern
        would cost a few microseconds per character of every line with an `@`)."""
        pieces, position, count = [], 0, 0
        for at in _AT.finditer(line):
            if at.start() < position:
                continue
            start = at.start()
            while start > position and at.start() - start < 64 and (line[start - 1].isalnum()
                                                                   or line[start - 1] in "._%+-"):
                start -= 1
            match = _EMAIL_RE.match(line, start)
            while match is None and start < at.start():
                start += 1  # the pattern's own start rules (no `.` or `-` before a local part)
                match = _EMAIL_RE.match(line, start)
            if match is None or match.end() <= at.start():
                continue
            pieces += [line[position: match.start()], self.token("email", match.group(0))]
            position, count = match.end(), count + 1
        if not count:
            return line, {}
        return "".join(pieces) + line[position:], {"pii_email": count}

    _NUMBER_BEFORE = lazy(r"(?:^|[:\[,])\s*$")
    _NUMBER_AFTER = lazy(r"\s*(?:[,}\]]|$)")

    def _phone(self, match: "re.Match[str]") -> str:
        """A phone written as bare digits where JSON or YAML hold a number (`"k": 89151234567`)
        becomes a quoted token: the file stays valid JSON and YAML.  A measurement stays."""
        line, start, end = match.string, match.start(), match.end()
        if match.group(0)[0] not in "+%" and _measurement(line, start, end):
            return match.group(0)
        token = self.token("phone", match.group(0))
        if (self._NUMBER_BEFORE.search(line, 0, start) and self._NUMBER_AFTER.match(line, end)
                and line[start - 1:start] != '"'):
            return f'"{token}"'
        return token

    def _ip(self, match: "re.Match[str]") -> str:
        address = match.group(0)
        if address in _KEEP_IPS or _VERSION_BEFORE.search(match.string, max(0, match.start() - 20), match.start()):
            return address
        return self.token("ip", address)

    def _ip6(self, match: "re.Match[str]") -> str:
        address = match.group(0)
        try:
            parsed = ipaddress.IPv6Address(address)
        except ValueError:
            return address  # 12:30:45, a MAC address, C++'s a::b
        if address.count(":") < 2 or parsed.is_loopback or parsed.is_unspecified:
            return address
        return self.token("ip", address)

    def _host(self, match: "re.Match[str]") -> str:
        name = match.group(0)
        labels = name.lower().split(".")
        tld, first = labels[-1], labels[0]
        if not _TLD.fullmatch(tld) or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            return name
        line, end = match.string, match.end()
        if name.lower() in _PUBLIC_HOSTS:
            return name
        if any(label != label.lower() and label != label.upper() for label in name.split(".")):
            return name  # time.Time, net.bindIp: code
        if tld not in KNOWN_TLDS:
            if tld in _FILE_EXTENSIONS or tld in _CODE_WORDS or first in _CODE_FIRST or first.isdigit():
                return name
            if first in _REVERSE_DOMAIN_FIRST and len(labels) >= 3:
                return name  # org.apache.kafka: a Java package
            if _AFTER_HOST_KEY.match(line, end):
                return name  # `security.authorization: enabled`: a dotted key
            if line.startswith("/", end) and line[match.start() - 2: match.start()] != "//":
                return name  # a Go module path
            if not _host_context(line, match.start(), end, labels):
                return name  # `table.sortable`, `body.rows`: code and style sheets name things so too
        return self.token("host", name)
