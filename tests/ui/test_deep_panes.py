"""Topology and Networks show, per node and overlay, what the deep view saw below the overlay (--deep): the vxlan
packets, the cause found there (FDB, firewall...), or "— not read"; and say when the kernels were not read. A
frame built from the lab's recorded readings (tests/fixtures/deep), handed to the app as the producer would."""

from __future__ import annotations

import time

from overlaytui.app import FrameReady
from overlaytui.frame import FrameBuilder
from overlaytui.sources.deepraw import Reading
from tests.fixtures.deep_fixtures import deep, node_ids, snapshot
from tests.ui.helpers import Clock, make_app, screen_text

HEALTHY = {f"node{n}": ("healthy-kernel", f"esp-states-node{n}") for n in (1, 2, 3)}


async def wait_for_frame(app, pilot, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while getattr(app, "frame", None) is None:
        assert time.monotonic() < deadline, "the app built no frame"
        await pilot.pause(0.05)


def overlay_rows(screen: str, vni: str) -> list[str]:
    lines = screen.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f" {vni} · "))
    return lines[at:at + 2]


def row(screen: str, name: str) -> str:
    return next(line for line in screen.splitlines() if line.startswith(f" {name} "))


def frame_of(raw=None):
    return FrameBuilder(underlay=lambda addresses: {}).build(snapshot(), deep=raw)


async def show(frame, key: str, size=(220, 50)) -> str:
    app = make_app("healthy", clock=Clock(snapshot().taken_at - 60))  # the demo's frame older than ours
    async with app.run_test(size=size) as pilot:
        await wait_for_frame(app, pilot)  # the app's own first frame (the demo's) comes first: then ours
        app.on_frame_ready(FrameReady(frame))
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        return screen_text(app)


async def test_topology_shows_the_vxlan_counters_and_the_causes_under_each_node():
    raw = deep(**{**HEALTHY, "node1": (*HEALTHY["node1"], "stale-fdb"), "node2": (*HEALTHY["node2"],
                                                                                     "firewall-legacy")})
    raw[node_ids()["node3"]] = {"meta/error": Reading(1, "", "no reading within 40 s")}
    screen = await show(frame_of(raw), "1")
    frontend = overlay_rows(screen, "4098")  # VNI line, then the line below the bus
    assert "✖ FDB" in frontend[1] and "✖ firewall" in frontend[1] and "— not read" in frontend[1]
    assert frontend[1].index("✖ FDB") < frontend[1].index("✖ firewall") < frontend[1].index("— not read")
    bench = overlay_rows(screen, "4097")
    assert "✓ 0↓0↑" in bench[1] and "✖ firewall" in bench[1]  # node1's FDB there is right; the lab sent nothing
    assert "below the bus (--deep)" in screen


async def test_topology_without_the_deep_view_says_so():
    screen = await show(frame_of(None), "1")
    assert "below the bus" not in screen and "↓" not in screen and "not read" not in screen


async def test_networks_names_the_cause_per_node_and_the_nodes_not_read():
    raw = deep(**{**HEALTHY, "node1": (*HEALTHY["node1"], "stale-fdb")})
    raw[node_ids()["node3"]] = {"meta/error": Reading(1, "", "no reading within 40 s")}
    screen = await show(frame_of(raw), "5", size=(260, 40))
    frontend = row(screen, "frontend")
    assert "✖ node1: FDB" in frontend and "✓ node2" in frontend
    assert "— node3 (not read: no reading within 40 s)" in frontend
    assert "✓ node1, node2" in row(screen, "secure") and "✓ node1, node2" in row(screen, "bench-net")
    assert " — " in row(screen, "bridge")


async def test_the_lab_kernels_name_no_esp4_on_the_encrypted_overlay():
    screen = await show(frame_of(deep()), "5", size=(260, 40))
    secure = row(screen, "secure")
    assert "✖ node1: no esp4" in secure and "✖ node3: no esp4" in secure
    assert "no esp4" not in row(screen, "frontend")


async def test_networks_without_the_deep_view_has_no_column_for_it():
    screen = await show(frame_of(None), "5", size=(260, 40))
    assert "below (--deep)" not in screen and " frontend " in screen


async def test_a_part_not_read_is_no_verdict_on_it():
    raw = deep(**HEALTHY)
    for key in ("host/iptables-legacy-save", "host/iptables-nft-save", "host/nft-ruleset"):
        raw[node_ids()["node2"]][key] = Reading(127, "", "not found", missing=True)
    frame = frame_of(raw)
    topology = await show(frame, "1")
    assert "✓ 0↓0↑ ?" in overlay_rows(topology, "4098")[1] and "below the bus" in topology
    networks = await show(frame, "5", size=(260, 40))
    assert "✓ node1, node2 (firewall not read), node3" in row(networks, "frontend")
