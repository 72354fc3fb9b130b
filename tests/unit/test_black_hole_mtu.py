"""MTU black holes whose pairs have different path MTUs (issue 21): the node finding and the per-overlay ones
state and remedy the smallest, whichever pair is listed first, and a merged underlay finding keeps that remedy."""

from __future__ import annotations

import itertools

import pytest

from overlaytui.analysis.findings import diagnose
from overlaytui.model import ClusterSnapshot, Engine, Health, Network, Node, ProbeResult

HOSTS = ("node1", "node2", "node3", "node4")


def cluster() -> ClusterSnapshot:
    nodes = tuple(Node(f"id-{h}", h, "manager" if h == "node1" else "worker", "ready", "active", f"192.168.0.{i}")
                  for i, h in enumerate(HOSTS, 1))
    engines = tuple(Engine(f"tcp://{h}:2375", Health.OK, node_id=f"id-{h}", hostname=h,
                           role="manager" if h == "node1" else "worker") for h in HOSTS)
    nets = (Network("na", "alpha", "overlay", "swarm", "10.1.0.0/24", None, 4097, None, False, False, False, False),
            Network("nb", "beta", "overlay", "swarm", "10.2.0.0/24", None, 4098, 1400, False, False, False, False))
    return ClusterSnapshot(0.0, engines, "swarm", nodes=nodes, networks=nets)


def mtu(net, src, dst, path):
    return ProbeResult("mtu", net, src, dst, 1.0, path_mtu=path)


def full_paths(except_through: str = "") -> list[ProbeResult]:
    return [mtu(net, s, d, size) for net, size in (("alpha", 1450), ("beta", 1350)) for s in HOSTS for d in HOSTS
            if s != d and except_through not in (s, d)]


NODE3_HOLES = [mtu("alpha", "node1", "node3", 1300), mtu("alpha", "node3", "node2", 1200),
               mtu("beta", "node4", "node3", 1250), mtu("beta", "node3", "node1", 1340)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
def test_a_node_black_hole_states_and_remedies_the_smallest_path_mtu(order):
    probes = full_paths(except_through="node3") + [NODE3_HOLES[i] for i in order]
    [hole] = [f for f in diagnose(cluster(), probes) if f.check.startswith("mtu.")]
    assert (hole.check, hole.subject_kind, hole.subject, hole.subject_key) == ("mtu.black_hole", "node", "node3",
                                                                              "id-node3")
    assert hole.summary == ("node3's underlay fits 1200-byte overlay packets: larger ones vanish on every path "
                            "through it (alpha, beta)")
    assert hole.evidence == ("path MTU node1->node3 1300 on alpha, node3->node2 1200 on alpha, "
                             "node3->node1 1340 on beta, node4->node3 1250 on beta")
    # the underlay must carry the largest overlay (alpha: 1450 + 50); the overlays must fit the smallest path
    assert hole.remedy == ("raise node3's underlay MTU to at least 1500 (VXLAN adds 50 bytes), or recreate alpha, "
                           "beta with --opt com.docker.network.driver.mtu=1250")


def test_the_node_finding_merged_with_its_small_underlay_keeps_the_smallest():
    probes = full_paths(except_through="node3") + NODE3_HOLES
    underlay = {f"192.168.0.{i}": 1500 for i in (1, 2, 3, 4)} | {"192.168.0.3": 1250}
    found = [f for f in diagnose(cluster(), probes, underlay_mtus=underlay) if f.check.startswith("mtu.")]
    assert [(f.check, f.subject) for f in found] == [("mtu.black_hole", "node3")]
    [hole] = found
    assert "fits 1200-byte" in hole.summary and hole.remedy.endswith("driver.mtu=1250")
    assert hole.evidence.endswith("; node3 has an underlay MTU of 1250; alpha, beta need 1500")
    assert [d.check for d in hole.details] == ["mtu.underlay"]


def test_holes_no_node_explains_are_one_finding_per_overlay_with_its_smallest():
    probes = full_paths() + [mtu("alpha", "node1", "node2", 1300), mtu("alpha", "node3", "node4", 1100),
                             mtu("alpha", "node2", "node1", 1200), mtu("beta", "node4", "node1", 1300)]
    holes = sorted((f for f in diagnose(cluster(), probes) if f.check == "mtu.black_hole"), key=lambda f: f.subject)
    assert [(f.subject_kind, f.subject) for f in holes] == [("network", "alpha"), ("network", "beta")]
    alpha, beta = holes
    assert alpha.summary == "MTU black hole on alpha: packets above 1100 bytes vanish"
    assert alpha.evidence == "path MTU below the overlay's 1450: node1->node2 1300, node2->node1 1200, " \
        "node3->node4 1100"
    assert "driver.mtu=1150 (now default 1500)" in alpha.remedy and "at least 1500" in alpha.remedy
    assert beta.summary == "MTU black hole on beta: packets above 1300 bytes vanish"
    assert "driver.mtu=1350 (now 1400)" in beta.remedy
