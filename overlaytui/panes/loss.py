"""Loss & latency: node x node per overlay, from probe results, judged against the thresholds (honest about
sample size); path-MTU black holes marked. Large clusters get the worst pairs as a list instead of a matrix."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable, Static, Tab, Tabs

from ..analysis.thresholds import Verdict, judge_loss, packets_needed
from ..model import PairWindow, ProbeResult
from .common import RenderGuard, View, palette_of, sync_columns, sync_rows, text, view_values
from .common import SafeText as Text
from .keptable import KeptTable

MATRIX_LIMIT = 30  # nodes; beyond this a matrix does not fit a screen: worst pairs are listed
WORST_PAIRS = 50

NO_PROBES = (
    "No probe results yet. Press P (or start with --probe) to measure loss, latency and path MTU between every "
    "pair of nodes: overlaytui deploys a probe agent (a global service labelled overlaytui.probe) on each overlay "
    "and removes it on exit. Or run `overlaytui probe` once."
)


class LossPane(Widget):
    DEFAULT_CSS = """
    LossPane { height: 1fr; }
    LossPane > Tabs { height: 2; }
    LossPane > #loss-legend { height: auto; padding: 0 1; }
    LossPane > DataTable { height: 1fr; }
    LossPane > #loss-detail { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.network: str | None = None
        self._view: View | None = None
        self._generation = 0
        self._guard = RenderGuard()
        self._cells: dict[tuple[str, str], str] = {}  # (src, dst) -> the line shown when the cursor is there
        self._tab_names: dict[str, str] = {}  # tab id -> overlay name (labels are display text, not the name)

    def compose(self) -> ComposeResult:
        yield Tabs(id="loss-networks")
        yield Static(id="loss-legend")
        yield KeptTable(id="loss-table", cursor_type="cell")
        yield Static(id="loss-detail")

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        self.network = self._tab_names.get(str(event.tab.id)) if event.tab else None
        if self._view is not None:
            self.show(self._view)

    def show(self, view: View) -> None:
        self._view = view
        snap, colors = view.snapshot, palette_of(self)
        overlays = [n.name for n in snap.networks if n.driver == "overlay" and not n.ingress]
        if view.selection and view.selection.kind == "network" and view.selection.key in overlays:
            self.network = view.selection.key
        tabs = self.query_one(Tabs)
        if list(self._tab_names.values()) != overlays:
            self._generation += 1  # fresh ids: the old tabs may still be on their way out
            tabs.clear()
            self._tab_names = {f"net-{self._generation}-{i}": name for i, name in enumerate(overlays)}
            for tab_id, name in self._tab_names.items():
                tabs.add_tab(Tab(text(name), id=tab_id))  # a Text label: a name is never markup
        if self.network not in overlays:
            self.network = overlays[0] if overlays else None
        for tab_id, name in self._tab_names.items():
            if name == self.network and tabs.active != tab_id:
                tabs.active = tab_id
        legend = self.query_one("#loss-legend", Static)
        table = self.query_one(DataTable)
        raw = view.probes(self.network) if self.network else ()
        coverage = tuple(view.coverage(self.network)) if self.network else ()
        windows = view.windows(self.network) if self.network else {}
        if self._guard.unchanged((raw, snap.networks, windows), (self.network, coverage, view.probe_problem,
                                                                 *view_values(view, self))):
            return
        results = list(raw)
        self._cells = {}
        if not results and not coverage:
            if view.probe_problem:
                legend.update(Text(f"✖ cannot probe: {view.probe_problem}  (P tries again)",
                                   style=f"bold {colors.bad}"))
            else:
                legend.update(Text(NO_PROBES, style=colors.warn))
            table.clear(columns=True)
            self._show_detail()
            return
        net = snap.network(self.network)
        expected_mtu = net.effective_mtu if net else None
        pings = {(r.src_node, r.dst_node): r for r in results if r.kind == "ping"}
        mtus = {(r.src_node, r.dst_node): r for r in results if r.kind == "mtu"}
        gaps = {(c.kind, g.src_node, g.dst_node): g.reason for c in coverage for g in c.missing}
        hosts = sorted({h for pair in pings for h in pair} | {h for pair in mtus for h in pair}
                       | {h for (_k, s, d) in gaps for h in (s, d)}, key=lambda h: (len(h), h))
        legend.update(self._legend(view, colors, expected_mtu, coverage))
        if len(hosts) > MATRIX_LIMIT:
            self._worst_pairs(table, view, pings, mtus, expected_mtu, colors)
            self._show_detail()
            return
        sync_columns(table, [("src", text("from \\ to"))] + [(f"dst:{h}", text(h)) for h in hosts])
        rows = {}
        for src in hosts:
            row = [text(src, "bold")]
            for dst in hosts:
                if src == dst:
                    row.append(text("·", colors.muted))
                    continue
                ping, mtu, window = pings.get((src, dst)), mtus.get((src, dst)), windows.get((src, dst))
                row.append(_cell(ping, mtu, expected_mtu, view, colors, gaps.get(("ping", src, dst)), window))
                self._cells[(src, dst)] = _detail(src, dst, ping, mtu, expected_mtu, view,
                                                  gaps.get(("ping", src, dst)), gaps.get(("mtu", src, dst)), window)
            rows[src] = row
        sync_rows(table, rows)
        self._show_detail()

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        event.stop()
        self._show_detail()

    def _show_detail(self) -> None:
        """What the cell under the cursor measured, or why it was not measured."""
        table = self.query_one(DataTable)
        detail = ""
        if self._cells and table.row_count:
            try:
                row_key, column_key = table.coordinate_to_cell_key(table.cursor_coordinate)
            except Exception:  # noqa: BLE001 - no cell under the cursor (table rebuilt meanwhile)
                row_key = column_key = None
            if row_key is not None and column_key is not None and str(column_key.value).startswith("dst:"):
                detail = self._cells.get((str(row_key.value), str(column_key.value)[4:]), "")
        self.query_one("#loss-detail", Static).update(Text(detail, no_wrap=False))

    def _legend(self, view: View, colors, expected_mtu: int | None, coverage=()) -> Text:
        th = view.thresholds
        legend = Text(no_wrap=False)
        legend.append(f"loss: good < {th.good_pct:g} %", style=colors.verdict(Verdict.GOOD))
        legend.append(" · ")
        legend.append(f"acceptable < {th.acceptable_pct:g} %", style=colors.verdict(Verdict.ACCEPTABLE))
        legend.append(" · ")
        legend.append(f"bad ≥ {th.acceptable_pct:g} %", style=colors.verdict(Verdict.BAD))
        legend.append(" · ")
        legend.append(f"? not enough samples (good needs ≥ {packets_needed(th):,} loss-free packets)",
                      style=colors.muted)
        legend.append(f"   cell: last round's loss % (coloured by the recent window), since-start verdict ✔ ~ ? ✖, "
                      f"avg RTT; MTU! = path MTU below the overlay's {expected_mtu}")
        if coverage:
            legend.append("\nmeasured: ")
            for i, c in enumerate(coverage):
                legend.append(", " if i else "")
                legend.append(f"{c.kind} {c.measured} of {c.expected} pairs",
                              style=colors.good if c.complete else f"bold {colors.warn}")
            if not all(c.complete for c in coverage):
                legend.append("  (PARTIAL: the cursor's cell says why a pair is not measured)", style=colors.warn)
        return legend

    def _worst_pairs(self, table: DataTable, view: View, pings, mtus, expected_mtu, colors) -> None:
        sync_columns(table, [("pair", text("pair")), ("loss", text("loss, RTT")), ("mtu", text("path MTU"))])

        def badness(pair):
            r = pings[pair]
            return -(r.loss_pct or 0), pair
        rows = {}
        for pair in sorted(pings, key=badness)[:WORST_PAIRS]:
            mtu = mtus.get(pair)
            rows[f"{pair[0]}>{pair[1]}"] = [text(f"{pair[0]} → {pair[1]}", "bold"),
                                            _cell(pings[pair], None, expected_mtu, view, colors),
                                            text(mtu.path_mtu if mtu and mtu.path_mtu else "-")]
        sync_rows(table, rows)


MARKS = {Verdict.GOOD: "✔", Verdict.ACCEPTABLE: "~", Verdict.BAD: "✖", Verdict.INSUFFICIENT: "?",
         Verdict.UNKNOWN: ""}


def _cell(ping: ProbeResult | None, mtu: ProbeResult | None, expected_mtu: int | None, view: View, colors,
          gap: str | None = None, window: PairWindow | None = None) -> Text:
    """The last round's loss (the loss of now) in the colour of the recent window's verdict, the RTT, and the
    verdict since start as one mark (✔ good, ~ acceptable, ? not enough samples, ✖ bad)."""
    if ping is None:
        return text("not measured" if gap else "-", colors.muted)
    if ping.error:
        return text(f"✖ {ping.error}", f"bold {colors.bad}")
    now_pct = window.round_loss_pct if window is not None else ping.loss_pct
    if now_pct is None:  # no packet sent: nothing measured, no figure
        return text("not measured", colors.muted)
    lost = ping.sent - ping.received
    verdict = judge_loss(lost, ping.sent, view.thresholds)
    total = judge_loss(window.total_sent - window.total_received, window.total_sent, view.thresholds) \
        if window is not None else verdict
    cell = Text(no_wrap=True)
    cell.append(f"{now_pct:.2f}%", style=colors.verdict(verdict))
    cell.append(MARKS[total], style=colors.verdict(total))
    if ping.rtt_avg_ms is not None:
        cell.append(f" {ping.rtt_avg_ms:.2f}ms", style=colors.muted)
    if mtu is not None and mtu.path_mtu and expected_mtu and mtu.path_mtu < expected_mtu:
        cell.append(f" MTU!{mtu.path_mtu}", style=f"bold {colors.bad}")
    return cell


def _detail(src: str, dst: str, ping: ProbeResult | None, mtu: ProbeResult | None, expected_mtu: int | None,
            view: View, ping_gap: str | None, mtu_gap: str | None, window: PairWindow | None = None) -> str:
    """One line for the cell under the cursor: the numbers, or why they are missing."""
    parts = [f"{src} → {dst}"]
    if ping is not None and ping.measured and window is not None:
        th = view.thresholds
        parts.append(
            f"last round {window.round_loss_pct:.2f} % ({window.round_sent - window.round_received} of "
            f"{window.round_sent}); last {window.window_s / 60:g} min {window.recent_loss_pct:.3f} % "
            f"({judge_loss(window.recent_sent - window.recent_received, window.recent_sent, th).value}); since "
            f"start {window.total_loss_pct:.3f} % of {window.total_sent} "
            f"({judge_loss(window.total_sent - window.total_received, window.total_sent, th).value})")
    elif ping is not None and ping.measured:
        lost = ping.sent - ping.received
        parts.append(f"{lost} of {ping.sent} packets lost ({ping.loss_pct:.3f} %): "
                     f"{judge_loss(lost, ping.sent, view.thresholds).value}")
        if ping.rtt_avg_ms is not None:
            parts.append(f"RTT min/avg/max {ping.rtt_min_ms}/{ping.rtt_avg_ms}/{ping.rtt_max_ms} ms")
    else:
        parts.append(f"loss not measured: {ping.error if ping is not None else ping_gap or 'no result yet'}")
    if mtu is not None and mtu.measured:
        hole = " (BLACK HOLE)" if expected_mtu and mtu.path_mtu and mtu.path_mtu < expected_mtu else ""
        parts.append(f"path MTU {mtu.path_mtu}{hole}")
    elif mtu is not None or mtu_gap:
        parts.append(f"path MTU not measured: {mtu.error if mtu is not None else mtu_gap}")
    return " · ".join(parts)
