"""Prometheus metrics from what overlaytui measures (`overlaytui exporter`): built at scrape time from the latest
state, never waiting for a probe or an engine (the state is one immutable object, replaced whole).

Naming follows the Prometheus guidelines: base units (seconds, bytes, bits per second), `_total` on counters, no
cluster label (the scrape config adds target labels). What each family means is in its HELP text and in the
README. Label values come from the cluster (hostnames, network names): prometheus_client escapes quotes,
backslashes and newlines, and what UTF-8 cannot encode (a lone surrogate such as `\udc9b`: it made every scrape
fail) is made visible as its escape, `\\udc9b` (`encodable`). Series are unique: a hostname two nodes share, or a name
two overlays share, is told apart by the id (`node1 (3f2a9c8e1b2c)`), and any series that still repeats is
written once (Prometheus rejects a whole scrape over one duplicate).

Series: per directed pair and overlay six families (a 3-node, 3-overlay swarm: 18 pairs, ~110 series), which
grows as nodes² x overlays: beyond `max_pairs` directed pairs the per-pair families are left out
(`overlaytui_pair_series_limited` says so) and the per-node families, which grow as nodes x overlays, carry the
same counts.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .analysis.findings import Finding, ipam_usage
from .analysis.netio import Throughput
from .model import ClusterSnapshot, Coverage, Health, NodeKernel, ProbeResult

DEFAULT_MAX_PAIRS = 10_000  # directed pairs x overlays with per-pair series (x6 families: 60,000 series)


@dataclass(frozen=True)
class ExportState:
    """Everything a scrape shows, as of the last collection and the last probe round."""

    snapshot: ClusterSnapshot | None = None
    up: bool = False  # the last collection reached a manager
    results: Sequence[ProbeResult] = ()  # the latest result per kind and pair
    totals: Mapping[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)  # (net, src, dst) ->
    # (sent, received) since start
    coverage: tuple[Coverage, ...] = ()
    findings: tuple[Finding, ...] = ()
    netio: Mapping[str, Mapping[str, Throughput]] = field(default_factory=dict)  # node/service/network -> name ->
    rounds: int = 0
    last_round_at: float | None = None
    collected_at: float | None = None
    max_pairs: int = DEFAULT_MAX_PAIRS
    probe_problem: str = ""
    kernels: tuple[NodeKernel, ...] = ()  # the nodes' kernel views (`--deep`)

    # derived once per state (the exporter warms them when it publishes), so a scrape only formats: at 200 nodes
    # and 12 overlays these walk ~480,000 pairs

    @cached_property
    def latest(self) -> dict[tuple[str, str, str, str], ProbeResult]:
        return {(r.kind, r.network, r.src_node, r.dst_node): r for r in self.results}

    @cached_property
    def pair_count(self) -> int:
        """Directed pairs x overlays expected (coverage), else those with counts."""
        return sum(c.expected for c in self.coverage if c.kind == "ping") or len(self.totals)

    @cached_property
    def node_sums(self) -> dict[tuple[str, str, str], tuple[int, int]]:
        """(network, node, direction) -> (sent, lost): the pair counters summed per node (they only grow: pairs
        are never forgotten)."""
        sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for (net, src, dst), (s, r) in self.totals.items():
            lost = s - r if s > r else 0
            for key in ((net, src, "out"), (net, dst, "in")):
                entry = sums[key]
                entry[0] += s
                entry[1] += lost
        return {key: (s, lost) for key, (s, lost) in sorted(sums.items())}

    @cached_property
    def addresses(self) -> dict[str, tuple[int, int]]:
        """overlay name -> (addresses in use, usable), where known."""
        snap = self.snapshot
        found = {}
        for net in snap.networks if snap is not None else ():
            if net.driver == "overlay" and not net.ingress and (usage := ipam_usage(snap, net)) is not None:
                found[net.name] = usage
        return found

    def warm(self) -> ExportState:
        """Compute the derived values now (in the exporter's loop), not in the first scrape."""
        for name in ("latest", "pair_count", "node_sums", "addresses"):
            getattr(self, name)
        return self


class OverlayCollector(Collector):
    """The custom collector: reads the latest state once per scrape."""

    def __init__(self, state_of: Callable[[], ExportState]) -> None:
        self._state_of = state_of

    def describe(self) -> list[Metric]:
        return []  # registering must not build a scrape

    def collect(self) -> Iterator[Metric]:
        try:
            families = metric_families(self._state_of())
        except Exception as exc:  # noqa: BLE001 - a scrape answers, whatever the state holds: said, not a traceback
            print(f"overlaytui exporter: building the metrics failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed = GaugeMetricFamily("overlaytui_up", "1 when the last collection reached a swarm manager")
            failed.add_metric([], 0.0)
            families = [failed]
        yield from families


def _gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def _counter(name: str, documentation: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, labels=list(labels))


def metric_families(state: ExportState) -> list[Metric]:
    snap = state.snapshot
    families: list[Metric] = []
    up = _gauge("overlaytui_up", "1 when the last collection reached a swarm manager")
    up.add_metric([], 1.0 if state.up else 0.0)
    families.append(up)
    if state.collected_at is not None:
        at = _gauge("overlaytui_collection_timestamp_seconds", "when the cluster was last collected (Unix time)")
        at.add_metric([], state.collected_at)
        families.append(at)
    if snap is not None:
        families += _cluster(snap, state)
        if state.kernels:
            families += _kernels(snap, state.kernels)
    families += _probes(state)
    finding = _gauge("overlaytui_finding", "1 for each open finding of the doctor's checks",
                     ("check", "severity", "subject"))  # with --deep, the causes' checks too
    for f in state.findings:
        finding.add_metric([f.check, str(f.severity), f.subject], 1.0)
    families.append(finding)
    return unique_series(families)


_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(value: str) -> str:
    """A label value UTF-8 can encode: a lone surrogate becomes its visible escape (`\\udc9b`)."""
    if value.isascii():
        return value
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def unique_series(families: list[Metric]) -> list[Metric]:
    """Every label value encodable (`encodable`), every series once (the first kept)."""
    for family in families:
        seen: set[tuple] = set()
        kept = []
        for sample in family.samples:
            labels = sample.labels
            if not all(v.isascii() for v in labels.values()):
                labels = {k: encodable(v) for k, v in labels.items()}
            key = (sample.name, tuple(sorted(labels.items())))
            if key not in seen:
                seen.add(key)
                kept.append(sample if labels is sample.labels else sample._replace(labels=labels))
        family.samples = kept
    return families


def _distinct(names: dict[str, str]) -> dict[str, str]:
    """id -> name made unique: a name that more than one id has gets the id's first 12 characters."""
    counts = defaultdict(int)
    for name in names.values():
        counts[name] += 1
    return {key: name if counts[name] == 1 else f"{name} ({key[:12]})" for key, name in names.items()}


def _cluster(snap: ClusterSnapshot, state: ExportState) -> list[Metric]:
    hostnames = _distinct({n.id: n.hostname for n in snap.nodes})
    engine_up = _gauge("overlaytui_engine_up", "1 when the node's engine answered the last poll", ("node",))
    for e in snap.engines:
        engine_up.add_metric([hostnames.get(e.node_id or "", e.hostname or e.endpoint)],
                             1.0 if e.health is Health.OK else 0.0)
    ready = _gauge("overlaytui_node_ready", "1 when the swarm node is Ready", ("node", "role"))
    for n in snap.nodes:
        ready.add_metric([hostnames[n.id], n.role], 1.0 if n.state == "ready" else 0.0)
    mtu = _gauge("overlaytui_network_mtu_bytes", "the overlay's effective MTU (configured, else 1450)", ("network",))
    encrypted = _gauge("overlaytui_network_encrypted", "1 when the overlay is encrypted (IPsec ESP)", ("network",))
    used = _gauge("overlaytui_network_addresses_used", "addresses of the overlay's IPv4 subnet in use, when known",
                  ("network",))
    usable = _gauge("overlaytui_network_addresses_usable", "usable addresses of the overlay's IPv4 subnet, when "
                    "known", ("network",))
    overlays = [net for net in snap.networks if net.driver == "overlay" and not net.ingress]
    names = _distinct({net.id: net.name for net in overlays})
    for net in overlays:
        name = names[net.id]
        mtu.add_metric([name], float(net.effective_mtu))
        encrypted.add_metric([name], 1.0 if net.encrypted else 0.0)
        usage = state.addresses.get(net.name) if name == net.name else None  # a shared name: whose usage?
        if usage is not None:
            used.add_metric([name], float(usage[0]))
            usable.add_metric([name], float(usage[1]))
    families: list[Metric] = [engine_up, ready, mtu, encrypted, used, usable]
    measured = _gauge("overlaytui_stats_nodes_measured", "nodes whose containers' stats are collected")
    measured.add_metric([], float(len(snap.nodes) - len(snap.unmeasured_nodes)))
    families.append(measured)
    # NetIO: rates, not counters. A sum of per-container byte counters goes down whenever a container goes away
    # (rate() would read that as a reset and invent a spike); a rate summed over the containers of the moment
    # stays right as they come and go.
    for dim in ("node", "service", "network"):
        rx = _gauge(f"overlaytui_{dim}_receive_bytes_per_second", f"bytes per second received by the containers, "
                    f"per {dim} (summed over its containers' interfaces; a rate, so it stays right as containers "
                    "come and go)", (dim,))
        tx = _gauge(f"overlaytui_{dim}_transmit_bytes_per_second", f"bytes per second sent by the containers, per "
                    f"{dim}", (dim,))
        for name, t in state.netio.get(dim, {}).items():
            rx.add_metric([name], t.rx)
            tx.add_metric([name], t.tx)
        families += [rx, tx]
    return families


def _kernels(snap: ClusterSnapshot, kernels: Sequence[NodeKernel]) -> list[Metric]:
    """The nodes' kernel views (`--deep`): each overlay sandbox's vxlan counters, conntrack, the firewall rules
    that drop swarm's traffic, esp4 and ip_vs. Only what was read: a part not read has no series."""
    hostnames = _distinct({n.id: n.hostname for n in snap.nodes})
    overlays = [net for net in snap.networks if net.driver == "overlay"]
    names = _distinct({net.id: net.name for net in overlays})
    labels = ("node", "network", "direction")
    packets = _counter("overlaytui_vxlan_packets", "packets through the overlay's vxlan device on the node "
                       "(direction receive / transmit; read with --deep)", labels)
    dropped = _counter("overlaytui_vxlan_dropped_packets", "packets the overlay's vxlan device dropped", labels)
    errors = _counter("overlaytui_vxlan_errors", "packets the overlay's vxlan device counted as errors", labels)
    read = _gauge("overlaytui_kernel_read", "1 when the node's kernel view was read (--deep), 0 when not", ("node",))
    entries = _gauge("overlaytui_conntrack_entries", "connections the node's conntrack table holds", ("node",))
    most = _gauge("overlaytui_conntrack_max_entries", "the node's nf_conntrack_max", ("node",))
    rules = _gauge("overlaytui_firewall_blocking_rules", "firewall rules on the node that drop or reject swarm's "
                   "traffic (Docker's own by-design rules not counted)", ("node",))
    feature = _gauge("overlaytui_kernel_feature", "1 when the node's kernel has the feature (esp4, ip_vs), 0 when "
                     "not (loaded or built in); no series when unknown", ("node", "feature"))
    for kernel in kernels:
        node = hostnames.get(kernel.node_id, kernel.hostname or kernel.node_id)
        broken = bool(kernel.problems) and not kernel.sandboxes and not kernel.links
        read.add_metric([node], 0.0 if broken else 1.0)
        for sbx in kernel.sandboxes:
            net = next((n for n in overlays if sbx.network_prefix and n.id.startswith(sbx.network_prefix)), None)
            network = names[net.id] if net is not None else sbx.sandbox
            for dev in sbx.vxlan:
                for direction, way in (("receive", "rx"), ("transmit", "tx")):
                    key = [node, network, direction]
                    packets.add_metric(key, float(getattr(dev, f"{way}_packets")))
                    dropped.add_metric(key, float(getattr(dev, f"{way}_dropped")))
                    errors.add_metric(key, float(getattr(dev, f"{way}_errors")))
        if kernel.conntrack.count is not None:
            entries.add_metric([node], float(kernel.conntrack.count))
        if kernel.conntrack.max is not None:
            most.add_metric([node], float(kernel.conntrack.max))
        if not kernel.firewall.unavailable:
            rules.add_metric([node], float(sum(1 for r in kernel.firewall.rules if not r.docker)))
        for view in (kernel.esp, kernel.ipvs):
            if view.state:
                feature.add_metric([node, view.name], 1.0 if view.state == "yes" else 0.0)
    return [read, packets, dropped, errors, entries, most, rules, feature]


PAIR = ("network", "src_node", "dst_node")


def _probes(state: ExportState) -> list[Metric]:
    rounds = _counter("overlaytui_probe_rounds", "probe rounds run since the exporter started")
    rounds.add_metric([], float(state.rounds))
    families: list[Metric] = [rounds]
    if state.last_round_at is not None:
        last = _gauge("overlaytui_probe_last_round_timestamp_seconds", "when the last probe round ended (Unix time)")
        last.add_metric([], state.last_round_at)
        families.append(last)
    pairs_expected = _gauge("overlaytui_pairs_expected", "directed node pairs expected per overlay and probe kind",
                            ("network", "kind"))
    pairs_measured = _gauge("overlaytui_pairs_measured", "directed node pairs measured in the probe plan's last "
                            "overlaytui_pairs_every_rounds rounds (an older measurement is not counted)",
                            ("network", "kind"))
    pairs_every = _gauge("overlaytui_pairs_every_rounds", "rounds in which the probe plan measures every pair once "
                         "(1: the full mesh every round; more on a large cluster, whose rounds rotate through the "
                         "nodes)", ("network", "kind"))
    for c in state.coverage:
        pairs_expected.add_metric([c.network, c.kind], float(c.expected))
        pairs_measured.add_metric([c.network, c.kind], float(c.measured))
        pairs_every.add_metric([c.network, c.kind], float(c.every))
    families += [pairs_expected, pairs_measured, pairs_every]
    families += _per_node(state.node_sums)
    limited = _gauge("overlaytui_pair_series_limited", f"1 when there are more directed pairs than --max-pairs "
                     f"({state.max_pairs}): the per-pair series are left out, the per-node ones carry the counts")
    too_many = state.pair_count > state.max_pairs
    limited.add_metric([], 1.0 if too_many else 0.0)
    families.append(limited)
    if too_many:
        return families
    latest = state.latest
    expected = {(c.network, g.src_node, g.dst_node) for c in state.coverage if c.kind == "ping" for g in c.missing}
    expected |= {(net, s, d) for (kind, net, s, d) in latest if kind == "ping"} | set(state.totals)
    sent = _counter("overlaytui_pair_packets_sent", "ping packets sent from src_node to dst_node through the overlay",
                    PAIR)
    lost = _counter("overlaytui_pair_packets_lost", "of those, packets lost (no reply)", PAIR)
    for key, (s, r) in sorted(state.totals.items()):
        sent.add_metric(list(key), float(s))
        lost.add_metric(list(key), float(max(s - r, 0)))
    pair_up = _gauge("overlaytui_pair_up", "1 when the pair's latest ping measured something; 0 when it could not "
                     "be measured (then the pair has no RTT, path MTU or throughput series)", PAIR)
    rtt = _gauge("overlaytui_pair_rtt_seconds", "the average round-trip time of the pair's latest measurement "
                 "(beyond ~25 nodes a round measures a rotating part of the pairs: up to "
                 "overlaytui_pairs_every_rounds rounds old)", PAIR)
    path = _gauge("overlaytui_pair_path_mtu_bytes", "the largest overlay packet that gets through (DF-bit search)",
                  PAIR)
    speed = _gauge("overlaytui_pair_throughput_bits_per_second", "iperf3 throughput, when measured", PAIR)
    for key in sorted(expected):
        ping = latest.get(("ping", *key))
        ok = ping is not None and ping.measured
        pair_up.add_metric(list(key), 1.0 if ok else 0.0)
        if not ok:
            continue
        if ping.rtt_avg_ms is not None:
            rtt.add_metric(list(key), ping.rtt_avg_ms / 1000.0)
        mtu = latest.get(("mtu", *key))
        if mtu is not None and not mtu.error and mtu.path_mtu:
            path.add_metric(list(key), float(mtu.path_mtu))
        iperf = latest.get(("iperf", *key))
        if iperf is not None and not iperf.error and iperf.bits_per_second:
            speed.add_metric(list(key), float(iperf.bits_per_second))
    return families + [sent, lost, pair_up, rtt, path, speed]


def _per_node(sums: Mapping[tuple[str, str, str], tuple[int, int]]) -> list[Metric]:
    labels = ("network", "node", "direction")
    sent = _counter("overlaytui_node_packets_sent", "ping packets on the node's pairs: sent by it (out) or towards "
                    "it (in)", labels)
    lost = _counter("overlaytui_node_packets_lost", "of those, packets lost", labels)
    for key, (s, lost_count) in sums.items():
        sent.add_metric(list(key), float(s))
        lost.add_metric(list(key), float(lost_count))
    return [sent, lost]
