"""Findings from causes (analysis/deep.py through findings.diagnose): each check fires on its fixture (the lab's
real readings, or a hand-made variant) with the node, the overlay and the evidence, and stays quiet on the
healthy one; the symptoms' findings say which cause explains them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from overlaytui.analysis.deep import DEEP_CHECKS, check_kernels, deep_underlay_mtus
from overlaytui.analysis.findings import Finding, Severity, diagnose
from overlaytui.model import ProbeResult
from overlaytui.sources.deepraw import Reading
from overlaytui.sources.kernel import parse_node
from tests.fixtures.deep_fixtures import NODES, node_ids, raw, snapshot

HEALTHY = {name: ("healthy-kernel", f"esp-states-{name}") for name in NODES}


def kernels(read_at: float | None = None, **variants: tuple[str, ...]):
    """Every node's kernel view; `variants` per hostname replace the healthy ones (the lab's kernel has no esp4
    and no ip_vs: those are the lab's real faults, so "healthy" adds them)."""
    snap = snapshot()
    ids = node_ids()
    chosen = {**HEALTHY, **variants}
    return [parse_node(raw(name, *chosen[name]), ids[name], name,
                       snap.taken_at if read_at is None else read_at) for name in NODES]


def deep_of(views, previous=()) -> list[Finding]:
    return [f for f in diagnose(snapshot(), kernels=views, previous_kernels=previous) if f.check in DEEP_CHECKS]


def test_the_healthy_cluster_has_no_deep_finding():
    assert deep_of(kernels()) == []
    assert check_kernels(snapshot(), kernels(), kernels())[0] == []


def test_the_lab_as_read_no_ipvs_and_no_esp_on_every_node_and_no_esp_state():
    views = kernels(node1=(), node2=(), node3=())
    found = {f.check: f for f in deep_of(views)}
    assert set(found) == {"kernel.no_ipvs", "kernel.no_esp"}  # no state because no esp4: one root cause
    ipvs = found["kernel.no_ipvs"]
    assert (ipvs.subject_kind, ipvs.severity) == ("swarm", Severity.ERROR)
    assert [d.subject for d in ipvs.details] == ["node1", "node2", "node3"]
    assert "no loadable modules" in ipvs.details[0].evidence and "modprobe ip_vs" in ipvs.remedy
    esp = found["kernel.no_esp"]
    assert esp.severity is Severity.ERROR and "secure" in esp.details[0].summary
    evidence = esp.details[0].evidence
    assert "; so ip xfrm state: no ESP state with node2 (10.231.0.2, either way), node3 (10.231.0.3, either way)" \
        in evidence and "2 outbound policies ask for ESP to 10.231.0.2, 10.231.0.3" in evidence


def test_firewall_blocked_names_the_rules_with_their_counters_and_how_to_remove_them():
    [finding] = deep_of(kernels(node2=(*HEALTHY["node2"], "firewall-legacy")))
    assert (finding.check, finding.subject, finding.severity) == ("firewall.blocked", "node2", Severity.ERROR)
    assert finding.subject_key == node_ids()["node2"]
    assert "VXLAN (4789/udp)" in finding.summary and "ESP (IP protocol 50)" in finding.summary
    assert "everything with 10.231.0.3" in finding.summary
    assert "(1432 packets dropped by the time it was read)" in finding.evidence and "OTLAB-FIREWALL" in finding.evidence
    assert "`iptables-legacy -t filter -D OTLAB-FIREWALL -p udp -m udp --dport 4789" in finding.remedy
    assert "22" not in finding.summary and "FORWARD" not in finding.evidence


def test_dockers_own_rule_is_not_a_finding_and_an_nft_firewall_is():
    assert deep_of(kernels()) == []  # every node holds Docker's u32 DROP for the encrypted overlay
    [finding] = deep_of(kernels(node3=(*HEALTHY["node3"], "nft-backend")))
    assert finding.subject == "node3" and "(2210 packets dropped by the time it was read)" in finding.evidence
    assert "nft delete rule inet filter swarm handle N" in finding.remedy


def test_a_blanket_rule_not_aimed_at_a_peer_says_nothing():
    views = kernels()
    rule = replace(views[1].firewall.rules[0], docker="", blocks=("all",), addresses=("192.0.2.7/32",),
                   text="-t filter -A INPUT -s 192.0.2.7/32 -j DROP")
    views[1] = replace(views[1], firewall=replace(views[1].firewall, rules=(rule,)))
    assert deep_of(views) == []


def test_fdb_stale_against_the_swarms_view():
    [finding] = deep_of(kernels(node1=(*HEALTHY["node1"], "stale-fdb")))
    assert (finding.check, finding.subject, finding.subject_kind, finding.subject_key) == (
        "fdb.stale", "frontend on node1", "network", "frontend")
    assert finding.severity is Severity.ERROR
    assert "02:42:0a:f0:02:04 (10.240.2.4) -> 10.231.0.3 (node3); the swarm has it on node2 (10.231.0.2)" in \
        finding.evidence
    assert "02:42:0a:f0:02:08 (10.240.2.8) -> 10.231.0.9, an address no node has" in finding.evidence
    assert "bridge fdb replace" in finding.remedy and "1-e3bphbaj1g" in finding.remedy


def test_fdb_missing_entry_for_a_settled_remote_task():
    readings = raw("node1", *HEALTHY["node1"])
    neigh = [n for n in json.loads(readings["sbx/1-e3bphbaj1g/neigh"].out) if n["dst"] != "10.240.2.5"]
    readings["sbx/1-e3bphbaj1g/neigh"] = Reading(0, json.dumps(neigh))
    views = kernels()
    views[0] = parse_node(readings, node_ids()["node1"], "node1", snapshot().taken_at)
    later = replace(snapshot(), taken_at=snapshot().taken_at + 60)  # the tasks have settled
    [finding] = [f for f in diagnose(later, kernels=views) if f.check in DEEP_CHECKS]
    assert finding.severity is Severity.WARNING and "misses 1 remote task" in finding.summary
    assert "no neighbour entry for 10.240.2.5 (deep-frontend." in finding.evidence
    assert [f for f in diagnose(snapshot(), kernels=views) if f.check in DEEP_CHECKS] == []  # tasks too young


def test_vxlan_source_address():
    [finding] = deep_of(kernels(node1=(*HEALTHY["node1"], "source-address")))
    assert (finding.check, finding.subject) == ("vxlan.source_address", "node1")
    assert "toward node2 (10.231.0.2) via eth0 from 192.168.7.1; the swarm knows node1 as 10.231.0.1" == \
        finding.evidence


def test_vxlan_drops_between_two_readings():
    before = kernels(read_at=snapshot().taken_at - 30)
    now = kernels()
    sbx = now[1].sandboxes[1]
    dev = sbx.vxlan[0]
    bumped = replace(dev, rx_dropped=dev.rx_dropped + 120, rx_packets=dev.rx_packets + 4000)
    now[1] = replace(now[1], sandboxes=(now[1].sandboxes[0], replace(sbx, vxlan=(bumped,)), *now[1].sandboxes[2:]))
    [finding] = deep_of(now, before)
    assert (finding.check, finding.subject) == ("vxlan.drops", "node2")
    assert "+120 rx dropped in 30 s (4.0/s) beside 4000 packets" in finding.evidence
    assert deep_of(now) == []  # no previous reading: no rate
    few = replace(dev, rx_dropped=dev.rx_dropped + 9)
    now[1] = replace(now[1], sandboxes=(now[1].sandboxes[0], replace(sbx, vxlan=(few,)), *now[1].sandboxes[2:]))
    assert deep_of(now, before) == []
    reset = replace(dev, rx_dropped=0, rx_packets=0, tx_packets=0, tx_dropped=500)
    now[1] = replace(now[1], sandboxes=(now[1].sandboxes[0], replace(sbx, vxlan=(reset,)), *now[1].sandboxes[2:]))
    before[1] = replace(before[1], sandboxes=(before[1].sandboxes[0], replace(sbx, vxlan=(replace(
        dev, rx_packets=10, tx_dropped=1),)), *before[1].sandboxes[2:]))
    assert deep_of(now, before) == []  # the counters went back: the device was made again


def test_offload_checksum_fires_with_offload_on_and_not_off():
    [finding] = deep_of(kernels(node3=(*HEALTHY["node3"], "offload-on")))
    assert (finding.check, finding.subject, finding.severity) == ("offload.checksum", "node3", Severity.WARNING)
    assert "eth0: driver vmxnet3, tx-checksumming on" in finding.evidence
    assert "ethtool -K eth0 tx-checksum-ip-generic off" in finding.remedy
    assert deep_of(kernels(node3=(*HEALTHY["node3"], "offload-off"))) == []


def test_conntrack_full():
    [finding] = deep_of(kernels(node2=(*HEALTHY["node2"], "conntrack-full")))
    assert (finding.check, finding.subject, finding.severity) == ("conntrack.full", "node2", Severity.ERROR)
    assert finding.evidence == "nf_conntrack_count 262144 of nf_conntrack_max 262144 (100 %)"


def test_esp_no_state_with_one_peer():
    [finding] = deep_of(kernels(node1=("healthy-kernel", "no-esp-state")))
    assert (finding.check, finding.subject) == ("esp.no_state", "node1")
    assert "no ESP state with node3 (10.231.0.3, either way)" in finding.evidence and "secure" in finding.summary


def test_what_was_not_read_is_no_verdict():
    nothing = [parse_node({"meta/error": Reading(1, "", "timed out")}, node_ids()[n], n) for n in NODES]
    assert deep_of(nothing) == []
    assert deep_underlay_mtus(snapshot(), nothing) == {}


def test_the_underlay_mtu_comes_from_the_deep_view():
    views = kernels()
    assert deep_underlay_mtus(snapshot(), views) == {"10.231.0.1": 1500, "10.231.0.2": 1500, "10.231.0.3": 1500}
    link = replace(views[2].links[0], mtu=1400)
    views[2] = replace(views[2], links=(link,))
    found = [f for f in diagnose(snapshot(), underlay_mtus={"10.231.0.3": 1500}, kernels=views)
             if f.check == "mtu.underlay"]
    assert [(f.subject, f.summary.split(";")[0]) for f in found] == [("node3", "node3 has an underlay MTU of 1400")]


def ping(net, src, dst, sent=100, received=100):
    return ProbeResult("ping", net, src, dst, snapshot().taken_at, sent=sent, received=received)


def test_a_symptom_says_its_cause():
    """node2 loses every VXLAN packet: the loss finding about node2 says its firewall is why."""
    probes = [ping("frontend", a, b, received=0 if "node2" in (a, b) else 100)
              for a in NODES for b in NODES if a != b]
    plain = diagnose(snapshot(), probes)
    [symptom] = [f for f in plain if f.subject == "node2" and f.check in ("loss.bad", "dataplane.blocked")]
    assert "cause:" not in symptom.summary
    deep = diagnose(snapshot(), probes, kernels=kernels(node2=(*HEALTHY["node2"], "firewall-legacy")))
    [linked] = [f for f in deep if f.subject == "node2" and f.check == symptom.check]
    assert linked.summary.startswith(symptom.summary + " — cause: node2's firewall drops")
    assert linked.details == symptom.details
    # a cause on another node does not explain node2's symptom
    other = diagnose(snapshot(), probes, kernels=kernels(node3=(*HEALTHY["node3"], "firewall-legacy")))
    assert [f.summary for f in other if f.check == symptom.check and f.subject == "node2"] == [symptom.summary]


def test_the_vip_and_esp_symptoms_say_the_kernel_causes():
    probes = [ProbeResult("discovery", "frontend", a, b, snapshot().taken_at, resolved_vip="10.240.2.2",
                          resolved_tasks=3, vip_answers=False, task_answers=True)
              for a in NODES for b in NODES if a != b]
    probes += [ping("secure", a, b, received=0) for a in NODES for b in NODES if a != b]
    probes += [ping("frontend", a, b) for a in NODES for b in NODES if a != b]
    found = {f.check: f for f in diagnose(snapshot(), probes, kernels=kernels(node1=(), node2=(), node3=()))}
    assert "— cause: no IPVS in the kernel on 3 nodes" in found["discovery.vip"].summary
    assert "— cause: no ESP (esp4) in the kernel on 3 nodes" in found["encryption.esp"].summary
    assert "more cause" not in found["encryption.esp"].summary  # each node's missing states are no esp4's
    plain = {f.check: f for f in diagnose(snapshot(), probes)}
    assert "cause" not in plain["discovery.vip"].summary


@pytest.mark.parametrize("variant", ["firewall-legacy", "nft-backend", "stale-fdb", "offload-on", "conntrack-full",
                                     "ghost-neighbour",
                                     "source-address"])
def test_each_fault_is_named_only_on_its_node(variant):
    found = deep_of(kernels(node1=(*HEALTHY["node1"], variant)))
    assert found and all("node1" in f.subject for f in found)


def test_place_states_per_node_of_an_overlay():
    from overlaytui.analysis.deep import place_states

    snap = snapshot()
    frontend = next(n for n in snap.networks if n.name == "frontend")
    secure = next(n for n in snap.networks if n.name == "secure")
    views = kernels(node1=(*HEALTHY["node1"], "stale-fdb"), node2=(*HEALTHY["node2"], "firewall-legacy"), node3=())
    found = diagnose(snap, kernels=views)
    states = {s.hostname: s for s in place_states(snap, views, found, frontend)}
    assert list(states) == ["node1", "node2", "node3"]
    assert (states["node1"].severity, states["node1"].note) == (Severity.ERROR, "FDB")
    assert (states["node2"].severity, states["node2"].note) == (Severity.ERROR, "firewall")
    assert (states["node3"].severity, states["node3"].note, states["node3"].read) == (Severity.OK, "", True)
    sbx = next(s for s in views[2].sandboxes if s.network_prefix and frontend.id.startswith(s.network_prefix))
    assert states["node3"].rx_packets == sbx.vxlan[0].rx_packets
    enc = {s.hostname: s for s in place_states(snap, views, found, secure)}
    assert enc["node3"].note == "no esp4" and enc["node1"].note == ""  # node3 kept the lab's kernel
    assert place_states(snap, [], found, frontend) == []
    unread = [views[0], views[1]]
    assert {s.hostname: (s.read, s.note) for s in place_states(snap, unread, found, frontend)}["node3"] == (
        False, "not read this round")


def test_every_deep_check_has_its_pane():
    from overlaytui.analysis.headline import pane_of

    assert {check: pane_of(check) for check in DEEP_CHECKS} == dict.fromkeys(DEEP_CHECKS, "topology")


def test_an_address_the_swarm_has_on_two_nodes_is_not_judged():
    """An IP reused while tasks churn (two running tasks with it, on two nodes): its FDB entry says nothing."""
    snap = snapshot()
    frontend = next(n for n in snap.networks if n.name == "frontend")
    task = next(t for t in snap.tasks if t.up and t.node_id == node_ids()["node3"]
                and any(a.network_id == frontend.id and a.address.startswith("10.240.2.5/") for a in t.addresses))
    twin = replace(task, id="twin", node_id=node_ids()["node2"])
    views = kernels()
    node1 = views[0]
    sbx = next(s for s in node1.sandboxes if s.sandbox == "1-e3bphbaj1g")
    moved = tuple(replace(e, dst="10.231.0.2") if e.mac == "02:42:0a:f0:02:05" else e for e in sbx.fdb)
    views[0] = replace(node1, sandboxes=tuple(replace(s, fdb=moved) if s is sbx else s for s in node1.sandboxes))
    assert [f.check for f in deep_of(views)] == ["fdb.stale"]  # node3's task's MAC pointed at node2
    unseen = replace(frontend, views=tuple(v for v in frontend.views if v.node_id != node_ids()["node3"]))
    networks = tuple(unseen if n is frontend else n for n in snap.networks)  # node3's own view (its MACs) missing
    assert [f.check for f in diagnose(replace(snap, networks=networks), kernels=views)
            if f.check in DEEP_CHECKS] == ["fdb.stale"]  # the task's IP still says node3
    ambiguous = replace(snap, networks=networks, tasks=(*snap.tasks, twin))
    assert [f for f in diagnose(ambiguous, kernels=views) if f.check in DEEP_CHECKS] == []


def test_the_checks_are_kept_while_their_inputs_are_the_same_objects(monkeypatch):
    from overlaytui.analysis import deep

    calls = []
    real = deep._check_kernels
    monkeypatch.setattr(deep, "_check_kernels", lambda *a: calls.append(1) or real(*a))
    views = kernels(node1=(*HEALTHY["node1"], "conntrack-full"))
    first, _ = check_kernels(snapshot(), views)
    again, _ = check_kernels(snapshot(), views)
    assert again == first and len(calls) == 1  # kept, not made again
    views[0] = kernels()[0]  # the list changed in place: checked again
    assert check_kernels(snapshot(), views)[0] == [] and len(calls) == 2
    task = next(t for t in snapshot().tasks if t.up)
    young = replace(snapshot(), tasks=(replace(task, id="young", timestamp=snapshot().taken_at - 5),
                                       *snapshot().tasks))
    check_kernels(young, views)
    check_kernels(replace(young, taken_at=young.taken_at + 10), views)
    assert len(calls) == 3  # the young task has not settled yet: kept
    check_kernels(replace(young, taken_at=young.taken_at + 40), views)
    assert len(calls) == 4  # it has settled since: checked again


def test_a_ghost_neighbour_no_task_has():
    views = kernels(node1=(*HEALTHY["node1"], "ghost-neighbour"))
    [finding] = deep_of(views)
    assert (finding.check, finding.subject, finding.severity) == ("fdb.stale", "frontend on node1", Severity.WARNING)
    assert finding.summary == "node1's frontend sandbox keeps 1 ghost neighbour: IPs no task has"
    assert "neighbour entries no task or endpoint has: 10.240.2.99 (02:42:0a:f0:02:63)" in finding.evidence
    snap = snapshot()
    frontend = next(n for n in snap.networks if n.name == "frontend")
    # a node's view missing: its endpoints are not known, so no IP is called a ghost
    partial = replace(frontend, views=frontend.views[:2])
    assert [f for f in diagnose(replace(snap, networks=tuple(partial if n is frontend else n
                                                             for n in snap.networks)), kernels=views)
            if f.check in DEEP_CHECKS] == []
    # a task with that IP that just ended: its entry may linger a moment
    task = next(t for t in snap.tasks if t.up and any(a.network_id == frontend.id for a in t.addresses))
    gone = replace(task, id="gone", state="shutdown", desired_state="shutdown", timestamp=snap.taken_at - 5,
                   addresses=tuple(replace(a, address="10.240.2.99/24") for a in task.addresses
                                   if a.network_id == frontend.id))
    assert [f for f in diagnose(replace(snap, tasks=(*snap.tasks, gone)), kernels=views)
            if f.check in DEEP_CHECKS] == []
