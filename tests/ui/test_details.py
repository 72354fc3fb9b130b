"""Details: names in natural order in the detail screens, a filter that matches nothing says so, the Loss
pane's cursor line says "no loss" for zero loss, counts in the singular when there is one."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from overlaytui.model import natural_key
from overlaytui.sources.demo import DemoSource
from tests.ui.helpers import Clock, feed, make_app, screen_text

SIZE = (160, 50)


class ShuffledPeersSource(DemoSource):
    """The demo cluster with each node's peers in the order an engine may give them (not sorted)."""

    def snapshot(self):
        snap = super().snapshot()
        networks = tuple(replace(net, views=tuple(replace(v, peers=v.peers[2:] + v.peers[:2][::-1])
                                                  for v in net.views)) for net in snap.networks)
        return replace(snap, networks=networks)


def name_runs(text: str) -> list[list[str]]:
    """Every comma-separated run of node names on the screen."""
    return [run.split(", ") for run in re.findall(r"node\d+(?:, node\d+)+", text)]


@pytest.mark.parametrize("kind", ["network", "node"])
async def test_detail_screens_list_peers_in_natural_order(kind):
    clock = Clock()
    source = ShuffledPeersSource("healthy", seed=7, clock=clock)
    app = make_app(source=source, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2)
        shuffled = [p.name for p in app.snapshot.network("backend").views[0].peers]
        assert shuffled != sorted(shuffled, key=natural_key)  # the source's order is not natural
        key = "backend" if kind == "network" else app.snapshot.nodes[0].id
        app.open_detail(kind, key)
        await pilot.pause()
        runs = name_runs(screen_text(app))
        assert any(len(run) >= 4 for run in runs)
        for run in runs:
            assert run == sorted(run, key=natural_key), run


async def test_a_filter_that_matches_nothing_says_so():
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2)
        notice = app.query_one("#no-match")
        await pilot.press("2", "slash", *"zzz", "enter")
        await pilot.pause()
        assert notice.display and "Nothing in Placement matches zzz: esc clears the filter" in screen_text(app)
        await pilot.press("5")
        await pilot.pause()
        assert notice.display and "Nothing in Networks matches zzz" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not notice.display
        await pilot.press("slash", *"backend", "enter")  # matches: no notice
        await pilot.pause()
        assert not notice.display


async def test_the_loss_cursor_line_says_no_loss_for_zero_loss():
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2)
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("right", "right")  # node1 -> node2
        await pilot.pause()
        line = str(app.query_one("#loss-detail").render())
        assert "node1 → node2" in line and "no loss in 100 packets" in line
        assert "0.000 %" not in line


async def test_one_of_a_kind_is_singular():
    clock = Clock()
    app = make_app(clock=clock, source=DemoSource("healthy", seed=7, clock=clock, scale=(1, 1, 1)))
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2)
        text = screen_text(app)
        assert "1/1 node ready" in text and "1 service " in text
        assert "1 nodes" not in text and "1 services" not in text
