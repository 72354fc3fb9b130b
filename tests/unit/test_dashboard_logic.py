"""The dashboard's pure parts: thresholds, history, downsampling, placement judgement, demo, config, themes."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from overlaytui.analysis.findings import imbalance, latest_failures
from overlaytui.analysis.netio import sums
from overlaytui.analysis.thresholds import LossThresholds, Verdict, judge_loss, loss_upper_bound_pct, packets_needed
from overlaytui.config import Config, load_config, save_config
from overlaytui.history import History, Point
from overlaytui.model import ClusterSnapshot, ContainerStats, InterfaceStats, Service, Task
from overlaytui.panes.netio import downsample
from overlaytui.sources.demo import SCENARIOS, DemoSource
from overlaytui.themes import load_themes
from overlaytui.units import scale_for

# ------------------------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize(("lost", "sent", "verdict"), [
    (0, 0, Verdict.UNKNOWN),
    (0, 100, Verdict.INSUFFICIENT),  # 100 packets cannot show < 0.01 %
    (0, 3000, Verdict.ACCEPTABLE),  # the bound is just under 0.1 %
    (0, 30_000, Verdict.GOOD),
    (1, 100, Verdict.BAD),  # 1 % seen
    (1, 2000, Verdict.INSUFFICIENT),  # 0.05 % seen, but the bound is above 0.1 %
    (3, 40_000, Verdict.ACCEPTABLE),
    (100, 100, Verdict.BAD),
])
def test_loss_verdicts(lost, sent, verdict):
    assert judge_loss(lost, sent) == verdict


def test_upper_bound_is_the_rule_of_three_without_loss_and_monotonic():
    assert loss_upper_bound_pct(0, 1000) == pytest.approx(300 / 1000, rel=0.01)
    bounds = [loss_upper_bound_pct(k, 1000) for k in range(6)]
    assert bounds == sorted(bounds) and bounds[1] > 0.1


def test_configurable_thresholds_and_packets_needed():
    strict = LossThresholds(good_pct=0.001, acceptable_pct=0.01)
    assert judge_loss(0, 30_000, strict) == Verdict.ACCEPTABLE
    assert packets_needed() == 29_956 and packets_needed(level="acceptable") == 2_995


# ---------------------------------------------------------------------------------------------- history


def snapshot_at(t: float, rates: dict[str, float]) -> ClusterSnapshot:
    containers = tuple(
        ContainerStats(container_id=f"c-{name}", name=name, engine="e", node_id=None, task_id=None,
                       service_name=name, read_at=t, cpu_pct=None, mem_bytes=None, mem_limit=None,
                       interfaces=(InterfaceStats("eth0", "n", "net", True, 0, 0, rate, rate / 2),))
        for name, rate in rates.items())
    return ClusterSnapshot(taken_at=t, engines=(), containers=containers)


def test_history_keeps_a_bounded_window_with_running_stats():
    history = History(maxlen=3, container_maxlen=2)
    for t, rate in enumerate([100.0, 900.0, 200.0, 300.0, 400.0], start=1):
        history.add(snapshot_at(float(t), {"web": rate}))
    points = history.series("service", "web")
    assert [p.rx for p in points] == [200.0, 300.0, 400.0]
    stats = history.stats("service", "web")
    assert stats.peak == pytest.approx(600.0)  # 400 rx + 200 tx; the 900 left the window
    assert stats.avg_rx == pytest.approx(300.0) and stats.samples == 3
    assert [p.rx for p in history.container("c-web")] == [300.0, 400.0]
    assert history.series("service", "web", last=2) == points[1:]


def test_history_ignores_repeated_moments_and_forgets_gone_containers():
    history = History()
    history.add(snapshot_at(1.0, {"web": 1.0, "api": 5.0}))
    history.add(snapshot_at(1.0, {"web": 9.0}))  # the same moment again
    assert len(history.series("service", "web")) == 1
    history.add(snapshot_at(2.0, {"web": 2.0}))
    assert history.container("c-api") == []
    assert history.names("service") == ["api", "web"]  # busiest latest rx+tx first: 7.5 B/s, then 3.0 B/s


def test_container_rates_need_a_rate_on_every_interface_and_keep_history_while_the_container_exists():
    snap = snapshot_at(1.0, {"web": 10.0, "api": 4.0})
    web, api = snap.containers
    half = replace(api, interfaces=(*api.interfaces, replace(api.interfaces[0], name="eth1", rx_rate=None)))
    late = replace(api, container_id="c-late", interfaces=(replace(api.interfaces[0], name="eth1", rx_rate=None),
                                                           *api.interfaces))
    bare = replace(web, container_id="c-bare", interfaces=())
    assert sums(replace(snap, containers=(web, half, late, bare))).containers == {"c-web": (10.0, 5.0)}
    history = History()
    history.add(snap)
    history.add(replace(snap, taken_at=2.0, containers=(web, half)))  # api there, without a rate this time
    assert [p.rx for p in history.container("c-api")] == [4.0]
    assert [p.rx for p in history.container("c-web")] == [10.0, 10.0]
    history.add(replace(snap, taken_at=3.0, containers=(web,)))  # api gone
    assert history.container("c-api") == []
    totals = sums(snap)
    assert totals.by["service"]["web"].rx == 10.0 and totals.containers["c-api"] == (4.0, 2.0)


def test_downsample_keeps_bursts():
    points = [Point(float(t), 1.0, 0.0) for t in range(100)]
    points[57] = Point(57.0, 50.0, 0.0)
    small = downsample(points, 10)
    assert len(small) == 10 and max(p.rx for p in small) == 50.0
    assert downsample(points[:5], 10) == points[:5]


@pytest.mark.parametrize(("peak", "unit"), [(0, "B/s"), (512, "B/s"), (2048, "KiB/s"), (3 * 2**20, "MiB/s"),
                                            (5 * 2**30, "GiB/s")])
def test_units_scale_with_the_peak(peak, unit):
    assert scale_for(peak)[1] == unit


# -------------------------------------------------------------------------------------------- placement


def service(mode="replicated", replicas=4) -> Service:
    return Service("s", "web", mode, replicas, "vip", (), (), "img")


def test_imbalance():
    ready = ["n1", "n2", "n3"]
    assert imbalance(service(), {"n1": 2, "n2": 1, "n3": 1}, ready) == ""
    assert imbalance(service(), {"n1": 3, "n2": 1}, ready) == "uneven: 0 to 3 tasks per node"
    assert imbalance(service("global", None), {"n1": 1, "n2": 1}, ready) == "1 ready node(s) without a task"
    assert imbalance(service(), {}, []) == ""


def test_latest_errors_take_the_newest_failure():
    def task(error, ts, state="rejected"):
        return Task(f"t{ts}", "s", "web", 1, "n1", "running", state, "", error, ts, None, None, None)
    tasks = [task("old error", 1.0), task("new error", 5.0), task("", 9.0, "running")]
    assert {sid: t.error for sid, t in latest_failures(tasks).items()} == {"s": "new error"}


# ------------------------------------------------------------------------------------------------- demo


def demo_snapshot(scenario="healthy", seed=1, at=0.0, scale=None):
    now = [1_800_000_000.0]
    source = DemoSource(scenario, seed=seed, scale=scale, clock=lambda: now[0])
    asyncio.run(source.start())
    now[0] += at
    asyncio.run(source.poll())
    return source, source.snapshot()


def test_demo_is_deterministic_for_a_seed():
    _, a = demo_snapshot(seed=3, at=12)
    _, b = demo_snapshot(seed=3, at=12)
    _, c = demo_snapshot(seed=4, at=12)
    assert a == b
    assert [x.rx_rate for x in a.containers] != [x.rx_rate for x in c.containers]


def test_demo_cluster_is_believable():
    source, snap = demo_snapshot()
    assert len(snap.nodes) == 5 and len(snap.services) == 8
    overlays = [n for n in snap.networks if n.driver == "overlay" and not n.ingress]
    assert len(overlays) == 3 and sum(n.encrypted for n in overlays) == 1
    assert all(s.running_tasks == s.desired_tasks for s in snap.services)
    pings = [r for r in source.probe_results("frontend") if r.kind == "ping"]
    assert len(pings) == 5 * 4 and all(r.received == r.sent for r in pings)  # the recent window: nothing lost
    windows = source.probes().windows_of("frontend").values()  # since start (an hour before): enough to be good
    assert len(windows) == 20 and all(judge_loss(w.total_sent - w.total_received, w.total_sent) == Verdict.GOOD
                                      for w in windows)


def test_demo_scenarios():
    source, snap = demo_snapshot("loss")
    bad = {(r.src_node, r.dst_node) for r in source.probe_results("backend") if r.kind == "ping"
           and judge_loss(r.sent - r.received, r.sent) == Verdict.BAD}
    assert bad and all("node4" in pair for pair in bad)
    source, _ = demo_snapshot("mtu")
    holes = {(r.src_node, r.dst_node) for r in source.probe_results("frontend") if r.kind == "mtu"
             and r.path_mtu < 1450}
    assert holes and all("node3" in pair for pair in holes)
    _, before = demo_snapshot("node-down", at=5)
    _, after = demo_snapshot("node-down", at=25)
    assert all(n.state == "ready" for n in before.nodes)
    assert [n.hostname for n in after.nodes if n.state == "down"] == ["node5"]
    assert all(s.running_tasks == s.desired_tasks for s in after.services)  # rescheduled
    _, update = demo_snapshot("rolling-update", at=5)
    assert next(s for s in update.services if s.name == "api").update_state == "updating"
    source, _ = demo_snapshot("bad-node")
    bad = {(r.src_node, r.dst_node) for r in source.probe_results("frontend") if r.kind == "ping"
           and judge_loss(r.sent - r.received, r.sent) == Verdict.BAD}
    holes = {(r.src_node, r.dst_node) for r in source.probe_results("frontend") if r.kind == "mtu"
             and r.path_mtu < 1450}
    assert bad and bad == holes and all("node3" in pair for pair in bad) and len(bad) == 8  # node3 of 5
    assert set(SCENARIOS) == {"healthy", "loss", "mtu", "node-down", "rolling-update", "bad-node"}


def test_demo_scale_and_bad_arguments():
    _, snap = demo_snapshot(scale=(50, 60, 900))
    assert len(snap.nodes) == 50 and len(snap.services) == 60
    assert 600 < sum(1 for t in snap.tasks if t.state == "running") < 1300
    with pytest.raises(ValueError, match="unknown demo scenario"):
        DemoSource("chaos")
    with pytest.raises(ValueError, match="--demo-scale"):
        DemoSource(scale=(0, 1, 1))


# ------------------------------------------------------------------------------------- config and themes


def test_config_round_trip_and_bad_files(tmp_path):
    path = tmp_path / "c.toml"
    assert load_config(path) == (Config(), None)
    save_config(Config(theme="overlaytui-light", loss=LossThresholds(0.02, 0.2)), path)
    assert load_config(path) == (Config("overlaytui-light", LossThresholds(0.02, 0.2)), None)
    path.write_text("theme = [unclosed")
    config, problem = load_config(path)
    assert config == Config() and "using defaults" in problem
    path.write_text('[thresholds]\nloss_good_pct = "lots"\n')
    assert "must be numbers" in load_config(path)[1]


def test_themes_load_and_reject_unknown_keys(tmp_path):
    names = [t.name for t in load_themes()]
    assert names[0] == "overlaytui-dark" and {"overlaytui-light", "overlaytui-high-contrast"} <= set(names)
    (tmp_path / "bad.toml").write_text('name = "x"\nprimary = "#000000"\ncolour = "red"\n')
    with pytest.raises(ValueError, match="unknown theme keys colour"):
        load_themes(tmp_path)


def test_effective_mtu_rules():
    from overlaytui.model import Network

    base = Network("i", "n", "overlay", "swarm", None, None, 4097, None, False, False, False, False)
    assert base.effective_mtu == 1450
    assert replace(base, configured_mtu=1400).effective_mtu == 1350
    assert replace(base, encrypted=True).effective_mtu == 1424
    assert replace(base, driver="bridge").effective_mtu == 1500
    assert replace(base, driver="host").effective_mtu is None
