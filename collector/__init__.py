"""akdiag: a diagnostics bundle collector for Altcraft platform hosts."""

__version__ = "0.1.0"
TOOL_NAME = "akdiag"
