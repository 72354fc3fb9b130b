"""The Loss pane at 200 nodes (the demo's bad-node scenario: node133 loses 1 % and is an MTU black hole): heat
map, nodes worst first, picking a node; natural order in the other panes; the matrix stays at 5 nodes."""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager

import pytest
from textual.widgets import DataTable

from overlaytui.panes.common import palette_of
from overlaytui.panes.loss import WORST_PAIRS, LossPane
from overlaytui.sources.demo import DemoSource
from tests.ui.helpers import Clock, feed, make_app, wait_until

SIZE = (160, 50)
LARGE = (200, 300, 5000)


def large_app(scenario: str = "bad-node"):
    clock = Clock()
    return make_app(scenario, clock=clock, source=DemoSource(scenario, seed=7, clock=clock, scale=LARGE)), clock


async def settle(app, pilot) -> None:
    """Frames and the overview are computed off the UI loop: wait for the frame (its worker, then its message),
    then for the overview it starts (its thread worker, then its result's message)."""
    for _ in range(2):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()


@asynccontextmanager
async def on_the_loss_pane(scenario: str = "bad-node"):
    app, _clock = large_app(scenario)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        yield app, pilot


def cells(table: DataTable, index: int) -> list[str]:
    return [str(c) for c in table.get_row_at(index)]


def visible_rows(table: DataTable) -> list[list[str]]:
    return [cells(table, i) for i in range(min(table.row_count, table.size.height - 1))]


async def test_the_faulty_node_leads_the_overview_at_200_nodes():
    async with on_the_loss_pane() as (app, pilot):
        pane = app.query_one(LossPane)
        assert pane.network == "backend"
        table = app.query_one("#loss-table", DataTable)
        top = visible_rows(table)
        assert top[0][0] == "node133" and "✖" in top[0][1] and "398/398" in top[0][3]
        assert len(top) > 10 and all("node133" in row[1] for row in top[1:])  # everyone's worst pair: node133
        assert table.row_count == 200 + 1 + WORST_PAIRS + 1 + 200 + 1  # nodes, worst pairs, the rest, "more"
        names = [cells(table, i)[0] for i in range(200)]
        rest = pane.shown_overview[0].nodes[1:]  # then the others, the worst loss (their pair with node133) first
        assert names[1:6] == [n.node for n in rest[:5]] and "node133" not in names[1:]
        assert [n.worst_loss for n in rest] == sorted((n.worst_loss for n in rest), reverse=True)
        detail = str(app.query_one("#loss-detail").render())
        assert detail.startswith("node133 · sends its worst") and "398 bad" in detail
        heat = str(app.query_one("#loss-heat").render())
        assert "node131" in heat and "bad or MTU hole" in heat and "the worst of 13×2 pairs" in heat
        legend = str(app.query_one("#loss-legend").render()).replace("\n", " ")
        assert "rows: the recent window's loss" in legend


async def test_the_heat_map_paints_the_faulty_nodes_row_and_column():
    async with on_the_loss_pane() as (app, pilot):
        pane = app.query_one(LossPane)
        found, _view, indexed, _windows, _mtu = pane.shown_overview
        colors = palette_of(pane)
        heat = pane._heat(found.grid, list(found.hosts), colors)
        assert str(app.query_one("#loss-heat").render()) == heat.plain  # what is on screen
        lines = heat.plain.split("\n")
        assert len(lines) == 1 + 8 + 1  # axis, eight lines of two cell rows, legend
        width = len(found.grid.cells[0])
        offsets = [sum(len(line) + 1 for line in lines[:i]) + len(lines[i]) - width for i in range(1, 9)]

        def style_at(position: int) -> str:
            return " ".join(str(span.style) for span in heat.spans if span.start <= position < span.end)

        bad, good = colors.heat(4), colors.heat(0)
        row_line = (133 - 1) // found.grid.row_size // 2  # node133's row group, in the upper half of this line
        column = (133 - 1) // found.grid.col_size
        for i, start in enumerate(offsets):
            for c in range(width):
                style = style_at(start + c)
                upper = style.split(" on ")[0]
                if i == row_line or c == column:
                    assert upper.endswith(bad), (i, c, style)
                else:
                    assert upper.endswith(good) and style.endswith(good), (i, c, style)


async def test_enter_on_a_node_keeps_its_pairs_and_escape_brings_all_back():
    async with on_the_loss_pane() as (app, pilot):
        table = app.query_one("#loss-table", DataTable)
        await pilot.press("enter")  # the cursor is on the first row: node133
        await settle(app, pilot)
        assert app.selection is not None and app.selection.label == "node133"
        assert cells(table, 0)[0] == "node133" and cells(table, 1)[0] == "pairs of node133, worst first (199)"
        assert table.row_count == 2 + 199
        assert all(cells(table, i)[0].startswith("node133 ⇄ ") for i in range(2, 201))
        await pilot.press("down", "down")
        detail = str(app.query_one("#loss-detail").render())
        assert detail.startswith("node133 → ") and "|" in detail and "BLACK HOLE" not in detail  # backend: 1400
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.selection is None and table.row_count > 400


async def test_a_black_hole_shows_on_the_overlay_it_cuts():
    async with on_the_loss_pane() as (app, pilot):
        pane = app.query_one(LossPane)
        pane.network = "frontend"
        pane.show(app.view())
        await settle(app, pilot)
        table = app.query_one("#loss-table", DataTable)
        first = cells(table, 0)
        assert first[0] == "node133" and first[4] == "1350 < 1450 on 398 pairs"
        assert cells(table, 1)[4] == "1350 < 1450 on 2 pairs"


async def test_a_healthy_large_cluster_lists_nodes_in_natural_order():
    async with on_the_loss_pane("healthy") as (app, pilot):
        table = app.query_one("#loss-table", DataTable)
        assert [cells(table, i)[0] for i in range(4)] == ["node1", "node2", "node3", "node4"]
        pairs = [cells(table, i)[0] for i in range(201, 205)]
        assert pairs == ["node1 ⇄ node2", "node1 ⇄ node3", "node1 ⇄ node4", "node1 ⇄ node5"]


async def test_the_matrix_stays_the_default_while_nodes_fit():
    clock = Clock()
    app = make_app("bad-node", clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one("#loss-table", DataTable)
        assert not app.query_one("#loss-heat").display and table.cursor_type == "cell"
        assert [str(c.key.value) for c in table.ordered_columns][1:] == [f"dst:node{i}" for i in range(1, 6)]
        assert "✖" in str(table.get_row("node1")[3])  # node3 of 5 is the bad node


async def test_natural_order_in_the_panes_and_the_palette():
    clock = Clock()
    app = make_app("healthy", clock=clock, source=DemoSource("healthy", seed=7, clock=clock, scale=(12, 20, 60)))
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, pilot, clock, 2)
        await pilot.press("2")
        await pilot.pause()
        placement = app.query_one("#pane-placement DataTable", DataTable)
        headers = [str(c.label) for c in placement.ordered_columns]
        nodes = [h for h in headers if h.startswith("node")]
        assert nodes == [f"node{i}" for i in range(1, 13)]
        services = [str(key.value) for key in placement.rows]
        assert services.index("svc-009") < services.index("svc-010") < services.index("svc-020")


async def test_just_beyond_the_matrix_limit_the_overview_takes_over():
    """35 nodes: few enough results to index on the UI loop, too many nodes for a matrix."""
    clock = Clock()
    source = DemoSource("bad-node", seed=7, clock=clock, scale=(35, 20, 200))
    app = make_app("bad-node", clock=clock, source=source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        table = app.query_one("#loss-table", DataTable)
        assert app.query_one("#loss-heat").display and table.cursor_type == "row"
        assert cells(table, 0)[0] == source.bad_node == "node23"
        assert table.row_count == 35 + 1 + WORST_PAIRS + 1 + 200 + 1  # 595 pairs: 250 shown, then "… 345 more"
        assert cells(table, table.row_count - 1)[0] == "… 345 more pairs"


async def test_the_first_visit_shows_the_pairs_judged_while_the_pane_was_hidden():
    """Beyond the matrix the pairs are judged in a worker: the first results are judged while the pane is hidden,
    so its first visit shows the overview at once, never an empty table (issue 26)."""
    clock = Clock()
    source = DemoSource("bad-node", seed=7, clock=clock, scale=(35, 20, 200))
    app = make_app("bad-node", clock=clock, source=source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)  # the first frame, and the worker judging its pairs
        pane, table = app.query_one(LossPane), app.query_one("#loss-table", DataTable)
        assert app.query_one("#tabs").active == "topology" and pane.shown_overview is not None
        assert cells(table, 0)[0] == "node23"
        await pilot.press("4")
        assert app.query_one("#tabs").active == "loss" and cells(table, 0)[0] == "node23"
        assert app.query_one("#loss-heat").display


async def test_a_filter_keystroke_shows_the_overview_again_without_judging_it_again():
    """The overview does not depend on the filter: judging 79,600 results again in a worker for each keystroke
    competed with the keystroke's own render (bench/dashboard.py's filter key)."""
    async with on_the_loss_pane() as (app, pilot):
        pane = app.query_one(LossPane)
        judged = []
        original = pane.run_worker

        def counting(work, *args, **kwargs):
            judged.append(kwargs.get("group"))
            return original(work, *args, **kwargs)
        pane.run_worker = counting
        before = pane.shown_overview[0]
        await pilot.press("slash", "n", "o")
        await settle(app, pilot)
        assert app.filter_text == "no" and "loss-overview" not in judged
        assert pane.shown_overview[0] is before  # the same overview, shown again for the filter
        table = app.query_one("#loss-table", DataTable)
        assert table.row_count > 0 and all("no" in cells(table, i)[0] for i in range(min(5, table.row_count)))
        # (a pick is judged again: test_enter_on_a_node_keeps_its_pairs_and_escape_brings_all_back)


def bad_node_app(nodes: int = 35):
    clock = Clock()
    source = DemoSource("bad-node", seed=7, clock=clock, scale=(nodes, 20, 200))
    return make_app("bad-node", clock=clock, source=source)


def counting_workers(pane: LossPane) -> list[str | None]:
    started: list[str | None] = []
    original = pane.run_worker

    def counting(work, *args, **kwargs):
        started.append(kwargs.get("group"))
        return original(work, *args, **kwargs)
    pane.run_worker = counting
    return started


async def test_the_first_visit_judges_nothing_again():
    """While hidden the pane judges at the screen's width, which it spans: its first visit shows that overview
    as it is (it used to judge at a default width, 80, and again at the real one when shown)."""
    app = bad_node_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(LossPane)
        await wait_until(pilot, lambda: pane.shown_overview is not None and pane._judging is None,
                         "the overview judged while hidden")
        started = counting_workers(pane)
        judged_hidden = pane.shown_overview[0]
        await pilot.press("4")
        await settle(app, pilot)
        assert "loss-overview" not in started and pane.shown_overview[0] is judged_hidden
        assert len(judged_hidden.grid.cells[0]) <= pane._heat_columns() == SIZE[0] - 13


@pytest.fixture
def gate(monkeypatch):
    """The overview's judging waits (in its thread) until the test sets this event; set in any case at the end."""
    import overlaytui.panes.loss as loss

    event, original = threading.Event(), loss.overview

    def gated(*args, **kwargs):
        if not event.wait(300):  # longer than any wait of the tests: a gate that opened by itself fails by name
            raise AssertionError("the test never opened the gate")
        return original(*args, **kwargs)
    monkeypatch.setattr(loss, "overview", gated)
    yield event
    event.set()


async def test_a_resize_while_the_overview_is_judged_fits_the_heat_map_to_the_new_width(gate):
    """Resizes that come while the overview is being judged ask for it at the last width, judged next; the one
    being judged at the old width is never shown (it was, and stayed: nothing asked again once it was done)."""
    app = bad_node_app()
    async with app.run_test(size=SIZE) as pilot:
        try:
            await pilot.press("4")
            pane = app.query_one(LossPane)
            await wait_until(pilot, lambda: pane._judging is not None, "the overview being judged")
            started = counting_workers(pane)
            await pilot.resize_terminal(130, 50)
            await pilot.resize_terminal(120, 50)
            await wait_until(pilot, lambda: pane._heat_width == 120, "the pane resized")
            assert started == []  # one judging at a time: the thread running cannot be stopped
            gate.set()
            await wait_until(pilot, lambda: pane.shown_overview is not None and pane._judging is None,
                             "the overview judged at the new width")
            assert started == ["loss-overview"]  # the one wanted last, judged next: 120 columns, never 130
            found = pane.shown_overview[0]
            assert pane._overview_cache[0][6] == pane._heat_columns() == 120 - 13
            heat = str(app.query_one("#loss-heat").render()).split("\n")
            assert max(len(line) for line in heat[1:-1]) <= 120 - 2  # every cell row fits the pane
            assert len(found.grid.cells[0]) <= 107 and cells(app.query_one("#loss-table", DataTable), 0)[0] == "node23"
        finally:  # the app's teardown waits for the judging thread
            gate.set()


async def test_asking_for_the_overview_being_judged_starts_no_second_judging(gate):
    """A frame or a visit that asks for the same overview while it is being judged waits for that one."""
    app = bad_node_app()
    async with app.run_test(size=SIZE) as pilot:
        try:
            pane = app.query_one(LossPane)
            await wait_until(pilot, lambda: pane._judging is not None, "the overview being judged (hidden)")
            started = counting_workers(pane)
            await pilot.press("4")  # the same results at the same width
            await wait_until(pilot, lambda: pane._heat_width == SIZE[0], "the pane shown at its width")
            assert started == []
            gate.set()
            await settle(app, pilot)
            assert started == [] and app.query_one("#loss-heat").display
            cached = pane._overview_cache  # the hidden judging's overview, at the pane's width, is the one shown
            assert cached[0][6] == pane._heat_columns() == SIZE[0] - 13 and pane.shown_overview[0] is cached[1]
        finally:  # the app's teardown waits for the judging thread
            gate.set()


async def test_a_terminal_resized_while_the_pane_is_hidden_shows_the_heat_map_at_the_new_width():
    """A hidden pane gets no Resize: its next visit fits the heat map to the width it has then."""
    app = bad_node_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        pane = app.query_one(LossPane)
        assert pane._overview_cache[0][6] == SIZE[0] - 13
        await pilot.press("1")
        await pilot.resize_terminal(120, 50)
        await settle(app, pilot)
        assert pane._heat_columns() == 120 - 13  # judged now, it would be at the screen's width
        await pilot.press("4")
        await wait_until(pilot, lambda: pane._overview_cache[0][6] == 120 - 13
                         and pane.shown_overview[0] is pane._overview_cache[1], "the overview at the new width")
        heat = str(app.query_one("#loss-heat").render()).split("\n")
        assert max(len(line) for line in heat[1:-1]) <= 120 - 2


async def test_asking_back_for_the_overview_shown_while_another_is_judged_judges_nothing_more(gate):
    """A resize there and back while the new width is judged: the old width's overview comes from the cache at
    once, and the judging that ends meanwhile starts no other (what is wanted is what is shown)."""
    app = bad_node_app()
    async with app.run_test(size=SIZE) as pilot:
        try:
            gate.set()
            await pilot.press("4")
            pane = app.query_one(LossPane)
            await wait_until(pilot, lambda: pane.shown_overview is not None and pane._judging is None, "the overview")
            shown = pane.shown_overview[0]
            gate.clear()
            await pilot.resize_terminal(120, 50)
            await wait_until(pilot, lambda: pane._judging is not None, "the overview judged at 120 columns")
            await pilot.resize_terminal(SIZE[0], SIZE[1])
            await wait_until(pilot, lambda: pane._heat_width == SIZE[0], "the pane back at its width")
            started = counting_workers(pane)
            gate.set()
            await wait_until(pilot, lambda: pane._judging is None, "the judging at 120 columns ended")
            await settle(app, pilot)
            assert started == [] and pane.shown_overview[0] is shown
            assert pane._overview_cache[0][6] == pane._heat_columns() == SIZE[0] - 13
        finally:  # the app's teardown waits for the judging thread
            gate.set()

