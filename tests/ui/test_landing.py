"""The landing screen names the fault: for every demo scenario, at the smallest and a large terminal, the first
screen (Topology, no key pressed) says what is wrong and where within 10 s of the fault (healthy: that it is
healthy and what was checked); the tabs carry badges, the Loss pane opens on the worst overlay."""

from __future__ import annotations

import pytest

from overlaytui.panes.health import HealthLine
from overlaytui.sources.demo import NODE_DOWN_AFTER, SCENARIOS, DemoSource
from tests.ui.helpers import Clock, feed, make_app, screen_text

FAULTS = {  # scenario -> what the health line must say (the kind of fault with its subject)
    "healthy": ["✔ healthy", "checked 5 nodes, 8 services"],
    "loss": ["✖ loss node4 ~2.0 %"],
    "mtu": ["✖ MTU black hole node3", "fits 1350"],
    "node-down": ["✖ node5 is down"],
    "rolling-update": ["⚠ api updating"],
    "bad-node": ["✖ loss node3", "✖ MTU black hole node3"],
}
assert NODE_DOWN_AFTER < 10  # node-down's node falls soon enough for its first screen too


def test_every_scenario_has_its_expectation():
    assert set(FAULTS) == set(SCENARIOS)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_the_first_screen_names_the_fault(scenario, size):
    clock = Clock()
    app = make_app(scenario, clock=clock)
    async with app.run_test(size=size) as pilot:
        await feed(app, pilot, clock, seconds=10, poll=True)  # within 10 s of the start, every scenario
        assert app.query_one("#tabs").active == "topology"  # the first screen: no key pressed
        lines = screen_text(app).splitlines()
        health = lines[1]  # under the header, whatever pane is shown
        for words in FAULTS[scenario]:
            assert words in health, (scenario, size, health)
        if scenario == "healthy":
            assert "✖" not in health and "⚠" not in health


async def test_the_health_line_stays_on_every_pane():
    clock = Clock()
    app = make_app("loss", clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, pilot, clock, seconds=3)
        for key in "1234567":
            await pilot.press(key)
            await pilot.pause()
            assert "✖ loss node4" in screen_text(app).splitlines()[1], key


@pytest.mark.parametrize(("scenario", "tab", "badge"), [
    ("loss", "loss", "✖1"), ("mtu", "loss", "✖1"), ("bad-node", "loss", "✖2"), ("bad-node", "findings", "✖2"),
    ("rolling-update", "placement", "⚠1")])
async def test_the_tabs_carry_badges(scenario, tab, badge):
    clock = Clock()
    app = make_app(scenario, clock=clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await feed(app, pilot, clock, seconds=5, poll=True)
        tabs = app.query_one("#tabs")
        assert str(tabs.get_tab(tab).label).endswith(badge)
        assert str(tabs.get_tab("netio").label) == "3 NetIO"  # no problem there: no badge
        assert badge in screen_text(app).splitlines()[2]


async def test_the_tabs_have_short_names_and_their_badges_at_80_columns():
    clock = Clock()
    app = make_app("bad-node", clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, pilot, clock, seconds=3)
        tabs_line = screen_text(app).splitlines()[2]
        for label in ("1 Topo", "2 Place", "4 Loss ✖2", "6 Findings ✖2", "7 Time"):
            assert label in tabs_line


async def test_topology_marks_what_findings_name():
    clock = Clock()
    app = make_app("loss", clock=clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await feed(app, pilot, clock, seconds=3)
        text = screen_text(app)
        assert "✖ node4" in text and "✖ node3" not in text
        assert "✖ backend" in text and "✖ frontend" in text  # node4's loss is on every overlay


@pytest.mark.parametrize(("scenario", "overlay"), [("mtu", "frontend"), ("healthy", "backend")])
async def test_the_loss_pane_opens_on_the_worst_overlay(scenario, overlay):
    clock = Clock()
    app = make_app(scenario, clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, pilot, clock, seconds=3)
        await pilot.press("4")
        await pilot.pause()
        pane = app.query_one("#pane-loss")
        assert pane.network == overlay
        assert str(pane.query_one("#loss-networks").active_tab.label) == overlay
        if scenario == "mtu":
            assert "MTU!1350" in screen_text(app)
        await pilot.press("o")  # the next overlay, and back
        await pilot.pause()
        assert pane.network != overlay
        await pilot.press("O")
        await pilot.pause()
        assert pane.network == overlay


async def test_a_rolling_update_is_on_the_timeline_and_in_the_task_history():
    clock = Clock()
    app = make_app("rolling-update", clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, pilot, clock, seconds=10, poll=True)
        texts = [m.text for m in app.timeline]
        assert "api: −1 node3 (3 → 2 running)" in texts and "api: +1 node3 (2 → 3 running)" in texts
        await pilot.press("7")
        await pilot.pause()
        assert "api: −1 node3" in screen_text(app)
        app.open_detail("service", "api")
        await pilot.pause()
        assert "shutdown" in screen_text(app)  # the replaced task, as `docker service ps` keeps it


async def test_the_first_screen_names_the_bad_node_among_200_at_80x24():
    """`make demo SCENARIO=bad-node` (200 nodes, 300 services, 5000 tasks): node133 named on the first screen."""
    clock = Clock()
    source = DemoSource("bad-node", seed=7, clock=clock, scale=(200, 300, 5000))
    app = make_app(source=source, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, pilot, clock, seconds=3)
        health = screen_text(app).splitlines()[1]
        assert health.startswith(" ✖ loss node133") and "MTU black hole node133" in health


async def test_probing_that_failed_is_named_first_and_the_line_waits_for_data():
    clock = Clock()
    app = make_app("loss", clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.query_one(HealthLine).show(None)  # what it says before the first frame
        await pilot.pause()
        assert "waiting for the first data" in screen_text(app).splitlines()[1]
        app.producer.probe_problem = "no manager reachable"
        await feed(app, pilot, clock, seconds=1)
        health = screen_text(app).splitlines()[1]
        assert health.startswith(" ✖ cannot probe: no manager reachable (P retries) · ✖ loss node4")
