"""Make screenshots/*.svg from the demo cluster (fixed seed and clock): each pane, each theme, a scenario or two.

    .venv/bin/python tools/screenshots.py        (or: make screenshots)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from overlaytui.app import FrameReady, OverlayApp
from overlaytui.sources.demo import DemoSource

OUT = Path(__file__).resolve().parent.parent / "screenshots"
T0 = 1_800_000_000.0
SHOTS = [  # file name, scenario, theme, key, seconds into the scenario[, demo scale]
    ("topology", "healthy", "overlaytui-dark", "1", 0),
    ("placement", "healthy", "overlaytui-dark", "2", 0),
    ("netio", "healthy", "overlaytui-dark", "3", 0),
    ("loss", "loss", "overlaytui-dark", "4", 0),
    ("networks", "healthy", "overlaytui-dark", "5", 0),
    ("mtu-black-hole", "mtu", "overlaytui-dark", "4", 0),
    ("node-down", "node-down", "overlaytui-dark", "1", 25),
    ("theme-light", "healthy", "overlaytui-light", "2", 0),
    ("theme-high-contrast", "healthy", "overlaytui-high-contrast", "1", 0),
    ("loss-200-nodes", "bad-node", "overlaytui-dark", "4", 0, (200, 300, 5000)),
    ("timeline", "node-down", "overlaytui-dark", "7", 25),
    ("netio-timeline", "node-down", "overlaytui-dark", "3", 25),
    ("rolling-update", "rolling-update", "overlaytui-dark", "7", 0),
]


async def shoot(name: str, scenario: str, theme: str, key: str, advance: int, scale=None) -> Path:
    now = [T0]
    source = DemoSource(scenario, seed=7, clock=lambda: now[0], scale=scale)
    app = OverlayApp(source, interval=None, clock=lambda: now[0], theme=theme,
                     persist_config=False)
    async with app.run_test(size=(132, 38)) as pilot:
        await pilot.pause()
        now[0] += advance
        await source.poll()
        for _ in range(60):  # a minute of history for the charts (handled directly: posted ones would collapse)
            now[0] += 1
            await source.poll()  # as the collection loop does when the source says something changed
            app.on_frame_ready(FrameReady(app.build_frame()))
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        await app.workers.wait_for_complete()  # the Loss overview beyond 30 nodes is judged in a worker
        await pilot.pause()
        return Path(app.save_screenshot(filename=f"{name}.svg", path=str(OUT)))


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    for shot in SHOTS:
        print(await shoot(*shot))


if __name__ == "__main__":
    asyncio.run(main())
