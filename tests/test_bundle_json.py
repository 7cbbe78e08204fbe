"""How the bundle writes JSON: one key a line, each list item compact on its own line,
through json's C encoder; records that scrubbing leaves as they are written without a
copy; and the summary's numbered log lines written by a filter instead of a loop."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import PurePosixPath

import jinja2
import pytest
from hypothesis import given, settings, strategies as st

from collector.bundle import writer as writer_module
from collector.bundle.scrubdata import scrub_data, scrub_for_json
from collector.bundle.writer import BundleWriter, json_bytes
from collector.redact import MASK, Scrubber
from collector.report.format import numbered_lines
from collector.report.page import environment

_KEYS = st.one_of(st.text(max_size=12), st.sampled_from(["password", "phone", "version", "cmdline", "user"]))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=20), st.sampled_from(["bob@example.net", "--password", "s3cr3t",
                                                            "line one\nline two", "10.1.2.3", "<redacted>"]))
_DATA = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                                       st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_DATA)
def test_every_value_is_written_as_json_reads_it_back(data):
    written = json_bytes(data)
    assert written.endswith(b"\n")
    assert json.loads(written) == json.loads(json.dumps(data))


def test_an_object_is_one_key_a_line_and_a_list_one_compact_item_a_line():
    data = {"schema_version": 1, "counts": {"error": 2, "warning": 0},
            "events": [{"time": "2026-11-29T10:00:00Z", "message": "a, b: c", "line": 4}, [1, 2], "x", None],
            "empty": [], "none": {}}
    assert json_bytes(data).decode() == (
        '{\n'
        ' "schema_version": 1,\n'
        ' "counts": {\n'
        '  "error": 2,\n'
        '  "warning": 0\n'
        ' },\n'
        ' "events": [\n'
        '  {"time": "2026-11-29T10:00:00Z", "message": "a, b: c", "line": 4},\n'
        '  [1, 2],\n'
        '  "x",\n'
        '  null\n'
        ' ],\n'
        ' "empty": [],\n'
        ' "none": {}\n'
        '}\n')


def test_keys_and_values_json_cannot_write_as_they_are_are_written_as_json_dumps_does():
    moment = datetime(2026, 11, 29, tzinfo=timezone.utc)
    data = {1: "one", 2.5: True, None: [PurePosixPath("logs/a.log"), moment], False: ("a", "é\udcff")}
    text = json_bytes(data).decode("utf-8", "surrogateescape")  # a name's bytes that are not UTF-8 kept as they were
    assert json.loads(text) == json.loads(json.dumps(data, default=str, ensure_ascii=False))
    with pytest.raises(TypeError):  # as json.dumps: a key json has no text for
        json_bytes({(1, 2): "pair"})
    circular: list = []
    circular.append(circular)
    with pytest.raises((RecursionError, ValueError)):
        json_bytes([circular])


def test_the_public_encoder_writes_the_same_items_as_the_reused_c_encoder(monkeypatch):
    data = {"items": [{"a": [1, 2.5, None], "b": "é"}, "x", 3, [PurePosixPath("p")]]}
    fast = json_bytes(data)
    monkeypatch.setattr(writer_module, "_encode_item", writer_module._COMPACT.encode)
    assert json_bytes(data) == fast


# -- records scrubbed without a copy -------------------------------------------------------

def test_a_record_scrubbing_leaves_alone_is_written_from_itself_not_a_copy():
    record = {"events": [{"pid": 42, "name": "AK:api", "cpu": 1.5, "ok": True, "note": None}] * 3}
    assert scrub_for_json(Scrubber.for_bundle(), record, "processes.json") is record
    assert scrub_data(Scrubber.for_bundle(), record, "processes.json") is not record


@pytest.mark.parametrize("record", [
    {"db": {"password": "s3cr3t", "port": 27017}},
    {"command": ["mailer", "--smtp-pass", "Zq7Flag1"]},
    {"to": "bob@example.net", "from": "bob@example.net"},
    {"phone": 89151234567},
])
def test_a_record_scrubbing_changes_is_written_from_its_scrubbed_copy(record):
    scrubber = Scrubber.for_bundle()
    copy = scrub_data(scrubber, record, "x.json")
    again = scrub_for_json(scrubber, record, "x.json")
    assert again is not record and again == copy
    assert MASK in json.dumps(again) or "email-" in json.dumps(again) or "phone-" in json.dumps(again)


@settings(max_examples=300, deadline=None)
@given(_DATA, st.booleans())
def test_scrubbing_for_json_writes_what_the_copy_writes_and_counts_the_same(data, own):
    first, second = Scrubber.for_bundle(), Scrubber.for_bundle()
    second.pseudonymizer.__dict__.update(first.pseudonymizer.__dict__)  # the same pseudonyms
    copy = scrub_data(first, data, "x.json", own)
    direct = scrub_for_json(second, data, "x.json", own)
    assert json_bytes(direct) == json_bytes(copy)
    assert first.counts.as_records() == second.counts.as_records()


def test_the_writer_scrubs_what_it_writes_without_a_copy(tmp_path):
    writer = BundleWriter(tmp_path / "b", Scrubber.for_bundle())
    clean = {"events": [{"message": "queue depth 12 above soft limit", "line": 7}]}
    writer.write_json("timeline.json", clean)
    assert json.loads((tmp_path / "b" / "timeline.json").read_bytes()) == clean
    writer.write_json("timeline.json", {"events": [{"message": "mail to bob@example.net", "token": "Zq7"}]})
    text = (tmp_path / "b" / "timeline.json").read_text()
    assert "bob@example.net" not in text and "Zq7" not in text and json.loads(text)["events"][0]["token"] == MASK


# -- the summary's numbered lines -----------------------------------------------------------

_TEMPLATE_LOOP = (  # the summary template's loop before the filter took its place
    "{% for l in lines %}<span class=\"line{{ ' mark mark-' ~ l.kind if l.kind }}\"{% if l.anchor %} "
    "id=\"{{ l.anchor }}\"{% endif %}><span class=\"ln\">{{ l.n }}</span>{{ l.text }}\n</span>{% endfor %}")


def test_numbered_lines_are_written_as_the_templates_loop_wrote_them():
    lines = [{"n": 4800, "text": "plain line", "kind": None, "anchor": None},
             {"n": 4801, "text": "ERROR <b>&amp; \"quoted\" 'single'", "kind": "error", "anchor": "log-0-L4801"},
             {"n": 4802, "text": "", "kind": None, "anchor": None},
             {"n": 4803, "text": "panic: x\x1b[0m\r", "kind": "panic", "anchor": "log-0-L<4803>"},
             {"n": 4804, "text": "two\nlines", "kind": None, "anchor": None}]
    env = environment()
    by_loop = env.from_string(_TEMPLATE_LOOP).render(lines=lines)
    by_filter = env.from_string("{{ lines | numbered_lines }}").render(lines=lines)
    assert by_filter == by_loop
    assert str(numbered_lines(lines)) == by_loop and by_loop.count("<span class=\"line") == len(lines)
    assert "&lt;b&gt;&amp;amp;" in by_loop and "log-0-L&lt;4803&gt;" in by_loop
    assert isinstance(numbered_lines([]), jinja2.utils.markupsafe.Markup) and str(numbered_lines([])) == ""
