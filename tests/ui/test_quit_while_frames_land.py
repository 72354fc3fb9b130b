"""Frames that land while the app is quitting are dropped: once Textual tears the screens down there is nothing to
render into (a lab run's dashboard raised NoMatches on '#no-match' at q, another run ScreenStackError)."""

from __future__ import annotations

import asyncio

from overlaytui.app import FrameReady
from tests.ui.helpers import Clock, feed, make_app


async def test_frames_landing_while_the_app_quits_are_dropped():
    clock = Clock()
    app = make_app("healthy", clock=clock)

    async def frames() -> None:  # as the producer's loop posts them, faster
        while True:
            clock.now += 1
            app.post_message(FrameReady(app.build_frame()))
            await asyncio.sleep(0)

    flood = None
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await feed(app, pilot, clock, seconds=2)
            app.open_detail("node", app.frame.snapshot.nodes[1].id)
            await pilot.pause()
            flood = asyncio.ensure_future(frames())
            await pilot.press("q")
    finally:
        if flood is not None:
            flood.cancel()
    ended = await asyncio.gather(flood, return_exceptions=True)
    assert isinstance(ended[0], asyncio.CancelledError), ended  # the frames were built until the end, not failing
    assert app._exception is None  # was NoMatches or ScreenStackError from render_visible, 3 runs in 3
