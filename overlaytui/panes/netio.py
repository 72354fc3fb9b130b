"""NetIO: throughput over time per node, per service or per overlay (summed across nodes), with current, peak
and average. One plotext plot per widget (never the global plotext)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static, Tab, Tabs

from ..analysis.netio import coverage_line, partial_totals
from ..history import DIMENSIONS
from ..units import human_rate, scale_for
from .chart import Chart
from .common import Picked, Selection, View, palette_of, text
from .common import SafeText as Text
from .livetable import Column, LiveTable
from .timeline import TimelineStrip

MAX_LINES = 6  # more lines than this make a chart unreadable: the busiest ones are drawn
TABLE_ROWS = 50  # the busiest; `/` finds the others
PLOT_BUCKETS = 120  # plotext's cost grows with points x lines; a braille chart cannot show more anyway
PLOT_POINTS = 300  # the chart shows the last 5 minutes at 1 s; the table summarises the whole history
LABELS = {"node": "per node", "service": "per service", "network": "per network"}


def downsample(points: list, buckets: int) -> list:
    """At most `buckets` points: each bucket is represented by its busiest point, so bursts stay visible."""
    if len(points) <= buckets:
        return points
    size = len(points) / buckets
    result = []
    for b in range(buckets):
        chunk = points[int(b * size): int((b + 1) * size)] or points[int(b * size): int(b * size) + 1]
        result.append(max(chunk, key=lambda p: p.rx + p.tx))
    return result


class NetIOPane(Widget):
    DEFAULT_CSS = """
    NetIOPane { height: 1fr; }
    NetIOPane > Tabs { height: 2; }
    NetIOPane > Chart { height: 2fr; min-height: 8; max-height: 16; max-width: 140; }
    NetIOPane > TimelineStrip { max-width: 140; }
    NetIOPane > LiveTable { height: 1fr; min-height: 4; }
    NetIOPane > #netio-coverage { height: auto; padding: 0 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dimension = "service"
        self._view: View | None = None

    def compose(self) -> ComposeResult:
        yield Tabs(*(Tab(LABELS[d], id=f"dim-{d}") for d in DIMENSIONS), active="dim-service")
        yield Chart(id="netio-plot")
        yield TimelineStrip(id="netio-timeline")
        yield Static(id="netio-coverage")
        yield LiveTable(id="netio-table")

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        self.dimension = str(event.tab.id).removeprefix("dim-")
        if self._view is not None:
            self.show(self._view)

    def cycle_dimension(self) -> None:
        nxt = DIMENSIONS[(DIMENSIONS.index(self.dimension) + 1) % len(DIMENSIONS)]
        self.query_one(Tabs).active = f"dim-{nxt}"

    def _names(self, view: View) -> list[str]:
        names = view.history.names(self.dimension)
        sel = view.selection
        if sel is not None:
            if self.dimension == "service" and (scope := view.services_in_scope()) is not None:
                names = [n for n in names if n in scope]
            elif self.dimension == "node" and (nodes := view.nodes_in_scope()) is not None:
                hostnames = {n.id: n.hostname for n in view.snapshot.nodes}
                names = [n for n in names if n in {hostnames.get(i) for i in nodes}]
            elif self.dimension == "network" and sel.kind == "network":
                names = [n for n in names if n == sel.label]
        return [n for n in names if view.matches(n)]

    def show(self, view: View) -> None:
        self._view = view
        colors = palette_of(self)
        names = self._names(view)
        drawn = names[:MAX_LINES]
        series = {name: downsample(view.history.series(self.dimension, name, last=PLOT_POINTS), PLOT_BUCKETS)
                  for name in drawn}
        peak = max((p.rx + p.tx for name in drawn for p in series[name]), default=0.0)
        if len(drawn) == 1:  # one subject: rx and tx apart
            peak = max((max(p.rx, p.tx) for p in series[drawn[0]]), default=0.0)
        factor, unit = scale_for(peak)
        plot = self.query_one(Chart)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        now = view.snapshot.taken_at
        if len(drawn) == 1:
            points = series[drawn[0]]
            xs = [p.t - now for p in points]
            plt.plot(xs, [p.rx / factor for p in points], label=f"{drawn[0]} rx", marker="hd")
            plt.plot(xs, [p.tx / factor for p in points], label=f"{drawn[0]} tx", marker="hd")
        else:
            for name in drawn:
                points = series[name]
                plt.plot([p.t - now for p in points], [(p.rx + p.tx) / factor for p in points], label=name,
                         marker="hd")
        window = PLOT_POINTS
        for moment in view.timeline[-200:]:  # the timeline on the chart's own axis
            if now - window <= moment.t <= now and drawn:
                plt.vline(moment.t - now, color="red" if moment.severity == "error" else "orange"
                          if moment.severity == "warning" else "gray")
        self.query_one(TimelineStrip).show(view.timeline[-200:], now, window)
        title = f"throughput {LABELS[self.dimension]} ({unit}, rx+tx" + (")" if len(drawn) != 1 else ", apart)")
        if len(names) > MAX_LINES:
            title += f" — busiest {MAX_LINES} of {len(names)}"
        if len(names) > TABLE_ROWS:
            title += f"; table: busiest {TABLE_ROWS} (/ finds the rest)"
        plt.title(title)
        plt.xlabel("seconds ago")
        plot.refresh()

        table = self.query_one(LiveTable)
        table.set_columns([Column("name", self.dimension), Column("rx", "rx now", "right"),
                           Column("tx", "tx now", "right"), Column("peak", "peak rx+tx", "right"),
                           Column("avg", "average rx / tx", "right"), Column("samples", "samples", "right")])
        missing = coverage_line(view.snapshot)
        partial = partial_totals(view.snapshot)[self.dimension] if missing else set()
        note = self.query_one("#netio-coverage", Static)
        note.display = bool(missing)
        if missing:
            note.update(Text(f"◐ {missing}: totals marked ◐ miss those nodes' containers", style=colors.warn))
        rows = {}
        for name in names[:TABLE_ROWS]:
            s = view.history.stats(self.dimension, name)
            if s is None:
                continue
            label = text(name, "bold" if name in drawn else colors.muted)
            if name in partial:
                label.append(" ◐ partial", style=colors.warn)
            rows[name] = [label, _rate(s.rx), _rate(s.tx),
                          _rate(s.peak), Text(f"{human_rate(s.avg_rx)} / {human_rate(s.avg_tx)}"),
                          text(s.samples, colors.muted)]
        table.set_rows(rows)

    def on_live_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter on a row: the details of that node, service or network."""
        event.stop()
        if self._view is None:
            return
        name = event.key
        if self.dimension == "node":
            node = next((n for n in self._view.snapshot.nodes if n.hostname == name), None)
            if node is None:
                self.notify(f"node {name} is no longer in the swarm", severity="warning")
                return
            self.post_message(Picked("netio", Selection("node", node.id, name)))
        else:
            self.post_message(Picked("netio", Selection(self.dimension, name, name)))


def _rate(value: float) -> Text:
    return Text(human_rate(value), no_wrap=True)
