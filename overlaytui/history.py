"""Bounded throughput history for the charts: one ring buffer per (dimension, name), fed one snapshot at a time.

Owned and mutated by the app on the UI thread only; panes get copies.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import NamedTuple

from .analysis.netio import NetIOSums, sums
from .model import ClusterSnapshot, natural_key

DIMENSIONS = ("node", "service", "network")


class Point(NamedTuple):
    t: float
    rx: float  # bytes/s
    tx: float


class _Ring:
    """Recent throughput in one fixed array of doubles (t, rx, tx per slot), oldest overwritten first.

    Arrays, not deques of Points: at 5000 containers and 500 series x 600 points, Point tuples were most of the
    objects Python's garbage collector walks (300k), and each full collection paused the UI for ~90 ms."""

    __slots__ = ("data", "head", "size")

    def __init__(self, capacity: int) -> None:
        self.data = array("d", bytes(8 * 3 * capacity))
        self.head = 0  # the next slot to write
        self.size = 0

    @property
    def capacity(self) -> int:
        return len(self.data) // 3

    def append(self, t: float, rx: float, tx: float) -> None:
        base = self.head * 3
        self.data[base], self.data[base + 1], self.data[base + 2] = t, rx, tx
        self.head = (self.head + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _slot(self, age: int) -> int:
        """The slot of the point `age` steps back from the newest (0: the newest)."""
        return (self.head - 1 - age) % self.capacity

    def latest(self) -> Point:
        base = 3 * self._slot(0)
        d = self.data
        return Point(d[base], d[base + 1], d[base + 2])

    def points(self, last: int | None = None) -> list[Point]:
        """Oldest first; the newest `last` only if given."""
        n = self.size if last is None else min(last, self.size)
        d = self.data
        return [Point(d[3 * i], d[3 * i + 1], d[3 * i + 2]) for i in (self._slot(age) for age in range(n - 1, -1, -1))]


@dataclass(frozen=True)
class SeriesStats:
    rx: float  # latest
    tx: float
    peak: float  # highest rx+tx in the window
    avg_rx: float
    avg_tx: float
    samples: int


class _Series(_Ring):
    """A ring with running sums, so current/peak/average cost O(1) to read."""

    __slots__ = ("sum_rx", "sum_tx", "_peak")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.sum_rx = self.sum_tx = 0.0
        self._peak: float | None = 0.0

    def append(self, t: float, rx: float, tx: float) -> None:
        if self.size == self.capacity:  # the oldest point leaves the window
            base = 3 * self.head
            old_rx, old_tx = self.data[base + 1], self.data[base + 2]
            self.sum_rx -= old_rx
            self.sum_tx -= old_tx
            if self._peak is not None and old_rx + old_tx >= self._peak:
                self._peak = None  # the peak left the window: recompute when asked
        super().append(t, rx, tx)
        self.sum_rx += rx
        self.sum_tx += tx
        if self._peak is not None:
            self._peak = max(self._peak, rx + tx)

    def stats(self) -> SeriesStats:
        if self._peak is None:
            d = self.data
            self._peak = max(d[3 * i + 1] + d[3 * i + 2] for i in (self._slot(a) for a in range(self.size)))
        last = self.latest()
        n = self.size
        return SeriesStats(last.rx, last.tx, self._peak, self.sum_rx / n, self.sum_tx / n, n)


class History:
    def __init__(self, maxlen: int = 600, container_maxlen: int = 120):
        self.maxlen = maxlen
        self.container_maxlen = container_maxlen
        self._series: dict[tuple[str, str], _Series] = {}
        self._containers: dict[str, _Ring] = {}
        self._last_t: float | None = None

    def add(self, snapshot: ClusterSnapshot, totals: NetIOSums | None = None) -> None:
        """Append one snapshot's throughput; `totals` (analysis.netio.sums) when the caller computed them already,
        off the UI thread: then this is only appends."""
        t = snapshot.taken_at
        if self._last_t is not None and t <= self._last_t:
            return  # the same data again (a refresh without new samples): one point per moment
        self._last_t = t
        totals = totals if totals is not None else sums(snapshot)
        for dimension, per_name in totals.by.items():
            for name, value in per_name.items():
                series = self._series.get((dimension, name))
                if series is None:
                    series = self._series[(dimension, name)] = _Series(self.maxlen)
                series.append(t, value.rx, value.tx)
        rings = self._containers
        for cid, (rx, tx) in totals.containers.items():
            ring = rings.get(cid)
            if ring is None:
                ring = rings[cid] = _Ring(self.container_maxlen)
            ring.append(t, rx, tx)
        if len(rings) > len(totals.containers):  # some container gone? (one without a rate this time keeps its ring)
            live = {c.container_id for c in snapshot.containers}
            for gone in [cid for cid in rings if cid not in live]:
                del rings[gone]

    def series(self, dimension: str, name: str, last: int | None = None) -> list[Point]:
        found = self._series.get((dimension, name))
        return found.points(last) if found is not None else []

    def stats(self, dimension: str, name: str) -> SeriesStats | None:
        found = self._series.get((dimension, name))
        return found.stats() if found is not None and found.size else None

    def names(self, dimension: str) -> list[str]:
        """Names with history in this dimension, busiest (latest rx+tx) first."""
        names = []
        for (dim, name), series in self._series.items():
            if dim == dimension and series.size:
                latest = series.latest()
                names.append((name, latest.rx + latest.tx))
        return [name for name, _ in sorted(names, key=lambda item: (-item[1], natural_key(item[0])))]

    def container(self, container_id: str) -> list[Point]:
        ring = self._containers.get(container_id)
        return ring.points() if ring is not None else []
