"""The widgets written for speed, against the ones they replace: Chart draws exactly what PlotextPlot draws;
LiveTable shows rows, follows its cursor's key, scrolls, and selects with enter and click; KeptTable renders what
a DataTable would, keeping its cells across tab switches."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Input, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from overlaytui.panes.chart import Chart
from overlaytui.panes.keptable import KeptTable
from overlaytui.panes.livetable import Column, LiveTable


def _cells(strip) -> list[tuple[str, object]]:
    """(character, style) per cell of a rendered line (without Textual's mouse-offset metadata)."""
    return [(char, seg.style.clear_meta_and_links() if seg.style else None) for seg in strip for char in seg.text]


class TwoPlots(App):
    CSS = "PlotextPlot { height: 14; width: 90; }"

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="reference")
        yield Chart(id="fast")


async def test_chart_draws_the_same_cells_as_plotextplot():
    app = TwoPlots()
    async with app.run_test(size=(100, 30)) as pilot:
        for plot in app.query(PlotextPlot):
            plt = plot.plt
            plt.clear_data()  # as the panes do (plotext fails on a plot added after a build without it)
            plt.clear_figure()
            xs = list(range(-119, 1))
            plt.plot(xs, [50 + 40 * math.sin(x / 9) for x in xs], label="web", marker="hd")
            plt.plot(xs, [20 + 15 * math.cos(x / 5) for x in xs], label="api", marker="hd")
            plt.title("throughput per service (KiB/s)")
            plt.xlabel("seconds ago")
            plot.refresh()
        await pilot.pause()
        reference, fast = app.query_one("#reference"), app.query_one("#fast", Chart)
        assert reference.size == fast.size
        for y in range(reference.size.height):
            assert _cells(fast.render_line(y)) == _cells(reference.render_line(y)), f"line {y}"
        assert any("web" in fast.render_line(y).text for y in range(fast.size.height))
        for theme in ("textual-light", "nord"):  # the chart follows the app's theme like PlotextPlot
            app.theme = theme
            await pilot.pause()
            for y in range(reference.size.height):
                assert _cells(fast.render_line(y)) == _cells(reference.render_line(y)), f"{theme} line {y}"


class OneChart(App):
    def compose(self) -> ComposeResult:
        yield Chart()

    def on_mount(self) -> None:
        plt = self.query_one(Chart).plt
        plt.clear_data()
        plt.clear_figure()
        plt.plot(list(range(60)), [x % 7 for x in range(60)], label="web", marker="hd")


async def test_chart_is_drawn_again_when_the_terminal_is_resized():
    app = OneChart()
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        chart = app.query_one(Chart)
        assert chart.render_line(0).cell_length == 80
        await pilot.resize_terminal(100, 24)
        await pilot.pause()
        assert chart.size.width == 100
        assert all(chart.render_line(y).cell_length == 100 for y in range(chart.size.height))
        assert any("web" in chart.render_line(y).text for y in range(chart.size.height))


class OneTable(App):
    def __init__(self, rows: int) -> None:
        super().__init__()
        self.n = rows
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield LiveTable(id="t")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(LiveTable)
        table.set_columns([Column("name", "name"), Column("rate", "rate", "right")])
        table.set_rows({f"row{i}": [Text(f"row{i}"), Text(f"{i * 10} B/s")] for i in range(self.n)})
        table.focus()

    def on_live_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        self.selected.append(event.key)


async def test_livetable_renders_header_rows_and_right_aligned_numbers():
    app = OneTable(3)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        lines = [table.render_line(y).text for y in range(4)]
        assert lines[0].startswith(" name    rate ")
        assert lines[1].startswith(" row0   0 B/s ")
        assert lines[3].startswith(" row2  20 B/s ")
        assert all(len(line) == table.scrollable_content_region.width for line in lines)
        assert table.render_line(5).text.strip() == ""


async def test_livetable_cursor_follows_its_row_when_rows_reorder_and_enter_selects():
    app = OneTable(5)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.press("down", "down")
        table = app.query_one(LiveTable)
        assert table.cursor_key == "row2"
        table.set_rows({k: [Text(k), Text("1 B/s")] for k in ("row4", "row2", "row0")})  # reordered, some gone
        assert table.cursor_key == "row2" and table.cursor_row == 1
        table.set_rows({k: [Text(k), Text("1 B/s")] for k in ("row4",)})  # its row gone: the nearest stays
        assert table.cursor_key == "row4"
        await pilot.press("enter")
        await pilot.pause()
        assert app.selected == ["row4"]
        table.set_rows({})
        assert table.cursor_key is None
        await pilot.press("enter", "down", "end")  # nothing to select or move to: no error
        await pilot.pause()
        assert app.selected == ["row4"]


async def test_livetable_scrolls_to_keep_the_cursor_visible_and_click_selects():
    app = OneTable(50)
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(LiveTable)
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_key == "row49"
        visible = [table.render_line(y).text for y in range(table.scrollable_content_region.height)]
        assert visible[0].startswith(" name") and any(line.startswith(" row49") for line in visible)
        await pilot.press("home")
        await pilot.pause()
        assert table.scroll_offset.y == 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert table.cursor_row == table.scrollable_content_region.height - 1
        await pilot.click(LiveTable, offset=(2, 3))
        await pilot.pause()
        assert app.selected == [table.cursor_key] and table.cursor_key == f"row{table.scroll_offset.y + 2}"


class TabbedTables(App):
    def compose(self) -> ComposeResult:
        with TabbedContent():
            with TabPane("one", id="one"):
                yield KeptTable(id="kept", cursor_type="row", zebra_stripes=True)
            with TabPane("two", id="two"):
                yield Input(id="elsewhere")

    def on_mount(self) -> None:
        table = self.query_one(KeptTable)
        table.add_columns("name", "state")
        for i in range(20):
            table.add_row(Text(f"svc-{i}", style="bold"), Text("running", style="green"), key=str(i))
        table.focus()


async def test_kepttable_keeps_its_cells_across_tab_switches_and_renders_what_a_fresh_render_would():
    app = TabbedTables()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(KeptTable)

        def lines() -> list:
            return [_cells(table.render_line(y)) for y in range(table.size.height)]

        def matches_fresh_render() -> bool:
            seen = lines()
            DataTable._clear_caches(table)  # what DataTable itself would do on focus, resize or theme
            return seen == lines()

        await pilot.pause()
        focused = lines()
        assert matches_fresh_render()
        misses = table._cell_render_cache.misses
        tabs = app.query_one(TabbedContent)
        tabs.active = "two"
        app.query_one(Input).focus()
        await pilot.pause()
        assert not table.has_focus and len(table._cell_render_cache) > 0
        tabs.active = "one"
        table.focus()
        await pilot.pause()
        assert lines() == focused
        assert table._cell_render_cache.misses == misses  # every cell served from the cache
        assert matches_fresh_render()
        app.theme = "textual-light"  # a theme change does drop the cells: new colours
        await pilot.pause()
        assert lines() != focused and matches_fresh_render()
        await pilot.resize_terminal(80, 24)  # so does a real resize
        await pilot.pause()
        assert matches_fresh_render()


class OneDataTable(App):
    def compose(self) -> ComposeResult:
        yield DataTable(id="t")


async def test_a_cell_that_grows_widens_its_column():
    """A loss cell first shows "0.00%", then "0.00%✔ 0.31ms MTU!1400": updated in place, the column must grow
    (it did not: at 170 columns with three nodes the RTT was cut off)."""
    from overlaytui.panes.common import sync_columns, sync_rows

    app = OneDataTable()
    async with app.run_test(size=(170, 10)) as pilot:
        table = app.query_one(DataTable)
        sync_columns(table, [("src", Text("from")), ("dst:node2", Text("node2"))])
        sync_rows(table, {"node1": [Text("node1"), Text("0.00%")]})
        await pilot.pause()
        long = "0.00%✔ 0.31ms MTU!1400"
        sync_rows(table, {"node1": [Text("node1"), Text(long)]})
        await pilot.pause()
        column = table.ordered_columns[1]
        assert column.get_render_width(table) >= len(long)
        assert long in "".join(seg.text for seg in table.render_line(1))


async def test_a_table_whose_cells_all_change_keeps_its_cursor():
    """A theme switch changes every cell: the table is rebuilt in one pass (Textual re-measured a whole column for
    each narrower cell: seconds at 300 rows), with the same cursor and the new cells; one changed cell is updated
    in place."""
    from textual.coordinate import Coordinate

    from overlaytui.panes.common import sync_columns, sync_rows

    app = OneDataTable()
    async with app.run_test(size=(170, 20)) as pilot:
        table = app.query_one(DataTable)
        sync_columns(table, [("name", Text("name")), ("value", Text("value"))])
        sync_rows(table, {f"row{i}": [Text(f"row{i}"), Text("x" * 30)] for i in range(100)})
        await pilot.pause()
        table.cursor_coordinate = Coordinate(40, 1)
        sync_rows(table, {f"row{i}": [Text(f"Row {i}"), Text("yy")] for i in range(100)})
        await pilot.pause()
        assert table.row_count == 100 and table.cursor_coordinate == Coordinate(40, 1)
        assert str(table.get_cell("row7", "value")) == "yy" and str(table.get_cell("row7", "name")) == "Row 7"
        sync_rows(table, {f"row{i}": [Text(f"Row {i}"), Text("zz" if i == 3 else "yy")]
                          for i in range(100)})  # one cell: updated in place
        await pilot.pause()
        assert str(table.get_cell("row3", "value")) == "zz" and table.cursor_coordinate == Coordinate(40, 1)
