"""The bounded YAML reader: libyaml's parser (when PyYAML has it) under the same Python
composer and bounds as the pure-Python parser, giving the same node trees."""

from __future__ import annotations

import pytest
import yaml

from collector import yamlfile
from collector.catalog import BUILTIN_CATALOG

LOADERS = [yamlfile._PythonLoader]
if yamlfile._LIBYAML:
    LOADERS.append(yamlfile._LibyamlLoader)

TRICKY = """\
# comment
schema: 1
plain: value with spaces
quoted: "a \\"b\\" c"
single: 'it''s'
block: |
  line one
  line two
folded: >
  folded
  text
flow: [1, 2.5, true, null, ~, "x", {k: v}]
anchor: &base {cpu_percent: 90, name: api}
alias: *base
merged:
  <<: *base
  name: other
empty:
date: 2024-01-02
octal: 0o17
"""


def tree(node):
    """A node tree as plain tuples: tags, values, styles and positions."""
    where = (node.start_mark.line, node.start_mark.column, node.end_mark.line, node.end_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, node.style, where)
    if isinstance(node, yaml.SequenceNode):
        return ("seq", node.tag, node.flow_style, where, [tree(child) for child in node.value])
    return ("map", node.tag, node.flow_style, where, [(tree(k), tree(v)) for k, v in node.value])


def test_libyaml_is_used_when_present():
    assert yamlfile._BoundedLoader is (yamlfile._LibyamlLoader if yamlfile._LIBYAML else yamlfile._PythonLoader)


@pytest.mark.skipif(not yamlfile._LIBYAML, reason="PyYAML without libyaml")
@pytest.mark.parametrize("text", [BUILTIN_CATALOG.read_text(), TRICKY], ids=["builtin-catalog", "tricky"])
def test_both_parsers_give_the_same_tree(text):
    python_tree = tree(yaml.compose(text, Loader=yamlfile._PythonLoader))
    assert python_tree == tree(yaml.compose(text, Loader=yamlfile._LibyamlLoader))
    assert yaml.safe_load(text) == yaml.load(text, Loader=yamlfile._LibyamlLoader)


def _alias_bomb() -> str:
    lines = ["a: &a [x,x,x,x,x,x,x,x,x]"]
    for i in range(8):
        prev, name = chr(97 + i), chr(98 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.__name__)
@pytest.mark.parametrize("text, message", [
    ("a: &a [1, *a]\n", "refers to a value that holds it"),
    ("x: " + "[" * 200 + "]" * 200 + "\n", "nested more than"),
    ("x: " + "{a: " * 100 + "1" + "}" * 100 + "\n", "nested more than"),
    (_alias_bomb(), "aliases are expanded"),
    ("a: [1, 2\nb: 3\n", ""),
    ("a: 1\n\tb: 2\n", ""),
    ("a: *nowhere\n", ""),
])
def test_both_parsers_refuse_hostile_and_broken_text(loader, text, message):
    with pytest.raises(yaml.YAMLError) as refused:
        yaml.compose(text, Loader=loader)
    assert message in str(refused.value)
    mark = getattr(refused.value, "problem_mark", None) or getattr(refused.value, "context_mark", None)
    if message != "aliases are expanded":
        assert mark is not None and mark.line >= 0  # the error can name its line


def test_the_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text("hosts:\n  - ok\n  - [broken\n")
    with pytest.raises(ValueError, match=r"hosts\.yaml, line \d+: not valid YAML"):
        yamlfile.compose_file(path, "hosts file", ValueError)
