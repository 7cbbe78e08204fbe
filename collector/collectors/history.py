"""history.json: the recent history `akdiag watch` kept for this BASEDIR (collector.history),
cut down to the file's bounds (collector.history_file).  A host where watch never ran gets
an empty history (samples_total 0), which no analyzer or chart reads as anything; a ring
that cannot be read (unsafe folder, unreadable file) fails this collector, and the run goes on."""

from __future__ import annotations

from collector.context import Context
from collector.history_file import SCHEMA, read_history

NO_HISTORY = "no history: akdiag watch has not sampled this host (README: Watching a host)"


def collect(ctx: Context) -> dict:
    document = read_history(ctx.basedir)
    if document is None:
        return {"schema": SCHEMA, "samples_total": 0, "samples_kept": 0, "note": NO_HISTORY}
    return document
