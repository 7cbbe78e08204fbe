"""The configuration section: the config files read (their secrets redacted in the
bundle) and the keys still set to the vendor's placeholder secret."""

from __future__ import annotations

from typing import Optional

from collector.bundle import schema
from collector.plain import dicts
from collector.report.format import strings


def config_view(data: Optional[dict]) -> dict:
    data = data or {}
    return {"files": dicts(data.get("files")),
            "placeholder_secrets": strings(data.get("placeholder_secrets"), schema.CONFIG_INDEX),
            "errors": strings(data.get("errors"), schema.CONFIG_INDEX)}
