"""Regular expressions compiled on their first use, not when their module is imported.

`akdiag check` imports the redaction rules and every analyzer, yet on a quiet host runs
few of their patterns: the scrubber's pre-filters pass most lines by, the logs' patterns
wait for logs.  Compiling them all at import cost tens of milliseconds of each check.

    SECRET = lazy(r"(?i)password\\s*=\\s*(\\S+)")
    SECRET.sub(...)            # compiled here, once; later calls go straight to re's method

`pattern` is there at once, without compiling (rules are keyed by it)."""

from __future__ import annotations

import re
from typing import Any, AnyStr, Union

_METHODS = ("search", "match", "fullmatch", "sub", "subn", "finditer", "findall", "split", "scanner")


class LazyPattern:
    """Stands for re.compile(pattern, flags); compiles on the first attribute it is
    asked for, then keeps the compiled pattern's methods as its own (no indirection
    left on the hot path).  Two threads asking at once may both compile: harmless."""

    def __init__(self, pattern: Union[str, bytes], flags: int = 0):
        self.pattern = pattern
        self._flags = flags

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("pattern", "_flags"):
            raise AttributeError(name)
        compiled = self.compiled()
        return getattr(compiled, name)

    def compiled(self) -> "re.Pattern":
        compiled = self.__dict__.get("_compiled")
        if compiled is None:
            compiled = re.compile(self.pattern, self._flags)
            for method in _METHODS:
                setattr(self, method, getattr(compiled, method))
            self._compiled = compiled
        return compiled

    def __repr__(self) -> str:
        return f"lazy({self.pattern!r}, {self._flags})"


def lazy(pattern: AnyStr, flags: int = 0) -> LazyPattern:
    return LazyPattern(pattern, flags)
