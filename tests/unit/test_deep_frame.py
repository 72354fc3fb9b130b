"""The deep view in a frame: the builder parses the reader's raw readings (keyed by node id or hostname), keeps the
last round's views between rounds and the round before for the counters' rates; the frame's kernel views go into
`snapshot --json` and into recordings (and come back from them)."""

from __future__ import annotations

import json
from dataclasses import replace

from overlaytui.analysis.deep import DEEP_CHECKS
from overlaytui.export import snapshot_to_dict
from overlaytui.frame import FrameBuilder, node_of
from overlaytui.recording import RecordedFrame, Recorder, load
from overlaytui.sources.deepraw import Reading
from tests.fixtures.deep_fixtures import NODES, deep, node_ids, raw, snapshot


def builder() -> FrameBuilder:
    return FrameBuilder(underlay=lambda addresses: {})


def bumped(node: str, sandbox: str, dropped: int, packets: int) -> dict[str, Reading]:
    """A node's readings with its sandbox's vxlan counters moved on (rx dropped and rx packets)."""
    readings = raw(node, "healthy-kernel", f"esp-states-{node}")
    links = json.loads(readings[f"sbx/{sandbox}/ip-link"].out)
    for link in links:
        if link.get("linkinfo", {}).get("info_kind") == "vxlan":
            link["stats64"]["rx"]["dropped"] += dropped
            link["stats64"]["rx"]["packets"] += packets
    readings[f"sbx/{sandbox}/ip-link"] = Reading(0, json.dumps(links))
    return readings


def test_the_frame_holds_every_nodes_kernel_view_and_the_deep_findings():
    frame = builder().build(snapshot(), deep=deep())
    assert [(k.hostname, k.node_id) for k in frame.kernels] == [(n, node_ids()[n]) for n in NODES]
    assert {f.check for f in frame.deep_findings} == {"kernel.no_ipvs", "kernel.no_esp"}
    assert set(frame.deep_findings) <= set(frame.findings)
    assert frame.underlay_mtus == {"10.231.0.1": 1500, "10.231.0.2": 1500, "10.231.0.3": 1500}
    assert frame.kernel(node_ids()["node2"]).hostname == "node2"
    assert "the kernels of 3 nodes read (--deep)" in frame.checked()


def test_without_the_deep_view_the_frame_has_none():
    frame = builder().build(snapshot())
    assert frame.kernels == () and frame.deep_findings == () and "--deep" not in frame.checked()


def test_the_readers_keys_hostnames_and_shared_hostnames():
    snap = snapshot()
    ids = node_ids()
    assert node_of("node2", snap) == (ids["node2"], "node2")
    assert node_of(ids["node3"], snap) == (ids["node3"], "node3")
    assert node_of(f"node1 ({ids['node1'][:12]})", snap) == (ids["node1"], "node1")
    engine = next(e for e in snap.engines if e.node_id == ids["node3"])
    assert node_of(engine.endpoint, snap) == (ids["node3"], "node3")
    assert node_of("[b]ghost\x1b[2J", snap) == ("", "[b]ghost\x1b[2J")
    frame = builder().build(snap, deep={"node1": raw("node1"), "elsewhere": raw("node2")})
    assert [(k.node_id, k.hostname) for k in frame.kernels] == [("", "elsewhere"), (ids["node1"], "node1")]


def test_a_round_stays_until_the_next_and_drops_are_rates_between_rounds():
    build = builder()
    ids = node_ids()
    first_round = {ids[n]: raw(n, "healthy-kernel", f"esp-states-{n}") for n in NODES}
    first = build.build(snapshot(), deep=first_round)
    assert first.deep_findings == ()
    later = replace(snapshot(), taken_at=snapshot().taken_at + 30)
    kept = build.build(later)  # no new round: the same views
    assert kept.kernels is first.kernels
    second_round = {**first_round, ids["node2"]: bumped("node2", "1-e3bphbaj1g", 300, 5000)}
    second = build.build(later, deep=second_round)
    [drops] = second.deep_findings
    assert (drops.check, drops.subject) == ("vxlan.drops", "node2")
    assert "frontend vxlan0: +300 rx dropped in 30 s (10.0/s) beside 5000 packets" in drops.evidence
    assert build.build(later, deep=second_round).deep_findings == second.deep_findings  # same round: same rate
    build.reset()  # a seek: no rate across it
    assert build.build(later, deep={**second_round}).deep_findings == ()


def test_snapshot_json_carries_the_kernel_views():
    frame = builder().build(snapshot(), deep=deep())
    data = json.loads(json.dumps(snapshot_to_dict(frame.snapshot, frame.kernels)))
    node1 = data["kernels"][0]
    assert node1["hostname"] == "node1" and node1["links"][0]["mtu"] == 1500
    assert node1["conntrack"] == {"count": 19, "max": 262144, "unavailable": "", "used": 19 / 262144}
    assert node1["esp"]["state"] == "no" and node1["firewall"]["backend"] == "iptables-nft"
    assert {s["sandbox"] for s in node1["sandboxes"]} >= {"1-e3bphbaj1g", "1-fg2enahkgi"}
    assert "kernels" not in snapshot_to_dict(frame.snapshot)


def test_a_recording_carries_the_kernel_views(tmp_path):
    build = builder()
    first = build.build(snapshot(), deep=deep())
    later = replace(snapshot(), taken_at=snapshot().taken_at + 5)
    second = build.build(later)  # the same views: the section is not written again
    path = tmp_path / "deep.jsonl"
    with Recorder(path, source="lab") as recorder:
        for frame in (first, second):
            recorder.write(RecordedFrame(frame.snapshot, frame.probes, frame.underlay_mtus, frame.kernels))
    recording = load(path)
    assert recording.frame(0).kernels == first.kernels
    assert recording.frame(1).kernels == first.kernels
    replayed = builder().build(recording.frame(1).snapshot, kernels=recording.frame(1).kernels)
    assert {f.check for f in replayed.findings if f.check in DEEP_CHECKS} == {"kernel.no_ipvs", "kernel.no_esp"}
    lines = path.read_text().splitlines()
    assert '"kernels"' in lines[1] and '"kernels"' not in lines[2]  # unchanged: not in the delta


def test_a_recording_without_kernel_views_reads_as_none(tmp_path):
    path = tmp_path / "old.jsonl"
    with Recorder(path, source="lab") as recorder:
        recorder.write(RecordedFrame(snapshot(), builder().build(snapshot()).probes))
    assert load(path).frame(0).kernels == ()
