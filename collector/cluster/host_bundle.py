"""A host's fetched bundle, stored in the cluster archive under hosts/<name>/: each file
written through the cluster's writer as it is (the host's akdiag scrubbed it) and checked
against the sha256 its manifest gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from collector.bundle.reader import BundleError, BundleReader, open_bundle
from collector.bundle.writer import BundleWriter
from collector.cluster import HOSTS_DIR
from collector.cluster.ssh import RemoteError
from collector.plain import as_dict

MAX_MISMATCHES_LISTED = 50


@dataclass
class StoredBundle:
    record: dict  # cluster.json's "bundle" of the host
    mismatches: List[str]  # every file whose sha256 differs from the manifest's
    platform_version: Optional[str]
    tool_version: Optional[str]  # the akdiag that wrote the bundle


def store_host_bundle(writer: BundleWriter, incoming: str, password: Optional[str], folder: str,
                      host_name: str, archive_name: str, archive_record) -> StoredBundle:
    """`incoming`: the fetched archive, relative to the writer's root; `archive_record`: its
    file record (size, sha256).  Raises RemoteError (transfer_failed) when the bundle
    cannot be read."""
    from collector.report import platform_version

    prefix = f"{HOSTS_DIR}/{folder}"
    try:
        with open_bundle(writer.root / incoming, password) as reader:
            manifest = reader.manifest
            expected = {f.get("path"): f.get("sha256") for f in manifest.get("files") or [] if isinstance(f, dict)}
            mismatches, count = [], 0
            for item in sorted(reader.root.rglob("*")):
                if item.is_symlink() or not item.is_file():
                    continue
                rel = item.relative_to(reader.root).as_posix()
                stored = writer.write_unscrubbed_bytes(f"{prefix}/{rel}", item.read_bytes(), f"host:{host_name}")
                count += 1
                want = expected.get(rel)
                if want and stored.sha256 != want:
                    mismatches.append(rel)
            bundle_name = reader.root.name
    except BundleError as exc:
        raise RemoteError("transfer_failed", f"the bundle cannot be read: {exc}") from exc
    record = {
        "path": prefix, "name": bundle_name, "archive": archive_name, "archive_size": archive_record.size,
        "archive_sha256": archive_record.sha256, "files": count, "checked_against_manifest": not mismatches,
        "mismatches": mismatches[:MAX_MISMATCHES_LISTED], "hostname": manifest.get("hostname"),
        "started_at": manifest.get("started_at"), "finished_at": manifest.get("finished_at"),
        "schema_version": manifest.get("schema_version"),
    }
    return StoredBundle(record, mismatches, platform_version(BundleReader(writer.root / prefix)),
                        as_dict(manifest.get("tool")).get("version"))
