"""KeptTable: Textual's DataTable, keeping its rendered cells when its tab is hidden and shown again.

A DataTable drops every rendered cell when it gains or loses focus (a style update) and when it is resized, and
switching to a pane is both: its table comes back from a hidden tab (a resize from nothing to the same size as
before) and takes the focus. At 200 nodes that made pressing `1` cost ~150 ms, all of it re-rendering the
topology diagram's cells through Rich. Neither drop is needed then: DataTable's caches are keyed on the base
style and the pseudo-class state (focus, hover), so a focused and an unfocused rendering live side by side (only
the memo of component styles, which does not know about focus, is cleared), and
its column widths do not depend on the widget's size. They are still dropped when the theme changes or the size
really does. Textual is pinned (pyproject): this leans on DataTable's cache keys, checked by tests/ui.
"""

from __future__ import annotations

from textual import events
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import DataTable


class KeptTable(DataTable):
    _kept_theme: str | None = None
    _kept_size: Size | None = None

    def notify_style_update(self) -> None:
        theme = self.app.theme if self.is_attached else None
        if theme is not None and theme == self._kept_theme:
            Widget.notify_style_update(self)  # the widget's own style caches, not the rendered cells
            self._styles_cache.clear()
            self._get_styles_to_render_cell.cache_clear()  # component styles (the cursor's depends on focus)
            self.refresh()
            return
        self._kept_theme = theme
        super().notify_style_update()

    def _on_resize(self, event: events.Resize) -> None:
        if not event.size.area or event.size == self._kept_size:
            event.prevent_default()  # hidden, or back at the size it was rendered for: keep the cells
            return
        self._kept_size = event.size
        # DataTable's own handler runs next (Textual dispatches up the class hierarchy) and drops the cells
