"""The doctor: pure checks from a snapshot and probe results to findings that name the problem, the evidence and
the fix. No I/O, no Textual.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum

from ..model import (
    TASK_ENDED,
    TASK_FAILED,
    TASK_PENDING,
    ClusterSnapshot,
    Health,
    Network,
    NodeKernel,
    PackedResults,
    ProbeResult,
    Results,
    ResultsAt,
    Service,
    Task,
    natural_key,
    natural_sorted,
    natural_tuple,
)
from .thresholds import LossThresholds, Verdict, black_hole, judge, packets_needed, remedy

RTT_WARNING_MS = 20.0  # an overlay inside one site answers in well under a millisecond
SETTLE_S = 30.0  # gossip converges within seconds: tasks younger than this (or just removed) prove nothing yet
IPAM_SETTLE_S = 10.0  # a task in New without an address for this long is stuck (not just being allocated)


def _of_topology(check: Callable[[ClusterSnapshot], list[Finding]]) -> Callable[[ClusterSnapshot], list[Finding]]:
    """A check that reads only the snapshot's nodes, services, tasks and networks (and its time, to tell settled
    tasks): its findings are kept while those are the same objects (sources keep an unchanged topology as the
    same objects) and no task has settled since. At 200 nodes these checks walk every overlay's peer lists and
    every task's addresses once per overlay: ~0.3 s a frame, for findings that change with the topology."""
    kept: list = [None]  # (sections, taken_at, valid until, findings) of the last call

    @functools.wraps(check)
    def reused(snapshot: ClusterSnapshot) -> list[Finding]:
        sections = (snapshot.nodes, snapshot.services, snapshot.tasks, snapshot.networks)
        last, now = kept[0], snapshot.taken_at
        if last is not None and last[1] <= now < last[2] and all(a is b for a, b in zip(last[0], sections,
                                                                                          strict=True)):
            return list(last[3])
        found = check(snapshot)
        kept[0] = (sections, now, _next_settle(snapshot), tuple(found))
        return found
    return reused


def _next_settle(snapshot: ClusterSnapshot) -> float:
    """When the next task of the snapshot settles (IPAM_SETTLE_S or SETTLE_S after its timestamp): until then
    the topology checks find the same."""
    now = snapshot.taken_at
    return min((stamp + settle for stamp in {t.timestamp for t in snapshot.tasks}
                for settle in (IPAM_SETTLE_S, SETTLE_S) if stamp + settle > now), default=math.inf)


class Severity(IntEnum):
    OK = 0
    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    check: str  # e.g. "mtu.black_hole"
    severity: Severity
    subject_kind: str  # swarm / node / pair / network / service
    subject: str  # what the finding is about, readable ("node3", "node1 -> node2 on frontend")
    summary: str
    evidence: str
    remedy: str
    subject_key: str = ""  # what selecting it highlights: node id, network name (also for a pair), service name
    details: tuple[Finding, ...] = ()  # a root-cause finding: the per-pair findings it explains


def diagnose(
    snapshot: ClusterSnapshot,
    probes: Sequence[ProbeResult] = (),
    thresholds: LossThresholds | None = None,
    underlay_mtus: Mapping[str, int] | None = None,
    *,
    pair_findings: Sequence[Finding] | None = None,
    kernels: Sequence[NodeKernel] = (),
    previous_kernels: Sequence[NodeKernel] = (),
) -> list[Finding]:
    """Every check; findings grouped by root cause and sorted by severity (worst first): the one function that
    makes findings (the frame builder calls it for every frame; the golden tests call it). `underlay_mtus`: node
    address -> link MTU where known (this host's NICs, the lab's node links, a recording's). `pair_findings`:
    what `check_probes` gave for these very probe results (the frame builder keeps it while they do not change:
    at 200 nodes the pair checks are most of the work). `kernels`: the nodes' kernel views (`--deep`), and the
    previous reading's for the counters' rates: the causes' findings (analysis/deep.py), their underlay MTUs in
    place of the others, and the symptoms they explain saying so ("cause: ...")."""
    pairs = list(pair_findings) if pair_findings is not None else check_probes(snapshot, probes,
                                                                               thresholds or LossThresholds())
    if not kernels:
        return ranked(state_findings(snapshot, underlay_mtus) + pairs)
    from .deep import check_kernels, deep_underlay_mtus, link_causes  # deep builds on this module's Finding

    mtus = {**(underlay_mtus or {}), **deep_underlay_mtus(snapshot, kernels)}
    deep, causes = check_kernels(snapshot, kernels, previous_kernels)
    symptoms = link_causes(state_findings(snapshot, mtus) + pairs, causes, (n.hostname for n in snapshot.nodes))
    return ranked(symptoms + deep)


def state_findings(snapshot: ClusterSnapshot, underlay_mtus: Mapping[str, int] | None = None) -> list[Finding]:
    """The checks of the cluster's state (everything but the probes): cheap, they run on every snapshot."""
    findings: list[Finding] = []
    for check in STATE_CHECKS:
        findings += check(snapshot)
    return findings + check_underlay_mtu(snapshot, underlay_mtus or {})


def ranked(findings: list[Finding]) -> list[Finding]:
    """Merged (a black hole a short underlay explains is one finding) and worst first."""
    return sorted(merge_mtu(findings), key=lambda f: (-f.severity, f.check, natural_key(f.subject)))


def worst(findings: Iterable[Finding]) -> Severity:
    return max((f.severity for f in findings), default=Severity.OK)


# ------------------------------------------------------------------------------------------------- swarm


def check_swarm(snapshot: ClusterSnapshot) -> list[Finding]:
    reachable = [e for e in snapshot.engines if e.health is not Health.ERROR and e.role != "unknown"]
    if not reachable:
        reasons = "; ".join(f"{e.endpoint}: {e.message}" for e in snapshot.engines) or "no engine given"
        return [Finding("swarm.unreachable", Severity.ERROR, "swarm", "engines", "no engine answers", reasons,
                        "check the endpoint (--host/--context/DOCKER_HOST), that dockerd runs, and socket permissions")]
    if all(e.role == "standalone" for e in reachable):
        return [Finding("swarm.inactive", Severity.ERROR, "swarm", "swarm", "swarm mode is not active",
                        f"{plural(len(reachable), 'engine')}, none in a swarm",
                        "`docker swarm init` on a manager and `docker swarm join` on the others")]
    if not snapshot.nodes:
        return [Finding("swarm.no_manager", Severity.ERROR, "swarm", "swarm", "no manager reachable",
                        "the engines given are workers: nodes, services and tasks come from a manager",
                        "add a manager's engine (--host or --context)")]
    managers = [n for n in snapshot.nodes if n.role == "manager"]
    healthy = [n for n in managers if n.state == "ready" and n.reachability in ("reachable", "")]
    quorum = len(managers) // 2 + 1
    evidence = f"{len(healthy)} of {len(managers)} managers reachable; quorum needs {quorum}"
    if len(healthy) < quorum:
        return [Finding("swarm.quorum_lost", Severity.ERROR, "swarm", "managers", "manager quorum lost", evidence,
                        "bring managers back, or `docker swarm init --force-new-cluster` on a healthy one")]
    if len(managers) == 1:
        return [Finding("swarm.single_manager", Severity.INFO, "swarm", "managers", "one manager: no fault tolerance",
                        evidence, "promote two workers (`docker node promote`) for a 3-manager quorum")]
    if len(healthy) - 1 < quorum:
        return [Finding("swarm.quorum_at_risk", Severity.WARNING, "swarm", "managers",
                        "manager quorum at risk: one more manager lost stops the swarm", evidence,
                        "bring the unreachable managers back, or run an odd number of managers (3 or 5)")]
    return []


def check_engines(snapshot: ClusterSnapshot) -> list[Finding]:
    """Engines that do not answer while others do: what comes from them (stats, views, probes) is missing. The
    engine of a node the managers see down is that node's `node.down` (its evidence names the engine's state)."""
    if all(e.health is Health.ERROR for e in snapshot.engines):
        return []  # swarm.unreachable says it
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    down = {n.id for n in snapshot.nodes if n.state != "ready"}
    return [Finding("engine.unreachable", Severity.WARNING, "node",
                    hostnames.get(e.node_id or "", e.hostname or e.endpoint),
                    f"no connection to the engine {e.endpoint}",
                    f"{e.message}; its container stats, network views and probes from it are missing",
                    "check that its dockerd runs and that overlaytui may reach its socket or port", e.node_id or "")
            for e in snapshot.engines if e.health is Health.ERROR and e.node_id not in down]


def check_nodes(snapshot: ClusterSnapshot) -> list[Finding]:
    findings = []
    for node in snapshot.nodes:
        if node.state != "ready":
            engine = next((e for e in snapshot.engines if e.node_id == node.id), None)
            detail = f"; its engine: {engine.health.value} {engine.message}".rstrip() if engine else ""
            findings.append(Finding(
                "node.down", Severity.ERROR, "node", node.hostname, f"{node.hostname} is {node.state}",
                f"state {node.state}, address {node.address}{detail}",
                "check the node's dockerd and its reachability on 2377/tcp, 7946/tcp+udp, 4789/udp", node.id))
        elif node.availability == "drain":
            findings.append(Finding(
                "node.drain", Severity.WARNING, "node", node.hostname, f"{node.hostname} is drained",
                "availability drain: it runs no tasks",
                "`docker node update --availability active` when maintenance is over", node.id))
        elif node.availability == "pause":
            findings.append(Finding("node.pause", Severity.INFO, "node", node.hostname, f"{node.hostname} is paused",
                                    "availability pause: no new tasks are placed there",
                                    "`docker node update --availability active`", node.id))
    return findings


# ------------------------------------------------------------------------------------------------- tasks


def imbalance(service: Service, per_node: Mapping[str, int], ready_nodes: Sequence[str]) -> str:
    """Why a service's placement is off, or "": replicated tasks per ready node differing by more than one, or a
    global service missing on a ready node."""
    counts = [per_node.get(node, 0) for node in ready_nodes]
    if not counts:
        return ""
    if service.mode == "global":
        missing = sum(1 for c in counts if c == 0)
        return f"{missing} ready node(s) without a task" if missing else ""
    if service.mode == "replicated" and max(counts) - min(counts) > 1:
        return f"uneven: {min(counts)} to {max(counts)} tasks per node"
    return ""


def latest_failures(tasks: Iterable[Task]) -> dict[str, Task]:
    """service id -> its most recent failed, rejected or stuck-pending task among those meant to run."""
    latest: dict[str, Task] = {}
    for task in tasks:
        if task.error and (task.state in TASK_FAILED or task.state in TASK_PENDING) and task.wanted:
            known = latest.get(task.service_id)
            if known is None or task.timestamp > known.timestamp:
                latest[task.service_id] = task
    return latest


@_of_topology
def check_tasks(snapshot: ClusterSnapshot) -> list[Finding]:
    findings = []
    uneven = []
    ready = [n.id for n in snapshot.nodes if n.state == "ready" and n.availability == "active"]
    running: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for task in snapshot.tasks:
        if task.up and task.node_id:
            running[task.service_id][task.node_id] += 1
    latest_failure = latest_failures(snapshot.tasks)
    for service in snapshot.services:
        if service.probe_agent:  # overlaytui's own agents: transient, another run's too (probing says what fails)
            continue
        run = sum(running[service.id].values())
        want = service.wanted_tasks
        failure = latest_failure.get(service.id)
        if want is not None and run < want:
            severity = Severity.ERROR if run == 0 else Severity.WARNING
            evidence = f"{run}/{want} running" + (f"; latest task {failure.state}: {failure.error}" if failure else "")
            remedy = ("fix what the task error says (image, constraints, resources), then "
                      f"`docker service ps {service.name} --no-trunc`") if failure else \
                f"`docker service ps {service.name} --no-trunc` shows why"
            findings.append(Finding("service.replicas", severity, "service", service.name,
                                    f"{service.name} runs {run} of {want} tasks", evidence, remedy, service.name))
        problem = imbalance(service, running[service.id], ready)
        if problem and (want is None or run >= want):
            uneven.append(Finding("service.imbalance", Severity.INFO, "service", service.name,
                                  f"{service.name} is spread unevenly", problem,
                                  f"`docker service update --force {service.name}` rebalances (restarts tasks)",
                                  service.name))
    if len(uneven) > 1:  # one cause as a rule (a node left, or came back): one info line
        names = natural_sorted(f.subject for f in uneven)
        uneven = [Finding("service.imbalance", Severity.INFO, "swarm", "services",
                          f"{plural(len(uneven), 'service')} spread unevenly: {_listed(names)}",
                          "; ".join(f"{f.subject}: {f.evidence}" for f in sorted(uneven, key=lambda f: natural_key(
                              f.subject))),
                          "`docker service update --force SERVICE` rebalances one (restarts its tasks)", "",
                          tuple(sorted(uneven, key=lambda f: natural_key(f.subject))))]
    return findings + uneven


def check_task_containers(snapshot: ClusterSnapshot) -> list[Finding]:
    """Tasks the managers count as running whose node's own engine runs no container for them: the node's agent
    is out of step with the managers (seen on the lab after an engine restart: `docker service ls` said 3/3 while
    the node ran nothing for minutes). Only settled tasks on nodes whose engine answered this poll count."""
    answered = {e.node_id for e in snapshot.engines if e.node_id and e.health is Health.OK}
    if not answered:
        return []
    on_node: dict[str, set[str]] = defaultdict(set)
    for container in snapshot.containers:
        if container.node_id in answered:
            on_node[container.node_id].update(filter(None, (container.container_id, container.task_id)))
    settled = snapshot.taken_at - SETTLE_S
    ghosts: dict[str, list[Task]] = defaultdict(list)
    for task in snapshot.tasks:
        if (task.up and task.node_id in answered
                and task.timestamp <= settled and not {task.id, task.container_id} & on_node[task.node_id]):
            ghosts[task.node_id].append(task)
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    findings = []
    for node_id, tasks in ghosts.items():
        host = hostnames.get(node_id, node_id)
        names = ", ".join(natural_sorted(t.name for t in tasks)[:5]) + (f" and {len(tasks) - 5} more" if len(tasks) > 5
                                                                 else "")
        findings.append(Finding(
            "task.no_container", Severity.WARNING, "node", host,
            f"{host} runs no container for {plural(len(tasks), 'task')} the managers count as running",
            f"{names}: running for at least {int(snapshot.taken_at - max(t.timestamp for t in tasks))} s "
            f"according to the managers; no such container in `docker ps` on {host}",
            f"{host}'s agent is out of step with the managers; it may catch up by itself — if not, "
            f"`docker node update --availability drain {host}` then `--availability active` moves the tasks, "
            f"or restart the engine on {host}", node_id))
    return findings


# ------------------------------------------------------------------------------------------------- peers


@_of_topology
def check_peers(snapshot: ClusterSnapshot) -> list[Finding]:
    """Each node's peer list for an overlay should name every node that runs its tasks; a node missing means
    the gossip between them (7946 tcp/udp) does not get through. A node that the others' lists miss (its own
    lists missing them) is one finding about that node (`_explain_peers`)."""
    fired: dict[tuple[str, str], Finding] = {}  # (overlay, viewer) -> its finding
    missing_of: dict[tuple[str, str], list[str]] = {}  # (overlay, viewer) -> the nodes its list misses
    by_address = {n.address: n.hostname for n in snapshot.nodes}
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    ready = {n.id for n in snapshot.nodes if n.state == "ready"}
    settled = snapshot.taken_at - SETTLE_S
    for net in snapshot.networks:
        if net.driver != "overlay" or net.ingress:
            continue
        active = {t.node_id for t in snapshot.tasks if t.up
                  and t.node_id in ready and t.timestamp <= settled and any(a.network_id == net.id
                                                                            for a in t.addresses)}
        expected = {n.address for n in snapshot.nodes if n.id in active}
        for view in net.views:
            if view.node_id not in active:
                continue
            seen = {p.address for p in view.peers}  # a peer list may name more: fresh tasks are not counted
            missing = natural_sorted(by_address.get(a, a) for a in expected - seen)
            if missing:
                me = hostnames.get(view.node_id or "", view.engine)
                missing_of[(net.name, me)] = missing
                fired[(net.name, me)] = Finding(
                    "network.peers", Severity.WARNING, "network", f"{net.name} on {me}",
                    f"{me} does not know {', '.join(missing)} as peers on {net.name}",
                    f"peers seen by {me}: {', '.join(natural_sorted(by_address.get(a, a) for a in seen)) or 'none'}; "
                    f"nodes running its tasks: {', '.join(natural_sorted(hostnames[n] for n in active))}",
                    "open 7946/tcp and 7946/udp (gossip) between the nodes", net.name)
    return _explain_peers(fired, missing_of, {n.hostname: n.id for n in snapshot.nodes})


def _explain_peers(fired: Mapping[tuple[str, str], Finding], missing_of: Mapping[tuple[str, str], list[str]],
                   node_ids: Mapping[str, str]) -> list[Finding]:
    """Peer-list findings that one node explains (the others miss it, its own lists miss them), when it explains
    two or more: one finding about that node, the lists as details; the node explaining most first."""
    remaining = dict(fired)
    found = []
    while remaining:
        covers = {node: [k for k in remaining if node in missing_of[k] or k[1] == node]
                  for node in natural_sorted({n for k in remaining for n in (*missing_of[k], k[1])})}
        node, keys = max(covers.items(), key=lambda kv: len(kv[1]))  # max keeps the first of equals: natural order
        viewers = natural_sorted({k[1] for k in keys if k[1] != node})
        if len(keys) < 2 or not viewers:
            break
        nets = sorted({k[0] for k in keys})
        found.append(Finding(
            "network.peers", Severity.WARNING, "node", node,
            f"{node} is missing from the peer lists of {_listed(viewers)} ({', '.join(nets)})",
            "; ".join(f"{k[1]} on {k[0]} misses {', '.join(missing_of[k])}" for k in sorted(keys, key=natural_tuple)),
            f"open 7946/tcp and 7946/udp (gossip) to and from {node}", node_ids.get(node, ""),
            tuple(remaining.pop(k) for k in sorted(keys, key=natural_tuple))))
    return found + [remaining[k] for k in sorted(remaining, key=natural_tuple)]


# ------------------------------------------------------------------------------------------------- ipam

IPAM_LOW = 0.8  # share of an overlay's addresses in use that is worth a warning


def ipam_usage(snapshot: ClusterSnapshot, net: Network) -> tuple[int, int] | None:
    """(addresses in use, usable addresses) of an IPv4 overlay: task endpoints (the managers' view), service
    VIPs, and what the nodes list locally (load balancers, attachable containers); the subnet's network,
    broadcast and gateway addresses are not usable. None when the subnet is unknown or not IPv4."""
    if net.ipam_status is not None:  # the engine's own count (API >= 1.52): reserved addresses included
        in_use, available = net.ipam_status
        return in_use, in_use + available
    try:
        subnet = ipaddress.ip_network(net.subnet or "", strict=False)
    except ValueError:
        return None
    if subnet.version != 4 or subnet.prefixlen > 30:
        return None
    used: set[str] = set()
    for task in snapshot.tasks:
        if task.wanted and task.state not in TASK_ENDED:
            used.update(a.address.split("/")[0] for a in task.addresses if a.network_id == net.id)
    for service in snapshot.services:
        used.update(v.address.split("/")[0] for v in service.vips if v.network_id == net.id)
    for view in net.views:
        used.update(e.ipv4.split("/")[0] for e in view.endpoints if e.ipv4)
    return len(used), subnet.num_addresses - 3


@_of_topology
def check_ipam(snapshot: ClusterSnapshot) -> list[Finding]:
    """Overlays running out of addresses: tasks stay in "new" without an address (moby#43052: the managers log
    "could not allocate IP", the task shows nothing) while the subnet is full or nearly so. A stuck task is laid
    at its networks that are nearly full; when none is, at every network of its service (any may be the one)."""
    settled = snapshot.taken_at - IPAM_SETTLE_S
    overlays = [n for n in snapshot.networks if n.driver == "overlay" and not n.ingress]
    usage = {n.id: ipam_usage(snapshot, n) for n in overlays}
    nearly_full = {nid for nid, u in usage.items() if u is not None and u[0] >= IPAM_LOW * u[1]}
    networks_of = {s.id: [nid for nid in s.network_ids if nid in usage] for s in snapshot.services}
    stuck: dict[str, list[Task]] = defaultdict(list)
    for task in snapshot.tasks:
        if task.state == "new" and task.desired_state == "running" and not task.addresses \
                and task.timestamp <= settled and networks_of.get(task.service_id):
            candidates = [nid for nid in networks_of[task.service_id] if nid in nearly_full]
            for nid in candidates or networks_of[task.service_id]:
                stuck[nid].append(task)
    findings = []
    for net in overlays:
        if usage[net.id] is None and net.id not in stuck:
            continue
        used, usable = usage[net.id] or (0, 0)
        evidence = (f"{used} of {usable} usable addresses of {net.subnet} in use" if usage[net.id] else
                    "address use unknown")
        if stuck.get(net.id):
            more = " ..." if len(stuck[net.id]) > 5 else ""
            names = ", ".join(natural_sorted(t.name for t in stuck[net.id])[:5]) + more
            evidence += f"; {plural(len(stuck[net.id]), 'task')} stuck in New without an address: {names}"
        if stuck.get(net.id) or (usage[net.id] and used >= usable):
            findings.append(Finding(
                "ipam.exhausted", Severity.ERROR, "network", net.name,
                f"{net.name} has run out of addresses" + (": tasks cannot start" if stuck.get(net.id) else ""),
                evidence, f"recreate {net.name} with a larger --subnet (or scale down; every task, every service "
                "VIP and every node's load balancer takes one address)", net.name))
        elif net.id in nearly_full:
            findings.append(Finding(
                "ipam.low", Severity.WARNING, "network", net.name, f"{net.name} is running out of addresses",
                evidence, f"plan a larger --subnet for {net.name} before scaling further", net.name))
    return findings


def check_firewall(snapshot: ClusterSnapshot) -> list[Finding]:
    """Engines on the nftables firewall backend (Engine API >= 1.49): swarm's overlay networking does not
    support it (Docker 28 documents it as experimental, without swarm)."""
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    on_nft = [e for e in snapshot.engines if e.firewall == "nftables" and e.health is not Health.ERROR]
    if not on_nft or not snapshot.nodes:
        return []
    names = natural_sorted(hostnames.get(e.node_id or "", e.hostname or e.endpoint) for e in on_nft)
    each = [Finding("engine.firewall", Severity.ERROR, "node", name, f"{name}'s engine uses the nftables firewall "
                    "backend, which swarm does not support", "docker info: FirewallBackend.Driver = nftables",
                    "run dockerd with the iptables firewall backend (`\"firewall-backend\": \"iptables\"` in "
                    "daemon.json) on swarm nodes", next((e.node_id or "" for e in on_nft if hostnames.get(
                        e.node_id or "", e.hostname or e.endpoint) == name), ""))
            for name in names]
    if len(each) == 1:
        return each
    return [replace(each[0], subject_kind="swarm", subject="engines", subject_key="",
                    summary=f"{len(each)} engines use the nftables firewall backend, which swarm does not support",
                    evidence=f"docker info: FirewallBackend.Driver = nftables on {_listed(names)}",
                    details=tuple(each))]


def check_vip_idle(snapshot: ClusterSnapshot) -> list[Finding]:
    """Services reached through a VIP: IPVS drops connections idle for 900 s (moby#37466)."""
    vip = sorted(s.name for s in snapshot.services if s.endpoint_mode == "vip" and s.vips and not s.probe_agent)
    if not vip:
        return []
    listed = ", ".join(vip[:8]) + (f" and {len(vip) - 8} more" if len(vip) > 8 else "")
    return [Finding("vip.idle_timeout", Severity.INFO, "swarm", "services",
                    f"{plural(len(vip), 'service')} behind a VIP: long-lived idle connections through it are "
                    "dropped after 900 s",
                    f"vip mode: {listed}; IPVS forgets connections idle for 900 s, the client sees a reset later",
                    "send TCP keepalives more often than every 900 s (e.g. net.ipv4.tcp_keepalive_time=600 in the "
                    "clients), or use --endpoint-mode dnsrr for services with long-lived connections")]


@_of_topology
def check_node_addresses(snapshot: ClusterSnapshot) -> list[Finding]:
    """A peer address that no node advertises: a node sends VXLAN from (or advertises) another address than the
    one the swarm knows it by (moby#53004, moby#30972); its peers' tunnels point at the wrong place."""
    known = {n.address for n in snapshot.nodes}
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    strangers: dict[str, set[str]] = defaultdict(set)
    for net in snapshot.networks:
        for view in net.views:
            for peer in view.peers:
                if peer.address and peer.address not in known:
                    strangers[peer.address].add(hostnames.get(view.node_id or "", view.engine))
    if not known:
        return []
    return [Finding("node.address", Severity.WARNING, "swarm", address,
                    f"peers know a node as {address}, which no node advertises",
                    f"seen in the peer lists of {', '.join(natural_sorted(seen))}; nodes advertise "
                    f"{', '.join(natural_sorted(known))}",
                    "set --advertise-addr and --data-path-addr explicitly on the node that uses this address "
                    "(`docker swarm join --advertise-addr ... --data-path-addr ...`)")
            for address, seen in sorted(strangers.items())]


# ----------------------------------------------------------------------------------------------- underlay


def check_underlay_mtu(snapshot: ClusterSnapshot, underlay_mtus: Mapping[str, int]) -> list[Finding]:
    """An overlay's MTU option M (1500 when not set) gives containers M - 50; VXLAN adds those 50 bytes back, so
    every node that carries the overlay needs an underlay MTU of at least M. One finding per short node, naming
    the overlays it is too small for."""
    by_address = {n.address: n for n in snapshot.nodes}
    overlays = [net for net in snapshot.networks if net.driver == "overlay"]
    findings = []
    for address, mtu in sorted(underlay_mtus.items()):
        short = sorted((net.name, net.configured_mtu or 1500) for net in overlays if mtu < (net.configured_mtu
                                                                                              or 1500))
        if not short:
            continue
        node = by_address.get(address)
        host = node.hostname if node else address
        needed = max(n for _name, n in short)
        findings.append(Finding(
            "mtu.underlay", Severity.WARNING, "node", host,
            f"{host} has an underlay MTU of {mtu}; {', '.join(name for name, _ in short)} "
            f"{'needs' if len(short) == 1 else 'need'} {needed}",
            f"underlay link MTU {mtu}; overlay packets are the overlay's MTU option (default 1500) on the wire: "
            + ", ".join(f"{name} {need}" for name, need in short),
            f"raise {host}'s underlay MTU to {needed}, or recreate the overlays with "
            f"`--opt com.docker.network.driver.mtu={mtu}`", node.id if node else ""))
    return findings


def merge_mtu(findings: list[Finding]) -> list[Finding]:
    """A black hole through a node whose underlay MTU is known to be small is one problem: the underlay finding's
    evidence joins the black hole's, and the underlay finding goes. The small underlays left, when there are
    several, are one finding (a cloud network's MTU is every node's)."""
    holes = {f.subject: f for f in findings if f.check == "mtu.black_hole" and f.subject_kind == "node"}
    merged = []
    short = []
    for f in findings:
        if f.check == "mtu.underlay" and f.subject in holes:
            hole = holes[f.subject]
            holes[f.subject] = replace(hole, evidence=f"{hole.evidence}; {f.summary}", details=(*hole.details, f))
            continue
        if f.check == "mtu.underlay" and f.subject_kind == "node":
            short.append(f)
            continue
        merged.append(f)
    merged += short if len(short) < 2 else [_underlay_group(short)]
    return [holes.get(f.subject, f) if f.check == "mtu.black_hole" and f.subject_kind == "node" else f
            for f in merged]


def _underlay_group(short: list[Finding]) -> Finding:
    nodes = natural_sorted(f.subject for f in short)
    return Finding(
        "mtu.underlay", Severity.WARNING, "swarm", "nodes",
        f"{len(short)} nodes have an underlay MTU too small for their overlays: {_listed(nodes)}",
        "; ".join(f.summary for f in sorted(short, key=lambda f: natural_key(f.subject))),
        "raise those nodes' underlay MTU to what their overlays need (above), or recreate the overlays with "
        "`--opt com.docker.network.driver.mtu=` the smallest underlay MTU", "",
        tuple(sorted(short, key=lambda f: natural_key(f.subject))))


# ------------------------------------------------------------------------------------------------- probes


def _latest(results: Sequence[ProbeResult], kinds: Iterable[str]
            ) -> dict[str, Mapping[tuple[str, str, str], ProbeResult]]:
    """The latest result per (overlay, src, dst) of each of `kinds`, in one pass. The results are indexed by
    position and made as read (ResultsAt): a 200-node demo round is 238,800 packed results, and holding them all
    as objects for each round's findings had the frame thread allocate ~110 MB of short-lived objects a round,
    the churn that left the heap fragmented. The kinds are asked for apart (pings, then the rest) so that one
    index lives at a time: each is ~15 MB of keys at 200 nodes."""
    if isinstance(results, (Results, PackedResults)):
        keyed = results.keyed()
    else:
        keyed = ((r.kind, r.network, r.src_node, r.dst_node, r.measured_at) for r in results)
    wanted = set(kinds)
    at: dict[str, dict[tuple[str, str, str], int]] = {kind: {} for kind in wanted}
    for i, (kind, network, src, dst, measured_at) in enumerate(keyed):
        if kind not in wanted:
            continue
        of_kind = at[kind]
        key = (network, src, dst)
        j = of_kind.get(key)
        if j is None or measured_at >= results[j].measured_at:
            of_kind[key] = i
    return {kind: ResultsAt(results, positions) for kind, positions in at.items()}


def _silent(result: ProbeResult) -> bool:
    return not result.error and result.sent > 0 and result.received == 0


def _in_order(found: dict) -> dict:
    """A dict keyed (overlay, src, dst), in the pairs' natural order."""
    return dict(sorted(found.items(), key=lambda item: natural_tuple(item[0])))


def check_probes(snapshot: ClusterSnapshot, probes: Iterable[ProbeResult], thresholds: LossThresholds
                 ) -> list[Finding]:
    """The probe results' findings: blocked pairs, encrypted overlays that drop everything, loss (bad,
    acceptable, too few packets), slow pairs, failed probes, MTU black holes and discovery. Each ping is read
    once, and only a pair with something to say is kept (at 200 nodes nearly all of the 119,400 are good)."""
    results = probes if isinstance(probes, Sequence) else tuple(probes)
    if not len(results):
        return []
    networks = {n.name: n for n in snapshot.networks}
    node_ids = {n.hostname: n.id for n in snapshot.nodes}
    findings = _ping_findings(snapshot, results, networks, node_ids, thresholds)  # its index gone before the next
    latest = _latest(results, ("mtu", "discovery"))
    findings += _mtu(latest["mtu"], networks, node_ids)
    findings += check_discovery(latest["discovery"], networks, node_ids)
    return findings


def _ping_findings(snapshot: ClusterSnapshot, results: Sequence[ProbeResult], networks: Mapping[str, Network],
                   node_ids: Mapping[str, str], thresholds: LossThresholds) -> list[Finding]:
    findings: list[Finding] = []
    ready = {n.hostname for n in snapshot.nodes if n.state == "ready"}
    pings = _latest(results, ("ping",))["ping"]
    silent_plain: set[tuple[str, str, str]] = set()
    silent_encrypted: set[tuple[str, str, str]] = set()
    measured: set[tuple[str, str, str]] = set()
    notable: dict[tuple[str, str, str], tuple[ProbeResult, Verdict | None, bool]] = {}  # failed, or a verdict to say
    for key, r in pings.items():
        net = networks.get(key[0])
        if _silent(r) and net is not None:
            (silent_encrypted if net.encrypted else silent_plain).add(key)
        if r.measured:
            measured.add(key)
        if r.error:
            notable[key] = (r, None, False)
            continue
        verdict = judge(r, net, thresholds)
        slow_rtt = r.rtt_avg_ms is not None and r.rtt_avg_ms > RTT_WARNING_MS
        if verdict is Verdict.BAD or verdict is Verdict.INSUFFICIENT or slow_rtt \
                or (verdict is Verdict.ACCEPTABLE and r.sent != r.received):
            notable[key] = (r, verdict, slow_rtt)
    plain = [name for name, net in networks.items() if not net.encrypted]

    def all_silent(a: str, b: str) -> bool:  # every plain ping between a and b (there is one) is silent
        return all(key in silent_plain for n in plain for key in ((n, a, b), (n, b, a)) if key in pings)
    blocked = {pair for pair in {(s, d) if s <= d else (d, s) for (_n, s, d) in silent_plain}
               if set(pair) <= ready and all_silent(*pair)}
    overlays_of: dict[tuple[str, str], set[str]] = defaultdict(set)  # a blocked pair -> its plain overlays
    if blocked:
        for n, s, d in pings:
            pair = (s, d) if s <= d else (d, s)
            if pair in blocked and n in networks and not networks[n].encrypted:
                overlays_of[pair].add(n)
    per_pair = {}
    for a, b in sorted(blocked, key=natural_tuple):
        overlays = sorted(overlays_of[(a, b)])
        per_pair[(a, b)] = Finding(
            "dataplane.blocked", Severity.ERROR, "pair", f"{a} <-> {b}",
            f"no overlay traffic between {a} and {b} although both are Ready",
            f"100 % loss both ways on every plain overlay probed ({', '.join(overlays)})",
            "open 4789/udp (VXLAN data) and 7946/tcp+udp (gossip) between the two nodes")
    findings += _explain_blocked(per_pair, node_ids)
    esp = _encryption(pings, networks, ready, silent_encrypted)
    findings += esp
    esp_networks = {name for f in esp for name in f.subject.split(", ")}

    def explained(key: tuple[str, str, str]) -> bool:  # by a finding above: blocked, or ESP
        net_name, src, dst = key
        net = networks.get(net_name)
        if net is None:
            return False
        if not net.encrypted:
            return ((src, dst) if src <= dst else (dst, src)) in blocked
        return net_name in esp_networks and key in silent_encrypted
    judged = {key for key in measured if not explained(key)} if blocked or esp_networks else measured
    bad: dict[tuple[str, str, str], Finding] = {}
    loss_of: dict[tuple[str, str, str], float] = {}
    failed: dict[str, list[ProbeResult]] = defaultdict(list)  # reason (its node named <src>) -> the pings
    acceptable: dict[tuple[str, str, str], tuple[ProbeResult, Finding]] = {}
    insufficient: dict[tuple[str, str, str], tuple[ProbeResult, Finding]] = {}
    slow: dict[tuple[str, str, str], tuple[float, Finding]] = {}
    for key, (r, verdict, slow_rtt) in notable.items():  # in the results' order: each is put in order below
        if explained(key):
            continue
        net_name, src, dst = key
        if verdict is None:  # failed
            if {src, dst} <= ready:  # a probe to or from a node that is not Ready: node.down says why
                failed[_reason(r)].append(r)
            continue
        lost = r.sent - r.received
        pct = r.loss_pct or 0.0  # None: no packet sent (a recording's odd result); judged unknown, never bad
        subject = f"{src} -> {dst} on {net_name}"
        evidence = (f"no loss in {r.sent} packet{_s(r.sent)}" if not lost else f"{lost} of {r.sent} packets lost"
                    if verdict is Verdict.BAD else f"{lost} of {r.sent} packets lost ({pct:.2f} %)")
        if r.rtt_avg_ms is not None:
            evidence += f", RTT avg {r.rtt_avg_ms:.2f} ms"
        if verdict is Verdict.BAD:
            bad[key] = Finding(
                "loss.bad", Severity.ERROR, "pair", subject, f"{pct:.2f} % packet loss", evidence,
                f"look for drops on the path between {src} and {dst}: NIC errors, a full conntrack table, a firewall "
                "rate-limiting 4789/udp", net_name)
            loss_of[key] = pct
        elif verdict is Verdict.ACCEPTABLE and lost:
            acceptable[key] = (r, Finding("loss.acceptable", Severity.INFO, "pair", subject, "some loss", evidence,
                                          f"below {thresholds.acceptable_pct:g} %: watch it", net_name))
        elif verdict is Verdict.INSUFFICIENT:
            insufficient[key] = (r, Finding("loss.samples", Severity.INFO, "pair", subject,
                                            "not enough samples to judge the loss", evidence,
                                            "keep probing", net_name))
        if slow_rtt:
            slow[key] = (r.rtt_avg_ms, Finding(
                "latency.high", Severity.WARNING, "pair", subject, f"slow overlay: RTT avg {r.rtt_avg_ms:.2f} ms",
                evidence, "look for a congested or distant underlay link between the nodes", net_name))
    failed = {reason: sorted(rs, key=lambda r: natural_tuple((r.network, r.src_node, r.dst_node)))
              for reason, rs in failed.items()}
    findings += explain_loss(_in_order(bad), loss_of, judged, node_ids)
    findings += _loss_info(list(_in_order(acceptable).values()), list(_in_order(insufficient).values()), thresholds)
    findings += _latency(_in_order(slow), node_ids)
    findings += _failed(failed, node_ids)
    return findings


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def plural(count: int, word: str, many: str = "") -> str:
    """ "1 error", "2 errors", "0 info" (`many` for the irregular ones: plural(n, "info", "info"))."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def counts_text(findings: Iterable[Finding]) -> str:
    """The doctor's last line: "1 error, 2 warnings, 3 info"."""
    findings = list(findings)
    count = {s: sum(1 for f in findings if f.severity is s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)}
    return (f"{plural(count[Severity.ERROR], 'error')}, {plural(count[Severity.WARNING], 'warning')}, "
            f"{plural(count[Severity.INFO], 'info', 'info')}")


def details_text(finding: Finding) -> str:
    """What a grouped finding's details are, counted: "24 pairs", "3 places" (a node on an overlay), "2 findings"."""
    kinds = {d.subject_kind for d in finding.details}
    word = {"pair": "pair", "network": "place"}.get(kinds.pop(), "finding") if len(kinds) == 1 else "finding"
    return plural(len(finding.details), word)


def _listed(items: Sequence[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _loss_info(acceptable, insufficient, thresholds: LossThresholds) -> list[Finding]:
    """The info verdicts, each one finding for every pair it applies to (the pairs as details): pairs with some
    loss below the acceptable threshold, and pairs with too few packets to be called good yet. Their subject is
    the same whatever the count, so a consumer that follows findings by subject sees one finding grow."""
    findings = []
    if acceptable:
        findings.append(Finding(
            "loss.acceptable", Severity.INFO, "swarm", "overlays",
            f"some loss on {plural(len(acceptable), 'pair')}, below {thresholds.acceptable_pct:g} %",
            _listed([f"{f.subject} {r.loss_pct:.3f} %" for r, f in sorted(
                acceptable, key=lambda rf: (-(rf[0].loss_pct or 0.0), natural_key(rf[1].subject)))]),
            f"below {thresholds.acceptable_pct:g} %: watch it", _one_network(f for _r, f in acceptable),
            tuple(f for _r, f in acceptable)))
    if insufficient:
        lost = sum(r.sent - r.received for r, _f in insufficient)
        sent = sorted(r.sent for r, _f in insufficient)
        packets = f"{sent[0]:,}" if sent[0] == sent[-1] else f"{sent[0]:,} to {sent[-1]:,}"
        findings.append(Finding(
            "loss.samples", Severity.INFO, "swarm", "overlays",
            f"not enough samples yet to judge the loss of {plural(len(insufficient), 'pair')}",
            f"{packets} packets per pair, " + (f"{lost} lost in all" if lost else "none lost") + ": "
            + _listed([f.subject for _r, f in insufficient]),
            f"keep probing: a verdict of good needs ~{_roughly(packets_needed(thresholds)):,} loss-free packets per "
            "pair",
            _one_network(f for _r, f in insufficient), tuple(f for _r, f in insufficient)))
    return findings


def _roughly(count: int) -> int:
    """A count as people say it: 29,956 is ~30,000; small counts as they are."""
    return round(count, -3) if count >= 10_000 else count


def _one_network(findings: Iterable[Finding]) -> str:
    """What selecting a group highlights: its network when every finding in it is on one, else nothing."""
    keys = {f.subject_key for f in findings}
    return keys.pop() if len(keys) == 1 else ""


def _latency(slow: Mapping[tuple[str, str, str], tuple[float, Finding]], node_ids: Mapping[str, str]
             ) -> list[Finding]:
    """Slow pairs: one finding for a node common to every slow pair (two or more peers), else one for all the
    slow pairs when there are several, else the pair's own."""
    if len(slow) < 2:
        return [f for _rtt, f in slow.values()]
    keys = sorted(slow, key=lambda k: (-slow[k][0], natural_tuple(k)))
    ordered = tuple(slow[k][1] for k in sorted(slow, key=natural_tuple))
    common = set.intersection(*({k[1], k[2]} for k in slow))
    peers = {n for k in slow for n in k[1:]} - common
    evidence = _listed([f"{slow[k][1].subject} {slow[k][0]:.2f} ms" for k in keys])
    if len(common) == 1 and len(peers) >= 2:
        [node] = common
        return [Finding("latency.high", Severity.WARNING, "node", node,
                        f"slow overlay traffic through {node} ({plural(len(slow), 'pair')})", f"RTT avg {evidence}",
                        f"look at {node}: its load, a congested or distant underlay link", node_ids.get(node, ""),
                        ordered)]
    return [Finding("latency.high", Severity.WARNING, "swarm", "overlays",
                    f"slow overlay traffic on {plural(len(slow), 'pair')}", f"RTT avg {evidence}",
                    "look for a congested or distant underlay link between the nodes", _one_network(ordered),
                    ordered)]


def _reason(result: ProbeResult) -> str:
    """A failed probe's error with its own nodes' names taken out, so one cause on many nodes is one reason."""
    text = re.sub(rf"(?<![\w.-]){re.escape(result.src_node)}(?![\w-])", "<src>", result.error)
    return re.sub(rf"(?<![\w.-]){re.escape(result.dst_node)}(?![\w-])", "<dst>", text)


def _failed(failed: Mapping[str, list[ProbeResult]], node_ids: Mapping[str, str] | None = None) -> list[Finding]:
    """Failed probes measured nothing (never a loss verdict). One finding per reason shared by several nodes'
    probes; the reasons of one node's probes alone are one finding about that node. The failed pairs are the
    details. Subjects do not count anything: the finding is the same one while more pairs fail."""
    by_source: dict[str, list[tuple[str, ProbeResult]]] = defaultdict(list)
    shared = []
    for reason, results in sorted(failed.items()):
        sources = {r.src_node for r in results}
        if len(sources) == 1:
            by_source[next(iter(sources))] += [(reason, r) for r in results]
        else:
            shared.append((reason, results))
    findings = []
    by_subject: dict[str, list[tuple[str, list[ProbeResult]]]] = defaultdict(list)
    for reason, results in shared:  # reasons alike in their first 40 characters: one finding (subjects unique)
        text = reason.replace("<src>", "the source node").replace("<dst>", "the destination")
        by_subject[f"probes ({text if len(text) <= 40 else text[:41].rsplit(' ', 1)[0].rstrip(',;:') + '…'})"] \
            .append((text, results))
    for subject, alike in by_subject.items():
        results = [r for _text, some in alike for r in some]
        sources = natural_sorted({r.src_node for r in results})
        findings.append(Finding(
            "probe.failed", Severity.WARNING, "swarm", subject,
            f"{plural(len(results), 'probe')} from {plural(len(sources), 'node')} failed: not measured",
            f"{'; '.join(text for text, _some in alike)}; pairs: " + _listed(_pair_names(results)),
            "see whether the probe agents run on those nodes and answer (`overlaytui probe` says more)",
            _one_network_of(results), _failed_details(results)))
    for src, reasons in sorted(by_source.items(), key=lambda kv: natural_key(kv[0])):
        results = [r for _reason, r in reasons]
        texts = sorted({reason.replace("<src>", src).replace("<dst>", "its peer") for reason, _r in reasons})
        findings.append(Finding(
            "probe.failed", Severity.WARNING, "node", src,
            f"{plural(len(results), 'probe')} from {src} failed: not measured",
            f"{'; '.join(texts)}; pairs: " + _listed(_pair_names(results)),
            f"see whether the probe agent runs on {src} and answers", (node_ids or {}).get(src, ""),
            _failed_details(results)))
    return findings


def _pair_names(results: Iterable[ProbeResult]) -> list[str]:
    return [f"{r.src_node} -> {r.dst_node} on {r.network}" for r in sorted(
        results, key=lambda r: natural_tuple((r.src_node, r.dst_node, r.network)))]


def _one_network_of(results: Iterable[ProbeResult]) -> str:
    names = {r.network for r in results}
    return names.pop() if len(names) == 1 else ""


def _failed_details(results: Iterable[ProbeResult]) -> tuple[Finding, ...]:
    return tuple(Finding("probe.failed", Severity.WARNING, "pair", f"{r.src_node} -> {r.dst_node} on {r.network}",
                         "probe failed", r.error, "", r.network)
                 for r in sorted(results, key=lambda r: natural_tuple((r.src_node, r.dst_node, r.network))))


# ---------------------------------------------------------------------------------------- root causes

EXPLAINS = 0.6  # a node (or an overlay) explains the bad pairs through it when this share of its pairs is bad


def explain_loss(bad: Mapping[tuple[str, str, str], Finding], loss_of: Mapping[tuple[str, str, str], float],
                 measured: set[tuple[str, str, str]], node_ids: Mapping[str, str] | None = None) -> list[Finding]:
    """The smallest explanation of the bad pairs, one finding each (the pairs as its details): a node common to
    most pairs through it (on every overlay), then an overlay whose pairs are bad while the same nodes pass on
    the others, then single paths (both directions, every overlay, in one finding)."""
    remaining = set(bad)
    found: list[Finding] = []
    while remaining:
        best = _best_explanation(remaining, set(bad), measured)
        if best is None:
            break
        kind, what, covered = best
        remaining -= covered
        found.append(_node_finding(what, covered, bad, loss_of, measured, node_ids or {}) if kind == "node"
                     else _network_finding(what, covered, bad, loss_of))
    for pair in sorted({tuple(sorted((s, d))) for (_n, s, d) in remaining}, key=natural_tuple):
        covered = {key for key in remaining if {key[1], key[2]} == set(pair)}
        found.append(_path_finding(pair, covered, bad, loss_of))
    return found


def _best_explanation(remaining, bad, measured):
    candidates = []
    for node in natural_sorted({n for (_net, s, d) in remaining for n in (s, d)}):
        covered = {key for key in remaining if node in key[1:]}
        peers = {n for key in covered for n in key[1:]} - {node}  # one peer only: that is a path, not a node
        if len(peers) >= 2 and _node_explains(node, bad, measured):
            candidates.append((len(covered), 1, "node", node, covered))
    for net in sorted({key[0] for key in remaining}):
        covered = {key for key in remaining if key[0] == net}
        on_net = {key for key in measured if key[0] == net}
        same_pairs_elsewhere = {key for key in measured if key[0] != net and (net, *key[1:]) in covered}
        if (len(covered) >= 2 and len(covered) >= EXPLAINS * len(on_net)
                and not same_pairs_elsewhere & bad and same_pairs_elsewhere):
            candidates.append((len(covered), 0, "network", net, covered))
    if not candidates:
        return None
    _count, _rank, kind, what, covered = max(candidates, key=lambda c: (c[0], c[1]))
    return kind, what, covered


def _node_explains(node: str, bad: set, measured: set) -> bool:
    """Most of the node's measured pairs are bad: all of them, or those towards it, or those from it."""
    for side in (slice(1, 3), slice(2, 3), slice(1, 2)):  # either end, destination, source
        ours = {k for k in measured if node in k[side]}
        if ours and len({k for k in bad if node in k[side]}) >= EXPLAINS * len(ours):
            return True
    return False


def _pairs_text(keys, loss_of, limit: int = 8) -> str:
    ordered = sorted(keys, key=lambda k: (-loss_of.get(k, 0.0), natural_tuple(k)))
    text = ", ".join(f"{s}->{d} on {n} {loss_of.get((n, s, d), 0.0):.1f} %" for n, s, d in ordered[:limit])
    return text + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _about(pct: float) -> str:
    """A typical loss in words: whole percents from 10 %, one decimal from 1 %, two below (0.25 %, never "~0")."""
    return f"{pct:.0f}" if pct >= 10 else f"{pct:.1f}" if pct >= 1 else f"{pct:.2f}"


def _typical(keys, loss_of) -> float:
    values = sorted(loss_of.get(k, 0.0) for k in keys)
    return values[len(values) // 2] if values else 0.0


def _node_finding(node, covered, bad, loss_of, measured, node_ids) -> Finding:
    as_dst = {k for k in covered if k[2] == node}
    as_src = covered - as_dst
    direction = ("towards it" if not as_src else "from it" if not as_dst else "both ways")
    nets = sorted({k[0] for k in covered})
    others = {k for k in measured if node not in k[1:]}
    worst_other = max((loss_of.get(k, 0.0) for k in others & set(bad)), default=None)
    contrast = (f"; pairs without {node}: none over the thresholds" if worst_other is None
                else f"; pairs without {node}: up to {worst_other:.1f} %") if others else ""
    return Finding(
        "loss.bad", Severity.ERROR, "node", node,
        f"{node} loses ~{_about(_typical(covered, loss_of))} % of the overlay packets through it ({direction}, "
        f"{len(covered)} pairs on {', '.join(nets)})",
        f"{_pairs_text(covered, loss_of)}{contrast}",
        f"look at {node}: its NIC errors and drops (`ip -s link`), a full conntrack table, a firewall or rate "
        "limit on 4789/udp (VXLAN), its load", node_ids.get(node, ""),
        tuple(bad[k] for k in sorted(covered, key=natural_tuple)))


def _network_finding(net, covered, bad, loss_of) -> Finding:
    return Finding(
        "loss.bad", Severity.ERROR, "network", net,
        f"{net} loses ~{_about(_typical(covered, loss_of))} % between its nodes while the same nodes pass on other "
        "overlays", _pairs_text(covered, loss_of),
        f"something specific to {net}: its VNI filtered, an MTU or encryption setting, or a policy on its "
        "traffic (`docker network inspect -v`)", net, tuple(bad[k] for k in sorted(covered, key=natural_tuple)))


def _path_finding(pair, covered, bad, loss_of) -> Finding:
    if len(covered) == 1:
        return bad[next(iter(covered))]  # one directed pair on one overlay: its own finding says it all
    a, b = pair
    nets = sorted({k[0] for k in covered})
    directions = {(k[1], k[2]) for k in covered}
    way = f"{a} <-> {b}" if len(directions) == 2 else " -> ".join(next(iter(directions)))
    return Finding(
        "loss.bad", Severity.ERROR, "pair", way,
        f"{_typical(covered, loss_of):.2f} % packet loss on {', '.join(nets)}", _pairs_text(covered, loss_of),
        f"look for drops on the path between {a} and {b}: NIC errors, a full conntrack table, a firewall "
        "rate-limiting 4789/udp", nets[0], tuple(bad[k] for k in sorted(covered, key=natural_tuple)))


def check_discovery(results, networks: Mapping[str, Network], node_ids: Mapping[str, str] | None = None
                    ) -> list[Finding]:
    """From inside a task: the service name and tasks.<service> resolve through 127.0.0.11, and the VIP answers
    when the task IPs do. A VIP that resolves but stays silent while tasks answer is the node's load balancer
    (IPVS) failing. Each check is grouped by the places (node, overlay) it fires at (`_by_place`): a kernel
    without IPVS is one finding, not one per node and overlay."""
    findings = []
    agents = defaultdict(int)  # network -> agents that reported (each resolves tasks.<service>)
    for (net_name, _src, _dst), r in results.items():
        if not r.error:
            agents[net_name] += 1
    seen: dict[str, dict[str, int]] = defaultdict(dict)  # network -> source node -> tasks.<service> count
    for (net_name, src, _dst), r in results.items():
        if not r.error and r.resolved_tasks is not None and r.resolved_vip is not None:
            seen[net_name][src] = r.resolved_tasks
    for net_name, counts in sorted(seen.items()):
        if len(set(counts.values())) > 1:
            findings.append(Finding(
                "discovery.inconsistent", Severity.WARNING, "network", net_name,
                f"tasks.<service> resolves differently on different nodes of {net_name}",
                "addresses per node: " + ", ".join(f"{n} {counts[n]}" for n in natural_sorted(counts)),
                "the nodes' embedded DNS disagree: check gossip between them (7946/tcp+udp) and restart the "
                "engine of the node that lags (docker/for-linux#944)", net_name))
    tested: dict[str, set[tuple[str, str]]] = defaultdict(set)  # check -> the (overlay, node) it could fire at
    fired: dict[str, dict[tuple[str, str], Finding]] = defaultdict(dict)
    for (net_name, src, _dst), r in sorted(results.items(), key=lambda kv: natural_tuple(kv[0])):
        place = (net_name, src)
        subject = f"{src} on {net_name}"
        if r.error:
            continue  # probe.failed territory; the agents may not have started
        tested["discovery.dns"].add(place)
        if r.resolved_vip is None:
            fired["discovery.dns"][place] = Finding(
                "discovery.dns", Severity.ERROR, "network", subject, "service names do not resolve",
                "the probe agents' service name gave no address through 127.0.0.11", DISCOVERY_REMEDY["dns"],
                net_name)
            continue
        if r.resolved_tasks is not None:
            tested["discovery.tasks"].add(place)
            if r.resolved_tasks < agents[net_name]:
                fired["discovery.tasks"][place] = Finding(
                    "discovery.tasks", Severity.WARNING, "network", subject,
                    f"tasks.<service> lists {r.resolved_tasks} of {agents[net_name]} tasks",
                    "the embedded DNS of this node does not know every task: its view of the overlay is incomplete",
                    DISCOVERY_REMEDY["tasks"], net_name)
        if r.task_answers and r.vip_answers is not None:
            tested["discovery.vip"].add(place)
            if r.vip_answers is False:
                fired["discovery.vip"][place] = Finding(
                    "discovery.vip", Severity.ERROR, "network", subject,
                    "the service VIP does not answer, while task IPs do",
                    f"VIP {r.resolved_vip}: no TCP answer; a task IP on another node answers on the same port",
                    DISCOVERY_REMEDY["vip"], net_name)
    for check in ("discovery.dns", "discovery.tasks", "discovery.vip"):
        findings += _by_place(fired[check], tested[check], node_ids or {})
    return findings


DISCOVERY_REMEDY = {
    "dns": "check Docker's embedded DNS: the container's /etc/resolv.conf must point to 127.0.0.11 and 53/udp "
           "inside the container must not be filtered",
    "tasks": "check gossip between the nodes (7946/tcp+udp) and `docker network inspect -v` on the nodes named",
    "vip": "the node's service load balancer (IPVS) is broken: load the ip_vs kernel modules (`modprobe ip_vs`), "
           "or give services --endpoint-mode dnsrr",
}
DISCOVERY_WHAT = {  # check -> what is wrong, said of a group of places
    "discovery.dns": "service names do not resolve",
    "discovery.tasks": "tasks.<service> does not list every task",
    "discovery.vip": "the service VIP does not answer while task IPs do",
}


def _by_place(fired: Mapping[tuple[str, str], Finding], tested: set[tuple[str, str]],
              node_ids: Mapping[str, str]) -> list[Finding]:
    """Findings of one check at (overlay, node) places, by the smallest explanation: every node tested (two or
    more) on every overlay tested is one finding about the swarm; a node failing on every overlay it was tested
    on (two or more) one about that node; an overlay failing on two or more nodes one about the overlay; the
    rest their own. The grouped findings carry the places' findings as details."""
    if not fired:
        return []
    check = next(iter(fired.values())).check
    what = DISCOVERY_WHAT[check]
    remaining = dict(fired)
    found: list[Finding] = []

    def group(kind: str, subject: str, where: str, places, key: str) -> Finding:
        details = tuple(remaining.pop(p) for p in sorted(places, key=natural_tuple))
        evidence = "; ".join(sorted({d.evidence for d in details}))
        sample = details[0]
        return Finding(check, sample.severity, kind, subject, f"{what} {where}", evidence, sample.remedy, key,
                       details)

    nodes_tested = {src for _net, src in tested}
    if set(fired) == tested and len(nodes_tested) >= 2:
        nets = sorted({net for net, _src in tested})
        found.append(group("swarm", "every node", f"({_listed(natural_sorted(nodes_tested))} on {', '.join(nets)})",
                           set(fired), nets[0] if len(nets) == 1 else ""))
        return found
    for node in natural_sorted(nodes_tested):
        mine = {p for p in tested if p[1] == node}
        if len(mine) >= 2 and mine <= set(remaining):
            nets = sorted(net for net, _src in mine)
            found.append(group("node", node, f"(on every overlay tested: {', '.join(nets)})", mine,
                               node_ids.get(node, "")))
    for net in sorted({net for net, _src in remaining}):
        places = {p for p in remaining if p[0] == net}
        if len(places) >= 2:
            nodes = natural_sorted(src for _net, src in places)
            found.append(group("network", net, f"(from {_listed(nodes)})", places, net))
    return found + [remaining[p] for p in sorted(remaining, key=natural_tuple)]


def _encryption(pings, networks: Mapping[str, Network], ready: set[str],
                silent_encrypted: set[tuple[str, str, str]]) -> list[Finding]:
    """Encrypted overlays silent between nodes while plain overlays pass between the same nodes: one finding
    for all of them (ESP is the kernel's and the firewall's, not one overlay's). `silent_encrypted`: the
    encrypted overlays' silent pings (only those and the plain pings between their nodes are read)."""
    plain = [name for name, net in networks.items() if not net.encrypted]

    def passes(a: str, b: str) -> bool:  # a plain overlay passes between a and b (either way)
        return any(key in pings and pings[key].received > 0 for n in plain for key in ((n, a, b), (n, b, a)))
    explained: dict[str, int] = {}
    for name in sorted(n for n, net in networks.items() if net.encrypted):
        count = sum(1 for (n, s, d) in silent_encrypted if n == name and {s, d} <= ready and passes(s, d))
        if count:
            explained[name] = count
    if not explained:
        return []
    names = ", ".join(explained)
    several = len(explained) > 1
    remedy = ("allow IPsec ESP (IP protocol 50) between the nodes, and check that the kernel has xfrm/esp4 "
              "(e.g. `modprobe esp4`); or use a plain overlay")
    each = tuple(Finding("encryption.esp", Severity.ERROR, "network", n, "drops all traffic between nodes",
                         f"{plural(c, 'node pair')} at 100 % loss", remedy, n) for n, c in explained.items())
    return [Finding(
        "encryption.esp", Severity.ERROR, "network", names,
        f"encrypted overlay{'s' if several else ''} {names} drop{'' if several else 's'} all traffic between nodes",
        "; ".join(f"{n + ': ' if several else ''}{plural(c, 'node pair')} at 100 % loss" for n, c in explained.items())
        + " while plain overlays pass between the same nodes", remedy, next(iter(explained)),
        each if several else ())]


def _explain_blocked(per_pair: Mapping[tuple[str, str], Finding], node_ids: Mapping[str, str]) -> list[Finding]:
    """Blocked pairs that share one node (with two or more peers) are that node cut off: one finding."""
    remaining = set(per_pair)
    found = []
    while remaining:
        counts = {n: [p for p in remaining if n in p] for n in {n for p in remaining for n in p}}
        node, pairs = max(sorted(counts.items(), key=lambda kv: natural_key(kv[0])), key=lambda kv: len(kv[1]))
        if len(pairs) < 2:
            break
        remaining -= set(pairs)
        peers = natural_sorted({n for p in pairs for n in p} - {node})
        found.append(Finding(
            "dataplane.blocked", Severity.ERROR, "node", node,
            f"{node} is cut off from the overlays' data plane: no traffic with {', '.join(peers)}",
            f"100 % loss both ways on every plain overlay between {node} and {plural(len(peers), 'Ready node')}",
            f"open 4789/udp (VXLAN data) and 7946/tcp+udp (gossip) to and from {node} (its firewall, a security "
            "group, the network between it and the others)", node_ids.get(node, ""),
            tuple(per_pair[p] for p in sorted(pairs, key=natural_tuple))))
    return found + [per_pair[p] for p in sorted(remaining, key=natural_tuple)]


def _mtu(mtus, networks: Mapping[str, Network], node_ids: Mapping[str, str] | None = None) -> list[Finding]:
    """MTU black holes: one finding for a node common to every hole (its underlay is small: every overlay
    through it is affected), else one per overlay."""

    holes = [r for (net_name, _s, _d), r in mtus.items() if net_name in networks
             and black_hole(r.path_mtu, networks[net_name].effective_mtu)]
    if not holes:
        return []
    common = set.intersection(*({r.src_node, r.dst_node} for r in holes))
    if len(common) == 1 and len({n for r in holes for n in (r.src_node, r.dst_node)}) >= 3:
        [node] = common
        fits = min(r.path_mtu for r in holes)
        nets = sorted({r.network for r in holes})
        largest = max(networks[n].effective_mtu for n in nets)
        return [Finding(
            "mtu.black_hole", Severity.ERROR, "node", node,
            f"{node}'s underlay fits {fits}-byte overlay packets: larger ones vanish on every path through it "
            f"({', '.join(nets)})",
            "path MTU " + ", ".join(f"{r.src_node}->{r.dst_node} {r.path_mtu} on {r.network}" for r in sorted(
                holes, key=lambda r: natural_tuple((r.network, r.src_node, r.dst_node)))),
            f"raise {node}'s underlay MTU to at least {largest + 50} (VXLAN adds 50 bytes), or recreate "
            f"{', '.join(nets)} with --opt com.docker.network.driver.mtu={fits + 50}", (node_ids or {}).get(node, ""))]
    findings = []
    by_net: dict[str, list[ProbeResult]] = defaultdict(list)
    for r in holes:
        by_net[r.network].append(r)
    for net_name, net_holes in sorted(by_net.items()):
        net = networks[net_name]
        worst_path = min(r.path_mtu for r in net_holes)
        pairs = ", ".join(f"{r.src_node}->{r.dst_node} {r.path_mtu}" for r in sorted(
            net_holes, key=lambda r: natural_tuple((r.src_node, r.dst_node))))
        findings.append(Finding(
            "mtu.black_hole", Severity.ERROR, "network", net_name,
            f"MTU black hole on {net_name}: packets above {worst_path} bytes vanish",
            f"path MTU below the overlay's {net.effective_mtu}: {pairs}",
            remedy(worst_path, net.effective_mtu, net.configured_mtu), net_name))
    return findings


STATE_CHECKS = (check_swarm, check_engines, check_nodes, check_tasks, check_task_containers, check_peers,
                check_ipam, check_firewall, check_vip_idle, check_node_addresses)
