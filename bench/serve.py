"""`overlaytui serve`'s cost per viewer: the real `overlaytui serve --demo --demo-scale 200,300,5000` with 1, 5 and
20 viewers open (each a websocket as the page opens it: the page's ticket, a 160x50 terminal, its output read and
dropped — a browser would draw it; the viewer process does the same work either way).

    .venv/bin/python -m bench serve

Per step: the memory of the serve process (RSS, USS) and of each viewer process, and CPU while idle (no key
pressed; frames every second) over --cpu-seconds (default 30 here), in % of one core, measured with psutil.
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
SETTLE = 60.0  # seconds a viewer is given to start at 200 nodes (its first keyframe decoded, first render)


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _viewers(serve: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in serve.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "overlaytui.viewer" in " ".join(child.cmdline()):
                found.append(child)
    return found


def _memory(process: psutil.Process) -> tuple[float, float]:
    info = process.memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


def _cpu(processes: list[psutil.Process], seconds: float, loop: asyncio.AbstractEventLoop) -> list[float]:
    """% of one core each process used over `seconds` (the viewers' output read meanwhile, as a browser would)."""
    before = [sum(p.cpu_times()[:2]) for p in processes]
    _settle(loop, seconds)
    after = [sum(p.cpu_times()[:2]) for p in processes]
    return [100 * (b - a) / seconds for a, b in zip(before, after, strict=True)]


async def _open_viewer(base: str, sockets: list, session) -> None:
    async with session.get(base) as answer:
        page = await answer.text()
    url = re.search(r'data-session-websocket-url="([^"]+)"', page)[1]
    ws = await session.ws_connect(url + "?width=160&height=50", max_msg_size=0)
    sockets.append(ws)

    async def drain() -> None:
        async for _message in ws:
            pass
    sockets.append(asyncio.ensure_future(drain()))


def main(runs: int = 1, cpu_seconds: float = 30.0, scale: str = SCALE, steps: tuple[int, ...] = STEPS) -> dict:
    port = _port()
    base = f"http://127.0.0.1:{port}/"
    flags = ["--demo", *(("--demo-scale", scale) if scale else ()), "--listen", f"127.0.0.1:{port}",
             "--max-viewers", str(max(steps))]
    process = subprocess.Popen([sys.executable, "-m", "overlaytui", "serve", *flags], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    serve = psutil.Process(process.pid)
    results: dict = {"scale": scale or "5,8,26 (the default demo)", "cpu_seconds": cpu_seconds, "steps": []}
    loop = asyncio.new_event_loop()
    sockets: list = []
    session = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.5)
        settle = SETTLE if scale else 5.0
        time.sleep(settle / 2)  # the serve's first frame before the first viewer
        session = loop.run_until_complete(_session())
        serve_alone = _memory(serve)
        serve_cpu_alone = _cpu([serve], cpu_seconds, loop)[0]
        results["serve_alone"] = {"rss_mb": serve_alone[0], "uss_mb": serve_alone[1], "cpu_pct": serve_cpu_alone}
        print(f"serve alone: RSS {serve_alone[0]:.0f} MB, USS {serve_alone[1]:.0f} MB, CPU {serve_cpu_alone:.1f} %")
        for count in steps:
            while len(_viewers(serve)) < count:  # one at a time: each decodes its first keyframe alone
                loop.run_until_complete(_open_viewer(base, sockets, session))
                _settle(loop, settle)
            viewers = _viewers(serve)
            memory = [_memory(v) for v in viewers]
            cpu = _cpu([serve, *viewers], cpu_seconds, loop)
            step = {"viewers": len(viewers), "serve_rss_mb": _memory(serve)[0], "serve_cpu_pct": cpu[0],
                    "viewer_rss_mb": statistics.median(m[0] for m in memory),
                    "viewer_uss_mb": statistics.median(m[1] for m in memory),
                    "viewer_cpu_pct": statistics.median(cpu[1:]), "total_cpu_pct": sum(cpu),
                    "total_uss_mb": _memory(serve)[1] + sum(m[1] for m in memory)}
            results["steps"].append(step)
            print(f"{len(viewers):2d} viewers: serve RSS {step['serve_rss_mb']:.0f} MB CPU {cpu[0]:.1f} %; per "
                  f"viewer RSS {step['viewer_rss_mb']:.0f} MB USS {step['viewer_uss_mb']:.0f} MB CPU "
                  f"{step['viewer_cpu_pct']:.1f} % (median); all: {step['total_cpu_pct']:.0f} % CPU, "
                  f"{step['total_uss_mb']:.0f} MB USS")
    finally:
        for item in sockets:
            if isinstance(item, asyncio.Future):
                item.cancel()
        if session is not None:
            with contextlib.suppress(Exception):
                loop.run_until_complete(session.close())
        loop.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    return results


async def _session():
    import aiohttp

    return aiohttp.ClientSession()


def _settle(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    """Let the viewers' output flow (the drains run on this loop) while they start."""
    loop.run_until_complete(asyncio.sleep(seconds))


if __name__ == "__main__":
    main()
