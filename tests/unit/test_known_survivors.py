"""Mutants that survived the suite before (docs/benchmarks.md, mutation testing): each test pins one boundary."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from overlaytui.analysis.findings import check_probes
from overlaytui.analysis.thresholds import LossThresholds, Verdict, judge_loss, loss_upper_bound_pct, packets_needed
from overlaytui.model import ClusterSnapshot, Network, Node, ProbeResult
from overlaytui.sources.parse import parse_network, parse_node
from overlaytui.sources.stats import cpu_percent, parse_stats_frame

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lab"


def test_loss_exactly_at_the_thresholds():
    th = LossThresholds()
    assert judge_loss(1, 1000, th) is Verdict.BAD  # 0.1 % is "bad": bad >= 0.1 %
    assert judge_loss(0, 29956, th) is Verdict.GOOD and judge_loss(0, 29955, th) is Verdict.ACCEPTABLE
    assert packets_needed(th) == 29956 and packets_needed(th, "acceptable") == 2995
    assert judge_loss(0, 2995, th) is Verdict.ACCEPTABLE and judge_loss(0, 2994, th) is Verdict.INSUFFICIENT
    assert judge_loss(0, 0, th) is Verdict.UNKNOWN and judge_loss(5, 5, th) is Verdict.BAD
    assert loss_upper_bound_pct(0, 100) == 100.0 * (1 - 0.05 ** (1 / 100))
    assert 0.0 < loss_upper_bound_pct(1, 100000) - 0.001 < 0.004  # ~4.74e-3 %: a real interval, not the point


def _nodes():
    return tuple(Node(f"id{i}", f"node{i}", "manager" if i == 1 else "worker", "ready", "active", f"10.0.0.{i}")
                 for i in (1, 2, 3))


def _net(name, encrypted=False):
    return Network(name, name, "overlay", "swarm", "10.1.0.0/24", None, 4097, None, encrypted, False, False, False)


def _ping(net, src, dst, received, sent=100):
    return ProbeResult("ping", net, src, dst, 0.0, sent=sent, received=received, rtt_avg_ms=0.2 if received else None)


def test_blocked_needs_every_plain_overlay_silent_both_ways():
    snap = ClusterSnapshot(0.0, (), nodes=_nodes(), networks=(_net("a"), _net("b")))
    silent = [_ping("a", "node1", "node2", 0), _ping("a", "node2", "node1", 0), _ping("b", "node1", "node2", 0),
              _ping("b", "node2", "node1", 0)]
    assert [f.check for f in check_probes(snap, silent, LossThresholds())] == ["dataplane.blocked"]
    one_passes = silent[:3] + [_ping("b", "node2", "node1", 100)]
    checks = [f.check for f in check_probes(snap, one_passes, LossThresholds())]
    assert "dataplane.blocked" not in checks and checks.count("loss.bad") == 3


def test_loss_free_pairs_raise_no_acceptable_finding():
    snap = ClusterSnapshot(0.0, (), nodes=_nodes(), networks=(_net("a"),))
    clean = [_ping("a", "node1", "node2", 5000, 5000)]  # acceptable by sample size, but nothing lost
    assert [f.check for f in check_probes(snap, clean, LossThresholds())] == []
    lossy = [_ping("a", "node1", "node2", 9999, 10000)]
    assert [f.check for f in check_probes(snap, lossy, LossThresholds())] == ["loss.acceptable"]


def test_encrypted_silence_is_explained_by_esp_not_reported_as_loss():
    snap = ClusterSnapshot(0.0, (), nodes=_nodes(), networks=(_net("a"), _net("s", encrypted=True)))
    probes = [_ping("a", "node1", "node2", 100), _ping("s", "node1", "node2", 0)]
    assert [f.check for f in check_probes(snap, probes, LossThresholds())] == ["encryption.esp", "loss.samples"]


def test_dual_stack_ipam_shows_the_ipv4_subnet():
    raw = {"Id": "n1", "Name": "dual", "Driver": "overlay", "Scope": "swarm",
           "IPAM": {"Config": [{"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"},
                               {"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]}}
    net = parse_network(raw)
    assert (net.subnet, net.gateway) == ("10.9.0.0/24", "10.9.0.1")
    only_v6 = parse_network(raw | {"IPAM": {"Config": [{"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"}]}})
    assert only_v6.subnet == "fd00:1::/64"


def test_several_managers_one_leader():
    nodes = json.loads((FIXTURES / "nodes.json").read_text())
    manager = next(n for n in nodes if n.get("ManagerStatus"))
    follower = copy.deepcopy(manager)
    follower["ID"] = "follower"
    follower["ManagerStatus"] = {"Reachability": "unreachable", "Addr": "10.231.0.9:2377"}
    parsed = [parse_node(manager), parse_node(follower)]
    assert [(n.role, n.leader, n.reachability) for n in parsed] == [
        ("manager", True, "reachable"), ("manager", False, "unreachable")]


def test_cpu_percent_with_a_real_delta():
    """The recorded lab frames all have a CPU delta of 0 (idle containers): this one does not."""
    frames = json.loads((FIXTURES / "node1-stats-stream.json").read_text())
    frame = copy.deepcopy(next(iter(frames.values()))[1])
    frame["precpu_stats"]["cpu_usage"]["total_usage"] = frame["cpu_stats"]["cpu_usage"]["total_usage"] - 20_000_000
    frame["precpu_stats"]["system_cpu_usage"] = frame["cpu_stats"]["system_cpu_usage"] - 1_000_000_000
    frame["cpu_stats"]["online_cpus"] = 2
    assert cpu_percent(parse_stats_frame(frame)) == 20_000_000 / 1_000_000_000 * 2 * 100.0  # 4 %
    del frame["cpu_stats"]["online_cpus"]
    frame["cpu_stats"]["cpu_usage"]["percpu_usage"] = [1, 2, 3, 4]  # cgroup v1: the count of CPUs listed
    assert cpu_percent(parse_stats_frame(frame)) == 8.0
