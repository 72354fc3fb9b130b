"""The footer keeps no removed keys alive: each pane switch recomposes Textual's Footer, whose keys bind to its
`compact` and stayed referenced by that binding for good (textual#6666; app.PrunedFooter)."""

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
