"""A browser viewer saves nothing on the serving host: Textual's own palette command Screenshot (not the app's
`s`, which READ_ONLY already refused) wrote an SVG into the serving user's ~/Downloads for any tab."""

from __future__ import annotations

from overlaytui.feed import FrameFeed
from overlaytui.viewer import ViewerApp


async def test_a_viewer_offers_no_screenshot_and_delivers_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Downloads").mkdir()
    app = ViewerApp(FrameFeed(), name="demo")
    async with app.run_test(size=(100, 30)) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Screenshot" not in titles
        assert titles  # (theme, keys, quit ...)
        assert app.check_action("screenshot", ()) is False  # Textual's own action, by name
        app.deliver_screenshot()  # as the palette's command did
        await pilot.pause(0.3)
    assert list((tmp_path / "Downloads").iterdir()) == []
