"""`overlaytui serve`'s relay without a browser: one producer's frames streamed in the recording format to viewer
sources over a unix socket — every viewer gets the producer's frames (a keyframe, then deltas, the same objects
back), a viewer that joins later starts at once from the latest frame, the socket is private, a producer that
cannot start and a serve process that ends show in every viewer."""

from __future__ import annotations

import asyncio
import stat

import pytest

from overlaytui import recording
from overlaytui.model import Health
from overlaytui.producer import Producer
from overlaytui.recording import FrameDecoder, FrameEncoder, RecordedFrame, decode
from overlaytui.relay import FrameRelay
from overlaytui.sources.demo import DemoSource
from overlaytui.sources.relay import RELAY_ENDPOINT, RelayError, RelaySource
from tests.ui.helpers import Clock


def test_encoder_and_decoder_carry_frames_through_a_keyframe_and_deltas():
    clock = Clock()
    source = DemoSource("node-down", seed=3, clock=clock)
    asyncio.run(source.start())
    encoder, decoder = FrameEncoder(), FrameDecoder()
    kinds = []
    for step in range(30):
        clock.now += 1.0  # node5 goes down at 20 s: nodes, tasks and containers change on the way
        asyncio.run(source.poll())
        snapshot = source.snapshot()
        frame = RecordedFrame(snapshot, source.probes(), {"10.0.0.1": 1500})
        encoder.encode(frame)
        record = encoder.key() if step == 0 else encoder.delta()
        kinds.append(record["type"])
        got = decoder.feed(record)
        assert got is not None
        assert got.snapshot == snapshot
        assert got.probes.results() == frame.probes.results()
        assert dict(got.underlay_mtus) == {"10.0.0.1": 1500}
    assert kinds[0] == "key" and set(kinds[1:]) == {"delta"}
    assert any(n.state != "ready" for n in got.snapshot.nodes)  # the deltas carried node5 going down
    assert FrameDecoder().feed(encoder.delta()) is None  # a delta before any keyframe: nothing to apply it to


async def _producer_and_relay(tmp_path, source=None, *, start_wait=20.0):
    source = source or DemoSource("loss", seed=1)
    producer = Producer(source, interval=0.2)
    relay = FrameRelay(source.name, directory=tmp_path / "relay")
    await relay.start()
    producer.add_sink(relay.sink)
    return producer, relay


async def _frame_after(viewer: RelaySource, frames: int, timeout: float = 20.0) -> None:
    async def wait() -> None:
        while viewer.frames < frames:
            await viewer.wait_for_change(0.5)
    await asyncio.wait_for(wait(), timeout)


async def test_every_viewer_gets_the_producers_frames_and_a_late_one_starts_at_once(tmp_path):
    (tmp_path / "relay").mkdir()
    producer, relay = await _producer_and_relay(tmp_path)
    run = asyncio.ensure_future(producer.run())
    first = RelaySource(relay.path, start_wait=20)
    late = RelaySource(relay.path, start_wait=20)
    try:
        assert stat.S_IMODE((tmp_path / "relay").stat().st_mode) == 0o700
        assert stat.S_IMODE(relay.path.stat().st_mode) == 0o600
        await asyncio.wait_for(first.start(), 20)
        await _frame_after(first, 4)
        frames_before = relay.frames
        await asyncio.wait_for(late.start(), 5)  # the latest frame as a keyframe, not after the next frame
        assert late.frames == 1 and relay.frames <= frames_before + 1
        assert first.name == late.name == "demo: loss"
        assert first.endpoints == () and first.playback is None  # a viewer deploys nothing, plays nothing back
        await _frame_after(first, first.frames + 3)
        await _frame_after(late, late.frames + 3)
        latest = producer.latest
        assert latest is not None
        for viewer in (first, late):
            await _frame_after(viewer, viewer.frames + 1)
            snapshot = viewer.snapshot()
            assert {n.hostname for n in snapshot.nodes} == {n.hostname for n in latest.frame.snapshot.nodes}
            assert abs(snapshot.taken_at - producer.latest.frame.taken_at) < 1.0
            assert viewer.probes().results()  # the demo's probe results came along
            assert any((r.loss_pct or 0) > 1 for r in viewer.probes().results() if r.dst_node == "node4")
        assert len(relay.viewers) == 2
        await late.close()
        for _ in range(50):
            if len(relay.viewers) == 1:
                break
            await asyncio.sleep(0.05)
        assert len(relay.viewers) == 1  # a viewer that left is dropped
    finally:
        run.cancel()
        await first.close()
        await late.close()
        await relay.close()
        await producer.close()


async def test_a_serve_process_that_ends_shows_in_its_viewers(tmp_path):
    (tmp_path / "relay").mkdir()
    producer, relay = await _producer_and_relay(tmp_path)
    run = asyncio.ensure_future(producer.run())
    viewer = RelaySource(relay.path, start_wait=20)
    try:
        await asyncio.wait_for(viewer.start(), 20)
        await relay.close()
        assert await viewer.wait_for_change(5)
        for _ in range(50):
            if viewer.gone:
                break
            await viewer.wait_for_change(0.1)
        snapshot = viewer.snapshot()
        lost = [e for e in snapshot.engines if e.endpoint == RELAY_ENDPOINT]
        assert lost and lost[0].health is Health.ERROR and "serve process stopped" in lost[0].message
        assert snapshot.nodes  # the last frame stays
    finally:
        run.cancel()
        await viewer.close()
        await producer.close()


class Unstartable(DemoSource):
    async def start(self) -> None:
        raise ConnectionRefusedError("no engine at unix:///nowhere.sock")


async def test_a_producer_that_cannot_start_fails_every_viewer_with_its_reason(tmp_path):
    (tmp_path / "relay").mkdir()
    producer, relay = await _producer_and_relay(tmp_path, Unstartable("healthy"))
    try:
        assert not await producer.start()
        relay.fail(producer.failure)
        for _ in range(2):  # one connected before, one after: both told
            viewer = RelaySource(relay.path, start_wait=10)
            with pytest.raises(RelayError, match="no engine at unix:///nowhere.sock"):
                await viewer.start()
            await viewer.close()
    finally:
        await relay.close()
        await producer.close()


async def test_no_relay_there_is_one_line(tmp_path):
    viewer = RelaySource(tmp_path / "none.sock", start_wait=1)
    with pytest.raises(RelayError, match="cannot reach the serve process"):
        await viewer.start()


def test_equal_tuples_of_a_record_are_decoded_into_one_object():
    """A 200-node frame repeats each overlay's peers and services in every node's view: decoded apart they took
    147 MB. Equal tuples become one object (never one of another type: (1, 0) == (True, False))."""
    source = DemoSource("healthy", seed=1)
    asyncio.run(source.start())
    encoder, snapshot = FrameEncoder(), source.snapshot()
    encoder.encode(RecordedFrame(snapshot, source.probes(), {}))
    got = FrameDecoder().feed(encoder.key())
    assert got is not None
    views = [view for network in got.snapshot.networks for view in network.views]
    peers = [view.peers for view in views if view.peers]
    assert len(peers) > 5
    assert len({id(p) for p in peers}) == len(set(peers)) < len(peers)  # one object per distinct value
    assert got.snapshot == snapshot
    assert recording._sharing.table is None  # sharing is per record: nothing kept after it
    assert decode(tuple[bool, ...], [True, False]) == (True, False)


async def test_a_viewer_asks_for_probing_only_where_serve_allows_it(tmp_path):
    (tmp_path / "relay").mkdir()
    producer, relay = await _producer_and_relay(tmp_path)
    asked: list[str] = []
    run = asyncio.ensure_future(producer.run())
    viewer = RelaySource(relay.path, start_wait=20)
    try:
        await asyncio.wait_for(viewer.start(), 20)
        assert await viewer.control("start_probing")
        await asyncio.sleep(0.3)
        assert asked == []  # read-only by default: the request is ignored
        relay.on_control = asked.append  # serve --viewer-probe-control
        assert await viewer.control("start_probing")
        assert await viewer.control("remove_everything")  # not a control a viewer has
        await asyncio.wait_for(_until(lambda: asked), 5)
        await asyncio.sleep(0.3)
        assert asked == ["start_probing"]
        assert len(relay.viewers) == 1  # asking does not cost the viewer its stream
    finally:
        run.cancel()
        await viewer.close()
        await relay.close()
        await producer.close()


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.05)


async def test_a_frame_the_relay_cannot_encode_is_said_and_the_next_one_starts_afresh(tmp_path, monkeypatch):
    (tmp_path / "relay").mkdir()
    producer, relay = await _producer_and_relay(tmp_path)
    said: list[str] = []
    run = asyncio.ensure_future(producer.run())
    viewer = RelaySource(relay.path, start_wait=20)
    viewer.on_say = lambda severity, text: said.append(text)
    try:
        await asyncio.wait_for(viewer.start(), 20)
        encode = relay._encode
        failures = iter([True])

        def once_broken(frame):
            if next(failures, False):
                raise ValueError("a value JSON cannot hold")
            return encode(frame)
        monkeypatch.setattr(relay, "_encode", once_broken)
        seen = viewer.frames
        await _frame_after(viewer, seen + 3)  # frames again, from a new keyframe
        assert any("could not encode a frame: ValueError" in line for line in said)
    finally:
        run.cancel()
        await viewer.close()
        await relay.close()
        await producer.close()
