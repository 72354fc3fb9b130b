"""Fits any terminal: the smallest screen keeps what matters (footer, status bar, help), 256- and 16-colour
terminals get one consistent palette, and the command palette offers every action by name."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from rich.color import Color, ColorSystem
from rich.console import Console

from overlaytui.config import load_config
from overlaytui.panes.common import Palette
from overlaytui.panes.details import HelpScreen
from overlaytui.themes import for_color_system, load_themes
from tests.ui.helpers import Clock, feed, make_app, screen_text

SMALL = (80, 24)


def rendered(renderable, width: int = 300) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()


async def test_the_footer_keeps_its_keys_whole_at_80_columns():
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        for key in ("q Quit", "? Help", "/ Filter", "p Pause", "P Probe", "^p Commands", "R Record"):
            assert key in footer, footer
        assert footer.rstrip().endswith("R Record")  # the last one whole: nothing cut


async def test_the_status_bar_names_failing_nodes_first_at_80_columns():
    clock = Clock()
    app = make_app("node-down", clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        await feed(app, pilot, clock, seconds=22, poll=True)
        status = screen_text(app).splitlines()[-2]
        assert status.lstrip().startswith("✖ node5"), status


async def test_the_help_fits_scrolls_with_the_arrows_and_lists_every_pane_and_key():
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        box = app.screen.query_one("VerticalScroll")
        assert box.region.width <= SMALL[0] and box.region.right <= SMALL[0]
        assert box.has_focus  # the arrows scroll without a Tab first
        assert box.max_scroll_y > 0
        await pilot.press("down", "down", "down")
        await pilot.pause()
        assert box.scroll_y == 3
        text = rendered(app.screen.query_one("Static").content)
        for pane in ("1 Topology", "2 Placement", "3 NetIO", "4 Loss", "5 Networks", "6 Findings", "7 Timeline"):
            assert pane in text
        for binding in app.BINDINGS:
            assert (binding.key_display or binding.key) in text
        assert "o O" in text  # the Loss pane's overlay keys


@pytest.mark.parametrize(("query", "label"), [("prob", "probe"), ("recor", "record"), ("theme", "theme"),
                                              ("pane 7", "pane 7 Timeline"), ("screensh", "screenshot"),
                                              ("filter", "filter"), ("pause", "pause")])
async def test_the_command_palette_offers_every_action_by_name(query, label):
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p", *query)
        await pilot.pause(0.3)
        options = app.screen.query_one("CommandList")
        hits = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(label in hit for hit in hits), hits


async def run_in_palette(pilot, query: str) -> None:
    await pilot.press("ctrl+p", *query)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause()


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("OVERLAYTUI_CONFIG", str(path))
    return path


async def test_a_palette_action_runs():
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await run_in_palette(pilot, "pane 4 loss")
        assert app.query_one("#tabs").active == "loss"


async def test_a_theme_chosen_in_the_palette_is_saved_and_starting_saves_none(config_file):
    app = make_app(persist_config=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert not config_file.exists()  # the theme it starts with is not a choice
        await run_in_palette(pilot, "theme overlaytui-light")
        assert app.theme == "overlaytui-light"
        assert load_config(config_file)[0].theme == "overlaytui-light"
        app.theme = "nord"  # as Textual's own "Theme" command sets it
        await pilot.pause()
    assert load_config(config_file)[0].theme == "nord"


GREYS = ("background", "surface", "panel")
STATUS = ("primary", "accent", "warning", "error", "success")


@pytest.mark.parametrize("theme", load_themes(), ids=lambda t: t.name)
def test_themes_keep_their_greys_in_256_colours_and_their_roles_apart_in_16(theme):
    in_256 = for_color_system(theme, "256")
    for role in GREYS:  # greys stay grey (the dark theme's panels turned navy)
        red, green, blue = Color.parse(getattr(in_256, role)).downgrade(ColorSystem.EIGHT_BIT).get_truecolor()
        assert red == green == blue, role
    in_16 = for_color_system(theme, "standard")
    numbers = [Color.parse(getattr(in_16, role)).downgrade(ColorSystem.STANDARD).number for role in STATUS]
    assert len(set(numbers)) == len(STATUS)  # the accent is not the error, the primary not the success
    back, fore = (Color.parse(getattr(in_16, r)).downgrade(ColorSystem.STANDARD).number
                  for r in ("background", "foreground"))
    assert back != fore
    for adapted, depth in ((in_256, ColorSystem.EIGHT_BIT), (in_16, ColorSystem.STANDARD)):
        heat = [Color.parse(Palette(adapted).heat(rank)).downgrade(depth).number for rank in range(5)]
        assert len(set(heat)) == 5, (depth, heat)  # the heat map's five verdicts stay apart


@pytest.mark.parametrize(("term", "system", "depth"), [("tmux-256color", "256", ColorSystem.EIGHT_BIT),
                                                       ("xterm", "standard", ColorSystem.STANDARD)])
async def test_the_screen_rendered_in_fewer_colours_is_one_palette(monkeypatch, term, system, depth):
    """The Loss pane rendered as the terminal will show it: the backgrounds are the theme's greys, and the loss
    cells' colours are the theme's status colours rounded the same way as everything else."""
    monkeypatch.setenv("TERM", term)
    monkeypatch.delenv("COLORTERM", raising=False)
    clock = Clock()
    app = make_app("loss", clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.console.color_system == system
        await feed(app, pilot, clock, seconds=3)
        await pilot.press("4")
        await pilot.pause()
        theme = app.current_theme
        backgrounds: Counter = Counter()
        cells: dict[str, set[int]] = {"ok": set(), "bad": set()}
        for strip in app.screen._compositor.render_strips():
            for segment in strip:
                style = segment.style
                if style is None:
                    continue
                if style.bgcolor is not None:
                    backgrounds[style.bgcolor.downgrade(depth).number] += len(segment.text)
                # a cell's since-start mark (its own segment when the recent window's colour is another)
                if style.color is not None and segment.text.endswith("✔"):
                    cells["ok"].add(style.color.downgrade(depth).number)
                if style.color is not None and segment.text.endswith("%✖"):
                    cells["bad"].add(style.color.downgrade(depth).number)
        number = {role: Color.parse(getattr(theme, role)).downgrade(depth).number for role in ("success", "error")}
        most = backgrounds.most_common(1)[0][0]
        if depth == ColorSystem.EIGHT_BIT:
            red, green, blue = Color.from_ansi(most).get_truecolor()
            assert red == green == blue  # a grey, not navy
            assert 17 not in backgrounds
        else:
            assert most in (0, 8)  # black or grey
        assert cells["ok"] == {number["success"]} and cells["bad"] == {number["error"]}
