"""Loss & latency: node x node per overlay, from probe results, judged against the thresholds (honest about
sample size); path-MTU black holes marked. Beyond MATRIX_LIMIT nodes a matrix does not fit: the pane shows the
whole matrix as a heat map (one character cell per group of pairs, coloured by the worst verdict in it), then a
per-node overview worst first, then the worst pairs, then the rest; picking a node (enter) keeps its pairs."""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static, Tab, Tabs
from textual.worker import Worker, WorkerState

from ..analysis.findings import plural
from ..analysis.headline import worst_overlay
from ..analysis.lossmap import BY_RANK, HeatGrid, Indexed, LossOverview, NodeState, PairState, index_results, overview
from ..analysis.thresholds import Verdict, black_hole, judge_loss, packets_needed
from ..model import ClusterSnapshot, Fault, PairWindow, ProbeResult
from .common import (
    Picked,
    RenderGuard,
    Selection,
    View,
    cursor_keys,
    palette_of,
    sync_columns,
    sync_rows,
    text,
    view_values,
)
from .common import SafeText as Text
from .keptable import KeptTable

MATRIX_LIMIT = 30  # nodes; beyond this a matrix does not fit a screen: heat map and per-node overview
MATRIX_RESULTS = 4 * MATRIX_LIMIT * (MATRIX_LIMIT - 1)  # more results than a matrix's pairs x probe kinds
WORST_PAIRS = 50  # the overview's "worst pairs" section
MORE_PAIRS = 200  # then this many of the rest (a picked node shows all of its pairs)
HEAT_LINES = 8  # the heat map's height in lines (two rows of cells per line: half blocks)
HEAT_LABEL = 10  # characters for the row labels left of the heat map

NO_PROBES = (
    "No probe results yet. Press P (or start with --probe) to measure loss, latency and path MTU between every "
    "pair of nodes: overlaytui deploys a probe agent (a global service labelled overlaytui.probe) on each overlay "
    "and removes it on exit. Or run `overlaytui probe` once."
)


class NetworkTabs(Tabs):
    """The overlays' tabs, made with the active one given. Mounted as the app ends (a serve viewer whose browser
    tab closed while its first frame was shown) its tabs are gone before it is: Textual's first activation raised
    (`No Tab with id ...`) and the viewer ended with a traceback on serve's stderr. Then nothing is activated."""

    def _on_mount(self, event: events.Mount) -> None:
        if self._first_active is not None and not self.query(f"#tabs-list > #{self._first_active}"):
            event.prevent_default()  # Tabs' own _on_mount (the next class's) would raise


class LossPane(Widget):
    BINDINGS = [Binding("o", "next_overlay(1)", "Next overlay", id="loss.next", show=False),
                Binding("O", "next_overlay(-1)", "Previous overlay", id="loss.previous", show=False)]
    DEFAULT_CSS = """
    LossPane { height: 1fr; }
    LossPane > Tabs { height: 2; }
    LossPane > #loss-legend { height: auto; padding: 0 1; }
    LossPane > #loss-heat { height: auto; padding: 0 1; display: none; }
    LossPane > DataTable { height: 1fr; }
    LossPane > #loss-detail { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.network: str | None = None
        self._tabs: Tabs | None = None  # mounted when there are overlays, with the one to open on active
        self._view: View | None = None
        self._generation = 0
        self._guard = RenderGuard()
        self._cells: dict[tuple[str, str], str] = {}  # (src, dst) -> the line shown when the cursor is there
        self._tab_names: dict[str, str] = {}  # tab id -> overlay name (labels are display text, not the name)
        self._rows: dict[str, Callable[[], str]] = {}  # overview row key -> its line under the cursor (lazy)
        self._row_nodes: dict[str, str] = {}  # overview row key -> the node enter picks
        self._heat_width = 0
        self._wanted: tuple | None = None  # the inputs of the overview to show (None: the matrix or nothing)
        self._judging: tuple | None = None  # (the worker, its inputs) judging an overview now: one at a time
        self._found: Indexed | None = None  # the wanted overview's index when it was made on the UI loop
        self._pending: tuple = ()
        self._overview_cache: tuple | None = None  # (its inputs, the overview, the index) of the last computed
        self.shown_overview: tuple | None = None  # what show_overview last rendered (its arguments)

    def action_next_overlay(self, step: int) -> None:
        """o / O: the next or previous overlay's tab (as Tab to the tabs and ← → would)."""
        names = list(self._tab_names)
        tabs = self._tabs
        if not names or tabs is None:
            return
        current = names.index(tabs.active) if tabs.active in names else 0
        tabs.active = names[(current + step) % len(names)]

    def compose(self) -> ComposeResult:
        yield Static(id="loss-legend")
        yield Static(id="loss-heat")
        yield KeptTable(id="loss-table", cursor_type="cell")
        yield Static(id="loss-detail")

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tabs is not self._tabs:
            return  # tabs on their way out
        self.network = self._tab_names.get(str(event.tab.id)) if event.tab else None
        if self._view is not None:
            self.show(self._view)

    def prepare(self, view: View) -> None:
        """While hidden: new probe results are judged all the same (in a worker beyond the matrix, ~0.4 s a round
        at 200 nodes), so a visit shows them at once — never an empty table, never the round before — and the
        pane holds no older round than the frame's (two rounds at 200 nodes held ~170 MB). Unchanged, nothing."""
        if view.frame.probes.recent:
            self.show(view)

    def show(self, view: View) -> None:
        self._view = view
        snap, colors = view.snapshot, palette_of(self)
        overlays = [n.name for n in snap.networks if n.driver == "overlay" and not n.ingress]
        if view.selection and view.selection.kind == "network" and view.selection.key in overlays:
            self.network = view.selection.key
        if self.network not in overlays:  # first shown (or its overlay is gone): the worst overlay
            worst = worst_overlay(overlays, view.headline.named) if view.headline is not None else None
            self.network = worst or (overlays[0] if overlays else None)
        if list(self._tab_names.values()) != overlays:
            # new tabs, made with the active one given (added one by one, Tabs would activate the first)
            self._generation += 1  # fresh ids: the old tabs may still be on their way out
            self._tab_names = {f"net-{self._generation}-{i}": name for i, name in enumerate(overlays)}
            active = next((tab for tab, name in self._tab_names.items() if name == self.network), None)
            old = self._tabs
            # labels are Text: a name is never markup. The first tabs are #loss-networks, later ones (overlays
            # created or removed) have an id of their own: the old ones are still there while they go.
            self._tabs = NetworkTabs(*(Tab(text(name), id=tab) for tab, name in self._tab_names.items()),
                                     active=active,
                                     id="loss-networks" if old is None else f"loss-networks-{self._generation}")
            if old is not None:
                old.remove()
            self.mount(self._tabs, before="#loss-legend")
        tabs = self._tabs
        for tab_id, name in self._tab_names.items():
            if tabs is not None and name == self.network and tabs.active != tab_id and tabs.is_mounted:
                tabs.active = tab_id
        legend = self.query_one("#loss-legend", Static)
        table = self.query_one(DataTable)
        raw = view.probes(self.network) if self.network else ()
        coverage = tuple(view.coverage(self.network)) if self.network else ()
        windows = view.windows(self.network) if self.network else {}
        heat = self.query_one("#loss-heat", Static)
        if self._guard.unchanged((raw, snap.networks, windows), (self.network, coverage, view.probe_problem,
                                                                 self._heat_width, *view_values(view, self))):
            return
        self._cells, self._rows, self._row_nodes = {}, {}, {}
        self._wanted, self._found, self._pending = None, None, ()  # an overview being judged is stale now
        if not raw and not coverage:
            heat.display = False
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
        found = index_results(raw, coverage) if len(raw) <= MATRIX_RESULTS else None
        if found is None or len(found.hosts) > MATRIX_LIMIT:
            # beyond the matrix (so many results that even indexing them leaves the UI loop)
            legend.update(self._legend(view, colors, expected_mtu, coverage, overview=True))
            self._compute_overview(view, raw, coverage, windows, expected_mtu, found)
            return
        legend.update(self._legend(view, colors, expected_mtu, coverage))
        heat.display = False
        pings, mtus, gaps, hosts = found.pings, found.mtus, found.gaps, found.hosts
        table.cursor_type = "cell"
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

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
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
        elif self._rows and table.row_count:
            try:
                row_key, _column = table.coordinate_to_cell_key(table.cursor_coordinate)
            except Exception:  # noqa: BLE001 - no row under the cursor (table rebuilt meanwhile)
                row_key = None
            line = self._rows.get(str(row_key.value)) if row_key is not None else None
            detail = line() if line is not None else ""
        self.query_one("#loss-detail", Static).update(Text(detail, no_wrap=False))

    def _legend(self, view: View, colors, expected_mtu: int | None, coverage=(), overview: bool = False) -> Text:
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
        if overview:
            legend.append(f"   rows: the recent window's loss % and verdict ✔ ~ ? ✖ (a loss-free window: also judged "
                          f"on everything since start), avg RTT; MTU! = path MTU below the overlay's {expected_mtu}")
        else:
            legend.append(f"   cell: last round's loss % (coloured by the recent window), since-start verdict ✔ ~ ? ✖, "
                          f"avg RTT; MTU! = path MTU below the overlay's {expected_mtu}")
        if coverage:
            legend.append("\nmeasured: ")
            for i, c in enumerate(coverage):
                legend.append(", " if i else "")
                legend.append(c.summary(), style=colors.good if c.complete else f"bold {colors.warn}")
            if not all(c.complete for c in coverage):
                legend.append("  (PARTIAL: the cursor's cell says why a pair is not measured)", style=colors.warn)
        return legend

    # ------------------------------------------------------------------------- beyond MATRIX_LIMIT nodes

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width and event.size.width != self._heat_width:
            self._heat_width = event.size.width
            if self._view is not None and self._wanted is not None:  # an overview shown or being judged
                self.show(self._view)

    def _heat_columns(self) -> int:
        """How many cells fit beside the row labels. Off screen (judged while hidden): the screen's width, which
        the pane spans when shown, so that a visit shows what was judged instead of judging again (also after the
        terminal was resized meanwhile: a hidden pane gets no Resize)."""
        width = self._heat_width if self._heat_width and self.is_on_screen else self.app.size.width
        return max(10, (width or 80) - HEAT_LABEL - 3)

    def _heat(self, grid: HeatGrid, hosts: list[str], colors) -> Text:
        """The whole matrix in HEAT_LINES lines: two rows of cells per line (upper half block in the upper row's
        colour on the lower row's), each cell the worst verdict of its group of pairs."""
        out = Text(no_wrap=True, overflow="crop")
        cols = len(grid.cells[0]) if grid.cells else 0
        first, last = _label(hosts[0], cols // 2 - 1), _label(hosts[-1], cols // 2 - 1)
        out.append(f"{'from ↓ to →':>{HEAT_LABEL}} ", style=colors.muted)
        out.append(f"{first}{last:>{max(cols - len(first), 0)}}\n", style=colors.muted)
        for line in range(0, len(grid.cells), 2):
            out.append(f"{_label(hosts[line * grid.row_size], HEAT_LABEL):>{HEAT_LABEL}} ", style=colors.muted)
            upper = grid.cells[line]
            lower = grid.cells[line + 1] if line + 1 < len(grid.cells) else (None,) * cols
            for top, bottom in zip(upper, lower, strict=True):
                if top is None and bottom is None:
                    out.append(" ")
                elif bottom is None:
                    out.append("▀", style=colors.heat(top))
                elif top is None:
                    out.append("▄", style=colors.heat(bottom))
                else:
                    out.append("▀", style=f"{colors.heat(top)} on {colors.heat(bottom)}")
            out.append("\n")
        out.append(f"{'':>{HEAT_LABEL}} ")
        for rank in sorted(BY_RANK, reverse=True):
            out.append("█ ", style=colors.heat(rank))
            out.append(f"{HEAT_WORDS[BY_RANK[rank]]}  ", style=colors.muted)
        out.append(f"(a cell: the worst of {grid.row_size}×{grid.col_size} pairs)", style=colors.muted)
        return out

    def _compute_overview(self, view: View, raw, coverage, windows, expected_mtu: int | None, found) -> None:
        """Judge the pairs in a thread (39,800 per overlay at 200 nodes: bench/bench_loss_overview.py); the
        result comes back as a worker state change and only the overview wanted now is shown."""
        inputs = (raw, windows, coverage, expected_mtu, view.thresholds, self._picked_hostname(view),
                  self._heat_columns())
        self._wanted, self._found, self._pending = inputs, found, (view, windows, expected_mtu)
        cached = self._overview_cache
        if cached is not None and _same_inputs(cached[0], inputs):
            # the same results judged the same way (a filter keystroke, a theme): shown again, not judged again —
            # a judging worker per keystroke competed with the keystroke's own render for the interpreter
            self.show_overview(cached[1], view, cached[2], windows, expected_mtu)
        elif self._judging is None:
            self._judge(inputs, found)
        # else: one judging at a time (a thread cannot be stopped: a storm of resizes or a new round while
        # judging started one thread each, all competing for the interpreter); what is wanted is judged next

    def _judge(self, inputs: tuple, found: Indexed | None) -> None:
        raw, windows, coverage, expected_mtu, thresholds, picked, max_cols = inputs

        def compute() -> tuple[tuple, LossOverview, Indexed]:
            indexed = found or index_results(raw, coverage)
            return inputs, overview(
                indexed.hosts, indexed.pings, indexed.mtus, windows, indexed.ping_gaps(), expected_mtu, thresholds,
                picked=picked if picked in indexed.hosts else None, limit=WORST_PAIRS + MORE_PAIRS,
                max_rows=2 * HEAT_LINES, max_cols=max_cols), indexed

        self._judging = (self.run_worker(compute, thread=True, group="loss-overview", exit_on_error=False), inputs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "loss-overview":
            return
        event.stop()
        if event.state in (WorkerState.PENDING, WorkerState.RUNNING) or self._judging is None \
                or self._judging[0] is not event.worker:
            return
        judged, self._judging = self._judging[1], None
        wanted = self._wanted
        if wanted is None or event.state is WorkerState.CANCELLED:  # the matrix or nothing now; or unmounted
            return
        if not _same_inputs(judged, wanted):  # asked for something else meanwhile: judged now, unless it was
            cached = self._overview_cache      # shown from the cache meanwhile (a width or a pick and back)
            if cached is None or not _same_inputs(cached[0], wanted):
                self._judge(wanted, self._found)
        elif event.state is WorkerState.ERROR:
            self.query_one("#loss-detail", Static).update(
                Text(f"✖ the loss overview failed: {event.worker.error}", style=f"bold {palette_of(self).bad}"))
        elif event.state is WorkerState.SUCCESS:
            inputs, found, indexed = event.worker.result
            self._overview_cache = (inputs, found, indexed)
            view, windows, expected_mtu = self._pending
            self.show_overview(found, view, indexed, windows, expected_mtu)

    def show_overview(self, found: LossOverview, view: View, indexed: Indexed, windows, expected_mtu) -> None:
        """Render a computed overview: the heat map, then nodes worst first, then the worst pairs, then the rest
        (a picked node: its row, then all its pairs). The UI loop's whole share of the work."""
        self.shown_overview = (found, view, indexed, windows, expected_mtu)
        colors, table = palette_of(self), self.query_one(DataTable)
        heat = self.query_one("#loss-heat", Static)
        heat.display = True
        heat.update(self._heat(found.grid, found.hosts, colors))
        self._cells, self._rows, self._row_nodes = {}, {}, {}
        table.cursor_type = "row"
        sync_columns(table, [("name", text("node / pair")), ("sent", text("sent: worst loss, to")),
                             ("recv", text("received: worst loss, from")), ("measured", text("measured")),
                             ("mtu", text("path MTU"))])
        rows: dict[str, list[Text]] = {}
        for node in found.nodes:
            key = f"node:{node.node}"
            rows[key] = [text(node.node, "bold"), _worst_cell(node.worst_sent, "→", colors),
                         _worst_cell(node.worst_received, "←", colors),
                         text(f"{node.measured}/{node.expected}",
                              colors.good if node.measured == node.expected else f"bold {colors.warn}"),
                         _node_mtu(node, expected_mtu, colors)]
            self._rows[key] = lambda node=node: _node_detail(node, expected_mtu, found.picked is None)
            self._row_nodes[key] = node.node
        if found.picked is not None:
            sections = [(f"pairs of {found.picked}, worst first ({found.pair_count:,})", found.pairs)]
        else:
            sections = [("worst pairs", found.pairs[:WORST_PAIRS]), ("the rest", found.pairs[WORST_PAIRS:])]
        blank = [text("") for _ in range(4)]
        for title, chunk in sections:
            if not chunk:
                continue
            rows[f"section:{title}"] = [text(title, f"bold {colors.primary}"), *blank]
            for a, b in chunk:
                key = f"pair:{a.src}\0{a.dst}"
                rows[key] = [text(f"{a.src} ⇄ {a.dst}"), _state_cell(a, colors), _state_cell(b, colors),
                             text(f"{sum(1 for p in (a, b) if p is not None and p.loss_pct is not None)}/2",
                                  colors.muted), _pair_mtu(a, b, expected_mtu, colors)]
                self._rows[key] = lambda a=a, b=b: "  |  ".join(
                    _detail(p.src, p.dst, indexed.pings.get((p.src, p.dst)), indexed.mtus.get((p.src, p.dst)),
                            expected_mtu, view, indexed.gaps.get(("ping", p.src, p.dst)),
                            indexed.gaps.get(("mtu", p.src, p.dst)), windows.get((p.src, p.dst)))
                    for p in (a, b) if p is not None)
                self._row_nodes[key] = a.src
        hidden = found.pair_count - len(found.pairs)
        if found.picked is None and hidden > 0:
            rows["section:more"] = [text(f"… {hidden:,} more pairs", colors.muted),
                                    text("enter on a node: all of its pairs", colors.muted), *blank[:3]]
        sync_rows(table, rows)
        self._show_detail()

    def subjects(self, snapshot: ClusterSnapshot) -> list[Fault]:
        """What the cursor is on, as fault targets: the pair of the matrix cell (and its first node), or the node
        of the overview's row; then the overlay shown."""
        found: list[Fault] = []
        keys = cursor_keys(self.query_one(DataTable))
        if keys is not None and self.network:
            row, column = keys
            if self._cells and column.startswith("dst:") and (row, column[4:]) in self._cells:
                found += [Fault("", node=row, peer=column[4:], network=self.network), Fault("", node=row)]
            elif row in self._row_nodes:
                found.append(Fault("", node=self._row_nodes[row]))
        if self.network:
            found.append(Fault("", network=self.network))
        return found

    @staticmethod
    def _picked_hostname(view: View) -> str | None:
        """The node picked in any pane (enter here, or in Topology)."""
        sel = view.selection
        node = view.snapshot.nodes_by_id.get(sel.key) if sel is not None and sel.kind == "node" else None
        return node.hostname if node is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a node (or a pair: its first node) keeps that node's pairs, here and in the other panes."""
        event.stop()
        hostname = self._row_nodes.get(str(event.row_key.value))
        node = next((n for n in self._view.snapshot.nodes if n.hostname == hostname), None) if self._view else None
        if node is not None:
            self.post_message(Picked("loss", Selection("node", node.id, node.hostname)))

MARKS = {Verdict.GOOD: "✔", Verdict.ACCEPTABLE: "~", Verdict.BAD: "✖", Verdict.INSUFFICIENT: "?",
         Verdict.UNKNOWN: ""}


def _same_inputs(a: tuple, b: tuple) -> bool:
    """Two overviews' inputs: the same results and windows (the same objects: a frame's), judged the same way."""
    return a[0] is b[0] and a[1] is b[1] and a[2:] == b[2:]


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
    if mtu is not None and black_hole(mtu.path_mtu, expected_mtu):
        cell.append(f" MTU!{mtu.path_mtu}", style=f"bold {colors.bad}")
    return cell


def _detail(src: str, dst: str, ping: ProbeResult | None, mtu: ProbeResult | None, expected_mtu: int | None,
            view: View, ping_gap: str | None, mtu_gap: str | None, window: PairWindow | None = None) -> str:
    """One line for the cell under the cursor: the numbers, or why they are missing."""
    parts = [f"{src} → {dst}"]
    if ping is not None and ping.measured and window is not None:
        th = view.thresholds
        recent_lost = window.recent_sent - window.recent_received
        total_lost = window.total_sent - window.total_received
        parts.append(
            f"last round {_lost(window.round_sent - window.round_received, window.round_sent, window.round_loss_pct)}; "
            f"last {window.window_s / 60:g} min {_lost(recent_lost, window.recent_sent, window.recent_loss_pct)} "
            f"({judge_loss(recent_lost, window.recent_sent, th).value}); since start "
            f"{_lost(total_lost, window.total_sent, window.total_loss_pct)} "
            f"({judge_loss(total_lost, window.total_sent, th).value})")
    elif ping is not None and ping.measured:
        lost = ping.sent - ping.received
        parts.append(f"{_lost(lost, ping.sent, ping.loss_pct)}: {judge_loss(lost, ping.sent, view.thresholds).value}")
        if ping.rtt_avg_ms is not None:
            parts.append(f"RTT min/avg/max {ping.rtt_min_ms}/{ping.rtt_avg_ms}/{ping.rtt_max_ms} ms")
    else:
        parts.append(f"loss not measured: {ping.error if ping is not None else ping_gap or 'no result yet'}")
    if mtu is not None and mtu.measured:
        hole = " (BLACK HOLE)" if black_hole(mtu.path_mtu, expected_mtu) else ""
        parts.append(f"path MTU {mtu.path_mtu}{hole}")
    elif mtu is not None or mtu_gap:
        parts.append(f"path MTU not measured: {mtu.error if mtu is not None else mtu_gap}")
    return " · ".join(parts)


def _lost(lost: int, sent: int, pct: float) -> str:
    """"no loss in 3,000 packets", "2 of 100 packets lost (2.000 %)"."""
    if not lost:
        return f"no loss in {sent:,} {'packet' if sent == 1 else 'packets'}"
    return f"{lost:,} of {sent:,} {'packet' if sent == 1 else 'packets'} lost ({pct:.3f} %)"


HEAT_WORDS = {Verdict.BAD: "bad or MTU hole", Verdict.ACCEPTABLE: "acceptable", Verdict.UNKNOWN: "not measured",
              Verdict.INSUFFICIENT: "few samples", Verdict.GOOD: "good"}


def _label(name: str, width: int) -> str:
    """A node name cut to `width` characters (the heat map's axis)."""
    width = max(width, 1)
    return name if len(name) <= width else name[: width - 1] + "…"


def _figure(state: PairState) -> str:
    return "not measured" if state.loss_pct is None else f"{state.loss_pct:.2f}%{MARKS[state.verdict]}"


def _worst_cell(state: PairState | None, arrow: str, colors) -> Text:
    """A node's worst pair in one direction: its loss, verdict and the other node."""
    if state is None:
        return text("-", colors.muted)
    other = state.dst if arrow == "→" else state.src
    cell = Text(no_wrap=True, overflow="ellipsis")
    cell.append(_figure(state), style=colors.verdict(state.verdict))
    cell.append(f" {arrow} {other}", style=colors.muted)
    return cell


def _state_cell(state: PairState | None, colors) -> Text:
    """One direction of a pair: loss, verdict mark, RTT; a black hole marked."""
    if state is None:
        return text("-", colors.muted)
    cell = Text(no_wrap=True, overflow="ellipsis")
    cell.append(_figure(state), style=colors.verdict(state.verdict))
    if state.rtt_ms is not None:
        cell.append(f" {state.rtt_ms:.2f}ms", style=colors.muted)
    if state.mtu_hole:
        cell.append(f" MTU!{state.path_mtu}", style=f"bold {colors.bad}")
    return cell


def _node_mtu(node: NodeState, expected_mtu: int | None, colors) -> Text:
    if node.mtu_holes:
        return text(f"{node.min_path_mtu} < {expected_mtu} on {plural(node.mtu_holes, 'pair')}", f"bold {colors.bad}")
    return text("ok" if node.measured else "-", colors.good if node.measured else colors.muted)


def _pair_mtu(a: PairState, b: PairState | None, expected_mtu: int | None, colors) -> Text:
    paths = [p.path_mtu for p in (a, b) if p is not None and p.path_mtu]
    if not paths:
        return text("-", colors.muted)
    holes = any(p is not None and p.mtu_hole for p in (a, b))
    return text(f"{min(paths)}" + (f" < {expected_mtu}" if holes else ""), f"bold {colors.bad}" if holes else "")


def _node_detail(node: NodeState, expected_mtu: int | None, can_pick: bool) -> str:
    """The line under the cursor for a node row."""
    parts = [node.node]
    for label, state, other in (("sends", node.worst_sent, "to"), ("receives", node.worst_received, "from")):
        if state is not None and state.loss_pct is not None:
            peer = state.dst if other == "to" else state.src
            parts.append(f"{label} its worst {state.loss_pct:.3f} % {other} {peer} ({state.verdict.value})")
    parts.append(f"{node.measured} of {plural(node.expected, 'pair')} measured, {node.bad} bad")
    if node.mtu_holes:
        parts.append(f"path MTU {node.min_path_mtu} on {plural(node.mtu_holes, 'pair')}, below the overlay's "
                     f"{expected_mtu} "
                     "(BLACK HOLE)")
    if can_pick:
        parts.append("enter: only its pairs (esc: all)")
    return " · ".join(parts)
