"""A ClusterSnapshot as JSON-ready data (schema: docs/snapshot-schema.md) and as a readable text summary."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from .analysis.netio import Throughput, aggregate, by_network, coverage_line, partial_totals
from .model import ClusterSnapshot, Health, NodeKernel, natural_key, natural_sorted
from .safe import one_line
from .units import human_bytes, human_rate

SCHEMA = "overlaytui.snapshot/1"


def _throughput(values: dict[str, Throughput], partial: set[str]) -> dict[str, dict[str, float]]:
    return {k: {"rx_bytes_per_s": round(v.rx, 1), "tx_bytes_per_s": round(v.tx, 1), "containers": v.containers,
                "partial": k in partial}
            for k, v in sorted(values.items(), key=lambda kv: natural_key(kv[0]))}


def kernels_to_list(kernels: Sequence[NodeKernel]) -> list[dict[str, Any]]:
    """The nodes' kernel views as JSON (`--deep`), field names as in model.py, plus `conntrack.used`."""
    found = []
    for kernel in kernels:
        raw = asdict(kernel)
        raw["conntrack"]["used"] = kernel.conntrack.used
        found.append(raw)
    return found


def snapshot_to_dict(snapshot: ClusterSnapshot, kernels: Sequence[NodeKernel] | None = None) -> dict[str, Any]:
    """The snapshot as JSON-ready data; `kernels`: the nodes' kernel views when the deep view read them (the
    `kernels` field is there only then)."""
    data = asdict(snapshot)
    data = {"schema": SCHEMA, **data}
    if kernels is not None:
        data["kernels"] = kernels_to_list(kernels)
    for net, raw in zip(snapshot.networks, data["networks"], strict=False):
        raw["effective_mtu"] = net.effective_mtu
        raw["services"] = [asdict(s) for s in net.services]
    for task, raw in zip(snapshot.tasks, data["tasks"], strict=False):
        raw["name"] = task.name
    for container, raw in zip(snapshot.containers, data["containers"], strict=False):
        raw.update(rx_bytes=container.rx_bytes, tx_bytes=container.tx_bytes, rx_rate=container.rx_rate,
                   tx_rate=container.tx_rate)
    data["nodes_without_engine"] = [n.id for n in snapshot.nodes_without_engine]
    totals, partial = aggregate(snapshot), partial_totals(snapshot)
    data["netio"] = {f"by_{dim}": _throughput(totals[dim], partial[dim]) for dim in ("network", "service", "node")}
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    gaps = snapshot.unmeasured_nodes
    data["coverage"] = {
        "stats_nodes_measured": natural_sorted(hostnames[n.id] for n in snapshot.nodes if n.id not in gaps),
        "stats_nodes_missing": [{"node": hostnames.get(n, n), "node_id": n, "reason": why}
                                for n, why in sorted(gaps.items(),
                                                     key=lambda kv: natural_key(hostnames.get(kv[0], kv[0])))],
        "complete": not gaps,
        "summary": coverage_line(snapshot) or f"stats from all {len(snapshot.nodes)} nodes",
    }
    return data


def summary_text(snapshot: ClusterSnapshot) -> str:
    """The readable summary, one item per line: whatever a name holds (a newline, an escape), it stays inside
    its own line (`safe.one_line`), so no name can start a line of its own (a forged row)."""
    lines: list[str] = []

    def add(line: str) -> None:
        head = "\n" if line.startswith("\n") else ""  # a section's blank line before its title: ours
        lines.append(head + one_line(line[len(head):]))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snapshot.taken_at))
    overlays = [n for n in snapshot.networks if n.driver == "overlay"]
    swarm = f"swarm {snapshot.swarm_id[:12]}" if snapshot.swarm_id else "no swarm view"
    add(f"{swarm}: {len(snapshot.nodes)} nodes, {len(snapshot.services)} services, "
        f"{sum(1 for t in snapshot.tasks if t.state == 'running')} running tasks, {len(overlays)} overlays  ({stamp})")

    add("\nENGINES")
    for e in snapshot.engines:
        age = f"{snapshot.taken_at - e.updated_at:.1f} s ago" if e.updated_at else "never"
        detail = f"  {e.message}" if e.message else ""
        host = e.hostname or "?"
        add(f"  {e.health.value:5}  {host:12} {e.role:10} {e.version:16} {e.endpoint}  (data {age}){detail}")
    if snapshot.nodes_without_engine:
        names = ", ".join(n.hostname for n in snapshot.nodes_without_engine)
        add(f"  no engine connection to: {names} (no per-node stats or network views for them)")

    if snapshot.nodes:
        add("\nNODES")
        for n in snapshot.nodes:
            role = n.role + (" (leader)" if n.leader else "")
            add(f"  {n.hostname:12} {role:17} {n.state:8} {n.availability:7} {n.address:15} {n.engine_version}")

    if snapshot.services:
        add("\nSERVICES")
        net_names = {n.id: n.name for n in snapshot.networks}
        for s in snapshot.services:
            running = s.running_tasks if s.running_tasks is not None else "?"
            desired = s.wanted_tasks if s.wanted_tasks is not None else "?"
            vips = ", ".join(f"{v.address} ({net_names.get(v.network_id, v.network_id[:12])})" for v in s.vips)
            ports = "  ports " + ", ".join(s.published_ports) if s.published_ports else ""
            update = f"  update {s.update_state}" if s.update_state else ""
            add(f"  {s.name:16} {s.mode:10} {running}/{desired:<4} {s.endpoint_mode:6} {vips or '-'}{ports}{update}")

    if snapshot.tasks:
        add("\nTASKS (desired running; like `docker service ps`)")
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        for t in sorted(snapshot.tasks, key=lambda t: (natural_key(t.service_name), t.slot or 0, t.node_id or "")):
            if not t.wanted:
                continue
            where = hostnames.get(t.node_id or "", t.node_id or "-")
            error = f"  error: {t.error}" if t.error else ""
            addrs = " ".join(a.address for a in t.addresses)
            add(f"  {t.name[:40]:40} {where:10} {t.state:9} {addrs}{error}")

    if overlays:
        add("\nOVERLAYS")
        hostnames_by_addr = {n.address: n.hostname for n in snapshot.nodes}
        for n in overlays:
            mtu = f"MTU {n.effective_mtu}" + (f" (configured {n.configured_mtu})" if n.configured_mtu else "")
            flags = " ".join(f for f, on in (("encrypted", n.encrypted), ("attachable", n.attachable),
                                              ("ingress", n.ingress), ("internal", n.internal)) if on)
            peers = natural_sorted({hostnames_by_addr.get(p.address, p.address) for v in n.views for p in v.peers})
            services = ", ".join(s.name + (f" vip {s.vip}" if s.vip else " dnsrr") for s in n.services)
            add(f"  {n.name:14} {n.subnet or '-':16} gw {n.gateway or '-':14} VNI {n.vni or '-':<6} {mtu}  {flags}")
            add(f"  {'':14} peers: {', '.join(peers) or '-'}   services: {services or '-'}")

    netio = by_network(snapshot)
    if netio:
        partial = partial_totals(snapshot)["network"]
        add("\nNETIO PER NETWORK " + (f"(PARTIAL: {coverage_line(snapshot)})" if partial else "(all nodes)"))
        for name, t in sorted(netio.items(), key=lambda kv: natural_key(kv[0])):
            mark = "  PARTIAL" if name in partial else ""
            add(f"  {name:16} rx {human_rate(t.rx):>12}  tx {human_rate(t.tx):>12}  ({t.containers} containers)"
                f"{mark}")

    if snapshot.containers:
        add("\nCONTAINERS")
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        for c in snapshot.containers:
            node = hostnames.get(c.node_id or "", "")
            cpu = f"{c.cpu_pct:5.1f}%" if c.cpu_pct is not None else "    -"
            add(f"  {c.name[:40]:40} {node:8} cpu {cpu}  mem {human_bytes(c.mem_bytes):>10}  "
                f"net {human_bytes(c.rx_bytes)} / {human_bytes(c.tx_bytes)}  "
                f"rate {human_rate(c.rx_rate)} / {human_rate(c.tx_rate)}")

    problems = list(snapshot.problems) + [
        f"{e.endpoint}: {e.message}" for e in snapshot.engines if e.health is Health.ERROR
    ]
    if problems:
        add("\nPROBLEMS")
        for p in problems:
            add(f"  {p}")
    return "\n".join(lines)
