"""Pilot tests: the presenter's faults (`f` and the palette) on the node, overlay or pair under the cursor, shown
in the health line and the Loss pane from the next probe round, and cleared."""

from __future__ import annotations

from textual.widgets import DataTable, Input, OptionList

from overlaytui.app import FrameReady
from overlaytui.model import Fault
from overlaytui.panes.common import Selection
from overlaytui.panes.faults import FaultScreen
from overlaytui.sources.demo import PROBE_ROUND, RECENT_WINDOW, DemoSource
from tests.ui.helpers import Clock, MarkupNamedSource, feed, make_app, screen_text, wait_until

SIZE = (120, 36)


def demo_app(scenario: str = "healthy", **kwargs):
    clock = Clock()
    source = DemoSource(scenario, seed=7, clock=clock)
    return make_app(clock=clock, source=source, faults=source.faults, **kwargs), clock


def round_losses(app, network: str) -> dict[tuple[str, str], int]:
    """The pairs that lost packets in the last round, and how many."""
    windows = app.frame.probes.windows_of(network)
    return {pair: w.round_sent - w.round_received for pair, w in windows.items() if w.round_received < w.round_sent}


def on_node3(app) -> None:
    """The Topology cursor on node3's column."""
    table = app.query_one("#topology-table", DataTable)
    column = next(i for i, key in enumerate(table.columns) if str(key.value).endswith(app.snapshot.nodes[2].id))
    table.cursor_coordinate = table.cursor_coordinate._replace(column=column)


async def pick(pilot, app, label_start: str, loss: str | None = None) -> None:
    """In the fault picker: the rate typed, then the first option whose label starts so."""
    screen = app.screen
    assert isinstance(screen, FaultScreen)
    if loss is not None:
        screen.query_one("#fault-loss", Input).value = loss
    options = screen.query_one(OptionList)
    labels = [c.label() for c in screen.options]
    index = next((i for i, label in enumerate(labels) if label.startswith(label_start)), None)
    assert index is not None, labels
    options.highlighted = index
    await pilot.press("enter")
    await pilot.pause()


async def test_f_injects_loss_on_the_node_under_the_cursor_shown_within_one_round_then_cleared():
    app, clock = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2, poll=True)
        on_node3(app)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FaultScreen) and app.screen.where == "node3"
        await pick(pilot, app, "loss … % on node3", loss="10")
        assert not isinstance(app.screen, FaultScreen)
        await pilot.pause()
        assert round_losses(app, "frontend") == {}  # the round already measured keeps what it measured
        await feed(app, pilot, clock, seconds=int(PROBE_ROUND), poll=True)  # one probe round later
        lost = round_losses(app, "frontend")
        assert lost and all("node3" in pair for pair in lost), lost
        assert 40 <= sum(lost.values()) <= 130, lost  # 8 pairs x 100 packets at 10 %: 80 +- 8.5 (binomial)
        assert "loss node3" in screen_text(app).splitlines()[1]
        await pilot.press("4")  # the Loss pane shows the pairs through node3
        await pilot.pause()
        assert "node3" in screen_text(app)
        await pilot.press("1")
        on_node3(app)
        await pilot.press("f")
        await pilot.pause()
        await pick(pilot, app, "clear faults on node3")
        await feed(app, pilot, clock, seconds=int(PROBE_ROUND), poll=True)
        assert round_losses(app, "frontend") == {}  # the next round loses nothing
        clock.now += RECENT_WINDOW  # and once the recent window has passed, the health line is healthy again
        app.on_frame_ready(FrameReady(app.build_frame()))
        await pilot.pause()
        assert screen_text(app).splitlines()[1].startswith(" ✔ healthy")


async def test_the_palette_injects_loss_on_the_pair_under_the_loss_panes_cursor():
    app, clock = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2, poll=True)
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one("#loss-table", DataTable)
        overlay = app.query_one("LossPane").network
        table.cursor_coordinate = table.cursor_coordinate._replace(row=0, column=2)  # node1 -> node2
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"fault loss node2")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        for _ in range(3):  # three rounds: 2 % of 300 packets
            await feed(app, pilot, clock, seconds=int(PROBE_ROUND), poll=True)
        windows = app.frame.probes.windows_of(overlay)
        lossy = {pair for pair, w in windows.items() if w.recent_received < w.recent_sent}
        assert lossy == {("node1", "node2")}, lossy  # that pair only, one way
        assert all(w.recent_received == w.recent_sent for w in app.frame.probes.windows_of(
            "frontend" if overlay != "frontend" else "backend").values())


async def test_node_down_from_the_picker_takes_the_node_down_and_clearing_brings_it_back():
    app, clock = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2, poll=True)
        await pilot.press("5")  # Networks: the overlay under the cursor; the node from the selection
        await pilot.pause()
        node = app.snapshot.nodes[1]
        app._select(Selection("node", node.id, node.hostname))  # as enter on node2 in Topology or Loss does
        await pilot.press("f")
        await pilot.pause()
        await pick(pilot, app, "node-down on node2")
        await feed(app, pilot, clock, seconds=2, poll=True)
        assert app.snapshot.nodes_by_id[node.id].state == "down"
        assert "node2" in screen_text(app).splitlines()[1]
        await pilot.press("f")
        await pilot.pause()
        await pick(pilot, app, "clear faults on node2")
        await feed(app, pilot, clock, seconds=2, poll=True)
        assert app.snapshot.nodes_by_id[node.id].state == "ready"


async def test_no_faults_no_key():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.check_action("fault", ()) is False
        await pilot.press("f")
        await pilot.pause()
        assert not isinstance(app.screen, FaultScreen)


async def test_the_tour_walks_the_panes_plays_a_fault_and_any_key_stops_it():
    app, clock = demo_app(tour=True)
    app.tour_pace = 0.05  # a step's seconds, shortened
    seen: list[str] = []
    show_tab = app.action_show_tab
    app.action_show_tab = lambda tab: (seen.append(tab), show_tab(tab))[-1]  # what the tour shows, step by step
    async with app.run_test(size=SIZE) as pilot:
        caption = app.query_one("#caption")
        captions: list[str] = []  # every caption shown (a step lasts 0.05 s: a loaded machine can be past it)
        update = caption.update
        caption.update = lambda content: (captions.append(str(content)), update(content))[-1]
        await wait_until(pilot, lambda: app._tour_fault is not None
                         and any("arriving at node2 are dropped" in text for text in captions),
                         "the tour's fault injected and said")
        assert app._tour_fault is not None and app._tour_fault.node == "node2"
        assert any("arriving at node2 are dropped" in text for text in captions), captions
        assert caption.display and seen[:4] == ["topology", "placement", "netio", "loss"]
        await feed(app, pilot, clock, seconds=int(PROBE_ROUND), poll=True)
        assert round_losses(app, "frontend") and all("node2" in p for p in round_losses(app, "frontend"))
        await pilot.press("x")  # any key
        await pilot.pause()
        assert not caption.display and not app.tour
        await feed(app, pilot, clock, seconds=int(PROBE_ROUND), poll=True)
        assert round_losses(app, "frontend") == {}  # the tour's fault cleared as it stopped
        tab = app.query_one("#tabs").active
        await pilot.pause(0.3)
        assert app.query_one("#tabs").active == tab  # it walks no more


async def test_the_picker_and_the_palette_show_a_hostile_name_as_text():
    clock = Clock()
    source = MarkupNamedSource("healthy", seed=7, clock=clock)
    app = make_app(clock=clock, source=source, faults=source.faults)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2, poll=True)
        table = app.query_one("#topology-table", DataTable)
        column = next(i for i, key in enumerate(table.columns) if str(key.value).endswith(app.snapshot.nodes[0].id))
        table.cursor_coordinate = table.cursor_coordinate._replace(column=column)
        await pilot.press("f")
        await pilot.pause()
        assert "Fault: [red]n1" in screen_text(app) and "loss … % on [red]n1" in screen_text(app)
        await pick(pilot, app, "node-down on [red]n1")  # the demo has no such node: said, nothing breaks
        await app.workers.wait_for_complete()
        assert "no node [red]n1" in " ".join(str(n.message) for n in app._notifications)


def test_the_choices_are_what_the_cluster_offers_for_the_targets():
    from overlaytui.lab.faults import LAB_FAULTS
    from overlaytui.panes.faults import choices

    targets = [Fault("", node="node1", peer="node2", network="frontend"), Fault("", node="node1"),
               Fault("", network="frontend")]
    lab = [(c.action, c.fault.kind, c.fault.target) for c in choices(LAB_FAULTS, targets)]
    assert lab == [("inject", "loss", "node"), ("inject", "mtu", "node"), ("inject", "partition", "node"),
                   ("inject", "engine-down", "node"), ("clear", "", "node"), ("clear", "", "")]
    demo = choices(DemoSource("healthy").faults.offers, targets)
    assert [c.label() for c in demo][:2] == ["loss … % on node1 → node2 on frontend",
                                             "MTU black hole (… bytes) on node1 → node2 on frontend"]
    assert [c.label() for c in demo][-4:] == ["clear faults on node1 → node2 on frontend", "clear faults on node1",
                                              "clear faults on overlay frontend", "clear every fault"]


async def test_the_tour_clears_its_fault_when_the_app_ends_mid_tour():
    """A tab closed, serve stopping or SIGTERM ends the app without a key reaching the tour: its fault must not
    stay injected in the cluster every other viewer (or the lab) shows."""
    app, _clock = demo_app(tour=True)
    app.tour_pace = 0.05
    source = app.faults.source

    def in_force() -> list[Fault]:
        return [fault for _since, until, fault in source._faults if until is None]

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._tour_fault is not None and in_force(), "the tour's fault injected")
        assert [f.node for f in in_force()] == ["node2"]
        app.exit()  # no key: the app ends as a closed tab's or a terminated one's does
    assert in_force() == []
