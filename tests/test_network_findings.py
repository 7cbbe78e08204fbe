"""The network analyzer's judgements.  A conntrack table near full, many retransmits or
an old listen overflow cannot be made on the test machine: each is written into a real
bundle's network.json (collected from a simulated host in this test's own network
namespace), beside its healthy twin.  The unreachable datastores of that bundle are real."""

from __future__ import annotations

import json

import pytest

from collector.analyzers.network import explain_unreachable
from conftest import collect_bundle
from triage_helpers import edit_json, findings_of, matching, one


@pytest.fixture
def bundle(host, tmp_path):
    _result, reader = collect_bundle(host, tmp_path / "out", only=("system", "ports", "datastores", "network"),
                                     cpu_sample_seconds=0.05, datastore_timeout=1)
    return reader


def _network_findings(reader, change=None, **thresholds):
    if change is not None:
        edit_json(reader, "network.json", change)
    return [f for f in findings_of(reader, **thresholds) if f["area"] == "network"]


def _set(section: str, **values):
    def change(data):
        data[section] = dict(data.get(section) or {}, **values)
    return change


def test_a_quiet_host_has_no_network_finding(bundle):
    data = bundle.json("network.json")
    assert data["counters"]["out_segs"] is not None and data["errors"] == []
    assert _network_findings(bundle) == []


@pytest.mark.parametrize("count,severity", [(79_000, None), (85_000, "warning"), (96_000, "critical")])
def test_conntrack_near_its_maximum(bundle, count, severity):
    found = _network_findings(bundle, _set("conntrack", count=count, max=100_000))
    if severity is None:
        assert not matching(found, "network.conntrack_high")
    else:
        finding = one(found, "network.conntrack_high")
        assert finding["severity"] == severity and f"{count // 1000} %" in finding["title"]


def test_conntrack_quiet_when_the_kernel_already_said_the_table_is_full(bundle):
    bundle.path("kernel.json").write_text(json.dumps({"events": [
        {"time": "2026-12-01T10:00:00Z", "kind": "conntrack_full",
         "message": "nf_conntrack: table full, dropping packet"}]}))
    found = _network_findings(bundle, _set("conntrack", count=99_000, max=100_000))
    assert not matching(found, "network.conntrack_high")


@pytest.mark.parametrize("retrans,out,expected", [
    (50_000, 1_000_000, True), (10_000, 1_000_000, False), (500, 10_000, False)])  # too few segments to judge
def test_retransmits(bundle, retrans, out, expected):
    found = _network_findings(bundle, _set("counters", retrans_segs=retrans, out_segs=out))
    assert bool(matching(found, "network.retransmits_high")) == expected


def test_retransmit_threshold_comes_from_the_catalog(bundle):
    change = _set("counters", retrans_segs=10_000, out_segs=1_000_000)  # 1 %
    assert matching(_network_findings(bundle, change, network_retransmit_percent_warning=0.5),
                    "network.retransmits_high")


@pytest.mark.parametrize("total,opens,severity", [(50, 100_000, "info"), (5_000, 10_000, "warning")])
def test_listen_overflows_since_boot_only(bundle, total, opens, severity):
    def change(data):
        data["counters"].update(listen_overflows=total, passive_opens=opens)
        data["counters_growth"].update(listen_overflows=0)
    finding = one(_network_findings(bundle, change), "network.listen_overflows")
    assert finding["severity"] == severity and "since boot" in finding["title"]
    assert "none while collecting" in finding["title"]


def test_dns_that_timed_out_is_a_warning(bundle):
    def change(data):
        data["resolution"] = [{"host": "db.example", "addresses": [], "error": "no answer within 3.0 s",
                               "timed_out": True, "duration": 3.0, "endpoints": ["mongodb_control"]}]
        data["resolv_conf"]["nameservers"] = ["10.0.0.53"]
    finding = one(_network_findings(bundle, change), "network.dns_failed", "db.example")
    assert finding["severity"] == "warning" and "mongodb_control" in finding["title"]
    assert finding["title"].startswith("db.example was not resolved in time (no answer within 3.0 s)")
    assert "10.0.0.53" in finding["hint"]


def test_no_default_route_matters_only_for_a_datastore_it_leaves_unreachable(bundle):
    def routes_only_lan(data):
        data["routes"] = [{"family": "ipv4", "destination": "10.0.0.0/24", "gateway": None, "interface": "eth0",
                           "metric": 0, "type": "unicast"}]
        data["default_routes"] = []
    assert not matching(_network_findings(bundle, routes_only_lan), "network.no_default_route")  # all on 127.0.0.1

    def remote_datastore(data):
        for endpoint in data["endpoints"]:
            if endpoint["name"] == "mongodb_control":
                endpoint.update(host="10.9.9.9", status="unreachable", error="no route to 10.9.9.9:27017 (No route)",
                                cause="no_route")
    edit_json(bundle, "datastores.json", remote_datastore)
    finding = one(_network_findings(bundle), "network.no_default_route")
    assert "10.9.9.9" in finding["title"]
    endpoint = next(e for e in bundle.json("datastores.json")["endpoints"] if e["name"] == "mongodb_control")
    assert explain_unreachable(bundle, endpoint) == (
        "no route reaches 10.9.9.9: the routing table has no route for it and no default route")


def _endpoint(**fields):
    record = {"name": "ssdb_hb", "kind": "ssdb", "host": "127.0.0.1", "port": 4420, "status": "unreachable",
              "error": "connection refused on 127.0.0.1:4420"}
    record.update(fields)
    return record


def test_explanations_from_the_error_and_the_facts(bundle):
    def lan(data):
        data["routes"] = [{"family": "ipv4", "destination": "10.0.0.0/24", "gateway": None, "interface": "eth0",
                           "metric": 0, "type": "unicast"},
                          {"family": "ipv4", "destination": "0.0.0.0/0", "gateway": "10.0.0.1", "interface": "eth0",
                           "metric": 0, "type": "unicast"}]
    edit_json(bundle, "network.json", lan)
    assert explain_unreachable(bundle, _endpoint(status="ok")) is None
    assert "nothing listens on port 4420 on this host" in explain_unreachable(bundle, _endpoint())
    remote = explain_unreachable(bundle, _endpoint(host="10.0.0.7", error="connection refused on 10.0.0.7:4420"))
    assert remote.startswith("10.0.0.7 refused the connection: nothing listens on port 4420 there")
    gone = explain_unreachable(bundle, _endpoint(host="10.0.0.7", error="no route to 10.0.0.7:4420 (No route)"))
    assert "routes 10.0.0.7 via interface eth0" in gone and "did not answer there" in gone
    dropped = explain_unreachable(bundle, _endpoint(
        host="203.0.113.9", error="no TCP connection to 203.0.113.9:4420 within 1 s (host down or port filtered)"))
    assert "routed via gateway 10.0.0.1 interface eth0" in dropped and "filtered" in dropped
    # accepted, then no answer: nothing in the network explains that
    assert explain_unreachable(bundle, _endpoint(status="timeout", error="no reply within 1 s (ping)")) is None


def test_the_recorded_cause_comes_before_the_error_words(bundle):
    # a message worded otherwise (another akdiag's, a translated one): the record's cause decides
    def lan(data):
        data["routes"] = [{"family": "ipv4", "destination": "0.0.0.0/0", "gateway": "10.0.0.1", "interface": "eth0",
                           "metric": 0, "type": "unicast"}]
    edit_json(bundle, "network.json", lan)
    refused = explain_unreachable(bundle, _endpoint(error="could not connect", cause="refused"))
    assert "nothing listens on port 4420 on this host" in refused
    dropped = explain_unreachable(bundle, _endpoint(host="203.0.113.9", error="could not connect", cause="timeout"))
    assert "filtered" in dropped
    assert explain_unreachable(bundle, _endpoint(error="could not connect", cause=None)) is None


def test_explanation_from_ports_alone_in_a_bundle_without_network_json(bundle):
    bundle.path("network.json").unlink()
    assert "nothing listens on port 4420 on this host (ports.json" in explain_unreachable(bundle, _endpoint())
    assert explain_unreachable(bundle, _endpoint(host="10.0.0.7", error="no route to 10.0.0.7:4420")) is None
    assert _network_findings(bundle) == []


def test_dns_failure_of_a_name_whose_datastore_answered_anyway_is_a_warning(bundle):
    def resolution(data):
        data["resolution"] = [{"host": "db.example", "addresses": [], "error": "Name or service not known (EAI -2)",
                               "duration": 0.01, "endpoints": ["mongodb_control"]}]
    edit_json(bundle, "network.json", resolution)
    assert one(findings_of(bundle), "network.dns_failed", "db.example")["severity"] == "critical"

    def answered(data):
        for endpoint in data["endpoints"]:
            if endpoint["name"] == "mongodb_control":
                endpoint.update(status="ok", error=None)
    edit_json(bundle, "datastores.json", answered)
    assert one(findings_of(bundle), "network.dns_failed", "db.example")["severity"] == "warning"
