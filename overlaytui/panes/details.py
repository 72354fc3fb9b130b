"""Detail screens for one node, service, network or container; they follow the live data while open."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..analysis.findings import plural
from ..model import ClusterSnapshot, NetworkView, natural_key, natural_sorted
from ..units import human_bytes, human_rate
from .chart import Chart
from .common import SafeText as Text
from .common import View, palette_of
from .footer import PrunedFooter


def _kv(rows: list[tuple[str, object]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(Text(key), value if isinstance(value, Text) else Text("-" if value in (None, "") else str(value)))
    return table


def _table(*headers: str) -> Table:
    table = Table(*headers, box=None, header_style="bold", pad_edge=False, expand=False)
    return table


def _age(snapshot: ClusterSnapshot, timestamp: float) -> str:
    if not timestamp:
        return "-"
    seconds = max(0, snapshot.taken_at - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _by(items, name) -> list:
    """Items in the natural order of their names."""
    return sorted(items, key=lambda item: natural_key(name(item)))


def _peers(view: NetworkView, by_address: dict[str, str]) -> str:
    """The peers one node's engine sees on a network, by hostname where known, in natural order."""
    return ", ".join(natural_sorted(by_address.get(p.address, p.address) for p in view.peers))


def _endpoints(view: NetworkView) -> str:
    return ", ".join(f"{e.name} {e.ipv4}" for e in _by(view.endpoints, lambda e: e.name))


class DetailScreen(ModalScreen):
    """Base: a scrolling body re-rendered from each new View."""

    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen > VerticalScroll { width: 92%; height: 90%; background: $surface; border: round $primary;
                                    padding: 0 1; }
    DetailScreen Chart { height: 14; }
    """
    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="detail.close")]
    kind = ""

    def __init__(self, key: str, view: View) -> None:
        super().__init__()
        self.key = key
        self._view = view

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="detail-body")
            if self.has_chart:
                yield Chart(id="detail-plot")
        yield PrunedFooter()

    has_chart = False

    def on_mount(self) -> None:
        self.show(self._view)

    def show(self, view: View) -> None:
        self._view = view
        body = self.render_body(view)
        self.query_one("#detail-body", Static).update(body)
        if self.has_chart:
            self.render_chart(view, self.query_one(Chart))

    def render_body(self, view: View):
        raise NotImplementedError

    def render_chart(self, view: View, plot: Chart) -> None:
        return None

    def _plot(self, plot: Chart, points, now: float, title: str) -> None:
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        if points:
            xs = [p.t - now for p in points]
            plt.plot(xs, [p.rx / 1024 for p in points], label="rx", marker="hd")
            plt.plot(xs, [p.tx / 1024 for p in points], label="tx", marker="hd")
        plt.title(title + " (KiB/s)" + ("" if points else ": no history yet"))
        plt.xlabel("seconds ago")
        plot.refresh()


class NodeDetail(DetailScreen):
    kind = "node"
    has_chart = True

    def render_body(self, view: View):
        snap, colors = view.snapshot, palette_of(self)
        node = snap.nodes_by_id.get(self.key)
        if node is None:
            return Text(f"node {self.key} is no longer in the swarm", style=colors.bad)
        engine = next((e for e in snap.engines if e.node_id == node.id), None)
        head = _kv([
            ("node", Text(node.hostname, style="bold")), ("id", node.id),
            ("role", node.role + (" (leader)" if node.leader else "")),
            ("state", Text(node.state, style=colors.node_state(node.state, node.availability))),
            ("availability", node.availability), ("address", node.address), ("engine version", node.engine_version),
            ("engine connection", Text(f"{engine.health.value} {engine.message}".strip(), style=colors.good
                                       if engine and engine.health.value == "ok" else colors.bad) if engine
             else Text("none (no per-node stats or network views)", style=colors.warn)),
            ("labels", ", ".join(f"{k}={v}" for k, v in _by(node.labels, lambda kv: kv[0]))),
        ])
        tasks = _table("task", "state", "desired", "since", "error")
        for task in sorted((t for t in snap.tasks if t.node_id == node.id), key=lambda t: natural_key(t.name)):
            tasks.add_row(Text(task.name), Text(task.state, style=colors.task_state(task.state)),
                          Text(task.desired_state), Text(_age(snap, task.timestamp)),
                          Text(task.error, style=colors.bad))
        nets = _table("overlay", "peers seen from this node", "local endpoints")
        by_address = {n.address: n.hostname for n in snap.nodes}
        for net in _by(snap.networks, lambda n: n.name):
            for v in net.views:
                if v.node_id == node.id:
                    nets.add_row(Text(net.name), Text(_peers(v, by_address)), Text(_endpoints(v)))
        return Group(head, Text("\ntasks", style="bold"), tasks, Text("\nnetworks", style="bold"), nets)

    def render_chart(self, view: View, plot: Chart) -> None:
        node = view.snapshot.nodes_by_id.get(self.key)
        name = node.hostname if node else self.key
        self._plot(plot, view.history.series("node", name), view.snapshot.taken_at, f"{name} container throughput")


class ServiceDetail(DetailScreen):
    kind = "service"
    has_chart = True

    def render_body(self, view: View):
        snap, colors = view.snapshot, palette_of(self)
        svc = next((s for s in snap.services if s.name == self.key), None)
        if svc is None:
            return Text(f"service {self.key} no longer exists", style=colors.bad)
        names = {n.id: n.name for n in snap.networks}
        hostnames = {n.id: n.hostname for n in snap.nodes}
        head = _kv([
            ("service", Text(svc.name, style="bold")), ("id", svc.id), ("image", svc.image),
            ("mode", svc.mode + (f", {plural(svc.replicas, 'replica')}" if svc.replicas is not None else "")),
            ("tasks", f"{svc.running_tasks}/{svc.desired_tasks} running"),
            ("endpoint mode", svc.endpoint_mode + (" (DNS round-robin: no VIP)" if svc.endpoint_mode == "dnsrr"
                                                   else "")),
            ("virtual IPs", ", ".join(f"{v.address} on {names.get(v.network_id, v.network_id[:12])}"
                                      for v in svc.vips)),
            ("networks", ", ".join(natural_sorted(names.get(n, n[:12]) for n in svc.network_ids))),
            ("published", ", ".join(svc.published_ports)), ("update", svc.update_state),
        ])
        tasks = _table("task", "node", "state", "desired", "since", "addresses", "error")
        for task in sorted((t for t in snap.tasks if t.service_id == svc.id),
                           key=lambda t: (t.slot or 0, -t.timestamp)):
            tasks.add_row(Text(task.name), Text(hostnames.get(task.node_id or "", task.node_id or "-")),
                          Text(task.state, style=colors.task_state(task.state)), Text(task.desired_state),
                          Text(_age(snap, task.timestamp)), Text(" ".join(a.address for a in task.addresses)),
                          Text(task.error, style=colors.bad))
        return Group(head, Text("\ntasks (like docker service ps, history included)", style="bold"), tasks)

    def render_chart(self, view: View, plot: Chart) -> None:
        self._plot(plot, view.history.series("service", self.key), view.snapshot.taken_at,
                   f"{self.key} throughput, all tasks")


class NetworkDetail(DetailScreen):
    kind = "network"
    has_chart = True

    def render_body(self, view: View):
        snap, colors = view.snapshot, palette_of(self)
        net = snap.network(self.key.split("@")[0])
        if net is None:
            return Text(f"network {self.key} no longer exists", style=colors.bad)
        head = _kv([
            ("network", Text(net.name, style="bold")), ("id", net.id), ("driver", net.driver), ("scope", net.scope),
            ("subnet", net.subnet), ("gateway", net.gateway), ("VNI", net.vni),
            ("MTU", f"{net.effective_mtu} effective" + (f" (configured {net.configured_mtu})" if net.configured_mtu
                                                        else " (default)")),
            ("flags", ", ".join(f for f, on in (("encrypted", net.encrypted), ("attachable", net.attachable),
                                               ("ingress", net.ingress), ("internal", net.internal)) if on)),
        ])
        services = _table("service", "VIP", "task", "endpoint IP", "node")
        by_address = {n.address: n.hostname for n in snap.nodes}
        for svc in _by(net.services, lambda s: s.name):
            for i, ep in enumerate(_by(svc.tasks or (), lambda e: e.task_name)):
                services.add_row(Text(svc.name if i == 0 else ""), Text((svc.vip or "dnsrr") if i == 0 else ""),
                                 Text(ep.task_name), Text(ep.ip), Text(by_address.get(ep.host_ip, ep.host_ip)))
        views = _table("node", "peers", "local endpoints")
        hostnames = {n.id: n.hostname for n in snap.nodes}
        for v in _by(net.views, lambda v: hostnames.get(v.node_id or "", v.engine)):
            views.add_row(Text(hostnames.get(v.node_id or "", v.engine)), Text(_peers(v, by_address)),
                          Text(_endpoints(v)))
        return Group(head, Text("\nservices and their task endpoints", style="bold"), services,
                     Text("\nper node (only where the network is active)", style="bold"), views)

    def render_chart(self, view: View, plot: Chart) -> None:
        name = self.key.split("@")[0]
        net = view.snapshot.network(name)
        label = net.name if net else name
        self._plot(plot, view.history.series("network", label), view.snapshot.taken_at, f"{label} throughput")


class ContainerDetail(DetailScreen):
    kind = "container"
    has_chart = True

    def render_body(self, view: View):
        snap, colors = view.snapshot, palette_of(self)
        c = next((c for c in snap.containers if c.container_id == self.key), None)
        if c is None:
            return Text(f"container {self.key[:12]} is not running any more", style=colors.bad)
        hostnames = {n.id: n.hostname for n in snap.nodes}
        head = _kv([
            ("container", Text(c.name, style="bold")), ("id", c.container_id[:12]), ("service", c.service_name),
            ("node", hostnames.get(c.node_id or "", c.engine)),
            ("cpu", f"{c.cpu_pct:.1f} %" if c.cpu_pct is not None else "-"),
            ("memory", f"{human_bytes(c.mem_bytes)} of {human_bytes(c.mem_limit)}"),
            ("sample age", f"{max(0.0, snap.taken_at - c.read_at):.1f} s" if c.read_at else "no sample yet"),
        ])
        ifaces = _table("interface", "network", "mapped by", "rx", "tx", "rx rate", "tx rate")
        for i in c.interfaces:
            ifaces.add_row(Text(i.name), Text(i.network_name or "?"), Text("MAC" if i.exact else "order"),
                           Text(human_bytes(i.rx_bytes)), Text(human_bytes(i.tx_bytes)), Text(human_rate(i.rx_rate)),
                           Text(human_rate(i.tx_rate)))
        return Group(head, Text("\ninterfaces", style="bold"), ifaces)

    def render_chart(self, view: View, plot: Chart) -> None:
        self._plot(plot, view.history.container(self.key), view.snapshot.taken_at, "container throughput")


DETAIL_SCREENS = {cls.kind: cls for cls in (NodeDetail, ServiceDetail, NetworkDetail, ContainerDetail)}


PANES_HELP = [
    ("1 Topology", "overlays as buses through the nodes they reach; what a finding names is marked ✖ ⚠; enter "
                   "on a node or an overlay filters the other panes"),
    ("2 Placement", "services x nodes: ● running ◌ pending ✖ failed; uneven spread in yellow; enter: details"),
    ("3 NetIO", "throughput history per node / service / overlay (summed across nodes); d switches"),
    ("4 Loss", "probe results per overlay (it opens on the worst): loss % and RTT per node pair, judged against "
               "the thresholds; o / O the next / previous overlay (or Tab to the overlay tabs, then ← →)"),
    ("5 Networks", "every network by driver: subnet, VNI, MTU set/effective, peers, VIP or dnsrr"),
    ("6 Findings", "the doctor's checks, one line per cause, worst first, with evidence and fix; enter highlights "
                   "the subject"),
    ("7 Timeline", "what changed, newest first: nodes, engines, tasks placed, findings opened and resolved; enter "
                   "on a moment shows the cluster then"),
]


class HelpScreen(ModalScreen):
    """Every key and pane. Fits 80 columns; the arrow keys, page keys and home/end scroll it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 100%; height: 90%; background: $surface;
                                  border: round $primary; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]
    AUTO_FOCUS = "VerticalScroll"  # the arrow keys scroll at once (not after a Tab)

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self._rows = bindings

    def compose(self) -> ComposeResult:
        keys = _table("key", "does")
        for key, description in self._rows:
            keys.add_row(Text(key, style="bold"), Text(description))
        panes = _kv(PANES_HELP)
        with VerticalScroll():
            yield Static(Group(Text("overlaytui — keys (↑ ↓ PgUp PgDn scroll, esc closes)", style="bold"), keys,
                               Text("\npanes (the line under the title names the worst problems; a tab's ✖2 or ⚠1 "
                                    "counts the problems it shows)", style="bold"), panes,
                               Text("\nnames from the cluster are shown as text, never as markup", style="dim")))
        yield PrunedFooter()
