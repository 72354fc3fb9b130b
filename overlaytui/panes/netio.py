"""NetIO: throughput over time per node, per service or per overlay (summed across nodes), with current, peak
and average. One PlotextPlot per chart (never the global plotext)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable, Tab, Tabs
from textual_plotext import PlotextPlot

from ..history import DIMENSIONS, Point
from .common import View, palette_of, sync_columns, sync_rows, text

MAX_LINES = 6  # more lines than this make a chart unreadable: the busiest ones are drawn
UNITS = [(1024**3, "GiB/s"), (1024**2, "MiB/s"), (1024, "KiB/s"), (1, "B/s")]
LABELS = {"node": "per node", "service": "per service", "network": "per network"}


def scale_for(peak: float) -> tuple[float, str]:
    """The unit that shows `peak` as a number between 1 and 1024."""
    for factor, unit in UNITS:
        if peak >= factor:
            return factor, unit
    return 1, "B/s"


def summarize(points: list[Point]) -> tuple[float, float, float, float, float]:
    """(current rx, current tx, peak rx+tx, average rx, average tx) over the history."""
    if not points:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    last = points[-1]
    peak = max(p.rx + p.tx for p in points)
    return last.rx, last.tx, peak, sum(p.rx for p in points) / len(points), sum(p.tx for p in points) / len(points)


class NetIOPane(Widget):
    DEFAULT_CSS = """
    NetIOPane { height: 1fr; }
    NetIOPane > Tabs { height: 2; }
    NetIOPane > PlotextPlot { height: 2fr; min-height: 8; }
    NetIOPane > DataTable { height: 1fr; min-height: 4; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dimension = "service"
        self._view: View | None = None

    def compose(self) -> ComposeResult:
        yield Tabs(*(Tab(LABELS[d], id=f"dim-{d}") for d in DIMENSIONS), active="dim-service")
        yield PlotextPlot(id="netio-plot")
        yield DataTable(id="netio-table", cursor_type="row", zebra_stripes=True)

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
        series = {name: view.history.series(self.dimension, name) for name in names}
        drawn = names[:MAX_LINES]
        peak = max((p.rx + p.tx for name in drawn for p in series[name]), default=0.0)
        if len(drawn) == 1:  # one subject: rx and tx apart
            peak = max((max(p.rx, p.tx) for p in series[drawn[0]]), default=0.0)
        factor, unit = scale_for(peak)
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        now = view.snapshot.taken_at
        if len(drawn) == 1:
            points = series[drawn[0]]
            xs = [p.t - now for p in points]
            plt.plot(xs, [p.rx / factor for p in points], label=f"{drawn[0]} rx", marker="braille")
            plt.plot(xs, [p.tx / factor for p in points], label=f"{drawn[0]} tx", marker="braille")
        else:
            for name in drawn:
                points = series[name]
                plt.plot([p.t - now for p in points], [(p.rx + p.tx) / factor for p in points], label=name,
                         marker="braille")
        title = f"throughput {LABELS[self.dimension]} ({unit}, rx+tx" + (")" if len(drawn) != 1 else ", apart)")
        if len(names) > MAX_LINES:
            title += f" — busiest {MAX_LINES} of {len(names)}"
        plt.title(title)
        plt.xlabel("seconds ago")
        plot.refresh()

        table = self.query_one(DataTable)
        sync_columns(table, [("name", text(self.dimension)), ("rx", text("rx now")), ("tx", text("tx now")),
                             ("peak", text("peak rx+tx")), ("avg", text("average rx / tx")),
                             ("samples", text("samples"))])
        rows = {}
        for name in names:
            rx, tx, top, avg_rx, avg_tx = summarize(series[name])
            rows[name] = [text(name, "bold" if name in drawn else colors.muted), _rate(rx), _rate(tx), _rate(top),
                          Text(f"{_fmt(avg_rx)} / {_fmt(avg_tx)}"), text(len(series[name]), colors.muted)]
        sync_rows(table, rows)


def _fmt(value: float) -> str:
    factor, unit = scale_for(value)
    return f"{value / factor:.1f} {unit}" if factor > 1 else f"{value:.0f} B/s"


def _rate(value: float) -> Text:
    return Text(_fmt(value), no_wrap=True)
