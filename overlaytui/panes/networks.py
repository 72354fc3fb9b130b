"""Networks: every network by driver, with addressing, MTU configured and effective, flags, peers, services."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable

from ..analysis.deep import place_states
from ..analysis.findings import Severity
from ..analysis.headline import MARKS
from ..model import ClusterSnapshot, Fault, Network, natural_key, natural_sorted
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

DRIVER_ORDER = {"overlay": 0, "bridge": 1, "macvlan": 2, "ipvlan": 3, "host": 4, "null": 5}
COLUMNS = [("name", "network"), ("driver", "driver"), ("scope", "scope"), ("subnet", "subnet"),
           ("gateway", "gateway"), ("vni", "VNI"), ("mtu", "MTU set/eff"), ("flags", "flags"),
           ("peers", "peers"), ("below", "below (--deep)"), ("services", "services (VIP, or dnsrr)"),
           ("engine", "engine")]


def network_key(net: Network) -> str:
    return net.id if net.scope != "local" else f"{net.id}@{net.engine}"


def _below(view: View, net: Network, colors) -> Text:
    """The overlay below, on its nodes (--deep): a cause found, per node; nodes not read, with why; else the
    nodes where all is well. "—" when the deep view read nothing."""
    frame = view.frame
    states = place_states(frame.snapshot, frame.kernels, frame.findings, net) if net.driver == "overlay" else []
    if not states:
        return text("—", colors.muted)
    parts: list[Text] = []
    for state in sorted(states, key=lambda s: -s.severity):
        if state.read and state.severity > Severity.INFO:
            parts.append(text(f"{MARKS[state.severity]} {state.hostname}: {state.note}", "bold"))
    unread = [s for s in states if not s.read]
    if unread:
        parts.append(text("— " + ", ".join(f"{s.hostname} ({s.note})" for s in unread), colors.muted))
    fine = [s for s in states if s.read and s.severity <= Severity.INFO]
    if fine:
        parts.append(text("✓ " + ", ".join(s.hostname + (f" ({s.partial} not read)" if s.partial else "")
                                           for s in fine), colors.good))
    line = Text()
    for i, part in enumerate(parts):
        if i:
            line.append(" · ")
        line.append_text(part)
    return line


def peer_hostnames(snapshot: ClusterSnapshot, net: Network) -> list[str]:
    by_address = {n.address: n.hostname for n in snapshot.nodes}
    return natural_sorted({by_address.get(p.address, p.address) for v in net.views for p in v.peers})


class NetworksPane(Widget):
    DEFAULT_CSS = "NetworksPane { height: 1fr; } NetworksPane > DataTable { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._guard = RenderGuard()

    def compose(self) -> ComposeResult:
        yield KeptTable(id="networks-table", cursor_type="row", zebra_stripes=True)

    def show(self, view: View) -> None:
        snap = view.snapshot
        engines = tuple((e.endpoint, e.hostname) for e in snap.engines)
        if self._guard.unchanged((snap.networks, snap.services, snap.nodes, snap.tasks, view.frame.kernels,
                                  view.frame.findings), (engines, *view_values(view, self))):
            return
        colors = palette_of(self)
        table = self.query_one(DataTable)
        deep = bool(view.frame.kernels)  # the column below the overlay only with --deep
        sync_columns(table, [(key, text(label)) for key, label in COLUMNS if deep or key != "below"])
        scope = view.services_in_scope()
        hostnames = {e.endpoint: e.hostname or e.endpoint for e in snap.engines}
        rows = {}
        order = lambda n: (DRIVER_ORDER.get(n.driver, 9), natural_key(n.name), n.engine or "")  # noqa: E731
        for net in sorted(snap.networks, key=order):
            services = net.services
            if scope is not None and net.driver == "overlay" and not {s.name for s in services} & scope:
                continue
            if view.selection and view.selection.kind == "network" and net.name != view.selection.key:
                continue
            if not view.matches(net.name, net.driver, net.subnet):
                continue
            flags = [f for f, on in (("encrypted", net.encrypted), ("attachable", net.attachable),
                                     ("ingress", net.ingress), ("internal", net.internal)) if on]
            peers = peer_hostnames(snap, net)
            svc = ", ".join(f"{s.name} {s.vip or 'dnsrr'}" for s in services)
            mtu = f"{net.configured_mtu or '-'}/{net.effective_mtu or '-'}"
            rows[network_key(net)] = [
                text(net.name, "bold"), text(net.driver, colors.primary if net.driver == "overlay" else ""),
                text(net.scope, colors.muted), text(net.subnet or "-"), text(net.gateway or "-"),
                text(net.vni or "-"), text(mtu), text(" ".join(flags), colors.accent if net.encrypted else ""),
                text(", ".join(peers) if peers else "-"), *([_below(view, net, colors)] if deep else []),
                text(svc or "-"),
                text(hostnames.get(net.engine or "", "") if net.engine else "swarm", colors.muted),
            ]
        sync_rows(table, rows)

    def subjects(self, snapshot: ClusterSnapshot) -> list[Fault]:
        """The overlay under the cursor, as a fault target."""
        keys = cursor_keys(self.query_one(DataTable))
        net = snapshot.networks_by_id.get(keys[0]) if keys is not None else None
        return [Fault("", network=net.name)] if net is not None and net.driver == "overlay" else []

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = str(event.row_key.value)
        self.post_message(Picked("networks", Selection("network", key, key)))
