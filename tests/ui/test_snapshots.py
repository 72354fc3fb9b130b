"""Snapshot tests of every pane on the demo cluster at a fixed size, seed and clock (pytest-textual-snapshot).

Update after an intended change: `.venv/bin/pytest tests/ui/test_snapshots.py --snapshot-update`, then look at
the report of what changed before committing.
"""

from __future__ import annotations

import time

import pytest

from overlaytui.panes.loss import LossPane
from overlaytui.sources.demo import DemoSource
from tests.ui.helpers import Clock, feed, make_app


def snapshot_app(scenario: str = "healthy", theme: str | None = None, history: int = 30, advance: int = 0):
    clock = Clock()
    app = make_app(scenario, clock=clock, theme=theme)

    async def run_before(pilot) -> None:
        clock.now += advance
        if advance:
            await app.source.poll()
        await feed(app, pilot, clock, seconds=history)

    return app, run_before


@pytest.mark.parametrize("key", ["1", "2", "3", "4", "5"])
def test_each_pane(snap_compare, key):
    app, run_before = snapshot_app()
    assert snap_compare(app, press=[key], terminal_size=(120, 36), run_before=run_before)


@pytest.mark.parametrize("theme", ["overlaytui-light", "overlaytui-high-contrast"])
def test_themes(snap_compare, theme):
    app, run_before = snapshot_app(theme=theme)
    assert snap_compare(app, press=["2"], terminal_size=(120, 36), run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (250, 70)])
def test_smallest_and_largest_screens(snap_compare, size):
    app, run_before = snapshot_app()
    assert snap_compare(app, press=["1"], terminal_size=size, run_before=run_before)


def test_loss_scenario(snap_compare):
    app, run_before = snapshot_app("loss")
    assert snap_compare(app, press=["4"], terminal_size=(120, 36), run_before=run_before)


def test_node_down_placement(snap_compare):
    app, run_before = snapshot_app("node-down", advance=25)
    assert snap_compare(app, press=["2"], terminal_size=(120, 36), run_before=run_before)


def test_loss_overview_at_200_nodes(snap_compare):
    """One bad node among 200 (the bad-node scenario): the heat map's red row and column, node133 first."""
    clock = Clock()
    app = make_app("bad-node", clock=clock, source=DemoSource("bad-node", seed=7, clock=clock,
                                                              scale=(200, 300, 5000)))

    async def run_before(pilot) -> None:
        await feed(app, pilot, clock, seconds=2)
        await pilot.press("4")
        pane = app.query_one(LossPane)
        deadline = time.monotonic() + 120  # the overview is judged in a thread: ~0.4 s alone, far more on a loaded CI
        while True:  # until the overview shown is the last frame's, for the overlay shown, at the pane's width
            await app.workers.wait_for_complete()
            await pilot.pause()
            cached = pane._overview_cache  # (its inputs, the overview, the index): judged while hidden, too
            if cached is not None and cached[0][0] is app.frame.probes.recent.get(pane.network) \
                    and cached[0][6] == pane._heat_columns() and pane.shown_overview is not None \
                    and pane.shown_overview[0] is cached[1]:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the Loss overview shown is not the last frame's after 120 s (network "
                            f"{pane.network!r}, width {pane._heat_columns()}, cached "
                            f"{cached is not None}, shown {pane.shown_overview is not None})")
            await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=(160, 50), run_before=run_before)
