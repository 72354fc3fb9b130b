"""`overlaytui serve`'s feed without a browser: one producer's frames handed to followers on other threads, each on
its own event loop (as serve's viewers are) — the same objects, never copies; a follower that joins later starts
at once from the latest frame; a slow one skips frames, nothing queues; a producer that cannot start ends every
follower's frames with its reason; the producer's lines reach every follower; a viewer asks serve for something
only where serve allows it, and `call` runs work on the producer's loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from overlaytui.feed import FrameFeed
from overlaytui.producer import Producer
from overlaytui.sources.demo import DemoSource


class Follower(threading.Thread):
    """A follower on a thread and an event loop of its own: the frames it got (at most `count`), its lines."""

    def __init__(self, feed: FrameFeed, count: int, *, slow: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.feed, self.count, self.slow = feed, count, slow
        self.frames: list = []
        self.said: list[tuple[str, str]] = []
        self.loop_thread = 0
        self.joined = threading.Event()

    def run(self) -> None:
        asyncio.run(self._follow())

    async def _follow(self) -> None:
        following = self.feed.follow(lambda severity, text: self.said.append((severity, text)))
        self.joined.set()
        try:
            async for frame in following.frames():
                self.frames.append(frame)
                if len(self.frames) >= self.count:
                    break
                time.sleep(self.slow)  # a render that holds this loop
        finally:
            following.close()


async def _producer(source=None) -> tuple[Producer, FrameFeed, asyncio.Task]:
    producer = Producer(source or DemoSource("loss", seed=1), interval=0.1)
    feed = FrameFeed()
    feed.bind()
    producer.add_sink(feed.publish)
    return producer, feed, asyncio.ensure_future(producer.run())


async def _until(predicate, timeout: float = 20.0) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


async def test_every_follower_gets_the_producers_frames_themselves_and_a_late_one_starts_at_once():
    producer, feed, run = await _producer()
    built: list = []  # every frame the producer built (kept: their ids stay theirs)
    producer.add_sink(built.append)
    first = Follower(feed, 6)
    try:
        first.start()
        await _until(lambda: len(first.frames) >= 3)
        latest = producer.latest
        assert latest is not None
        late = Follower(feed, 1)
        late.start()
        await _until(lambda: late.frames)
        assert late.frames[0].taken_at >= latest.frame.taken_at  # the latest frame at once, not the first
        await _until(lambda: not first.is_alive())
        pairs = zip(first.frames, first.frames[1:], strict=False)
        assert all(a.taken_at < b.taken_at for a, b in pairs)  # the newest each time, in order
        ids = {id(frame) for frame in built}
        assert all(id(frame) in ids for frame in first.frames + late.frames)  # the producer's frames themselves
        assert feed.followers == 0  # both left
    finally:
        run.cancel()
        await producer.close()


async def test_a_slow_follower_skips_frames_and_nothing_queues_for_it():
    producer, feed, run = await _producer()
    slow = Follower(feed, 3, slow=0.6)
    try:
        slow.start()
        await _until(lambda: not slow.is_alive(), 30)
        gaps = [b.taken_at - a.taken_at for a, b in zip(slow.frames, slow.frames[1:], strict=False)]
        assert len(slow.frames) == 3 and all(gap >= 0.3 for gap in gaps)  # frames in between were skipped
        assert not run.done()  # the producer never waited for it
    finally:
        run.cancel()
        await producer.close()


class Unstartable(DemoSource):
    async def start(self) -> None:
        raise ConnectionRefusedError("no engine at unix:///nowhere.sock")


async def test_a_producer_that_cannot_start_ends_every_followers_frames_with_its_reason():
    producer, feed, run = await _producer(Unstartable("healthy"))
    before = Follower(feed, 1)
    try:
        before.start()
        before.joined.wait(5)
        await run
        assert producer.failure
        feed.fail(producer.failure)
        after = Follower(feed, 1)
        after.start()
        await _until(lambda: not before.is_alive() and not after.is_alive(), 10)
        assert before.frames == after.frames == []
        assert "no engine at unix:///nowhere.sock" in feed.failure
    finally:
        await producer.close()


async def test_the_producers_lines_reach_every_follower():
    producer, feed, run = await _producer()
    followers = [Follower(feed, 1_000_000) for _ in range(2)]
    try:
        for follower in followers:
            follower.start()
            follower.joined.wait(5)
        feed.say("warning", "the probe agent on node2 was removed: deployed again")
        await _until(lambda: all(f.said for f in followers), 5)
        assert all(f.said == [("warning", "the probe agent on node2 was removed: deployed again")]
                   for f in followers)
    finally:
        run.cancel()
        await producer.close()
        feed.fail("the test ended")  # every follower's frames end
        await _until(lambda: not any(f.is_alive() for f in followers), 5)


def test_a_viewer_asks_serve_only_where_serve_allows_it_and_work_runs_on_the_producers_loop():
    asked: list[tuple[str, int]] = []
    results: dict[str, object] = {}

    async def serve_side() -> None:
        feed = FrameFeed()
        feed.bind()
        serve_thread = threading.get_ident()

        def viewer() -> None:
            async def ask() -> None:
                results["read-only"] = feed.control("start_probing")
                feed.on_control = lambda action: asked.append((action, threading.get_ident()))
                results["allowed"] = feed.control("start_probing")
                results["unknown"] = feed.control("remove_everything")

                async def where() -> int:
                    return threading.get_ident()
                results["ran on"] = await feed.call(where)

                async def broken() -> None:
                    raise ValueError("that fault cannot be injected here")
                with pytest.raises(ValueError, match="cannot be injected"):
                    await feed.call(broken)
            asyncio.run(ask())
        thread = threading.Thread(target=viewer)
        thread.start()
        await asyncio.to_thread(thread.join, 10)
        await _until(lambda: asked, 5)
        results["serve"] = serve_thread

    asyncio.run(serve_side())
    assert results["read-only"] is False  # read-only by default: nothing asked
    assert results["allowed"] is True and results["unknown"] is False
    assert asked == [("start_probing", results["serve"])]  # run on serve's loop, once
    assert results["ran on"] == results["serve"]


async def test_one_throughput_history_for_every_viewer_fed_once_per_frame():
    producer, feed, run = await _producer()
    follower = Follower(feed, 4)
    try:
        follower.start()
        await _until(lambda: not follower.is_alive())
        run.cancel()  # no frame comes meanwhile
        with contextlib.suppress(asyncio.CancelledError):
            await run
        history = feed.history
        nodes = history.names("node")
        assert nodes and len(history.series("node", nodes[0])) >= 4  # a point per frame published
        points = len(history.series("node", nodes[0]))
        history.add(follower.frames[-1].snapshot)  # a viewer's own add: nothing (the feed added the frame)
        assert len(history.series("node", nodes[0])) == points
        assert history.stats("node", nodes[0]) is not None
        container = follower.frames[-1].snapshot.containers[0].container_id
        assert history.container(container)
    finally:
        run.cancel()
        await producer.close()
