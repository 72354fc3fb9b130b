"""The footer every screen shows (Textual's, without its leak)."""

from __future__ import annotations

from textual.widgets import Footer


class PrunedFooter(Footer):
    """Textual's Footer, without its leak: each recompose (a pane switch changes the bindings) makes new FooterKeys
    that `data_bind` to the Footer's `compact`, and the binding's watcher — holding the key and everything it
    references — stays on the Footer until `compact` changes, which it never does (textual#6666). At 200 nodes with a
    pane switch every 10 s that was ~84 keys a minute kept alive, and tracked objects grew 150k -> 232k in 8 minutes
    (gc counts by widget class). After a recompose the watchers of keys that were removed are dropped, as Textual
    itself drops them when the value changes."""

    async def recompose(self) -> None:
        await super().recompose()
        for watchers in getattr(self, "__watchers", {}).values():
            watchers[:] = [(node, callback) for node, callback in watchers if not node._closing]
