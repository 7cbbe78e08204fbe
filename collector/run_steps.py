"""The judging steps of a collection run, each bounded by its own point in time: the
analysis (findings.json), the timeline (timeline.json) and the summary (summary.html).
Each reads the bundle folder only, computes in a thread of its own (left behind when
late), and is written by the caller through the bundle's writer."""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from collector import interrupt
from collector.bundle import schema
from collector.bundle.reader import BundleReader
from collector.bundle.writer import BundleWriter, BundleWriteError
from collector.context import Deadline

Log = Callable[..., None]  # run.ToolLog: log(message, show=True)


def phase_deadlines(deadline: Deadline, timeout: float) -> Dict[str, Deadline]:
    """Where each step of a run must end: the collectors first, then the analysis, the
    summary, and what is left for packing.  Each is a point in time, so a step that
    starts early has all the time the ones before it left."""
    reserve = min(15.0, timeout * 0.2)
    shares = {"collectors": reserve, "analysis": reserve * 0.6, "rendering": reserve * 0.2}
    return {step: deadline.child(max(1.0 if step == "collectors" else 0.0, deadline.remaining() - kept))
            for step, kept in shares.items()}


def run_bounded(step: str, work: Callable[[], Any], deadline: Deadline) -> Tuple[Any, Optional[str]]:
    """(what `work` returned, None), or (None, why it was cut) when it did not end by the
    deadline.  It runs in a thread of its own, which is left behind when late: it only
    computes, the caller writes."""
    if deadline.expired():
        return None, f"deadline reached before {step}"
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    interrupt.checkpoint()
    thread = threading.Thread(target=target, name=f"akdiag:{step}", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    interrupt.checkpoint()
    if thread.is_alive():
        return None, f"deadline reached during {step}"
    if "error" in box:
        raise box["error"]
    return box.get("value"), None


def analyze_into(staging: Path, writer: BundleWriter, thresholds, deadline: Deadline, log: Log) -> Optional[str]:
    """findings.json and timeline.json, unless the analysis does not end by its deadline
    (the reason then)."""
    from collector import analyzers

    log("analyzing the bundle")
    try:
        analysis, cut = run_bounded(
            "analysis", lambda: analyzers.analyze(BundleReader(staging).keep_parsed_json(), thresholds),
            deadline)  # each JSON member parsed once for all the analyzers, as `check` reads it
        if analysis is not None:
            analyzers.write_findings(analysis, writer)
        return cut or timeline_into(staging, writer, deadline, log)
    except BundleWriteError:
        raise
    except Exception as exc:  # the analyzers catch their own crashes; this is the last resort
        log(f"findings.json could not be written: {type(exc).__name__}: {exc}")
        log(traceback.format_exc(), show=False)
        return None


def timeline_into(staging: Path, writer: BundleWriter, deadline: Deadline, log: Log) -> Optional[str]:
    """timeline.json (collector/analyzers/timeline.py), within the analysis's deadline."""
    from collector.analyzers.timeline import build_timeline

    try:
        timeline, cut = run_bounded("the timeline", lambda: build_timeline(BundleReader(staging)), deadline)
    except Exception as exc:  # recorded; the summary says the timeline is missing
        log(f"{schema.TIMELINE} could not be built: {type(exc).__name__}: {exc}")
        log(traceback.format_exc(), show=False)
        return None
    if timeline is not None:
        writer.write_json(schema.TIMELINE, timeline, "analyzers")
    return cut


def render_into(staging: Path, writer: BundleWriter, deadline: Deadline, log: Log) -> Optional[str]:
    """summary.html, unless rendering does not end by its deadline (the reason then)."""
    from collector import report

    log("writing the summary")
    try:
        html, cut = run_bounded("rendering", lambda: report.render_bundle(BundleReader(staging)), deadline)
        if html is not None:
            writer.write_text(schema.SUMMARY_HTML, html)
        return cut
    except BundleWriteError:
        raise
    except Exception as exc:  # a report that cannot be rendered is recorded, the bundle stays
        log(f"summary.html could not be rendered: {type(exc).__name__}: {exc}")
        log(traceback.format_exc(), show=False)
        return None
