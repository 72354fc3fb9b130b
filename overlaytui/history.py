"""Bounded throughput history for the charts: one ring buffer per (dimension, name), fed one snapshot at a time.

Owned and mutated by the app on the UI thread only; panes get copies.
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from .analysis.netio import aggregate
from .model import ClusterSnapshot

DIMENSIONS = ("node", "service", "network")


class Point(NamedTuple):
    t: float
    rx: float  # bytes/s
    tx: float


class _Ring:
    """A container's recent throughput in three fixed arrays of doubles: thousands of containers stay cheap."""

    __slots__ = ("data", "head", "size")

    def __init__(self, capacity: int) -> None:
        self.data = array("d", bytes(8 * 3 * capacity))
        self.head = 0
        self.size = 0

    def append(self, t: float, rx: float, tx: float) -> None:
        capacity = len(self.data) // 3
        base = self.head * 3
        self.data[base], self.data[base + 1], self.data[base + 2] = t, rx, tx
        self.head = (self.head + 1) % capacity
        self.size = min(self.size + 1, capacity)

    def points(self) -> list[Point]:
        capacity = len(self.data) // 3
        start = (self.head - self.size) % capacity
        d = self.data
        return [Point(d[3 * i], d[3 * i + 1], d[3 * i + 2]) for i in
                ((start + k) % capacity for k in range(self.size))]


@dataclass(frozen=True)
class SeriesStats:
    rx: float  # latest
    tx: float
    peak: float  # highest rx+tx in the window
    avg_rx: float
    avg_tx: float
    samples: int


class _Series:
    """A ring buffer of points with running sums, so current/peak/average cost O(1) to read."""

    __slots__ = ("points", "sum_rx", "sum_tx", "_peak")

    def __init__(self, maxlen: int) -> None:
        self.points: deque[Point] = deque(maxlen=maxlen)
        self.sum_rx = self.sum_tx = 0.0
        self._peak: float | None = 0.0

    def append(self, point: Point) -> None:
        points = self.points
        if len(points) == points.maxlen:
            old = points[0]
            self.sum_rx -= old.rx
            self.sum_tx -= old.tx
            if self._peak is not None and old.rx + old.tx >= self._peak:
                self._peak = None  # the peak left the window: recompute when asked
        points.append(point)
        self.sum_rx += point.rx
        self.sum_tx += point.tx
        if self._peak is not None:
            self._peak = max(self._peak, point.rx + point.tx)

    def stats(self) -> SeriesStats:
        if self._peak is None:
            self._peak = max((p.rx + p.tx for p in self.points), default=0.0)
        n = len(self.points)
        last = self.points[-1]
        return SeriesStats(last.rx, last.tx, self._peak, self.sum_rx / n, self.sum_tx / n, n)


class History:
    def __init__(self, maxlen: int = 600, container_maxlen: int = 120):
        self.maxlen = maxlen
        self.container_maxlen = container_maxlen
        self._series: dict[tuple[str, str], _Series] = {}
        self._containers: dict[str, _Ring] = {}
        self._last_t: float | None = None

    def add(self, snapshot: ClusterSnapshot, totals: dict | None = None) -> None:
        """Append one snapshot's throughput; `totals` (from analysis.netio.aggregate) when the caller computed
        them already, off the UI thread."""
        t = snapshot.taken_at
        if self._last_t is not None and t <= self._last_t:
            return  # the same data again (a refresh without new samples): one point per moment
        self._last_t = t
        for dimension, per_name in (totals if totals is not None else aggregate(snapshot)).items():
            for name, value in per_name.items():
                series = self._series.get((dimension, name))
                if series is None:
                    series = self._series[(dimension, name)] = _Series(self.maxlen)
                series.append(Point(t, value.rx, value.tx))
        live = set()
        for container in snapshot.containers:
            live.add(container.container_id)
            rx = tx = 0.0
            for iface in container.interfaces:
                if iface.rx_rate is None or iface.tx_rate is None:
                    break
                rx += iface.rx_rate
                tx += iface.tx_rate
            else:
                if container.interfaces:
                    ring = self._containers.get(container.container_id)
                    if ring is None:
                        ring = self._containers[container.container_id] = _Ring(self.container_maxlen)
                    ring.append(t, rx, tx)
        if len(live) != len(self._containers):
            for gone in [cid for cid in self._containers if cid not in live]:
                del self._containers[gone]

    def series(self, dimension: str, name: str, last: int | None = None) -> list[Point]:
        found = self._series.get((dimension, name))
        if found is None:
            return []
        points = found.points
        if last is not None and last < len(points):
            return [points[i] for i in range(len(points) - last, len(points))]
        return list(points)

    def stats(self, dimension: str, name: str) -> SeriesStats | None:
        found = self._series.get((dimension, name))
        return found.stats() if found is not None and found.points else None

    def names(self, dimension: str) -> list[str]:
        """Names with history in this dimension, busiest (latest rx+tx) first."""
        names = [(key[1], s.points[-1].rx + s.points[-1].tx) for key, s in self._series.items()
                 if key[0] == dimension and s.points]
        return [name for name, _ in sorted(names, key=lambda item: (-item[1], item[0]))]

    def container(self, container_id: str) -> list[Point]:
        ring = self._containers.get(container_id)
        return ring.points() if ring is not None else []
