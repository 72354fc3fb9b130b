"""Placement: services x nodes, what runs where (like docker-swarm-visualizer, with task states and errors)."""

from __future__ import annotations

from collections import defaultdict

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ..analysis.findings import imbalance, latest_failures, plural
from ..model import TASK_FAILED, TASK_PENDING, ClusterSnapshot, Fault, natural_key
from .common import (
    MAX_NODE_COLUMNS,
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


class PlacementPane(Widget):
    DEFAULT_CSS = """
    PlacementPane { height: 1fr; }
    PlacementPane > #placement-legend { height: auto; color: $text-muted; padding: 0 1; }
    PlacementPane > DataTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._guard = RenderGuard()

    def compose(self) -> ComposeResult:
        yield Static(id="placement-legend")
        yield KeptTable(id="placement-table", cursor_type="row", zebra_stripes=True)

    def show(self, view: View) -> None:
        snap = view.snapshot
        if self._guard.unchanged((snap.nodes, snap.services, snap.tasks), view_values(view, self)):
            return
        colors = palette_of(self)
        table = self.query_one(DataTable)
        node_scope = view.nodes_in_scope()
        nodes = [n for n in snap.nodes if node_scope is None or n.id in node_scope]
        matrix = len(nodes) <= MAX_NODE_COLUMNS
        columns = [("service", text("service")), ("mode", text("mode")), ("tasks", text("run/want"))]
        if matrix:
            columns += [(f"node:{n.id}", Text(n.hostname, style=colors.node_state(n.state, n.availability)))
                        for n in nodes]
        else:  # too many nodes for a column each: the spread, and where the tasks run
            columns += [("spread", text("nodes · per node")),
                        ("where", text(f"where (of {plural(len(nodes), 'node')})"))]
        columns.append(("problem", text("problem")))
        sync_columns(table, columns)

        cells = _cells(snap)
        ready = [n.id for n in snap.nodes if n.state == "ready" and n.availability == "active"]
        errors = {sid: t.error for sid, t in latest_failures(snap.tasks).items()}
        shared: dict = {}  # one Text per distinct cell content: 300 x 200 cells are mostly alike
        scope = view.services_in_scope()
        rows = {}
        for service in snap.services:
            if scope is not None and service.name not in scope or not view.matches(service.name, service.image):
                continue
            running = {node: counts["running"] for node, counts in cells[service.id].items()}
            problem = imbalance(service, running, ready)
            error = errors.get(service.id, "")
            run = service.running_tasks if service.running_tasks is not None else sum(running.values())
            want = service.wanted_tasks
            short = want is not None and run < want
            name_style = f"bold {colors.warn}" if problem or short else "bold"
            if error and run == 0:
                name_style = f"bold {colors.bad}"
            mode = service.mode + (f" {service.update_state}" if service.update_state else "")
            row = [text(service.name, name_style), text(mode, colors.muted),
                   text(f"{run}/{want if want is not None else '?'}", colors.warn if short else "")]
            if matrix:
                for node in nodes:
                    row.append(_cell(cells[service.id].get(node.id), colors, shared))
            else:
                row += _summary(cells[service.id], nodes, colors)
            detail = error or problem
            row.append(text(detail, colors.bad if error else colors.warn))
            rows[service.name] = row
        sync_rows(table, rows)
        legend = Text(no_wrap=True, overflow="ellipsis")
        legend.append("●", style=colors.good)
        legend.append(" running  ")
        legend.append("◌", style=colors.warn)
        legend.append(" pending  ")
        legend.append("✖", style=colors.bad)
        legend.append(" failed/rejected   yellow name: under-replicated or unevenly spread   enter: details")
        if not matrix:
            legend.append(f"   ({plural(len(nodes), 'node')}: select a node or / to see the matrix)")
        if view.selection:
            legend.append(f"   showing {view.selection.describe()} (esc: all)")
        self.query_one("#placement-legend", Static).update(legend)

    def subjects(self, snapshot: ClusterSnapshot) -> list[Fault]:
        """The service under the cursor, as a fault target (a rolling update)."""
        keys = cursor_keys(self.query_one(DataTable))
        return [Fault("", service=keys[0])] if keys is not None else []

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        name = str(event.row_key.value)
        self.post_message(Picked("placement", Selection("service", name, name)))


def _cells(snapshot: ClusterSnapshot) -> dict[str, dict[str, dict[str, int]]]:
    """service id -> node id -> {running, pending, failed} for the tasks meant to run (recent failures too)."""
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: {
        "running": 0, "pending": 0, "failed": 0}))
    for task in snapshot.tasks:
        node = task.node_id or "unassigned"
        cell = table[task.service_id][node]
        if task.up:
            cell["running"] += 1
        elif task.state in TASK_PENDING and task.wanted:
            cell["pending"] += 1
        elif task.state in TASK_FAILED and task.wanted:
            cell["failed"] += 1
    return table


def _summary(per_node: dict[str, dict[str, int]], nodes, colors) -> list[Text]:
    """For many nodes: on how many nodes the service runs, min-max tasks per node, and the busiest nodes."""
    hostnames = {n.id: n.hostname for n in nodes}
    running = {node: c["running"] for node, c in per_node.items() if node in hostnames and c["running"]}
    counts = list(running.values())
    spread = f"{len(counts)} · {min(counts)}-{max(counts)}" if counts else "0"
    where = Text(no_wrap=True, overflow="ellipsis")
    for node, count in sorted(running.items(), key=lambda item: (-item[1], natural_key(hostnames[item[0]])))[:12]:
        where.append(f"{hostnames[node]}●{count} ", style=colors.good)
    failed = sum(c["failed"] for c in per_node.values())
    pending = sum(c["pending"] for c in per_node.values())
    if pending:
        where.append(f"◌{pending} ", style=colors.warn)
    if failed:
        where.append(f"✖{failed}", style=f"bold {colors.bad}")
    return [text(spread), where]


def _cell(counts: dict[str, int] | None, colors, shared: dict) -> Text:
    key = (counts["running"], counts["pending"], counts["failed"]) if counts else None
    cell = shared.get(key)
    if cell is None:
        cell = shared[key] = _new_cell(counts, colors)
    return cell


def _new_cell(counts: dict[str, int] | None, colors) -> Text:
    result = Text(no_wrap=True)
    if not counts:
        return Text("·", style=colors.muted)
    if counts["running"]:
        result.append(f"●{counts['running']}", style=colors.good)
    if counts["pending"]:
        result.append(f" ◌{counts['pending']}", style=colors.warn)
    if counts["failed"]:
        result.append(f" ✖{counts['failed']}", style=f"bold {colors.bad}")
    return result if result.plain else Text("·", style=colors.muted)
