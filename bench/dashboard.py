"""Dashboard benchmarks on the demo at 200 nodes / 300 services / 5000 tasks; baseline: the default 5-node demo,
measured the same way in the same process.

    .venv/bin/python -m bench dashboard

- frame -> visible pane updated: the app's handler for a new frame (history, the visible pane's update,
  the status bar) plus a full layout and render of the screen by Textual's compositor — the work between a
  snapshot and a new picture, without Pilot's idle detection (which adds its own waits); median per pane;
- key press -> updated screen: the pane switch the key triggers (action, focus, the pane's render) plus the full
  layout and render; median over all panes and per pane (the worst pane is what a user notices); also Pilot's
  press-and-wait-for-idle, for reference;
- full garbage collections during those updates: how long each paused the UI, with start-up objects frozen as
  the real process does (`freeze_gc`), and again in the same process after `gc.unfreeze()` (the baseline);
- RSS of the benchmark process after the large run;
- CPU while idle: the real `overlaytui --demo --demo-scale ...` process at a 1 s refresh, measured with psutil
  over 30 s while nobody touches it (it runs in tmux so it has a terminal).
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

from overlaytui.app import FrameReady, OverlayApp
from overlaytui.sources.demo import DemoSource

from .common import feed_and_draw

PANES = {"1": "topology", "2": "placement", "3": "netio", "4": "loss", "5": "networks"}
LARGE = (200, 300, 5000)


async def measure(scale, rounds: int) -> dict:
    now = [1_800_000_000.0]
    source = DemoSource("healthy", seed=1, scale=scale, clock=lambda: now[0])
    app = OverlayApp(source, interval=None, clock=lambda: now[0], persist_config=False, freeze_gc=True)
    result: dict = {"snapshot_to_screen_ms": {}, "snapshot_build_ms": []}
    pauses: list[float] = []
    started: list[float] = []

    def full_collections(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                pauses.append((time.perf_counter() - started[0]) * 1000)

    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        draw = feed_and_draw(app, now, 300)  # five minutes of history for the charts
        await pilot.pause()

        first_keys, keys, pilot_keys = [], [], []
        by_pane: dict[str, list[float]] = {pane: [] for pane in PANES.values()}
        for visit in (first_keys, keys, keys, keys):  # the first visit of a pane builds its tables
            for pane in PANES.values():
                start = time.perf_counter()
                app.action_show_tab(pane)
                app.render_visible()
                draw()
                visit.append(time.perf_counter() - start)
                if visit is keys:
                    by_pane[pane].append(time.perf_counter() - start)
                await pilot.pause()
        for key in PANES:
            start = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            pilot_keys.append(time.perf_counter() - start)

        async def frames(count: int) -> list[float]:
            times = []
            for _ in range(count):
                now[0] += 1
                build = time.perf_counter()
                frame = app.build_frame()  # the app builds frames in its frame thread (see app._produce)
                result["snapshot_build_ms"].append((time.perf_counter() - build) * 1000)
                start = time.perf_counter()
                app.on_frame_ready(FrameReady(frame))
                draw()
                times.append(time.perf_counter() - start)
                await pilot.pause()
            return times

        gc.callbacks.append(full_collections)
        try:
            for pane in PANES.values():
                app.action_show_tab(pane)
                await pilot.pause()
                result["snapshot_to_screen_ms"][pane] = statistics.median(await frames(rounds)) * 1000
            frozen = list(pauses)
            gc.unfreeze()  # the baseline: the same app, every object in the collector's sight again
            pauses.clear()
            app.action_show_tab("netio")
            await pilot.pause()
            result["netio_unfrozen_ms"] = statistics.median(await frames(rounds)) * 1000
            result["full_gc_pause_ms"] = {"frozen": _summary(frozen), "unfrozen": _summary(pauses)}
        finally:
            gc.callbacks.remove(full_collections)
        result["key_to_screen_ms"] = statistics.median(keys) * 1000
        result["key_to_screen_ms_by_pane"] = {pane: statistics.median(t) * 1000 for pane, t in by_pane.items()}
        result["key_to_screen_first_visit_ms"] = statistics.median(first_keys) * 1000
        result["pilot_key_to_idle_ms"] = statistics.median(pilot_keys) * 1000
    result["snapshot_build_ms"] = statistics.median(result["snapshot_build_ms"])
    return result


def _summary(pauses: list[float]) -> dict:
    return {"count": len(pauses), "median": statistics.median(pauses) if pauses else None,
            "max": max(pauses) if pauses else None}


def idle_cpu(seconds: float) -> float | None:
    """CPU % of one core used by the real dashboard process, idle at the default 1 s refresh."""
    if shutil.which("tmux") is None:
        return None
    session = f"bench{os.getpid()}"
    config = tempfile.mktemp(suffix=".toml")
    scale = ",".join(map(str, LARGE))
    cmd = f"OVERLAYTUI_CONFIG={config} {sys.executable} -m overlaytui --demo --demo-scale {scale}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60", cmd], check=True)
    try:
        deadline = time.monotonic() + 30
        proc = None
        while proc is None and time.monotonic() < deadline:
            for p in psutil.process_iter(["cmdline"]):
                if p.info["cmdline"] and "--demo-scale" in p.info["cmdline"] and "overlaytui" in " ".join(
                        p.info["cmdline"]):
                    proc = p
            time.sleep(0.2)
        if proc is None:
            return None
        time.sleep(5)  # start-up and the first renders are not idle
        before = proc.cpu_times()
        time.sleep(seconds)
        after = proc.cpu_times()
        return 100 * ((after.user + after.system) - (before.user + before.system)) / seconds
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main(runs: int = 5) -> dict:
    rounds = max(3 * runs, 15)  # each round is one frame: medians of 15 are stable on 2 cores
    small = asyncio.run(measure(None, rounds))
    large = asyncio.run(measure(LARGE, rounds))
    rss_mb = psutil.Process().memory_info().rss / 2**20
    cpu = idle_cpu(30)
    for pane in PANES.values():
        ms, base = large["snapshot_to_screen_ms"][pane], small["snapshot_to_screen_ms"][pane]
        print(f"snapshot -> {pane:9} updated: {ms:6.1f} ms at 200/300/5000 vs {base:5.1f} ms at 5 nodes "
              f"(ratio {ms / base:.1f})")
    build_ms = large["snapshot_build_ms"]
    print(f"building a 5000-task demo frame (snapshot, NetIO sums, findings; off the UI thread): {build_ms:.1f} ms "
          f"(5 nodes: {small['snapshot_build_ms']:.2f} ms)")
    print(f"key press -> screen updated: {large['key_to_screen_ms']:.1f} ms vs {small['key_to_screen_ms']:.1f} ms "
          f"(ratio {large['key_to_screen_ms'] / small['key_to_screen_ms']:.1f}); first visit of a pane "
          f"{large['key_to_screen_first_visit_ms']:.0f} ms vs {small['key_to_screen_first_visit_ms']:.0f} ms; "
          f"Pilot press-and-wait-for-idle "
          f"{large['pilot_key_to_idle_ms']:.0f} ms vs {small['pilot_key_to_idle_ms']:.0f} ms")
    print("key press -> screen updated, per pane at 200/300/5000: " + ", ".join(
        f"{pane} {ms:.1f} ms" for pane, ms in large["key_to_screen_ms_by_pane"].items()))
    gcp = large["full_gc_pause_ms"]
    if gcp["frozen"]["count"] and gcp["unfrozen"]["count"]:
        print(f"full GC pause at 200/300/5000: {gcp['frozen']['median']:.1f} ms median ({gcp['frozen']['count']} "
              f"during the updates) with start-up objects frozen vs {gcp['unfrozen']['median']:.1f} ms unfrozen "
              f"(ratio {gcp['frozen']['median'] / gcp['unfrozen']['median']:.2f}); NetIO update unfrozen: "
              f"{large['netio_unfrozen_ms']:.1f} ms")
    print(f"RSS after the large run: {rss_mb:.0f} MB")
    print("CPU while idle at 1 s refresh (the real process, 200/300/5000): "
          + (f"{cpu:.1f} % of a core" if cpu is not None else "not measured (no tmux)"))
    return {"large": large, "small": small, "rss_mb": rss_mb, "idle_cpu_pct": cpu, "scale": LARGE}
