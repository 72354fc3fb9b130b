"""Shared by the benchmarks: the lab, medians, reports."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from overlaytui.lab import lab
from overlaytui.lab.host import missing_requirements


def ensure_lab(nodes: int = 3):
    """The running lab's node layouts; brings a lab up if none runs (root needed)."""
    problem = missing_requirements()
    if problem:
        raise SystemExit(f"bench: {problem}")
    state, _ = lab.up(nodes, 1, log=lambda _m: None)
    return state.layouts


def median_of(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(what: str, ours: float, baselines: dict[str, float]) -> None:
    parts = ", ".join(f"{name} {value:.3f} s (ratio {ours / value:.2f})" for name, value in baselines.items())
    print(f"{what}: overlaytui {ours:.3f} s vs {parts}")


def feed_and_draw(app, now: list[float], seconds: int):
    """Give the app `seconds` frames of history (handled directly: posted ones would collapse), and return a
    function that lays out and renders the whole screen as Textual's compositor does (without Pilot's waits)."""
    from overlaytui.app import FrameReady

    for _ in range(seconds):
        now[0] += 1
        app.on_frame_ready(FrameReady(app.build_frame()))

    def draw() -> None:
        app.screen._refresh_layout(app.size)
        app.screen._compositor.render_update(full=True)
    return draw
