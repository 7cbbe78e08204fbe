"""The package's layers: no import circle anywhere in `collector/`, and the host layer
never reaches into the cluster layer.

Every import counts, the ones inside functions too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parent.parent / "collector"


def module_names(root: Path = PACKAGE) -> Dict[str, Path]:
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _resolve(name: str, known: Set[str]) -> str:
    """The longest known module that `name` is or lies in ("collector.x.y" -> "collector.x")."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def _absolute(module: str, is_package: bool, level: int, target: str) -> str:
    if not level:
        return target
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str, path: Path, known: Set[str]) -> Set[str]:
    """The package's modules that `module` imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(module, path.name == "__init__.py", node.level, node.module or "")
            # `from collector import interrupt` imports the module collector.interrupt;
            # `from collector import __version__` the package itself.
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                       for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, known)
            if resolved and resolved != module:
                found.add(resolved)
    return found


def import_graph() -> Dict[str, Set[str]]:
    names = module_names()
    known = set(names)
    return {module: imports_of(module, path, known) for module, path in names.items()}


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in sorted(graph.get(node, ())):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, set(component)) for component in components]


def _one_cycle(graph: Dict[str, Set[str]], members: Set[str]) -> List[str]:
    """A path a -> ... -> a inside one strongly connected component, to name in the failure."""
    start = min(members)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for neighbour in sorted(graph[node] & members):
                if neighbour == start:
                    return paths[node] + [start]
                if neighbour not in paths:
                    paths[neighbour] = paths[node] + [neighbour]
                    following.append(neighbour)
        frontier = following
    return sorted(members)


def test_no_import_cycle_in_the_package():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


# The package's layers, lowest first (README: How the code is laid out).  A module belongs
# to the first layer one of whose names it is, or lies under ("collector.report" holds
# collector/report.py, collector/report/* and collector/report_*.py).
LAYERS = (
    ("foundations", ("collector.zipapp_main", "collector.lazyre", "collector.bounded", "collector.safeopen",
                     "collector.untrusted",
                     "collector.decoding", "collector.tempfiles", "collector.trust", "collector.interrupt",
                     "collector.plain", "collector.live", "collector.yamlfile", "collector.userpattern",
                     "collector.state", "collector.cmdline", "collector.basedir", "collector.pseudonym_key",
                     "collector.pii_kinds", "collector.weaksecrets", "collector.logstamp", "collector.logtime", "collector.logindex",
                     "collector.units", "collector.texttable", "collector.sockets", "collector.proctable",
                     "collector.heap")),
    ("collection", ("collector.catalog", "collector.redact", "collector.bundle", "collector.context",
                    "collector.logwalk", "collector.logtail", "collector.logrotated", "collector.logwindow",
                    "collector.datastore_logs", "collector.kernelmsg", "collector.history", "collector.collectors",
                    "collector.datastores",
                    "collector.simulate")),
    ("judging", ("collector.analyzers", "collector.report", "collector.hostdiff", "collector.diff",
                 "collector.rerender", "collector.checkformats")),
    ("runs", ("collector.run", "collector.check", "collector.zipapp", "collector.upload",
              "collector.plan", "collector.pack")),
    ("watching", ("collector.watch",)),
    ("host command line", ("collector.console", "collector.password", "collector.cli_options",
                           "collector.commands", "collector.cli_upload", "collector.handoff_cli")),
    ("cluster", ("collector.cluster",)),
    ("command line", ("collector.cli", "collector.cli_watch", "collector.__main__")),
)


def layer_of(module: str):
    if module == "collector":  # the package's own __init__: its version and name
        return -1
    for number, (_name, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith((p + ".", p + "_")) for p in prefixes):
            return number
    return None


def test_every_module_has_a_layer():
    unplaced = sorted(module for module in import_graph() if layer_of(module) is None)
    assert not unplaced, f"modules in no layer (add them to LAYERS and the README): {unplaced}"


def test_lower_layers_never_import_higher_ones():
    """Above all: the cluster layer builds on the host layers, never the reverse; only the
    command line (collector.cli) hands a command or an archive to the cluster package."""
    reaching_up = []
    for module, targets in sorted(import_graph().items()):
        for target in sorted(targets):
            below, above = layer_of(module), layer_of(target)
            if below is not None and above is not None and above > below:
                reaching_up.append(f"{module} ({LAYERS[below][0]}) -> {target} ({LAYERS[above][0]})")
    assert not reaching_up, "imports reaching up a layer:\n" + "\n".join(reaching_up)


def test_the_walk_sees_lazy_and_relative_imports(tmp_path):
    """The checker itself: an import inside a function, a relative import and a
    `from package import module` all make an edge, and a circle through them is named."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from .. import c\n")
    (package / "c.py").write_text("import pkg.a as a\nfrom pkg import VERSION\n")
    names = module_names(package)
    known = set(names)
    graph = {module: imports_of(module, path, known) for module, path in names.items()}
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.a", "pkg"}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    (package / "c.py").write_text("from pkg import VERSION\n")
    graph["pkg.c"] = imports_of("pkg.c", package / "c.py", known)
    assert find_cycles(graph) == []


def test_the_single_file_bootstrap_imports_nothing_of_the_package():
    """The bootstrap (the single file's __main__.py) is standard library only: the cluster
    run and the builder read its facts, and it names the command line it starts as a
    console script does, the same entry point as the package's own."""
    from collector import zipapp_main

    graph = import_graph()
    assert graph["collector.zipapp_main"] == set()
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert f'akdiag = "{zipapp_main.ENTRY_POINT}"' in pyproject
    from collector.cli import main

    assert zipapp_main.entry_point() is main


def test_every_subpackage_is_shipped_in_the_wheel():
    """pyproject.toml lists the packages by hand: one left out installs a broken akdiag
    (an ImportError on the first command that needs it) while the checkout's tests pass."""
    text = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    listed = set(re.findall(r'^\s*"(collector(?:\.[a-z_]+)*)",?\s*$', text, re.M))
    found = {".".join(init.parent.relative_to(PACKAGE.parent).parts) for init in PACKAGE.rglob("__init__.py")}
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
