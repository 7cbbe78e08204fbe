"""The configuration section of a diff: flattened keys; a secret compared by its digest."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.hostdiff.model import SECRET_CHANGED, Change
from collector.hostdiff.pseudonyms import compare_pairs, either, only_pseudonyms_differ, pseudonymized_note
from collector.plain import as_dict, as_list


def _flatten(data: Any, prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        for index, item in enumerate(data):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
    else:
        flat[prefix] = data
    return flat


def _config_files(reader: BundleReader) -> Dict[str, dict]:
    index = as_dict(reader.json(schema.CONFIG_INDEX))
    files = {}
    for entry in as_list(index.get("files")):
        path = entry.get("bundle_path")
        if path and entry.get("valid_json"):
            files[path] = _flatten(reader.json(path))
    return files


def _digests(reader: BundleReader) -> Dict[Tuple[str, str], str]:
    index = as_dict(reader.json(schema.CONFIG_INDEX))
    return {(d.get("file"), d.get("key")): d.get("digest") for d in as_list(index.get("secret_digests"))}


def compare_config(old: BundleReader, new: BundleReader, not_compared: List[str]) -> List[Change]:
    before, after = _config_files(old), _config_files(new)
    digests = (_digests(old), _digests(new))
    changes = []
    pseudonymized = 0
    for path in sorted(set(before) | set(after)):
        found, unknown = compare_pairs(
            before.get(path, {}), after.get(path, {}), _pseudonymized_pair,
            lambda keys, values: _config_change(path, keys, values, digests, not_compared))
        changes += found
        pseudonymized += unknown
    if pseudonymized:
        not_compared.append(pseudonymized_note(pseudonymized, "configuration value", "configuration values"))
    return changes


def _pseudonymized_pair(keys: tuple, values: tuple) -> bool:
    """Both bundles have the key, and only pseudonyms differ (in its name or its value):
    a secret is left to its digest."""
    from collector.redact import MASK

    (key_a, key_b), (value_a, value_b) = keys, values
    return None not in keys and MASK not in values and only_pseudonyms_differ((key_a, value_a), (key_b, value_b))


def _config_change(path: str, keys: tuple, values: tuple, digests: tuple, not_compared: List[str]) -> Optional[Change]:
    """The change of one configuration key (old and new name, None where absent), if any."""
    from collector.redact import MASK

    (key_a, key_b), (value_a, value_b) = keys, values
    key = either(keys)
    both = None not in keys
    if both and value_a == value_b != MASK:
        return None
    secret = MASK in values
    if secret and both:
        digest_a, digest_b = digests[0].get((path, key_a)), digests[1].get((path, key_b))
        if digest_a is None or digest_b is None:
            not_compared.append(f"{path} {key}: a secret without a digest in one bundle")
            return None
        if digest_a == digest_b:
            return None
        return Change("config", f"{path} {key}", key, "changed", SECRET_CHANGED, SECRET_CHANGED,
                      text=f"{path}: {key} changed (a secret: values not shown)")
    kind = "added" if key_a is None else "removed" if key_b is None else "changed"
    shown_a, shown_b = (MASK, MASK) if secret else (value_a, value_b)
    return Change("config", f"{path} {key}", key, kind, shown_a, shown_b,
                  text=f"{path}: {key} {kind}" + (f": {shown_a!r} -> {shown_b!r}" if kind == "changed" else ""))

