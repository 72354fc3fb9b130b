"""The demo's presenter faults and its probes' realism: faults injected and cleared live (loss and MTU on a node,
an overlay or a pair; node down, engine down, partition; a rolling update), shown at their rate from the next
probe round; RTTs that jitter per pair and round; losses drawn binomially over the packets sent — all the same
for a seed."""

from __future__ import annotations

import asyncio
import math
import statistics

import pytest

from overlaytui.model import Fault, Health
from overlaytui.sources.base import FaultError
from overlaytui.sources.demo import (
    HEARTBEAT,
    PROBE_ROUND,
    UPDATE_STARTING,
    UPDATE_STEP,
    DemoSource,
    _binomial,
    _draw,
)

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def demo(scenario: str = "healthy", seed: int = 7) -> tuple[DemoSource, Clock]:
    clock = Clock()
    source = DemoSource(scenario, seed=seed, clock=clock)
    asyncio.run(source.start())
    source.probes()  # the first round, as the first frame takes it
    return source, clock


def next_round(source: DemoSource, clock: Clock, rounds: int = 1):
    clock.now += PROBE_ROUND * rounds
    asyncio.run(source.poll())
    return source.probes()


def round_lost(data, network: str = "frontend") -> dict[tuple[str, str], int]:
    return {pair: w.round_sent - w.round_received for pair, w in data.windows_of(network).items()
            if w.round_received < w.round_sent}


def test_the_binomial_draws_have_the_binomial_mean_and_variance():
    for n, p in ((100, 0.02), (100, 0.3), (100, 0.9), (3000, 0.01)):
        draws = [_binomial(n, p, _draw(11, k)) for k in range(4000)]
        mean, var = statistics.fmean(draws), statistics.pvariance(draws)
        assert abs(mean - n * p) < 4 * math.sqrt(n * p * (1 - p) / 4000), (n, p, mean)
        assert 0.85 < var / (n * p * (1 - p)) < 1.15, (n, p, var)
        assert all(0 <= d <= n for d in draws)
    assert _binomial(100, 0.0, 0.99) == 0 and _binomial(100, 1.0, 0.0) == 100


def test_loss_on_a_node_shows_at_its_rate_from_the_next_round_and_clears():
    source, clock = demo()
    said = source.inject(Fault("loss", node="node3", value=5))
    assert "loss 5 % on node3" in said
    assert round_lost(source.probes()) == {}  # the round measured already keeps what it measured
    lost = sent = 0
    for _ in range(40):
        found = round_lost(next_round(source, clock))
        assert all("node3" in pair for pair in found)
        lost += sum(found.values())
        sent += 8 * 100  # node3's 8 pairs on the overlay, 100 packets a round
    # 5 % of 32,000 packets: 1600, sd 39
    assert abs(lost - 0.05 * sent) < 4 * math.sqrt(sent * 0.05 * 0.95), lost
    window = source.probes().windows_of("frontend")[("node1", "node3")]
    assert 3.0 < window.recent_loss_pct < 7.0 and window.total_sent > window.recent_sent
    assert "no fault" not in source.clear(Fault("", node="node3"))
    assert round_lost(next_round(source, clock)) == {}
    assert source.probes().windows_of("frontend")[("node1", "node3")].recent_received < 3000  # the window holds it


def test_loss_on_an_overlay_and_on_one_pair():
    source, clock = demo()
    source.inject(Fault("loss", network="backend", value=50))
    source.inject(Fault("loss", node="node1", peer="node2", network="frontend", value=50))
    data = next_round(source, clock)
    assert len(round_lost(data, "backend")) == 20  # every pair of the overlay
    assert set(round_lost(data, "frontend")) == {("node1", "node2")}  # that pair, that way only
    assert round_lost(data, "payments-secure") == {}
    source.clear(Fault(""))
    data = next_round(source, clock)
    assert round_lost(data, "backend") == round_lost(data, "frontend") == {}


def test_an_mtu_black_hole_on_a_node_and_on_an_overlay_then_cleared():
    source, clock = demo()
    source.inject(Fault("mtu", node="node2", value=1300))
    source.inject(Fault("mtu", network="frontend", value=1400))
    data = next_round(source, clock)
    mtus = {(r.network, r.src_node, r.dst_node): r.path_mtu for r in data.results() if r.kind == "mtu"}
    assert mtus[("frontend", "node1", "node3")] == 1350 and mtus[("backend", "node1", "node3")] == 1350
    assert mtus[("frontend", "node2", "node3")] == 1250 and mtus[("payments-secure", "node4", "node2")] == 1250
    assert mtus[("payments-secure", "node4", "node3")] == 1424  # the encrypted overlay's own
    source.clear(Fault("mtu"))
    data = next_round(source, clock)
    assert {r.path_mtu for r in data.results("frontend") if r.kind == "mtu"} == {1450}


def test_a_partition_loses_everything_through_the_node_then_the_managers_call_it_down():
    source, clock = demo()
    source.inject(Fault("partition", node="node4"))
    data = next_round(source, clock)
    lost = round_lost(data)
    assert set(lost) == {p for p in data.windows_of("frontend") if "node4" in p} and set(lost.values()) == {100}
    assert all(r.error for r in data.results("frontend") if r.kind == "mtu" and "node4" in (r.src_node, r.dst_node))
    engines = {e.hostname: e.health for e in source.snapshot().engines}
    assert engines["node4"] is Health.OK  # its engine still answers us
    clock.now += HEARTBEAT
    asyncio.run(source.poll())
    assert {n.hostname: n.state for n in source.snapshot().nodes}["node4"] == "down"
    source.clear(Fault("", node="node4"))
    asyncio.run(source.poll())
    assert {n.hostname: n.state for n in source.snapshot().nodes}["node4"] == "ready"
    assert round_lost(next_round(source, clock)) == {}


def test_an_engine_down_is_silent_at_once_and_its_node_down_after_a_heartbeat():
    source, clock = demo()
    node = source.snapshot().nodes[1]
    source.inject(Fault("engine-down", node=node.hostname))
    asyncio.run(source.poll())
    snap = source.snapshot()
    assert {e.hostname: e.health for e in snap.engines}[node.hostname] is Health.ERROR
    assert not [c for c in snap.containers if c.node_id == node.id]  # its containers stopped with it
    assert {n.hostname: n.state for n in snap.nodes}[node.hostname] == "ready"  # the managers have not noticed
    data = next_round(source, clock, rounds=2)
    failed = [r for r in data.results("frontend") if node.hostname in (r.src_node, r.dst_node)]
    assert failed and all("engine" in r.error or "down" in r.error for r in failed)
    assert {n.hostname: n.state for n in source.snapshot().nodes}[node.hostname] == "down"
    source.clear(Fault("engine-down", node=node.hostname))
    asyncio.run(source.poll())
    assert {e.hostname: e.health for e in source.snapshot().engines}[node.hostname] is Health.OK


def test_a_node_down_reschedules_its_tasks_which_stay_where_they_went_when_it_comes_back():
    source, clock = demo()
    victim = source.snapshot().nodes[2]
    before = {(t.service_name, t.slot) for t in source.snapshot().tasks if t.node_id == victim.id and t.slot}
    assert before
    source.inject(Fault("node-down", node=victim.hostname))
    asyncio.run(source.poll())
    snap = source.snapshot()
    running = [t for t in snap.tasks if t.state == "running"]
    assert not [t for t in running if t.node_id == victim.id]
    assert {(t.service_name, t.slot) for t in running if t.slot} >= before  # every slot runs elsewhere
    source.clear(Fault("", node=victim.hostname))
    clock.now += 5
    asyncio.run(source.poll())
    snap = source.snapshot()
    assert {n.hostname: n.state for n in snap.nodes}[victim.hostname] == "ready"
    back = {(t.service_name, t.slot) for t in snap.tasks if t.node_id == victim.id and t.state == "running" and t.slot}
    assert back == set()  # swarm does not rebalance: the moved tasks stay; the global ones come back
    assert [t for t in snap.tasks if t.node_id == victim.id and t.state == "running" and t.slot is None]


def test_a_rolling_update_replaces_one_task_at_a_time_keeps_history_and_clearing_rolls_it_back():
    source, clock = demo()
    source.inject(Fault("update", service="web"))
    web = lambda: next(s for s in source.snapshot().services if s.name == "web")  # noqa: E731
    tasks = lambda: [t for t in source.snapshot().tasks if t.service_name == "web"]  # noqa: E731
    asyncio.run(source.poll())
    assert web().update_state == "updating" and web().image.endswith(":2.0")
    assert sum(1 for t in tasks() if t.state == "starting") == 1  # the first slot's replacement starts
    clock.now += UPDATE_STARTING
    asyncio.run(source.poll())
    assert sum(1 for t in tasks() if t.state == "shutdown") == 1 and web().running_tasks == 4
    clock.now += UPDATE_STEP * 4
    asyncio.run(source.poll())
    assert web().update_state == "completed" and sum(1 for t in tasks() if t.state == "shutdown") == 4
    source.clear(Fault("", service="web"))
    clock.now += UPDATE_STEP * 4
    asyncio.run(source.poll())
    assert web().update_state == "rollback_completed" and web().image.endswith(":1.4")
    assert sum(1 for t in tasks() if t.state == "shutdown") == 8  # both versions' old tasks kept as history
    assert len({t.id for t in tasks()}) == len(tasks())


@pytest.mark.parametrize(("fault", "words"), [
    (Fault("loss", node="node9", value=2), "no node node9"),
    (Fault("loss", node="node1", value=0), "above 0"),
    (Fault("loss", node="node1", value=101), "up to 100"),
    (Fault("mtu", network="nowhere", value=1400), "no probed overlay"),
    (Fault("mtu", node="node1", value=100), "576 to 9000"),
    (Fault("update", service="metrics"), "global"),
    (Fault("update", node="node1"), "takes a service"),
    (Fault("partition", network="frontend"), "takes a node"),
    (Fault("loss", node="node1", peer="node1", network="frontend", value=2), "two different nodes"),
    (Fault("meteor", node="node1"), "unknown fault"),
])
def test_a_fault_the_demo_cannot_make_is_refused_in_one_line(fault, words):
    source, _clock = demo()
    with pytest.raises(FaultError, match=words):
        source.inject(fault)


def test_a_scenarios_fault_is_cleared_as_any_other():
    source, clock = demo("loss")
    assert round_lost(next_round(source, clock))  # node4 loses 2 %
    assert "loss 2 % on node4" in source.clear(Fault("", node="node4"))
    assert all(round_lost(next_round(source, clock)) == {} for _ in range(3))
    assert source.clear(Fault("", node="node4")) == "no fault on node4"


def test_rtts_jitter_per_pair_and_round_the_same_for_a_seed():
    def rtts(source, clock):
        data = next_round(source, clock)
        return {(r.network, r.src_node, r.dst_node): r.rtt_avg_ms for r in data.results() if r.kind == "ping"}

    a, clock_a = demo(seed=3)
    b, clock_b = demo(seed=3)
    first, second = rtts(a, clock_a), rtts(a, clock_a)
    assert first == rtts(b, clock_b)  # the same seed, the same clock: the same numbers
    assert len(set(first.values())) > len(first) * 0.8  # pairs differ
    assert sum(first[k] != second[k] for k in first) > len(first) * 0.8  # rounds differ
    averages = [statistics.fmean(v for (net, *_), v in first.items() if net == name)
                for name in ("frontend", "payments-secure")]
    assert averages[1] > averages[0] + 0.3  # encrypted overlays are slower
    other, clock_o = demo(seed=4)
    assert rtts(other, clock_o) != first


def test_faults_are_deterministic_for_a_seed_and_a_timeline():
    def run() -> list:
        source, clock = demo(seed=5)
        source.inject(Fault("loss", node="node2", value=10))
        seen = [round_lost(next_round(source, clock)) for _ in range(3)]
        source.clear(Fault(""))
        seen.append(round_lost(next_round(source, clock)))
        return seen

    assert run() == run()
