"""One Frame: everything overlaytui shows of one moment — the snapshot, its NetIO sums, the probe results, the
findings (with the underlay MTUs) and what the checks covered. Built off the UI loop, in one thread at a time, by a
FrameBuilder; the dashboard, `snapshot`, `doctor`, the exporter and a recording consume frames, the panes render
them. A frame is immutable: any thread may read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .analysis import timeline
from .analysis.findings import Finding, check_probes, diagnose, plural
from .analysis.netio import NetIOSums, sums
from .analysis.thresholds import LossThresholds
from .model import NO_PROBES, ClusterSnapshot, Moment, ProbeData
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

    @property
    def taken_at(self) -> float:
        return self.snapshot.taken_at

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
        elif self.probes.recent:
            line += f"; {plural(sum(len(r) for r in self.probes.recent.values()), 'probe result')}"
        else:
            line += "; the overlays' data plane not measured (P starts probing)"
        if self.underlay_mtus:
            line += f"; {plural(len(self.underlay_mtus), 'underlay MTU')} known"
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

    def build(self, snapshot: ClusterSnapshot, probes: ProbeData = NO_PROBES,
              netio: NetIOSums | None = None) -> Frame:
        started = time.perf_counter()
        mtus = self.underlay(snapshot)
        key = (probes, snapshot.nodes, snapshot.networks, self.thresholds)
        cached = self._pair_cache
        if cached is None or len(cached[0]) != len(key) or any(a is not b for a, b in zip(cached[0], key,
                                                                                          strict=True)):
            cached = self._pair_cache = (key, check_probes(snapshot, probes.results(), self.thresholds))
        findings = tuple(diagnose(snapshot, underlay_mtus=mtus, pair_findings=cached[1]))
        previous = self._previous
        if previous is not None and findings == previous.findings:
            findings = previous.findings  # unchanged: the same object (the Findings pane skips it)
        moments = tuple(timeline.changes(previous.snapshot, snapshot, previous.findings, findings)) \
            if previous is not None else ()
        frame = self._previous = Frame(snapshot, netio if netio is not None else sums(snapshot), probes, findings,
                                       mtus, moments, time.perf_counter() - started)
        return frame

    def reset(self) -> None:
        """Forget the previous frame (after a seek, what changed is not "since the previous frame")."""
        self._previous = None

    def underlay(self, snapshot: ClusterSnapshot) -> Mapping[str, int]:
        """The nodes' underlay MTUs, read again once a minute or when the nodes' addresses change."""
        addresses = tuple(sorted(n.address for n in snapshot.nodes))
        cached = self._underlay_cache
        if cached is None or cached[0] != addresses or self._clock() - cached[1] > UNDERLAY_TTL:
            cached = self._underlay_cache = (addresses, self._clock(), dict(self._underlay(addresses)))
        return cached[2]
