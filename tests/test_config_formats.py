"""Configuration files are parsed and scrubbed as data in their own format (JSON, YAML,
INI, XML), whatever their encoding mark; a file that does not parse, or that parsing
could harm, is scrubbed line by line and the config index says so.  End to end: a
main.json with a BOM, in UTF-16, or nested 100,000 deep still gives the config and
datastores collectors' results."""

from __future__ import annotations

import configparser
import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from collector.bundle.structured import scrub_file
from collector.decoding import decode_text, TooDeep
from collector.untrusted import load_json_bounded as load_json
from collector.redact import MASK, Scrubber

from conftest import collect_bundle

SECRET = "ZqCfg5519Secret"
EMAIL = "carol.subscriber@example.org"


def _scrub(raw: bytes, name: str):
    return scrub_file(Scrubber.for_bundle(), raw, name, f"config/json_consts/{name}")


def test_json_is_parsed_scrubbed_and_written_back():
    raw = json.dumps({"db": {"password": SECRET, "port": 27017, "hosts": ["a", "b"]}, "admin": EMAIL,
                      "size_bytes": 89151234567, "SMTP": {"pass": {"nested": SECRET}}}, indent=4).encode()
    result = _scrub(raw, "custom.main.json")
    data = json.loads(result.text)
    assert result.fmt == "json" and result.error is None
    assert data["db"] == {"password": MASK, "port": 27017, "hosts": ["a", "b"]}
    assert data["SMTP"]["pass"] == MASK and data["size_bytes"] == 89151234567
    assert data["admin"].startswith("email-") and SECRET not in result.text


def test_pretty_printed_json_with_the_value_on_the_next_line():
    raw = b'{\n  "password":\n     "' + SECRET.encode() + b'",\n  "mode": "fast"\n}\n'
    result = _scrub(raw, "custom.x.json")
    assert SECRET not in result.text and json.loads(result.text) == {"password": MASK, "mode": "fast"}


def test_yaml_block_scalars_and_aliases_are_scrubbed_as_data():
    raw = (f"smtp:\n  host: mail.example.org\n  password: |\n    {SECRET}\n    second line\n"
           f"defaults: &d\n  admin: {EMAIL}\nsite:\n  <<: *d\n  token: >-\n    {SECRET}\n").encode()
    result = _scrub(raw, "custom.settings.yaml")
    data = yaml.safe_load(result.text)
    assert result.fmt == "yaml" and SECRET not in result.text and EMAIL not in result.text
    assert data["smtp"]["password"] == MASK and data["site"]["token"] == MASK
    assert data["site"]["admin"].startswith("email-")


def test_a_yaml_alias_bomb_is_not_expanded_but_scrubbed_line_by_line():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append(f"password: {SECRET}")
    result = _scrub(("\n".join(lines) + "\n").encode(), "custom.bomb.yaml")
    assert result.fmt is None and "values once its aliases are expanded" in result.error
    assert SECRET not in result.text and len(result.text) < 2000


def test_ini_keeps_sections_and_key_case():
    raw = (f"[database]\nHost = db1\nPassword = {SECRET}\nurl = mongodb://u:{SECRET}@db1/x\n\n"
           f"[mail]\nFrom = {EMAIL}\nApi_Key = {SECRET}\n").encode()
    result = _scrub(raw, "custom.app.ini")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(result.text)
    assert result.fmt == "ini" and SECRET not in result.text and EMAIL not in result.text
    assert parser["database"]["Host"] == "db1" and parser["database"]["Password"] == MASK
    assert parser["mail"]["Api_Key"] == MASK and parser["mail"]["From"].startswith("email-")


def test_xml_elements_and_attributes():
    raw = (f'<?xml version="1.0"?>\n<configuration><appSettings>'
           f'<add key="SmtpPassword" value="{SECRET}"/><add key="Mode" value="fast"/></appSettings>'
           f'<db password="{SECRET}" host="db1"><password><![CDATA[{SECRET}]]></password></db>'
           f'<admin>{EMAIL}</admin></configuration>').encode()
    result = _scrub(raw, "custom.web.config.xml")
    root = ET.fromstring(result.text.split("\n", 1)[1])
    assert result.fmt == "xml" and SECRET not in result.text and EMAIL not in result.text
    adds = root.findall("./appSettings/add")
    assert adds[0].get("value") == MASK and adds[1].get("value") == "fast"
    assert root.find("db").get("password") == MASK and root.find("db").get("host") == "db1"
    assert root.find("db/password").text == MASK


def test_xml_with_a_dtd_is_not_parsed():
    raw = f'<!DOCTYPE x [<!ENTITY e "{"a" * 10}">]>\n<x password="{SECRET}">&e;</x>\n'.encode()
    result = _scrub(raw, "custom.x.xml")
    assert result.fmt is None and "DTD" in result.error and SECRET not in result.text


def test_a_file_that_does_not_parse_falls_back_to_lines():
    raw = f'{{"password": "{SECRET}", broken\n'.encode()
    result = _scrub(raw, "custom.broken.json")
    assert result.fmt is None and result.error.startswith("not valid JSON")
    assert SECRET not in result.text


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_encoding_marks_are_decoded(encoding):
    raw = json.dumps({"password": SECRET, "name": "Привет"}).encode(encoding)
    text, _name = decode_text(raw)
    assert json.loads(text) == {"password": SECRET, "name": "Привет"}
    result = _scrub(raw, "custom.x.json")
    assert result.fmt == "json" and json.loads(result.text) == {"password": MASK, "name": "Привет"}


def test_deep_json_is_refused_not_overflowed():
    with pytest.raises(TooDeep):
        load_json("[" * 100_000 + "]" * 100_000)
    assert load_json('["[[[[", {"a": [1]}]') == ["[[[[", {"a": [1]}]
    result = _scrub(b"[" * 100_000 + b"]" * 100_000, "custom.deep.json")
    assert result.fmt is None and "nested deeper than" in result.error


def test_deep_yaml_is_refused():
    result = _scrub(b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "custom.deep.yaml")
    assert result.fmt is None and "deep" in result.error


# -- end to end ---------------------------------------------------------------------------

def _rewrite_main_json(host, encode):
    path = host.basedir / "config" / "main.json"
    path.write_bytes(encode(path.read_text()))


def _collect(host, tmp_path):
    result, reader = collect_bundle(host, tmp_path / "out", only=("config", "datastores"), datastore_timeout=0.3)
    outcomes = {o.name: o for o in result.outcomes}
    return outcomes, reader


@pytest.mark.parametrize("encode", [lambda t: b"\xef\xbb\xbf" + t.encode(), lambda t: t.encode("utf-16")],
                         ids=["utf-8-bom", "utf-16"])
def test_a_bom_or_utf16_main_json_is_read_by_config_and_datastores(host, tmp_path, encode):
    _rewrite_main_json(host, encode)
    outcomes, reader = _collect(host, tmp_path)
    assert outcomes["config"].status == "ok" and outcomes["datastores"].status in ("ok", "partial")
    index = reader.json("config/index.json")
    main = index["files"][0]
    assert main["valid_json"] is True and main["scrubbed_as"] == "data" and main["error"] is None
    config = reader.json("config/main.json")
    assert config["CONTROLDB_PASS"] == MASK and host.secret_seed not in json.dumps(config)
    assert index["secret_digests"]  # the secrets were parsed, digested, and left out
    datastores = reader.json("datastores.json")
    assert datastores["main_json"]["state"] == "ok"
    assert any(str(r["source"]).startswith("main.json") for r in datastores["endpoints"])


def test_a_main_json_nested_100000_deep_is_refused_and_the_collectors_go_on(host, tmp_path):
    (host.basedir / "config" / "main.json").write_text("[" * 100_000 + "]" * 100_000)
    outcomes, reader = _collect(host, tmp_path)
    assert outcomes["config"].status == "partial" and outcomes["datastores"].status == "partial"
    index = reader.json("config/index.json")
    assert "nested deeper than" in index["files"][0]["error"] and index["files"][0]["scrubbed_as"] == "lines"
    # kept as lines, it is no JSON file any more: every .json file of a bundle parses
    assert index["files"][0]["bundle_path"] == "config/main.json.txt" and not reader.exists("config/main.json")
    assert index["files"][1]["scrubbed_as"] == "data"  # the json_consts override still collected
    datastores = reader.json("datastores.json")
    assert datastores["main_json"]["state"] == "invalid" and "nested deeper" in datastores["main_json"]["error"]
    assert datastores["endpoints"]  # the catalog's default addresses were checked


def test_a_yaml_override_is_written_back_as_yaml(host, tmp_path):
    (host.basedir / "config" / "json_consts" / "custom.mail.yaml").write_text(
        f"smtp:\n  user: {EMAIL}\n  password:\n    {SECRET}\n")
    (host.basedir / "config" / "json_consts" / "custom.broken.yaml").write_text(f"a: [\npassword: {SECRET}\n")
    _outcomes, reader = _collect(host, tmp_path)
    broken = [f for f in reader.json("config/index.json")["files"] if f["source"].endswith("custom.broken.yaml")][0]
    assert broken["bundle_path"] == "config/json_consts/custom.broken.yaml.txt" and broken["scrubbed_as"] == "lines"
    assert "not valid YAML" in broken["error"] and SECRET not in reader.path(broken["bundle_path"]).read_text()
    entry = [f for f in reader.json("config/index.json")["files"] if f["source"].endswith("custom.mail.yaml")][0]
    assert entry["format"] == "yaml" and entry["scrubbed_as"] == "data" and entry["valid_json"] is None
    written = yaml.safe_load(reader.path(entry["bundle_path"]).read_text())
    assert written["smtp"]["password"] == MASK and written["smtp"]["user"].startswith("email-")


@pytest.mark.parametrize("raw, name", [(b'{"a": "\\ud800", "password": "ZqCfg5519Secret"}', "custom.s.json"),
                                       ('a: "\\ud800"\npassword: ZqCfg5519Secret\n'.encode(), "custom.s.yaml")])
def test_a_lone_surrogate_falls_back_to_lines(raw, name):
    result = _scrub(raw, name)
    assert result.fmt is None and result.error and SECRET not in result.text
