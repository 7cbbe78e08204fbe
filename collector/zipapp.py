"""Build akdiag into one executable file: a Python zip application that runs with a
host's own python3 (3.9 or newer), with no pip, no network and no root.

    python3 -m collector.zipapp [--output dist/akdiag.pyz] [--wheels DIR]

The file holds:

- `__main__.py`: the bootstrap (collector/zipapp_main.py);
- `_akdiag/build.json`: the version, a build id (a digest of the content) and, per
  target (`cp39-x86_64` ... `cp314-aarch64`), the wheels that make it up;
- `_akdiag/wheels/*.whl`: akdiag itself as a wheel, and every dependency's wheel,
  each stored once however many targets use it.

The dependencies are resolved by pip once per target (Python minor version and
machine), since they differ between them: py7zr 1.x needs Python 3.10, and Python
3.9 gets py7zr 1.0 with pyzstd; Python 3.14 has zstd in its standard library, so
py7zr's backports.zstd (which has no 3.14 wheel) is for the older ones only.  pip
evaluates environment markers against the interpreter that runs it, not the target,
so the builder runs pip with the target's marker environment, then re-evaluates every
Requires-Dist marker for the target and adds or drops what pip still got wrong (redis
needs async-timeout below Python 3.11.3).  Compiled wheels are manylinux2014 (glibc
2.17 and newer) for x86_64 and aarch64; abi3 wheels (psutil, pycryptodomex) are shared
by all Python versions of a machine.  PyYAML, MarkupSafe and PyMongo have pure-Python
fallbacks, so only their Python code is kept (one copy for all targets); Brotli is
left out (py7zr imports it only if present; akdiag writes Deflate).

Downloaded wheels are kept in a folder (--wheels, else one under the system's
temporary folder keyed by the dependency list), so that a second build
needs no network.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from collector import TOOL_NAME, __version__
from collector.zipapp_main import MANIFEST  # the bootstrap reads the manifest the build writes
from collector.zipapp_wheels import (_PIP_WITH_TARGET_MARKERS, FORMAT, MACHINES, OMIT, PACKAGE_ROOT, PYTHONS,
                                     BuildError, Target, WheelInfo, _pyproject_dependencies, default_wheel_dir,
                                     pip_download, read_wheel, runtime_requirements, target_closure, targets_of,
                                     wheel_cache_key)

__all__ = ["BOOTSTRAP", "MACHINES", "MANIFEST", "OMIT", "PACKAGE_ROOT", "PURE_FALLBACK", "PYTHONS", "BuildError",
           "Target", "_PIP_WITH_TARGET_MARKERS", "_pyproject_dependencies", "build_single_file",
           "default_wheel_dir", "read_build_manifest"]

WHEELS = "_akdiag/wheels/"
SHEBANG = b"#!/usr/bin/env python3\n"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# Compiled wheels whose packages work without their extension modules: only the
# Python code is kept.
PURE_FALLBACK = {
    "pyyaml": "LibYAML bindings (yaml falls back to its pure-Python loader)",
    "markupsafe": "_speedups (markupsafe falls back to _native)",
    "pymongo": "C BSON and message extensions (bson and pymongo fall back to Python)",
}
BOOTSTRAP = PACKAGE_ROOT / "zipapp_main.py"


# --------------------------------------------------------------------------- downloads

def resolve_target(wheel_dir: Path, target: Target, requirements: Sequence[str], key: str,
                   log: Callable[[str], None] = lambda message: None) -> List[WheelInfo]:
    """The wheels of one target, downloaded into wheel_dir/<tag> unless a complete
    download for the same key is already there."""
    folder = wheel_dir / target.tag
    cached = _cached_download(folder, key)
    if cached is not None:
        return cached
    log(f"downloading the wheels for {target.tag}")
    if folder.exists():
        shutil.rmtree(folder)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.tag}-", dir=wheel_dir))
    try:
        kept = _download_closure(partial, target, requirements, log)
        (partial / "resolved.json").write_text(json.dumps({"key": key, "target": target.tag, "files": kept},
                                                          indent=1))
        kept = _publish(partial, folder, key, kept)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return [read_wheel(folder / f) for f in kept]


def _cached_download(folder: Path, key: str) -> Optional[List[WheelInfo]]:
    """The wheels of a complete earlier download for the same key, else None."""
    record = folder / "resolved.json"
    if record.is_file():
        try:
            resolved = json.loads(record.read_text())
            if resolved.get("key") == key and all((folder / f).is_file() for f in resolved["files"]):
                return [read_wheel(folder / f) for f in resolved["files"]]
        except (ValueError, KeyError, OSError, zipfile.BadZipFile):
            pass
    return None


def _download_closure(partial: Path, target: Target, requirements: Sequence[str],
                      log: Callable[[str], None]) -> List[str]:
    """Downloads into `partial` until the target's closure is complete; removes the
    wheels it does not need and returns the file names of those it keeps."""
    specs = list(requirements)
    for _ in range(6):
        pip_download(partial, target, specs)
        wheels = {info.name: info for info in map(read_wheel, sorted(partial.glob("*.whl")))}
        needed, specs = target_closure(wheels, requirements, target)
        if not specs:
            break
        log(f"{target.tag}: adding what pip's markers missed: {', '.join(specs)}")
    else:
        raise BuildError(f"{target.tag}: still missing {', '.join(specs)} after several downloads")
    for name, info in wheels.items():
        if name not in needed:
            info.path.unlink()
    return sorted(info.path.name for name, info in wheels.items() if name in needed)


def _publish(partial: Path, folder: Path, key: str, kept: List[str]) -> List[str]:
    """Puts the complete download in its place; the files of another build's download
    for the same key when that one got there first."""
    try:
        os.replace(partial, folder)
    except OSError:  # another build just put its own download there: use that one
        other = json.loads((folder / "resolved.json").read_text())
        if other.get("key") != key:
            raise
        return other["files"]
    return kept


def _private_wheel_dir(path: Path) -> None:
    path.mkdir(exist_ok=True, mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise BuildError(f"{path} is not a private folder of this user: its wheels could have been planted")


def download_wheels(wheel_dir: Optional[Path] = None, requirements: Optional[Sequence[str]] = None,
                    pythons: Sequence[str] = PYTHONS, machines: Sequence[str] = MACHINES,
                    log: Callable[[str], None] = lambda message: None) -> Dict[Target, List[WheelInfo]]:
    requirements = runtime_requirements() if requirements is None else list(requirements)
    default = default_wheel_dir(requirements)
    wheel_dir = default if wheel_dir is None else Path(wheel_dir)
    if wheel_dir == default:  # under the shared temporary folder: nobody else may plant wheels there
        _private_wheel_dir(wheel_dir.parent)
        _private_wheel_dir(wheel_dir)
    else:
        wheel_dir.mkdir(parents=True, exist_ok=True)
    key = wheel_cache_key(requirements)
    targets = targets_of(pythons, machines)
    with ThreadPoolExecutor(max_workers=min(5, len(targets))) as pool:
        futures = {t: pool.submit(resolve_target, wheel_dir, t, requirements, key, log) for t in targets}
        return {t: f.result() for t, f in futures.items()}


# --------------------------------------------------------------------------- archive content

def _zip_bytes(files: Dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()


def _record(files: Dict[str, bytes], record_name: str) -> bytes:
    import base64

    lines = []
    for name in sorted(files):
        digest = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(files[name])}")
    lines.append(f"{record_name},,")
    return ("\n".join(lines) + "\n").encode()


def stripped_wheel(info: WheelInfo) -> Tuple[str, bytes, str]:
    """A compiled wheel with a pure-Python fallback, without its extension modules:
    (file name, bytes, digest of the package files outside .dist-info)."""
    files: Dict[str, bytes] = {}
    with zipfile.ZipFile(info.path) as wheel:
        for name in wheel.namelist():
            if name.endswith("/") or name.endswith(".so") or ".so." in name or name.endswith(".pyd"):
                continue
            if name.endswith(".dist-info/RECORD"):
                continue
            data = wheel.read(name)
            if name.endswith(".dist-info/WHEEL"):
                # The same for every target: the wheels differ only here and in RECORD.
                data = (b"Wheel-Version: 1.0\nGenerator: collector.zipapp (extension modules removed)\n"
                        b"Root-Is-Purelib: true\nTag: py3-none-any\n")
            files[name] = data
    dist_info = next(n.split("/")[0] for n in files if n.endswith(".dist-info/METADATA"))
    files[f"{dist_info}/RECORD"] = _record(files, f"{dist_info}/RECORD")
    code = hashlib.sha256()
    for name in sorted(files):
        if not name.startswith(dist_info + "/"):
            code.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    distribution = info.path.name.split("-")[0]
    return f"{distribution}-{info.version}-py3-none-any.whl", _zip_bytes(files), code.hexdigest()


def templates_source() -> Path:
    """The report templates: collector/report_templates when installed, the checkout's
    top-level report_templates/ otherwise (pyproject.toml maps one to the other)."""
    for candidate in (PACKAGE_ROOT / "report_templates", PACKAGE_ROOT.parent / "report_templates"):
        if (candidate / "summary.html.j2").is_file():
            return candidate
    raise BuildError("cannot find the report templates (report_templates/summary.html.j2)")


def app_wheel() -> Tuple[str, bytes]:
    """akdiag itself as a wheel: the collector package, its catalog and its report templates."""
    files: Dict[str, bytes] = {}
    for path in sorted(PACKAGE_ROOT.rglob("*")):
        relative = path.relative_to(PACKAGE_ROOT)
        if not path.is_file() or "__pycache__" in relative.parts or relative.parts[0] == "report_templates":
            continue
        if path.suffix == ".py" or relative.as_posix() == "catalog.yaml":
            files[f"collector/{relative.as_posix()}"] = path.read_bytes()
    templates = templates_source()
    for path in sorted(templates.iterdir()):
        if path.is_file() and (path.suffix in (".j2", ".css") or path.name == "__init__.py"):
            files[f"collector/report_templates/{path.name}"] = path.read_bytes()
    dist_info = f"{TOOL_NAME}-{__version__}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {TOOL_NAME}", f"Version: {__version__}",
                "Requires-Python: >=3.9"] + [f"Requires-Dist: {r}" for r in runtime_requirements()]
    files[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: collector.zipapp\nRoot-Is-Purelib: true\n" \
                                  b"Tag: py3-none-any\n"
    files[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{TOOL_NAME} = collector.cli:main\n".encode()
    files[f"{dist_info}/RECORD"] = _record(files, f"{dist_info}/RECORD")
    return f"{TOOL_NAME}-{__version__}-py3-none-any.whl", _zip_bytes(files)


def assemble(resolved: Dict[Target, List[WheelInfo]]) -> Tuple[Dict[str, bytes], dict]:
    """The archive's wheels (entry name -> bytes) and build.json (without the build id)."""
    entries: Dict[str, bytes] = {}

    def add(filename: str, data: bytes) -> str:
        entry = WHEELS + filename
        if entry in entries and entries[entry] != data:
            raise BuildError(f"two different wheels named {filename}")
        entries[entry] = data
        return entry

    app_name, app_data = app_wheel()
    manifest = {"format": FORMAT, "name": TOOL_NAME, "version": __version__, "python_min": "3.9",
                "app": add(app_name, app_data), "targets": {}}
    # The same release's wheels for different targets differ in their metadata only
    # (Metadata-Version, Generator): the first one's Python code serves them all.
    stripped: Dict[Tuple[str, str], Tuple[str, bytes, str]] = {}
    for target, wheels in resolved.items():
        record = {"python": target.python, "machine": target.machine, "wheels": [], "packages": {}, "compiled": {}}
        for info in sorted(wheels, key=lambda w: w.name):
            if info.pure:
                entry = add(info.path.name, info.path.read_bytes())
            elif info.name in PURE_FALLBACK:
                filename, data, code = stripped_wheel(info)
                first = stripped.setdefault((info.name, info.version), (filename, data, code))
                if first[2] == code:
                    filename, data = first[0], first[1]
                else:  # different code under the same version: keep both, apart
                    filename = filename.replace("-py3-none-any", f"-0{code[:8]}-py3-none-any")
                entry = add(filename, data)
            else:
                if target.machine not in info.platform:
                    raise BuildError(f"{info.path.name} is not a {target.machine} wheel")
                entry = add(info.path.name, info.path.read_bytes())
                record["compiled"][info.name] = info.abi
            record["wheels"].append(entry)
            record["packages"][info.name] = info.version
        manifest["targets"][target.tag] = record
    return entries, manifest


def write_archive(output: Path, bootstrap: bytes, entries: Dict[str, bytes], manifest: dict) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with open(partial, "wb") as handle:
            handle.write(SHEBANG)
            with zipfile.ZipFile(handle, "w") as archive:
                def put(name: str, data: bytes, compress: int) -> None:
                    info = zipfile.ZipInfo(name, ZIP_TIME)
                    info.external_attr = 0o644 << 16
                    info.compress_type = compress
                    archive.writestr(info, data)

                put("__main__.py", bootstrap, zipfile.ZIP_DEFLATED)
                put(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode(), zipfile.ZIP_DEFLATED)
                for name in sorted(entries):
                    put(name, entries[name], zipfile.ZIP_STORED)  # wheels are compressed already
        os.chmod(partial, 0o755)
        os.replace(partial, output)
    finally:
        if partial.exists():
            partial.unlink()


def build_id(bootstrap: bytes, entries: Dict[str, bytes]) -> str:
    digest = hashlib.sha256(hashlib.sha256(bootstrap).digest())
    for name in sorted(entries):
        digest.update(name.encode() + b"\0" + hashlib.sha256(entries[name]).digest())
    return digest.hexdigest()[:12]


def build_single_file(output: Path, wheel_dir: Optional[Path] = None, pythons: Sequence[str] = PYTHONS,
                      machines: Sequence[str] = MACHINES, log: Callable[[str], None] = lambda message: None) -> Path:
    """Build akdiag.pyz at `output` and return its path.

    `wheel_dir` keeps the downloaded wheels between builds (default: a folder under the
    system's temporary folder keyed by the dependency list); a build
    whose wheels are all there needs no network."""
    output = Path(output)
    requirements = runtime_requirements()
    resolved = download_wheels(wheel_dir, requirements, pythons, machines, log)
    entries, manifest = assemble(resolved)
    bootstrap = BOOTSTRAP.read_bytes()
    manifest["build"] = build_id(bootstrap, entries)
    write_archive(output, bootstrap, entries, manifest)
    return output


def read_build_manifest(path: Path) -> dict:
    """build.json of a built file: version, build id and targets."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(MANIFEST))


def main(argv: Optional[Iterable[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m collector.zipapp",
                                     description="Build akdiag into one executable file (a Python zip application).")
    parser.add_argument("--output", default="dist/akdiag.pyz", help="the file to write [default: %(default)s]")
    parser.add_argument("--wheels", help="folder that keeps the downloaded wheels between builds "
                                         "[default: one under the system's temporary folder]")
    parser.add_argument("--python", action="append", dest="pythons", metavar="X.Y",
                        help=f"a target Python version, repeatable [default: {' '.join(PYTHONS)}]")
    parser.add_argument("--machine", action="append", dest="machines", metavar="ARCH",
                        help=f"a target machine, repeatable [default: {' '.join(MACHINES)}]")
    args = parser.parse_args(list(argv) if argv is not None else None)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"akdiag build: {message}", file=sys.stderr, flush=True)

    try:
        path = build_single_file(Path(args.output), Path(args.wheels) if args.wheels else None,
                                 tuple(args.pythons or PYTHONS), tuple(args.machines or MACHINES), log)
    except BuildError as exc:
        print(f"akdiag build: error: {exc}", file=sys.stderr)
        return 1
    manifest = read_build_manifest(path)
    size = path.stat().st_size
    print(f"{path}: {size / 1024 / 1024:.1f} MiB, akdiag {manifest['version']} build {manifest['build']}, "
          f"targets {' '.join(sorted(manifest['targets']))}, {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
