"""What the single-file build (collector/zipapp.py) downloads: akdiag's runtime requirements,
the targets (Python minor version and machine), a wheel's metadata, and pip's download for
one target with every marker re-evaluated for it (the closure).  Where the downloads are
kept and the archive itself are zipapp.py's."""

from __future__ import annotations

import email.parser
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

try:  # pragma: no cover - either is fine
    from packaging.requirements import Requirement
except ImportError:  # pragma: no cover
    from pip._vendor.packaging.requirements import Requirement  # type: ignore

from collector import TOOL_NAME

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
MACHINES = ("x86_64", "aarch64")
FORMAT = 1
PIP_TIMEOUT = 900
# Optional dependencies left out of the file.
OMIT = {
    "brotli": "optional in py7zr (imported only if present); akdiag writes Deflate archives",
    "brotlicffi": "the PyPy variant of brotli",
}
PACKAGE_ROOT = Path(__file__).resolve().parent


class BuildError(Exception):
    """The single file cannot be built; the message says why."""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

# --------------------------------------------------------------------------- requirements

def runtime_requirements() -> List[str]:
    """akdiag's runtime dependencies: pyproject.toml of a source checkout, else the
    installed distribution's metadata."""
    pyproject = PACKAGE_ROOT.parent / "pyproject.toml"
    if pyproject.is_file():
        return _pyproject_dependencies(pyproject.read_text(encoding="utf-8"))
    from importlib import metadata

    try:
        requires = metadata.requires(TOOL_NAME) or []
    except metadata.PackageNotFoundError as exc:
        raise BuildError("cannot find akdiag's dependencies: no pyproject.toml and akdiag is not installed") from exc
    return [r for r in requires if "extra ==" not in r.replace("'", '"')]


def _pyproject_dependencies(text: str, use_tomllib: bool = True) -> List[str]:
    try:
        if not use_tomllib:
            raise ImportError
        import tomllib  # Python 3.11+
    except ImportError:  # a plain array of strings in [project] is all there is to read
        table = re.search(r"^\[project\][ \t]*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        block = table and re.search(r"^dependencies\s*=\s*\[(.*?)\]", table.group(1), re.M | re.S)
        if not block:
            raise BuildError("pyproject.toml: no [project] dependencies")
        return re.findall(r"""["']([^"']+)["']""", re.sub(r"#[^\n]*", "", block.group(1)))
    return list(tomllib.loads(text)["project"]["dependencies"])


def targets_of(pythons: Sequence[str], machines: Sequence[str]) -> List["Target"]:
    return [Target(p, m) for p in pythons for m in machines]


def wheel_cache_key(requirements: Sequence[str]) -> str:
    text = json.dumps({"format": FORMAT, "requirements": sorted(requirements), "omit": sorted(OMIT)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_wheel_dir(requirements: Optional[Sequence[str]] = None) -> Path:
    """The download folder under the system's temporary folder, keyed by the
    dependency list: a changed dependency gets a new folder.  Each target has its own
    subfolder, so a build for fewer targets reuses the downloads of a full one."""
    requirements = runtime_requirements() if requirements is None else requirements
    return Path(tempfile.gettempdir()) / f"akdiag-wheels-{os.getuid()}" / wheel_cache_key(requirements)


# --------------------------------------------------------------------------- targets

@dataclass(frozen=True)
class Target:
    python: str      # "3.11"
    machine: str     # "x86_64"

    @property
    def tag(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.machine}"

    def pip_options(self) -> List[str]:
        nodot = self.python.replace(".", "")
        platforms = [f"manylinux2014_{self.machine}", f"manylinux_2_17_{self.machine}"]
        if self.machine == "x86_64":
            platforms += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64",
                          "manylinux1_x86_64"]
        options = ["--only-binary=:all:", "--python-version", self.python, "--implementation", "cp",
                   "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none"]
        for platform in platforms:
            options += ["--platform", platform]
        return options

    def marker_environments(self) -> List[Dict[str, str]]:
        """The environments a marker is evaluated in: the first and a late patch release
        (a requirement true for any of them is kept)."""
        base = {"implementation_name": "cpython", "os_name": "posix", "platform_machine": self.machine,
                "platform_python_implementation": "CPython", "platform_release": "", "platform_system": "Linux",
                "platform_version": "", "python_version": self.python, "sys_platform": "linux", "extra": ""}
        return [dict(base, python_full_version=f"{self.python}.{patch}",
                     implementation_version=f"{self.python}.{patch}") for patch in (0, 99)]


@dataclass
class WheelInfo:
    path: Path
    name: str            # normalized
    version: str
    abi: str
    platform: str
    requires: List[str] = field(default_factory=list)

    @property
    def pure(self) -> bool:
        return self.abi == "none" and self.platform == "any"


def read_wheel(path: Path) -> WheelInfo:
    parts = path.name[:-len(".whl")].split("-")
    if len(parts) < 5:
        raise BuildError(f"not a wheel file name: {path.name}")
    with zipfile.ZipFile(path) as wheel:
        metadata = [n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(metadata) != 1:
            raise BuildError(f"{path.name}: no single .dist-info/METADATA")
        message = email.parser.Parser().parsestr(wheel.read(metadata[0]).decode("utf-8"))
    return WheelInfo(path=path, name=normalize(message["Name"]), version=message["Version"], abi=parts[-2],
                     platform=parts[-1], requires=list(message.get_all("Requires-Dist") or []))


# --------------------------------------------------------------------------- downloads

# pip evaluates environment markers against the interpreter that runs it, whatever
# --python-version says: on Python 3.11 it would demand py7zr's `backports.zstd;
# python_version < "3.14"` for a 3.14 target too, which has no 3.14 wheel (3.14 has
# compression.zstd), and fail.  So pip runs with its markers' environment set to the
# target's (a plain `pip` still runs when its internals differ: the closure below then
# adds and drops what it got wrong, as far as pip could resolve at all).
_PIP_WITH_TARGET_MARKERS = """\
import json, runpy, sys
wanted = json.loads(sys.argv.pop(1))
try:
    from pip._vendor.packaging import markers
    if callable(getattr(markers, "default_environment", None)):
        own = markers.default_environment
        markers.default_environment = lambda: dict(own(), **wanted)
except Exception:
    pass
sys.argv[0] = "pip"
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


def pip_download(dest: Path, target: Target, specs: Sequence[str]) -> None:
    environment = dict(target.marker_environments()[0])
    command = [sys.executable, "-c", _PIP_WITH_TARGET_MARKERS, json.dumps(environment, sort_keys=True),
               "download", "--disable-pip-version-check", "--no-input", "--quiet",
               "--dest", str(dest), *target.pip_options(), *specs]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"pip download for {target.tag} took more than {PIP_TIMEOUT} s") from exc
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "is ignored: it is neither" not in line]
        raise BuildError(f"pip download for {target.tag} failed ({' '.join(specs)}):\n" + "\n".join(errors[-15:]))


def target_closure(wheels: Dict[str, WheelInfo], requirements: Sequence[str], target: Target) -> Tuple[Set[str], List[str]]:
    """The distributions the target needs (normalized names) and the requirements no
    wheel in `wheels` satisfies yet, with every marker evaluated for the target."""
    environments = target.marker_environments()
    needed: Set[str] = set()
    visited: Set[Tuple[str, str]] = set()
    missing: List[str] = []
    queue = [(Requirement(r), "") for r in requirements]
    while queue:
        requirement, extra = queue.pop()
        if requirement.marker is not None and not any(
                requirement.marker.evaluate(dict(env, extra=extra)) for env in environments):
            continue
        name = normalize(requirement.name)
        if name in OMIT:
            continue
        info = wheels.get(name)
        if info is None:
            spec = name + (f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else "")
            missing.append(spec + str(requirement.specifier))
            continue
        needed.add(name)
        for wanted in {""} | set(requirement.extras):
            if (name, wanted) in visited:
                continue
            visited.add((name, wanted))
            queue.extend((Requirement(r), wanted) for r in info.requires)
    return needed, sorted(set(missing))
