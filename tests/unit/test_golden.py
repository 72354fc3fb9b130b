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


@pytest.mark.parametrize("scenario", ["healthy", "loss", "mtu", "node-down", "rolling-update", "bad-node"])
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


def _six(pairs):
    """Loss on exactly these (src, dst) pairs of a six-node cluster, both plain overlays."""
    return lambda net, a, b: 100 if (a, b) in pairs else 0


def _both_ways(*pairs):
    return {p for a, b in pairs for p in ((a, b), (b, a))}


BOUNDARIES = {  # six nodes: a node has 10 pairs per overlay, an overlay 30
    "node at 60 %": _six(_both_ways(("node4", "node1"), ("node4", "node2"), ("node4", "node3"))),
    "node below 60 %": _six(_both_ways(("node4", "node1"), ("node4", "node2")) | {("node4", "node3")}),
    "from one node": _six({("node2", d) for d in ("node1", "node3", "node4", "node5", "node6")}),
    "overlay at 60 %": _six({(a, b) for a in ("node1", "node2", "node3", "node4") for b in
                             ("node1", "node2", "node3", "node4") if a != b} | _both_ways(
        ("node5", "node1"), ("node5", "node2"), ("node6", "node3"))),
    "node with noise elsewhere": lambda net, a, b: 100 if "node4" in (a, b) else 30 if (a, b) == ("node1", "node2")
    else 0,
}


@pytest.mark.parametrize("case", sorted(BOUNDARIES))
def test_root_cause_boundaries(case):
    clock = [1_800_000_000.0]
    source = DemoSource("healthy", seed=2, clock=lambda: clock[0], scale=(6, 8, 0))
    clock[0] += 40
    asyncio.run(source.start())
    snapshot = source.snapshot()
    probes = _pings(snapshot, ("frontend", "backend"), BOUNDARIES[case], sent=40000)
    check(f"root-cause-six-{case.replace(' ', '-').replace('%', 'pct')}.json", findings_of(snapshot, probes))


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


def _cluster_states() -> dict:
    """The swarm, engine, node, peer and task checks over the states a real cluster goes through."""
    from dataclasses import replace

    from overlaytui.model import Health

    base = _five_nodes()

    def nodes(**changes):
        return tuple(replace(n, **changes.get(n.hostname, {})) for n in base.nodes)

    def engines(**changes):
        return tuple(replace(e, **changes.get(e.hostname, {})) for e in base.engines)

    down = {"state": "down"}
    refused = {"health": Health.ERROR, "message": "connection refused"}
    web = next(s for s in base.services if s.name == "web")
    failed_web = tuple(replace(t, state="rejected", error="No such image: web:2") if t.service_id == web.id else t
                       for t in base.tasks)
    no_peers = tuple(replace(net, views=tuple(replace(v, peers=()) if i == 1 else v for i, v in enumerate(net.views)))
                     if net.name == "frontend" else net for net in base.networks)
    return {
        "no engine given": replace(base, engines=()),
        "every engine refuses": replace(base, engines=tuple(replace(e, **refused) for e in base.engines)),
        "engines of unknown role": replace(base, engines=tuple(replace(e, role="unknown") for e in base.engines)),
        "standalone engines": replace(base, engines=tuple(replace(e, role="standalone") for e in base.engines),
                                      nodes=()),
        "workers only": replace(base, nodes=(), engines=tuple(replace(e, role="worker") for e in base.engines)),
        "quorum lost": replace(base, nodes=nodes(node2=down, node3={"reachability": "unreachable"})),
        "quorum at risk": replace(base, nodes=nodes(node2={"reachability": "unreachable"})),
        "one manager": replace(base, nodes=nodes(node2={"role": "worker"}, node3={"role": "worker"})),
        "five managers, one down": replace(base, nodes=nodes(node4={"role": "manager"}, node5={
            "role": "manager", "state": "down"})),
        "drained and paused": replace(base, nodes=nodes(node4={"availability": "drain"},
                                                        node5={"availability": "pause"})),
        "a node down, its engine gone": replace(base, nodes=nodes(node3={"state": "unknown"}),
                                                engines=engines(node3={"health": Health.ERROR, "message": "EOF"})),
        "a node down, no engine of its own": replace(base, nodes=nodes(node4={"state": "disconnected"}),
                                                     engines=tuple(e for e in base.engines if e.hostname != "node4")),
        "a peer list missing nodes": replace(base, networks=no_peers),
        "tasks rejected": replace(base, tasks=failed_web),
    }


@pytest.mark.parametrize("state", sorted(_cluster_states()))
def test_findings_over_cluster_states(state):
    check(f"cluster-state-{state.replace(' ', '-').replace(',', '')}.json", findings_of(_cluster_states()[state], []))


SERVICE_VARIANTS = {
    "bare": {"ID": "s1"},
    "no id": {"Spec": {"Name": "x"}},
    "not an object": ["ID", "s1"],
    "global": {"ID": "s2", "Spec": {"Name": "g", "Mode": {"Global": {}}}},
    "global job": {"ID": "s3", "Spec": {"Name": "gj", "Mode": {"GlobalJob": {}}}},
    "replicated job": {"ID": "s4", "Spec": {"Name": "rj", "Mode": {"ReplicatedJob": {"MaxConcurrent": 2,
                                                                                    "TotalCompletions": 6}}}},
    "replicated, legacy networks, endpoint spec in the spec": {
        "ID": "s5", "Spec": {"Name": "legacy", "Mode": {"Replicated": {"Replicas": 3}},
                             "Networks": [{"Target": "n1"}, "junk"], "EndpointSpec": {"Mode": "dnsrr"},
                             "Labels": {"b": "2", "a": "1"}},
        "Endpoint": {"Ports": [{"PublishedPort": 8080, "TargetPort": 80},
                               {"PublishedPort": 53, "TargetPort": 53, "Protocol": "udp"},
                               {"TargetPort": 9}, "junk"]},
        "UpdateStatus": {"State": "rollback_completed"}},
    "modern: networks in the task template, endpoint spec, status, pinned image": {
        "ID": "s6", "Spec": {"Name": "web", "TaskTemplate": {"Networks": [{"Target": "n2"}],
                                                              "ContainerSpec": {"Image": "web:1@sha256:abc"}},
                             "Networks": [{"Target": "ignored"}]},
        "Endpoint": {"Spec": {"Mode": "vip"}, "VirtualIPs": [{"NetworkID": "n2", "Addr": "10.0.1.2/24"},
                                                             {"NetworkID": "n3"}, "junk"]},
        "ServiceStatus": {"RunningTasks": 2, "DesiredTasks": 3}},
}
NODE_VARIANTS = {
    "bare": {"ID": "abcdefghijklmnop"},
    "manager leader": {"ID": "n1", "Spec": {"Role": "manager", "Availability": "drain", "Labels": {"z": "1"}},
                       "Status": {"State": "ready", "Addr": "10.0.0.1"},
                       "Description": {"Hostname": "mgr", "Engine": {"EngineVersion": "28.1.1"}},
                       "ManagerStatus": {"Leader": True, "Reachability": "reachable"}},
    "leader not true": {"ID": "n2", "ManagerStatus": {"Leader": "yes"}},
    "not an object": "n3",
}
TASK_VARIANTS = {
    "bare": {"ID": "t1"},
    "running with addresses": {
        "ID": "t2", "ServiceID": "s6", "Slot": 2, "NodeID": "n1", "DesiredState": "running",
        "Status": {"State": "running", "Message": "started", "Err": "", "Timestamp": "2026-01-02T03:04:05.5Z",
                   "ContainerStatus": {"ContainerID": "c1", "PID": 42, "ExitCode": 0}},
        "NetworksAttachments": [{"Network": {"ID": "n2", "Spec": {"Name": "frontend"}},
                                 "Addresses": ["10.0.1.5/24", "10.0.1.6/24"]}, "junk"]},
    "global, failed": {"ID": "t3", "ServiceID": "unknown-service-id", "Slot": 0, "NodeID": "",
                       "Status": {"State": "failed", "Err": "exit 1", "ContainerStatus": {"PID": 0}}},
}
NETWORK_VARIANTS = {
    "bare": {"Id": "net0"},
    "overlay with two subnets, options and status": {
        "Id": "net1", "Name": "frontend", "Driver": "overlay", "Scope": "swarm", "Attachable": True,
        "Ingress": False, "Internal": True, "Labels": {"k": "v"},
        "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097,4098", "encrypted": "",
                    "com.docker.network.driver.mtu": "1400"},
        "IPAM": {"Config": [{"Subnet": "fd00::/64"}, {"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]},
        "Status": {"IPAM": {"Subnets": {"10.0.1.0/24": {"IPsInUse": 7, "DynamicIPsAvailable": 249}}}}},
    "local bridge, IPv6 only, odd VNI": {
        "Id": "net2", "Name": "bridge", "Driver": "bridge", "Options": {
            "com.docker.network.driver.overlay.vxlanid_list": "x"},
        "IPAM": {"Config": [{"Subnet": "fd01::/64", "Gateway": "fd01::1"}, "junk"]},
        "Status": {"IPAM": {"Subnets": {"fd01::/64": {"IPsInUse": 1}}}}},
}
INFO_VARIANTS = {
    "standalone": {"Name": "box", "ServerVersion": "24.0.7", "Swarm": {"LocalNodeState": "inactive"}},
    "manager": {"Name": "mgr", "ServerVersion": "28.1.1", "FirewallBackend": {"Driver": "nftables"},
                "Swarm": {"LocalNodeState": "active", "NodeID": "n1", "NodeAddr": "10.0.0.1",
                          "ControlAvailable": True, "Cluster": {"ID": "c1"}}},
    "worker": {"Swarm": {"LocalNodeState": "active", "NodeID": "n2", "ControlAvailable": "true"}},
    "pending": {"Swarm": {"LocalNodeState": "pending", "NodeID": "n3"}},
}


def test_parsers_over_payload_variants():
    """Sparse, legacy, modern and malformed payloads through every swarm parser: what each field becomes."""
    from dataclasses import asdict

    from overlaytui.sources.parse import PayloadError, parse_network, parse_node, parse_service, parse_task

    def each(variants, parser):
        out = {}
        for name, raw in variants.items():
            try:
                value = parser(raw)
                out[name] = asdict(value) if not isinstance(value, dict) else value
            except PayloadError as exc:
                out[name] = f"PayloadError: {exc}"
        return out

    check("parser-variants.json", {
        "services": each(SERVICE_VARIANTS, parse_service),
        "nodes": each(NODE_VARIANTS, parse_node),
        "tasks": each(TASK_VARIANTS, lambda raw: parse_task(raw, {"s6": "web"})),
        "networks": each(NETWORK_VARIANTS, lambda raw: parse_network(raw, engine="unix:///e.sock")),
        "identities": each(INFO_VARIANTS, parse_identity),
    })


MTU_CASES = {
    # one path both ways: two nodes in common, no node to blame: a finding per overlay
    "one path": lambda net, a, b: 1350 if net == "frontend" and {a, b} == {"node1", "node2"} else None,
    # scattered over two overlays
    "scattered": lambda net, a, b: 1300 if (net, a, b) == ("frontend", "node1", "node2") else
    1200 if (net, a, b) == ("backend", "node3", "node4") else None,
    # through node4 on one overlay only: the node is named, with that overlay
    "one node, one overlay": lambda net, a, b: 1300 if net == "backend" and "node4" in (a, b) else None,
}


@pytest.mark.parametrize("case", sorted(MTU_CASES))
def test_mtu_black_hole_findings(case):
    snapshot = _five_nodes()
    hosts = [n.hostname for n in snapshot.nodes]
    probes = [ProbeResult("mtu", net, a, b, 0.0, path_mtu=MTU_CASES[case](net, a, b) or
                          snapshot.network(net).effective_mtu)
              for net in ("frontend", "backend") for a in hosts for b in hosts if a != b]
    check(f"mtu-{case.replace(' ', '-').replace(',', '')}.json", findings_of(snapshot, probes))


def test_ipam_over_subnets_and_stuck_tasks():
    """Address use counted from tasks, VIPs and local endpoints per subnet size and family, and the IPAM findings
    with tasks stuck in New (old enough, too fresh, more than five, on a network whose use is unknown)."""
    from dataclasses import replace

    from overlaytui.analysis.findings import check_ipam, ipam_usage
    from overlaytui.commands.doctor import finding_dict

    base = _five_nodes()
    frontend = base.network("frontend")
    web = next(s for s in base.services if s.name == "web")
    api = next(s for s in base.services if s.name == "api")
    tasks = list(base.tasks)
    on_frontend = [i for i, t in enumerate(tasks) if any(a.network_id == frontend.id for a in t.addresses)]
    tasks[on_frontend[0]] = replace(tasks[on_frontend[0]], state="complete")
    tasks[on_frontend[1]] = replace(tasks[on_frontend[1]], desired_state="shutdown")
    tasks[on_frontend[2]] = replace(tasks[on_frontend[2]], desired_state="ready", state="failed")
    tasks[on_frontend[3]] = replace(tasks[on_frontend[3]], desired_state="ready")
    base = replace(base, tasks=tuple(tasks))
    usage = {}
    for subnet in ("10.1.0.0/24", "10.1.0.0/27", "10.1.0.7/28", "10.1.0.0/30", "10.1.0.0/31", "fd00::/64", None,
                   "not a subnet"):
        usage[str(subnet)] = ipam_usage(base, replace(frontend, subnet=subnet, ipam_status=None))
    usage["engine count"] = ipam_usage(base, replace(frontend, ipam_status=(12, 4)))

    def stuck(service, count, age=60.0):
        template = next(t for t in base.tasks if t.service_id == service.id)
        return tuple(replace(template, id=f"stuck-{service.name}-{i}", slot=90 + i, state="new", addresses=(),
                             desired_state="running", timestamp=base.taken_at - age, container_id=None)
                     for i in range(count))

    def with_subnets(snapshot, **subnets):
        return replace(snapshot, networks=tuple(replace(n, subnet=subnets.get(n.name.replace("-", "_"), n.subnet))
                                                for n in snapshot.networks))

    cases = {
        "nearly full": with_subnets(base, frontend="10.1.0.0/28"),
        "full": with_subnets(base, frontend="10.1.0.0/29"),
        "stuck on a nearly full network": replace(with_subnets(base, frontend="10.1.0.0/28"),
                                                  tasks=base.tasks + stuck(api, 7)),
        "stuck, no network nearly full": replace(base, tasks=base.tasks + stuck(api, 2)),
        "stuck too recently": replace(base, tasks=base.tasks + stuck(web, 3, age=5.0)),
        "stuck, address use unknown": replace(with_subnets(base, frontend="fd00::/64"),
                                              tasks=base.tasks + stuck(web, 1)),
    }
    check("ipam-cases.json", {"usage": usage, "findings": {
        name: [finding_dict(f) for f in check_ipam(snapshot)] for name, snapshot in cases.items()}})
