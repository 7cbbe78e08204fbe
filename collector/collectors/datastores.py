"""Every datastore and HTTP status handler of the platform: reachable or not, how fast,
which version, and the figures a support engineer asks for first.

datastores.json: {"endpoints": [record per endpoint], "main_json": {path, state, error},
"timeout_s": float, "counts": {status: n}, "errors": [...]}

A record: name, kind, group, description, host, port, source (where the address came
from), user (a name, never a password), status (ok|unreachable|timeout|auth_failed|
error|not_ready|not_configured), reachable, connect_ms, latency_ms, version, error (one line),
duration (s), notes, details (kind-specific), command_errors ({command: message}).

Endpoints are checked at once.  Each check's budget (--datastore-timeout) starts once
its client library is loaded; an answer after the budget is recorded as late (`late`,
`answered_s`), no answer by twice the budget is a timeout; all end by one hard stop
within the collector's own time.
"""

from __future__ import annotations

from collections import Counter

from collector.context import Context
from collector.datastores.checks import GRACE_SECONDS, check_endpoints, hard_limit
from collector.datastores.endpoints import resolve_endpoints

# what the collector keeps for itself out of its own time bound (resolving, writing)
RESERVE_SECONDS = 1.0


def collect(ctx: Context) -> dict:
    endpoints, main_json = resolve_endpoints(ctx.basedir, ctx.catalog)
    available = ctx.deadline.remaining() - GRACE_SECONDS - RESERVE_SECONDS
    timeout = max(0.1, min(ctx.options.datastore_timeout, available))
    errors = []
    if main_json["state"] in ("invalid", "unreadable"):
        errors.append(main_json["error"])
    if timeout < ctx.options.datastore_timeout:
        errors.append(f"only {timeout:.1f} s were left for each datastore check "
                      f"(--datastore-timeout {ctx.options.datastore_timeout:g})")
    # the checks' hard stop (probe, client import, a late answer) never outlives the collector
    records = check_endpoints(endpoints, timeout, limit=max(timeout, min(hard_limit(timeout), available)))
    counts = Counter(record["status"] for record in records)
    return {
        "endpoints": records,
        "main_json": main_json,
        "timeout_s": timeout,
        "counts": dict(sorted(counts.items())),
        "errors": errors,
    }
