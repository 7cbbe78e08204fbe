"""The HTML summary of a bundle: the page a support engineer reads first.

The summary is rendered from the bundle's own files, through a BundleReader only,
never from the live host, so that the same bundle always gives the same page and a
bundle can be re-rendered anywhere.  Every input may be missing, partial or of an
unexpected shape (a collector failed, timed out, or an older/newer akdiag wrote it):
the data is normalized into plain dicts and lists, and each section says what it could
not show and why.

The page is self-contained (inline CSS, one small inline script, no external
reference) and is autoescaped throughout: everything in a bundle came from the host and
is untrusted.  The script only sorts tables and opens a collapsed log a link points
into; the page reads the same without it.  A Content-Security-Policy allows that one
script (by its hash) and nothing else.

Findings come first: the bundle's findings.json, or those given by the caller (`akdiag
report` passes today's analysis).  Each links to the section holding its evidence, and
the thresholds they were judged by colour the tables (limits.py).

Layout: one module per section of the page turns bundle data into that section's view
(header, verdict, findings, processes with PID files and ports, host, datastores, akd,
config, logs, collectors with redactions); page.py sets up Jinja2 and assembles the
page; format.py holds the filters; sources.py reads the bundle's files.  A new section
is a module here returning plain data, one line in page.build_context and its block in
report_templates/summary.html.j2.
"""

from collector.report.akd import MAX_AKD_STDERR_BYTES, MAX_AKD_STDOUT_BYTES
from collector.report.findings import MAX_FINDINGS, finding_rows
from collector.report.format import (dash, human_bytes, human_duration, human_number, human_percent, human_time,
                                     level, plural, words)
from collector.report.header import PLATFORM_VERSION, platform_version
from collector.report.logs import TAIL_BYTES, TAIL_LINES, TAILS_TOTAL_BYTES
from collector.report.page import (SCRIPT, TEMPLATE, TEMPLATES_PACKAGE, build_context, environment, render_bundle,
                                   render_page, templates_dir)
from collector.report.sources import MAX_TABLE_ROWS

__all__ = [
    "MAX_AKD_STDERR_BYTES", "MAX_AKD_STDOUT_BYTES", "MAX_FINDINGS", "MAX_TABLE_ROWS", "PLATFORM_VERSION", "SCRIPT",
    "TAILS_TOTAL_BYTES", "TAIL_BYTES", "TAIL_LINES", "TEMPLATE", "TEMPLATES_PACKAGE", "build_context", "dash",
    "environment", "finding_rows", "human_bytes", "human_duration", "human_number", "human_percent", "human_time",
    "level", "platform_version", "plural", "render_bundle", "render_page", "templates_dir", "words",
]
