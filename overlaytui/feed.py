"""One producer's frames for consumers on other threads: `overlaytui serve`'s viewers.

`overlaytui serve` runs one producer; every browser tab is a dashboard (a Textual app) in the same process, each
on a thread and an event loop of its own. A `FrameFeed` hands them the producer's frames — the same immutable
objects, never copied, encoded or decoded: one frame in memory however many tabs show it —, one throughput
history for their charts (`SharedHistory`), the producer's lines (`say`), its failure to start, and the one
request a viewer may make (`control`, where serve allows it).

Each follower gets the newest frame: one slower than the producer skips frames, nothing queues for it (the
backlog policy of `Producer.updates`). Publishing never waits for a follower: it wakes each one on its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from .analysis.netio import NetIOSums
from .frame import Frame
from .history import History, Point, SeriesStats
from .model import ClusterSnapshot

T = TypeVar("T")

Said = Callable[[str, str], None]  # (severity, one line), called on the publisher's thread: it must hand over


class SharedHistory(History):
    """One throughput history for every viewer (at 200 nodes / 5000 containers a History is ~24 MB and each frame's
    appends several ms): the feed adds each frame once, in the frame thread; the viewers' threads read it, every
    read and the feed's add under one lock (reads return copies). A viewer's own `add` does nothing."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def feed(self, snapshot: ClusterSnapshot, totals: NetIOSums) -> None:
        with self._lock:
            History.add(self, snapshot, totals)

    def add(self, snapshot: ClusterSnapshot, totals: NetIOSums | None = None) -> None:
        return None  # the feed added this frame already, once for every viewer

    def series(self, dimension: str, name: str, last: int | None = None) -> list[Point]:
        with self._lock:
            return History.series(self, dimension, name, last)

    def stats(self, dimension: str, name: str) -> SeriesStats | None:
        with self._lock:
            return History.stats(self, dimension, name)

    def names(self, dimension: str) -> list[str]:
        with self._lock:
            return History.names(self, dimension)

    def container(self, container_id: str) -> list[Point]:
        with self._lock:
            return History.container(self, container_id)


class Following:
    """One follower of a feed, on the event loop it was made on: `frames()` yields the newest frame each time
    one arrived since the last (the first at once when the feed has one); `close()` leaves the feed."""

    def __init__(self, feed: FrameFeed, said: Said | None) -> None:
        self.feed = feed
        self.said = said
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()

    def wake(self) -> None:
        """From any thread: something arrived (a frame, the failure)."""
        with contextlib.suppress(RuntimeError):  # its loop has closed: it is leaving
            self._loop.call_soon_threadsafe(self._arrived.set)

    async def frames(self) -> AsyncIterator[Frame]:
        """The newest frame as it arrives; ends when the producer could not start (`feed.failure`)."""
        seen = 0
        while True:
            self._arrived.clear()
            version, frame = self.feed.latest()
            if frame is not None and version > seen:
                seen = version
                yield frame
                continue
            if self.feed.failure:
                return
            await self._arrived.wait()

    def close(self) -> None:
        self.feed.leave(self)


class FrameFeed:
    """The producer's newest frame and lines, for followers on other threads. `publish` is a producer sink (the
    frame thread); `say` and `fail` may be called from any thread. `control(action)` runs `on_control(action)` on
    the loop `bind()` was called on (serve's), when serve allows viewers to ask (`on_control` set); `call(work)`
    runs a coroutine there for a viewer and hands its result back (what a presenter's viewer asks of serve)."""

    def __init__(self, *, on_control: Callable[[str], None] | None = None,
                 controls: tuple[str, ...] = ("start_probing",)) -> None:
        self.on_control = on_control  # None: viewers are read-only toward the cluster
        self.controls = controls  # what a viewer may ask for
        self.failure = ""  # why the producer could not start
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._version = 0
        self._followers: list[Following] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.history = SharedHistory()  # every frame's throughput, for every viewer's charts

    def bind(self) -> None:
        """The running loop is the producer's: controls run there."""
        self._loop = asyncio.get_running_loop()

    # ------------------------------------------------------------------------------------------ in

    def publish(self, frame: Frame) -> None:
        """A new frame (the producer's sink, in its frame thread): every follower woken."""
        self.history.feed(frame.snapshot, frame.netio)
        with self._lock:
            self._frame, self._version = frame, self._version + 1
            followers = list(self._followers)
        for following in followers:
            following.wake()

    def say(self, severity: str, text: str) -> None:
        """A producer line to every follower."""
        with self._lock:
            followers = list(self._followers)
        for following in followers:
            if following.said is not None:
                with contextlib.suppress(Exception):  # a follower that is going away
                    following.said(severity, text)

    def fail(self, text: str) -> None:
        """The producer could not start: every follower's `frames()` ends (and each that joins later)."""
        with self._lock:
            self.failure = text
            followers = list(self._followers)
        for following in followers:
            following.wake()

    # ----------------------------------------------------------------------------------------- out

    def latest(self) -> tuple[int, Frame | None]:
        with self._lock:
            return self._version, self._frame

    def follow(self, said: Said | None = None) -> Following:
        """A follower on the running loop; `said(severity, text)` gets the producer's lines (on the publisher's
        thread)."""
        following = Following(self, said)
        with self._lock:
            self._followers.append(following)
        return following

    def leave(self, following: Following) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._followers.remove(following)

    @property
    def followers(self) -> int:
        with self._lock:
            return len(self._followers)

    def control(self, action: str) -> bool:
        """From a viewer's thread: ask for `action` (one of `controls`). False when serve does not let viewers
        ask, the action is not one of them, or serve is stopping."""
        handler, loop = self.on_control, self._loop
        if handler is None or loop is None or action not in self.controls:
            return False
        try:
            loop.call_soon_threadsafe(handler, action)
        except RuntimeError:  # serve's loop has closed
            return False
        return True

    async def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """From a viewer's loop: `work()` run on the producer's loop (what acts on the cluster lives there), its
        result (or exception) back here. RuntimeError when serve is stopping."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the serve process is stopping")

        async def run() -> T:
            return await work()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), loop))
