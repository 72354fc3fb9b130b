"""The footer keeps no removed keys alive: each pane switch recomposes Textual's Footer, whose keys bind to its
`compact` and stayed referenced by that binding for good (textual#6666; panes.footer.PrunedFooter)."""

from __future__ import annotations

import gc
import weakref

from textual.widgets._footer import FooterKey

from tests.ui.helpers import make_app


async def test_pane_switches_leave_no_footer_keys_behind():
    gc.collect()
    before = weakref.WeakSet(o for o in gc.get_objects() if isinstance(o, FooterKey))  # other tests' apps'
    app = make_app("healthy")
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        for _ in range(4):
            for key in "1234567":
                await pilot.press(key)
                await pilot.pause()
        gc.collect()
        alive = [o for o in gc.get_objects() if isinstance(o, FooterKey) and o not in before]
        shown = list(app.query(FooterKey))
        assert shown and len(alive) == len(shown), (len(alive), len(shown))  # 28 switches: hundreds before


async def test_detail_and_help_screens_use_the_pruned_footer():
    from textual.widgets import Footer

    from overlaytui.panes.footer import PrunedFooter
    app = make_app("healthy")
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        app.open_detail("network", "backend")
        await pilot.pause()
        footers = list(app.screen.query(Footer))
        assert footers and all(type(f) is PrunedFooter for f in footers)
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        footers = list(app.screen.query(Footer))
        assert app.screen is not app.screen_stack[0] and footers and all(type(f) is PrunedFooter for f in footers)
