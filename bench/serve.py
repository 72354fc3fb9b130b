"""`overlaytui serve`'s cost per viewer: the real `overlaytui serve --demo [--demo-scale 200,300,5000]` with 1, 5 and
20 viewers open (each a websocket as the page opens it: the page's ticket, a 160x50 terminal, its output read and
dropped — a browser would draw it; the viewer does the same work either way). The viewers run inside the serve
process, so a viewer's cost is what the serve process gains per viewer: the serve process alone (no viewer) is
the baseline, measured in the same run.

    .venv/bin/python -m bench serve [--runs N]

Viewers on the start pane (Topology, as a projector opens it), and once more with each viewer on a pane of its
own (viewer i on pane i mod 7: `?pane=`), the panes' tables built per viewer.

Per run (a fresh serve process) and step: the serve process's RSS, USS and PSS (psutil's memory_full_info) once
the viewers have drawn their first screen and settled, and its CPU while idle (no key pressed; frames every
second) over `cpu_seconds`, in % of one core. Per further viewer: (step - alone) / viewers, and between steps
(20 - 5) / 15; medians over runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

import psutil

SCALE = "200,300,5000"
STEPS = (1, 5, 20)
FIRST_SCREEN = 60.0  # seconds a viewer may take to draw its first screen
SETTLE = 10.0  # seconds after the last viewer's first screen before measuring (its first frames shown)
SERVE_SETTLE = {"": 10.0, SCALE: 45.0}  # seconds for the serve process alone (its first frames, its caches)
PANES = ("topology", "placement", "netio", "loss", "networks", "findings", "timeline")


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory(process: psutil.Process) -> dict[str, float]:
    info = process.memory_full_info()
    return {"rss_mb": info.rss / 2**20, "uss_mb": info.uss / 2**20, "pss_mb": info.pss / 2**20}


def _cpu(process: psutil.Process, seconds: float, loop: asyncio.AbstractEventLoop) -> float:
    """% of one core the process used over `seconds` (the viewers' output read meanwhile, as a browser would)."""
    before = sum(process.cpu_times()[:2])
    started = time.monotonic()
    loop.run_until_complete(asyncio.sleep(seconds))
    used = sum(process.cpu_times()[:2]) - before
    return 100 * used / (time.monotonic() - started)


async def _open_viewer(base: str, session, drains: list, pane: str) -> None:
    """A tab: the page, its ticketed websocket; returns once the viewer has drawn its first screen."""
    import aiohttp

    async with session.get(base + f"?pane={pane}") as answer:
        page = await answer.text()
    url = re.search(r'data-session-websocket-url="([^"]+)"', page)[1]
    ws = await session.ws_connect(url + "?width=160&height=50", max_msg_size=0)
    drawn = asyncio.Event()
    seen = bytearray()

    async def drain() -> None:
        async for message in ws:
            if not drawn.is_set() and message.type == aiohttp.WSMsgType.BINARY:
                seen.extend(message.data)
                if b"Topology" in seen and b"every 1 s" in seen:  # the tabs and the status bar: a whole screen
                    drawn.set()
                    seen.clear()
    drains.append((ws, asyncio.ensure_future(drain())))
    await asyncio.wait_for(drawn.wait(), FIRST_SCREEN)


def run_once(cpu_seconds: float, scale: str, steps: tuple[int, ...], panes: str = "topology") -> dict:
    port = _port()
    base = f"http://127.0.0.1:{port}/"
    flags = ["--demo", *(("--demo-scale", scale) if scale else ()), "--listen", f"127.0.0.1:{port}",
             "--max-viewers", str(max(steps))]
    process = subprocess.Popen([sys.executable, "-m", "overlaytui", "serve", *flags], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    serve = psutil.Process(process.pid)
    loop = asyncio.new_event_loop()
    drains: list = []
    session = None
    result: dict = {"steps": []}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.5)
        loop.run_until_complete(asyncio.sleep(SERVE_SETTLE[scale]))
        session = loop.run_until_complete(_session())
        alone = {**_memory(serve), "cpu_pct": _cpu(serve, cpu_seconds, loop)}
        result["alone"] = alone
        print(f"  serve alone: RSS {alone['rss_mb']:.0f} MB, USS {alone['uss_mb']:.0f} MB, "
              f"PSS {alone['pss_mb']:.0f} MB, CPU {alone['cpu_pct']:.1f} %", flush=True)
        for count in steps:
            opening = time.monotonic()
            while len(drains) < count:
                pane = PANES[len(drains) % len(PANES)] if panes == "mixed" else panes
                loop.run_until_complete(_open_viewer(base, session, drains, pane))
            opened_s = time.monotonic() - opening
            loop.run_until_complete(asyncio.sleep(SETTLE))
            step = {"viewers": count, **_memory(serve), "cpu_pct": _cpu(serve, cpu_seconds, loop),
                    "open_s": opened_s}
            step["per_viewer"] = {key: (step[key] - alone[key]) / count
                                  for key in ("rss_mb", "uss_mb", "pss_mb", "cpu_pct")}
            result["steps"].append(step)
            per = step["per_viewer"]
            print(f"  {count:2d} viewers: serve RSS {step['rss_mb']:.0f} MB USS {step['uss_mb']:.0f} MB CPU "
                  f"{step['cpu_pct']:.1f} %; per viewer RSS {per['rss_mb']:.1f} MB USS {per['uss_mb']:.1f} MB "
                  f"PSS {per['pss_mb']:.1f} MB CPU {per['cpu_pct']:.2f} % (opened in {opened_s:.1f} s)",
                  flush=True)
    finally:
        for ws, task in drains:
            task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(ws.close())
        if session is not None:
            with contextlib.suppress(Exception):
                loop.run_until_complete(session.close())
        loop.close()
        process.send_signal(signal.SIGTERM)
        try:
            result["exit"] = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            result["exit"] = "killed: no exit within 60 s of SIGTERM"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    return result


def _medians(runs: list[dict], steps: tuple[int, ...]) -> dict:
    done = [r for r in runs if len(r["steps"]) == len(steps)]
    summary: dict = {"runs": len(done), "alone": {k: statistics.median(r["alone"][k] for r in done)
                                                  for k in ("rss_mb", "uss_mb", "pss_mb", "cpu_pct")}}
    for index, count in enumerate(steps):
        rows = [r["steps"][index] for r in done]
        summary[str(count)] = {
            **{k: statistics.median(row[k] for row in rows) for k in ("rss_mb", "uss_mb", "pss_mb", "cpu_pct")},
            "per_viewer": {k: statistics.median(row["per_viewer"][k] for row in rows)
                           for k in ("rss_mb", "uss_mb", "pss_mb", "cpu_pct")}}
    if len(steps) >= 2:
        low, high = steps[-2], steps[-1]
        summary[f"per_viewer_{low}_to_{high}"] = {
            k: statistics.median((r["steps"][-1][k] - r["steps"][-2][k]) / (high - low) for r in done)
            for k in ("rss_mb", "uss_mb", "pss_mb", "cpu_pct")}
    return summary


def main(runs: int = 3, cpu_seconds: float = 20.0, scales: tuple[str, ...] = ("", SCALE),
         steps: tuple[int, ...] = STEPS, panes: tuple[str, ...] = ("topology", "mixed"),
         mixed_runs: int = 1) -> dict:
    results: dict = {"cpu_seconds": cpu_seconds, "steps": list(steps)}
    for pane in panes:
        for scale in scales:
            name = (f"demo_{scale.replace(',', '_')}" if scale else "demo_default") + \
                ("" if pane == "topology" else f"_{pane}_panes")
            print(f"{name}:", flush=True)
            measured = []
            for run in range(runs if pane == "topology" else mixed_runs):
                print(f" run {run + 1}", flush=True)
                measured.append(run_once(cpu_seconds, scale, steps, pane))
            results[name] = {"scale": scale or "5,8,26 (the default demo)", "panes": pane, "runs": measured,
                             "median": _medians(measured, steps)}
            print(f" median: {results[name]['median']}", flush=True)
    return results


async def _session():
    import aiohttp

    return aiohttp.ClientSession()


if __name__ == "__main__":
    main()
