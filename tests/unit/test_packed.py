"""Packed probe data (model.PackedResults, PackedWindows): what is read back equals what was packed, in order,
for every kind of result; large overlays are packed by ProbeData itself, small ones stay as given; and a packed
overlay holds no object per result for the garbage collector to walk."""

from __future__ import annotations

import gc
import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from overlaytui.model import (
    PACK_FROM,
    PackedResults,
    PackedWindows,
    PairWindow,
    ProbeData,
    ProbeResult,
    ResultColumns,
    Results,
    WindowColumns,
)

HOSTILE = "[b]node\x1b[31m\n\ud800"


def results(net: str = "overlay") -> list[ProbeResult]:
    return [
        ProbeResult("ping", net, "node1", "node2", 1.5, 100, 97, 0.2, 0.3, 0.9, 0.05),
        ProbeResult("ping", net, "node2", "node1", 1.5, 100, 0),  # every packet lost: no RTTs
        ProbeResult("mtu", net, "node1", "node2", 2.0, path_mtu=1450),
        ProbeResult("mtu", net, HOSTILE, "node1", 2.0, path_mtu=None),
        ProbeResult("ping", net, "node1", HOSTILE, 3.0, error="no probe agent on node3"),  # an error: kept whole
        ProbeResult("iperf", net, "node1", "node2", 4.0, bits_per_second=9.4e9, retransmits=3),
        ProbeResult("discovery", net, "node2", "node1", 5.0, resolved_vip="10.0.1.2", resolved_tasks=3,
                    vip_answers=False, task_answers=True),
        ProbeResult("ping", "another", "node1", "node2", 6.0, 10, 10, 0.1, 0.1, 0.1, 0.0),  # not this overlay's
        ProbeResult("ping", net, "node3", "node1", 7.0, 10, 10, 0.0, -0.0, 1e308, 0.0),  # extreme floats
        ProbeResult("ping", net, "node3", "node2", 7.0, 10, 10, math.nan, math.inf, None, 0.0),  # NaN stays NaN
        # a recording's odd values are kept whole, never changed or refused
        ProbeResult("mtu", net, "node3", "node2", 7.0, path_mtu=1400.5),  # type: ignore[arg-type]
        ProbeResult("ping", net, "node1", "node3", 7.0, 1 << 63, 3),
        ProbeResult("ping", net, "node1", "node3", 7, True, 1),  # type: ignore[arg-type]
    ]


def test_packed_results_read_back_equal_in_order():
    given_results = results()
    packed = PackedResults("overlay", given_results)
    assert len(packed) == len(given_results)
    assert [repr(r) for r in packed] == [repr(r) for r in given_results]  # NaN, -0.0 and types too
    assert [packed[i] for i in range(len(packed))] == given_results
    assert packed[-1] == given_results[-1] and packed[1:3] == tuple(given_results[1:3])
    assert packed == given_results and packed == tuple(given_results) and packed != given_results[:-1]
    assert packed[1].rtt_avg_ms is None and packed[3].path_mtu is None and packed[0].loss_pct == 3.0
    assert packed[3].src_node == HOSTILE
    with pytest.raises(IndexError):
        packed[len(given_results)]


@given(st.lists(st.tuples(st.sampled_from(["ping", "mtu"]), st.integers(0, 5), st.integers(0, 5),
                          st.integers(0, 1000), st.integers(0, 1000),
                          st.one_of(st.none(), st.floats(allow_nan=False)), st.one_of(st.none(), st.integers(0, 9000))),
                max_size=40))
def test_packed_results_any_measurement(rows):
    given_results = [ProbeResult(kind, "net", f"node{s}", f"node{d}", float(i), sent, received, rtt, rtt, rtt, rtt,
                                 mtu) for i, (kind, s, d, sent, received, rtt, mtu) in enumerate(rows)]
    assert list(PackedResults("net", given_results)) == given_results


def windows(count: int, net: str = "overlay") -> dict[tuple[str, str], PairWindow]:
    nodes = [f"node{i}" for i in range(int(math.isqrt(count)) + 2)]
    pairs = [(a, b) for a in nodes for b in nodes if a != b][:count]
    return {(a, b): PairWindow(net, a, b, 10, 9 - i % 3, 100, 95, 1000, 990 - i, 300.0)
            for i, (a, b) in enumerate(pairs)}


@pytest.mark.parametrize("count", [50, 3])  # a dense matrix of pairs and a sparse one (a rotating plan's)
def test_packed_windows_read_back_as_a_mapping(count):
    given_windows = windows(count)
    given_windows[("node0", "node2")] = PairWindow("overlay", "node0", "node2", 1 << 63, 1, 2, 2, 3, 3, 300.0)
    given_windows[(HOSTILE, "node1")] = PairWindow("overlay", HOSTILE, "node1", 1, 1, 2, 2, 3, 3, 60.0)
    packed = PackedWindows("overlay", given_windows)
    assert len(packed) == len(given_windows)
    assert list(packed) == list(given_windows)  # the order given
    assert dict(packed.items()) == given_windows
    assert (HOSTILE, "node1") in packed and ("node1", HOSTILE) not in packed and ("nope", "node1") not in packed
    assert "node1" not in packed and packed.get(("node1", "node1")) is None
    with pytest.raises(KeyError):
        packed[("node1", "nope")]
    assert packed[("node0", "node1")].total_loss_pct == 1.0 and packed[("node0", "node2")].round_sent == 1 << 63
    assert packed[(HOSTILE, "node1")].window_s == 60.0


def test_probe_data_packs_large_overlays_and_leaves_small_ones():
    large = [ProbeResult("ping", "big", f"n{i % 60}", f"n{i // 60}", 1.0, 10, 10, 0.1, 0.2, 0.3, 0.01)
             for i in range(PACK_FROM)]
    small = results("small")[:3]
    given = ProbeData(recent={"big": tuple(large), "small": tuple(small)},
                      windows={"big": windows(PACK_FROM, "big"), "small": windows(3, "small")})
    assert given.recent["big"] == tuple(large)  # made as given: packing is asked for
    data = given.packed()
    assert isinstance(data.recent["big"], PackedResults) and data.recent["small"] == tuple(small)
    assert isinstance(data.windows["big"], PackedWindows) and isinstance(data.windows["small"], dict)
    assert data.results("big") == large and list(data.results()) == large + small
    assert dict(data.windows_of("big")) == windows(PACK_FROM, "big")


def test_packed_overlay_has_nothing_per_result_for_the_collector():
    large = [ProbeResult("ping", "big", f"n{i % 100}", f"n{i // 100}", 1.0, 10, 10, 0.1, 0.2, 0.3, 0.01)
             for i in range(10_000)]
    gc.collect()
    before = len(gc.get_objects())
    data = ProbeData(recent={"big": tuple(large)}, windows={"big": windows(10_000, "big")}).packed()
    del large
    gc.collect()
    assert len(gc.get_objects()) - before < 100  # a handful of arrays and tuples, not 20,000 objects
    assert len(data.results("big")) == 10_000


def test_the_loss_index_of_a_packed_overlay_reads_as_the_results_do():
    from overlaytui.analysis.lossmap import index_results
    given_results = [r for r in results() if r.network == "overlay"] * 2  # a pair twice: the later one counts
    given_results[-1] = ProbeResult("mtu", "overlay", "node1", "node2", 9.0, path_mtu=1400)
    plain, packed = index_results(given_results), index_results(PackedResults("overlay", given_results))
    assert dict(packed.pings) == dict(plain.pings) and dict(packed.mtus) == dict(plain.mtus)
    assert packed.hosts == plain.hosts and packed.mtus[("node1", "node2")].path_mtu == 1400
    assert ("node2", "node1") in packed.pings and ("node9", "node1") not in packed.pings


def test_columns_built_from_values_equal_columns_built_from_results():
    """The demo writes its rounds as values (ResultColumns.measured, WindowColumns.counts), never making the
    results: what is read back is what the results would have been, odd values (kept whole) included."""
    given_results = results()
    columns = ResultColumns("overlay")
    for r in given_results:
        if r.kind in ("ping", "mtu") and not r.error and r.network == "overlay":
            columns.measured(r.kind, r.src_node, r.dst_node, r.measured_at, r.sent, r.received, r.rtt_min_ms,
                             r.rtt_avg_ms, r.rtt_max_ms, r.rtt_mdev_ms, r.path_mtu)
        else:
            columns.keep(r)
    packed = columns.packed()
    assert [repr(r) for r in packed] == [repr(r) for r in given_results]
    assert packed._kept.keys() == PackedResults("overlay", given_results)._kept.keys()  # the same ones kept whole

    given_windows = windows(20)
    given_windows[("node0", "node2")] = PairWindow("overlay", "node0", "node2", 1 << 63, 1, 2, 2, 3, 3, 300.0)
    given_windows[("node1", "node0")] = PairWindow("overlay", "node1", "node0", 1, 1, 2, 2, 3, 3, 300)  # int
    counts = WindowColumns("overlay")
    for (src, dst), w in given_windows.items():
        counts.counts(src, dst, w.round_sent, w.round_received, w.recent_sent, w.recent_received, w.total_sent,
                      w.total_received, w.window_s)
    assert len(counts) == len(given_windows)
    packed_windows = counts.packed()
    assert list(packed_windows) == list(given_windows) and dict(packed_windows.items()) == given_windows
    assert type(packed_windows[("node1", "node0")].window_s) is int


def test_the_large_demo_round_is_written_in_columns():
    from overlaytui.sources.demo import DemoSource
    source = DemoSource("bad-node", scale=(60, 80, 500), clock=lambda: 1000.0)
    data = source.probes()
    assert data.recent and all(isinstance(rs, PackedResults) for rs in data.recent.values())
    assert all(isinstance(ws, PackedWindows) for ws in data.windows.values())
    for c in data.coverage:  # every pair has a result of each kind, the missing ones are the errors
        of_kind = [r for r in data.results(c.network) if r.kind == c.kind]
        assert c.expected == len(of_kind) == 60 * 59
        assert {(g.src_node, g.dst_node, g.reason) for g in c.missing} == {
            (r.src_node, r.dst_node, r.error) for r in of_kind if not r.measured}
    small = DemoSource("bad-node", clock=lambda: 1000.0).probes()  # 5 nodes: plain results and windows
    assert all(type(rs) is tuple for rs in small.recent.values())
    assert all(type(ws) is dict for ws in small.windows.values())


def test_every_overlays_results_read_as_one_sequence_without_a_copy():
    big = [ProbeResult("ping", "big", f"n{i % 60}", f"n{i // 60}", 1.0, 10, 10, 0.1, 0.2, 0.3, 0.01)
           for i in range(PACK_FROM)]
    small = results("small")
    data = ProbeData(recent={"big": tuple(big), "empty": (), "small": tuple(small)}).packed()
    every = data.results()
    assert isinstance(every, Results) and isinstance(every.parts[0], PackedResults)
    assert len(every) == len(big) + len(small) and every == big + small and list(every) == big + small
    assert every[0] == big[0] and every[len(big)] == small[0] and every[-1] == small[-1]
    assert every[len(big) - 1:len(big) + 1] == (big[-1], small[0])
    with pytest.raises(IndexError):
        every[len(every)]
    assert list(every.keyed()) == [(r.kind, r.network, r.src_node, r.dst_node, r.measured_at) for r in big + small]
    assert not ProbeData().results() and ProbeData().results() == ()


def test_findings_of_packed_results_equal_the_findings_of_the_results():
    """check_probes reads a packed overlay by position (findings._latest): the same findings as the objects give,
    the latest result of a pair winning (a later measured_at, or the later of two at the same time)."""
    from overlaytui.analysis.findings import check_probes
    from overlaytui.analysis.thresholds import LossThresholds
    from overlaytui.model import ClusterSnapshot, Network, Node

    hosts = [f"node{i}" for i in range(1, 47)]
    nodes = tuple(Node(id=f"id{h}", hostname=h, role="worker", state="ready" if h != "node9" else "down",
                       availability="active", address="10.0.0.1") for h in hosts)
    networks = tuple(Network(id=name, name=name, driver="overlay", scope="swarm", subnet="10.0.1.0/24",
                             gateway="10.0.1.1", vni=4097, configured_mtu=None, attachable=False, ingress=False,
                             internal=False, encrypted=name == "secure") for name in ("plain", "secure"))
    given = []
    for net in ("plain", "secure"):
        for i, src in enumerate(hosts):
            for j, dst in enumerate(hosts):
                if src == dst:
                    continue
                lossy = (i + j) % 13 == 0
                silent = net == "secure" or {src, dst} == {"node3", "node4"}
                received = 0 if silent else 9_900 if lossy else 10_000
                given.append(ProbeResult("ping", net, src, dst, 5.0, 10_000, received,
                                         *((None,) * 4 if silent else (0.2, 30.0 if lossy else 0.3, 0.9, 0.1))))
                given.append(ProbeResult("mtu", net, src, dst, 5.0, path_mtu=1200 if src == "node7" else 1450))
    given[10] = replace(given[10], error="no probe agent on node2")
    given += [ProbeResult("ping", "plain", "node1", "node2", 4.0, 10, 0),  # older: the one above counts
              ProbeResult("ping", "plain", "node1", "node5", 5.0, 100, 50)]  # the same time, later: it counts
    plain = check_probes(ClusterSnapshot(taken_at=1.0, engines=(), nodes=nodes, networks=networks), given,
                         LossThresholds())
    packed = ProbeData(recent={"all": tuple(given)}).packed()
    snapshot = ClusterSnapshot(taken_at=1.0, engines=(), nodes=nodes, networks=networks)
    assert isinstance(packed.recent["all"], PackedResults)
    assert check_probes(snapshot, packed.results(), LossThresholds()) == plain
    assert {f.check for f in plain} >= {"dataplane.blocked", "encryption.esp", "loss.bad", "latency.high",
                                         "mtu.black_hole"}
