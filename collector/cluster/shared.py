"""Host findings that are the same on several hosts (the same id, subject, severity and
title: a datastore every host fails to reach, one setting wrong everywhere) are shown once
with the list of their hosts, rather than once per host."""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Tuple

from collector.analyzers import sort_findings


def _key(finding: dict) -> tuple:
    return (finding.get("id"), finding.get("subject"), finding.get("severity"), finding.get("title"))


def split_shared(findings_by_host: Dict[str, List[dict]]) -> Tuple[List[dict], Dict[str, List[dict]]]:
    """(shared, own): `shared` holds each finding found on two hosts or more once, with
    `hosts` (in the given order) and `every_host` (true when every host given has it);
    `own` each host's other findings."""
    hosts_of: "OrderedDict[tuple, List[str]]" = OrderedDict()
    first: Dict[tuple, dict] = {}
    for host, findings in findings_by_host.items():
        for finding in findings:
            key = _key(finding)
            names = hosts_of.setdefault(key, [])
            if host not in names:
                names.append(host)
            first.setdefault(key, finding)
    common = {key for key, names in hosts_of.items() if len(names) > 1}
    shared = [dict(first[key], hosts=hosts_of[key], every_host=len(hosts_of[key]) == len(findings_by_host))
              for key in hosts_of if key in common]
    own = {host: [f for f in findings if _key(f) not in common] for host, findings in findings_by_host.items()}
    return sort_findings(shared), own


def hosts_text(finding: dict) -> str:
    """"every host (app1, app2, db1)" or "app1, db1"."""
    names = ", ".join(finding.get("hosts") or [])
    return f"every host ({names})" if finding.get("every_host") else names
