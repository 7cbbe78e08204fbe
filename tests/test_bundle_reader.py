"""The bundle reader resolves each member's path once (links followed) and keeps the answer:
the analyzers and the report read the same files again and again."""

from __future__ import annotations

import json
import os

import pytest

from collector.bundle import reader as reader_module
from collector.bundle.reader import BundleReader


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "bundle"
    (root / "logs").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"schema_version": 1}))
    (root / "logs" / "api.log").write_text("one\ntwo\n")
    (tmp_path / "secret.txt").write_text("outside the bundle\n")
    os.symlink(tmp_path / "secret.txt", root / "logs" / "leak.log")
    return root


def test_each_member_is_resolved_once(bundle, monkeypatch):
    resolved = []
    real = os.path.realpath

    def counting(path, *args, **kwargs):
        resolved.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(reader_module.os.path, "realpath", counting)
    reader = BundleReader(bundle)
    for _ in range(50):
        assert reader.json("manifest.json") == {"schema_version": 1}
        assert reader.member("logs/api.log", "logs/")[0] is not None
        assert reader.text("logs/api.log") == "one\ntwo\n"
    assert len(resolved) == 3  # the bundle's root, manifest.json, logs/api.log


def test_a_link_leading_out_stays_refused_on_every_read(bundle):
    reader = BundleReader(bundle)
    for _ in range(3):
        assert reader.text("logs/leak.log") is None
        path, why = reader.member("logs/leak.log", "logs/")
        assert path is None and "points outside the bundle" in why
    assert reader.member("logs/missing.log", "logs/") == (None, "logs/missing.log is missing from this bundle")
    (bundle / "logs" / "fifo.log").parent.mkdir(exist_ok=True)
    os.mkfifo(bundle / "logs" / "fifo.log")
    assert reader.member("logs/fifo.log", "logs/")[1] == "logs/fifo.log is not a regular file; not read"
