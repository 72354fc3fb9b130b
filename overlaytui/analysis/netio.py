"""NetIO added up across nodes: per network, per service, per node (bytes/s)."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import ClusterSnapshot


@dataclass(frozen=True)
class Throughput:
    rx: float = 0.0  # bytes/s
    tx: float = 0.0
    containers: int = 0  # how many containers contributed a rate

    def __add__(self, other: Throughput) -> Throughput:
        return Throughput(self.rx + other.rx, self.tx + other.tx, self.containers + other.containers)


@dataclass(frozen=True)
class NetIOSums:
    """A snapshot's throughput, added up in one pass (off the UI thread in the app) for the history and panes."""

    by: dict[str, dict[str, Throughput]]  # "node" / "service" / "network" -> name -> throughput
    containers: dict[str, tuple[float, float]]  # container id -> (rx, tx), where every interface has a rate


def sums(snapshot: ClusterSnapshot) -> NetIOSums:
    """One pass over the containers.

    Per network: every container interface on it, across all nodes (overlay traffic stays apart from
    docker_gwbridge and ingress because interfaces are mapped to networks one by one). Per service: all its
    tasks' interfaces. Per node: the node's hostname (the engine's endpoint when it is not a swarm node). Per
    container: only containers with a rate on every interface (one whose stats stream has not sent two samples
    yet has no rate: it is left out, not shown as 0)."""
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    engine_names = {e.endpoint: e.hostname or e.endpoint for e in snapshot.engines}
    totals: dict[str, dict[str, list]] = {"node": {}, "service": {}, "network": {}}
    containers: dict[str, tuple[float, float]] = {}
    for container in snapshot.containers:
        rx_total = tx_total = 0.0
        rated = missing = False
        per_net: dict[str, list] = {}
        for iface in container.interfaces:
            rx, tx = iface.rx_rate, iface.tx_rate
            if rx is None or tx is None:
                missing = True
                continue
            rated = True
            rx_total += rx
            tx_total += tx
            if iface.network_name:
                entry = per_net.setdefault(iface.network_name, [0.0, 0.0])
                entry[0] += rx
                entry[1] += tx
        if not rated:
            continue
        if not missing:
            containers[container.container_id] = (rx_total, tx_total)
        node = hostnames.get(container.node_id or "") or engine_names.get(container.engine, container.engine)
        for dimension, key in (("node", node), ("service", container.service_name)):
            if key is None:
                continue
            entry = totals[dimension].setdefault(key, [0.0, 0.0, 0])
            entry[0] += rx_total
            entry[1] += tx_total
            entry[2] += 1
        for name, (rx, tx) in per_net.items():
            entry = totals["network"].setdefault(name, [0.0, 0.0, 0])
            entry[0] += rx
            entry[1] += tx
            entry[2] += 1
    by = {dim: {k: Throughput(v[0], v[1], v[2]) for k, v in table.items()} for dim, table in totals.items()}
    return NetIOSums(by, containers)


def aggregate(snapshot: ClusterSnapshot) -> dict[str, dict[str, Throughput]]:
    """{"node": ..., "service": ..., "network": ...} -> name -> throughput (see `sums`)."""
    return sums(snapshot).by


def by_network(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    return aggregate(snapshot)["network"]


def by_service(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    return aggregate(snapshot)["service"]


def by_node(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    return aggregate(snapshot)["node"]


def partial_totals(snapshot: ClusterSnapshot) -> dict[str, set[str]]:
    """"node" / "service" / "network" -> the names whose totals miss containers: services and networks with
    running tasks on a node whose stats are not measured (no engine connection), and those nodes."""
    gaps = snapshot.unmeasured_nodes
    partial: dict[str, set[str]] = {"node": set(), "service": set(), "network": set()}
    if not gaps:
        return partial
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    partial["node"] = {hostnames[n] for n in gaps if n in hostnames}
    for task in snapshot.tasks:
        if task.node_id in gaps and task.up:
            partial["service"].add(task.service_name)
            partial["network"].update(a.network_name for a in task.addresses if a.network_name)
    return partial


def coverage_line(snapshot: ClusterSnapshot) -> str:
    """"stats from 1 of 3 nodes: node2, node3 have no engine connection", or "" when every node is measured."""
    gaps = snapshot.unmeasured_nodes
    if not gaps:
        return ""
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    by_reason: dict[str, list[str]] = {}
    for node_id, reason in gaps.items():
        by_reason.setdefault(reason, []).append(hostnames.get(node_id, node_id[:12]))
    reasons = "; ".join(f"{', '.join(sorted(names))}: {reason}" for reason, names in sorted(by_reason.items()))
    measured = len(snapshot.nodes) - len(gaps)
    return f"stats from {measured} of {len(snapshot.nodes)} nodes ({reasons})"
