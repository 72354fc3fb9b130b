"""Findings from causes: the nodes' kernel views (`--deep`, sources/kernel.py) judged against the swarm's view.

Each check names the node (and the overlay), the evidence (the rule, the entry, the counter) and the fix. A part of
a kernel view that was not read is never a verdict: the checks look only at what was read. `link_causes` then
lets the symptoms' findings (loss, a cut-off node, the VIP, ESP, peers) say which cause explains them.
No I/O, no Textual.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..model import ClusterSnapshot, Network, NodeKernel, natural_key, natural_sorted
from .findings import SETTLE_S, Finding, Severity, plural

DEEP_CHECKS = ("firewall.blocked", "fdb.stale", "vxlan.source_address", "vxlan.drops", "kernel.no_ipvs",
               "kernel.no_esp", "esp.no_state", "offload.checksum", "conntrack.full")
DROPS_MIN = 10  # dropped or errored vxlan packets between two readings worth a finding ...
DROPS_SHARE = 0.01  # ... when they are at least this share of the packets that passed
CONNTRACK_WARN = 0.9
CONNTRACK_FULL = 0.99
# NIC drivers known to compute wrong checksums for VXLAN with tx checksum offload on (ping passes, TCP fails):
# VMware's vmxnet3 (docker/for-linux, moby#43174 and the VMware KB on NSX/VXLAN checksum offload)
OFFLOAD_BAD_DRIVERS = frozenset({"vmxnet3"})


@dataclass(frozen=True)
class Cause:
    """A deep finding as a cause: where it is (node, overlay) and what kind of symptom it explains."""

    finding: Finding
    node: str  # hostname
    network: str = ""
    explains: frozenset[str] = frozenset()  # symptom checks it explains


def _overlays(snapshot: ClusterSnapshot) -> list[Network]:
    return [n for n in snapshot.networks if n.driver == "overlay"]


def _network_of(snapshot: ClusterSnapshot, prefix: str) -> Network | None:
    found = [n for n in _overlays(snapshot) if prefix and n.id.startswith(prefix)]
    return found[0] if len(found) == 1 else None


def _host(snapshot: ClusterSnapshot, kernel: NodeKernel) -> str:
    node = snapshot.nodes_by_id.get(kernel.node_id)
    return node.hostname if node else kernel.hostname or kernel.node_id


def _address(snapshot: ClusterSnapshot, kernel: NodeKernel) -> str:
    node = snapshot.nodes_by_id.get(kernel.node_id)
    return node.address if node else ""


def _group(check: str, found: list[Finding], what: str, remedy: str) -> list[Finding]:
    """Per-node findings of one check: two or more are one finding about the swarm (the nodes as details)."""
    if len(found) < 2:
        return found
    ordered = tuple(sorted(found, key=lambda f: natural_key(f.subject)))
    nodes = natural_sorted({f.subject.rsplit(" on ", 1)[-1] for f in found})
    return [Finding(check, max(f.severity for f in found), "swarm", "nodes",
                    f"{what} on {plural(len(nodes), 'node')}: {', '.join(nodes[:8])}"
                    + (f" and {len(nodes) - 8} more" if len(nodes) > 8 else ""),
                    "; ".join(f"{f.subject}: {f.evidence}" for f in ordered[:8]), remedy, "", ordered)]


# ------------------------------------------------------------------------------------------------ firewall

BLOCK_WORDS = {"4789/udp": "VXLAN (4789/udp)", "7946/tcp": "gossip (7946/tcp)", "7946/udp": "gossip (7946/udp)",
               "2377/tcp": "cluster management (2377/tcp)", "esp": "ESP (IP protocol 50)"}


def check_firewall_rules(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel]) -> tuple[list[Finding],
                                                                                               list[Cause]]:
    encrypted = any(n.encrypted for n in _overlays(snapshot))
    found, causes = [], []
    for kernel in kernels:
        host = _host(snapshot, kernel)
        me = _address(snapshot, kernel)
        peers = {n.address for n in snapshot.nodes if n.address and n.address != me}
        hits = []
        for rule in kernel.firewall.rules:
            if rule.docker:
                continue
            if rule.blocks == ("all",):
                aimed = {a.split("/")[0] for a in rule.addresses} & peers
                if not aimed:
                    continue  # a blanket rule not aimed at a peer: whether it hits swarm's traffic is not known
                blocks = [f"everything with {', '.join(sorted(aimed))}"]
            else:
                blocks = [BLOCK_WORDS[b] for b in rule.blocks if b in BLOCK_WORDS and (b != "esp" or encrypted)]
            if blocks:
                hits.append((rule, blocks))
        if not hits:
            continue
        what = sorted({b for _rule, blocks in hits for b in blocks})
        severe = any(rule.blocks != ("2377/tcp",) for rule, _b in hits)
        evidence = "; ".join(
            f"{rule.source} {rule.table} {rule.chain}: `{rule.text}`"
            + (f" ({plural(rule.packets, 'packet')} {'dropped' if rule.verdict == 'DROP' else 'rejected'} by the "
               "time it was read)" if rule.packets is not None else "") for rule, _b in hits)
        remedy = "; ".join(_remove(rule) for rule, _b in hits[:3]) + (
            " — or accept swarm's traffic before these rules: 4789/udp, 7946/tcp+udp, 2377/tcp to managers, "
            "and ESP (IP protocol 50) for encrypted overlays")
        finding = Finding("firewall.blocked", Severity.ERROR if severe else Severity.WARNING, "node", host,
                          f"{host}'s firewall drops {', '.join(what)}", evidence, remedy, kernel.node_id)
        found.append(finding)
        explains = set()
        if any("4789" in b or "everything" in b for _r, bs in hits for b in bs):
            explains |= {"loss.bad", "dataplane.blocked", "discovery.vip", "discovery.tasks"}
        if any("7946" in b or "everything" in b for _r, bs in hits for b in bs):
            explains |= {"network.peers", "discovery.tasks", "node.down"}
        if any("ESP" in b or "everything" in b for _r, bs in hits for b in bs):
            explains |= {"encryption.esp"}
        if any("2377" in b for _r, bs in hits for b in bs):
            explains |= {"node.down"}
        causes.append(Cause(finding, host, explains=frozenset(explains)))
    return _group("firewall.blocked", found, "firewall rules drop swarm's traffic",
                  "remove the rules named (see each node), or accept 4789/udp, 7946/tcp+udp, 2377/tcp and ESP "
                  "between the nodes before them"), causes


def _remove(rule) -> str:
    if rule.source.startswith("iptables"):
        return f"`{rule.source} {rule.text.replace(' -A ', ' -D ', 1)}` on the node"
    return (f"`nft -a list chain {rule.table} {rule.chain}`, then `nft delete rule {rule.table} {rule.chain} "
            "handle N` for the rule")


# ----------------------------------------------------------------------------------------------------- FDB


def check_fdb(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel]) -> tuple[list[Finding], list[Cause]]:
    """Each overlay sandbox's FDB (MAC -> remote VTEP) and neighbours against the swarm's view: where each task
    and endpoint is (the nodes' network views: their own endpoints' MACs and IPs; the tasks' IPs and nodes).
    Wrong: an entry pointing at another node than the one the swarm has the MAC (or its IP) on; stale: at an
    address no node has; missing: a settled remote task's IP without a neighbour entry; ghosts: neighbour entries
    for IPs no task or endpoint has (for-linux#638), judged only when every node on the overlay gave its view and
    no task with that IP ended in the last SETTLE_S seconds."""
    node_address = {n.id: n.address for n in snapshot.nodes}
    by_address = {n.address: n.hostname for n in snapshot.nodes}
    vteps = set(by_address) | {p.address for net in snapshot.networks for v in net.views for p in v.peers}
    settled = snapshot.taken_at - SETTLE_S
    tasks_on: dict[str, list[tuple[str, str, str, bool]]] = defaultdict(list)  # net id -> (ip, node, task, settled)
    leaving: dict[str, set[str]] = defaultdict(set)  # net id -> IPs of tasks not up, or that ended lately
    for task in snapshot.tasks:  # once for every node and overlay (200 nodes: 5,000 tasks, 12 overlays)
        where = node_address.get(task.node_id or "", "")
        if not task.up and (task.wanted or task.timestamp > settled):
            for addr in task.addresses:
                leaving[addr.network_id].add(addr.address.split("/")[0])
        if where and task.up:
            for addr in task.addresses:
                tasks_on[addr.network_id].append((addr.address.split("/")[0], where, task.name,
                                                  task.timestamp <= settled))
    located: dict[str, tuple[dict[str, str], dict[str, str]]] = {}  # net id -> (MAC -> node, IP -> node)
    known_ips: dict[str, set[str]] = {}  # net id -> every IP the swarm has on it
    viewed: dict[str, bool] = {}  # net id -> every node on it gave its view
    found, causes = [], []
    for kernel in kernels:
        host = _host(snapshot, kernel)
        me = _address(snapshot, kernel)
        for sbx in kernel.sandboxes:
            net = _network_of(snapshot, sbx.network_prefix)
            if net is None or sbx.fdb_unavailable:
                continue
            if net.id not in located:
                located[net.id] = _located(net, node_address, tasks_on[net.id])
                viewed[net.id] = {node_address.get(v.node_id or "") for v in net.views} >= {
                    p.address for v in net.views for p in v.peers}  # every node on it gave its view
            mac_at, ip_at = located[net.id]
            complete = viewed[net.id]
            remote_tasks = {ip: name for ip, where, name, old in tasks_on[net.id] if where != me and old}
            ip_of_mac = {n.mac: n.ip for n in sbx.neighbours}
            problems = []
            for entry in sbx.fdb:
                if not entry.dst:
                    continue
                ip = ip_of_mac.get(entry.mac, "")
                expected = mac_at.get(entry.mac) or ip_at.get(ip, "")
                label = f"{entry.mac}" + (f" ({ip})" if ip else "")
                if entry.dst not in vteps:
                    problems.append(f"{label} -> {entry.dst}, an address no node has (an old VTEP)")
                elif expected and expected != entry.dst:
                    problems.append(f"{label} -> {entry.dst} ({by_address.get(entry.dst, entry.dst)}); the swarm "
                                    f"has it on {by_address.get(expected, expected)} ({expected})")
            missing, ghosts = [], []
            if not sbx.neigh_unavailable:
                known = {n.ip for n in sbx.neighbours}
                missing = natural_sorted(f"{ip} ({name})" for ip, name in remote_tasks.items() if ip not in known)
                if complete:
                    if net.id not in known_ips:
                        known_ips[net.id] = _known_ips(net, tasks_on[net.id]) | leaving[net.id]
                    swarm_ips = known_ips[net.id]
                    devices = {d.name for d in sbx.vxlan}
                    ghosts = natural_sorted(f"{n.ip} ({n.mac})" for n in sbx.neighbours
                                            if n.ip not in swarm_ips and n.device in devices)
            if not problems and not missing and not ghosts:
                continue
            evidence = "; ".join(problems[:6]) + (f" and {len(problems) - 6} more" if len(problems) > 6 else "")
            if missing:
                evidence += ("; " if evidence else "") + "no neighbour entry for " + ", ".join(missing[:6]) + (
                    f" and {len(missing) - 6} more" if len(missing) > 6 else "")
            if ghosts:
                evidence += ("; " if evidence else "") + "neighbour entries no task or endpoint has: " + ", ".join(
                    ghosts[:6]) + (f" and {len(ghosts) - 6} more" if len(ghosts) > 6 else "")
            entries = plural(len(problems), "entry", "entries")
            summary = (f"{host}'s {net.name} sandbox sends to the wrong VTEP for {entries}" if problems
                       else f"{host}'s {net.name} sandbox misses {plural(len(missing), 'remote task')}" if missing
                       else f"{host}'s {net.name} sandbox keeps {plural(len(ghosts), 'ghost neighbour')}: IPs no "
                       "task has")
            finding = Finding(
                "fdb.stale", Severity.ERROR if problems else Severity.WARNING, "network", f"{net.name} on {host}",
                summary, f"{sbx.sandbox} vxlan FDB: {evidence}",
                f"in the sandbox (`nsenter --net=<engine exec-root>/netns/{sbx.sandbox}`): `bridge fdb replace MAC "
                "dev vxlan0 dst <the node's address> self permanent`, or restart the engine on "
                f"{host} so it programs the overlay again; check that every node advertises the address it sends "
                "from (--advertise-addr, --data-path-addr)", net.name)
            found.append(finding)
            causes.append(Cause(finding, host, net.name, frozenset({"loss.bad", "dataplane.blocked",
                                                                     "discovery.vip", "discovery.tasks"})))
    return found, causes


def _known_ips(net: Network, tasks: Sequence[tuple[str, str, str, bool]]) -> set[str]:
    """Every IP the swarm has on the overlay: its nodes' endpoints, its running tasks, its services' VIPs."""
    found = {e.ipv4.split("/")[0] for v in net.views for e in v.endpoints if e.ipv4}
    found |= {ip for ip, _where, _name, _settled in tasks}
    found |= {t.ip for svc in net.services for t in svc.tasks}
    found |= {svc.vip.split("/")[0] for svc in net.services if svc.vip}
    return found


def _located(net: Network, node_address: Mapping[str, str], tasks: Sequence[tuple[str, str, str, bool]]
             ) -> tuple[dict[str, str], dict[str, str]]:
    """Where the swarm has each MAC and IP of an overlay: its nodes' own endpoints (their network views), then
    the tasks' addresses. A MAC or IP the swarm has on more than one node (an address reused while tasks churn)
    says nothing: it is left out, never judged."""
    macs: dict[str, set[str]] = defaultdict(set)
    ips: dict[str, set[str]] = defaultdict(set)
    for view in net.views:
        where = node_address.get(view.node_id or "", "")
        for endpoint in view.endpoints if where else ():
            if endpoint.mac:
                macs[endpoint.mac.lower()].add(where)
            if endpoint.ipv4:
                ips[endpoint.ipv4.split("/")[0]].add(where)
    for ip, where, _name, _settled in tasks:
        ips[ip].add(where)
    return ({mac: next(iter(at)) for mac, at in macs.items() if len(at) == 1},
            {ip: next(iter(at)) for ip, at in ips.items() if len(at) == 1})


# ------------------------------------------------------------------------------------------------- source


def check_source_address(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel]) -> tuple[list[Finding],
                                                                                              list[Cause]]:
    """A node that sends VXLAN from another address than its swarm address (moby#53004: the peers' vxlan RX stays
    0): the source its routes to the peers pick, or a vxlan device's own local address."""
    by_address = {n.address: n.hostname for n in snapshot.nodes}
    found, causes = [], []
    for kernel in kernels:
        host = _host(snapshot, kernel)
        me = _address(snapshot, kernel)
        if not me:
            continue
        wrong = [f"toward {by_address.get(r.peer, r.peer)} ({r.peer}) via {r.interface} from {r.source}"
                 for r in kernel.routes if not r.unavailable and r.source and r.source != me]
        wrong += [f"{sbx.sandbox} {dev.name} local {dev.local}" for sbx in kernel.sandboxes for dev in sbx.vxlan
                  if dev.local and dev.local != me]
        if not wrong:
            continue
        finding = Finding(
            "vxlan.source_address", Severity.ERROR, "node", host,
            f"{host} sends VXLAN from another address than its swarm address {me}",
            "; ".join(wrong[:6]) + f"; the swarm knows {host} as {me}",
            f"make {host}'s routes to the peers use {me} as the source (`ip route get PEER`), or join with "
            "--data-path-addr (and --advertise-addr) set to the address it sends from", kernel.node_id)
        found.append(finding)
        causes.append(Cause(finding, host, explains=frozenset({"loss.bad", "dataplane.blocked", "encryption.esp"})))
    return found, causes


# -------------------------------------------------------------------------------------------------- drops


def check_vxlan_drops(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel],
                      previous: Sequence[NodeKernel]) -> tuple[list[Finding], list[Cause]]:
    """vxlan devices dropping or erroring packets between two readings (a counter that went back: the device
    was made again, no rate)."""
    before = {k.node_id or k.hostname: k for k in previous}
    found, causes = [], []
    for kernel in kernels:
        old = before.get(kernel.node_id or kernel.hostname)
        seconds = kernel.read_at - old.read_at if old is not None else 0.0
        if old is None or seconds <= 0:
            continue
        host = _host(snapshot, kernel)
        old_devices = {(s.sandbox, d.name): d for s in old.sandboxes for d in s.vxlan}
        lines = []
        nets = []
        places = []
        for sbx in kernel.sandboxes:
            for dev in sbx.vxlan:
                was = old_devices.get((sbx.sandbox, dev.name))
                if was is None or (dev.vni is not None and was.vni is not None and dev.vni != was.vni):
                    continue
                deltas = {name: getattr(dev, name) - getattr(was, name) for name in (
                    "rx_dropped", "tx_dropped", "rx_errors", "tx_errors", "rx_packets", "tx_packets")}
                if any(v < 0 for v in deltas.values()):
                    continue  # counters reset
                bad = deltas["rx_dropped"] + deltas["tx_dropped"] + deltas["rx_errors"] + deltas["tx_errors"]
                passed = deltas["rx_packets"] + deltas["tx_packets"]
                if bad < DROPS_MIN or bad < DROPS_SHARE * passed:
                    continue
                net = _network_of(snapshot, sbx.network_prefix)
                name = net.name if net else sbx.sandbox
                nets.append(name)
                parts = ", ".join(f"+{deltas[k]} {k.replace('_', ' ')}" for k in (
                    "rx_dropped", "tx_dropped", "rx_errors", "tx_errors") if deltas[k])
                line = (f"{name} {dev.name}: {parts} in {seconds:.0f} s ({bad / seconds:.1f}/s) beside "
                        f"{plural(passed, 'packet')}")
                lines.append(line)
                places.append(Finding("vxlan.drops", Severity.WARNING, "network", f"{name} on {host}",
                                      f"{name}'s vxlan device drops packets on {host}", line, DROPS_REMEDY, name))
        if not lines:
            continue
        finding = Finding(
            "vxlan.drops", Severity.WARNING, "node", host,
            f"{host}'s vxlan devices drop packets ({', '.join(natural_sorted(set(nets)))})", "; ".join(lines),
            DROPS_REMEDY.replace("the node", host), kernel.node_id, tuple(places))
        found.append(finding)
        causes.append(Cause(finding, host, explains=frozenset({"loss.bad"})))
    return found, causes


DROPS_REMEDY = ("look at the node: `ip -s link show vxlan0` in the overlay's sandbox, the underlay NIC's errors "
                "(`ip -s link`), a full conntrack table, the MTU")


# ------------------------------------------------------------------------------------------------- kernel


def _carries_vip(snapshot: ClusterSnapshot, node_id: str) -> bool:
    """The node runs a service load balancer: an lb- endpoint in its view of an overlay (or the ingress)."""
    return any(e.container_id.startswith(("lb-", "ingress")) or e.name.endswith("-endpoint")
               for net in snapshot.networks for view in net.views if view.node_id == node_id
               for e in view.endpoints)


def _encrypted_here(snapshot: ClusterSnapshot, kernel: NodeKernel) -> list[Network]:
    return [net for net in _overlays(snapshot) if net.encrypted and kernel.sandbox_of(net.id) is not None]


def check_kernel_features(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel],
                          states: dict[str, Finding] | None = None) -> tuple[list[Finding], list[Cause]]:
    """No IPVS, no ESP in a node's kernel. A node's `esp.no_state` finding (in `states`, by hostname) that its
    missing esp4 explains is folded into that node's `kernel.no_esp` (one root cause) and taken out of `states`."""
    states = states if states is not None else {}
    ipvs, esp, causes = [], [], []
    vip_services = [s.name for s in snapshot.services if s.endpoint_mode == "vip" and s.vips]
    for kernel in kernels:
        host = _host(snapshot, kernel)
        feature = kernel.ipvs
        if feature.state == "no" or (feature.state == "not loaded" and _carries_vip(snapshot, kernel.node_id)):
            finding = Finding(
                "kernel.no_ipvs", Severity.ERROR if vip_services else Severity.WARNING, "node", host,
                f"{host}'s kernel has no IPVS: service VIPs do not answer there", f"ip_vs: {feature.how}",
                "load the IPVS modules (`modprobe ip_vs ip_vs_rr`) or run a kernel with CONFIG_IP_VS; until then, "
                "give services --endpoint-mode dnsrr", kernel.node_id)
            ipvs.append(finding)
            causes.append(Cause(finding, host, explains=frozenset({"discovery.vip"})))
        feature = kernel.esp
        encrypted = _encrypted_here(snapshot, kernel)
        if feature.state == "no" or (feature.state == "not loaded" and encrypted):
            names = ", ".join(n.name for n in encrypted)
            folded = states.pop(host, None)
            finding = Finding(
                "kernel.no_esp", Severity.ERROR if encrypted else Severity.INFO, "node", host,
                f"{host}'s kernel has no ESP (esp4): encrypted overlays "
                + (f"({names}) carry nothing there" if encrypted else "cannot work there"),
                f"esp4: {feature.how}" + (f"; so {folded.evidence}" if folded else ""),
                "load esp4 (`modprobe esp4`) or run a kernel with CONFIG_INET_ESP; or use plain overlays",
                kernel.node_id)
            esp.append(finding)
            causes.append(Cause(finding, host, explains=frozenset({"encryption.esp"})))
    return (_group("kernel.no_ipvs", ipvs, "no IPVS in the kernel",
                   "load the IPVS modules (`modprobe ip_vs ip_vs_rr`) on those nodes, or give services "
                   "--endpoint-mode dnsrr")
            + _group("kernel.no_esp", esp, "no ESP (esp4) in the kernel",
                     "load esp4 (`modprobe esp4`) on those nodes, or use plain overlays")), causes


def check_esp_states(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel]) -> tuple[list[Finding], list[Cause]]:
    """An encrypted overlay active on a node with peers, and no ESP state (xfrm) with some of them: Docker
    programs one state each way per peer node; without it the encrypted traffic to that peer goes nowhere."""
    by_address = {n.address: n.hostname for n in snapshot.nodes}
    found, causes = [], []
    for kernel in kernels:
        if kernel.ipsec.states_unavailable:
            continue
        me = _address(snapshot, kernel)
        encrypted = _encrypted_here(snapshot, kernel)
        if not me or not encrypted:
            continue
        host = _host(snapshot, kernel)
        peers = {p.address for net in encrypted for view in net.views if view.node_id == kernel.node_id
                 for p in view.peers if p.address and p.address != me}
        esp = [s for s in kernel.ipsec.states if s.proto == "esp"]
        ways = {(s.src, s.dst) for s in esp}
        lacking = []
        for peer in sorted(peers):
            out = (me, peer) in ways
            inbound = (peer, me) in ways
            if not (out and inbound):
                way = "either way" if not out and not inbound else "outbound" if not out else "inbound"
                lacking.append(f"{by_address.get(peer, peer)} ({peer}, {way})")
        if not lacking:
            continue
        policies = [p for p in kernel.ipsec.policies if p.direction == "out"]
        evidence = (f"ip xfrm state: no ESP state with {', '.join(lacking)}; {plural(len(esp), 'ESP state')} in all"
                    + (f"; {plural(len(policies), 'outbound policy', 'outbound policies')} ask for ESP to "
                       + ", ".join(sorted({p.tmpl_dst for p in policies if p.tmpl_dst})) if policies else ""))
        finding = Finding(
            "esp.no_state", Severity.ERROR, "node", host,
            f"{host} has no IPsec state for {', '.join(n.name for n in encrypted)} with "
            f"{plural(len(lacking), 'peer')}", evidence,
            f"check the engine's log on {host} for 'Failed adding' xfrm errors (no esp4 in the kernel, or the "
            "keys not received); ESP (IP protocol 50) must pass between the nodes", kernel.node_id)
        found.append(finding)
        causes.append(Cause(finding, host, explains=frozenset({"encryption.esp"})))
    return found, causes


def check_offload(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel]) -> tuple[list[Finding], list[Cause]]:
    found, causes = [], []
    for kernel in kernels:
        bad = [link for link in kernel.links if link.driver in OFFLOAD_BAD_DRIVERS and link.tx_checksum == "on"]
        if not bad:
            continue
        host = _host(snapshot, kernel)
        finding = Finding(
            "offload.checksum", Severity.WARNING, "node", host,
            f"{host}'s underlay NIC computes VXLAN checksums in hardware with a driver known to get them wrong",
            "; ".join(f"{link.name}: driver {link.driver}, tx-checksumming on" for link in bad)
            + " (VXLAN: ping passes, TCP fails)",
            f"`ethtool -K {bad[0].name} tx-checksum-ip-generic off` on {host} (and make it persistent)",
            kernel.node_id)
        found.append(finding)
        causes.append(Cause(finding, host, explains=frozenset({"loss.bad", "discovery.vip"})))
    return found, causes


def check_conntrack(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel]) -> tuple[list[Finding], list[Cause]]:
    found, causes = [], []
    for kernel in kernels:
        used = kernel.conntrack.used
        if used is None or used < CONNTRACK_WARN:
            continue
        host = _host(snapshot, kernel)
        full = used >= CONNTRACK_FULL
        finding = Finding(
            "conntrack.full", Severity.ERROR if full else Severity.WARNING, "node", host,
            f"{host}'s conntrack table is {'full: new connections are dropped' if full else 'nearly full'}",
            f"nf_conntrack_count {kernel.conntrack.count} of nf_conntrack_max {kernel.conntrack.max} "
            f"({100 * used:.0f} %)",
            f"raise net.netfilter.nf_conntrack_max on {host} (sysctl), or find what opens so many connections",
            kernel.node_id)
        found.append(finding)
        causes.append(Cause(finding, host, explains=frozenset({"loss.bad", "dataplane.blocked", "discovery.vip"})))
    return found, causes


# ----------------------------------------------------------------------------------------------- the entry


_kept: list = [None]  # the last call's (inputs, taken_at, valid until, result): see check_kernels


def check_kernels(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel],
                  previous: Sequence[NodeKernel] = ()) -> tuple[list[Finding], list[Cause]]:
    """Every deep check: (findings, the causes they are, for `link_causes`). The result is kept while the views
    and the topology are the very same objects and no task has settled since (a frame between two rounds costs
    nothing: at 200 nodes the FDB alone is ~10^6 entries, seconds of checking)."""
    inputs = (*kernels, None, *previous, None, snapshot.nodes, snapshot.networks, snapshot.tasks, snapshot.services)
    last, now = _kept[0], snapshot.taken_at
    if last is not None and last[1] <= now < last[2] and len(last[0]) == len(inputs) and all(
            a is b for a, b in zip(last[0], inputs, strict=True)):
        return list(last[3][0]), list(last[3][1])
    result = _check_kernels(snapshot, kernels, previous)
    settles = min((t.timestamp + SETTLE_S for t in snapshot.tasks if t.timestamp + SETTLE_S > now), default=math.inf)
    _kept[0] = (inputs, now, settles, (tuple(result[0]), tuple(result[1])))
    return result


def _check_kernels(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel],
                   previous: Sequence[NodeKernel]) -> tuple[list[Finding], list[Cause]]:
    findings: list[Finding] = []
    causes: list[Cause] = []
    states, state_causes = check_esp_states(snapshot, kernels)
    by_host = {f.subject: f for f in states}
    features = check_kernel_features(snapshot, kernels, by_host)  # folds the states no esp4 explains
    state_causes = [c for c in state_causes if c.finding.subject in by_host]
    for found, why in (check_firewall_rules(snapshot, kernels), check_fdb(snapshot, kernels),
                       check_source_address(snapshot, kernels), check_vxlan_drops(snapshot, kernels, previous),
                       features, (list(by_host.values()), state_causes), check_offload(snapshot, kernels),
                       check_conntrack(snapshot, kernels)):
        findings += found
        causes += why
    groups = {id(d): f for f in findings for d in f.details}  # a cause grouped with others: the group says it
    return findings, [replace(c, finding=groups.get(id(c.finding), c.finding)) for c in causes]


def deep_underlay_mtus(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel]) -> dict[str, int]:
    """node address -> the MTU of the underlay link its routes to the peers use (the smallest, when several)."""
    found = {}
    for kernel in kernels:
        me = _address(snapshot, kernel)
        mtus = [link.mtu for link in kernel.links if link.mtu and not link.unavailable
                and any(r.interface == link.name for r in kernel.routes)]
        if me and mtus:
            found[me] = min(mtus)
    return found


_WORDS = re.compile(r"[^\s>-]+")


def _nodes_of(finding: Finding, hostnames: set[str]) -> set[str]:
    """The nodes a symptom is about: a node finding's own; else the nodes its subject and details name."""
    if finding.subject_kind == "node":
        return {finding.subject}
    subjects = [finding.subject, *(d.subject for d in finding.details)]
    if finding.subject_kind == "swarm" and not finding.details:
        return set(hostnames)
    found = {w for s in subjects for w in _WORDS.findall(s) if w in hostnames}
    return found or set(hostnames)


def link_causes(findings: Iterable[Finding], causes: Sequence[Cause], hostnames: Iterable[str]) -> list[Finding]:
    """The symptoms' findings with "cause: ..." where a deep finding at their nodes (and overlay) explains them."""
    hostnames = set(hostnames)
    by_check: dict[str, list[Cause]] = defaultdict(list)
    for cause in causes:
        for check in cause.explains:
            by_check[check].append(cause)
    linked = []
    for finding in findings:
        candidates = by_check.get(finding.check)
        if not candidates:
            linked.append(finding)
            continue
        nodes = _nodes_of(finding, hostnames)
        network = finding.subject_key if finding.subject_kind in ("network", "pair") else ""
        here = [c for c in candidates if c.node in nodes and (not c.network or not network or c.network == network)]
        if not here:
            linked.append(finding)
            continue
        texts = list(dict.fromkeys(c.finding.summary for c in sorted(here, key=lambda c: (
            -c.finding.severity, c.finding.check, natural_key(c.node)))))
        said = texts[0] + (f" (and {plural(len(texts) - 1, 'more cause')})" if len(texts) > 1 else "")
        linked.append(replace(finding, summary=f"{finding.summary} — cause: {said}"))
    return linked


def by_node(kernels: Mapping[str, NodeKernel] | Sequence[NodeKernel]) -> list[NodeKernel]:
    values = kernels.values() if isinstance(kernels, Mapping) else kernels
    return sorted(values, key=lambda k: natural_key(k.hostname or k.node_id))


# ---------------------------------------------------------------------------------------- per place, for panes

NODE_WIDE = {"firewall.blocked": "firewall", "vxlan.source_address": "source address", "conntrack.full": "conntrack",
             "offload.checksum": "offload"}
ENCRYPTED_ONLY = {"kernel.no_esp": "no esp4", "esp.no_state": "no ESP state"}
SHORT = {"fdb.stale": "FDB", "vxlan.drops": "drops", **NODE_WIDE, **ENCRYPTED_ONLY}


@dataclass(frozen=True)
class PlaceState:
    """One overlay on one node, as the deep view saw it: for the Topology and Networks panes."""

    node_id: str
    hostname: str
    read: bool  # the overlay's sandbox on the node was read
    severity: Severity = Severity.OK  # the worst deep finding there (node-wide ones included)
    note: str = ""  # what is wrong ("FDB, firewall"), or why it was not read
    rx_packets: int | None = None
    tx_packets: int | None = None
    dropped: int | None = None  # rx + tx dropped and errors
    partial: str = ""  # what of it was not read there ("firewall, FDB"): its verdict is not known


def _flatten(findings: Iterable[Finding]) -> Iterable[Finding]:
    for finding in findings:
        yield finding
        yield from _flatten(finding.details)


def place_states(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel], findings: Iterable[Finding],
                 network: Network) -> list[PlaceState]:
    """Every node the overlay is on (its network views, its running tasks), natural order: its sandbox's vxlan
    counters, and the deep findings at that place (the overlay's on that node, and the node-wide ones that hit
    every overlay there) — or why it was not read. [] when the deep view read no node at all."""
    if not kernels:
        return []
    at: dict[tuple[str, str], set[tuple[Severity, str]]] = defaultdict(set)
    for finding in _flatten(findings):
        if finding.check not in SHORT or finding.details:
            continue
        if finding.subject_kind == "network" and " on " in finding.subject:
            net_name, host = finding.subject.rsplit(" on ", 1)
            at[(host, net_name)].add((finding.severity, SHORT[finding.check]))
        elif finding.subject_kind == "node" and (finding.check in NODE_WIDE or finding.check in ENCRYPTED_ONLY
                                                 and network.encrypted):
            at[(finding.subject, "")].add((finding.severity, SHORT[finding.check]))
    members = {v.node_id for v in network.views if v.node_id}
    members |= {t.node_id for t in snapshot.tasks if t.up and t.node_id
                and any(a.network_id == network.id for a in t.addresses)}
    by_id = {k.node_id: k for k in kernels if k.node_id}
    states = []
    for node in sorted((n for n in snapshot.nodes if n.id in members), key=lambda n: natural_key(n.hostname)):
        kernel = by_id.get(node.id)
        if kernel is None:
            states.append(PlaceState(node.id, node.hostname, False, note="not read this round"))
            continue
        sbx = kernel.sandbox_of(network.id)
        if sbx is None or sbx.vxlan_unavailable:
            reason = (kernel.problems[0] if kernel.problems else kernel.sandboxes_unavailable) if sbx is None else \
                sbx.vxlan_unavailable
            states.append(PlaceState(node.id, node.hostname, False,  # one line: it goes in a table cell
                                     note=" ".join(reason.split()) or "no sandbox for this overlay on the node"))
            continue
        marks = at.get((node.hostname, network.name), set()) | at.get((node.hostname, ""), set())
        severity = max((m[0] for m in marks), default=Severity.OK)
        note = ", ".join(sorted({m[1] for m in marks}))
        unread = [what for what, why in (("FDB", sbx.fdb_unavailable), ("neighbours", sbx.neigh_unavailable),
                                         ("firewall", kernel.firewall.unavailable)) if why]
        states.append(PlaceState(
            node.id, node.hostname, True, severity, note, sum(d.rx_packets for d in sbx.vxlan),
            sum(d.tx_packets for d in sbx.vxlan),
            sum(d.rx_dropped + d.tx_dropped + d.rx_errors + d.tx_errors for d in sbx.vxlan), ", ".join(unread)))
    return states
