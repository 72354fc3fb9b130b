"""Hostile names from the cluster through every pane, the palette, the Loss pane's tabs, toasts, detail screens,
the status bar and SVG screenshots: shown literally (control characters made visible), never as markup, never
reaching the terminal raw."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from overlaytui.panes.common import Picked, Selection
from overlaytui.panes.details import NodeDetail
from overlaytui.safe import PrintableStream, display, printable
from tests.ui.helpers import HOSTILE, HOSTILE_NETWORK, Clock, HostileSource, feed, make_app

RAW = ("\x1b", "\x07", "\x00", "\u202e")


def assert_printable(svg: str) -> None:
    for char in RAW:
        assert char not in svg, repr(char)
    ElementTree.fromstring(svg)  # valid XML: nothing unescaped in it


async def test_hostile_names_through_every_pane_palette_and_details(tmp_path):
    clock = Clock()
    app = make_app(source=HostileSource("loss", seed=7, clock=clock), clock=clock, screenshot_dir=tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await feed(app, pilot, clock, seconds=3)
        for key in "123456":
            await pilot.press(key)
            await pilot.pause()
            assert_printable(app.export_screenshot())
        assert app.is_running  # [@click=app.quit] did nothing
        await pilot.press("1")
        await pilot.pause()
        shown = app.export_screenshot().replace("&#160;", " ")
        assert "[/]n1\\x1b]0;pwned\\x07" in shown  # literally, the escape made visible

        # the Loss pane's tabs carry the markup-named overlay as text, and switching to it works
        await pilot.press("4")
        tabs = app.query_one("#loss-networks")
        labels = [str(t.label) for t in tabs.query("Tab")]
        assert HOSTILE_NETWORK in labels
        loss = app.query_one("#pane-loss")
        tabs.active = next(t.id for t in tabs.query("Tab") if str(t.label) == HOSTILE_NETWORK)
        await pilot.pause()
        assert loss.network == HOSTILE_NETWORK

        # ctrl+p: discovery and a search that matches the hostile names
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"n1")
        await pilot.pause(0.3)
        assert_printable(app.export_screenshot())
        await pilot.press("escape")
        await pilot.pause()

        # select the hostile node (the toast names it) and open its details
        node1 = next(n for n in app.snapshot.nodes if n.hostname == HOSTILE["node1"])
        app.on_picked(Picked("topology", Selection("node", node1.id, "")))  # as enter on its topology column
        await pilot.pause()
        assert_printable(app.export_screenshot())
        status = str(app.query_one("#status").render())
        assert "[/]n1\\x1b]0;pwned\\x07" in status
        app.open_detail("node", node1.id)
        await pilot.pause()
        assert isinstance(app.screen, NodeDetail)
        assert_printable(app.export_screenshot())
        await pilot.press("escape")

        # a screenshot file is valid XML too
        await pilot.press("s")
        await pilot.pause()
        saved = list(tmp_path.glob("*.svg"))
        assert len(saved) == 1
        assert_printable(saved[0].read_text())
        await pilot.press("q")
    assert not app.is_running


def test_display_makes_controls_visible_and_bounds_length():
    assert display(HOSTILE["node1"]) == "[/]n1\\x1b]0;pwned\\x07"
    assert display("a\u202eb\x00c\x9b") == "a\\u202eb\\x00c\\x9b"
    assert len(display("x" * 5000)) == 400 and display("x" * 5000).endswith("…")
    assert printable("line1\nline2\x1b[2J") == "line1\nline2\\x1b[2J"


def test_one_shot_output_goes_through_one_printable_stream(capsys):
    import sys

    stream = PrintableStream(sys.stdout)
    print(f"node {HOSTILE['node2']}", file=stream)
    out = capsys.readouterr().out
    assert "\x1b" not in out and out == "node [@click=app.quit]n2[/]\\x1b[2J\n"


async def test_a_screenshot_never_writes_over_an_existing_file_or_through_a_symlink(tmp_path):
    import time

    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    now = time.time()
    for t in (now, now + 1, now + 2):  # the screenshot's name carries the second it is taken in
        (tmp_path / f"overlaytui-{time.strftime('%Y%m%d-%H%M%S', time.localtime(t))}.svg").symlink_to(target)
    app = make_app(screenshot_dir=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("q")
    assert target.read_text() == "keep me"
    written = [p for p in tmp_path.glob("overlaytui-*-1.svg") if not p.is_symlink()]
    assert len(written) == 1 and written[0].read_text().startswith("<svg")
