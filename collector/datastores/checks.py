"""Run every endpoint's check at once, each in its own daemon thread.  Each check's
budget (the datastore timeout) starts when its client library is loaded; an answer may
come late, up to LATE_FACTOR times the budget.  Every check ends by one hard stop for
the whole call (`limit`): a check still running then is abandoned (its thread keeps
nothing the bundle needs) and recorded as a timeout with what it was waiting for."""

from __future__ import annotations

import copy
import importlib
import threading
import time
from typing import Callable, Dict, List, Optional

from collector.context import Deadline
from collector.datastores.common import (LATE_FACTOR, NOTHING_LISTENS, Check, CheckFailed, Endpoint, base_record,
                                        fmt_seconds, scrub_values)
from collector.plain import one_line

CheckFunc = Callable[[Check], None]

_IMPORT_LOCK = threading.Lock()
LOADING = "loading the client library"
# what the client libraries' import may take on a loaded host, counted into the hard stop
IMPORT_ALLOWANCE_SECONDS = 2.0
# a check left with less than this after its client library loaded does not start
MIN_WINDOW_SECONDS = 0.05


def _probe(chk: Check) -> None:
    """The TCP probe.  At an address a server may well not listen at (Endpoint.if_absent:
    a catalog default main.json has no key for), a refused connection or no route ends the
    check as not_configured, with a note, rather than unreachable: nothing says it is down."""
    try:
        chk.tcp_probe()
    except CheckFailed as exc:
        if not chk.endpoint.if_absent or exc.cause not in NOTHING_LISTENS:
            raise
        chk.note(f"{chk.endpoint.if_absent} ({exc.message})")
        raise CheckFailed("not_configured", None) from None


def _probe_then(module_name: str) -> CheckFunc:
    """The check in `module_name`, run once the endpoint accepts a TCP connection.  Its
    client library is imported only then: pymongo, redis and pika take most of a second
    of CPU to import, which a host whose datastores are down or elsewhere never pays."""
    def run(chk: Check) -> None:
        _probe(chk)
        chk.phase = LOADING
        with _IMPORT_LOCK:  # one import at a time: threads importing packages that share modules can deadlock
            module = importlib.import_module(module_name)
        chk.client_ready()
        if chk.window < MIN_WINDOW_SECONDS:
            took = fmt_seconds(chk.record["client_ready_s"])
            raise CheckFailed("error", f"not asked: the TCP probe and loading the client library took {took} s, "
                                       f"leaving no time before the run's limit to ask {chk.endpoint.address}")
        module.check(chk)

    run.__name__ = run.__qualname__ = f"check_{module_name.rsplit('.', 1)[-1]}"
    return run


CHECKS: Dict[str, CheckFunc] = {
    "mongodb": _probe_then("collector.datastores.mongodb"),
    "ssdb": _probe_then("collector.datastores.ssdb"),
    "kvrocks": _probe_then("collector.datastores.kvrocks"),
    "redis": _probe_then("collector.datastores.kvrocks"),
    "rabbitmq": _probe_then("collector.datastores.rabbitmq"),
    "clickhouse": _probe_then("collector.datastores.clickhouse"),
    "http": _probe_then("collector.datastores.health"),
}
# a check's own timeouts come first; this is the margin after which the runner stops waiting
GRACE_SECONDS = 0.5


def not_checked(endpoint: Endpoint) -> dict:
    """The record of an endpoint that is not checked: not configured, or configured wrongly."""
    record = base_record(endpoint)
    if endpoint.problem:
        record.update(status="error", error=endpoint.problem, duration=0.0)
    else:
        record.update(status="not_configured", error=None, duration=0.0)
        record["notes"] = list(record["notes"]) + [endpoint.options.get("not_configured") or "not configured"]
    return record


def _run(chk: Check, func: CheckFunc, done: threading.Event) -> None:
    try:
        func(chk)
        chk.finish("ok")
    except CheckFailed as exc:
        chk.finish(exc.status, exc.message)
        chk.record["cause"] = exc.cause
    except Exception as exc:  # a bug or a library surprise: recorded, the others go on
        chk.finish("error", f"unexpected {type(exc).__name__} while checking {chk.endpoint.address} "
                            f"({chk.phase}): {one_line(exc, 160)}")
        chk.record["traceback_type"] = type(exc).__name__
    finally:
        done.set()
        chk.cleanup()


def _snapshot(chk: Check) -> dict:
    """A copy of an abandoned check's record; its thread may still be writing to it."""
    for _ in range(3):
        try:
            return copy.deepcopy(chk.record)
        except RuntimeError:
            time.sleep(0.001)
    return base_record(chk.endpoint)


def hard_limit(timeout: float) -> float:
    """The longest a set of checks with this budget needs: the TCP probe (timeout), the
    client libraries' import, and the wait for a late answer (LATE_FACTOR x timeout)."""
    return timeout * (1 + LATE_FACTOR) + IMPORT_ALLOWANCE_SECONDS


def check_endpoints(endpoints: List[Endpoint], timeout: float, limit: Optional[float] = None) -> List[dict]:
    """One record per endpoint, in the order given.  `timeout` is each check's budget;
    `limit` (default hard_limit(timeout)) the hard stop for them all: returns within
    limit + GRACE_SECONDS."""
    hard_stop = Deadline(hard_limit(timeout) if limit is None else limit)
    running = []
    records: List[dict] = []
    for index, endpoint in enumerate(endpoints):
        func = CHECKS.get(endpoint.kind)
        if endpoint.host is None or endpoint.port is None or endpoint.problem or func is None:
            record = not_checked(endpoint)
            if func is None and endpoint.host is not None:
                record.update(status="error", error=f"no check for kind {endpoint.kind!r}")
            records.append(record)
            continue
        chk = Check(endpoint, timeout, hard_stop)
        done = threading.Event()
        thread = threading.Thread(target=_run, args=(chk, func, done), daemon=True,
                                  name=f"datastore:{endpoint.name}")
        thread.start()
        running.append((index, chk, done))
        records.append({})
    end = time.monotonic() + hard_stop.remaining() + GRACE_SECONDS
    for index, chk, done in running:
        if done.wait(max(0.0, end - time.monotonic())):
            record = chk.record
        else:
            chk.abandoned.set()
            record = _snapshot(chk)
            record.update(status="timeout", error=chk.timeout_message(waited=chk.waited()),
                          duration=round(time.monotonic() - chk.started, 3))
            if chk.ready_at is None and chk.phase == LOADING:  # the server was never asked
                record.update(status="error", error=f"not asked: loading the client library did not finish "
                                                    f"within the run's limit for {chk.endpoint.address}")
        records[index] = scrub_values(record, list(chk.endpoint.secrets.values()))
    return records
