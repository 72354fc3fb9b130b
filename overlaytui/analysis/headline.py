"""The landing screen's words: the worst current problems in one line each ("✖ loss node4 ~2.0 %"), how many
problems each pane shows (its tab's badge), what the findings name (the topology marks them) and the overlay the
Loss pane opens on. Pure: findings and a snapshot in, plain values out; computed once per frame whose findings or
services changed (a few dozen findings, a few hundred services: nothing that grows with tasks or pairs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..model import ClusterSnapshot, natural_key
from .findings import Finding, Severity

MARKS = {Severity.ERROR: "✖", Severity.WARNING: "⚠", Severity.INFO: "ℹ", Severity.OK: "✔"}
UPDATING = {"updating", "paused", "rollback_started", "rollback_paused"}  # a service's update under way or stuck
PANE_OF_CHECK = {  # a check's family -> the pane that shows its subject
    "swarm": "topology", "engine": "topology", "node": "topology",
    "service": "placement", "task": "placement",
    "network": "networks", "ipam": "networks", "vip": "networks",
    "loss": "loss", "mtu": "loss", "latency": "loss", "dataplane": "loss", "probe": "loss",
    "encryption": "loss", "discovery": "loss",
    # the causes below the overlay (--deep): Topology shows them per node and overlay
    "firewall": "topology", "fdb": "topology", "vxlan": "topology", "kernel": "topology", "esp": "topology",
    "offload": "topology", "conntrack": "topology",
}
_PERCENT = re.compile(r"~?\d+(?:\.\d+)? %")
_FITS = re.compile(r"fits (\d+)-byte|above (\d+) bytes")


@dataclass(frozen=True)
class Problem:
    """One problem in words, with the severity it is coloured by and what it is about."""

    severity: Severity
    text: str  # "loss node4 ~2.0 %"
    subject: str
    check: str


def pane_of(check: str) -> str:
    return PANE_OF_CHECK.get(check.split(".", 1)[0], "findings")


def short(finding: Finding) -> str:
    """A finding in a few words with its subject: the kind of fault first, then where, then its size."""
    family = finding.check.split(".", 1)[0]
    if finding.check == "mtu.black_hole":
        fits = _FITS.search(finding.summary)
        size = next((g for g in fits.groups() if g), "") if fits else ""
        nets = _overlays_named(finding)
        where = f" on {nets[0]}" + (f" +{len(nets) - 1}" if len(nets) > 1 else "") \
            if nets and finding.subject_kind != "network" else ""
        return f"MTU black hole {finding.subject}{where}" + (f" (fits {size})" if size else "")
    if family == "loss":
        pct = _PERCENT.search(finding.summary)
        return f"loss {finding.subject}" + (f" {pct.group(0)}" if pct else "")
    summary = finding.summary
    for stop in (": ", " ("):
        summary = summary.split(stop, 1)[0]
    if finding.subject and finding.subject not in summary and finding.subject_kind != "swarm":
        summary = f"{finding.subject}: {summary}"
    return summary


def _overlays_named(finding: Finding) -> list[str]:
    """The overlays a finding names in its summary's last parentheses ("(frontend, payments-secure)")."""
    if "(" not in finding.summary:
        return []
    inner = finding.summary.rsplit("(", 1)[1].rstrip(")")
    if " " in inner.replace(", ", ","):
        return []
    return [n for n in inner.split(", ") if n]


def problems(snapshot: ClusterSnapshot, findings: Sequence[Finding]) -> list[Problem]:
    """Errors and warnings, worst first, one per root cause (the findings are grouped already), with the
    services whose update is under way or stuck (Placement's state: no finding says it). A service updating
    runs a task short while one is replaced: its update says so, not a second warning."""
    updating = {s.name for s in snapshot.services if s.update_state in UPDATING}
    found = [Problem(f.severity, short(f), f.subject, f.check) for f in findings
             if f.severity >= Severity.WARNING
             and not (f.check == "service.replicas" and f.severity == Severity.WARNING and f.subject in updating)]
    for service in snapshot.services:
        if service.name in updating:
            state = service.update_state.replace("_", " ")
            running = "?" if service.running_tasks is None else service.running_tasks
            want = "?" if service.wanted_tasks is None else service.wanted_tasks
            found.append(Problem(Severity.WARNING, f"{service.name} {state} ({running}/{want} running)",
                                 service.name, "service.update"))
    return sorted(found, key=lambda p: -p.severity)


def badges(found: Iterable[Problem]) -> dict[str, tuple[int, Severity]]:
    """pane -> (problems it shows, the worst of them), from `problems()`: warnings and errors only; the Findings
    pane counts every finding among them, Placement the services updating too."""
    counts: dict[str, tuple[int, Severity]] = {}

    def add(pane: str, severity: Severity) -> None:
        count, worst = counts.get(pane, (0, Severity.OK))
        counts[pane] = (count + 1, max(worst, severity))

    for problem in found:
        add(pane_of(problem.check), problem.severity)
        if problem.check != "service.update":
            add("findings", problem.severity)
    return counts


@dataclass(frozen=True)
class Named:
    """What warning and error findings name, by kind, with the worst severity for each: node hostnames, network
    names, service names."""

    nodes: dict[str, Severity]
    networks: dict[str, Severity]
    services: dict[str, Severity]


def named(snapshot: ClusterSnapshot, findings: Iterable[Finding]) -> Named:
    nodes: dict[str, Severity] = {}
    networks: dict[str, Severity] = {}
    services: dict[str, Severity] = {}
    hostnames = {n.hostname for n in snapshot.nodes}
    network_names = {n.name for n in snapshot.networks}

    def mark(into: dict[str, Severity], name: str, severity: Severity) -> None:
        into[name] = max(into.get(name, Severity.OK), severity)

    for finding in findings:
        if finding.severity < Severity.WARNING:
            continue
        for one in (finding, *finding.details):
            severity = finding.severity
            if one.subject_kind == "node" and one.subject in hostnames:
                mark(nodes, one.subject, severity)
            elif one.subject_kind == "service":
                mark(services, one.subject_key or one.subject, severity)
            elif one.subject_kind in ("network", "pair") and one.subject_key in network_names:
                mark(networks, one.subject_key, severity)
            if one.subject_kind == "pair":
                for end in re.split(r" <-> | -> ", one.subject.split(" on ", 1)[0]):
                    if end in hostnames and finding.subject_kind == "pair":
                        mark(nodes, end, severity)
        for net in _overlays_named(finding):
            if net in network_names:
                mark(networks, net, finding.severity)
    for service in snapshot.services:
        if service.update_state in UPDATING:
            mark(services, service.name, Severity.WARNING)
    return Named(nodes, networks, services)


def worst_overlay(overlays: Sequence[str], names: Named) -> str | None:
    """The overlay the Loss pane opens on: the one the worst findings name (natural order among equals), else
    None (the first)."""
    worst = [n for n in overlays if n in names.networks]
    if not worst:
        return None
    return min(worst, key=lambda n: (-names.networks[n], natural_key(n)))


@dataclass(frozen=True)
class Headline:
    """What the landing screen says of one frame: the problems, the panes' badges, what findings name."""

    problems: tuple[Problem, ...]
    badges: dict[str, tuple[int, Severity]]
    named: Named
    notes: int  # info findings (said as a count when nothing is wrong)


def headline(snapshot: ClusterSnapshot, findings: Sequence[Finding]) -> Headline:
    found = tuple(problems(snapshot, findings))
    return Headline(found, badges(found), named(snapshot, findings),
                    sum(1 for f in findings if f.severity == Severity.INFO))


def summary_line(found: Sequence[Problem]) -> str:
    """Plain text of the problems, worst first (tests and the status line's fallback)."""
    return " · ".join(f"{MARKS[p.severity]} {p.text}" for p in found)
