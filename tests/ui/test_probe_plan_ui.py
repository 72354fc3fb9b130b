"""The probe plan in the dashboard (issue 26): a large cluster's rotating coverage is said as such in the Loss
legend and the checked line ("N this round, M of T pairs in the last K rounds"), and the node picked in the Loss
pane becomes the probe plan's focus (its pairs first in every round); escape clears it."""

from __future__ import annotations

from dataclasses import replace

from overlaytui.model import Coverage, PairGap
from overlaytui.sources.demo import DemoSource
from tests.ui.helpers import Clock, make_app
from tests.ui.test_loss_overview import LARGE, SIZE, on_the_loss_pane, settle


class RotatingDemo(DemoSource):
    """The 200-node demo, its ping coverage as a rotating plan reports it: 597 pairs this round, a part of the
    others not measured in the last 67 rounds."""

    def probes(self):
        data = super().probes()
        if data is None:
            return None
        coverage = []
        for c in data.coverage:
            if c.kind == "ping":
                gaps = tuple(PairGap("node1", f"node{i}", "not probed yet: each pair is probed once every 67 rounds")
                             for i in range(2, 12))
                c = replace(c, measured=c.expected - len(gaps), missing=c.missing + gaps, every=67, this_round=597)
            coverage.append(c)
        return replace(data, coverage=tuple(coverage))


async def test_a_rotating_plan_is_said_in_the_legend_and_the_checked_line():
    clock = Clock()
    app = make_app("bad-node", clock=clock, source=RotatingDemo("bad-node", seed=7, clock=clock, scale=LARGE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        legend = str(app.query_one("#loss-legend").render())
        [ping] = [c for c in app.frame.probes.coverage_of("backend") if c.kind == "ping"]
        assert isinstance(ping, Coverage) and ping.rotating
        assert (f"ping 597 this round, {ping.measured} of {ping.expected} pairs in the last 67 rounds (each pair "
                "every 67 rounds)") in " ".join(legend.split())
        assert "PARTIAL" in legend
        assert "in the last 67 rounds (each pair every 67 rounds)" in app.frame.checked()


async def test_the_picked_node_is_the_probe_plans_focus_until_escape():
    async with on_the_loss_pane() as (app, pilot):
        assert app.producer.probe_focus is None
        await pilot.press("enter")  # the cursor is on the first row: node133
        await settle(app, pilot)
        assert app.selection is not None and app.selection.label == "node133"
        assert app.producer.probe_focus == "node133"
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.producer.probe_focus is None
