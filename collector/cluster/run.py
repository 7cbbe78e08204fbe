"""One cluster run: every host collected over SSH in parallel, each within its own
deadline, into one cluster archive.

Per host (a worker thread each, `--parallel` at once):
  connect   one multiplexed SSH connection (ssh.Connection)
  clock     the host's clock against the local one (round trip corrected)
  probe     python3 and its version, an installed akdiag, a private temporary folder
  copy      the single-file akdiag (and the host's catalog file) into that folder, when
            the host has no akdiag or an older one (always with --akdiag-file)
  collect   `akdiag collect` there: 7z, same options, --quiet prints the bundle's path
  fetch     `cat` of the bundle, streamed into the cluster's staging folder
  unpack    the bundle's files under hosts/<name>/, each checked against its manifest
  cleanup   the remote folder removed (a collect still running is stopped first)
A host that fails at any step is recorded with the step, the reason, the exit status and
stderr's last line; the other hosts go on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, List, Optional

from collector import TOOL_NAME, __version__, zipapp_main
from collector.bundle import archive, schema
from collector.bundle.reader import BundleError, open_bundle
from collector.bundle.writer import BundleWriteError, BundleWriter, file_records_as_dicts
from collector.catalog import Catalog
from collector.cluster import CLUSTER_MANIFEST, CLUSTER_SCHEMA_VERSION, HOSTS_DIR
from collector.cluster.hosts import HostSpec
from collector.cluster.ssh import UNTIL_EOF, Connection, RemoteError, SshSettings, classify, control_folder
from collector.context import CollectOptions, Deadline
from collector.live import iso_utc
from collector.plain import as_dict
from collector.pseudonym_key import new_key_text
from collector.redact import DEFAULT_PII_KINDS, Scrubber
from collector.run import OutputError, Progress, ToolLog, make_staging


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


# --------------------------------------------------------------------------- the single file

def version_tuple(text: Optional[str]) -> tuple:
    numbers = re.findall(r"\d+", text or "")
    return tuple(int(n) for n in numbers[:4])


def usable_installed_akdiag(remote: Dict[str, Optional[str]], file_given: bool) -> Optional[str]:
    """The host's own akdiag (its path), when it is not older than this one and no
    --akdiag-file was given (the caller's file is always the one run); else None."""
    path = remote.get("akdiag")
    if file_given or not path or not path.startswith("/"):
        return None
    found = version_tuple(remote.get("akdiag_version"))
    return path if found and found >= version_tuple(__version__) else None


def running_single_file() -> Optional[Path]:
    """The .pyz this akdiag runs from, when it runs from one (its bootstrap is the
    __main__ module, loaded from the archive; akdiag's code runs from the cache)."""
    import sys
    import zipfile

    main = sys.modules.get("__main__")
    candidates = [getattr(getattr(main, "__loader__", None), "archive", None), sys.argv[0] if sys.argv else None]
    for candidate in candidates:
        if not candidate or not os.path.isfile(candidate) or not zipfile.is_zipfile(candidate):
            continue
        try:
            with zipfile.ZipFile(candidate) as archive_file:
                if zipapp_main.MANIFEST in archive_file.namelist():
                    return Path(candidate).resolve()
        except (OSError, zipfile.BadZipFile):
            continue
    return None


def single_file_cache() -> Path:
    """Where a single file built for the hosts is kept: the first of the places the
    single file itself would unpack into (AKDIAG_CACHE_DIR, XDG_CACHE_HOME, ~/.cache)."""
    root, _final = next(zipapp_main.cache_roots())
    return Path(root)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


class SingleFile:
    """The single-file akdiag to copy to hosts: --akdiag-file, else the .pyz this akdiag
    runs from, else one built (once, on first need) into akdiag's cache folder."""

    def __init__(self, given: Optional[Path]):
        self.given = Path(given) if given else None
        self._lock = threading.Lock()
        self._path: Optional[Path] = None
        self._error: Optional[str] = None

    def cache_name(self) -> str:
        """Its name in a host's cache folder: the version and a digest of the content, so
        that a host keeps one copy per build and never runs a stale one."""
        path = self.path()
        with self._lock:
            if not getattr(self, "_name", None):
                self._name = f"akdiag-{__version__}-{file_digest(path)[:12]}.pyz"
            return self._name

    def path(self) -> Path:
        with self._lock:
            if self._path is None and self._error is None:
                try:
                    self._path = self._find()
                except Exception as exc:  # recorded for every host that needed it
                    self._error = f"{type(exc).__name__}: {exc}"
            if self._path is None:
                raise RemoteError("no_akdiag", f"no single-file akdiag to copy to the host ({self._error}); "
                                  "give one with --akdiag-file")
            return self._path

    def _find(self) -> Path:
        if self.given is not None:
            if not self.given.is_file():
                raise FileNotFoundError(f"{self.given} does not exist")
            return self.given
        own = running_single_file()
        if own is not None:
            return own
        from collector import zipapp  # the single-file build (collector/zipapp.py)

        target = single_file_cache() / f"akdiag-{__version__}.pyz"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            zipapp.build_single_file(target)
        return target


# --------------------------------------------------------------------------- one host

_PROBE = r"""umask 077
echo "hostname=$(uname -n 2>/dev/null)"
echo "arch=$(uname -m 2>/dev/null)"
p=$(command -v python3 2>/dev/null)
echo "python=$p"
if [ -n "$p" ]; then
  echo "python_version=$("$p" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
fi
c="${AKDIAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/akdiag}"
echo "cache_dir=$c"
if [ -n "$2" ] && [ -f "$c/$2" ]; then echo "cached_size=$(wc -c < "$c/$2" | tr -d ' ')"; fi
if [ "$1" = look ]; then
  a=$(command -v akdiag 2>/dev/null)
  echo "akdiag=$a"
  if [ -n "$a" ]; then echo "akdiag_version=$("$a" --version 2>/dev/null | head -n 1)"; fi
fi
d=$(mktemp -d "${TMPDIR:-/tmp}/akdiag-cluster.XXXXXX") || exit 90
mkdir "$d/out" || exit 91
echo "tmp=$d"
"""

_CLEANUP = r"""d=$1
if [ "$2" = stop ] && [ -f "$d/pid" ]; then
  pid=$(cat "$d/pid" 2>/dev/null)
  if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
    n=0
    while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$pid" 2>/dev/null
  fi
fi
rm -rf "$d"
"""


# Held open by akdiag for the host's whole run (Connection.hold): when its stdin ends, because
# akdiag is done, was killed, or the connection dropped, the host cleans up after itself.
_GUARD = UNTIL_EOF + "\n" + _CLEANUP

# The collect, with its PID in the folder while it runs (the clean-up stops it by that PID;
# the file is gone once it has ended, so that a PID used again later is never signalled).
# Its stdin goes to it through fd 3: an asynchronous command's own stdin is /dev/null.
_COLLECT = """cd {tmp} || exit 97
{cache}exec 3<&0
{runner} collect {args} 0<&3 3<&- &
echo $! > {tmp}/pid
wait $!
s=$?
rm -f {tmp}/pid
exit $s
"""


def _script(body: str, *args: str) -> str:
    """A script taking positional arguments ($1, $2...) as `sh -c` would."""
    return f"set -- {' '.join(shlex.quote(a) for a in args)}\n{body}"


def _parse_probe(text: str) -> Dict[str, str]:
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            found[key] = value.strip()
    return found


class HostFailure(Exception):
    def __init__(self, error: RemoteError, stage: str):
        super().__init__(str(error))
        self.error = error
        self.stage = stage


class HostRun:
    """Everything done for one host; its record becomes a host of cluster.json."""

    def __init__(self, index: int, spec: HostSpec, request: ClusterRequest, writer: BundleWriter,
                 control_dir: str, single_file: SingleFile, log: Callable[[str], None], folder: str,
                 destination_shown: str):
        self.spec = spec
        self.folder = folder  # hosts/<folder>: the name as cluster.json will hold it (pseudonymized or not)
        self.request = request
        self.writer = writer
        self.single_file = single_file
        self.log = log
        self.conn = Connection(spec.destination, request.ssh, os.path.join(control_dir, f"c{index}"))
        self.deadline_seconds = request.deadline_of(spec)
        self.deadline: Optional[Deadline] = None
        self.tmp: Optional[str] = None
        self.guard = None  # the held session that cleans the host up if akdiag goes away
        self.collect_finished = False
        self.mapping: Optional[dict] = None
        self.cancelled = threading.Event()
        self.record: dict = {
            "name": spec.name, "destination": destination_shown, "basedir": spec.basedir or request.basedir,
            "roles": list(spec.roles), "status": "pending", "error": None, "started_at": None, "duration": None,
            "deadline_seconds": self.deadline_seconds, "steps": [], "clock": None, "remote": {}, "akdiag": None,
            "platform_version": None, "bundle": None, "cleanup": None,
        }

    # -- steps -----------------------------------------------------------------------
    def _remaining(self, stage: str) -> float:
        if self.cancelled.is_set():
            raise HostFailure(RemoteError("cancelled", "interrupted"), stage)
        left = self.deadline.remaining()
        if left <= 0:
            raise HostFailure(self._deadline_error(stage), stage)
        return left

    def _deadline_error(self, stage: str) -> RemoteError:
        return RemoteError("timeout", f"the host's deadline of {self.deadline_seconds:g} s ran out during {stage}")

    def _step(self, stage: str, action: Callable[[float], object], fatal: bool = True):
        started = time.monotonic()
        entry = {"name": stage, "status": "ok", "duration": None, "error": None}
        self.record["steps"].append(entry)
        try:
            value = action(self._remaining(stage))
            return value
        except HostFailure as failure:
            entry["status"] = "timeout" if failure.error.kind == "timeout" else "failed"
            entry["error"] = str(failure.error)
            raise
        except RemoteError as exc:
            if exc.kind == "timeout" and self.deadline.remaining() <= 0.05:
                exc = RemoteError("timeout", f"{self._deadline_error(stage)} ({exc})", exc.exit_status,
                                  exc.stderr_tail)
            entry["status"] = "timeout" if exc.kind == "timeout" else "failed"
            entry["error"] = str(exc)
            if fatal:
                raise HostFailure(exc, stage) from exc
            self.log(f"{self.spec.name}: {stage}: {exc}")
            return None
        finally:
            entry["duration"] = round(time.monotonic() - started, 3)

    def _check(self, result, stage: str, what: str):
        if result.timed_out:
            raise RemoteError("timeout", f"{what} did not finish within the host's deadline "
                              f"of {self.deadline_seconds:g} s", stderr_tail=result.stderr_tail)
        if result.exit_status != 0:
            tail = result.stderr_tail
            kind = classify(tail) if result.exit_status == 255 else "remote_failed"
            raise RemoteError(kind, f"{what} exited with status {result.exit_status}" + (f": {tail}" if tail else ""),
                              exit_status=result.exit_status, stderr_tail=tail)
        return result

    # -- the run ---------------------------------------------------------------------
    def run(self) -> dict:
        started = time.monotonic()
        self.deadline = Deadline(self.deadline_seconds)
        self.record["started_at"] = iso_utc(time.time())
        self.log(f"{self.spec.name}: connecting to {self.spec.destination}")
        try:
            self._step("connect", lambda left: self.conn.open(min(left, self.request.ssh.connect_timeout + 20)))
            self.record["clock"] = self._step("clock", lambda left: self.conn.measure_clock(min(left, 10.0)),
                                              fatal=False)
            self._probe()
            runner = self._prepare()
            bundle_path = self._collect(runner)
            self._fetch(bundle_path)
            self.record["status"] = "ok"
            self.log(f"{self.spec.name}: done in {time.monotonic() - started:.1f} s")
        except HostFailure as failure:
            error = failure.error
            self.record["status"] = "timeout" if error.kind == "timeout" else "failed"
            self.record["error"] = {"stage": failure.stage, "kind": error.kind, "message": str(error),
                                    "exit_status": error.exit_status, "stderr_tail": error.stderr_tail}
            self.log(f"{self.spec.name}: {self.record['status']} at {failure.stage}: {error}")
        except BundleWriteError:
            self.record["status"] = "failed"
            self.record["error"] = {"stage": "fetch", "kind": "local_write", "message": "the bundle could not be "
                                    "stored locally", "exit_status": None, "stderr_tail": None}
            raise
        except Exception as exc:  # a bug: recorded for this host, the others go on
            self.record["status"] = "failed"
            self.record["error"] = {"stage": "internal", "kind": "internal", "message": f"{type(exc).__name__}: {exc}",
                                    "exit_status": None, "stderr_tail": None}
            self.log(f"{self.spec.name}: internal error: {type(exc).__name__}: {exc}")
            self.log(traceback.format_exc())
        finally:
            self._cleanup()
            self.conn.close()
            self.record["duration"] = round(time.monotonic() - started, 3)
        return self.record

    def cancel(self) -> None:
        self.cancelled.set()
        self.conn.cancel()

    def _probe(self) -> None:
        look = "look" if self.request.akdiag_file is None else "no"
        cached = ""
        if self.request.keep_remote_copy:
            try:
                cached = self.single_file.cache_name()
            except RemoteError:
                cached = ""  # no file to copy: told at the copy step, if the host needs one

        def action(left: float):
            return self._check(self.conn.run(_script(_PROBE, look, cached), min(left, 30.0)), "probe", "the probe")

        result = self._step("probe", action)
        found = _parse_probe(result.text())
        self.tmp = found.get("tmp") or None
        if not self.tmp or not self.tmp.startswith("/"):
            raise HostFailure(RemoteError("remote_failed", "the host gave no temporary folder"), "probe")
        self.record["remote"] = {k: found.get(k) or None for k in ("hostname", "arch", "python", "python_version",
                                                                  "akdiag", "akdiag_version", "cache_dir",
                                                                  "cached_size")}
        self.record["remote"]["folder"] = self.tmp
        try:
            self.guard = self.conn.hold(_script(_GUARD, self.tmp, "stop"))
        except (RemoteError, OSError) as exc:  # the explicit clean-up still runs at the end
            self.log(f"{self.spec.name}: no guard session (the host cannot clean up by itself if akdiag is "
                     f"killed): {exc}")

    def _prepare(self) -> str:
        """The command that runs akdiag on the host: an installed one that is not older
        than this one, else the single file copied into the remote folder."""
        remote = self.record["remote"]
        installed = usable_installed_akdiag(remote, self.request.akdiag_file is not None)
        if installed:
            version = ".".join(map(str, version_tuple(remote.get("akdiag_version")))) or None
            self.record["akdiag"] = {"source": "installed", "path": installed, "version": version}
            runner = shlex.quote(installed)
        else:
            python = remote.get("python")
            if not python:
                raise HostFailure(RemoteError("no_python", "python3 not found on the host's PATH (the single-file "
                                                           "akdiag needs Python 3.9 or newer)"), "probe")
            if version_tuple(remote.get("python_version"))[:2] < zipapp_main.MIN_PYTHON:
                raise HostFailure(RemoteError("no_python", f"the host's python3 is {remote.get('python_version') or '?'}"
                                                           "; the single-file akdiag needs 3.9 or newer"), "probe")
            local = self._step("copy", lambda left: self._copy_single_file(left))
            # -I: the host's PYTHONPATH and user site cannot shadow what the single file brings.
            runner = f"{shlex.quote(python)} -I {shlex.quote(local)}"
        catalog = self.spec.catalog or self.request.catalog_file
        if catalog:
            self._step("catalog", lambda left: self._send(Path(catalog), "catalog.yaml", left))
        if self.request.pseudonym_key:
            self._step("key", self._send_pseudonym_key)
        return runner

    def _send_pseudonym_key(self, left: float) -> None:
        """The cluster's pseudonym key, into the run's private folder (removed after)."""
        target = shlex.quote(f"{self.tmp}/{PSEUDONYM_KEY_FILE}")
        key = self.request.pseudonym_key + b"\n"
        result = self.conn.run(f"umask 077 && cat > {target} && wc -c < {target}", left, stdin=key)
        self._check(result, "copy", "copying the pseudonym key")
        if result.text().strip() != str(len(key)):
            raise RemoteError("transfer_failed", "the pseudonym key did not arrive whole")

    def _send(self, local: Path, name: str, left: float) -> str:
        target = f"{self.tmp}/{name}"
        size = local.stat().st_size
        with open(local, "rb") as handle:
            result = self.conn.run(f"cat > {shlex.quote(target)} && wc -c < {shlex.quote(target)}", left, stdin=handle)
        self._check(result, "copy", f"copying {local.name}")
        got = result.text().strip()
        if got != str(size):
            raise RemoteError("transfer_failed", f"{local.name}: {got or 'nothing'} bytes arrived of {size}")
        return target

    def _copy_single_file(self, left: float) -> str:
        local = self.single_file.path()
        size = local.stat().st_size
        if self.request.keep_remote_copy:
            return self._keep_single_file(local, size, left)
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", local.name) or "akdiag.pyz"
        remote = self._send(local, name, left)
        self.record["akdiag"] = {"source": "copied", "path": remote, "version": None, "file": local.name,
                                 "size": size}
        return remote

    def _keep_single_file(self, local: Path, size: int, left: float) -> str:
        """--keep-remote-copy: the file in the host's cache folder, copied only when the
        host does not have this very build (older builds there are replaced)."""
        remote = self.record["remote"]
        folder = remote.get("cache_dir") or ""
        if not folder.startswith("/"):
            raise RemoteError("remote_failed", f"the host gave no usable cache folder ({folder or 'none'})")
        name = self.single_file.cache_name()
        target = f"{folder}/{name}"
        if remote.get("cached_size") == str(size):
            self.record["akdiag"] = {"source": "cached", "path": target, "version": None, "file": local.name,
                                     "size": size}
            return target
        partial = f"{folder}/.{name}.partial"
        script = (f"umask 077 && mkdir -p {shlex.quote(folder)} && cat > {shlex.quote(partial)} && "
                  f"wc -c < {shlex.quote(partial)} && mv -f {shlex.quote(partial)} {shlex.quote(target)} && "
                  f"for f in {shlex.quote(folder)}/akdiag-*.pyz; do [ \"$f\" = {shlex.quote(target)} ] || rm -f \"$f\"; done")
        with open(local, "rb") as handle:
            result = self.conn.run(script, left, stdin=handle)
        self._check(result, "copy", f"copying {local.name}")
        got = result.text().strip()
        if got != str(size):
            raise RemoteError("transfer_failed", f"{local.name}: {got or 'nothing'} bytes arrived of {size}")
        self.record["akdiag"] = {"source": "copied", "path": target, "version": None, "file": local.name,
                                 "size": size, "kept": True}
        return target

    def _collect_args(self, remote_timeout: float) -> List[str]:
        request = self.request
        options = request.options
        args = ["--output", f"{self.tmp}/out", "--format", "7z", "--quiet", "--timeout", f"{remote_timeout:g}",
                "--log-lines", str(options.log_lines), "--log-bytes", str(options.log_bytes),
                "--log-total-bytes", str(options.log_total_bytes),
                "--datastore-timeout", f"{options.datastore_timeout:g}"]
        basedir = self.spec.basedir or request.basedir
        if basedir:
            args += ["--basedir", basedir]
        if request.label:
            args += ["--label", request.label]
        if self.spec.catalog or request.catalog_file:
            args += ["--catalog", f"{self.tmp}/catalog.yaml"]
        if not request.pii_kinds:
            args.append("--no-pseudonymize")
        else:
            extra = [k for k in request.pii_kinds if k not in DEFAULT_PII_KINDS]
            if extra:
                args += ["--pseudonymize", ",".join(extra)]
        for pattern in request.extra_redact_patterns:
            args += ["--redact-pattern", pattern]
        if request.keep_mapping:
            args.append("--keep-mapping")
        if request.pseudonym_key:
            args += ["--pseudonym-key", f"{self.tmp}/{PSEUDONYM_KEY_FILE}"]
        if request.password:
            args += ["--encrypt", "--password-file", "/dev/stdin"]
        return args

    def _collect(self, runner: str) -> str:
        def action(left: float) -> str:
            reserve = min(60.0, max(2.0, 0.1 * self.deadline_seconds))
            remote_timeout = max(MIN_REMOTE_TIMEOUT, min(self.request.timeout, left - reserve))
            args = " ".join(shlex.quote(a) for a in self._collect_args(remote_timeout))
            tmp = shlex.quote(self.tmp)
            # What the single file unpacks goes into the run's folder (removed after), or
            # with --keep-remote-copy into the host's cache folder beside the file.
            cache = "" if self.request.keep_remote_copy else f"AKDIAG_CACHE_DIR={tmp}/cache\nexport AKDIAG_CACHE_DIR\n"
            script = _COLLECT.format(tmp=tmp, cache=cache, runner=runner, args=args)
            stdin = (self.request.password + "\n").encode("utf-8") if self.request.password else None
            self.log(f"{self.spec.name}: collecting")
            result = self.conn.run(script, left, stdin=stdin)
            self._check(result, "collect", "akdiag collect")
            self.collect_finished = True
            lines = [line.strip() for line in result.text().splitlines() if line.strip()]
            path = lines[-1] if lines else ""
            if not path.startswith(f"{self.tmp}/out/") or not path.endswith(".7z") or "/../" in path:
                raise RemoteError("remote_failed", f"akdiag collect printed no bundle path ({path[:200] or 'nothing'})",
                                  stderr_tail=result.stderr_tail)
            return path

        return self._step("collect", action)

    def _fetch(self, path: str) -> None:
        name = self.spec.name
        incoming = f"{INCOMING}/{self.folder}.7z"
        quoted = shlex.quote(path)

        def fetch(left: float):
            size_result = self._check(self.conn.run(f"wc -c < {quoted}", min(left, 30.0)), "fetch", "wc")
            expected = int(size_result.text().strip() or -1)
            result, record = self.conn.stream(
                f"cat {quoted}", self._remaining("fetch"),
                lambda stream: self.writer.write_unscrubbed_stream(incoming, stream, f"host:{name}", MAX_BUNDLE_BYTES))
            self._check(result, "fetch", "cat of the bundle")
            if record.size != expected:
                raise RemoteError("transfer_failed", f"{record.size} bytes of the bundle arrived of {expected}")
            if self.request.keep_mapping:
                mapped = self.conn.run(f"cat {shlex.quote(path + '.mapping.json')}", min(self._remaining("fetch"), 30))
                if mapped.exit_status == 0:
                    try:
                        self.mapping = json.loads(mapped.stdout.decode("utf-8", "surrogateescape"))
                    except ValueError:
                        self.log(f"{name}: its pseudonym mapping could not be read")
            return record

        record = self._step("fetch", fetch)
        self.log(f"{name}: bundle fetched ({record.size} bytes)")
        try:
            self._step("unpack", lambda left: self._unpack(incoming, PurePosixPath(path).name, record))
        finally:
            self.writer.forget(incoming)

    def _unpack(self, incoming: str, archive_name: str, record) -> None:
        """The bundle's files under hosts/<name>/, each checked against the sha256 its
        manifest gives; the bundle's archive facts go into cluster.json."""
        name = self.spec.name
        prefix = f"{HOSTS_DIR}/{self.folder}"
        try:
            with open_bundle(self.writer.root / incoming, self.request.password) as reader:
                manifest = reader.manifest
                expected = {f.get("path"): f.get("sha256") for f in manifest.get("files") or [] if isinstance(f, dict)}
                mismatches, count = [], 0
                for item in sorted(reader.root.rglob("*")):
                    if item.is_symlink() or not item.is_file():
                        continue
                    rel = item.relative_to(reader.root).as_posix()
                    stored = self.writer.write_unscrubbed_bytes(f"{prefix}/{rel}", item.read_bytes(), f"host:{name}")
                    count += 1
                    want = expected.get(rel)
                    if want and stored.sha256 != want:
                        mismatches.append(rel)
                bundle_name = reader.root.name
        except BundleError as exc:
            raise RemoteError("transfer_failed", f"the bundle cannot be read: {exc}") from exc
        tool = as_dict(manifest.get("tool"))
        self.record["bundle"] = {
            "path": prefix, "name": bundle_name, "archive": archive_name, "archive_size": record.size,
            "archive_sha256": record.sha256, "files": count, "checked_against_manifest": not mismatches,
            "mismatches": mismatches[:50], "hostname": manifest.get("hostname"),
            "started_at": manifest.get("started_at"), "finished_at": manifest.get("finished_at"),
            "schema_version": manifest.get("schema_version"),
        }
        from collector.bundle.reader import BundleReader
        from collector.report import platform_version

        self.record["platform_version"] = platform_version(BundleReader(self.writer.root / prefix))
        akdiag = self.record["akdiag"] or {}
        akdiag["version"] = tool.get("version") or akdiag.get("version")
        self.record["akdiag"] = akdiag
        if mismatches:
            self.log(f"{name}: {len(mismatches)} file(s) differ from the bundle's manifest: {', '.join(mismatches[:5])}")

    def _cleanup(self) -> None:
        if not self.tmp:
            return
        started = time.monotonic()
        stop = "stop" if not self.collect_finished else "no"
        try:
            result = self.conn.run(_script(_CLEANUP, self.tmp, stop), CLEANUP_SECONDS, even_if_cancelled=True)
            ok = result.exit_status == 0 and not result.timed_out
            error = None if ok else (f"timed out after {CLEANUP_SECONDS:g} s" if result.timed_out else
                                     f"exit status {result.exit_status}: {result.stderr_tail or ''}".strip())
        except (RemoteError, OSError) as exc:
            ok, error = False, str(exc)
        self.record["cleanup"] = {"status": "ok" if ok else "failed", "folder": self.tmp,
                                  "stopped_collect": stop == "stop", "error": error,
                                  "duration": round(time.monotonic() - started, 3)}
        if self.guard is not None:
            self.conn.release(self.guard, CLEANUP_SECONDS)
            self.guard = None
        if not ok:
            self.log(f"{self.spec.name}: the remote folder {self.tmp} may be left behind: {error}")


# --------------------------------------------------------------------------- the cluster

def _manifest(request: ClusterRequest, records: List[dict], started_wall: float, started: float,
              writer: BundleWriter, ssh_version: Optional[str]) -> dict:
    import socket

    counts = {"hosts": len(records)}
    for status in ("ok", "failed", "timeout", "pending"):
        counts[status] = sum(1 for r in records if r["status"] == status)
    return {
        "cluster_schema": CLUSTER_SCHEMA_VERSION,
        "kind": "akdiag-cluster",
        "tool": {"name": TOOL_NAME, "version": __version__},
        "label": request.label or None,
        "started_at": iso_utc(started_wall),
        "finished_at": iso_utc(time.time()),
        "duration": round(time.monotonic() - started, 3),
        "command_line": request.command_line,
        "local": {"hostname": socket.gethostname(), "ssh": ssh_version},
        "options": {"format": request.fmt, "parallel": request.parallel, "timeout": request.timeout,
                    "host_timeout": request.host_timeout or request.timeout + HOST_TIMEOUT_MARGIN,
                    "connect_timeout": request.ssh.connect_timeout, "encrypted": bool(request.password),
                    "log_lines": request.options.log_lines, "log_bytes": request.options.log_bytes,
                    "log_total_bytes": request.options.log_total_bytes,
                    "catalog": str(request.catalog_file) if request.catalog_file else None},
        "counts": counts,
        "hosts": records,
        "files": [f for f in file_records_as_dicts(writer.files())
                  if f["path"] != CLUSTER_MANIFEST and not f["path"].startswith(HOSTS_DIR + "/")],
    }


def _ssh_version(settings: SshSettings) -> Optional[str]:
    from collector.bounded import run_command

    done = run_command([settings.program, "-V"], timeout=5)
    text = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
    return text.splitlines()[0][:200] if text else None


def _scrub_text(scrubber: Scrubber, text: str) -> str:
    """`text` as the writer will store it: a host's name and its folder under hosts/ stay
    the same token when names are pseudonymized."""
    return scrubber.scrub_bytes(text.encode("utf-8", "surrogateescape"), CLUSTER_MANIFEST).decode(
        "utf-8", "surrogateescape")


def _scrub_destination(scrubber: Scrubber, destination: str) -> str:
    """user@host with the host part pseudonymized like any host name (the host rule leaves
    a name after '@' alone: it takes it for an e-mail's domain)."""
    user, at, host = destination.rpartition("@")
    return f"{user}{at}{_scrub_text(scrubber, host)}" if at else _scrub_text(scrubber, destination)


def collect_cluster(request: ClusterRequest, progress: Optional[Progress] = None) -> ClusterResult:
    started = time.monotonic()
    started_wall = time.time()
    log = ToolLog(progress)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_wall))
    name = archive.bundle_name("cluster", request.label, stamp)
    staging = make_staging(request.output_dir, name)
    control = control_folder()
    runs: List[HostRun] = []
    writer: Optional[BundleWriter] = None
    try:
        # The cluster's own files hold host names, addresses and ssh's messages, no subscriber
        # data: secrets and the customer's patterns are masked, and addresses and host names
        # pseudonymized when asked (--pseudonymize ips,hosts); e-mail and phone rules would
        # only mangle `user@host` destinations.  The hosts' bundles were scrubbed by their akdiag.
        if request.pii_kinds and not request.pseudonym_key:  # one key for all hosts, drawn for this run
            request = dataclasses.replace(request, pseudonym_key=new_key_text().strip())
        scrubber = Scrubber.for_bundle(tuple(k for k in request.pii_kinds if k in ("ips", "hosts")),
                                       tuple(request.catalog.redact) + tuple(request.extra_redact_patterns),
                                       pseudonym_key=request.pseudonym_key)
        writer = BundleWriter(staging, scrubber)
        log(f"{TOOL_NAME} {__version__}: collecting {len(request.hosts)} host(s), {request.parallel} at a time")
        single = SingleFile(request.akdiag_file)
        runs = [HostRun(i, spec, request, writer, control, single, log, _scrub_text(scrubber, spec.name),
                        _scrub_destination(scrubber, spec.destination)) for i, spec in enumerate(request.hosts)]
        _run_all(runs, request.parallel)
        records = [run.record for run in runs]
        shutil.rmtree(staging / INCOMING, ignore_errors=True)
        ssh_version = _ssh_version(request.ssh)
        writer.write_json(CLUSTER_MANIFEST, _manifest(request, records, started_wall, started, writer, ssh_version))
        findings = _analyze_and_render(staging, writer, request, log)
        writer.write_text(schema.TOOL_LOG, log.text())
        writer.write_json(CLUSTER_MANIFEST, _manifest(request, records, started_wall, started, writer, ssh_version))
        if progress:
            progress(f"packing {request.fmt}" + (" (encrypted)" if request.password else ""))
        path = archive.pack(staging, request.output_dir, name, request.fmt, request.password)
        mapping_path = None
        if request.keep_mapping:
            mapping = {"cluster": scrubber.pseudonymizer.mapping if scrubber.pseudonymizer else {},
                       "hosts": {run.spec.name: run.mapping for run in runs if run.mapping}}
            mapping_path = archive.write_mapping_beside(path, mapping)
    except BundleWriteError as exc:
        raise OutputError(str(exc)) from exc
    except OSError as exc:
        raise OutputError(f"cannot write the cluster archive into {request.output_dir}: {exc.strerror or exc}") from exc
    finally:
        if writer is not None:
            writer.close()
        archive.remove_tree(staging)  # gone already when a `dir` archive was renamed into place
        shutil.rmtree(control, ignore_errors=True)
    return ClusterResult(path, archive.size_of(path), time.monotonic() - started, records, findings, mapping_path)


def _run_all(runs: List[HostRun], parallel: int) -> None:
    """Every host's run, `parallel` at once.  The main thread only waits (in short
    steps, so that Ctrl-C and SIGTERM reach it); on an interrupt every run is cancelled,
    which kills its ssh commands and cleans its host up, and the interrupt goes on."""
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="akdiag-host")
    futures = [pool.submit(run.run) for run in runs]
    try:
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=0.2)
    except BaseException:
        for run in runs:
            run.cancel()
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)
    for future in futures:
        future.result()  # a local write error (disk full) surfaces here


def _analyze_and_render(staging: Path, writer: BundleWriter, request: ClusterRequest, log) -> List[dict]:
    from collector.analyzers import write_findings
    from collector.cluster.analyze import ClusterReader, analyze_cluster
    from collector.cluster.report import render_cluster

    findings: List[dict] = []
    try:
        log("analyzing the cluster")
        analysis = analyze_cluster(ClusterReader(staging), request.catalog.thresholds)
        write_findings(analysis, writer)
        findings = analysis.findings
    except BundleWriteError:
        raise
    except Exception as exc:  # the analyzers catch their own crashes; this is the last resort
        log(f"the cluster's findings.json could not be written: {type(exc).__name__}: {exc}")
        log(traceback.format_exc())
    try:
        log("writing the cluster summary")
        writer.write_text(schema.SUMMARY_HTML, render_cluster(ClusterReader(staging)))
    except BundleWriteError:
        raise
    except Exception as exc:
        log(f"the cluster's summary.html could not be rendered: {type(exc).__name__}: {exc}")
        log(traceback.format_exc())
    return findings
