"""HTTPS transfers with the standard library: PUT of the file as the body (a pre-signed
object store URL) or POST of a multipart form (a ticket system's upload endpoint).

The file is streamed from disk in chunks, never read whole; TLS is verified against the
system's CA store (plus --ca-file); HTTPS_PROXY/NO_PROXY are honoured through a CONNECT
tunnel; each attempt is bounded (no progress for `timeout` seconds, or an average under
MIN_RATE, ends it).  Redirects are not followed: the body cannot be taken back."""

from __future__ import annotations

import base64
import http.client
import re
import ssl
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional
from urllib.parse import unquote, urlsplit

from collector import __version__
from collector.units import format_size
from collector.upload.progress import Progress
from collector.upload.redaction import safe_url, scrub
from collector.upload.retry import Retryable, UploadError, with_retries
from collector.upload.target import UploadSettings, UploadTarget

CHUNK = 64 * 1024
MIN_RATE = 16 * 1024  # bytes per second on average: slower than that, an attempt is given up
ANSWER_LIMIT = 4096  # bytes of a server's answer read (quoted in messages, scrubbed)


class Refused(UploadError):
    """The server said no (4xx, 3xx): trying again would not help."""


class TooLarge(Refused):
    pass


class Untrusted(UploadError):
    """The server's certificate is not trusted (or TLS failed in a way a retry cannot fix)."""


class ServerError(Retryable):
    pass


class NetworkError(Retryable):
    pass


@dataclass
class _Proxy:
    host: str
    port: int
    headers: Dict[str, str]

    @property
    def shown(self) -> str:
        return f"http://{self.host}:{self.port}"


def send_http(path: Path, target: UploadTarget, settings: UploadSettings, progress: Progress,
              say: Callable[[str], None]) -> str:
    """Send `path` to `target` with retries; the server's status line on success."""
    size = path.stat().st_size

    def attempt(_number: int) -> str:
        progress.restart()
        try:
            return _attempt(path, size, target, settings, progress)
        finally:
            progress.close()

    return with_retries(attempt, settings.retries, say)


def _attempt(path: Path, size: int, target: UploadTarget, settings: UploadSettings, progress: Progress) -> str:
    parts = urlsplit(target.url)
    shown = target.shown
    connection = _connection(parts.scheme.lower(), parts.hostname, parts.port, settings, target.url)
    boundary = uuid.uuid4().hex
    head, tail = _form_parts(target.field, path.name, boundary) if target.method == "post" else (b"", b"")
    try:
        connection.putrequest(target.method.upper(), _request_target(parts, connection), skip_accept_encoding=True)
        for name, value in getattr(connection, "proxy_headers", {}).items():
            connection.putheader(name, value)
        if parts.username:  # https://user:password@host/...: HTTP Basic authentication
            connection.putheader("Authorization", _basic(parts.username, parts.password))
        connection.putheader("User-Agent", f"akdiag/{__version__}")
        connection.putheader("Content-Length", str(len(head) + size + len(tail)))
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}"
                             if target.method == "post" else "application/octet-stream")
        connection.endheaders()
        sending_error = _send_body(connection, path, head, tail, size, settings.timeout, progress)
        try:
            response = connection.getresponse()
            answer = response.read(ANSWER_LIMIT)
        except (OSError, http.client.HTTPException):
            if sending_error is not None:
                raise sending_error from None
            raise
        return _judge(response.status, response.reason, answer, response.getheader("Content-Type") or "",
                      shown, target.url, size)
    except ssl.SSLCertVerificationError as exc:
        why = scrub(exc.verify_message or str(exc), target.url)
        raise Untrusted(f"{shown}: the server's certificate is not trusted ({why}); "
                        "if it is signed by your own CA, give that CA with --ca-file") from None
    except ssl.SSLError as exc:
        raise NetworkError(f"{shown}: TLS failed: {scrub(str(exc), target.url)}") from None
    except UploadError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        raise NetworkError(f"{shown}: {_network_reason(exc, target.url)}") from None
    finally:
        connection.close()


def _send_body(connection, path: Path, head: bytes, tail: bytes, size: int, timeout: float,
               progress: Progress) -> Optional[Exception]:
    """Streams the body; returns the error that stopped it (the server may have answered
    first, e.g. 413 before reading everything), or None."""
    deadline = time.monotonic() + timeout + size / MIN_RATE
    try:
        connection.send(head)
        with open(path, "rb") as handle:
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                connection.send(chunk)
                progress.advance(len(chunk))
                if time.monotonic() > deadline:
                    raise NetworkError(f"slower than {MIN_RATE // 1024} KiB/s on average; gave up this attempt")
        connection.send(tail)
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, ssl.SSLCertVerificationError):
            raise
        return exc
    return None


def _judge(status: int, reason: str, answer: bytes, content_type: str, shown: str, url: str, size: int) -> str:
    said = f"{status} {reason}".strip()
    if 200 <= status < 300:
        return said
    quoted = _quote_answer(answer, content_type, url)
    if status == 413:
        raise TooLarge(f"{shown}: the file is too large for the server ({format_size(size)}; it answered {said}): "
                       "make it smaller (collect --max-size, --split) or ask support for another address")
    if 500 <= status < 600:
        raise ServerError(f"{shown}: the server failed: {said}{quoted}")
    if 300 <= status < 400:
        raise Refused(f"{shown}: the server answered {said} (a redirect; akdiag does not follow redirects "
                      "with a bundle: give the final address)")
    raise Refused(f"{shown}: the server refused the file: {said}{quoted}")


def _quote_answer(answer: bytes, content_type: str, url: str) -> str:
    """A short, scrubbed excerpt of the server's answer (an object store's <Code> and
    <Message>; else its first line), or nothing."""
    text = answer.decode("utf-8", "replace")
    if "xml" in content_type or text.lstrip().startswith("<?xml"):
        code = re.search(r"<Code>([^<]{1,100})</Code>", text)
        message = re.search(r"<Message>([^<]{1,300})</Message>", text)
        text = " ".join(m.group(1) for m in (code, message) if m)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = scrub(line, url)[:300]
    return f" ({line})" if line else ""


def _network_reason(exc: BaseException, url: str) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "no answer in time (network timeout)"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return scrub(f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text, url)


def _form_parts(field: str, filename: str, boundary: str):
    name = re.sub(r'[^A-Za-z0-9._+\-]', "_", filename)
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode("ascii")
    return head, f"\r\n--{boundary}--\r\n".encode("ascii")


# --------------------------------------------------------------------------- connections

def _connection(scheme: str, host: str, port: Optional[int], settings: UploadSettings, url: str):
    proxy = proxy_for(scheme, host)
    timeout = settings.timeout
    if scheme == "https":
        context = tls_context(settings.ca_file)
        if proxy is None:
            return http.client.HTTPSConnection(host, port or 443, timeout=timeout, context=context)
        connection = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=timeout, context=context)
        connection.set_tunnel(host, port or 443, headers=proxy.headers)
        return connection
    if proxy is None:
        return http.client.HTTPConnection(host, port or 80, timeout=timeout)
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
    connection.via_proxy = True  # the request line then names the whole URL
    connection.proxy_headers = proxy.headers
    return connection


def _request_target(parts, connection) -> str:
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if getattr(connection, "via_proxy", False):
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{path}"
    return path


def tls_context(ca_file: Optional[str]) -> ssl.SSLContext:
    """The system's CA store, plus a private CA when given (both are trusted)."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UploadError(f"--ca-file {ca_file}: not a readable PEM certificate file ({exc})") from None
    return context


def proxy_for(scheme: str, host: str) -> Optional[_Proxy]:
    """The proxy the environment names for `scheme` (HTTPS_PROXY, HTTP_PROXY), unless
    NO_PROXY exempts `host`."""
    address = urllib.request.getproxies().get(scheme)
    if not address or urllib.request.proxy_bypass(host):
        return None
    if "://" not in address:
        address = "http://" + address
    try:
        parts = urlsplit(address)
        port = parts.port or 8080
    except ValueError:
        raise UploadError(f"the {scheme} proxy {safe_url(address)} is not a valid address") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise UploadError(f"the {scheme} proxy {safe_url(address)}: akdiag reaches proxies by plain http:// "
                          "(a CONNECT tunnel carries the TLS)")
    headers = {"Proxy-Authorization": _basic(parts.username, parts.password)} if parts.username else {}
    return _Proxy(parts.hostname, port, headers)


def _basic(user: str, password: Optional[str]) -> str:
    pair = f"{unquote(user)}:{unquote(password or '')}".encode("utf-8")
    return "Basic " + base64.b64encode(pair).decode("ascii")
