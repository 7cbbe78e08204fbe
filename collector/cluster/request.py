"""A cluster run's request (the `collect --hosts` options) and its result; the
bounds every host is held to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from collector.catalog import Catalog
from collector.cluster.hosts import HostSpec
from collector.cluster.ssh import SshSettings
from collector.context import CollectOptions
from collector.redact import DEFAULT_PII_KINDS


CLEANUP_SECONDS = 15.0  # the remote cleanup's own bound, after a host's deadline if need be
PSEUDONYM_KEY_FILE = "pseudonym.key"  # in the host's run folder, for its akdiag
HOST_TIMEOUT_MARGIN = 120.0  # default host deadline: --timeout plus this (connect, copy, fetch)
MIN_REMOTE_TIMEOUT = 5.0  # `akdiag collect --timeout` accepts no less
MAX_BUNDLE_BYTES = 4 * 1024 ** 3
INCOMING = ".incoming"


@dataclass
class ClusterRequest:
    hosts: List[HostSpec]
    catalog: Catalog  # the local catalog: thresholds of the cluster analyzers
    output_dir: Path
    catalog_file: Optional[Path] = None  # --catalog: sent to every host that has no catalog of its own
    label: str = ""
    fmt: str = "7z"  # the cluster archive's format; hosts always write 7z
    timeout: float = 300.0  # each host's `collect --timeout`
    host_timeout: Optional[float] = None  # each host's deadline; None: timeout + HOST_TIMEOUT_MARGIN
    parallel: int = 8
    options: CollectOptions = field(default_factory=CollectOptions)
    basedir: Optional[str] = None  # for hosts that name none
    command_line: str = ""
    extra_redact_patterns: tuple = ()
    pii_kinds: tuple = DEFAULT_PII_KINDS
    keep_mapping: bool = False
    password: Optional[str] = None
    akdiag_file: Optional[Path] = None  # the single file to copy; None: see SingleFile
    ssh: SshSettings = field(default_factory=SshSettings)
    keep_remote_copy: bool = False  # keep the single file (and what it unpacks) in the host's ~/.cache/akdiag
    pseudonym_key: Optional[bytes] = None  # one key for every host: one pseudonym per value cluster-wide
    case_id: str = ""  # --case-id: in the cluster archive's name and cluster.json

    def deadline_of(self, spec: HostSpec) -> float:
        if spec.timeout:
            return spec.timeout
        return self.host_timeout if self.host_timeout else self.timeout + HOST_TIMEOUT_MARGIN


@dataclass
class ClusterResult:
    path: Path
    size: int
    duration: float
    hosts: List[dict]  # cluster.json's host records
    findings: List[dict]  # cluster-wide findings, critical first
    mapping_path: Optional[Path] = None
