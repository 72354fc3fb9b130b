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
- idle, per pane (issue 26): the real `overlaytui --demo bad-node --demo-scale 200,300,5000` process in tmux
  (so it has a terminal) at its 1 s refresh, each pane shown for `--idle-seconds` while nobody touches it: its
  CPU (psutil) and RSS. The demo simulates the cluster in the same process; what the simulation alone costs is
  measured apart: a DemoSource of the same scenario and scale driven as the producer drives it (a snapshot and
  the probe data a second, a poll every reconcile or when its topology moved) over the same span of simulated
  time, in this process. The UI's share is the difference. Baselines in the same run: the 5-node demo, and with
  OVERLAYTUI_BENCH_BASE=DIR (a `git worktree` of an older commit) that code measured the same way;
- reactions under load (issue 26): the 200-node bad-node demo with its real producer (a frame a second, probe
  rounds, the Loss overview's worker), keys sent as a terminal sends them, timed from the key to the first
  screen update that leaves nothing pending (Textual composes it; headless, it is not written out): each pane's
  key, the theme switch (t), the command palette (ctrl+p, until its list is filled) and a filter keystroke;
  whether a pane was empty when shown. p95 and median; baseline: the 5-node demo the same way. Also how many
  presses took over 150 ms and how many of those overlapped a full garbage collection (gc.callbacks): how the
  tails were found to be the collector's pauses (model.PackedResults, app._freeze_startup_objects).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psutil
from textual import events

from overlaytui.app import TABS, FrameReady, OverlayApp
from overlaytui.sources.demo import DemoSource

from .common import feed_and_draw

PANES = {"1": "topology", "2": "placement", "3": "netio", "4": "loss", "5": "networks"}
ALL_PANES = {str(i): tab for i, (tab, _label) in enumerate(TABS, start=1)}
LARGE = (200, 300, 5000)
SCENARIO = "bad-node"  # the 200-node heat map (`make demo SCENARIO=bad-node`)
IDLE_FROM = 20.0  # seconds after the start the idle measurement begins (the simulation's measured span too)


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


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def idle_by_pane(root: str, scale: tuple[int, int, int] | None, seconds: float) -> dict | None:
    """The real dashboard process (the code in `root`) on the demo, idle on each pane for `seconds`: CPU % of a
    core and RSS (MB) per pane, and the RSS samples. None without tmux."""
    if shutil.which("tmux") is None:
        return None
    session = f"bench{os.getpid()}"
    config = tempfile.mktemp(suffix=".toml")
    scale_flag = f" --demo-scale {','.join(map(str, scale))}" if scale else ""
    cmd = (f"cd {root} && OVERLAYTUI_CONFIG={config} PYTHONPATH={root} exec {sys.executable} -m overlaytui "
           f"--demo {SCENARIO}{scale_flag}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60", cmd], check=True)
    try:
        pid = subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True,
                             text=True, check=True).stdout.split()[0]
        proc = psutil.Process(int(pid))
        time.sleep(IDLE_FROM)  # start-up, the first frames and the first probe data are not idle
        result: dict = {"cpu_pct": {}, "rss_mb": {}, "rss_samples": []}
        for key, pane in ALL_PANES.items():
            subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
            time.sleep(3)  # the switch itself is not idle
            before, start = proc.cpu_times(), time.monotonic()
            while time.monotonic() - start < seconds:
                time.sleep(min(5.0, seconds))
                result["rss_samples"].append(proc.memory_info().rss / 2**20)
            after, span = proc.cpu_times(), time.monotonic() - start
            result["cpu_pct"][pane] = 100 * ((after.user + after.system) - (before.user + before.system)) / span
            result["rss_mb"][pane] = proc.memory_info().rss / 2**20
        result["span_s"] = len(ALL_PANES) * (seconds + 3)
        return result
    except (psutil.Error, subprocess.CalledProcessError, IndexError) as exc:
        print(f"idle: the dashboard process could not be measured: {exc}")
        return None
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def simulation_cpu(root: str, scale: tuple[int, int, int] | None, seconds: float) -> float:
    """CPU % of a core the demo's simulation alone (the code in `root`) costs over `seconds` of its time, driven as
    the producer drives it (bench/simulation.py, in a process of its own)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "simulation.py")
    given = ",".join(map(str, scale)) if scale else "-"
    out = subprocess.run([sys.executable, script, SCENARIO, given, str(int(IDLE_FROM)), str(int(seconds))],
                         capture_output=True,
                         text=True, check=True, cwd=root, env={**os.environ, "PYTHONPATH": root})
    return float(out.stdout.split()[-1])


async def reactions(scale, visits: int) -> dict:
    """Keys -> a settled screen on the demo with its real producer running (frames, probe rounds, workers)."""
    source = DemoSource(SCENARIO, seed=1, scale=scale)
    app = OverlayApp(source, interval=1.0, persist_config=False, freeze_gc=True)
    watch: list = [None]  # the condition a screen update is waited for
    hits: list[float] = []  # when the screen was updated while it held
    rng = random.Random(1)
    full_gcs: list[tuple[float, float]] = []  # (start, end) of every full collection, any thread's
    spans: list[tuple[float, float]] = []  # (key sent, screen updated) of every timed press

    def on_gc(phase: str, info: dict, started: list = [0.0]) -> None:  # noqa: B006 (the callback's own state)
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                full_gcs.append((started[0], time.perf_counter()))
    gc.callbacks.append(on_gc)

    async with app.run_test(size=(200, 60)) as pilot:
        original = app._display

        def display(screen, renderable) -> None:
            original(screen, renderable)
            if renderable is not None and watch[0] is not None and watch[0]():
                hits.append(time.perf_counter())
        app._display = display

        async def press(key: str, condition) -> float:
            """Seconds from sending `key` to the first screen update made once `condition()` holds."""
            hits.clear()
            watch[0] = condition
            start = time.perf_counter()
            app._driver.send_message(events.Key(key, key if len(key) == 1 else None))
            while not hits:
                if time.perf_counter() - start > 30:
                    raise TimeoutError(f"no screen update after {key} in 30 s")
                await asyncio.sleep(0.002)
            watch[0] = None
            spans.append((start, hits[0]))
            return hits[0] - start

        deadline = time.monotonic() + 120
        while app.frame is None or not app.frame.probes.recent:  # the first frame with probe data
            if time.monotonic() > deadline:
                raise TimeoutError("no frame with probe data in 120 s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
        by_pane: dict[str, list[float]] = {pane: [] for pane in ALL_PANES.values()}
        empty: dict[str, int] = {pane: 0 for pane in ALL_PANES.values()}
        for _ in range(visits):
            for key, pane in ALL_PANES.items():
                await asyncio.sleep(rng.uniform(0.2, 1.0))  # any phase of the frame cycle
                by_pane[pane].append(await press(key, lambda pane=pane: app.query_one("#tabs").active == pane))
                empty[pane] += _empty(app, pane)
        themes, palette, filters = [], [], []
        for _ in range(visits):
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            before = app.theme
            themes.append(await press("t", lambda before=before: app.theme != before))
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            palette.append(await press("ctrl+p", lambda: _palette_filled(app)))
            await press("escape", lambda: not _palette_filled(app))
        await press("1", lambda: app.query_one("#tabs").active == "topology")
        for _ in range(visits):
            await press("slash", lambda: app.query_one("#filter").has_focus)
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            filters.append(await press("n", lambda: app.filter_text == "n"))
            await press("escape", lambda: app.filter_text == "")
        app.paused = True  # frames still coming are not shown while the test app closes its screen
        await pilot.pause()
    gc.callbacks.remove(on_gc)
    slow = [(s, e) for s, e in spans if e - s > 0.15]
    during_gc = sum(any(a < e and b > s for a, b in full_gcs) for s, e in slow)

    def stats(times: list[float]) -> dict:
        return {"p95_ms": _percentile(times, 95) * 1000, "median_ms": statistics.median(times) * 1000,
                "max_ms": max(times) * 1000, "n": len(times)}
    return {"panes": {pane: stats(t) for pane, t in by_pane.items()}, "theme": stats(themes),
            "palette": stats(palette), "filter": stats(filters), "empty": empty,
            "slow_presses": len(slow), "slow_during_full_gc": during_gc,
            "full_gc_ms": sorted((b - a) * 1000 for a, b in full_gcs)}


def _palette_filled(app) -> bool:
    from textual.command import CommandList, CommandPalette
    screen = app.screen
    return isinstance(screen, CommandPalette) and screen.query_one(CommandList).option_count > 0


def _empty(app, pane: str) -> bool:
    """The visible pane shows no rows and no text where it has tables (the Loss pane while it judges, say)."""
    from textual.widgets import DataTable

    from overlaytui.panes.livetable import LiveTable
    if pane == "timeline" and not app.timeline:
        return False  # nothing happened yet: its table is empty because there is nothing to show
    widget = app.query_one(f"#pane-{pane}")
    tables = list(widget.query(DataTable)) + list(widget.query(LiveTable))
    return bool(tables) and all((t.row_count if isinstance(t, DataTable) else len(t.row_keys)) == 0 for t in tables)


def main(runs: int = 5, idle_seconds: float = 60.0) -> dict:
    rounds = max(3 * runs, 15)  # each round is one frame: medians of 15 are stable on 2 cores
    small = asyncio.run(measure(None, rounds))
    large = asyncio.run(measure(LARGE, rounds))
    rss_mb = psutil.Process().memory_info().rss / 2**20
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
    print(f"RSS of this benchmark process after the large run: {rss_mb:.0f} MB")
    result = {"large": large, "small": small, "rss_mb": rss_mb, "scale": LARGE}
    result.update(under_load(runs, idle_seconds))
    return result


def under_load(runs: int = 5, idle_seconds: float = 60.0) -> dict:
    """Issue 26's figures: idle CPU and RSS per pane of the real process, the simulation apart, key reactions."""
    result: dict = {"scenario": SCENARIO, "idle": {}, "reactions": {}}
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"now": here}
    if os.environ.get("OVERLAYTUI_BENCH_BASE"):
        trees["base"] = os.environ["OVERLAYTUI_BENCH_BASE"]
    # baseline: the older code at 200 nodes when given, else the 5-node demo
    runs_of = [("200/300/5000", LARGE, "base"), ("200/300/5000", LARGE, "now")] if "base" in trees else \
        [("5 nodes", None, "now"), ("200/300/5000", LARGE, "now")]
    for label, scale, tree in runs_of:
        found = idle_by_pane(trees[tree], scale, idle_seconds)
        if found is None:
            print(f"idle {label} ({tree}): not measured (no tmux)")
            continue
        sim = simulation_cpu(trees[tree], scale, found["span_s"])
        found["simulation_cpu_pct"] = sim
        found["ui_cpu_pct"] = {pane: cpu - sim for pane, cpu in found["cpu_pct"].items()}
        samples = found["rss_samples"]
        print(f"idle {label} ({tree}), {idle_seconds:g} s per pane, CPU % of a core: process / UI (the process "
              f"less the simulation's {sim:.1f} %): " + ", ".join(
                  f"{pane} {cpu:.1f}/{found['ui_cpu_pct'][pane]:.1f}" for pane, cpu in found["cpu_pct"].items()))
        print(f"  RSS {min(samples):.0f}-{max(samples):.0f} MB over {len(samples)} samples; per pane: " + ", ".join(
            f"{pane} {mb:.0f}" for pane, mb in found["rss_mb"].items()))
        result["idle"][f"{label} ({tree})"] = found
    visits = max(4 * runs, 20)
    for label, scale in (("5 nodes", None), ("200/300/5000", LARGE)):
        found = asyncio.run(reactions(scale, visits))
        result["reactions"][label] = found
        print(f"key -> screen on the {label} demo under its own load, p95 / median ms over {visits}: " + ", ".join(
            f"{pane} {s['p95_ms']:.0f}/{s['median_ms']:.0f}" for pane, s in found["panes"].items())
            + "; " + ", ".join(f"{what} {found[what]['p95_ms']:.0f}/{found[what]['median_ms']:.0f}"
                                for what in ("theme", "palette", "filter"))
            + f"; panes shown empty: {sum(found['empty'].values())} ({found['empty']}); presses over 150 ms: "
              f"{found['slow_presses']}, {found['slow_during_full_gc']} of them during a full garbage collection "
              f"({len(found['full_gc_ms'])} collections, longest {max(found['full_gc_ms'], default=0):.0f} ms)")
    return result
