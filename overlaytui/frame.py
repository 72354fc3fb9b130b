"""One Frame: everything overlaytui shows of one moment — the snapshot, its NetIO sums, the probe results, the
findings (with the underlay MTUs) and what the checks covered. Built off the UI loop, in one thread at a time, by a
FrameBuilder; the dashboard, `snapshot`, `doctor`, the exporter and a recording consume frames, the panes render
them. A frame is immutable: any thread may read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .analysis import timeline
from .analysis.deep import DEEP_CHECKS, by_node, deep_underlay_mtus
from .analysis.findings import Finding, check_probes, diagnose, plural
from .analysis.netio import NetIOSums, sums
from .analysis.thresholds import LossThresholds
from .model import NO_PROBES, ClusterSnapshot, Moment, NodeKernel, ProbeData
from .sources.deepraw import NodeRaw
from .sources.kernel import parse_node
from .sources.underlay import local_underlay_mtus

UNDERLAY_TTL = 60.0  # seconds the nodes' underlay MTUs are reused (reading them walks this host's NICs)


@dataclass(frozen=True)
class Frame:
    snapshot: ClusterSnapshot
    netio: NetIOSums
    probes: ProbeData = NO_PROBES
    findings: tuple[Finding, ...] = ()
    underlay_mtus: Mapping[str, int] = field(default_factory=dict)
    moments: tuple[Moment, ...] = ()  # what changed since the builder's previous frame (the timeline)
    build_s: float = 0.0  # seconds building it took (off the UI loop)
    kernels: tuple[NodeKernel, ...] = ()  # the nodes' kernel views (`--deep`), in natural order; () when not read

    @property
    def taken_at(self) -> float:
        return self.snapshot.taken_at

    @property
    def deep_findings(self) -> tuple[Finding, ...]:
        """The findings from causes (the kernel views'), among `findings`."""
        return tuple(f for f in self.findings if f.check in DEEP_CHECKS)

    def kernel(self, node_id: str) -> NodeKernel | None:
        """A node's kernel view (by node id), when the deep view read it."""
        return next((k for k in self.kernels if k.node_id == node_id), None)

    def checked(self) -> str:
        """What the checks covered, in one line (said when they found nothing)."""
        snap = self.snapshot
        overlays = sum(1 for n in snap.networks if n.driver == "overlay" and not n.ingress)
        line = ", ".join(plural(count, word) for count, word in (
            (len(snap.nodes), "node"), (len(snap.services), "service"), (len(snap.tasks), "task"),
            (overlays, "overlay"), (len(snap.engines), "engine")))
        expected = sum(c.expected for c in self.probes.coverage)
        measured = sum(c.measured for c in self.probes.coverage)
        if expected:
            line += f"; {measured} of {plural(expected, 'probe pair')} measured"
            every = max(c.every for c in self.probes.coverage)
            if every > 1:  # a rotating plan: what the last rounds measured, never an older measurement
                line += f" in the last {every} rounds (each pair every {every} rounds)"
        elif self.probes.recent:
            line += f"; {plural(sum(len(r) for r in self.probes.recent.values()), 'probe result')}"
        else:
            line += "; the overlays' data plane not measured (P starts probing)"
        if self.underlay_mtus:
            line += f"; {plural(len(self.underlay_mtus), 'underlay MTU')} known"
        if self.kernels:
            line += f"; the kernels of {plural(len(self.kernels), 'node')} read (--deep)"
        return line


class FrameBuilder:
    """Builds frames, reusing what did not change: the pair checks when the probe results and the topology are
    the same objects as last time (they are most of the work at 200 nodes), the underlay MTUs for a minute.
    Blocking and not thread-safe: one build at a time, off the UI loop."""

    def __init__(self, thresholds: LossThresholds | None = None, *,
                 underlay: Callable[[Iterable[str]], Mapping[str, int]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.thresholds = thresholds or LossThresholds()
        self._underlay = underlay or local_underlay_mtus  # this host's NICs; the lab's links with --lab
        self._clock = clock
        self._underlay_cache: tuple[tuple[str, ...], float, Mapping[str, int]] | None = None
        self._pair_cache: tuple[tuple, list[Finding]] | None = None
        self._previous: Frame | None = None
        self._deep_in: object = None  # the last deep readings (or kernel views) taken, to tell a new round
        self._kernels: tuple[NodeKernel, ...] = ()
        self._kernels_before: tuple[NodeKernel, ...] = ()  # the round before: the counters' rates

    def build(self, snapshot: ClusterSnapshot, probes: ProbeData = NO_PROBES,
              netio: NetIOSums | None = None, *, deep: Mapping[str, NodeRaw] | None = None,
              kernels: Sequence[NodeKernel] | None = None) -> Frame:
        """One frame. `deep`: the nodes' raw kernel readings of a new round (`--deep`: sources/deep.py, keyed by
        node id, or hostname), parsed here; `kernels`: kernel views already parsed (a replay's). Either is taken
        as a new round when it is another object than last time; without either, the last round's views stay
        (the deep view reads less often than frames are built)."""
        started = time.perf_counter()
        self._take_kernels(snapshot, deep, kernels)
        mtus = self.underlay(snapshot)
        if self._kernels:
            mtus = {**mtus, **deep_underlay_mtus(snapshot, self._kernels)}  # read on the nodes: they win
        key = (probes, snapshot.nodes, snapshot.networks, self.thresholds)
        cached = self._pair_cache
        if cached is None or len(cached[0]) != len(key) or any(a is not b for a, b in zip(cached[0], key,
                                                                                          strict=True)):
            cached = self._pair_cache = (key, check_probes(snapshot, probes.results(), self.thresholds))
        findings = tuple(diagnose(snapshot, underlay_mtus=mtus, pair_findings=cached[1], kernels=self._kernels,
                                  previous_kernels=self._kernels_before))
        previous = self._previous
        if previous is not None and findings == previous.findings:
            findings = previous.findings  # unchanged: the same object (the Findings pane skips it)
        moments = tuple(timeline.changes(previous.snapshot, snapshot, previous.findings, findings)) \
            if previous is not None else ()
        frame = self._previous = Frame(snapshot, netio if netio is not None else sums(snapshot), probes, findings,
                                       mtus, moments, time.perf_counter() - started, self._kernels)
        return frame

    def _take_kernels(self, snapshot: ClusterSnapshot, deep: Mapping[str, NodeRaw] | None,
                      kernels: Sequence[NodeKernel] | None) -> None:
        given: object = deep if deep is not None else kernels
        if given is None or given is self._deep_in:
            return
        self._deep_in = given
        if deep is not None:
            views = [parse_node(raw, *node_of(key, snapshot), read_at=snapshot.taken_at)
                     for key, raw in list(deep.items())]
        else:
            views = list(kernels or ())
        self._kernels_before, self._kernels = self._kernels, tuple(by_node(views))

    def reset(self) -> None:
        """Forget the previous frame (after a seek, what changed is not "since the previous frame"; nor are the
        kernel counters' rates)."""
        self._previous = None
        self._kernels_before = ()

    def underlay(self, snapshot: ClusterSnapshot) -> Mapping[str, int]:
        """The nodes' underlay MTUs, read again once a minute or when the nodes' addresses change."""
        addresses = tuple(sorted(n.address for n in snapshot.nodes))
        cached = self._underlay_cache
        if cached is None or cached[0] != addresses or self._clock() - cached[1] > UNDERLAY_TTL:
            cached = self._underlay_cache = (addresses, self._clock(), dict(self._underlay(addresses)))
        return cached[2]


def node_of(key: str, snapshot: ClusterSnapshot) -> tuple[str, str]:
    """(node id, hostname) a deep reading's key names: a node id, a hostname (unique), an engine's endpoint, or the
    reader's "hostname (id prefix)" for a hostname two engines share; else ("", the key)."""
    node = snapshot.nodes_by_id.get(key)
    if node is not None:
        return node.id, node.hostname
    named = [n for n in snapshot.nodes if n.hostname == key]
    if len(named) == 1:
        return named[0].id, named[0].hostname
    engine = next((e for e in snapshot.engines if e.endpoint == key and e.node_id), None)
    if engine is not None and engine.node_id in snapshot.nodes_by_id:
        node = snapshot.nodes_by_id[engine.node_id]
        return node.id, node.hostname
    host, _, rest = key.rpartition(" (")
    if host and rest.endswith(")"):
        prefix = rest[:-1]
        matches = [n for n in snapshot.nodes if n.hostname == host and n.id.startswith(prefix)]
        if len(matches) == 1:
            return matches[0].id, matches[0].hostname
    return "", key
