"""The single file's bootstrap, written into akdiag.pyz as its `__main__.py`.

It picks the set of wheels built for the running interpreter and machine
(`cp311-x86_64`, ...), unpacks that set once into a private cache folder (into a
temporary folder first, renamed when complete, so that a run never sees half a cache
and two first runs at once do no harm), puts the folder first on sys.path and runs
`collector.cli:main` from there.  akdiag itself is unpacked too: its code finds its
catalog, report templates and simulator scripts as real files, and Python caches the
compiled bytecode beside them, so a second run starts faster.

Cache: $AKDIAG_CACHE_DIR/<version>-<build>/<target> when set, else the first of
$XDG_CACHE_HOME/akdiag, ~/.cache/akdiag, $XDG_RUNTIME_DIR/akdiag, $TMPDIR (or /tmp),
/dev/shm and /var/tmp (as akdiag-<uid>), and the .pyz's own folder (.akdiag-cache-<uid>)
where the compiled dependencies really load: a file system mounted noexec is passed over
before anything is copied there, and psutil's compiled library is loaded (dlopen) from
the unpacked folder before it is used, so a host whose policy forbids code there is
found out too.  A folder that is not ours, or that others may write to, is never used;
an AKDIAG_CACHE_DIR like that is an error, one where code cannot load falls through to
the other places.

Standard library only, and syntax that Python 2.7 and 3.6 still parse (no f-strings,
no annotations), so that an old interpreter prints a clear message instead of a
SyntaxError.  Errors here exit with EXIT_RUNTIME.
"""

import os
import sys

MIN_PYTHON = (3, 9)
ENTRY_POINT = "collector.cli:main"  # as pyproject.toml's [project.scripts] and the wheel's entry_points.txt
EXIT_RUNTIME = 4
MANIFEST = "_akdiag/build.json"
COMPLETE = ".akdiag-complete"
GLIBC_MIN = (2, 17)
STALE_SECONDS = 3600
MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "x64": "x86_64",
            "aarch64": "aarch64", "arm64": "aarch64"}


class BootstrapError(Exception):
    """A reason this interpreter cannot run the single file; the message says what to do."""


def fail(message):
    sys.stderr.write("akdiag: error: " + message + "\n")
    sys.exit(EXIT_RUNTIME)


def check_python(version_info=None, executable=None):
    version_info = version_info or sys.version_info
    if tuple(version_info[:2]) < MIN_PYTHON:
        raise BootstrapError(
            "akdiag needs Python %d.%d or newer; %s is Python %d.%d. Run it with a newer python3 "
            "(e.g. python3.11 akdiag.pyz ...)." % (MIN_PYTHON + (executable or sys.executable or "this python",)
                                                  + tuple(version_info[:2])))
    name = getattr(getattr(sys, "implementation", None), "name", "cpython")
    if name != "cpython":
        raise BootstrapError("akdiag's single file needs CPython; this is %s." % name)


def machine_name(uname_machine=None, pointer_bytes=None):
    """The machine as wheels name it (x86_64, aarch64), or what this one is."""
    import struct

    raw = (uname_machine or os.uname()[4]).lower()
    machine = MACHINES.get(raw, raw)
    if (pointer_bytes or struct.calcsize("P")) < 8:
        machine = "%s (32-bit Python)" % raw
    return machine


def target_tag(version_info=None, machine=None, abiflags=None):
    """cp311-x86_64; cp313t-... for a free-threaded build, whose ABI differs."""
    version_info = version_info or sys.version_info
    abiflags = getattr(sys, "abiflags", "") if abiflags is None else abiflags
    return "cp%d%d%s-%s" % (version_info[0], version_info[1], "t" if "t" in abiflags else "",
                            machine or machine_name())


def check_libc(confstr=None):
    """The compiled wheels are manylinux2014: glibc 2.17 or newer."""
    try:
        value = confstr() if confstr else os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        value = None
    if not value or not value.startswith("glibc "):
        raise BootstrapError("akdiag's compiled dependencies (manylinux2014 wheels) need glibc %d.%d or newer; "
                             "this system's C library is not glibc (musl, e.g. Alpine?)." % GLIBC_MIN)
    try:
        found = tuple(int(p) for p in value.split()[1].split(".")[:2])
    except (IndexError, ValueError):
        return
    if found < GLIBC_MIN:
        raise BootstrapError("akdiag's compiled dependencies (manylinux2014 wheels) need glibc %d.%d or newer; "
                             "this system has %s." % (GLIBC_MIN + (value,)))


def _python_of(tag):
    """("3.13", free-threaded?) of cp313-x86_64 / cp313t-x86_64."""
    digits = tag.split("-", 1)[0][2:]
    return "%s.%s" % (digits[0], digits[1:].rstrip("t")), digits.endswith("t")


def missing_message(manifest, tag):
    """The error for an interpreter this file holds no wheels for, naming what is missing."""
    targets = manifest.get("targets", {})
    machine = tag.split("-", 1)[1]
    python, threaded = _python_of(tag)
    same_machine = [t for t in targets if t.split("-", 1)[1] == machine]
    wanted = [int(p) for p in python.split(".")]

    def distance(name):
        have = [int(p) for p in _python_of(name)[0].split(".")]
        return abs(have[1] - wanted[1]) + 100 * abs(have[0] - wanted[0]), name

    # What the nearest build holds compiled: what this interpreter would need too.
    nearest = sorted(same_machine or targets, key=distance)[:1]
    missing = set()
    for name in nearest:
        for package, abi in targets[name].get("compiled", {}).items():
            # An abi3 wheel of the machine would load on a newer CPython: not what is missing.
            if threaded or not same_machine or abi != "abi3":
                missing.add(package)
    pythons = sorted(set(_python_of(t)[0] for t in targets), key=lambda v: [int(p) for p in v.split(".")])
    machines = sorted(set(t.split("-", 1)[1] for t in targets))
    if threaded:
        advice = "free-threaded CPython is not supported: run it with the regular python%s" % python
    elif " " in machine:
        advice = "run it with a 64-bit python3"
    else:
        advice = ("run it with one of those interpreters, or build a file for this one with "
                  "python3 -m collector.zipapp --python %s --machine %s" % (python, machine))
    return ("this akdiag.pyz has no build for %sCPython %s on %s (%s): missing %s. It holds builds for "
            "CPython %s on %s: %s." % ("free-threaded " if threaded else "", python, machine, tag,
                                       ", ".join(sorted(missing)) or "its compiled dependencies",
                                       ", ".join(pythons), ", ".join(machines), advice))


def _is_private(path, uid):
    """Ours, a real folder (no symbolic link), and writable by nobody else."""
    import stat

    info = os.lstat(path)
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & 0o022


def safe_root(root, uid):
    """The real path of a cache root, created if missing, whose every folder from / down
    belongs to us or root and is closed to others or sticky (like /tmp, where others
    cannot rename our entries): nobody else can swap the code we are about to run.
    (root running with another user's HOME, as some sudo setups do, falls through to
    the next place.)"""
    import stat

    if not os.path.isdir(root):
        os.makedirs(root, 0o700)
    real = os.path.realpath(root)
    path = real
    while True:
        info = os.lstat(path)
        if (not stat.S_ISDIR(info.st_mode) or info.st_uid not in (uid, 0)
                or (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX)):
            raise OSError("%s may be changed by another user (owner or mode)" % path)
        parent = os.path.dirname(path)
        if parent == path:
            return real
        path = parent


def cache_roots(environ=None, archive=None):
    """Where the cache may go, best first: (root, whether a failure there is final).
    A final place (AKDIAG_CACHE_DIR) still gives way when code cannot load there."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("AKDIAG_CACHE_DIR")
    if explicit:
        yield os.path.abspath(explicit), True
    uid = os.geteuid()
    places = []
    xdg = environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        places.append(os.path.join(xdg, "akdiag"))
    home = environ.get("HOME") or os.path.expanduser("~")
    if home and os.path.isabs(home):
        places.append(os.path.join(home, ".cache", "akdiag"))
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        places.append(os.path.join(runtime, "akdiag"))
    # Not tempfile.gettempdir(): it raises when no temporary folder is writable.
    temporary = environ.get("TMPDIR")
    for folder in (temporary if temporary and os.path.isabs(temporary) else "/tmp", "/dev/shm", "/var/tmp"):
        places.append(os.path.join(folder, "akdiag-%d" % uid))
    if archive:
        places.append(os.path.join(os.path.dirname(os.path.abspath(archive)), ".akdiag-cache-%d" % uid))
    seen = set([os.path.abspath(explicit)]) if explicit else set()
    for place in places:
        if place not in seen:
            seen.add(place)
            yield place, False


class NativeCodeError(OSError):
    """Compiled code cannot load from this place (noexec, or a policy that forbids it)."""


def _nearest_existing(path):
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_exec_mount(path):
    """Before copying anything: a file system mounted noexec cannot run our libraries."""
    try:
        flags = os.statvfs(_nearest_existing(path)).f_flag
    except OSError:
        return
    if flags & getattr(os, "ST_NOEXEC", 8):
        raise NativeCodeError("its file system is mounted noexec: compiled code cannot load from it")


def check_native_code(site):
    """Load psutil's compiled library (the one akdiag needs first) from `site`: the real
    test, which also catches what the mount flags do not show (a security policy)."""
    import glob

    libraries = sorted(glob.glob(os.path.join(site, "psutil", "_psutil_*.so")))
    if not libraries:
        return
    try:
        import ctypes
    except ImportError:  # an interpreter built without ctypes: the mount check stands alone
        return
    for library in libraries:
        try:
            ctypes.CDLL(library)
        except OSError as exc:
            raise NativeCodeError("compiled code cannot load from it: %s" % exc)


def _private_folder(path, uid):
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
    if not _is_private(path, uid):
        raise OSError("%s is not a private folder of this user (owner, mode or a symbolic link)" % path)


def _safe_member(name):
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in name:
        raise BootstrapError("refusing the unsafe path %r in a wheel" % name)
    return parts


def extract_wheel(data, dest):
    """Install a wheel (bytes) into `dest` the simple way: its files, .data purelib and
    platlib folded in, scripts and headers left out."""
    import io
    import shutil
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        for info in wheel.infolist():
            if info.filename.endswith("/"):
                continue
            parts = _safe_member(info.filename)
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            target = os.path.join(dest, *parts)
            folder = os.path.dirname(target)
            if not os.path.isdir(folder):
                os.makedirs(folder)
            source = wheel.open(info)
            try:
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
            finally:
                source.close()


def _remove_stale(build_dir, tag, now):
    import shutil

    prefix = "." + tag + "-"
    try:
        names = os.listdir(build_dir)
    except OSError:
        return
    for name in names:
        path = os.path.join(build_dir, name)
        try:
            if name.startswith(prefix) and now - os.lstat(path).st_mtime > STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def unpack(archive, manifest, tag, build_dir):
    """The site folder of `tag` under `build_dir`, unpacked now unless a complete one is there."""
    import json
    import shutil
    import tempfile
    import time
    import zipfile

    site = os.path.join(build_dir, tag)
    if os.path.isfile(os.path.join(site, COMPLETE)):
        check_native_code(site)
        return site
    _remove_stale(build_dir, tag, time.time())
    entries = [manifest["app"]] + list(manifest["targets"][tag]["wheels"])
    temporary = tempfile.mkdtemp(prefix="." + tag + "-", dir=build_dir)
    try:
        with zipfile.ZipFile(archive) as outer:
            for entry in entries:
                extract_wheel(outer.read(entry), temporary)
        check_native_code(temporary)
        with open(os.path.join(temporary, COMPLETE), "w") as marker:
            json.dump({"build": manifest["build"], "version": manifest["version"], "target": tag,
                       "wheels": entries, "unpacked_at": time.time()}, marker)
        try:
            os.rename(temporary, site)
        except OSError:
            if not os.path.isfile(os.path.join(site, COMPLETE)):
                # Not a complete cache that another run just renamed into place: a
                # leftover of some other kind. Replace it.
                shutil.rmtree(site, ignore_errors=True)
                os.rename(temporary, site)
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
    return site


def read_manifest(archive):
    import json
    import zipfile

    with zipfile.ZipFile(archive) as outer:
        return json.loads(outer.read(MANIFEST).decode("utf-8"))


def prepare(archive, environ=None):
    """Check this interpreter, unpack the cache if needed, return the site folder."""
    check_python()
    manifest = read_manifest(archive)
    tag = target_tag()
    if tag not in manifest.get("targets", {}):
        raise BootstrapError(missing_message(manifest, tag))
    check_libc()
    uid = os.geteuid()
    build_name = "%s-%s" % (manifest["version"], manifest["build"])
    reasons = []
    for root, final in cache_roots(environ, archive):
        try:
            check_exec_mount(root)
            build_dir = os.path.join(safe_root(root, uid), build_name)
            _private_folder(build_dir, uid)
            site = unpack(archive, manifest, tag, build_dir)
        except NativeCodeError as exc:
            reasons.append("%s: %s" % (root, exc))
            continue
        except (OSError, IOError) as exc:
            reasons.append("%s: %s" % (root, _reason(exc, root)))
            if final:
                raise BootstrapError("the cache folder %s cannot be used (%s); set AKDIAG_CACHE_DIR to a "
                                     "writable folder of your own." % (root, _reason(exc, root)))
            continue
        if reasons and (os.environ if environ is None else environ).get("AKDIAG_CACHE_DIR"):
            sys.stderr.write("akdiag: note: unpacked into %s instead (%s)\n" % (root, reasons[0]))
        return site
    raise BootstrapError("no cache folder where akdiag's compiled dependencies can be unpacked and loaded. "
                         "Tried: %s. Set AKDIAG_CACHE_DIR to a writable folder of your own on a file system "
                         "mounted without noexec." % "; ".join(reasons))


def _reason(exc, place):
    """An OSError's words without Python's [Errno N] prefix; the file it names when that
    is not the place itself or a folder above it."""
    words = getattr(exc, "strerror", None)
    if not words:
        return str(exc)
    filename = getattr(exc, "filename", None)
    if not filename or (place + "/").startswith(str(filename).rstrip("/") + "/"):
        return words
    return "%s (%s)" % (words, filename)


def archive_path():
    loader = globals().get("__loader__")
    archive = getattr(loader, "archive", None)
    return archive or os.path.abspath(sys.argv[0])


def main():
    try:
        site = prepare(archive_path())
    except BootstrapError as exc:
        fail(str(exc))
    sys.path.insert(0, site)
    try:
        cli_main = entry_point()
    except ImportError as exc:
        fail("cannot load akdiag from its cache %s: %s (remove that folder to unpack it again)" % (site, exc))
    cli_main()


def entry_point(name=ENTRY_POINT):
    """The function the single file runs, named as a console script names it: this
    bootstrap stays below the package's modules, which import its facts (MANIFEST,
    MIN_PYTHON, cache_roots) and are never imported by it."""
    import importlib

    module, _colon, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


if __name__ == "__main__":
    main()
