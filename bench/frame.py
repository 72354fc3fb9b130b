"""The frame producer: building a frame off the UI loop, and the UI thread's time per frame before and after.

    .venv/bin/python -m bench frame

On the demo's bad-node scenario at 200 nodes / 300 services / 5000 tasks (its simulated probes: 119,400 pings
and as many path-MTU results on three overlays), baseline the 5-node demo, in the same process:

- frame build (in the frame thread): snapshot assembly, NetIO sums, the state checks, and the pair checks, which
  are reused while the probe results are the same objects (the common case: results change once a round) —
  median over frames, and once with new probe results (a round just finished);
- UI thread per frame, after: the app's frame handler (history, the visible pane, the status bar) plus a full
  layout and render, on the Findings pane and on Topology;
- UI thread per frame, before: what the loop did per snapshot before frames: assembling the snapshot there, plus,
  on the Findings pane, `diagnose()` on the UI thread (pair checks only up to 60 nodes, so none at 200: the pane
  left them out), then the same handler and render. The removed work is measured by running the same functions
  on the loop, in the same process.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from overlaytui.analysis.findings import diagnose
from overlaytui.app import FrameReady, OverlayApp
from overlaytui.frame import FrameBuilder
from overlaytui.sources.demo import DemoSource

from .common import feed_and_draw

LARGE = (200, 300, 5000)
OLD_PAIR_CHECKS_UP_TO = 60  # nodes: the old Findings pane ran the pair checks on the UI thread up to this


async def measure(scale, rounds: int) -> dict:
    now = [1_800_000_000.0]
    source = DemoSource("bad-node", seed=1, scale=scale, clock=lambda: now[0])
    app = OverlayApp(source, interval=None, clock=lambda: now[0], persist_config=False)
    result: dict = {}
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        fresh = DemoSource("bad-node", seed=1, scale=scale, clock=lambda: now[0])  # its probe data not cached yet
        await fresh.start()
        start = time.perf_counter()
        fresh.probes()
        result["probe_data_ms"] = (time.perf_counter() - start) * 1000
        probes = source.probes()
        start = time.perf_counter()
        FrameBuilder(app.config.loss, underlay=lambda addresses: {}).build(source.snapshot(), probes)  # no cache
        result["frame_new_probes_ms"] = (time.perf_counter() - start) * 1000
        draw = feed_and_draw(app, now, 30)
        await pilot.pause()

        builds: list[float] = []
        for pane in ("findings", "topology"):
            app.action_show_tab(pane)
            await pilot.pause()
            after, before = [], []
            for _ in range(rounds):
                now[0] += 1
                start = time.perf_counter()
                frame = app.build_frame()
                builds.append(time.perf_counter() - start)
                start = time.perf_counter()
                app.on_frame_ready(FrameReady(frame))
                draw()
                after.append(time.perf_counter() - start)
                await pilot.pause()
                # before frames: the snapshot assembled on the loop, the Findings pane's diagnose() there
                start = time.perf_counter()
                snapshot = source.snapshot()
                if pane == "findings":
                    pairs = probes.results() if len(snapshot.nodes) <= OLD_PAIR_CHECKS_UP_TO else ()
                    diagnose(snapshot, pairs, app.config.loss)
                removed = time.perf_counter() - start
                before.append(removed + after[-1])
            result[f"ui_after_ms_{pane}"] = statistics.median(after) * 1000
            result[f"ui_before_ms_{pane}"] = statistics.median(before) * 1000
        result["frame_build_ms"] = statistics.median(builds) * 1000
    return result


def main(runs: int = 5) -> dict:
    rounds = max(3 * runs, 15)
    small = asyncio.run(measure(None, rounds))
    large = asyncio.run(measure(LARGE, rounds))
    print(f"frame build off the UI loop at 200/300/5000: {large['frame_build_ms']:.1f} ms median (5 nodes: "
          f"{small['frame_build_ms']:.1f} ms); with new probe results (a round just ended): "
          f"{large['frame_new_probes_ms']:.0f} ms, plus {large['probe_data_ms']:.0f} ms to simulate them")
    for pane in ("findings", "topology"):
        before, after = large[f"ui_before_ms_{pane}"], large[f"ui_after_ms_{pane}"]
        print(f"UI thread per frame on {pane} at 200/300/5000: {after:.1f} ms now vs {before:.1f} ms before frames "
              f"(ratio {after / before:.2f}); 5 nodes: {small[f'ui_after_ms_{pane}']:.1f} vs "
              f"{small[f'ui_before_ms_{pane}']:.1f} ms")
    return {"large": large, "small": small, "scale": LARGE}
