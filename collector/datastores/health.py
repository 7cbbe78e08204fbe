"""The platform services' status handlers: GET /<service>/health (200 "OK" while the
process serves) and /<service>/readiness (200 {"status": "OK"}, or 503 {"status":
"FAIL", "failed": [...]}).  A 503 from either, or another non-2xx whose JSON body names
failed components, is the service saying it runs but is not ready: status not_ready,
with details.not_ready {handler, url, status_code, failed}."""

from __future__ import annotations

import json
from typing import Any, List, Optional

from collector.datastores.common import Check, CheckFailed
from collector.datastores.httpget import HttpFailure, body_text, http_get
from collector.plain import one_line

BODY_LIMIT = 4096
MAX_FAILED = 20  # failed components kept from one answer


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _get(chk: Check, path: str) -> dict:
    ep = chk.endpoint
    chk.phase = f"GET {path}"
    url = f"http://{ep.address}{path}"
    try:
        reply = http_get(ep.host, ep.port, path, chk.deadline, chk.window, limit=BODY_LIMIT)
    except HttpFailure as exc:
        return {"url": url, "status_code": None, "ms": None, "body": None, "error": exc.message,
                "_failure": exc.kind}
    text = body_text(reply.body)
    return {"url": url, "status_code": reply.status, "ms": reply.ms, "body": text,
            "body_truncated": reply.truncated, "error": None}


def _failed_components(parsed: Any) -> Optional[List[str]]:
    """The `failed` list of a status handler's JSON body, as short strings (None: no list)."""
    failed = parsed.get("failed") if isinstance(parsed, dict) else None
    if not isinstance(failed, list):
        return None
    return [one_line(item, 100) for item in failed[:MAX_FAILED]]


def _not_ready(answer: dict) -> bool:
    """Whether a handler's answer says the service runs but is not ready: a 503, or any
    other non-2xx whose JSON body names failed components (the service's own shape)."""
    code = answer.get("status_code")
    if code is None or 200 <= code < 300:
        return False
    return code == 503 or answer.get("failed") is not None


def _read(chk: Check, path: str) -> dict:
    """GET one handler; the answer with its parsed `status` and `failed` when JSON."""
    answer = _get(chk, path)
    parsed = _parse(answer["body"]) if answer.get("body") else None
    answer["status"] = parsed.get("status") if isinstance(parsed, dict) else None
    answer["failed"] = _failed_components(parsed)
    return answer


def _raise_not_ready(chk: Check, service: str, health: dict, readiness: dict) -> None:
    """The service answered that it is not ready: recorded with the status code and the
    failed components (readiness names them; /health may too)."""
    answer = readiness if _not_ready(readiness) else health
    failed = readiness.get("failed") or health.get("failed")
    chk.detail("not_ready", {"handler": "readiness" if answer is readiness else "health", "url": answer["url"],
                             "status_code": answer["status_code"], "failed": failed})
    what = f"failed: {', '.join(failed)}" if failed else one_line(answer.get("body") or "no body", 120)
    raise CheckFailed("not_ready", f"{service} is not ready (HTTP {answer['status_code']} from "
                                   f"{answer['url']}; {what})")


def check(chk: Check) -> None:
    ep = chk.endpoint
    service = ep.options.get("service") or ep.name
    health = _read(chk, f"/{service}/health")
    failure = health.pop("_failure", None)
    chk.detail("health", health)
    if failure == "timeout":
        raise CheckFailed("timeout", health["error"])
    if failure is not None:
        raise CheckFailed("error", health["error"])
    chk.set("latency_ms", health["ms"])
    readiness = _read(chk, f"/{service}/readiness")
    failure = readiness.pop("_failure", None)
    code = readiness["status_code"]
    readiness["ready"] = (code is not None and 200 <= code < 300) if failure is None else None
    chk.detail("readiness", readiness)
    if _not_ready(health) or (failure is None and _not_ready(readiness)):
        _raise_not_ready(chk, service, health, readiness)
    if not 200 <= health["status_code"] < 300:
        said = f"HTTP {health['status_code']} from {health['url']}: {one_line(health['body'] or '', 120)}"
        # a 3xx or 4xx is not the service's own answer: another program may hold its port
        question = f" (does this port serve {service}?)" if health["status_code"] < 500 else ""
        raise CheckFailed("error", said + question)
    if failure == "timeout":
        raise CheckFailed("timeout", readiness["error"])
    if failure is not None:
        raise CheckFailed("error", readiness["error"])
    if not readiness["ready"]:
        raise CheckFailed("error", f"{service} readiness answered HTTP {code} from {readiness['url']}: "
                                   f"{one_line(readiness['body'] or '', 120)}")
