"""The timeline: what changed between two frames, as moments on the frames' time axis.

Placement changes (a service's running tasks per node), node state changes (ready/down, availability, joined,
left), engines going up or down, and findings opening and closing (warnings and errors: info findings such as
"not enough samples yet" come and go with the sample size and would bury the rest). The same comparison serves
the live dashboard, the recorder (moments are written into the recording) and a replay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..model import ClusterSnapshot, Health, Moment, natural_key, natural_sorted
from .findings import Finding, Severity

KINDS = ("placement", "node", "engine", "finding", "resolved")


def changes(before: ClusterSnapshot | None, after: ClusterSnapshot, before_findings: Sequence[Finding] = (),
            after_findings: Sequence[Finding] = ()) -> list[Moment]:
    """Every moment between two consecutive frames (none for the first frame: there is nothing to compare)."""
    if before is None:
        return []
    t = after.taken_at
    moments = _nodes(before, after, t) + _engines(before, after, t) + _placement(before, after, t)
    if before_findings is not after_findings:
        moments += _findings(before_findings, after_findings, t)
    return moments


def _nodes(a: ClusterSnapshot, b: ClusterSnapshot, t: float) -> list[Moment]:
    if a.nodes is b.nodes:
        return []
    old, new = a.nodes_by_id, b.nodes_by_id
    moments = []
    for node_id in natural_sorted(set(old) | set(new)):
        was, now = old.get(node_id), new.get(node_id)
        if was is None and now is not None:
            moments.append(Moment(t, "node", now.hostname, f"{now.hostname} joined ({now.role}, {now.state})", "info"))
        elif now is None and was is not None:
            moments.append(Moment(t, "node", was.hostname, f"{was.hostname} left the swarm", "warning"))
        elif was is not None and now is not None:
            if was.state != now.state:
                severity = "ok" if now.state == "ready" else "error"
                moments.append(Moment(t, "node", now.hostname, f"{now.hostname} {was.state} → {now.state}", severity))
            if was.availability != now.availability:
                severity = "ok" if now.availability == "active" else "warning"
                moments.append(Moment(t, "node", now.hostname,
                                      f"{now.hostname} availability {was.availability} → {now.availability}",
                                      severity))
    return moments


def _engines(a: ClusterSnapshot, b: ClusterSnapshot, t: float) -> list[Moment]:
    old = {e.endpoint: e for e in a.engines}
    moments = []
    for engine in b.engines:
        was = old.get(engine.endpoint)
        if was is None or (was.health is Health.ERROR) == (engine.health is Health.ERROR):
            continue
        name = engine.hostname or was.hostname or engine.endpoint
        if engine.health is Health.ERROR:
            moments.append(Moment(t, "engine", name, f"engine {name} down: {engine.message or 'no answer'}", "error"))
        else:
            moments.append(Moment(t, "engine", name, f"engine {name} up again", "ok"))
    return moments


def placement(snapshot: ClusterSnapshot) -> dict[str, Counter]:
    """service name -> running tasks per node hostname."""
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    found: dict[str, Counter] = {s.name: Counter() for s in snapshot.services}
    for task in snapshot.tasks:
        if task.up and task.node_id:
            found.setdefault(task.service_name, Counter())[hostnames.get(task.node_id, task.node_id[:12])] += 1
    return found


def _placement(a: ClusterSnapshot, b: ClusterSnapshot, t: float) -> list[Moment]:
    if a.tasks is b.tasks and a.services is b.services:
        return []
    old, new = placement(a), placement(b)
    moments = []
    for service in natural_sorted(set(old) | set(new)):
        if service not in old:
            moments.append(Moment(t, "placement", service, f"service {service} created", "info"))
            continue
        if service not in new:
            moments.append(Moment(t, "placement", service, f"service {service} removed", "info"))
            continue
        before, after = old[service], new[service]
        if before == after:
            continue
        moves = []
        for host in sorted(set(before) | set(after), key=natural_key):
            delta = after[host] - before[host]
            if delta:
                moves.append(f"{'+' if delta > 0 else '−'}{abs(delta)} {host}")
        total_before, total_after = sum(before.values()), sum(after.values())
        severity = "warning" if total_after < total_before else "info"
        moments.append(Moment(t, "placement", service,
                              f"{service}: {', '.join(moves)} ({total_before} → {total_after} running)", severity))
    return moments


def _findings(a: Sequence[Finding], b: Sequence[Finding], t: float) -> list[Moment]:
    """Warning and error findings opened and resolved. A finding is known by its check and subject (grouped
    findings keep their subject while more pairs join them). One that changes its grouping between two frames
    (a pair's finding becomes its node's when the other pairs' results come in; a node's becomes the swarm's)
    is one moment, "changed", never opened and resolved at once: findings of one check whose subjects or
    details' subjects meet are the same finding."""
    shown = (Severity.WARNING, Severity.ERROR)
    old = {(f.check, f.subject): f for f in a if f.severity in shown}
    new = {(f.check, f.subject): f for f in b if f.severity in shown}
    opened = [f for key, f in new.items() if key not in old]
    closed = [f for key, f in old.items() if key not in new]
    moments = []
    for finding in opened:
        was = [f for f in closed if f.check == finding.check and _covers(f) & _covers(finding)]
        closed = [f for f in closed if f not in was]
        text = f"{finding.check}: {finding.summary}"
        if was:
            text += f" (was: {', '.join(natural_sorted(f.subject for f in was))})"
        moments.append(Moment(t, "finding", finding.subject, text, str(finding.severity)))
    for finding in closed:  # those no opened finding took over
        moments.append(Moment(t, "resolved", finding.subject, f"{finding.check} resolved: {finding.summary}", "ok"))
    return moments


def _covers(finding: Finding) -> set[str]:
    """What a finding is about: its subject and its details' subjects (the pairs or places it groups)."""
    return {finding.subject, *(d.subject for d in finding.details)}
