"""Topology: nodes across the top, each overlay a bus running through the nodes it reaches, its services at the
end. A diagram you can move a cursor over: a node cell selects the node, the overlay cell the overlay."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ..analysis.deep import PlaceState, place_states
from ..analysis.findings import Severity, plural
from ..analysis.headline import MARKS, Named
from ..model import ClusterSnapshot, Fault, Health, Network
from .common import (
    MAX_NODE_COLUMNS,
    Picked,
    RenderGuard,
    Selection,
    View,
    cursor_keys,
    join,
    palette_of,
    sync_columns,
    sync_rows,
    text,
    view_values,
)
from .common import SafeText as Text
from .health import severity_style
from .keptable import KeptTable

ATTACHED, ABSENT = "━━●━━", "━━━━━"  # the legend's samples; cells are drawn to their column's width


def bus(width: int, attached: bool) -> str:
    """One node's stretch of an overlay's bus: a dot where the node is on it."""
    if not attached:
        return "━" * width
    left = (width - 1) // 2
    return "━" * left + "●" + "━" * (width - left - 1)


class TopologyPane(Widget):
    DEFAULT_CSS = """
    TopologyPane { height: 1fr; }
    TopologyPane > #topology-legend { height: auto; color: $text-muted; padding: 0 1; }
    TopologyPane > DataTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._guard = RenderGuard()

    def compose(self) -> ComposeResult:
        yield Static(id="topology-legend")
        # no cell padding: the bus runs through the node columns without gaps
        yield KeptTable(id="topology-table", cursor_type="cell", header_height=3, cell_padding=0)

    def show(self, view: View) -> None:
        snap = view.snapshot
        health = tuple((e.node_id, e.health) for e in snap.engines)
        named = view.headline.named if view.headline is not None else Named({}, {}, {})
        frame = view.frame
        if self._guard.unchanged((snap.nodes, snap.networks, snap.services, snap.tasks, frame.kernels,
                                  frame.findings), (health, named, *view_values(view, self))):
            return
        colors = palette_of(self)
        # the filter narrows nodes and overlays; one that matches none of a kind leaves that kind whole
        nodes = [n for n in snap.nodes if view.matches(n.hostname, n.address)] or list(snap.nodes)
        overlays = [n for n in _overlays(snap) if view.matches(n.name, n.subnet)] or _overlays(snap)
        engines = {e.node_id: e for e in snap.engines if e.node_id}
        table = self.query_one(DataTable)
        hidden = max(0, len(nodes) - MAX_NODE_COLUMNS)
        shown_nodes = nodes[:MAX_NODE_COLUMNS]
        columns = [("overlay", text(" overlay \n VNI · subnet \n MTU "))]
        if hidden:
            columns.append(("count", text(f" on nodes \n (of {len(nodes)}) \n ")))
        widths = {}
        for node in shown_nodes:
            engine = engines.get(node.id)
            role = "★ leader" if node.leader else node.role
            health = engine.health.value if engine else "no engine"
            header = Text(no_wrap=True)
            flagged = named.nodes.get(node.hostname)
            if flagged:  # a finding names this node
                header.append(f" {MARKS[flagged]} {node.hostname} \n",
                              style=f"reverse {severity_style(colors, flagged)}")
            else:
                header.append(f" {node.hostname} \n", style="bold")
            header.append(f" {role} \n", style=colors.muted)
            header.append(f" {node.state}", style=colors.node_state(node.state, node.availability))
            header.append(" · ")
            header.append(f"{health} ", style=colors.good if engine and engine.health is Health.OK else colors.bad)
            widths[node.id] = max(len(line) for line in header.plain.split("\n"))
            columns.append((f"node:{node.id}", header))
        columns.append(("services", text("  services \n  (mode running/desired)")))
        sync_columns(table, columns)
        rows = {}
        for net in overlays:
            members = {v.node_id for v in net.views}
            members |= {t.node_id for t in snap.tasks
                        if t.state == "running" and any(a.network_id == net.id for a in t.addresses)}
            mtu = f"MTU {net.effective_mtu}" + (" (set)" if net.configured_mtu else "")
            flagged = named.networks.get(net.name)
            name = text(f" {MARKS[flagged]} {net.name}", severity_style(colors, flagged)) if flagged \
                else text(f" {net.name}", "bold")
            label = join(name, text(" enc" if net.encrypted else "", colors.accent),
                         text(f" \n {net.vni or '-'} · {net.subnet or '-'} \n"), text(f" {mtu} ", colors.muted),
                         sep="")
            selected_net = view.selection is not None and view.selection.kind == "network" \
                and view.selection.key == net.name
            cells: list[Text] = [label if not selected_net else Text(label.plain, style=f"reverse {colors.accent}")]
            if hidden:
                on = sum(1 for n in nodes if n.id in members)
                cells.append(text(f"\n {on}/{len(nodes)}", colors.primary))
            below = {s.node_id: s for s in place_states(snap, frame.kernels, frame.findings, net)}
            for node in shown_nodes:
                attached = node.id in members
                style = colors.primary if attached else colors.muted
                if attached and node.state != "ready":
                    style = colors.bad
                cell = Text(f"\n{bus(widths[node.id], attached)}", style=style, no_wrap=True)
                if attached and node.id in below:
                    cell.append("\n")
                    cell.append_text(_below(below[node.id], widths[node.id], colors))
                cells.append(cell)
            services = [s for s in snap.services if net.id in s.network_ids or any(v.network_id == net.id
                                                                                  for v in s.vips)]
            svc_text = Text("  ", no_wrap=False)
            for i, svc in enumerate(services):
                running = svc.running_tasks if svc.running_tasks is not None else "?"
                desired = svc.wanted_tasks
                ok = running == desired
                if i:
                    svc_text.append("  ")
                flagged = named.services.get(svc.name)
                if flagged:
                    svc_text.append(f"{MARKS[flagged]} ", style=severity_style(colors, flagged))
                svc_text.append(svc.name, style="bold" if ok and not flagged else
                                severity_style(colors, flagged or Severity.WARNING))
                detail = f" ({svc.endpoint_mode} {running}/{desired})"
                svc_text.append(detail, style=colors.muted if ok else colors.warn)
            cells.append(svc_text if services else text("(no services)", colors.muted))
            rows[net.id] = cells
        sync_rows(table, rows, height=3)
        self.query_one("#topology-legend", Static).update(_legend(snap, nodes, hidden, bool(frame.kernels)))

    def subjects(self, snapshot: ClusterSnapshot) -> list[Fault]:
        """What the cursor is on, as fault targets: the node of its column, the overlay of its row."""
        keys = cursor_keys(self.query_one(DataTable))
        if keys is None:
            return []
        row, column = keys
        node = snapshot.nodes_by_id.get(column[5:]) if column.startswith("node:") else None
        net = snapshot.networks_by_id.get(row)
        return [*([Fault("", node=node.hostname)] if node else []), *([Fault("", network=net.name)] if net else [])]

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        column = str(event.cell_key.column_key.value)
        network_id = str(event.cell_key.row_key.value)
        # the app holds the snapshot; it resolves ids to a selection
        if column.startswith("node:"):
            self.post_message(Picked("topology", Selection("node", column[5:], column[5:])))
        else:
            self.post_message(Picked("topology", Selection("network", network_id, network_id)))


def _overlays(snapshot: ClusterSnapshot) -> list[Network]:
    return [n for n in snapshot.networks if n.driver == "overlay"]


def compact(count: int) -> str:
    """A packet count in a few characters: 950, 1.2k, 34k, 5.6M."""
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= limit:
            value = count / limit
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


def _below(state: PlaceState, width: int, colors) -> Text:
    """Under a node's stretch of an overlay's bus, what the deep view saw there: the vxlan packets in/out,
    or the causes found there, or that it was not read."""
    if not state.read:
        line, style = "— not read", colors.muted
    elif state.severity > Severity.INFO:
        line, style = f"{MARKS[state.severity]} {state.note}", severity_style(colors, state.severity)
    else:
        line, style = f"✓ {compact(state.rx_packets or 0)}↓{compact(state.tx_packets or 0)}↑", colors.good
        if state.partial:
            line, style = f"{line} ?", colors.warn  # a part not read there: no verdict on it
    return Text(line if len(line) <= width else line[:max(width - 1, 0)] + "…", style=style, no_wrap=True)


def _legend(snapshot: ClusterSnapshot, nodes, hidden: int, deep: bool = False) -> Text:
    overlays = _overlays(snapshot)
    ready = sum(1 for n in snapshot.nodes if n.state == "ready")
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{ready}/{plural(len(snapshot.nodes), 'node')} ready · {plural(len(overlays), 'overlay')} · "
                f"{plural(len(snapshot.services), 'service')}  ")
    line.append(f"{ATTACHED} node on the overlay   {ABSENT} not   enc: encrypted (IPsec)   "
                "enter: filter the other panes by a node or an overlay")
    if deep:
        line.append("   below the bus (--deep): ✓ vxlan packets in↓ out↑ (? a part not read), or the cause found "
                    "there, — not read")
    if len(nodes) < len(snapshot.nodes):
        line.append(f"   ({plural(len(snapshot.nodes) - len(nodes), 'node')} hidden by the filter)")
    if hidden:
        line.append(f"   first {MAX_NODE_COLUMNS} of {len(nodes)} nodes drawn: / narrows them")
    return line
