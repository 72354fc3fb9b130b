"""Live container stats: one stats stream per running container, each read by its own daemon thread.

Why streams and not polled one-shots: on engines <= 24.x every stats request waits for the daemon's 1 Hz
collector tick (docs/architecture.md, "Collection"), so polling N containers costs N requests per tick and still
delivers tick-old numbers. A stream costs one request per container, then only the decoding of one ~2 KB frame per
tick — the same as `docker stats` does — and every frame is as fresh as the engine can make it. The threads
keep the last two samples per container; rates are computed from them when a snapshot is assembled.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import docker
from docker.errors import NotFound

from .errors import ENGINE_ERRORS
from .parse import PayloadError
from .stats import StatsSample, parse_stats_frame

STREAM_READ_TIMEOUT = 10.0  # frames come every second; a silent stream for this long is reconnected
MAX_STREAMS = 400  # per engine: a thread each; containers beyond this get no stats (and a problem line)


@dataclass
class _Slot:
    history: deque[StatsSample]
    error: str = ""
    paired: bool = False  # it had a (baseline, current) pair once (rates could be shown), or ended before one

    def pair(self, window: float) -> tuple[StatsSample | None, StatsSample] | None:
        """(baseline, current): the baseline is the newest sample at least `window` seconds older than the
        current one (0.9 x window: ticks jitter); None when there is no sample yet."""
        if not self.history:
            return None
        current = self.history[-1]
        for older in reversed(list(self.history)[:-1]):
            if current.read_at - older.read_at >= window * 0.9:
                return older, current
        return None, current


class StatsStreams:
    """The stats streams of one engine."""

    def __init__(self, client_factory: Callable[[float], docker.APIClient], window: float = 1.0,
                 max_streams: int = MAX_STREAMS, on_pair: Callable[[], object] | None = None):
        """`on_pair`: called (in the stream's thread, no lock held) when a container's stats can first show rates."""
        self._client_factory = client_factory
        self._on_pair = on_pair
        self._window = window
        self._history = max(2, int(window) + 3)
        self._max_streams = max_streams
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._stops: dict[str, threading.Event] = {}
        self._unpaired = 0  # slots that never had a pair
        self.skipped = 0

    def sync(self, container_ids: Iterable[str]) -> None:
        """Stream exactly these containers: start streams for new ones, stop those of containers gone."""
        wanted = list(dict.fromkeys(container_ids))
        self.skipped = max(0, len(wanted) - self._max_streams)
        wanted_set = set(wanted[: self._max_streams])
        with self._lock:
            for cid in [c for c in self._stops if c not in wanted_set]:
                self._stops.pop(cid).set()
                gone = self._slots.pop(cid, None)
                self._unpaired -= gone is not None and not gone.paired
            for cid in wanted[: self._max_streams]:
                if cid not in self._stops:
                    stop = threading.Event()
                    self._stops[cid] = stop
                    self._slots[cid] = _Slot(deque(maxlen=self._history))
                    self._unpaired += 1
                    threading.Thread(target=self._run, args=(cid, stop), name=f"stats-{cid[:12]}",
                                     daemon=True).start()

    def samples(self) -> dict[str, tuple[StatsSample | None, StatsSample]]:
        """container id -> (baseline, current) for every container with at least one sample."""
        with self._lock:
            pairs = {cid: slot.pair(self._window) for cid, slot in self._slots.items()}
        return {cid: pair for cid, pair in pairs.items() if pair is not None}

    def all_paired(self) -> bool:
        """Every container streamed has had a baseline and a current sample, or its stream ended without (the
        container stopped or went): none is still awaited (cheap: a count)."""
        with self._lock:
            return self._unpaired == 0

    def errors(self) -> dict[str, str]:
        with self._lock:
            return {cid: s.error for cid, s in self._slots.items() if s.error}

    def close(self) -> None:
        with self._lock:
            for stop in self._stops.values():
                stop.set()
            self._stops.clear()
            self._slots.clear()
            self._unpaired = 0

    def _store(self, cid: str, sample: StatsSample | None = None, error: str = "") -> None:
        paired_now = False
        with self._lock:
            slot = self._slots.get(cid)
            if slot is None:
                return
            if sample is not None:
                if not slot.history or sample.read_at > slot.history[-1].read_at:
                    slot.history.append(sample)
                slot.error = ""
                if not slot.paired:
                    pair = slot.pair(self._window)
                    slot.paired = paired_now = pair is not None and pair[0] is not None
                    self._unpaired -= paired_now
            else:
                slot.error = error
                if not slot.paired:  # stopped or gone before its second sample: it will show no rates, and the
                    slot.paired = paired_now = True  # first complete frame must not wait for it
                    self._unpaired -= 1
        if paired_now and self._on_pair is not None:
            self._on_pair()

    def _run(self, cid: str, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                with self._client_factory(STREAM_READ_TIMEOUT) as api:
                    for frame in api.stats(cid, decode=True, stream=True):
                        if stop.is_set():
                            return
                        try:
                            self._store(cid, parse_stats_frame(frame))
                            backoff = 0.5
                        except PayloadError as exc:  # e.g. the container stopped: frames without 'read'
                            self._store(cid, error=str(exc))
            except NotFound:
                self._store(cid, error="container gone")
                return
            except ENGINE_ERRORS as exc:
                self._store(cid, error=f"stats stream: {str(exc).splitlines()[0][:200]}")
            # the stream ended or broke: reconnect after a pause unless told to stop
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)
