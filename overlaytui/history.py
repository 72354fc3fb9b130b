"""Bounded throughput history for the charts: one ring buffer per (dimension, name), fed one snapshot at a time.

Owned and mutated by the app on the UI thread only; panes get copies.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .analysis.netio import by_network, by_node, by_service
from .model import ClusterSnapshot

DIMENSIONS = ("node", "service", "network")


@dataclass(frozen=True)
class Point:
    t: float
    rx: float  # bytes/s
    tx: float


class History:
    def __init__(self, maxlen: int = 600):
        self.maxlen = maxlen
        self._series: dict[tuple[str, str], deque[Point]] = {}
        self._containers: dict[str, deque[Point]] = {}
        self._last_t: float | None = None

    def add(self, snapshot: ClusterSnapshot) -> None:
        t = snapshot.taken_at
        if self._last_t is not None and t <= self._last_t:
            return  # the same data again (a refresh without new samples): one point per moment
        self._last_t = t
        for dimension, totals in (("node", by_node(snapshot)), ("service", by_service(snapshot)),
                                  ("network", by_network(snapshot))):
            for name, value in totals.items():
                self._buffer(self._series, (dimension, name)).append(Point(t, value.rx, value.tx))
        live = set()
        for container in snapshot.containers:
            live.add(container.container_id)
            if container.rx_rate is not None and container.tx_rate is not None:
                self._buffer(self._containers, container.container_id).append(
                    Point(t, container.rx_rate, container.tx_rate))
        for gone in [cid for cid in self._containers if cid not in live]:
            del self._containers[gone]

    def _buffer(self, table: dict, key) -> deque[Point]:
        buffer = table.get(key)
        if buffer is None:
            buffer = table[key] = deque(maxlen=self.maxlen)
        return buffer

    def series(self, dimension: str, name: str) -> list[Point]:
        return list(self._series.get((dimension, name), ()))

    def names(self, dimension: str) -> list[str]:
        """Names with history in this dimension, busiest (latest rx+tx) first."""
        names = [(key[1], buf[-1].rx + buf[-1].tx) for key, buf in self._series.items()
                 if key[0] == dimension and buf]
        return [name for name, _ in sorted(names, key=lambda item: (-item[1], item[0]))]

    def container(self, container_id: str) -> list[Point]:
        return list(self._containers.get(container_id, ()))
