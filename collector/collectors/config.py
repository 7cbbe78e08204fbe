"""The platform's configuration: config/main.json and the json_consts overrides
(custom.*), with every secret value replaced.  A file that parses (JSON, YAML, INI,
XML, by its name or first character) is scrubbed as data and written back in its
format; one that does not is kept line by line (the bundle writer redacts each line)
and its parse error recorded.

config/index.json: {"files": [{source, bundle_path, size, valid_json, format (json|yaml|
ini|xml|null), encoding, scrubbed_as (data|lines), error}],
"placeholder_secrets": [key names still set to the documented or a common placeholder],
"weak_secrets": [{"name": "main.json:KEY", "reason": "documented_placeholder" | "placeholder" |
"short", "length", "minimum" (short only)}] (judged in memory, collector/weaksecrets.py),
"secret_digests": [{"file", "key", "digest"}], "errors": [...]}

A secret's digest is an HMAC under a key kept in akdiag's state folder on this host
(never in a bundle): two bundles of this host tell whether a secret changed, and no
bundle lets anyone guess the secret.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, List

from collector.bundle.structured import format_of
from collector.context import Context
from collector.redact import is_secret_key
from collector.safeopen import escaped_name, list_under, read_under
from collector.state import secret_digest, try_digest_key
from collector.weaksecrets import DOCUMENTED_PLACEHOLDER, min_length_of, weakness

MAX_CONFIG_BYTES = 16 * 1024 * 1024
PLACEHOLDER_SECRET = DOCUMENTED_PLACEHOLDER
JSON_CONSTS_DIRS = ("config/json_consts", "json_consts")


def _weak_secrets(data: Any, min_length: int) -> List[dict]:
    """Secret-named keys whose value is a placeholder or too short.  Judged here, in
    memory: the bundle records the key names and the reasons, never a value."""
    found = []
    for path, value in _secret_values(data):
        weak = weakness(value, min_length)
        if weak is not None:
            found.append(dict(weak, key=path))
    return found


def _secret_values(data: Any, prefix: str = ""):
    """(dotted key path, value) of every secret-named key that holds a value."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if is_secret_key(str(key)) and value not in (None, ""):
                yield path, value
            else:
                yield from _secret_values(value, path)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _secret_values(item, f"{prefix}[{index}]")


def _copy_config(ctx: Context, source: Path, bundle_path: str, index: dict, digest_key) -> None:
    shown = escaped_name(str(source))  # a host's file name need not be UTF-8
    entry = {"source": shown, "bundle_path": None, "size": None, "valid_json": None, "error": None}
    index["files"].append(entry)
    try:
        raw, truncated = read_under(ctx.basedir, source, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        entry["error"] = f"{shown} does not exist"
        index["errors"].append(entry["error"])
        return
    except OSError as exc:
        entry["error"] = f"cannot read {shown}: {exc.strerror or exc}"
        index["errors"].append(entry["error"])
        return
    entry["size"] = len(raw)
    _write_scrubbed(ctx, source, raw, truncated, bundle_path, entry, index, digest_key)


def _write_scrubbed(ctx: Context, source: Path, raw: bytes, truncated: bool, bundle_path: str, entry: dict,
                    index: dict, digest_key) -> None:
    """The file into the bundle, parsed and scrubbed as data when it parses (JSON, YAML,
    INI, XML; UTF-8 with or without BOM, UTF-16, UTF-32), else line by line."""
    record, result = ctx.writer.write_structured(bundle_path, raw, source.name, parse=not truncated)
    entry["bundle_path"] = record.path
    entry.update(format=result.fmt, encoding=result.encoding, scrubbed_as="data" if result.fmt else "lines")
    json_named = result.tried == "json" or (truncated and format_of(source.name) == "json")
    entry["valid_json"] = (result.fmt == "json") if json_named else None
    problem = (f"larger than {MAX_CONFIG_BYTES} bytes; only the start was kept" if truncated else result.error)
    if problem:
        entry["error"] = f"{entry['source']} is {problem}" + ("; scrubbed line by line" if result.error else "")
        index["errors"].append(entry["error"])
    data = result.data
    if data is None:
        return
    for weak in _weak_secrets(data, min_length_of(ctx.catalog.thresholds)):
        name = f"{escaped_name(source.name)}:{weak.pop('key')}"
        index["weak_secrets"].append(dict(weak, name=name))
        if weak["reason"] != "short":
            index["placeholder_secrets"].append(name)
    if digest_key is not None:
        index["secret_digests"].extend({"file": record.path, "key": key, "digest": secret_digest(digest_key, value)}
                                       for key, value in _secret_values(data))


def collect(ctx: Context) -> dict:
    index: dict = {"files": [], "placeholder_secrets": [], "weak_secrets": [], "secret_digests": [], "errors": []}
    digest_key, problem = try_digest_key(ctx.basedir)
    if problem:
        index["secret_digests_note"] = problem
    _copy_config(ctx, ctx.basedir / "config" / "main.json", "config/main.json", index, digest_key)
    for folder in JSON_CONSTS_DIRS:
        try:
            names = sorted(fnmatch.filter(list_under(ctx.basedir, folder), "custom.*"))[:200]
        except (FileNotFoundError, NotADirectoryError):  # one of the two places is usual
            continue
        except OSError as exc:
            index["errors"].append(f"cannot list {ctx.basedir / folder}: {exc.strerror or exc}")
            continue
        for name in names:
            ctx.deadline.check()
            _copy_config(ctx, ctx.basedir / folder / name, f"config/json_consts/{escaped_name(name)}", index,
                         digest_key)
    return index
