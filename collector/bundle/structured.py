"""Configuration files scrubbed as what they are: JSON, YAML, INI and XML files are
parsed, every value scrubbed as data (collector/bundle/scrubdata.py) and written back
in their own format, so no text rule can break a file's quoting or miss a value that
sits on the next line.  A file that does not parse (or that parsing could harm:
an XML DTD, a YAML alias bomb, a document nested too deep) is scrubbed line by line
instead, and the caller is told why.

Written back means re-serialized: comments, key order within INI defaults and XML
namespace prefixes may change; the data does not.
"""

from __future__ import annotations

import configparser
import io
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import yaml

from collector.bundle.scrubdata import SECRET_KEY_RULE, DataScrubber, scrub_string
from collector.decoding import MAX_DEPTH, TooDeep, decode_text
from collector.untrusted import load_json_bounded
from collector.yamlfile import compose_text
from collector.redact import MASK, Scrubber, is_secret_key

FORMATS = ("json", "yaml", "ini", "xml")
_EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".ini": "ini", ".cfg": "ini", ".conf": "ini",
               ".xml": "xml", ".config": "xml"}
_XML_DANGER = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class NotParsed(ValueError):
    """The file is not (safely) parseable in its format; the message says why."""


@dataclass
class Scrubbed:
    text: str  # what goes into the bundle (UTF-8 once encoded)
    fmt: Optional[str]  # the format it was parsed as; None: scrubbed line by line
    encoding: str  # how the host file was encoded
    error: Optional[str] = None  # why it was not parsed (None when it was, or none was tried)
    data: Any = None  # the parsed file before scrubbing (JSON, YAML, INI): kept in memory, never written
    tried: Optional[str] = None  # the format it was tried as (parsed or not)


def format_of(name: str) -> Optional[str]:
    lowered = name.lower()
    for extension, fmt in _EXTENSIONS.items():
        if lowered.endswith(extension):
            return fmt
    return None


def guess_format(name: str, text: str) -> Optional[str]:
    """The format a file's name gives, else what its first character suggests (JSON
    for `{`/`[`, XML for `<`); None: text, scrubbed line by line."""
    fmt = format_of(name)
    if fmt:
        return fmt
    start = text.lstrip()[:1]
    return "json" if start in ("{", "[") else "xml" if start == "<" else None


def scrub_file(scrubber: Scrubber, raw: bytes, name: str, path: str, parse: bool = True) -> Scrubbed:
    """`raw` (a host file called `name`) scrubbed for the bundle file `path`; with
    `parse` false (e.g. only the file's start was read) line by line."""
    text, encoding = decode_text(raw)
    fmt = guess_format(name, text) if parse else None
    if fmt is None:
        return Scrubbed(scrubber.scrub_text(text, path), None, encoding)
    try:
        written, data = _PARSERS[fmt](scrubber, text, path)
        return Scrubbed(written, fmt, encoding, data=data, tried=fmt)
    except NotParsed as exc:
        return Scrubbed(scrubber.scrub_text(text, path), None, encoding, f"not valid {fmt.upper()}: {exc}", tried=fmt)
    except UnicodeError:  # an escaped lone surrogate (JSON "\ud800") cannot be written as UTF-8
        return Scrubbed(scrubber.scrub_text(text, path), None, encoding,
                        f"not written back as {fmt.upper()}: it holds characters UTF-8 cannot encode", tried=fmt)


# -- JSON --------------------------------------------------------------------------------

def _json(scrubber: Scrubber, text: str, path: str) -> Tuple[str, Any]:
    try:
        data = load_json_bounded(text)
        return json.dumps(DataScrubber(scrubber, path).value(data), indent=1, ensure_ascii=False) + "\n", data
    except ValueError as exc:  # JSONDecodeError and TooDeep
        raise NotParsed(str(exc)) from None


# -- YAML --------------------------------------------------------------------------------

def _yaml(scrubber: Scrubber, text: str, path: str) -> Tuple[str, Any]:
    try:
        node = compose_text(text)  # bounded: depth, aliases expanded, time
        if node is None:  # comments only
            return scrubber.scrub_text(text, path), None
        data = yaml.SafeLoader(text).construct_document(node)
        scrubbed = DataScrubber(scrubber, path).value(data)
        return yaml.safe_dump(scrubbed, sort_keys=False, allow_unicode=True, default_flow_style=False), data
    except RecursionError:
        raise NotParsed(f"nested too deep to parse (limit {MAX_DEPTH})") from None
    except (yaml.YAMLError, TooDeep) as exc:
        raise NotParsed(" ".join(str(exc).split())[:300]) from None


# -- INI ---------------------------------------------------------------------------------

def _ini(scrubber: Scrubber, text: str, path: str) -> Tuple[str, Any]:
    parser = configparser.ConfigParser(interpolation=None, allow_no_value=True, strict=True)
    parser.optionxform = str  # keep keys as written
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise NotParsed(" ".join(str(exc).split())[:300]) from None
    defaults = dict(parser.defaults())
    data = {parser.default_section: defaults} if defaults else {}
    for section in parser.sections():
        data[section] = {k: v for k, v in parser.items(section, raw=True) if k not in defaults or defaults[k] != v}
    scrubbed = DataScrubber(scrubber, path).value(data)
    out = configparser.ConfigParser(interpolation=None, allow_no_value=True)
    out.optionxform = str
    out.read_dict(scrubbed)
    buffer = io.StringIO()
    out.write(buffer)
    return buffer.getvalue(), data


# -- XML ---------------------------------------------------------------------------------

# attribute names whose value names a setting (<add key="SmtpPassword" value="..."/>)
_NAME_ATTRIBUTES = ("key", "name", "id")
_VALUE_ATTRIBUTES = ("value", "val")


def _xml(scrubber: Scrubber, text: str, path: str) -> Tuple[str, Any]:
    if _XML_DANGER.search(text):
        raise NotParsed("it declares a DTD or entities, which akdiag does not expand")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise NotParsed(str(exc)) from None
    except RecursionError:
        raise NotParsed(f"nested too deep to parse (limit {MAX_DEPTH})") from None
    _XmlScrubber(scrubber, path).element(root, 0)
    declaration = '<?xml version="1.0" encoding="UTF-8"?>\n' if text.lstrip().startswith("<?xml") else ""
    return declaration + ET.tostring(root, encoding="unicode") + "\n", None


class _XmlScrubber:
    def __init__(self, scrubber: Scrubber, path: str):
        self.scrubber = scrubber
        self.path = path

    def _text(self, text: Optional[str]) -> Optional[str]:
        return None if text is None else scrub_string(self.scrubber, text, self.path)

    def _mask(self) -> str:
        self.scrubber.counts.add(SECRET_KEY_RULE, self.path)
        return MASK

    def element(self, element: ET.Element, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise NotParsed(f"nested deeper than {MAX_DEPTH} levels; not parsed")
        local = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        named_secret = any(is_secret_key(element.attrib.get(a, "")) for a in _NAME_ATTRIBUTES)
        for name, value in list(element.attrib.items()):
            attr = name.rsplit("}", 1)[-1]
            if value and (is_secret_key(attr) or (named_secret and attr in _VALUE_ATTRIBUTES)):
                element.attrib[name] = self._mask()
            else:
                element.attrib[name] = self._text(value)
        if element.text and element.text.strip() and (is_secret_key(local) or named_secret) and not len(element):
            element.text = self._mask()
        else:
            element.text = self._text(element.text)
        for child in element:
            self.element(child, depth + 1)
            child.tail = self._text(child.tail)


_PARSERS = {"json": _json, "yaml": _yaml, "ini": _ini, "xml": _xml}
