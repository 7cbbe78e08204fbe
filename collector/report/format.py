"""The formatting filters every akdiag page uses: sizes, durations, numbers, times and
the colour class of a status word.  Each shows a dash where there is no value and the
value itself where it is not of the expected kind."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable, List, Optional

import jinja2
import markupsafe

from collector.plain import as_list, number

# the colour class of a status word (the word itself is always shown too)
_LEVELS = {
    "running": "ok", "ok": "ok", "listening": "ok", "tailed": "ok", "yes": "ok", "listening_owner_unknown": "info",
    "partial": "warn", "not_listening": "warn", "missing": "warn", "skipped": "mute",
    "down": "bad", "failed": "bad", "timeout": "bad", "conflict": "bad", "error": "bad",
    "stale": "bad", "reused": "bad", "invalid": "bad", "unreadable": "bad", "no": "bad",
    "absent": "mute", "none": "mute", "listed": "mute", "unknown": "mute",
    "unreachable": "bad", "auth_failed": "bad", "not_ready": "bad", "not_configured": "mute",
    "critical": "bad", "warning": "warn", "info": "info",
}


def blank(value: Any) -> bool:
    return value is None or isinstance(value, jinja2.Undefined) or value == ""


def _figure(value: Any, show: Callable[[Any], str]) -> str:
    """`show(n)` of the value as a number; a dash for no value, the value as given when
    it is not a number."""
    n = number(value)
    if n is None:
        return "—" if blank(value) else str(value)
    return show(n)


def dash(value: Any) -> Any:
    """The value, or an em dash where there is none."""
    return "—" if blank(value) else value


def _bytes(n: Any) -> str:
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1024:
        return f"{sign}{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024.0
        if n < 1024 or unit == "PiB":
            return f"{sign}{n:.1f} {unit}" if n < 100 else f"{sign}{n:.0f} {unit}"
    return f"{sign}{n:.0f} PiB"  # pragma: no cover


def human_bytes(value: Any) -> str:
    """1536 -> '1.5 KiB'; None -> '—'."""
    return _figure(value, _bytes)


def _duration(s: Any) -> str:
    if s < 0:
        return f"{s:g} s"
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    s = int(round(s))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s"


def human_duration(value: Any) -> str:
    """Seconds as '0.42 s', '3 min 5 s', '4 h 10 min', '12 d 3 h'; None -> '—'."""
    return _figure(value, _duration)


def human_number(value: Any, digits: int = 1) -> str:
    return _figure(value, lambda n: f"{n:,}" if isinstance(n, int) else f"{n:,.{digits}f}")


def human_percent(value: Any, digits: int = 1) -> str:
    return _figure(value, lambda n: f"{n:.{digits}f} %")


def human_time(value: Any) -> str:
    """An ISO timestamp or a Unix time as 'YYYY-MM-DD HH:MM:SS UTC'."""
    n = number(value)
    if n is not None:
        try:
            return datetime.fromtimestamp(n, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        except (OverflowError, OSError, ValueError):
            return str(value)
    if blank(value):
        return "—"
    text = str(value)
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|\+00:?00)", text)
    return f"{match.group(1)} {match.group(2)} UTC" if match else text


def level(value: Any) -> str:
    return _LEVELS.get(str(value), "mute") if not blank(value) else "mute"


def words(value: Any) -> str:
    """'not_listening' -> 'not listening'."""
    return "—" if blank(value) else str(value).replace("_", " ")


def plural(count: int, singular: str, many: Optional[str] = None) -> str:
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


MAX_LIST_ITEMS = 100  # a section's errors or notes in the page


def strings(value: Any, bundle_file: Optional[str] = None) -> List[str]:
    """The non-blank items of a list, as text (a section's `errors`, a record's `notes`);
    past MAX_LIST_ITEMS, a last item says how many more `bundle_file` holds."""
    items = [str(item) for item in as_list(value) if not blank(item)]
    if len(items) <= MAX_LIST_ITEMS:
        return items
    where = f" in {bundle_file}" if bundle_file else " in the bundle"
    return items[:MAX_LIST_ITEMS - 1] + [f"… and {len(items) - MAX_LIST_ITEMS + 1} more{where}"]


def left_out(count: int, what: str, where: str, bundle_file: str) -> Optional[dict]:
    """What a capped list of the page left out, for the `left_out` macro: "<count> more
    <what> not shown here ...: <where> <bundle_file> in the bundle" (None: nothing was)."""
    if count <= 0:
        return None
    return {"count": count, "what": what, "where": where, "file": bundle_file}


def numbered_lines(lines: Any) -> markupsafe.Markup:
    """A log tail's shown lines ({n, text, kind, anchor}: collector/report/logs.py) as the
    page writes them: one span a line with its number, a marked line's class and anchor.
    What the template's loop would write, in a tenth of the time (the tails are most of
    the page): the texts are escaped together, as one text of lines."""
    escape = markupsafe.escape
    rows = as_list(lines)
    texts = [str(row.get("text")) for row in rows]
    escaped = str(escape("\n".join(texts))).split("\n")
    if len(escaped) != len(rows):  # a text of more than one line: each on its own
        escaped = [str(escape(text)) for text in texts]
    parts = []
    for row, text in zip(rows, escaped):
        kind, anchor, number = row.get("kind"), row.get("anchor"), row.get("n")
        parts.append('<span class="line%s"%s><span class="ln">%s</span>%s\n</span>' % (
            escape(" mark mark-" + str(kind)) if kind else "", ' id="%s"' % escape(anchor) if anchor else "",
            number if type(number) is int else escape(number), text))
    return markupsafe.Markup("".join(parts))


FILTERS = dict(size=human_bytes, duration=human_duration, num=human_number, pct=human_percent, when=human_time,
               dash=dash, level=level, words=words, plural=plural,
               numbered_lines=numbered_lines)
