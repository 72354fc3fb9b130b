"""The loss overview beyond the matrix (analysis/lossmap.py) and the natural order of names (model.natural_key)."""

from __future__ import annotations

import asyncio
import random

import pytest

from overlaytui.analysis.lossmap import (
    RANK,
    index_results,
    judge_pair,
    overview,
)
from overlaytui.analysis.thresholds import LossThresholds, Verdict, judge_loss
from overlaytui.model import Coverage, PairGap, PairWindow, ProbeResult, natural_key, natural_sorted, natural_tuple
from overlaytui.sources.demo import DemoSource

T = 1_800_000_000.0


def judge(lost: int, sent: int) -> Verdict:
    return judge_loss(lost, sent, LossThresholds())


def ping(src: str, dst: str, sent: int = 1000, received: int | None = None, error: str = "") -> ProbeResult:
    return ProbeResult("ping", "net", src, dst, T, sent=0 if error else sent,
                       received=0 if error else (sent if received is None else received), rtt_avg_ms=0.3, error=error)


def mtu(src: str, dst: str, path: int | None = 1450, error: str = "") -> ProbeResult:
    return ProbeResult("mtu", "net", src, dst, T, path_mtu=None if error else path, error=error)


def window(src: str, dst: str, recent: tuple[int, int], total: tuple[int, int]) -> PairWindow:
    return PairWindow("net", src, dst, 100, 100, recent[0], recent[1], total[0], total[1], 300.0)


# ------------------------------------------------------------------------------------------ natural order

def test_natural_order_counts_like_people():
    names = ["node10", "node2", "node1", "Node3", "node100", "node02", "web", "node", "svc-9", "svc-10", ""]
    assert natural_sorted(names) == ["", "node", "node1", "node02", "node2", "Node3", "node10", "node100",
                                     "svc-9", "svc-10", "web"]


def test_natural_order_of_mixed_and_hostile_names():
    long = "n" + "9" * 5000  # int() of this would raise (Python's int max str digits); the key never calls it
    names = [long, "n1", "n1a", "n1.2", "n01", "n", "a1b2", "a1b10", "\x1b[2J", "[red]n1"]
    ordered = natural_sorted(names)
    assert ordered.index("n1") < ordered.index("n1a") < ordered.index(long)
    assert ordered.index("a1b2") < ordered.index("a1b10")
    assert ordered.index("n01") < ordered.index("n1")  # equal numbers: the name breaks the tie, stably
    random.Random(3).shuffle(names)
    assert natural_sorted(names) == ordered


def test_natural_tuple_orders_pairs_part_by_part():
    pairs = [("node10", "node2"), ("node2", "node10"), ("node2", "node9"), ("net", 3)]
    assert sorted(pairs, key=natural_tuple) == [("net", 3), ("node2", "node9"), ("node2", "node10"),
                                                ("node10", "node2")]
    assert natural_key("x2") < natural_key("x10")


def test_the_demo_and_its_snapshot_are_in_natural_order():
    source = DemoSource("healthy", scale=(12, 12, 0), clock=lambda: T)
    asyncio.run(source.poll())
    snap = source.snapshot()
    hostnames = [n.hostname for n in snap.nodes]
    assert hostnames == [f"node{i}" for i in range(1, 13)]
    services = [s.name for s in snap.services]
    assert services == natural_sorted(services) and services.index("svc-009") < services.index("svc-010")


# ------------------------------------------------------------------------------------------ one pair

def test_a_pair_is_judged_on_its_recent_window():
    state = judge_pair("a", "b", ping("a", "b", 100, 100), None, window("a", "b", (3000, 2970), (40000, 39970)),
                       None, 1450, judge)
    assert state.loss_pct == pytest.approx(1.0)
    assert state.verdict is Verdict.BAD and state.rank == RANK[Verdict.BAD]


def test_a_quiet_recent_window_is_judged_on_everything_since_start_too():
    # 0 of 3000 cannot show "good" (that takes ~30,000 loss-free packets); 0 of 40,000 since start can
    quiet = judge_pair("a", "b", ping("a", "b"), None, window("a", "b", (3000, 3000), (40000, 40000)), None, 1450,
                       judge)
    assert quiet.verdict is Verdict.GOOD and quiet.loss_pct == 0.0
    # an old loss does not paint a quiet pair: the recent window's verdict stands when it is the better one
    healed = judge_pair("a", "b", ping("a", "b"), None, window("a", "b", (3000, 3000), (40000, 39000)), None, 1450,
                        judge)
    assert healed.verdict is Verdict.ACCEPTABLE
    # a window with losses is never softened by a long clean record
    lossy = judge_pair("a", "b", ping("a", "b"), None, window("a", "b", (3000, 2999), (400000, 399999)), None,
                       1450, judge)
    assert lossy.verdict is judge(1, 3000)


def test_without_a_window_the_latest_result_counts():
    state = judge_pair("a", "b", ping("a", "b", 200, 150), None, None, None, 1450, judge)
    assert state.loss_pct == 25.0 and state.verdict is Verdict.BAD and state.rtt_ms == 0.3


@pytest.mark.parametrize(("result", "gap", "reason"), [
    (None, None, "no result yet"),
    (None, "no probe agent on b: No such image", "no probe agent on b: No such image"),
    ("error", "ignored", "exec failed: exit 126"),
    ("nothing sent", None, "no packet sent"),
])
def test_an_unmeasured_pair_is_unknown_with_its_reason(result, gap, reason):
    if result == "error":
        probe = ping("a", "b", error="exec failed: exit 126")
    elif result == "nothing sent":
        probe = ping("a", "b", sent=0)
    else:
        probe = None
    state = judge_pair("a", "b", probe, None, window("a", "b", (10, 10), (10, 10)), gap, 1450, judge)
    assert state.loss_pct is None and state.verdict is Verdict.UNKNOWN and state.reason == reason
    assert state.rank == RANK[Verdict.UNKNOWN]


def test_a_path_mtu_below_the_overlays_is_a_black_hole_and_ranks_bad():
    hole = judge_pair("a", "b", ping("a", "b"), mtu("a", "b", 1350), None, None, 1450, judge)
    assert hole.mtu_hole and hole.path_mtu == 1350 and hole.rank == RANK[Verdict.BAD]
    fine = judge_pair("a", "b", ping("a", "b"), mtu("a", "b", 1450), None, None, 1450, judge)
    assert not fine.mtu_hole and fine.rank == RANK[judge(0, 1000)]
    failed = judge_pair("a", "b", ping("a", "b"), mtu("a", "b", error="timed out"), None, None, 1450, judge)
    assert failed.path_mtu is None and not failed.mtu_hole
    unknown_overlay = judge_pair("a", "b", ping("a", "b"), mtu("a", "b", 1350), None, None, None, judge)
    assert not unknown_overlay.mtu_hole


def test_worst_order_is_bad_acceptable_unmeasured_small_sample_good():
    order = [Verdict.BAD, Verdict.ACCEPTABLE, Verdict.UNKNOWN, Verdict.INSUFFICIENT, Verdict.GOOD]
    assert sorted(order, key=RANK.__getitem__, reverse=True) == order


# ------------------------------------------------------------------------------------------ the overview

def cluster(n: int, bad: str | None = None, loss: float = 0.02, hole: str | None = None, missing=()):
    """n nodes, 40,000 loss-free packets per pair, except pairs through `bad` (loss) and `hole` (path MTU 1350);
    pings from the nodes in `missing` failed."""
    hosts = [f"node{i}" for i in range(1, n + 1)]
    results = []
    for src in hosts:
        for dst in hosts:
            if src == dst:
                continue
            if src in missing:
                results.append(ping(src, dst, error="no probe agent"))
            else:
                lost = int(40000 * loss) if bad in (src, dst) else 0
                results.append(ping(src, dst, 40000, 40000 - lost))
            results.append(mtu(src, dst, 1350 if hole in (src, dst) else 1450))
    random.Random(1).shuffle(results)
    return hosts, results


def run(results, coverage=(), **kwargs):
    indexed = index_results(results, coverage)
    return indexed, overview(indexed.hosts, indexed.pings, indexed.mtus, {}, indexed.ping_gaps(), 1450,
                             LossThresholds(), **kwargs)


def test_index_results_orders_hosts_naturally_and_keeps_gaps():
    hosts, results = cluster(12)
    coverage = (Coverage("net", "ping", 132, 131, (PairGap("node13", "node1", "no probe agent on node13"),)),)
    indexed = index_results(results, coverage)
    assert indexed.hosts == hosts + ["node13"]
    assert len(indexed.pings) == len(indexed.mtus) == 132
    assert indexed.ping_gaps() == {("node13", "node1"): "no probe agent on node13"}


def test_one_bad_node_among_many_comes_first():
    hosts, results = cluster(40, bad="node27")
    _indexed, found = run(results)
    first = found.nodes[0]
    assert first.node == "node27" and first.bad == 78 and first.measured == first.expected == 78
    assert first.worst_sent.src == "node27" and first.worst_received.dst == "node27"
    assert first.worst_sent.verdict is Verdict.BAD and first.worst_loss == pytest.approx(2.0)
    # the others: two bad pairs each (to and from node27), then in natural order
    assert [n.bad for n in found.nodes[1:]] == [2] * 39
    assert [n.node for n in found.nodes[1:]] == [h for h in hosts if h != "node27"]
    assert found.pair_count == 40 * 39 // 2
    worst = found.pairs[:39]
    assert all("node27" in (a.src, a.dst) and a.verdict is Verdict.BAD for a, _b in worst)
    assert found.pairs[39][0].rank == RANK[Verdict.GOOD]


def test_the_heat_map_shows_the_bad_node_as_a_row_and_a_column():
    _hosts, results = cluster(40, bad="node27")
    _indexed, found = run(results, max_rows=8, max_cols=20)
    grid = found.grid
    assert (grid.row_size, grid.col_size) == (5, 2) and len(grid.cells) == 8 and len(grid.cells[0]) == 20
    bad, good = RANK[Verdict.BAD], RANK[Verdict.GOOD]
    row, col = 26 // 5, 26 // 2  # node27 is index 26
    assert set(grid.cells[row]) == {bad}
    assert {cells[col] for cells in grid.cells} == {bad}
    others = {c for r, cells in enumerate(grid.cells) for k, c in enumerate(cells) if r != row and k != col}
    assert others == {good}


def test_the_heat_map_cell_of_the_diagonal_alone_is_empty():
    _hosts, results = cluster(4)
    _indexed, found = run(results, max_rows=4, max_cols=4)
    assert [found.grid.cells[i][i] for i in range(4)] == [None] * 4
    assert found.grid.cells[0][1] == RANK[Verdict.GOOD]


def test_unmeasured_pairs_rank_above_good_ones_and_say_why():
    _hosts, results = cluster(35, missing=("node5",))
    _indexed, found = run(results)
    first = found.nodes[0]
    assert first.node == "node5" and first.measured == 34 and first.expected == 68  # it receives, cannot send
    assert first.worst_sent.reason == "no probe agent" and first.rank == RANK[Verdict.UNKNOWN]
    a, b = found.pairs[0]
    assert "node5" in (a.src, a.dst) and {a.loss_pct, b.loss_pct} & {None}


def test_a_black_hole_node_is_first_and_counted():
    _hosts, results = cluster(35, hole="node9")
    _indexed, found = run(results)
    first = found.nodes[0]
    assert first.node == "node9" and first.mtu_holes == 68 and first.min_path_mtu == 1350 and first.bad == 68
    assert found.nodes[1].mtu_holes == 2


def test_a_picked_node_gets_all_of_its_pairs_worst_first():
    _hosts, results = cluster(40, bad="node27")
    _indexed, found = run(results, picked="node3", limit=10)
    assert [n.node for n in found.nodes] == ["node3"] and found.picked == "node3"
    assert found.pair_count == 39 and len(found.pairs) == 10
    assert all(a.src == "node3" and b.dst == "node3" for a, b in found.pairs)
    assert found.pairs[0][0].dst == "node27"  # its one bad pair first
    assert [a.dst for a, _b in found.pairs[1:4]] == ["node1", "node2", "node4"]  # then the rest in order


def test_the_pair_list_is_capped_and_counted():
    _hosts, results = cluster(40)
    _indexed, found = run(results, limit=25)
    assert len(found.pairs) == 25 and found.pair_count == 780
    assert [(a.src, a.dst) for a, _b in found.pairs[:3]] == [("node1", "node2"), ("node1", "node3"),
                                                              ("node1", "node4")]


def test_the_demo_bad_node_scenario_at_200_nodes():
    source = DemoSource("bad-node", seed=7, scale=(200, 300, 5000), clock=lambda: T)
    asyncio.run(source.poll())
    assert source.bad_node == "node133"
    net = next(n for n in source.snapshot().networks if n.name == "frontend")
    indexed = index_results(source.probe_results("frontend"))
    found = overview(indexed.hosts, indexed.pings, indexed.mtus, source.probes().windows_of("frontend"),
                     indexed.ping_gaps(), net.effective_mtu, LossThresholds())
    assert found.nodes[0].node == "node133" and found.nodes[0].mtu_holes == 398
    assert found.nodes[1].bad == 2  # everyone else: the two pairs with node133
    assert {c for row in found.grid.cells for c in row} == {RANK[Verdict.GOOD], RANK[Verdict.BAD]}


def test_json_and_text_output_follow_the_natural_order():
    from overlaytui.commands.probe import matrix_text, round_dict
    from overlaytui.export import snapshot_to_dict, summary_text

    source = DemoSource("healthy", scale=(12, 12, 40), clock=lambda: T)
    asyncio.run(source.poll())
    snap = source.snapshot()
    data = snapshot_to_dict(snap)
    assert [n["hostname"] for n in data["nodes"]] == [f"node{i}" for i in range(1, 13)]
    assert list(data["netio"]["by_node"]) == natural_sorted(data["netio"]["by_node"])
    assert list(data["netio"]["by_service"]) == natural_sorted(data["netio"]["by_service"])
    assert data["coverage"]["stats_nodes_measured"] == [f"node{i}" for i in range(1, 13)]
    text = summary_text(snap)
    assert text.index("svc-009") < text.index("svc-010")

    results = [r for r in source.probe_results("frontend") if r.kind == "ping"]
    random.Random(2).shuffle(results)
    lines = [line.split()[0] for line in matrix_text(results, snap).splitlines()[2:]]
    assert lines[:12] == ["node1"] * 11 + ["node2"]
    pairs = [line.split()[:3] for line in matrix_text(results, snap).splitlines()[2:14]]
    assert [p[2] for p in pairs[:11]] == [f"node{i}" for i in range(2, 13)]
    ordered = [(r["src_node"], r["dst_node"]) for r in round_dict(results, (), {}, [],
                                                                   0, "")["results"]]
    assert ordered == sorted(ordered, key=natural_tuple) and ordered[0] == ("node1", "node2")
