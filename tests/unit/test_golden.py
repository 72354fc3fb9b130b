"""Golden outputs: the whole parsed lab snapshot (recorded payloads -> model -> JSON) and every finding the doctor
gives on the demo scenarios and on constructed probe results, compared field by field with files committed in
tests/fixtures/golden. A change to any parser, join, sum, threshold or finding text shows here as a diff; when it
is deliberate, regenerate with OVERLAYTUI_UPDATE_GOLDEN=1 and read the diff before committing it.

These are what gives the mutation score (`make mutants`) its teeth on text and field mapping: the focused tests
elsewhere say *why* a value is right, these say that nothing else moved."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from overlaytui.analysis.findings import diagnose
from overlaytui.analysis.thresholds import LossThresholds
from overlaytui.export import snapshot_to_dict, summary_text
from overlaytui.model import ProbeResult
from overlaytui.sources.assemble import assemble, swarm_poll_from_payloads
from overlaytui.sources.demo import DemoSource
from overlaytui.sources.parse import parse_identity
from tests.unit.test_assemble import engine_polls, load

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"


def check(name: str, data) -> None:
    path = GOLDEN / name
    text = json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"
    if os.environ.get("OVERLAYTUI_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    expected = json.loads(path.read_text())
    actual = json.loads(text)
    assert actual == expected, f"{name} differs from the golden file (regenerate deliberately: see the docstring)"


def lab_snapshot(nodes=(1, 2, 3)):
    swarm = swarm_poll_from_payloads(parse_identity(load("node1-info.json")), load("nodes.json"),
                                     load("services.json"), load("tasks.json"), load("networks.json"))
    polls, engines, samples = engine_polls(nodes)
    return assemble(taken_at=1_700_000_000.0, engines=engines, swarm=swarm, polls=polls, samples=samples)


def test_the_parsed_lab_snapshot():
    check("lab-snapshot.json", snapshot_to_dict(lab_snapshot()))


def test_the_lab_snapshot_from_the_manager_only():
    snapshot = lab_snapshot(nodes=(1,))
    check("lab-snapshot-manager-only.json", {"json": snapshot_to_dict(snapshot), "text": summary_text(snapshot)})


def findings_of(snapshot, probes, **kwargs) -> list[dict]:
    from overlaytui.commands.doctor import finding_dict

    return [finding_dict(f) for f in diagnose(snapshot, probes, **kwargs)]


@pytest.mark.parametrize("scenario", ["healthy", "loss", "mtu", "node-down", "rolling-update"])
def test_findings_on_the_demo_scenarios(scenario):
    clock = [1_800_000_000.0]
    source = DemoSource(scenario, seed=7, clock=lambda: clock[0])
    clock[0] += 40  # past the settle time of fresh tasks
    asyncio.run(source.start())
    snapshot = source.snapshot()
    check(f"findings-demo-{scenario}.json", findings_of(snapshot, source.probe_results()))


def ping(net, src, dst, sent, received, rtt=0.3, error=""):
    return ProbeResult("ping", net, src, dst, 0.0, sent=sent, received=received,
                       rtt_avg_ms=rtt if received else None, error=error)


def test_findings_on_constructed_probe_results():
    """Boundaries of every probe check on the lab's real topology: loss exactly at the thresholds, a loss-free
    pair, a blocked pair, encrypted overlays silent where plain ones pass, failed probes, slow pairs, MTU holes,
    discovery results, an underlay too small."""
    snapshot = lab_snapshot()
    overlays = [n.name for n in snapshot.networks if n.driver == "overlay" and not n.ingress]
    plain = overlays[0]
    probes = [
        ping(plain, "node1", "node2", 1000, 999),   # exactly 0.1 %: bad
        ping(plain, "node2", "node1", 10000, 9999),  # 0.01 %: acceptable at most
        ping(plain, "node1", "node3", 100000, 100000),  # loss-free, enough samples: good, no finding
        ping(plain, "node3", "node1", 100, 100),  # loss-free, too few samples
        ping(plain, "node2", "node3", 100, 0),  # silent both ways on the plain overlay: blocked
        ping(plain, "node3", "node2", 100, 0),
        ping(plain, "node2", "node2", 0, 0, error="exec on node2: no answer within the timeout"),
        ping(plain, "node3", "node3", 50, 50, rtt=25.0),  # slow
        ProbeResult("mtu", plain, "node1", "node2", 0.0, path_mtu=1350),
        ProbeResult("mtu", plain, "node2", "node1", 0.0, path_mtu=1400),
        ProbeResult("mtu", plain, "node1", "node3", 0.0, path_mtu=1450),
        ProbeResult("discovery", plain, "node1", "node2", 0.0, resolved_vip="10.0.0.2", resolved_tasks=2,
                    vip_answers=False, task_answers=True),
        ProbeResult("discovery", plain, "node2", "node1", 0.0, resolved_vip=None, resolved_tasks=0),
        ProbeResult("discovery", plain, "node3", "node1", 0.0, resolved_vip="10.0.0.2", resolved_tasks=3,
                    vip_answers=True, task_answers=True),
        ProbeResult("discovery", plain, "node3", "node2", -1.0, error="on node3: nslookup did not run"),
    ]
    underlay = {n.address: (1400 if n.hostname == "node3" else 1500) for n in snapshot.nodes}
    check("findings-constructed.json",
          findings_of(snapshot, probes, thresholds=LossThresholds(), underlay_mtus=underlay))


def _five_nodes():
    clock = [1_800_000_000.0]
    source = DemoSource("healthy", seed=2, clock=lambda: clock[0])
    clock[0] += 40
    asyncio.run(source.start())
    return source.snapshot()


def _pings(snapshot, nets, lost_of, sent=2000):
    hosts = [n.hostname for n in snapshot.nodes]
    return [ProbeResult("ping", net, a, b, 0.0, sent=sent, received=sent - lost_of(net, a, b), rtt_avg_ms=0.3)
            for net in nets for a in hosts for b in hosts if a != b]


ROOT_CAUSES = {
    # 5 % through node4 on both plain overlays: one node finding
    "node": lambda net, a, b: 100 if "node4" in (a, b) else 0,
    # only frontend loses, everywhere: one overlay finding
    "network": lambda net, a, b: 60 if net == "frontend" else 0,
    # one path both ways, and one single direction elsewhere: a path finding and a pair finding
    "paths": lambda net, a, b: 80 if {a, b} == {"node1", "node2"} else 40 if (a, b) == ("node3", "node5") else 0,
    # node5 cut off everywhere: one blocked finding
    "blocked": lambda net, a, b: 2000 if "node5" in (a, b) else 0,
    # only towards node2: the direction is named
    "towards": lambda net, a, b: 100 if b == "node2" else 0,
}


@pytest.mark.parametrize("case", sorted(ROOT_CAUSES))
def test_root_cause_findings(case):
    snapshot = _five_nodes()
    probes = _pings(snapshot, ("frontend", "backend"), ROOT_CAUSES[case])
    check(f"root-cause-{case}.json", findings_of(snapshot, probes))


def test_operator_checks_together():
    """IPAM near full and exhausted, an nftables engine, a stranger peer, inconsistent discovery, an MTU black
    hole through a node with a small underlay, and silent encrypted overlays, in one snapshot."""
    from dataclasses import replace

    from overlaytui.model import Peer

    snapshot = _five_nodes()
    networks = []
    for net in snapshot.networks:
        if net.name == "frontend":
            net = replace(net, ipam_status=(90, 10))
        elif net.name == "backend":
            net = replace(net, ipam_status=(50, 0))
        if net.views:
            view = net.views[0]
            net = replace(net, views=(replace(view, peers=(*view.peers, Peer("x", "192.168.7.7"))), *net.views[1:]))
        networks.append(net)
    engines = tuple(replace(e, firewall="nftables" if e.hostname == "node3" else "iptables") for e in snapshot.engines)
    snapshot = replace(snapshot, networks=tuple(networks), engines=engines)
    hosts = [n.hostname for n in snapshot.nodes]
    probes = [ProbeResult("mtu", net, a, b, 0.0, path_mtu=1350 if "node2" in (a, b) else 1450)
              for net in ("frontend", "backend") for a in hosts for b in hosts if a != b]
    probes += _pings(snapshot, ("frontend",), lambda net, a, b: 0)
    probes += _pings(snapshot, ("payments-secure",), lambda net, a, b: 2000)
    probes += [ProbeResult("discovery", "frontend", h, "node1" if h != "node1" else "node2", 0.0,
                           resolved_vip="10.0.0.2", resolved_tasks=5 if h != "node4" else 3, vip_answers=True,
                           task_answers=True) for h in hosts]
    underlay = {n.address: 1400 if n.hostname == "node2" else 1500 for n in snapshot.nodes}
    check("operator-checks.json", findings_of(snapshot, probes, underlay_mtus=underlay))
