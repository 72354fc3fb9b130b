"""The probe plan on the real lab (issue 26): with the default budget the 3-node lab is the full mesh every round;
with a budget of two pairs a round the same session rotates one source a round through the real agents, and
its coverage says exactly what the last rounds measured."""

from __future__ import annotations

import asyncio

import pytest

from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.probes.agent import LAB_IMAGE
from overlaytui.probes.session import ProbeSession, ProbeSettings
from overlaytui.sources.swarm import DockerSwarmSource
from tests.helpers import Lab

NET = "plan-net"
QUICK = {"count": 10, "interval": 0.05}


@pytest.fixture(scope="module")
def overlay(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", NET)
    yield lab
    lab.docker("node1", "network", "rm", NET, check=False)


async def rounds(count: int, focus: str | None = None, **settings) -> list[tuple[list, tuple]]:
    """`count` rounds of one session: each round's results and the coverage after it."""
    source = DockerSwarmSource(lab_endpoints(), stats=False, events=False)
    await source.start()
    session = ProbeSession(source.snapshot, ProbeSettings(kinds=("ping", "mtu"), networks=(NET,), image=LAB_IMAGE,
                                                          **QUICK, **settings))
    session.focus = focus
    found = []
    try:
        await session.start()
        await source.poll()
        for _ in range(count):
            results = list(await session.run_round())
            found.append((results, session.coverage(NET)))
    finally:
        await session.close()
        await source.close()
    return found


def test_the_default_plan_is_the_full_mesh_on_the_lab(overlay):
    [(results, coverage)] = asyncio.run(rounds(1))
    assert sorted({(r.src_node, r.dst_node) for r in results}) == [
        (s, d) for s in ("node1", "node2", "node3") for d in ("node1", "node2", "node3") if s != d]
    assert all(not r.error for r in results), [r.error for r in results if r.error]
    assert [(c.kind, c.measured, c.expected, c.every, c.this_round) for c in coverage] == [
        ("ping", 6, 6, 1, 6), ("mtu", 6, 6, 1, 6)]


def test_a_small_budget_rotates_one_source_a_round_and_covers_every_pair_in_three(overlay):
    found = asyncio.run(rounds(4, round_pairs=2))  # 2 pairs a round: one source (to the two others)
    sources = [sorted({r.src_node for r in results}) for results, _ in found]
    assert sources == [["node1"], ["node2"], ["node3"], ["node1"]]
    for results, _ in found:
        assert all(not r.error for r in results), [r.error for r in results if r.error]
    first = found[0][1]
    assert [(c.measured, c.this_round, c.every) for c in first] == [(2, 2, 3), (2, 2, 3)]
    assert {g.reason for c in first for g in c.missing} == {"not probed yet: each pair is probed once every 3 rounds"}
    for _results, coverage in found[2:]:
        assert all(c.complete and c.measured == 6 for c in coverage), coverage


def test_the_selected_node_is_probed_first_in_every_round(overlay):
    found = asyncio.run(rounds(2, focus="node3", round_pairs=2))
    assert [sorted({r.src_node for r in results}) for results, _ in found] == [["node1", "node3"],
                                                                               ["node2", "node3"]]
