"""The deep view's cost in the frame thread (`--deep`, issue 24).

    .venv/bin/python -m bench deep

On the demo `healthy` cluster at 200 nodes / 300 services / 5000 tasks, with a kernel view per node made for that
cluster (each overlay the node is on: its sandbox with a vxlan device, an FDB entry and a neighbour per remote
task, Docker's u32 rule, the ESP states with every peer), in the same process:

- frame build without kernel views (the baseline), with the same round's views (every frame between two rounds:
  the causes' checks are kept while their inputs are the same objects) and with a new round's views (the checks
  run: once per round, every 30 s), medians over frames;
- a new round: the views parsed from raw readings — the lab's real node1 reading (4 overlay sandboxes), per node,
  median over runs (the reader's round at 200 nodes parses 200 of those, off the UI loop).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from overlaytui.frame import FrameBuilder
from overlaytui.model import (
    FdbEntry,
    FirewallRule,
    FirewallView,
    IpsecView,
    KernelFeature,
    NeighEntry,
    NodeKernel,
    SandboxKernel,
    UnderlayLink,
    UnderlayRoute,
    VxlanDevice,
    XfrmState,
)
from overlaytui.sources.deepraw import Reading
from overlaytui.sources.demo import DemoSource
from overlaytui.sources.kernel import parse_node

LARGE = (200, 300, 5000)
RAW = Path(__file__).parent.parent / "tests" / "fixtures" / "deep" / "node1.json"


def kernels_for(snapshot) -> tuple[NodeKernel, ...]:
    """A healthy kernel view per node, consistent with the snapshot (every FDB entry where the swarm says)."""
    address = {n.id: n.address for n in snapshot.nodes}
    overlays = [n for n in snapshot.networks if n.driver == "overlay"]
    views = []
    for node in snapshot.nodes:
        sandboxes = []
        for net in overlays:
            if not any(v.node_id == node.id for v in net.views):
                continue
            fdb, neigh = [], []
            for task in snapshot.tasks:
                where = address.get(task.node_id or "")
                if not task.up or where in (None, node.address):
                    continue
                for addr in task.addresses:
                    if addr.network_id == net.id:
                        ip = addr.address.split("/")[0]
                        mac = "02:42:" + ":".join(f"{int(part):02x}" for part in ip.split("."))
                        fdb.append(FdbEntry(mac, where, "vxlan0", "permanent"))
                        neigh.append(NeighEntry(ip, mac, "vxlan0", "PERMANENT"))
            sandboxes.append(SandboxKernel(f"1-{net.id[:10]}", net.id[:10], (VxlanDevice(
                "vxlan0", net.vni, dstport=4789, mtu=1450, rx_packets=1000, tx_packets=1000),), tuple(fdb),
                tuple(neigh)))
        peers = [n.address for n in snapshot.nodes if n.id != node.id]
        states = tuple(XfrmState(a, b, "esp", "0x1", 13681891) for peer in peers
                       for a, b in ((node.address, peer), (peer, node.address)))
        rule = FirewallRule("iptables-nft", "filter", "INPUT", "-A INPUT -p udp --dport 4789 -m u32 ... -j DROP",
                            ("4789/udp",), "DROP", 0, 0, "Docker's rule (by design)")
        views.append(NodeKernel(
            node.id, node.hostname, snapshot.taken_at, tuple(UnderlayRoute(p, "eth0", node.address) for p in peers),
            (UnderlayLink("eth0", 1500, 0, 0, 0, 0, "on", "virtio_net"),), tuple(sandboxes),
            FirewallView("iptables-nft", (rule,), ("iptables-nft",)), IpsecView(states),
            KernelFeature("esp4", "yes", "module"), KernelFeature("ip_vs", "yes", "module")))
    return tuple(views)


def median_build(builder: FrameBuilder, snapshot, frames: int, **kwargs) -> float:
    times = []
    for _ in range(frames):
        started = time.perf_counter()
        builder.build(snapshot, **kwargs)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(runs: int = 5) -> dict:
    source = DemoSource("healthy", seed=1, scale=LARGE, clock=lambda: 1_800_000_000.0)
    asyncio.run(source.poll())
    snapshot = source.snapshot()
    kernels = kernels_for(snapshot)
    frames = max(runs, 5)
    plain = FrameBuilder(underlay=lambda addresses: {})
    deep = FrameBuilder(underlay=lambda addresses: {})
    plain.build(snapshot)
    deep.build(snapshot, kernels=kernels)
    baseline = median_build(plain, snapshot, frames)
    with_deep = median_build(deep, snapshot, frames)  # the same round's views: no parsing, the checks kept
    rounds = []
    for _ in range(frames):  # a new round: new view objects (the same content), the checks run
        fresh = tuple(replace(k) for k in kernels)
        started = time.perf_counter()
        deep.build(snapshot, kernels=fresh)
        rounds.append(time.perf_counter() - started)
    new_round = statistics.median(rounds)
    deep_findings = [f.check for f in deep.build(snapshot).findings if f.check.split(".")[0] in (
        "firewall", "fdb", "vxlan", "kernel", "esp", "offload", "conntrack")]
    raw = {k: Reading(**v) for k, v in json.loads(RAW.read_text()).items()}
    parse = []
    for _ in range(max(runs, 5) * 4):
        started = time.perf_counter()
        parse_node(raw, "id", "node1")
        parse.append(time.perf_counter() - started)
    result = {
        "scale": LARGE, "frames": frames, "sandboxes": sum(len(k.sandboxes) for k in kernels),
        "fdb_entries": sum(len(s.fdb) for k in kernels for s in k.sandboxes),
        "build_s_baseline": baseline, "build_s_between_rounds": with_deep, "ratio_between_rounds":
            with_deep / baseline, "build_s_new_round": new_round, "ratio_new_round": new_round / baseline,
        "deep_findings_on_a_healthy_cluster": deep_findings,
        "parse_node_s_lab_reading": statistics.median(parse), "raw_bytes": RAW.stat().st_size,
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
