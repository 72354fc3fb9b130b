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


def aggregate(snapshot: ClusterSnapshot) -> dict[str, dict[str, Throughput]]:
    """One pass over the containers: {"node": ..., "service": ..., "network": ...} -> name -> throughput.

    Per network: every container interface on it, across all nodes (overlay traffic stays apart from
    docker_gwbridge and ingress because interfaces are mapped to networks one by one). Per service: all its
    tasks' interfaces. Per node: the node's hostname (the engine's endpoint when it is not a swarm node)."""
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    engine_names = {e.endpoint: e.hostname or e.endpoint for e in snapshot.engines}
    sums: dict[str, dict[str, list]] = {"node": {}, "service": {}, "network": {}}
    for container in snapshot.containers:
        rx_total = tx_total = 0.0
        rated = False
        per_net: dict[str, list] = {}
        for iface in container.interfaces:
            rx, tx = iface.rx_rate, iface.tx_rate
            if rx is None or tx is None:
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
        node = hostnames.get(container.node_id or "") or engine_names.get(container.engine, container.engine)
        keys = (("node", node), ("service", container.service_name))
        for dimension, key in keys:
            if key is None:
                continue
            entry = sums[dimension].setdefault(key, [0.0, 0.0, 0])
            entry[0] += rx_total
            entry[1] += tx_total
            entry[2] += 1
        for name, (rx, tx) in per_net.items():
            entry = sums["network"].setdefault(name, [0.0, 0.0, 0])
            entry[0] += rx
            entry[1] += tx
            entry[2] += 1
    return {dim: {k: Throughput(v[0], v[1], v[2]) for k, v in table.items()} for dim, table in sums.items()}


def container_rates(snapshot: ClusterSnapshot) -> dict[str, tuple[float, float]]:
    """Container id -> (rx, tx) bytes/s over all its interfaces, for containers with a rate on every interface
    (a container whose stats stream has not sent two samples yet has no rate: it is left out, not shown as 0)."""
    rates = {}
    for container in snapshot.containers:
        interfaces = container.interfaces
        if not interfaces:
            continue
        rx = tx = 0.0
        for iface in interfaces:
            if iface.rx_rate is None or iface.tx_rate is None:
                break
            rx += iface.rx_rate
            tx += iface.tx_rate
        else:
            rates[container.container_id] = (rx, tx)
    return rates


@dataclass(frozen=True)
class NetIOSums:
    """A snapshot's throughput, added up once (off the UI thread in the app) for the history and the panes."""

    by: dict[str, dict[str, Throughput]]  # aggregate(): "node" / "service" / "network" -> name -> throughput
    containers: dict[str, tuple[float, float]]  # container_rates()


def sums(snapshot: ClusterSnapshot) -> NetIOSums:
    return NetIOSums(aggregate(snapshot), container_rates(snapshot))


def by_network(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    return aggregate(snapshot)["network"]


def by_service(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    return aggregate(snapshot)["service"]


def by_node(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    return aggregate(snapshot)["node"]
