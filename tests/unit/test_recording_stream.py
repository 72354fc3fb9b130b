"""The recording format as a stream (`FrameEncoder` -> `FrameDecoder`): frames carried through a keyframe and
deltas, and equal tuples of a record decoded into one object."""

from __future__ import annotations

import asyncio

from overlaytui import recording
from overlaytui.recording import FrameDecoder, FrameEncoder, RecordedFrame, decode
from overlaytui.sources.demo import DemoSource
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
