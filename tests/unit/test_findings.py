"""Every doctor check, firing and quiet, on the demo cluster and constructed data."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from overlaytui.analysis.findings import (
    SETTLE_S,
    Severity,
    check_ipam,
    check_node_addresses,
    check_peers,
    check_tasks,
    diagnose,
    worst,
)
from overlaytui.model import ClusterSnapshot, Engine, Health, ProbeResult
from overlaytui.sources.demo import NODE_DOWN_AFTER, DemoSource


@pytest.fixture(scope="module")
def healthy() -> ClusterSnapshot:
    now = [1_800_000_000.0]
    source = DemoSource("healthy", seed=2, clock=lambda: now[0])
    asyncio.run(source.start())
    return source.snapshot()


def checks(findings) -> set[str]:
    return {f.check for f in findings}


def ping(net, src, dst, sent=30_000, received=30_000, rtt=0.3, error=""):
    return ProbeResult("ping", net, src, dst, 1.0, sent=sent, received=received, rtt_avg_ms=rtt, error=error)


def all_pairs(snapshot, net, **kwargs):
    hosts = [n.hostname for n in snapshot.nodes]
    return [ping(net, a, b, **kwargs) for a in hosts for b in hosts if a != b]


def test_a_healthy_cluster_has_no_warnings(healthy):
    probes = all_pairs(healthy, "frontend") + all_pairs(healthy, "backend")
    findings = diagnose(healthy, probes, underlay_mtus={n.address: 1500 for n in healthy.nodes})
    assert worst(findings) <= Severity.INFO, findings
    assert "dataplane.blocked" not in checks(findings) and "mtu.black_hole" not in checks(findings)


# --------------------------------------------------------------------------------------------- swarm


def test_no_engine_answers():
    snap = ClusterSnapshot(0.0, (Engine("unix:///x", Health.ERROR, "connection refused"),))
    [f] = diagnose(snap)
    assert (f.check, f.severity) == ("swarm.unreachable", Severity.ERROR) and "connection refused" in f.evidence


def test_swarm_not_active():
    snap = ClusterSnapshot(0.0, (Engine("unix:///x", Health.OK, role="standalone"),))
    assert checks(diagnose(snap)) == {"swarm.inactive"}


def test_no_manager_reachable():
    snap = ClusterSnapshot(0.0, (Engine("unix:///x", Health.OK, role="worker", node_id="w"),))
    assert checks(diagnose(snap)) == {"swarm.no_manager"}


def test_quorum(healthy):
    managers = [n for n in healthy.nodes if n.role == "manager"]
    assert len(managers) == 3 and "swarm.quorum_at_risk" not in checks(diagnose(healthy))
    one_down = replace(healthy, nodes=tuple(replace(n, state="down", reachability="unreachable")
                                            if n.id == managers[2].id else n for n in healthy.nodes))
    assert "swarm.quorum_at_risk" in checks(diagnose(one_down))
    two_down = replace(healthy, nodes=tuple(replace(n, state="down", reachability="unreachable")
                                            if n.id in (managers[1].id, managers[2].id) else n for n in healthy.nodes))
    assert "swarm.quorum_lost" in checks(diagnose(two_down))
    single = replace(healthy, nodes=tuple(replace(n, role="worker") if n.id != managers[0].id else n
                                          for n in healthy.nodes))
    assert "swarm.single_manager" in checks(diagnose(single))


def test_nodes_down_drain_pause(healthy):
    nodes = list(healthy.nodes)
    nodes[3] = replace(nodes[3], state="down")
    nodes[4] = replace(nodes[4], availability="drain")
    found = {f.check: f for f in diagnose(replace(healthy, nodes=tuple(nodes)))}
    assert found["node.down"].subject == "node4" and found["node.down"].severity is Severity.ERROR
    assert found["node.drain"].subject == "node5" and found["node.drain"].severity is Severity.WARNING
    nodes[4] = replace(nodes[4], availability="pause")
    assert "node.pause" in checks(diagnose(replace(healthy, nodes=tuple(nodes))))


# --------------------------------------------------------------------------------------------- tasks


def test_replicas_below_desired_with_the_task_error(healthy):
    web = next(s for s in healthy.services if s.name == "web")
    services = tuple(replace(s, desired_tasks=6) if s is web else s for s in healthy.services)
    failed = replace(next(t for t in healthy.tasks if t.service_name == "web"), id="f", state="rejected",
                     error="No such image: web:9", timestamp=9e9, desired_state="ready")
    snap = replace(healthy, services=services, tasks=(*healthy.tasks, failed))
    [f] = [f for f in diagnose(snap) if f.check == "service.replicas"]
    assert f.severity is Severity.WARNING and "4/6 running" in f.evidence and "No such image: web:9" in f.evidence
    assert f.subject_key == "web"


def test_imbalance_is_info(healthy):
    tasks = tuple(replace(t, node_id=healthy.nodes[0].id) if t.service_name == "worker" else t for t in healthy.tasks)
    found = [f for f in diagnose(replace(healthy, tasks=tasks)) if f.check == "service.imbalance"]
    assert found and found[0].subject == "worker" and found[0].severity is Severity.INFO


def test_probe_agent_services_are_never_findings_about_the_cluster(healthy):
    """Another overlaytui run's agents (global, per-run names) spread unevenly, short of tasks or behind a VIP
    while they come and go: not the cluster's problem (probing's coverage says what failed)."""
    from overlaytui.model import PROBE_LABEL

    worker = next(s for s in healthy.services if s.name == "worker")
    agent = replace(worker, name="overlaytui-probe-backend-68d700aa", labels=((PROBE_LABEL, "otherhost:42"),),
                    desired_tasks=(worker.desired_tasks or 0) + 5)
    tasks = tuple(replace(t, node_id=healthy.nodes[0].id) if t.service_name == "worker" else t for t in healthy.tasks)
    snap = replace(healthy, services=tuple(agent if s is worker else s for s in healthy.services), tasks=tasks)
    assert agent.probe_agent and not worker.probe_agent
    named = [f for f in diagnose(snap) if agent.name in f.subject or agent.name in f.summary + f.evidence]
    assert named == []
    assert {"service.imbalance", "service.replicas"} & checks(diagnose(replace(healthy, tasks=tasks)))


# --------------------------------------------------------------------------------------------- peers


def test_a_node_missing_from_a_peer_list(healthy):
    net = healthy.network("backend")
    view = net.views[0]
    cut = replace(view, peers=tuple(p for p in view.peers if p.address != healthy.nodes[-1].address))
    networks = tuple(replace(n, views=(cut, *n.views[1:])) if n.name == "backend" else n for n in healthy.networks)
    [f] = [f for f in diagnose(replace(healthy, networks=networks)) if f.check == "network.peers"]
    assert healthy.nodes[-1].hostname in f.summary and "7946" in f.remedy
    assert "network.peers" not in checks(diagnose(healthy))


# -------------------------------------------------------------------------------------------- underlay


def test_underlay_too_small_for_the_overlay(healthy):
    mtus = {n.address: 1500 for n in healthy.nodes}
    mtus[healthy.nodes[2].address] = 1400
    [found] = [f for f in diagnose(healthy, underlay_mtus=mtus) if f.check == "mtu.underlay"]
    # one finding for the node; default overlays need 1500 on the wire; backend is set to 1400 and fits
    assert found.subject == "node3" and found.subject_kind == "node"
    assert found.summary == "node3 has an underlay MTU of 1400; frontend, ingress, payments-secure need 1500"
    assert "backend" not in found.evidence and "mtu=1400" in found.remedy and "to 1500" in found.remedy


def test_a_black_hole_through_a_small_underlay_is_one_finding_about_the_node(healthy):
    mtus = {n.address: 1500 for n in healthy.nodes}
    mtus[healthy.nodes[2].address] = 1400
    probes = [ProbeResult("mtu", net, src, dst, 1.0, path_mtu=1350 if "node3" in (src, dst) else 1450)
              for net in ("frontend", "payments-secure") for src in ("node1", "node2", "node3")
              for dst in ("node1", "node2", "node3") if src != dst]
    found = [f for f in diagnose(healthy, probes, underlay_mtus=mtus) if f.check.startswith("mtu.")]
    assert [(f.check, f.subject) for f in found] == [("mtu.black_hole", "node3")]
    [hole] = found
    assert hole.summary.startswith("node3's underlay fits 1350-byte overlay packets")
    assert "underlay MTU of 1400" in hole.evidence and hole.details[0].check == "mtu.underlay"
    assert "mtu=1400" in hole.remedy


# ---------------------------------------------------------------------------------------------- probes


def test_blocked_vxlan_between_two_ready_nodes(healthy):
    probes = all_pairs(healthy, "frontend") + all_pairs(healthy, "backend")
    cut = [ping(p.network, p.src_node, p.dst_node, received=0, rtt=None) if {p.src_node, p.dst_node} ==
           {"node2", "node5"} else p for p in probes]
    [f] = [f for f in diagnose(healthy, cut) if f.check == "dataplane.blocked"]
    assert f.subject == "node2 <-> node5" and "4789/udp" in f.remedy and f.severity is Severity.ERROR
    assert "loss.bad" not in checks(diagnose(healthy, cut))  # explained by the blocked pair


def test_loss_over_threshold_and_the_honest_verdicts(healthy):
    probes = [ping("frontend", "node1", "node4", sent=200, received=180),
              ping("frontend", "node1", "node2", sent=100, received=100),
              ping("frontend", "node1", "node3", sent=30_000, received=30_000, rtt=35.0)]
    found = {f.check: f for f in diagnose(healthy, probes)}
    assert found["loss.bad"].subject == "node1 -> node4 on frontend" and "20 of 200" in found["loss.bad"].evidence
    samples = found["loss.samples"]  # one pair: still the one grouped finding, the pair as its detail
    assert samples.subject == "overlays" and "1 pair" in samples.summary and "node1 -> node2 on frontend" in \
        samples.evidence and [d.subject for d in samples.details] == ["node1 -> node2 on frontend"]
    assert found["latency.high"].subject == "node1 -> node3 on frontend"


def test_mtu_black_hole_names_the_pairs_and_the_remedy(healthy):
    probes = [ProbeResult("mtu", "frontend", "node1", "node3", 1.0, path_mtu=1350),
              ProbeResult("mtu", "frontend", "node3", "node2", 1.0, path_mtu=1350),
              ProbeResult("mtu", "frontend", "node1", "node2", 1.0, path_mtu=1450)]
    [f] = [f for f in diagnose(healthy, probes) if f.check == "mtu.black_hole"]
    assert "node1->node3 1350" in f.evidence and "node1->node2" not in f.evidence
    assert "com.docker.network.driver.mtu=1400" in f.remedy
    assert "mtu.black_hole" not in checks(diagnose(healthy, probes[2:]))


def test_encrypted_overlay_without_esp(healthy):
    plain = all_pairs(healthy, "frontend", sent=50, received=50)
    secure = all_pairs(healthy, "payments-secure", sent=50, received=0, rtt=None)
    found = {f.check: f for f in diagnose(healthy, plain + secure)}
    assert found["encryption.esp"].subject == "payments-secure" and "ESP" in found["encryption.esp"].remedy
    assert "dataplane.blocked" not in found  # plain overlays pass: it is the encryption
    quiet = diagnose(healthy, plain + all_pairs(healthy, "payments-secure", sent=50, received=50))
    assert "encryption.esp" not in checks(quiet)


def test_a_failed_probe_is_a_warning(healthy):
    [f] = [f for f in diagnose(healthy, [ping("frontend", "node1", "node2", error="exec on node1: refused")])
           if f.check == "probe.failed"]
    assert f.severity is Severity.WARNING


def test_findings_are_sorted_worst_first(healthy):
    nodes = tuple(replace(n, availability="pause") if n.hostname == "node5" else n for n in healthy.nodes)
    probes = [ping("frontend", "node1", "node4", sent=200, received=150)]
    severities = [f.severity for f in diagnose(replace(healthy, nodes=nodes), probes)]
    assert severities == sorted(severities, reverse=True) and severities[0] is Severity.ERROR


def discovery(src, vip="10.1.0.2", tasks=5, vip_ok=True, task_ok=True):
    return ProbeResult("discovery", "frontend", src, "node9", 1.0, resolved_vip=vip, resolved_tasks=tasks,
                       vip_answers=vip_ok if vip else None, task_answers=task_ok)


def test_discovery_vip_silent_while_tasks_answer(healthy):
    found = [f for f in diagnose(healthy, [discovery("node1", vip_ok=False), discovery("node2")])
             if f.check.startswith("discovery")]
    assert [(f.check, f.subject) for f in found] == [("discovery.vip", "node1 on frontend")]
    assert "IPVS" in found[0].remedy
    # both silent: not the VIP's fault (the data plane checks say more)
    assert not [f for f in diagnose(healthy, [discovery("node1", vip_ok=False, task_ok=False)])
                if f.check.startswith("discovery")]


def test_discovery_dns_not_resolving(healthy):
    [f] = [f for f in diagnose(healthy, [discovery("node3", vip=None)]) if f.check.startswith("discovery")]
    assert f.check == "discovery.dns" and "127.0.0.11" in f.remedy


def test_discovery_tasks_missing_from_dns(healthy):
    results = [discovery("node1", tasks=2), discovery("node2", tasks=3), discovery("node3", tasks=3)]
    [f] = [f for f in diagnose(healthy, results) if f.check == "discovery.tasks"]
    assert f.subject == "node1 on frontend" and "2 of 3" in f.summary


def _missing_peer_with_fresh_tasks(healthy: ClusterSnapshot) -> ClusterSnapshot:
    """The last node missing from a peer list on backend while its tasks are 5 s old."""
    net = healthy.network("backend")
    view = net.views[0]
    cut = replace(view, peers=tuple(p for p in view.peers if p.address != healthy.nodes[-1].address))
    networks = tuple(replace(n, views=(cut, *n.views[1:])) if n.name == "backend" else n for n in healthy.networks)
    last = healthy.nodes[-1].id
    fresh = tuple(replace(t, timestamp=healthy.taken_at - 5) if t.node_id == last else t for t in healthy.tasks)
    return replace(healthy, networks=networks, tasks=fresh)


def test_fresh_tasks_do_not_count_for_the_peer_lists(healthy):
    assert "network.peers" not in checks(diagnose(_missing_peer_with_fresh_tasks(healthy)))


def test_tasks_the_managers_count_as_running_without_a_container_on_their_node(healthy):
    node = healthy.nodes[1]
    on_node = [t for t in healthy.tasks if t.node_id == node.id and t.state == "running"]
    assert on_node
    gone = {t.container_id for t in on_node}
    containers = tuple(c for c in healthy.containers if c.container_id not in gone)
    [f] = [f for f in diagnose(replace(healthy, containers=containers)) if f.check == "task.no_container"]
    assert f.severity is Severity.WARNING and f.subject == node.hostname and f.subject_key == node.id
    assert on_node[0].name in f.evidence and "drain" in f.remedy
    assert "task.no_container" not in checks(diagnose(healthy))
    # not while the tasks are fresh, nor when the node's engine did not answer (nothing to compare with)
    fresh = tuple(replace(t, timestamp=healthy.taken_at - 5) if t.node_id == node.id else t for t in healthy.tasks)
    assert "task.no_container" not in checks(diagnose(replace(healthy, containers=containers, tasks=fresh)))
    engines = tuple(replace(e, health=Health.ERROR) if e.node_id == node.id else e for e in healthy.engines)
    assert "task.no_container" not in checks(diagnose(replace(healthy, containers=containers, engines=engines)))


# ------------------------------------------------------------------------------ what operators report most


def _small_overlay(healthy, prefix: int):
    net = next(n for n in healthy.networks if n.name == "backend")
    return replace(healthy, networks=tuple(replace(n, subnet=f"10.9.0.0/{prefix}") if n is net else n
                                           for n in healthy.networks)), net


def test_ipam_exhausted_low_and_quiet(healthy):
    from overlaytui.analysis.findings import check_ipam, ipam_usage

    used, usable = ipam_usage(healthy, next(n for n in healthy.networks if n.name == "backend"))
    assert usable == 253 and 0 < used < usable  # the demo's /24: tasks, VIPs and local endpoints counted once
    assert check_ipam(healthy) == []
    full, net = _small_overlay(healthy, 32 - max(2, (used + 2).bit_length()))  # the smallest subnet that fits
    found = check_ipam(full)
    assert [f.check for f in found] in (["ipam.low"], ["ipam.exhausted"]) and found[0].subject == "backend"
    tiny, _ = _small_overlay(healthy, 29)  # 5 usable addresses: fewer than in use
    [exhausted] = check_ipam(tiny)
    assert exhausted.check == "ipam.exhausted" and exhausted.severity is Severity.ERROR
    assert f"{used} of 5 usable addresses of 10.9.0.0/29" in exhausted.evidence


def test_ipam_tasks_stuck_in_new_without_an_address(healthy):
    from overlaytui.analysis.findings import check_ipam

    net = next(n for n in healthy.networks if n.name == "backend")
    service = next(s for s in healthy.services if net.id in s.network_ids)
    task = next(t for t in healthy.tasks if t.service_id == service.id)
    stuck = replace(task, id="stuck", state="new", addresses=(), timestamp=healthy.taken_at - 60, container_id=None)
    fresh = replace(stuck, id="fresh", timestamp=healthy.taken_at - 1)
    # nothing nearly full: laid at every overlay of the service (any may be the one)
    found = check_ipam(replace(healthy, tasks=(*healthy.tasks, stuck, fresh)))
    names = {n.id: n.name for n in healthy.networks}
    assert sorted(f.subject for f in found) == sorted(names[i] for i in service.network_ids if names[i] != "ingress")
    assert all(f.check == "ipam.exhausted" and "1 task stuck in New" in f.evidence for f in found)
    # backend nearly full: laid at backend alone
    small, _ = _small_overlay(healthy, 29)
    used = [f for f in check_ipam(replace(small, tasks=(*small.tasks, stuck))) if f.check == "ipam.exhausted"]
    assert [f.subject for f in used] == ["backend"] and "stuck in New" in used[0].evidence
    assert check_ipam(replace(healthy, tasks=(*healthy.tasks, fresh))) == []  # a task just created: not yet


def test_firewall_backend(healthy):
    from overlaytui.analysis.findings import check_firewall

    nft = tuple(replace(e, firewall="nftables") if e.hostname == "node2" else replace(e, firewall="iptables")
                for e in healthy.engines)
    [found] = check_firewall(replace(healthy, engines=nft))
    assert (found.check, found.subject, found.severity) == ("engine.firewall", "node2", Severity.ERROR)
    assert "iptables" in found.remedy
    every = tuple(replace(e, firewall="nftables") for e in healthy.engines)  # one cause: one finding
    [found] = check_firewall(replace(healthy, engines=every))
    assert (found.subject, len(found.details)) == ("engines", 5) and "5 engines" in found.summary
    assert "node1, node2, node3, node4, node5" in found.evidence
    assert check_firewall(healthy) == []  # not reported (API < 1.49): nothing said
    assert check_firewall(replace(healthy, engines=tuple(replace(e, firewall="iptables") for e in healthy.engines))
                          ) == []


def test_vip_idle_timeout_is_info_and_names_the_vip_services(healthy):
    from overlaytui.analysis.findings import check_vip_idle

    [found] = check_vip_idle(healthy)
    vip = sorted(s.name for s in healthy.services if s.endpoint_mode == "vip" and s.vips)
    assert found.severity is Severity.INFO and "900 s" in found.summary and vip[0] in found.evidence
    assert "keepalive" in found.remedy and "dnsrr" in found.remedy
    dnsrr = tuple(replace(s, endpoint_mode="dnsrr", vips=()) for s in healthy.services)
    assert check_vip_idle(replace(healthy, services=dnsrr)) == []


def test_a_peer_address_no_node_advertises(healthy):
    from overlaytui.analysis.findings import check_node_addresses
    from overlaytui.model import Peer

    assert check_node_addresses(healthy) == []
    net = next(n for n in healthy.networks if n.views)
    view = replace(net.views[0], peers=(*net.views[0].peers, Peer("abc", "192.168.99.7")))
    odd = replace(healthy, networks=tuple(replace(n, views=(view, *n.views[1:])) if n is net else n
                                          for n in healthy.networks))
    [found] = check_node_addresses(odd)
    assert found.check == "node.address" and found.subject == "192.168.99.7" and "--data-path-addr" in found.remedy


def test_discovery_inconsistent_between_nodes(healthy):
    def disc(src, tasks):
        return ProbeResult("discovery", "frontend", src, "node1" if src != "node1" else "node2", 1.0,
                           resolved_vip="10.0.0.2", resolved_tasks=tasks, vip_answers=True, task_answers=True)
    same = [disc("node1", 5), disc("node2", 5), disc("node3", 5)]
    assert "discovery.inconsistent" not in checks(diagnose(healthy, same))
    [found] = [f for f in diagnose(healthy, [*same[:2], disc("node3", 3)]) if f.check == "discovery.inconsistent"]
    assert found.subject == "frontend" and "node3 3" in found.evidence and "node1 5" in found.evidence


def test_a_node_cut_off_from_everyone_is_one_blocked_finding(healthy):
    probes = all_pairs(healthy, "frontend") + all_pairs(healthy, "backend")
    cut = [ping(p.network, p.src_node, p.dst_node, received=0, rtt=None) if "node5" in (p.src_node, p.dst_node)
           else p for p in probes]
    [found] = [f for f in diagnose(healthy, cut) if f.check == "dataplane.blocked"]
    node5 = next(n for n in healthy.nodes if n.hostname == "node5")
    assert (found.subject, found.subject_key, len(found.details)) == ("node5", node5.id, 4)
    assert "node1, node2, node3, node4" in found.summary
    assert not [f for f in diagnose(healthy, cut) if f.check.startswith("loss.")]  # explained, not loss


def test_every_silent_encrypted_overlay_is_one_esp_finding(healthy):
    import dataclasses

    second = dataclasses.replace(next(n for n in healthy.networks if n.name == "payments-secure"), id="sec2",
                                 name="secure-two")
    snap = replace(healthy, networks=(*healthy.networks, second))
    plain = all_pairs(snap, "frontend", sent=50, received=50)
    silent = [ping(net, p.src_node, p.dst_node, sent=50, received=0, rtt=None) for net in ("payments-secure",
                                                                                          "secure-two")
              for p in all_pairs(snap, "frontend")]
    [esp] = [f for f in diagnose(snap, plain + silent) if f.check == "encryption.esp"]
    assert esp.subject == "payments-secure, secure-two" and "drop all traffic" in esp.summary
    assert "loss.bad" not in checks(diagnose(snap, plain + silent))


def test_ipam_low_from_the_engines_own_count(healthy):
    from overlaytui.analysis.findings import check_ipam

    def with_status(in_use, available):
        return replace(healthy, networks=tuple(replace(n, ipam_status=(in_use, available)) if n.name == "backend"
                                               else n for n in healthy.networks))
    [low] = check_ipam(with_status(85, 15))
    assert (low.check, low.subject, low.severity) == ("ipam.low", "backend", Severity.WARNING)
    assert "85 of 100 usable addresses" in low.evidence
    [full] = check_ipam(with_status(100, 0))
    assert full.check == "ipam.exhausted"
    assert check_ipam(with_status(79, 21)) == []


# ----------------------------------------------------------------------- one finding per root cause


def vip(net, src, ok=False):
    return ProbeResult("discovery", net, src, "node9", 1.0, resolved_vip="10.1.0.2", resolved_tasks=5,
                       vip_answers=ok, task_answers=True)


def test_a_vip_silent_on_every_node_is_one_finding_with_the_places_as_details(healthy):
    hosts = [n.hostname for n in healthy.nodes]
    results = [vip(net, h) for net in ("frontend", "backend") for h in hosts]
    [f] = [f for f in diagnose(healthy, results) if f.check.startswith("discovery")]
    assert (f.check, f.severity, f.subject_kind, f.subject) == ("discovery.vip", Severity.ERROR, "swarm",
                                                                "every node")
    assert "node1, node2, node3, node4, node5 on backend, frontend" in f.summary and "IPVS" in f.remedy
    assert len(f.details) == 10 and {d.subject for d in f.details} == {f"{h} on {net}" for h in hosts
                                                                      for net in ("frontend", "backend")}


def test_a_vip_silent_on_one_node_only_is_about_that_node(healthy):
    hosts = [n.hostname for n in healthy.nodes]
    results = [vip(net, h, ok=h != "node3") for net in ("frontend", "backend") for h in hosts]
    [f] = [f for f in diagnose(healthy, results) if f.check.startswith("discovery")]
    node3 = next(n.id for n in healthy.nodes if n.hostname == "node3")
    assert (f.subject_kind, f.subject, f.subject_key) == ("node", "node3", node3) and "(on every overlay" in f.summary
    assert [d.subject for d in f.details] == ["node3 on backend", "node3 on frontend"]


def test_a_vip_silent_on_one_overlay_only_is_about_that_overlay(healthy):
    hosts = [n.hostname for n in healthy.nodes]
    results = [vip(net, h, ok=net == "backend" or h == "node5") for net in ("frontend", "backend") for h in hosts]
    [f] = [f for f in diagnose(healthy, results) if f.check.startswith("discovery")]
    assert (f.subject_kind, f.subject) == ("network", "frontend") and "from node1, node2, node3, node4" in f.summary
    assert len(f.details) == 4


def test_discovery_places_that_share_nothing_stay_apart(healthy):
    results = [vip("frontend", "node1"), vip("frontend", "node2", ok=True), vip("backend", "node2"),
               vip("backend", "node1", ok=True)]
    found = [f for f in diagnose(healthy, results) if f.check.startswith("discovery")]
    assert sorted(f.subject for f in found) == ["node1 on frontend", "node2 on backend"]
    assert not [f for f in diagnose(healthy, [vip(n, h, ok=True) for n in ("frontend", "backend")
                                              for h in ("node1", "node2")]) if f.check.startswith("discovery")]


def test_dns_failing_everywhere_is_one_finding(healthy):
    results = [ProbeResult("discovery", "frontend", h, "node1", 1.0, resolved_vip=None, resolved_tasks=0)
               for h in ("node1", "node2", "node3")]
    [f] = [f for f in diagnose(healthy, results) if f.check.startswith("discovery")]
    assert (f.check, f.subject, len(f.details)) == ("discovery.dns", "every node", 3)


def test_too_few_samples_is_one_info_line_with_the_pair_count(healthy):
    probes = all_pairs(healthy, "frontend", sent=100, received=100) + all_pairs(healthy, "backend", sent=100,
                                                                               received=100)
    findings = diagnose(healthy, probes)
    [f] = [f for f in findings if f.check == "loss.samples"]
    assert (f.severity, f.subject) == (Severity.INFO, "overlays") and "40 pairs" in f.summary
    assert "100 packets per pair, none lost" in f.evidence and len(f.details) == 40
    assert "~30,000" in f.remedy and "no loss in 100 packets" in f.details[0].evidence
    # enough packets: no finding at all
    assert "loss.samples" not in checks(diagnose(healthy, all_pairs(healthy, "frontend")))


def test_some_loss_below_the_threshold_is_one_info_line(healthy):
    probes = [ping("frontend", "node1", "node2", sent=20_000, received=19_999),
              ping("backend", "node3", "node4", sent=20_000, received=19_998)]
    [f] = [f for f in diagnose(healthy, probes) if f.check == "loss.acceptable"]
    assert f.subject == "overlays" and "2 pairs" in f.summary
    assert f.evidence.startswith("node3 -> node4 on backend 0.010 %, node1 -> node2 on frontend 0.005 %")


def test_slow_pairs_through_one_node_are_that_node(healthy):
    probes = [ping("frontend", "node2", d, rtt=40.0) for d in ("node1", "node3", "node4")]
    [f] = [f for f in diagnose(healthy, probes) if f.check == "latency.high"]
    assert (f.subject_kind, f.subject, len(f.details)) == ("node", "node2", 3) and "40.00 ms" in f.evidence
    scattered = [ping("frontend", "node1", "node2", rtt=40.0), ping("frontend", "node3", "node4", rtt=30.0)]
    [f] = [f for f in diagnose(healthy, scattered) if f.check == "latency.high"]
    assert f.subject == "overlays" and f.evidence.startswith("RTT avg node1 -> node2 on frontend 40.00 ms")


def test_probe_failures_with_one_reason_are_one_finding(healthy):
    hosts = [n.hostname for n in healthy.nodes]
    failed = [ping("frontend", a, b, error=f"no report from {a}'s agent within the deadline")
              for a in hosts for b in hosts if a != b]
    [f] = [f for f in diagnose(healthy, failed) if f.check == "probe.failed"]
    assert f.subject == "probes (no report from the source node's agent…)" and len(f.details) == 20
    assert "20 probes from 5 nodes failed" in f.summary and f.details[0].evidence.startswith("no report from node1")
    # the same reason on one node only: about that node, whatever the count
    one = [p for p in failed if p.src_node == "node2"]
    [f] = [f for f in diagnose(healthy, one) if f.check == "probe.failed"]
    assert (f.subject_kind, f.subject) == ("node", "node2") and "4 probes from node2" in f.summary
    [f] = [f for f in diagnose(healthy, one[:1]) if f.check == "probe.failed"]
    assert f.subject == "node2" and f.summary == "1 probe from node2 failed: not measured"


def test_probe_failures_with_different_reasons_stay_apart(healthy):
    failed = [ping("frontend", "node1", "node2", error="exec on node1: refused"),
              ping("frontend", "node3", "node2", error="exec on node3: refused"),
              ping("frontend", "node4", "node5", error="no such container")]
    found = [f for f in diagnose(healthy, failed) if f.check == "probe.failed"]
    assert sorted(f.subject for f in found) == ["node4", "probes (exec on the source node: refused)"]


def test_the_demo_at_its_start_has_one_line_per_cause():
    """The demo's loss scenario measured with few packets yet: one loss finding (node4) and one samples line."""
    now = [1_800_000_000.0]
    source = DemoSource("loss", seed=7, clock=lambda: now[0])
    now[0] += 40
    asyncio.run(source.start())
    few = [replace(r, sent=200, received=200 - (r.sent - r.received) * 200 // r.sent)
           for r in source.probe_results() if r.kind == "ping"]
    findings = diagnose(source.snapshot(), few)
    per_check = {c: sum(1 for f in findings if f.check == c) for c in checks(findings)}
    assert per_check.get("loss.samples") == 1 and all(n == 1 for n in per_check.values()), per_check


# ------------------------------------------------------------------ the timeline while results stream in


def stream(snapshot, batches):
    """The moments a FrameBuilder finds, frame by frame, as probe results arrive batch by batch (each batch adds
    to the latest results, as a probe session's rounds do)."""
    from overlaytui.frame import FrameBuilder
    from overlaytui.model import ProbeData

    builder = FrameBuilder(underlay=lambda addresses: {})
    latest: dict = {}
    frames = []
    for i, batch in enumerate(batches):
        for r in batch:
            latest[(r.kind, r.network, r.src_node, r.dst_node)] = r
        recent: dict = {}
        for r in latest.values():
            recent[r.network] = (*recent.get(r.network, ()), r)
        frames.append(builder.build(replace(snapshot, taken_at=snapshot.taken_at + i), ProbeData(recent=recent)))
    return [[m for m in frame.moments if m.kind in ("finding", "resolved")] for frame in frames]


def test_the_timeline_never_opens_and_resolves_a_finding_in_one_frame_while_results_stream_in(healthy):
    hosts = [n.hostname for n in healthy.nodes]
    failing = [[ping("frontend", a, b, error=f"exec on {a}: no answer within the timeout") for b in hosts if b != a]
               for a in hosts]  # one node's agent after the other
    silent_vip = [[vip("frontend", h)] for h in hosts] + [[vip("backend", h)] for h in hosts]
    per_frame = stream(healthy, [[]] + failing + silent_vip)
    for moments in per_frame:
        opened = {m.text.split(":")[0] for m in moments if m.kind == "finding"}
        closed = {m.text.split(" resolved")[0] for m in moments if m.kind == "resolved"}
        assert not opened & closed, moments
    said = [m for moments in per_frame for m in moments]
    assert not [m for m in said if m.kind == "resolved"], said
    # probe.failed: opened about node1, then one change when node2's agent fails the same way; nothing after
    failed = [m for m in said if m.text.startswith("probe.failed")]
    assert [m.subject for m in failed] == ["node1", "probes (exec on the source node: no answer…)"]
    assert failed[1].text.endswith("(was: node1)")
    vips = [m.subject for m in said if m.text.startswith("discovery.vip")]
    assert vips == ["node1 on frontend", "every node"]


def test_the_timeline_still_says_when_a_grouped_finding_resolves(healthy):
    hosts = [n.hostname for n in healthy.nodes]
    silent = [vip("frontend", h) for h in hosts]
    per_frame = stream(healthy, [[], silent, [vip("frontend", h, ok=True) for h in hosts]])
    assert [(m.kind, m.subject) for m in per_frame[1]] == [("finding", "every node")]
    assert [(m.kind, m.subject) for m in per_frame[2]] == [("resolved", "every node")]


def test_counts_and_details_are_said_in_words(healthy):
    from overlaytui.analysis.findings import Finding, counts_text, details_text, plural

    assert (plural(1, "error"), plural(2, "error"), plural(0, "info", "info")) == ("1 error", "2 errors", "0 info")
    one = Finding("x", Severity.ERROR, "node", "n", "s", "e", "r")
    assert counts_text([one, replace(one, severity=Severity.INFO)]) == "1 error, 0 warnings, 1 info"
    hosts = [n.hostname for n in healthy.nodes]
    [f] = [f for f in diagnose(healthy, [vip("frontend", h) for h in hosts]) if f.check == "discovery.vip"]
    assert details_text(f) == "5 places"
    [f] = [f for f in diagnose(healthy, all_pairs(healthy, "frontend", sent=100, received=100))
           if f.check == "loss.samples"]
    assert details_text(f) == "20 pairs"


def test_loss_through_a_node_is_the_node_even_beside_a_silent_encrypted_overlay(healthy):
    """Seen on the lab: loss on node2 and an encrypted overlay without ESP. The encrypted overlay's silent pairs
    are the ESP finding's; they are not pairs that "pass on another overlay", so the loss is node2's, not the
    plain overlay's."""
    hosts = ["node1", "node2", "node3"]
    plain = [ping("frontend", a, b, sent=100, received=90 if "node2" in (a, b) else 100)
             for a in hosts for b in hosts if a != b]
    secure = [ping("payments-secure", a, b, sent=100, received=0, rtt=None) for a in hosts for b in hosts if a != b]
    findings = diagnose(healthy, plain + secure)
    assert [(f.check, f.subject) for f in findings if f.severity >= Severity.WARNING] == [
        ("encryption.esp", "payments-secure"), ("loss.bad", "node2")]


def test_a_node_cut_off_from_gossip_is_one_peer_finding_about_it(healthy):
    node5 = next(n for n in healthy.nodes if n.hostname == "node5")

    def cut(view):
        if view.node_id == node5.id:
            return replace(view, peers=tuple(p for p in view.peers if p.address == node5.address))
        return replace(view, peers=tuple(p for p in view.peers if p.address != node5.address))
    networks = tuple(replace(n, views=tuple(cut(v) for v in n.views)) for n in healthy.networks)
    found = [f for f in diagnose(replace(healthy, networks=networks)) if f.check == "network.peers"]
    assert [(f.subject_kind, f.subject, f.subject_key) for f in found] == [("node", "node5", node5.id)], found
    assert "missing from the peer lists of node1, node2, node3, node4" in found[0].summary
    assert len(found[0].details) >= 4 and "7946" in found[0].remedy


def test_peer_lists_missing_different_nodes_stay_apart(healthy):
    net = healthy.network("backend")
    by_host = {n.hostname: n for n in healthy.nodes}
    views = {v.node_id: v for v in net.views}
    miss = {by_host["node1"].id: by_host["node4"].address, by_host["node2"].id: by_host["node3"].address}
    cut = tuple(replace(v, peers=tuple(p for p in v.peers if p.address != miss[v.node_id])) if v.node_id in miss
                else v for v in views.values())
    networks = tuple(replace(n, views=cut) if n.name == "backend" else n for n in healthy.networks)
    found = [f for f in diagnose(replace(healthy, networks=networks)) if f.check == "network.peers"]
    assert sorted(f.subject for f in found) == ["backend on node1", "backend on node2"]


def test_small_underlays_on_several_nodes_are_one_finding(healthy):
    mtus = {n.address: 1450 for n in healthy.nodes}  # a cloud network's MTU: every node's
    [found] = [f for f in diagnose(healthy, underlay_mtus=mtus) if f.check == "mtu.underlay"]
    assert (found.subject_kind, found.subject, len(found.details)) == ("swarm", "nodes", 5)
    assert "5 nodes have an underlay MTU too small" in found.summary and "node5 has an underlay MTU of 1450" in \
        found.evidence
    # one of them with a black hole through it: that node's underlay joins its hole, the other stays its own
    mtus = {n.address: 1500 for n in healthy.nodes} | {healthy.nodes[2].address: 1400,
                                                       healthy.nodes[3].address: 1450}
    probes = [ProbeResult("mtu", "frontend", src, dst, 1.0, path_mtu=1350 if "node3" in (src, dst) else 1450)
              for src in ("node1", "node2", "node3") for dst in ("node1", "node2", "node3") if src != dst]
    found = [(f.check, f.subject) for f in diagnose(healthy, probes, underlay_mtus=mtus) if f.check.startswith("mtu.")]
    assert found == [("mtu.black_hole", "node3"), ("mtu.underlay", "node4")]


def test_the_timeline_follows_loss_from_a_pair_to_its_node_while_results_stream_in(healthy):
    hosts = [n.hostname for n in healthy.nodes]
    batches = [[]] + [[ping(net, a, b, sent=2000, received=1900 if "node4" in (a, b) else 2000)]
                      for net in ("frontend", "backend") for a in hosts for b in hosts if a != b]
    said = [m for moments in stream(healthy, batches) for m in moments]
    assert [(m.kind, m.subject) for m in said] == [("finding", "node1 -> node4 on frontend"), ("finding", "node4")]
    assert said[1].text.endswith("(was: node1 -> node4 on frontend)")


def test_probe_failure_reasons_alike_in_their_first_words_are_one_finding(healthy):
    """The subject names the reason's first 40 characters: two reasons that share them are one finding, never
    two findings with one subject (the Findings pane and the Timeline know a finding by check and subject)."""
    failed = [ping("frontend", a, "node5", error=f"exec on {a}: no answer within the {why}")
              for a, why in (("node1", "timeout"), ("node2", "timeout"), ("node3", "deadline"), ("node4", "deadline"))]
    [f] = [f for f in diagnose(healthy, failed) if f.check == "probe.failed"]
    assert f.subject == "probes (exec on the source node: no answer…)" and len(f.details) == 4
    assert "within the timeout" in f.evidence and "within the deadline" in f.evidence


@pytest.mark.parametrize("scenario", ["healthy", "loss", "mtu", "node-down", "rolling-update", "bad-node"])
def test_a_finding_is_known_by_its_check_and_subject_on_every_demo(scenario):
    """The Findings pane's rows, the Timeline and the exporter's series key findings by check and subject: no
    two findings share them, on the demo's results and on the same results cut short or failing half way."""
    now = [1_800_000_000.0]
    source = DemoSource(scenario, seed=7, clock=lambda: now[0])
    now[0] += 40
    asyncio.run(source.start())
    results = source.probe_results()
    few = [replace(r, sent=100, received=100) if r.kind == "ping" else r for r in results]
    failing = [replace(r, error=f"exec on {r.src_node}: refused") if i % 2 else r for i, r in enumerate(results)]
    for probes in (results, few, failing):
        keys = [(f.check, f.subject) for f in diagnose(source.snapshot(), probes)]
        assert len(keys) == len(set(keys)), keys


def test_a_down_node_and_its_silent_engine_are_one_finding(healthy):
    node4 = healthy.nodes[3]
    engines = tuple(replace(e, health=Health.ERROR, message="connection refused") if e.node_id == node4.id else e
                    for e in healthy.engines)
    nodes = tuple(replace(n, state="down") if n.id == node4.id else n for n in healthy.nodes)
    found = [f for f in diagnose(replace(healthy, nodes=nodes, engines=engines)) if f.severity >= Severity.WARNING]
    assert [(f.check, f.subject) for f in found] == [("node.down", "node4")]
    assert "connection refused" in found[0].evidence
    # the engine silent while the managers still see its node ready: said on its own
    found = [f for f in diagnose(replace(healthy, engines=engines)) if f.severity >= Severity.WARNING]
    assert [(f.check, f.subject) for f in found] == [("engine.unreachable", "node4")]


def test_services_spread_unevenly_are_one_info_line(healthy):
    crowded = ("worker", "web")
    tasks = tuple(replace(t, node_id=healthy.nodes[0].id) if t.service_name in crowded else t for t in healthy.tasks)
    found = [f for f in diagnose(replace(healthy, tasks=tasks)) if f.check == "service.imbalance"]
    assert [(f.subject, f.severity) for f in found] == [("services", Severity.INFO)]
    assert "2 services spread unevenly: web, worker" == found[0].summary
    assert [d.subject for d in found[0].details] == ["web", "worker"] and found[0].evidence.startswith("web: ")


# ------------------------------------------------------ reused while nothing changed (issue 26: 200 nodes idle)
# The topology checks' findings are kept while the snapshot's nodes, services, tasks and networks are the same
# objects and no task settled; the demo keeps its topology as the same objects across polls.


def test_a_topology_check_finds_again_once_a_task_settled(healthy):
    young = _missing_peer_with_fresh_tasks(healthy)
    assert check_peers(young) == []
    assert check_peers(replace(young, taken_at=young.taken_at + SETTLE_S - 6)) == []  # still young: kept
    [found] = check_peers(replace(young, taken_at=young.taken_at + SETTLE_S - 5))  # settled now
    assert found.check == "network.peers" and healthy.nodes[-1].hostname in found.summary
    assert check_peers(young) == []  # back in time (a replay's seek): checked again, not kept


def test_topology_findings_are_the_same_objects_until_a_section_is_another_object(healthy):
    young = _missing_peer_with_fresh_tasks(healthy)
    settled = replace(young, taken_at=young.taken_at + SETTLE_S)
    [first] = check_peers(settled)
    # new stats and engines every second: the topology checks do not read them
    later = replace(settled, taken_at=settled.taken_at + 1, containers=(), engines=settled.engines[1:])
    [again] = check_peers(later)
    assert again is first
    # equal but another object (a source that rebuilt its topology): checked again
    [rebuilt] = check_peers(replace(later, networks=tuple(list(later.networks))))
    assert rebuilt == first and rebuilt is not first
    # what the caller does with the list it gets does not change what is kept
    check_peers(later).clear()
    assert check_peers(later) == [rebuilt]


@pytest.mark.parametrize("check", [check_tasks, check_peers, check_ipam, check_node_addresses])
def test_each_topology_check_gives_what_it_gives_unkept(check, healthy):
    """Kept or not, a check's findings are the same as a fresh call on an equal snapshot."""
    young = _missing_peer_with_fresh_tasks(healthy)
    for snapshot in (healthy, young, replace(young, taken_at=young.taken_at + SETTLE_S), healthy):
        kept = check(snapshot)
        fresh = check(replace(snapshot, nodes=tuple(list(snapshot.nodes))))  # another object: not kept
        assert kept == fresh


def test_the_demo_keeps_its_topology_while_nothing_moved():
    now = [1_800_000_000.0]
    source = DemoSource("node-down", seed=1, clock=lambda: now[0])
    asyncio.run(source.start())
    first = source.snapshot()
    now[0] += 1
    asyncio.run(source.poll())
    second = source.snapshot()
    assert second.containers is not first.containers  # the stats move every second
    for section in ("nodes", "services", "tasks", "networks"):
        assert getattr(second, section) is getattr(first, section), section
    now[0] += NODE_DOWN_AFTER  # a node went down: the poll sees a new topology
    asyncio.run(source.poll())
    third = source.snapshot()
    assert third.nodes is not first.nodes and any(n.state == "down" for n in third.nodes)
    assert third.tasks is not first.tasks


def test_the_demos_totals_are_what_its_windows_count():
    """The demo's ProbeData.totals is read from its windows (no second copy of every pair)."""
    now = [1_800_000_000.0]
    source = DemoSource("bad-node", seed=1, scale=(8, 8, 0), clock=lambda: now[0])
    asyncio.run(source.start())
    data = source.probes()
    counted = {(net, src, dst): (w.total_sent, w.total_received)
               for net, pairs in data.windows.items() for (src, dst), w in pairs.items()}
    assert len(counted) == 3 * 8 * 7 and dict(data.totals) == counted and len(data.totals) == len(counted)
    bad = source.bad_node
    sent, received = data.totals[("backend", bad, "node1")]
    assert received < sent and data.totals[("backend", "node1", "node2")] == (sent, sent)
    with pytest.raises(KeyError):
        data.totals[("backend", "node1", "nowhere")]
