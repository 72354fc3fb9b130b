"""Pilot tests: navigation, filter, palette, details, pause/refresh, themes, markup safety."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, TabbedContent

from overlaytui.app import FrameReady
from overlaytui.config import load_config
from overlaytui.panes.details import ContainerDetail, HelpScreen, NetworkDetail, NodeDetail, ServiceDetail
from overlaytui.panes.livetable import LiveTable
from overlaytui.panes.loss import NO_PROBES
from tests.ui.helpers import Clock, MarkupNamedSource, NoProbesSource, feed, make_app

SIZE = (120, 36)


def rows(app, table_id: str) -> list[str]:
    table = app.query_one(f"#{table_id}")
    if isinstance(table, LiveTable):
        return table.row_keys
    return [str(key.value) for key in table.rows]


async def test_number_keys_switch_panes_and_each_pane_renders():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tabs = app.query_one(TabbedContent)
        assert tabs.active == "topology"
        assert len(rows(app, "topology-table")) == 4  # ingress + 3 overlays
        for key, tab, table in (("2", "placement", "placement-table"), ("3", "netio", "netio-table"),
                                ("4", "loss", "loss-table"), ("5", "networks", "networks-table")):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == tab
            assert rows(app, table), f"{tab} shows nothing"
        assert set(rows(app, "placement-table")) == {"web", "api", "auth", "cache", "worker", "payments", "search",
                                                     "metrics"}


async def test_filter_narrows_rows_and_escape_clears():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "slash")
        assert app.query_one("#filter", Input).has_focus
        await pilot.press(*"pay", "enter")
        await pilot.pause()
        assert rows(app, "placement-table") == ["payments"]
        assert not app.query_one("#filter", Input).display
        await pilot.press("escape")
        await pilot.pause()
        assert len(rows(app, "placement-table")) == 8


async def test_selecting_a_node_in_the_topology_filters_the_other_panes():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one("#topology-table", DataTable)
        table.focus()
        # row payments-secure, column node1: node1 runs no payments task
        node_columns = [str(c.key.value) for c in table.ordered_columns]
        table.move_cursor(row=0, column=node_columns.index(f"node:{app.snapshot.nodes[0].id}"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.selection.kind == "node" and app.selection.label == "node1"
        await pilot.press("2")
        await pilot.pause()
        on_node1 = {t.service_name for t in app.snapshot.tasks
                    if t.node_id == app.snapshot.nodes[0].id and t.state == "running"}
        assert set(rows(app, "placement-table")) == on_node1
        await pilot.press("escape")
        await pilot.pause()
        assert app.selection is None and len(rows(app, "placement-table")) == 8


async def test_enter_opens_service_and_network_details():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("enter")  # first row
        await pilot.pause()
        assert isinstance(app.screen, ServiceDetail)
        await pilot.press("escape")
        await pilot.press("5")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NetworkDetail)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, NetworkDetail)


async def test_netio_switches_dimension_and_enter_opens_the_row_details():
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, 5)
        await pilot.press("3")
        await pilot.pause()
        assert set(rows(app, "netio-table")) == {"web", "api", "auth", "cache", "worker", "payments", "search",
                                                 "metrics"}
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ServiceDetail) and app.screen.key == rows(app, "netio-table")[0]
        await pilot.press("escape", "d")  # service -> network
        await pilot.pause()
        assert set(rows(app, "netio-table")) >= {"frontend", "backend"}
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NetworkDetail)
        await pilot.press("escape", "d")  # network -> node
        await pilot.pause()
        assert set(rows(app, "netio-table")) == {f"node{i}" for i in range(1, 6)}
        await pilot.press("down", "enter")
        await pilot.pause()
        node = app.snapshot.nodes_by_id[app.screen.key]
        assert isinstance(app.screen, NodeDetail) and node.hostname == rows(app, "netio-table")[1]


JUMPS = [("node node3", NodeDetail), ("service cache", ServiceDetail), ("network backend", NetworkDetail),
         ("container api.1", ContainerDetail)]


@pytest.mark.parametrize(("query", "screen"), JUMPS)
async def test_command_palette_jumps_to_details(query, screen):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.press(*query)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, screen), app.screen


async def test_detail_screen_follows_new_data():
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.open_detail("service", "web")
        await pilot.pause()
        shown = app.screen._view.snapshot.taken_at
        await feed(app, pilot, clock, seconds=3)
        assert app.screen._view.snapshot.taken_at == shown + 3


async def test_pause_keeps_the_picture_and_refresh_resumes():
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = app.snapshot
        await pilot.press("p")
        await feed(app, pilot, clock, seconds=2)
        assert app.paused and app.snapshot is first
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.paused and app.snapshot.taken_at == clock.now


async def test_node_down_shows_in_the_status_bar_after_refresh():
    clock = Clock()
    app = make_app("node-down", clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        clock.now += 25  # past the scenario's failure
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(app.query_one("#status").render())
        assert "✖ node5" in status
        down = [n for n in app.snapshot.nodes if n.state == "down"]
        assert [n.hostname for n in down] == ["node5"]


async def test_theme_cycles_and_is_remembered(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    monkeypatch.setenv("OVERLAYTUI_CONFIG", str(config))
    app = make_app(persist_config=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "overlaytui-dark"
        await pilot.press("t")
        await pilot.pause()
        assert app.theme == "overlaytui-high-contrast"
        await pilot.press("t")
        assert app.theme == "overlaytui-light"
    assert load_config(config)[0].theme == "overlaytui-light"


async def test_theme_flag_and_unknown_theme():
    app = make_app(theme="overlaytui-light")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "overlaytui-light"
    app = make_app(theme="no-such-theme")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "overlaytui-dark"


async def test_help_and_screenshot(tmp_path):
    app = make_app(screenshot_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("s")
        await pilot.pause()
    shots = list(tmp_path.glob("overlaytui-*.svg"))
    assert len(shots) == 1 and "<svg" in shots[0].read_text()[:200]


async def test_names_that_look_like_markup_are_shown_as_text():
    clock = Clock()
    app = make_app(source=MarkupNamedSource("healthy", seed=7, clock=clock), clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=2)
        for key in "12345":
            await pilot.press(key)
            await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one("#placement-table", DataTable)
        assert table.get_cell("[bold]x[/", "service").plain == "[bold]x[/"  # shown as written, not styled
        app.open_detail("service", "[bold]x[/")
        await pilot.pause()
        assert isinstance(app.screen, ServiceDetail)
        screen_text = app.export_screenshot().replace("&#160;", " ")
        assert "[/] bad [link=x]" in screen_text  # the task error, verbatim
        assert "[red]n1" in screen_text  # the node name in the tasks table


async def test_loss_pane_explains_when_nothing_probes():
    clock = Clock()
    app = make_app(source=NoProbesSource("healthy", seed=7, clock=clock), clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await pilot.pause()
        legend = str(app.query_one("#loss-legend").render())
        assert NO_PROBES[:40] in legend.replace("\n", " ")


async def test_loss_scenario_marks_pairs_through_node4_bad():
    app = make_app("loss")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one("#loss-table", DataTable)
        row = [str(c) for c in table.get_row("node1")]
        columns = [str(c.key.value) for c in table.ordered_columns]
        to_node4 = row[columns.index("dst:node4")]
        to_node2 = row[columns.index("dst:node2")]
        assert "✖" in to_node4 and "✖" not in to_node2  # the recent window's verdict: bad through node4 only
        window = app.frame.probes.windows_of(app.query_one("LossPane").network)[("node1", "node4")]
        assert 1.0 <= window.recent_loss_pct <= 3.0  # ~2 % lost (binomial over 3000 packets: sd 0.26 %)
        assert to_node2.startswith("0.00%")


async def test_snapshot_messages_collapse():
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        message = FrameReady(app.build_frame())
        assert message.can_replace(FrameReady(app.build_frame()))


async def test_an_older_snapshot_never_replaces_a_newer_one():
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        old = app.build_frame()
        clock.now += 5
        app.on_frame_ready(FrameReady(app.build_frame()))
        app.post_message(FrameReady(old))
        await pilot.pause()
        assert app.snapshot.taken_at == clock.now


async def test_findings_pane_names_the_lossy_node_and_enter_highlights_it():
    app = make_app("loss")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.pause()
        table = app.query_one("#findings-table", DataTable)
        keys = [str(k.value) for k in table.rows]
        assert keys and keys[0].startswith("loss.bad|") and "node4" in keys[0]
        detail = str(app.query_one("#finding-detail").render())
        assert "evidence:" in detail and "fix:" in detail
        await pilot.press("enter")
        await pilot.pause()
        node4 = next(n for n in app.snapshot.nodes if n.hostname == "node4")
        assert app.selection is not None and (app.selection.kind, app.selection.key) == ("node", node4.id)


async def test_the_findings_pane_says_what_was_checked_when_nothing_is_wrong():
    from dataclasses import replace

    app = make_app("healthy")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.on_frame_ready(FrameReady(replace(app.frame, findings=())))
        await pilot.press("6")
        await pilot.pause()
        assert not app.query_one("#findings-table", DataTable).display  # no empty table
        note = str(app.query_one("#finding-detail").render()).replace("\n", " ")
        assert "No findings at 08:00:00: every check passes." in note.replace(_local_clock(app), "08:00:00")
        assert "Checked: 5 nodes, 8 services" in note and "probe pairs measured" in note


def _local_clock(app) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(app.frame.taken_at))


async def test_the_dashboards_findings_include_the_underlay_mtu():
    """The frame builder passes the underlay MTUs to the checks: mtu.underlay is no longer doctor-only."""
    from overlaytui.frame import FrameBuilder

    source_app = make_app("healthy")
    address = None
    async with source_app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        address = next(n.address for n in source_app.snapshot.nodes if n.hostname == "node3")
    app = make_app("healthy", builder=FrameBuilder(underlay=lambda addresses: {address: 1400}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.pause()
        keys = [str(k.value) for k in app.query_one("#findings-table", DataTable).rows]
        assert "mtu.underlay|node3" in keys


async def test_the_header_separates_the_name_and_the_footer_shows_ctrl_p_once():
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        title = str(app.query_one("HeaderTitle").render())
        assert title == "overlaytui | demo: healthy"
        keys = [k for k in app.query("FooterKey") if k.key == "ctrl+p"]
        assert len(keys) == 1 and "Commands" in str(keys[0].render())
