"""NetIO added up across nodes: per network, per service, per node (bytes/s)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..model import ClusterSnapshot, ContainerStats, InterfaceStats


@dataclass(frozen=True)
class Throughput:
    rx: float = 0.0  # bytes/s
    tx: float = 0.0
    containers: int = 0  # how many containers contributed a rate

    def __add__(self, other: Throughput) -> Throughput:
        return Throughput(self.rx + other.rx, self.tx + other.tx, self.containers + other.containers)


def _add(totals: dict[str, Throughput], key: str | None, interfaces: Iterable[InterfaceStats]) -> None:
    rated = [i for i in interfaces if i.rx_rate is not None and i.tx_rate is not None]
    if key is None or not rated:
        return
    part = Throughput(sum(i.rx_rate for i in rated), sum(i.tx_rate for i in rated), 1)
    totals[key] = totals.get(key, Throughput()) + part


def by_network(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    """Network name -> throughput of every container interface on it, across all nodes. Overlay traffic is
    separate from docker_gwbridge and ingress because interfaces are mapped to networks one by one."""
    totals: dict[str, Throughput] = {}
    for container in snapshot.containers:
        names = {i.network_name for i in container.interfaces if i.network_name}
        for name in names:
            _add(totals, name, (i for i in container.interfaces if i.network_name == name))
    return totals


def _by(snapshot: ClusterSnapshot, key: Callable[[ContainerStats], str | None]) -> dict[str, Throughput]:
    totals: dict[str, Throughput] = {}
    for container in snapshot.containers:
        _add(totals, key(container), container.interfaces)
    return totals


def by_service(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    """Service name -> throughput of all its tasks' containers (all interfaces), across nodes."""
    return _by(snapshot, lambda c: c.service_name)


def by_node(snapshot: ClusterSnapshot) -> dict[str, Throughput]:
    """Node hostname (or engine endpoint when the engine is not a swarm node) -> container throughput."""
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    engine_names = {e.endpoint: e.hostname or e.endpoint for e in snapshot.engines}
    return _by(snapshot, lambda c: hostnames.get(c.node_id or "") or engine_names.get(c.engine, c.engine))
