"""A serve viewer whose browser tab closes while its first frame is shown ends cleanly (no Textual traceback on
serve's stderr, no error said for it)."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Tab

from overlaytui.panes.loss import NetworkTabs
from tests.ui.helpers import wait_until


class _Mounting(App):
    """Mounts the Loss pane's overlay tabs (the worst overlay active) as the app is told to end, or not."""

    def __init__(self, ending: bool) -> None:
        super().__init__()
        self.ending = ending

    def on_mount(self) -> None:
        self.call_later(self.mount_tabs)

    def mount_tabs(self) -> None:
        self.mount(NetworkTabs(Tab("frontend", id="net-1-0"), Tab("backend", id="net-1-1"), active="net-1-1"))
        if self.ending:
            self.exit()  # a closed browser tab's ExitApp, handled in the same turn


async def test_overlay_tabs_mounted_as_the_app_ends_do_not_crash_it():
    app = _Mounting(ending=True)
    async with app.run_test() as pilot:
        await pilot.pause()
    assert app._exception is None  # was ValueError: No Tab with id 'net-1-1'
    assert app.return_code in (0, None)


async def test_overlay_tabs_open_on_the_active_one_given():
    app = _Mounting(ending=False)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.query(NetworkTabs) and app.query_one(NetworkTabs).active,
                         "the tabs mounted")
        assert app.query_one(NetworkTabs).active == "net-1-1"
