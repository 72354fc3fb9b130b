"""The exporter's deep-view series (`--deep`): vxlan counters per node and overlay, conntrack, blocking rules,
kernel features, and the causes' findings among overlaytui_finding — from a frame built on the lab's recorded
readings; checked with the real promtool."""

from __future__ import annotations

import subprocess
from dataclasses import replace

from overlaytui.analysis.netio import aggregate
from overlaytui.exporter import ExportState
from overlaytui.frame import FrameBuilder
from overlaytui.sources.deepraw import Reading
from tests.fixtures.deep_fixtures import deep, snapshot
from tests.unit.test_exporter import promtool, samples, scrape, value


def deep_state(**variants) -> ExportState:
    frame = FrameBuilder(underlay=lambda addresses: {}).build(snapshot(), deep=deep(**variants))
    return ExportState(snapshot=frame.snapshot, up=True, findings=frame.findings, netio=aggregate(frame.snapshot),
                       collected_at=frame.taken_at, kernels=frame.kernels)


def test_vxlan_counters_per_node_and_overlay():
    found = samples(scrape(deep_state()))
    node1 = next(k for k in deep_state().kernels if k.hostname == "node1")
    frontend = next(s for s in node1.sandboxes if s.sandbox == "1-e3bphbaj1g").vxlan[0]
    assert value(found, "overlaytui_vxlan_packets_total", node="node1", network="frontend",
                 direction="receive") == frontend.rx_packets
    assert value(found, "overlaytui_vxlan_dropped_packets_total", node="node1", network="frontend",
                 direction="transmit") == frontend.tx_dropped
    assert value(found, "overlaytui_vxlan_errors_total", node="node3", network="secure", direction="receive") == 0
    assert {labels for (name, labels) in found if name == "overlaytui_vxlan_packets_total"
            and ("direction", "receive") in labels} == {
        (("direction", "receive"), ("network", net), ("node", node))
        for node in ("node1", "node2", "node3") for net in ("bench-net", "frontend", "ingress", "secure")}
    assert value(found, "overlaytui_conntrack_entries", node="node1") == 19
    assert value(found, "overlaytui_conntrack_max_entries", node="node1") == 262144
    assert value(found, "overlaytui_firewall_blocking_rules", node="node2") == 0  # Docker's u32 rule is not counted
    assert value(found, "overlaytui_kernel_feature", node="node3", feature="ip_vs") == 0
    assert value(found, "overlaytui_kernel_read", node="node2") == 1


def test_the_causes_are_findings_series():
    found = samples(scrape(deep_state(node2=("firewall-legacy",))))
    assert value(found, "overlaytui_firewall_blocking_rules", node="node2") == 5
    checks = {dict(labels)["check"] for (name, labels) in found if name == "overlaytui_finding"}
    assert {"firewall.blocked", "kernel.no_ipvs", "kernel.no_esp"} <= checks


def test_a_node_not_read_has_no_counters_and_says_so():
    state = deep_state()
    raw = deep()
    first = next(iter(raw))
    raw[first] = {"meta/error": Reading(1, "", "no reading within 40 s")}
    frame = FrameBuilder(underlay=lambda addresses: {}).build(snapshot(), deep=raw)
    found = samples(scrape(replace(state, kernels=frame.kernels)))
    assert value(found, "overlaytui_kernel_read", node="node1") == 0
    assert value(found, "overlaytui_conntrack_entries", node="node1") is None
    assert value(found, "overlaytui_kernel_feature", node="node1", feature="esp4") is None
    assert not [labels for (name, labels) in found if name == "overlaytui_vxlan_packets_total"
                and ("node", "node1") in labels]


def test_no_deep_view_no_deep_series():
    text = scrape(replace(deep_state(), kernels=()))
    assert "overlaytui_vxlan" not in text and "overlaytui_kernel_read" not in text


def test_promtool_accepts_the_deep_series(tmp_path):
    path = tmp_path / "scrape.txt"
    path.write_text(scrape(deep_state(node1=("stale-fdb",))))
    result = subprocess.run([promtool(), "check", "metrics"], stdin=path.open(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result
