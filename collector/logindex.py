"""Reading logs/index.json's file entries: BASEDIR's own (`files`) and, since the
datastores' logs were added, each datastore root's (`roots[].files`), so that every
reader of the index sees all tails the same way."""

from __future__ import annotations

from typing import Any, List


def log_records(index: Any, limit: int) -> List[dict]:
    """At most `limit` file entries: BASEDIR's as they are, then each datastore root's
    as copies whose `path` is shown "<root name>: <path>" (and `root` names the root)."""
    if not isinstance(index, dict):
        return []
    records = [e for e in (index.get("files") if isinstance(index.get("files"), list) else [])
               if isinstance(e, dict)][:limit]
    for root in index.get("roots") if isinstance(index.get("roots"), list) else []:
        if not isinstance(root, dict) or not isinstance(root.get("files"), list):
            continue
        for entry in root["files"]:
            if len(records) >= limit:
                return records
            if isinstance(entry, dict):
                records.append(dict(entry, path=f"{root.get('name')}: {entry.get('path')}", root=root.get("name")))
    return records


def count_records(index: Any) -> int:
    """How many file entries the index holds, every root's included (nothing is copied)."""
    if not isinstance(index, dict):
        return 0
    roots = index.get("roots") if isinstance(index.get("roots"), list) else []
    return sum(len(holder["files"]) for holder in [index] + roots
               if isinstance(holder, dict) and isinstance(holder.get("files"), list))
