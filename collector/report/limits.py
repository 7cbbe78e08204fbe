"""The page's colour limits: the catalog's thresholds, the very numbers the analyzers
judged the bundle by, so that a table row is marked exactly where a finding says so.

findings.json records the thresholds of its analysis (`akdiag report --catalog` passes
today's); each one it lacks (an older akdiag wrote it, or there are no findings) or holds
malformed (a damaged bundle) is the built-in catalog's."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Optional

from collector.analyzers.findings import ThresholdError, Thresholds
from collector.plain import as_dict


@lru_cache(maxsize=1)
def _builtin() -> Dict[str, Any]:
    from collector.catalog import load_catalog

    return load_catalog().thresholds


class PageThresholds(Thresholds):
    """The thresholds a findings.json records, read as the analyzers read them; one it
    lacks or holds malformed is the built-in catalog's."""

    def __init__(self, findings: Optional[dict] = None):
        super().__init__(as_dict(as_dict(findings).get("thresholds")))

    def _either(self, kind: str, name: str) -> Any:
        try:
            return getattr(super(), kind)(name)
        except ThresholdError:  # the built-in catalog is read only then: a collection records them all
            return getattr(Thresholds(_builtin()), kind)(name)

    def number(self, name: str) -> float:
        return self._either("number", name)

    def mapping(self, name: str) -> Dict[str, float]:
        return self._either("mapping", name)

    def words(self, name: str):
        return self._either("words", name)
