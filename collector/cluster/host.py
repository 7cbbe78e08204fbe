"""One host of a cluster run, within its own deadline (a worker thread each, `--parallel`
at once, started by collector.cluster.run).

Its steps:
  connect   one multiplexed SSH connection (ssh.Connection)
  clock     the host's clock against the local one (round trip corrected)
  probe     python3 and its version, an installed akdiag, a private temporary folder, the
            machine's identity (a host on a machine already probed under another name stops
            here, recorded as a duplicate of it: collector.cluster.machines)
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

import json
import os
import re
import shlex
import threading
import time
import traceback
from pathlib import Path, PurePosixPath
from typing import Callable, List, Optional

from collector.bundle.writer import BundleWriteError, BundleWriter
from collector.cluster.host_bundle import store_host_bundle
from collector.cluster.hosts import HostSpec
from collector.cluster.machines import MachineRegistry, SameMachine, machine_identity
from collector.cluster.remote_scripts import CLEANUP, COLLECT, GUARD, PROBE, parse_probe, script
from collector.cluster.request import (CLEANUP_SECONDS, INCOMING, MAX_BUNDLE_BYTES, MIN_REMOTE_TIMEOUT,
                                       PSEUDONYM_KEY_FILE, ClusterRequest)
from collector.cluster.single_file import MIN_PYTHON, SingleFile, usable_installed_akdiag, version_tuple
from collector.cluster.ssh import Connection, RemoteError, classify
from collector.context import Deadline
from collector.live import iso_utc
from collector.redact import DEFAULT_PII_KINDS


class HostFailure(Exception):
    def __init__(self, error: RemoteError, stage: str):
        super().__init__(str(error))
        self.error = error
        self.stage = stage


class HostRun:
    """Everything done for one host; its record becomes a host of cluster.json."""

    def __init__(self, index: int, spec: HostSpec, request: ClusterRequest, writer: BundleWriter,
                 control_dir: str, single_file: SingleFile, log: Callable[[str], None], folder: str,
                 destination_shown: str, machines: Optional[MachineRegistry] = None):
        self.spec = spec
        self.machines = machines or MachineRegistry()
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
        except SameMachine as same:
            self.record["status"] = "duplicate"
            self.record["duplicate_of"] = same.first
            self.log(f"{self.spec.name}: the same machine as {same.first}: collected once, as {same.first}")
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
            return self._check(self.conn.run(script(PROBE, look, cached), min(left, 30.0)), "probe", "the probe")

        result = self._step("probe", action)
        found = parse_probe(result.text())
        self.tmp = found.get("tmp") or None
        if not self.tmp or not self.tmp.startswith("/"):
            raise HostFailure(RemoteError("remote_failed", "the host gave no temporary folder"), "probe")
        self.record["remote"] = {k: found.get(k) or None for k in ("hostname", "arch", "python", "python_version",
                                                                  "akdiag", "akdiag_version", "cache_dir",
                                                                  "cached_size")}
        self.record["remote"]["folder"] = self.tmp
        identity = machine_identity(found)
        self.record["remote"]["machine"] = identity
        # one platform per machine and BASEDIR: two BASEDIRs of one machine (prod and stage)
        # are two platforms, both collected
        basedir = self.spec.basedir or self.request.basedir or ""
        first = self.machines.claim(identity and f"{identity} {basedir}", self.spec.name)
        if first is not None:
            raise SameMachine(first)
        try:
            self.guard = self.conn.hold(script(GUARD, self.tmp, "stop"))
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
            if version_tuple(remote.get("python_version"))[:2] < MIN_PYTHON:
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
        if options.since is not None:  # one moment for every host, whatever its clock's zone
            args += ["--since", iso_utc(options.since)]
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
            script = COLLECT.format(tmp=tmp, cache=cache, runner=runner, args=args)
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
        """The bundle's files under hosts/<name>/ (collector.cluster.host_bundle); its
        facts into the host's record."""
        stored = store_host_bundle(self.writer, incoming, self.request.password, self.folder, self.spec.name,
                                   archive_name, record)
        self.record["bundle"] = stored.record
        self.record["platform_version"] = stored.platform_version
        akdiag = self.record["akdiag"] or {}
        akdiag["version"] = stored.tool_version or akdiag.get("version")
        self.record["akdiag"] = akdiag
        mismatches = stored.mismatches
        if mismatches:
            self.log(f"{self.spec.name}: {len(mismatches)} file(s) differ from the bundle's manifest: "
                     f"{', '.join(mismatches[:5])}")

    def _cleanup(self) -> None:
        if not self.tmp:
            return
        started = time.monotonic()
        stop = "stop" if not self.collect_finished else "no"
        try:
            result = self.conn.run(script(CLEANUP, self.tmp, stop), CLEANUP_SECONDS, even_if_cancelled=True)
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
