"""`akdiag collect --dry-run`: what a run would collect, declared by each collector's plan
before anything is collected (sosreport's idea): every file with its size and the tail it
would take, every command, every datastore address, and the options in force.

A plan is cheap and leaves no trace: it lists folders (the log listing opens folders
only), stats files and reads main.json for the datastores' addresses; it runs no command,
contacts no datastore, reads no log's content and writes nothing anywhere."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from collector.bundle import schema
from collector.context import Context, Deadline
from collector.live import iso_utc
from collector.units import format_size

PLAN_SECONDS = 20.0  # the listings' bound


@dataclass
class Plan:
    options: List[Tuple[str, str]] = field(default_factory=list)
    collectors: List[Tuple[str, str]] = field(default_factory=list)  # name, what it collects
    files: List[dict] = field(default_factory=list)  # path, size, take (bytes or None), note
    commands: List[str] = field(default_factory=list)
    addresses: List[dict] = field(default_factory=list)  # name, kind, address, source, note
    notes: List[str] = field(default_factory=list)  # what could not be planned, and why


def _file(plan: Plan, path: str, take: Optional[int] = None, note: str = "") -> None:
    try:
        size: Optional[int] = os.stat(path).st_size
    except OSError as exc:
        size, note = None, note or f"cannot be read: {exc.strerror or exc}"
    plan.files.append({"path": path, "size": size, "take": size if take is None and size is not None else take,
                       "note": note})


# -- each collector's plan ---------------------------------------------------------------

def _plan_logs(ctx: Context, plan: Plan) -> None:
    """Every file the log collector would list, and the tail it would take of each live
    log: newest first, within --log-bytes each and --log-total-bytes together."""
    from collector.collectors import logs
    from collector.logwalk import newest_first
    from collector.logwindow import Budget

    index = {"errors": [], "roots": [], "notes": []}
    listing = logs._platform_listing(ctx, index)
    datastores = logs._datastore_roots(ctx, index)
    listings = [(str(ctx.basedir / "logs"), listing)] if listing else []
    listings += [(record["path"], found) for record, found in datastores]
    budget = Budget.for_listings(ctx.options, [found for _root, found in listings])
    try:
        taking = {}
        # as the collection takes them: root by root (the platform's logs first), newest first in each
        every = [cand for _root, found in listings
                 for cand in newest_first(found.candidates)]
        for cand in every:
            budget.pending -= 1
            cap = budget.window_cap(ctx.options) if ctx.options.since is not None else ctx.options.log_bytes
            take = min(cand.entry.get("size") or 0, cap, max(0, budget.left))
            budget.left -= take
            taking[id(cand)] = take
        for root, found in listings:
            candidates = {id(c.entry): c for c in found.candidates}
            for entry in found.entries:
                path = os.path.join(root, entry["path"])
                cand = candidates.get(id(entry))
                if cand is not None:
                    note = _tail_note(ctx, taking[id(cand)])
                    plan.files.append({"path": path, "size": entry.get("size"), "take": taking[id(cand)],
                                       "note": note})
                else:
                    plan.files.append({"path": path, "size": entry.get("size"), "take": 0,
                                       "note": _listed_note(ctx, entry)})
    finally:
        for _root, found in listings:
            found.close()
    plan.notes.extend(index["errors"])


def _tail_note(ctx: Context, take: int) -> str:
    if ctx.options.since is not None:
        return f"lines since {iso_utc(ctx.options.since)}, at most {format_size(take)}"
    if take == 0:
        return f"listed only: --log-total-bytes {format_size(ctx.options.log_total_bytes)} used up by newer logs"
    return f"tail: at most {ctx.options.log_lines} lines, {format_size(take)}"


def _listed_note(ctx: Context, entry: dict) -> str:
    if entry.get("reason") == schema.LOG_REASON_ROTATED and ctx.options.since is not None:
        return f"rotated: read back to {iso_utc(ctx.options.since)} when the live log does not reach it"
    return f"listed only ({entry.get('reason') or entry.get('type')})"


def _plan_akd(ctx: Context, plan: Plan) -> None:
    plan.commands.append(f"{ctx.basedir / 'akd'} --processes")


def _plan_config(ctx: Context, plan: Plan) -> None:
    folder = ctx.basedir / "config"
    _file(plan, str(folder / "main.json"), note="secrets redacted")
    consts = folder / "json_consts"
    try:
        names = sorted(os.listdir(consts))
    except OSError:
        return
    for name in names:
        if name.startswith("custom"):
            _file(plan, str(consts / name), note="secrets redacted")


def _plan_pidfiles(ctx: Context, plan: Plan) -> None:
    folder = ctx.basedir / "pids"
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        plan.notes.append(f"{folder}: cannot be listed ({exc.strerror or exc})")
        return
    for name in names:
        _file(plan, str(folder / name))


def _plan_datastores(ctx: Context, plan: Plan) -> None:
    from collector.datastores.endpoints import resolve_endpoints

    endpoints, _info = resolve_endpoints(ctx.basedir, ctx.catalog)
    for point in endpoints:
        address = f"{point.host}:{point.port}" if point.host and point.port else None
        plan.addresses.append({"name": point.name, "kind": point.kind, "address": address, "source": point.source,
                               "note": point.problem or ("" if address else "not contacted: no address")})


def _plan_kernel(ctx: Context, plan: Plan) -> None:
    from collector.collectors import kernel

    plan.commands.append(f"read {kernel.KMSG_PATH}; else {kernel.JOURNALCTL} -k --since <window>; else dmesg")


def _plan_services(ctx: Context, plan: Plan) -> None:
    from collector.collectors import coredumps, services

    plan.commands += [
        "systemctl list-units --all --type=service (the platform's and its datastores' units)",
        "systemctl show <each such unit>",
        f"journalctl -u <each such unit> -n {services.JOURNAL_LINES} (at most {format_size(services.JOURNAL_BYTES)})",
        "coredumpctl list --since <window>",
    ]
    _file(plan, coredumps.CORE_PATTERN)


def _plan_proc(what: str) -> Callable[[Context, Plan], None]:
    def planned(_ctx: Context, plan: Plan) -> None:
        plan.notes.append(f"{what}: read from /proc and /sys, no command run")

    return planned


PLANNERS: Dict[str, Callable[[Context, Plan], None]] = {
    "logs": _plan_logs, "akd": _plan_akd, "config": _plan_config, "pidfiles": _plan_pidfiles,
    "datastores": _plan_datastores, "kernel": _plan_kernel, "services": _plan_services,
    "system": _plan_proc("system"), "processes": _plan_proc("processes"), "ports": _plan_proc("ports"),
    "network": _plan_proc("network (and /etc/resolv.conf, /etc/hosts, the datastores' names resolved)"),
}


def build_plan(request, encrypt: bool = False) -> Plan:
    """The plan of a run `request` (a collector.run.CollectRequest) would make."""
    from collector.run import _selected

    plan = Plan(options=_options(request, encrypt))
    deadline = Deadline(PLAN_SECONDS)
    for spec in _selected(request.options):
        plan.collectors.append((spec.name, spec.description))
        ctx = Context(basedir=request.basedir, basedir_source=request.basedir_source, catalog=request.catalog,
                      deadline=deadline, writer=None, options=request.options)
        planner = PLANNERS.get(spec.name)
        if planner is None:
            plan.notes.append(f"{spec.name}: no plan declared; it would run as described")
            continue
        try:
            planner(ctx, plan)
        except Exception as exc:  # a plan that fails is said, the rest goes on
            plan.notes.append(f"{spec.name}: could not be planned: {type(exc).__name__}: {exc}")
    return plan


def _options(request, encrypt: bool) -> List[Tuple[str, str]]:
    options = request.options
    handoff = request.handoff
    return [
        ("BASEDIR", f"{request.basedir} (from {request.basedir_source})"),
        ("output", f"{request.output_dir} ({request.fmt}{', encrypted' if encrypt else ''})"),
        ("case id", handoff.case_id or "-"),
        ("max size", format_size(handoff.max_size) if handoff.max_size else "-"),
        ("split", f"volumes of {format_size(handoff.split)}" if handoff.split else "-"),
        ("timeout", f"{request.timeout:g} s"),
        ("log tails", f"{options.log_lines} lines, {format_size(options.log_bytes)} each, "
                      f"{format_size(options.log_total_bytes)} in all"),
        ("since", iso_utc(options.since) if options.since is not None else "-"),
        ("datastore timeout", f"{options.datastore_timeout:g} s"),
        ("pseudonymized", ", ".join(request.pii_kinds) or "nothing"),
        ("own redaction patterns", str(len(request.extra_redact_patterns))),
        ("catalog", ", ".join(str(s) for s in request.catalog.sources)),
    ]


def plan_text(plan: Plan) -> str:
    lines = ["Dry run: nothing is collected or written.", "", "Options in force:"]
    width = max(len(name) for name, _value in plan.options)
    lines += [f"  {name:<{width}}  {value}" for name, value in plan.options]
    lines += ["", f"Collectors ({len(plan.collectors)}):"]
    lines += [f"  {name:<11} {what}" for name, what in plan.collectors]
    taken = sum(f["take"] or 0 for f in plan.files)
    lines += ["", f"Files read ({len(plan.files)}; about {format_size(taken)} taken before compression):"]
    for entry in plan.files:
        size = format_size(entry["size"]) if entry["size"] is not None else "-"
        take = format_size(entry["take"]) if entry["take"] else "nothing"
        note = f"  [{entry['note']}]" if entry["note"] else ""
        lines.append(f"  {entry['path']}  size {size}, takes {take}{note}")
    lines += ["", f"Commands run ({len(plan.commands)}):"] + [f"  {command}" for command in plan.commands]
    lines += ["", f"Datastore addresses contacted ({sum(1 for a in plan.addresses if a['address'])}):"]
    for point in plan.addresses:
        lines.append(f"  {point['name']:<22} {point['kind']:<10} {point['address'] or '-':<24} from {point['source']}"
                     + (f"  [{point['note']}]" if point["note"] else ""))
    if plan.notes:
        lines += ["", "Notes:"] + [f"  {note}" for note in plan.notes]
    return "\n".join(lines) + "\n"
