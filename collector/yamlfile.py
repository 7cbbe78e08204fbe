"""Reading a user's YAML file (the catalog, the cluster's hosts) as a node tree, so
that every error can name the file and the line.

The file is read with bounds set before parsing: a regular file only (a FIFO or a
device is refused at once), at most MAX_BYTES, parsed within MAX_SECONDS, nested at
most MAX_DEPTH deep, and its aliases may not expand it past MAX_NODES nodes (a few
hundred bytes of nested aliases would otherwise stand for billions of values)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Type

import yaml

from collector.untrusted import MIB, read_regular

MAX_BYTES = MIB // 4  # the built-in catalog is 8 KiB; the pure-Python parser reads ~100 KiB a second (libyaml ~10x)
MAX_SECONDS = 5.0
MAX_DEPTH = 64
MAX_NODES = 100_000  # aliases counted as often as they are used


class _Refused(yaml.YAMLError):
    def __init__(self, problem: str, mark=None):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _BoundedComposer(yaml.composer.Composer):
    """yaml's composer with a clock, a depth and an expanded-size count; the loaders below
    put it over a parser (libyaml's when present) and SafeLoader's resolver."""

    def __init__(self):
        yaml.composer.Composer.__init__(self)
        self._ends = time.monotonic() + MAX_SECONDS
        self._depth = 0
        self._nodes = 0
        self._open_anchors: list = []  # of the nodes being composed: an alias to one is a cycle

    def compose_node(self, parent, index):
        if time.monotonic() > self._ends:
            raise _Refused(f"parsing took more than {MAX_SECONDS:.0f} s; given up")
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise _Refused(f"the alias *{event.anchor} refers to a value that holds it", event.start_mark)
            node = super().compose_node(parent, index)
            self._count(_expanded_size(node), node)
            return node
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        self._open_anchors.append(anchor)
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            self._count(1, None)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.pop()

    def _count(self, nodes: int, node) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            mark = node.start_mark if node is not None else None
            raise _Refused(f"more than {MAX_NODES} values once its aliases are expanded "
                           "(an alias bomb? aliases expanded that far are refused)", mark)


class _PythonLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _BoundedComposer,
                    yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    def __init__(self, stream):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


_LIBYAML = getattr(yaml, "__with_libyaml__", False)

if _LIBYAML:
    class _LibyamlLoader(_BoundedComposer, yaml.cyaml.CParser, yaml.constructor.SafeConstructor,
                         yaml.resolver.Resolver):
        """libyaml scans and parses (in C, ~10x the pure-Python reader's speed); the events
        are composed here, in Python, so that every bound above holds alike."""

        def __init__(self, stream):
            yaml.cyaml.CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
    
        def compose_scalar_node(self, anchor):
            node = super().compose_scalar_node(anchor)
            node.style = node.style or None  # a plain scalar's style, as the pure-Python parser has it
            return node

    _BoundedLoader = _LibyamlLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _BoundedLoader = _PythonLoader


def _expanded_size(node: yaml.Node) -> int:
    """Nodes under `node` with every alias expanded, counted without expanding them (each
    distinct node once, shared ones by their count)."""
    sizes: dict = {}
    stack = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if key in sizes and not children_done:
            continue
        children = _children(current)
        if children_done:
            sizes[key] = min(MAX_NODES + 1, 1 + sum(sizes.get(id(c), MAX_NODES + 1) for c in children))
            continue
        sizes[key] = MAX_NODES + 1  # in progress (cycles are refused while composing)
        stack.append((current, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(node)]


def _children(node: yaml.Node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def where(source: str, node: yaml.Node) -> str:
    """'<file>, line N' of a node, for error messages."""
    return f"{source}, line {node.start_mark.line + 1}"


def compose_text(text: str) -> Optional[yaml.Node]:
    """YAML text's node tree (None when it holds no document) within the bounds above;
    a yaml.YAMLError (or RecursionError) when it is not valid YAML or goes past them."""
    return yaml.compose(text, Loader=_BoundedLoader)


def compose_file(path: Path, what: str, error: Type[Exception]) -> Optional[yaml.Node]:
    """The file's YAML node tree (None for an empty file).  Raises `error` with a message
    naming the file (and the line of a YAML mistake); `what` names the file's role."""
    source = str(path)
    try:
        text = read_regular(path, MAX_BYTES).decode("utf-8")
    except OSError as exc:
        raise error(f"{source}: cannot read the {what}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{source}: the {what} is not UTF-8 text ({exc})") from exc
    try:
        return compose_text(text)
    except RecursionError as exc:
        raise error(f"{source}: the {what} is nested too deeply to read") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise error(f"{source}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
