"""Timeline: what changed, newest first — placement changes, nodes and engines going down and up, findings opening
and closing — from the live frames or from the recording being replayed. Enter on a moment shows the cluster as
it was then (in a replay: seeks there; live: the frame of that moment, paused until p or esc).

`TimelineStrip` is the same moments on the NetIO chart's time axis, under the chart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ..analysis.findings import plural
from ..model import Moment
from .common import RenderGuard, View, palette_of, sync_columns, sync_rows, text
from .common import SafeText as Text
from .keptable import KeptTable

MAX_ROWS = 500  # the newest; older moments stay in the recording (and in the app's bounded list)
MARK = {"placement": "⇄", "node": "◆", "engine": "●", "finding": "✖", "resolved": "✔"}


class MomentPicked(Message):
    """The user picked a moment: show the cluster at `t`."""

    def __init__(self, t: float) -> None:
        self.t = t
        super().__init__()


def clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


class TimelinePane(Widget):
    DEFAULT_CSS = """
    TimelinePane { height: 1fr; }
    TimelinePane > DataTable { height: 1fr; }
    TimelinePane > #timeline-note { height: auto; padding: 0 1; background: $panel; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._guard = RenderGuard()
        self._times: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        yield KeptTable(id="timeline-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="timeline-note")

    def show(self, view: View) -> None:
        moments = view.timeline
        if self._guard.unchanged((moments,), (len(moments), view.now_t, view.filter_text, self.app.theme)):
            return
        colors = palette_of(self)
        style = {"error": f"bold {colors.bad}", "warning": colors.warn, "ok": colors.good, "info": colors.muted}
        table = self.query_one(DataTable)
        sync_columns(table, [("time", text("time")), ("kind", text("what")), ("subject", text("subject")),
                             ("text", text("change"))])
        rows, self._times = {}, {}
        order = sorted(range(len(moments)), key=lambda i: (-moments[i].t, i))  # newest first, a frame's in order
        shown = [m for m in (moments[i] for i in order) if view.matches(m.kind, m.subject, m.text)][:MAX_ROWS]
        for i, moment in enumerate(shown):
            key = f"{moment.t:.3f}|{len(moments) - i}"
            self._times[key] = moment.t
            current = view.now_t is not None and moment.t <= view.now_t
            rows[key] = [text(clock(moment.t), "bold" if current else colors.muted),
                         text(f"{MARK.get(moment.kind, '·')} {moment.kind}", style.get(moment.severity, "")),
                         text(moment.subject), text(moment.text, style.get(moment.severity, ""))]
        sync_rows(table, rows)
        note = self.query_one("#timeline-note", Static)
        if not moments:
            note.update(Text("Nothing has changed yet: placement, node, engine and finding changes show here as "
                             "they happen.", style=colors.muted))
        else:
            note.update(Text(f"{plural(len(moments), 'moment')}, newest first; enter: the cluster at that moment "
                             + ("(seeks the replay)" if view.replaying else "(paused there; p or esc: live again)"),
                             style=colors.muted))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        t = self._times.get(str(event.row_key.value))
        if t is not None:
            self.post_message(MomentPicked(t))


class TimelineStrip(Static):
    """One line under the NetIO chart: the moments inside the chart's window, in "seconds ago" as on its axis
    (the chart marks the same moments with vertical lines)."""

    DEFAULT_CSS = "TimelineStrip { height: 1; padding: 0 1; }"

    def show(self, moments: Sequence[Moment], now: float, window: float) -> None:
        colors = palette_of(self)
        style = {"error": f"bold {colors.bad}", "warning": colors.warn, "ok": colors.good, "info": colors.muted}
        recent = [m for m in moments if now - window <= m.t <= now]
        line = Text(no_wrap=True, overflow="ellipsis")
        if not recent:
            line.append(f"timeline: no change in the last {window:g} s", style=colors.muted)
            self.update(line)
            return
        line.append("timeline (newest first): ", style="bold")
        newest_first = sorted(range(len(recent)), key=lambda i: (-recent[i].t, i))  # a frame's moments in order
        for i, moment in enumerate(recent[j] for j in newest_first):
            if i:
                line.append("  ·  ", style=colors.muted)
            line.append(f"{MARK.get(moment.kind, '·')} -{now - moment.t:.0f}s ", style=style.get(moment.severity, ""))
            line.append(moment.text, style=style.get(moment.severity, ""))
        self.update(line)
