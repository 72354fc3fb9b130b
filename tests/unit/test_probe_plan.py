"""The probe plan (issue 26): the full mesh while it fits a round's budget, else a rotation of source nodes that
measures every pair at least once every `every` rounds, the selected node first; and a session's coverage with it
("pairs measured this round / in the last K rounds", never an older measurement as a current one)."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from overlaytui.model import Coverage, PairGap, natural_sorted
from overlaytui.probes.plan import DEFAULT_ROUND_PAIRS, RoundPlan, plan_round, sources_per_round
from overlaytui.probes.session import ProbeSettings
from tests.unit.test_probe_windows import HOSTS, NET, Lab


def hosts(n: int) -> list[str]:
    return [f"node{i}" for i in range(1, n + 1)]


def rounds(nodes, count: int, budget: int = DEFAULT_ROUND_PAIRS, focus=None, last=None) -> list[RoundPlan]:
    plans = []
    for _ in range(count):
        plans.append(plan_round(nodes, last, budget, focus))
        last = plans[-1].last
    return plans


# ------------------------------------------------------------------------------------------- the plan


@pytest.mark.parametrize("n", [0, 1, 2, 3, 9, 24, 25])
def test_small_clusters_are_the_full_mesh_every_round(n):
    plan = plan_round(hosts(n))
    assert plan.full and plan.every == 1 and plan.last is None and plan.nodes == n
    assert plan.sources == tuple(hosts(n))
    assert len(plan.pairs(hosts(n))) == n * (n - 1)  # 24 nodes: 552 pairs, 25: 600 — the budget


def test_200_nodes_rotate_three_sources_a_round_and_cover_every_pair_in_67_rounds():
    nodes = hosts(200)
    assert sources_per_round(200, DEFAULT_ROUND_PAIRS) == 3  # 3 x 199 = 597 pairs <= 600
    plans = rounds(nodes, 67)
    assert {p.every for p in plans} == {67} and not plans[0].full
    assert plans[0].sources == ("node1", "node2", "node3") and plans[1].sources == ("node4", "node5", "node6")
    assert all(len(p.pairs(nodes)) <= DEFAULT_ROUND_PAIRS for p in plans)
    covered = {pair for p in plans for pair in p.pairs(nodes)}
    assert len(covered) == 200 * 199
    assert plans[66].sources == ("node199", "node200", "node1")  # the ring wraps


@given(n=st.integers(2, 60), budget=st.integers(1, 4000), start=st.integers(0, 59), windows=st.integers(1, 3))
def test_every_pair_is_measured_within_every_window_of_every_rounds(n, budget, start, windows):
    nodes = hosts(n)
    first = plan_round(nodes, None, budget)
    every = first.every
    assert every == math.ceil(n / sources_per_round(n, budget))
    plans = rounds(nodes, every * (windows + 1), budget, last=nodes[start % n])
    for i in range(len(plans) - every + 1):
        window = plans[i:i + every]
        assert {src for p in window for src in p.sources} == set(nodes), (i, every)
    assert all(len(p.pairs(nodes)) <= max(budget, n - 1) for p in plans)  # one source's row at the least


def test_the_selected_node_comes_first_every_round_without_delaying_the_rotation():
    nodes = hosts(200)
    plain, focused = rounds(nodes, 70), rounds(nodes, 70, focus="node150")
    for a, b in zip(plain, focused, strict=True):
        assert b.sources[0] == "node150"
        assert [s for s in b.sources if s != "node150"] == [s for s in a.sources if s != "node150"]
        assert b.last == a.last and b.every == a.every
    assert plan_round(hosts(3), focus="node2").sources == ("node2", "node1", "node3")  # the full mesh too
    assert plan_round(hosts(3), focus="gone").sources == ("node1", "node2", "node3")  # not a node: no focus


def test_deterministic_whatever_the_order_of_the_nodes():
    nodes = hosts(120)
    shuffled = nodes[::-1][60:] + nodes[::-1][:60]
    assert rounds(nodes, 10, focus="node7") == rounds(shuffled, 10, focus="node7")
    assert [p.sources for p in rounds(["b", "a10", "a9", "a10"], 3, budget=1)] == [("a9",), ("a10",), ("b",)]


def test_nodes_joining_and_leaving_keep_the_guarantee():
    nodes = hosts(100)
    plans = rounds(nodes, 5)  # 6 sources a round (600 // 99), every 17 rounds
    last = plans[-1].last
    assert last == "node30"
    joined = [*nodes, "node15b", "node300"]  # one before the cursor, one after
    left = [n for n in joined if n not in ("node31", "node40")]  # the next ones in line left
    after = rounds(left, 20, last=last)
    assert after[0].sources[0] == "node32"  # continues after the last source, by name
    every = after[0].every
    seen = [i for i, p in enumerate(after) if "node15b" in p.sources]
    assert seen and seen[0] < every  # the node that joined behind the cursor: within one turn of the ring
    assert all(not {"node31", "node40"} & set(p.sources) for p in after)
    window = after[:every]
    assert {s for p in window for s in p.sources} == set(left)
    gone = plan_round(left, "node31", DEFAULT_ROUND_PAIRS)  # the previous last source left the cluster
    assert gone.sources[0] == "node32"


def test_no_budget_is_the_full_mesh():
    assert plan_round(hosts(200), budget=0).full
    assert sources_per_round(200, -1) == 200 and sources_per_round(1, 600) == 1 and sources_per_round(0, 1) == 1


# ----------------------------------------------------------------------------- a session with the plan


def rotating_lab(monkeypatch, kinds=("ping",)) -> Lab:
    """Three nodes with a budget of two pairs a round: one source a round, every pair within 3 rounds."""
    lab = Lab(monkeypatch, kinds=kinds)
    lab.session.settings = ProbeSettings(kinds=kinds, count=10, interval=0.2, round_pairs=2)
    return lab


def test_a_rotating_round_measures_one_source_and_coverage_says_so(monkeypatch):
    lab = rotating_lab(monkeypatch)
    results = lab.round(1_000.0)
    assert sorted((r.src_node, r.dst_node) for r in results) == [("node1", "node2"), ("node1", "node3")]
    [cov] = lab.session.coverage(NET)
    assert (cov.expected, cov.measured, cov.this_round, cov.every, cov.complete) == (6, 2, 2, 3, False)
    assert {g.reason for g in cov.missing} == {"not probed yet: each pair is probed once every 3 rounds"}
    assert cov.summary() == "ping 2 this round, 2 of 6 pairs in the last 3 rounds (each pair every 3 rounds)"
    lab.round(1_010.0)
    lab.round(1_020.0)
    [cov] = lab.session.coverage(NET)
    assert (cov.measured, cov.this_round, cov.complete) == (6, 2, True)
    assert [s for s, *_ in lab.sweeps] == ["node1", "node2", "node3"]
    lab.round(1_030.0)  # node1 again: the others' pairs are still within the last 3 rounds
    [cov] = lab.session.coverage(NET)
    assert (cov.measured, cov.complete) == (6, True)
    assert lab.session.every == 3


def test_a_pair_whose_latest_turn_failed_is_not_measured_though_an_older_one_is_in_the_window(monkeypatch):
    lab = rotating_lab(monkeypatch)
    for at in (1_000.0, 1_010.0, 1_020.0):
        lab.round(at)
    lab.pings[("node2", "node1")] = "exec on node2: EOF"
    lab.pings[("node2", "node3")] = "exec on node2: EOF"
    lab.round(1_030.0)  # node1
    lab.round(1_040.0)  # node2: fails
    [cov] = lab.session.coverage(NET)
    assert cov.measured == 4
    assert cov.missing == (PairGap("node2", "node1", "exec on node2: EOF"),
                           PairGap("node2", "node3", "exec on node2: EOF"))


def test_a_measurement_older_than_every_rounds_says_how_old(monkeypatch):
    lab = Lab(monkeypatch)  # the full mesh: every = 1
    lab.round(1_000.0)
    lab.session._agents = {NET: [t for t in lab.session._agents[NET] if t.node_id != "id-node3"]}
    lab.session._agent_failures = {NET: {}}
    lab.round(1_010.0)
    [cov] = lab.session.coverage(NET)
    assert (cov.measured, cov.this_round, cov.every) == (2, 2, 1)
    reasons = {(g.src_node, g.dst_node): g.reason for g in cov.missing}
    assert reasons[("node3", "node1")].startswith("no probe agent on node3")  # why it is not probed now


def test_the_selected_node_probes_first_in_every_round(monkeypatch):
    lab = rotating_lab(monkeypatch)
    lab.session.focus = "node3"
    for at in (1_000.0, 1_010.0, 1_020.0):
        lab.round(at)
    assert [s for s, *_ in lab.sweeps] == ["node3", "node1", "node3", "node2", "node3"]
    [cov] = lab.session.coverage(NET)
    assert cov.complete and cov.this_round == 2  # round 3: node3's turn in the rotation too, probed once


def test_jobs_follow_the_plans_sources_in_order(monkeypatch):
    lab = Lab(monkeypatch)
    jobs = lab.session.jobs(lab.snap, sources=("node3", "node1"))
    assert [j.pairs[0][0] for j in jobs] == ["node3", "node1"]
    assert {j.pairs for j in lab.session.jobs(lab.snap, sources=())} == set()


def test_three_nodes_with_the_default_budget_are_the_full_mesh(monkeypatch):
    lab = Lab(monkeypatch)
    results = lab.round(1_000.0)
    assert len(results) == 6 and lab.session.every == 1
    assert lab.session.coverage() == (Coverage(NET, "ping", 6, 6, (), every=1, this_round=6),)
    assert lab.session.coverage()[0].summary() == "ping 6 of 6 pairs"
    assert natural_sorted(HOSTS) == list(HOSTS)


def test_a_round_in_progress_keeps_the_previous_rounds_pairs(monkeypatch):
    lab = Lab(monkeypatch)
    lab.round(1_000.0)
    seen = []

    def halfway(result):
        seen.append(lab.session.coverage(NET)[0])
    asyncio.run(lab.session.run_round(halfway))
    # while round 2 runs, round 1's measurements still count; the round's own count climbs
    assert all(c.measured == 6 for c in seen)
    assert [c.this_round for c in seen] == list(range(1, 7))


def test_a_rotating_coverage_is_said_so_in_the_matrix_and_the_json():
    from overlaytui.commands.probe import coverage_dict, matrix_text
    from tests.unit.test_probe_windows import snapshot

    rotating = Coverage(NET, "ping", 6, 2, (PairGap("node2", "node1", "not probed yet"),) * 4, every=3, this_round=2)
    assert coverage_dict(rotating)["every_rounds"] == 3 and coverage_dict(rotating)["measured_this_round"] == 2
    assert "every_rounds" not in coverage_dict(Coverage(NET, "ping", 6, 6, (), this_round=6))  # the full mesh
    text = matrix_text([], snapshot(), [rotating])
    assert "  ping: 2 of 6 pairs measured in the last 3 rounds (each pair every 3 rounds) (PARTIAL)" in text


def test_throughput_every_nth_cycle_reaches_every_source_and_its_window_spans_it(monkeypatch):
    """iperf runs in one cycle of the plan out of iperf_every_rounds (each of its rounds): every Nth round alone
    would never give some sources a turn with it."""
    from overlaytui.model import ProbeResult
    from overlaytui.probes import runner

    lab = rotating_lab(monkeypatch, kinds=("iperf",))
    lab.session.settings = ProbeSettings(kinds=("iperf",), count=10, interval=0.2, round_pairs=2,
                                         iperf_every_rounds=2)
    monkeypatch.setattr(runner, "throughput", lambda api, container, network, src, dst, address, seconds:
                        ProbeResult("iperf", network, src, dst, lab.clock.now, bits_per_second=1e9))
    by_round = []
    for i in range(9):
        by_round.append(sorted({r.src_node for r in lab.round(1_000.0 + 10 * i)}))
        if i == 5:  # rounds 4-6 ran none: the pairs of rounds 1-3 are within the window of 3 x 2 + 2 rounds
            [cov] = lab.session.coverage(NET)
            assert (cov.every, cov.measured, cov.this_round, cov.complete) == (8, 6, 0, True)
    assert by_round == [["node1"], ["node2"], ["node3"], [], [], [], ["node1"], ["node2"], ["node3"]]


def test_an_mtu_sweeps_bound_grows_with_its_batches_of_destinations(monkeypatch):
    """One exec searches every destination, MTU_WORKERS at a time: the bound is a worker's share at worst."""
    from dataclasses import replace

    from overlaytui.probes import runner

    lab = Lab(monkeypatch, kinds=("mtu",))
    lab.session.settings = replace(lab.session.settings, timeout=4.0)
    [job, *_] = lab.session.jobs(lab.snap)
    assert job.timeout == runner.mtu_seconds(2, 1350) + 15 == runner.mtu_search_seconds(1350) + 15  # 1 batch
    lab.session.settings = replace(lab.session.settings, timeout=600.0)
    assert lab.session.jobs(lab.snap)[0].timeout == 600.0  # the scheduler's bound when it is longer
