"""Soak: the 200-node demo dashboard left running, its memory sampled (issue 26: RSS <= 250 MB and flat).

    .venv/bin/python -m bench soak            # an hour (OVERLAYTUI_SOAK_MINUTES=N for another span)

- the real `overlaytui --demo bad-node --demo-scale 200,300,5000` process in tmux (so it has a terminal), at its
  1 s refresh, the panes shown in turn (one a minute); its RSS and CPU sampled every 10 s with psutil. The
  slope is a least-squares line through the samples after the first 5 minutes (start-up, the first probe rounds
  and every pane's first render), in MB per hour; the baseline is the RSS at the end of that warm-up;
- what holds the memory, named by tracemalloc: the same dashboard in this process (headless, its real producer
  and clock) after every pane was shown and a few probe rounds passed — the largest allocation sites, and the
  growth between two snapshots minutes apart.
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
import tracemalloc

import psutil

from .dashboard import ALL_PANES, LARGE, SCENARIO

WARM_UP = 300.0  # seconds left out of the slope
SAMPLE_EVERY = 10.0
ROTATE_EVERY = 60.0


def slope_mb_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per hour."""
    ts = [t for t, _ in samples]
    mbs = [mb for _, mb in samples]
    mt, mm = statistics.fmean(ts), statistics.fmean(mbs)
    var = sum((t - mt) ** 2 for t in ts)
    return 3600 * sum((t - mt) * (mb - mm) for t, mb in samples) / var if var else 0.0


def soak(minutes: float, root: str) -> dict | None:
    """The real process for `minutes`: RSS and CPU samples, the slope after the warm-up. None without tmux."""
    if shutil.which("tmux") is None:
        return None
    session = f"soak{os.getpid()}"
    config = tempfile.mktemp(suffix=".toml")
    scale = ",".join(map(str, LARGE))
    cmd = (f"cd {root} && OVERLAYTUI_CONFIG={config} PYTHONPATH={root} exec {sys.executable} -m overlaytui "
           f"--demo {SCENARIO} --demo-scale {scale}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60", cmd], check=True)
    samples: list[tuple[float, float, float]] = []  # (seconds since start, RSS MB, CPU % since the last)
    try:
        pid = subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True,
                             text=True, check=True).stdout.split()[0]
        proc = psutil.Process(int(pid))
        start = time.monotonic()
        keys = list(ALL_PANES)
        shown = -1
        before = proc.cpu_times()
        while time.monotonic() - start < minutes * 60:
            time.sleep(SAMPLE_EVERY)
            at = time.monotonic() - start
            if int(at // ROTATE_EVERY) != shown:
                shown = int(at // ROTATE_EVERY)
                subprocess.run(["tmux", "send-keys", "-t", session, keys[shown % len(keys)]], check=True)
            after = proc.cpu_times()
            cpu = 100 * ((after.user + after.system) - (before.user + before.system)) / SAMPLE_EVERY
            before = after
            samples.append((at, proc.memory_info().rss / 2**20, cpu))
            if len(samples) % 30 == 0:
                print(f"  {at / 60:5.1f} min: RSS {samples[-1][1]:.0f} MB", flush=True)
    except (psutil.Error, subprocess.CalledProcessError, IndexError) as exc:
        print(f"soak: the dashboard process could not be measured: {exc}")
        if not samples:
            return None
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    settled = [(t, mb) for t, mb, _cpu in samples if t >= WARM_UP]
    return {"minutes": samples[-1][0] / 60, "samples": samples,
            "rss_after_warm_up_mb": settled[0][1] if settled else None,
            "rss_max_mb": max(mb for _t, mb, _cpu in samples), "rss_end_mb": samples[-1][1],
            "slope_mb_per_hour": slope_mb_per_hour(settled) if len(settled) > 2 else None,
            "cpu_median_pct": statistics.median(cpu for t, _mb, cpu in samples if t >= WARM_UP)
            if settled else None}


async def holders(seconds: float, top: int = 12) -> dict:
    """tracemalloc's largest allocation sites in the dashboard (this process, headless, its real producer) once
    every pane was shown, and what grew over the next `seconds`."""
    from overlaytui.app import OverlayApp
    from overlaytui.sources.demo import DemoSource

    tracemalloc.start(1)
    app = OverlayApp(DemoSource(SCENARIO, seed=1, scale=LARGE), interval=1.0, persist_config=False,
                     freeze_gc=True)
    async with app.run_test(size=(200, 60)) as pilot:
        deadline = time.monotonic() + 120
        while app.frame is None or not app.frame.probes.recent:
            if time.monotonic() > deadline:
                raise TimeoutError("no frame with probe data in 120 s")
            await asyncio.sleep(0.1)
        for key in ALL_PANES:
            await pilot.press(key)
            await asyncio.sleep(5)
        await app.workers.wait_for_complete()
        gc.collect()
        first = tracemalloc.take_snapshot()
        await asyncio.sleep(seconds)
        await app.workers.wait_for_complete()
        gc.collect()
        last = tracemalloc.take_snapshot()
    tracemalloc.stop()

    def site(stat) -> str:
        frame = stat.traceback[0]
        return f"{os.path.relpath(frame.filename)}:{frame.lineno}"
    return {"traced_mb": sum(s.size for s in last.statistics("filename")) / 2**20,
            "top": [(site(s), s.size / 2**20, s.count) for s in last.statistics("lineno")[:top]],
            "growth": [(site(s), s.size_diff / 2**20, s.count_diff)
                       for s in last.compare_to(first, "lineno")[:top]], "span_s": seconds}


def main(runs: int = 5) -> dict:
    minutes = float(os.environ.get("OVERLAYTUI_SOAK_MINUTES", "60"))
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result: dict = {"soak": soak(minutes, here)}
    found = result["soak"]
    if found is None:
        print("soak: not measured (no tmux)")
    else:
        slope = found["slope_mb_per_hour"]
        print(f"soak {found['minutes']:.0f} min on the {SCENARIO} demo at 200/300/5000: RSS "
              f"{found['rss_after_warm_up_mb']} MB after {WARM_UP / 60:g} min (the baseline), max "
              f"{found['rss_max_mb']:.0f} MB, end {found['rss_end_mb']:.0f} MB; slope "
              + (f"{slope:+.1f} MB/h" if slope is not None else "not measured (too short)")
              + f"; CPU median {found['cpu_median_pct']} % of a core")
    result["holders"] = asyncio.run(holders(float(os.environ.get("OVERLAYTUI_SOAK_HOLDERS_SECONDS", "300"))))
    held = result["holders"]
    print(f"tracemalloc after every pane was shown: {held['traced_mb']:.0f} MB traced; largest sites:")
    for where, mb, count in held["top"]:
        print(f"  {mb:7.1f} MB {count:9,} blocks  {where}")
    print(f"grown over {held['span_s']:g} s:")
    for where, mb, count in held["growth"]:
        print(f"  {mb:+7.2f} MB {count:+9,} blocks  {where}")
    return result
