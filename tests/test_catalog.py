from __future__ import annotations

import pytest

from collector.catalog import CatalogError, load_catalog


def test_builtin_catalog_has_every_documented_process():
    catalog = load_catalog()
    assert len(catalog.processes) == 33
    sns = catalog.process("trk_amazon_sns")
    assert sns.title == "AK:trk_amazon_sns" and sns.port == 8093 and sns.remote
    assert catalog.process("procnotify").retired_in == "v2024.2.68.2.2206"
    assert catalog.process("procactions").port is None


def test_user_file_adds_changes_and_marks_remote(tmp_path):
    extra = tmp_path / "site.yaml"
    extra.write_text(
        "processes:\n"
        "  - {binary: api, port: 9801}\n"
        "  - {binary: webcontrol, remote: true}\n"
        "  - {binary: custom_worker, port: 7000, description: Site-specific worker}\n"
        "thresholds: {disk_free_warning_percent: 15}\n"
    )
    catalog = load_catalog(extra)
    assert catalog.process("api").port == 9801
    assert catalog.process("webcontrol").remote is True
    custom = catalog.process("custom_worker")
    assert custom.title == "AK:custom_worker" and custom.port == 7000
    assert catalog.thresholds["disk_free_warning_percent"] == 15
    assert str(extra) in catalog.sources


@pytest.mark.parametrize(
    "text, message",
    [
        ("processes:\n  - {binary: api, prot: 1}\n", "line 2: unknown field 'processes.prot'"),
        ("processes:\n  - binary: api\n    remote: maybe\n", "line 3: field 'processes.remote' must be bool"),
        ("processes:\n  - {port: 1}\n", "line 2: an entry of 'processes' has no 'binary' field"),
        ("processes:\n  - {binary: api, port: 70000}\n", "line 2: field 'processes.port' must be 1-65535"),
        ("components:\n  - {name: x, kind: oracle}\n", "line 2: field 'components.kind' must be one of"),
        ("procesess: []\n", "line 1: unknown field 'procesess'"),
        ("processes: {binary: api}\n", "line 1: field 'processes' must be a list"),
        ("processes:\n  - [binary\n", "not valid YAML"),
        ("redact: ['(unclosed']\n", "line 1: field 'redact' has an invalid regular expression"),
    ],
)
def test_bad_user_file_names_file_line_and_field(tmp_path, text, message):
    extra = tmp_path / "bad.yaml"
    extra.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog(extra)
    assert str(extra) in str(err.value)
    assert message in str(err.value)


def test_unreadable_catalog_file(tmp_path):
    with pytest.raises(CatalogError, match="cannot read the catalog"):
        load_catalog(tmp_path / "missing.yaml")
