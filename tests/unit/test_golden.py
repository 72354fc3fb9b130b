"""Golden outputs: the whole parsed lab snapshot (recorded payloads -> model -> JSON) and every finding the doctor
gives on the demo scenarios and on constructed probe results, compared field by field with files committed in
tests/fixtures/golden. A change to any parser, join, sum, threshold or finding text shows here as a diff; when it
is deliberate, regenerate with OVERLAYTUI_UPDATE_GOLDEN=1 and read the diff before committing it.

These are what gives the mutation score (`make mutants`) its teeth on text and field mapping: the focused tests
elsewhere say *why* a value is right, these say that nothing else moved."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from overlaytui.analysis.findings import diagnose
from overlaytui.analysis.thresholds import LossThresholds
from overlaytui.export import snapshot_to_dict, summary_text
from overlaytui.model import ProbeResult
from overlaytui.sources.assemble import assemble, swarm_poll_from_payloads
from overlaytui.sources.demo import DemoSource
from overlaytui.sources.parse import parse_identity
from tests.unit.test_assemble import engine_polls, load

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"


def check(name: str, data) -> None:
    path = GOLDEN / name
    text = json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"
    if os.environ.get("OVERLAYTUI_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    expected = json.loads(path.read_text())
    actual = json.loads(text)
    assert actual == expected, f"{name} differs from the golden file (regenerate deliberately: see the docstring)"


def lab_snapshot(nodes=(1, 2, 3)):
    swarm = swarm_poll_from_payloads(parse_identity(load("node1-info.json")), load("nodes.json"),
                                     load("services.json"), load("tasks.json"), load("networks.json"))
    polls, engines, samples = engine_polls(nodes)
    return assemble(taken_at=1_700_000_000.0, engines=engines, swarm=swarm, polls=polls, samples=samples)


def test_the_parsed_lab_snapshot():
    check("lab-snapshot.json", snapshot_to_dict(lab_snapshot()))


def test_the_lab_snapshot_from_the_manager_only():
    snapshot = lab_snapshot(nodes=(1,))
    check("lab-snapshot-manager-only.json", {"json": snapshot_to_dict(snapshot), "text": summary_text(snapshot)})


def findings_of(snapshot, probes, **kwargs) -> list[dict]:
    from overlaytui.commands.doctor import finding_dict

    return [finding_dict(f) for f in diagnose(snapshot, probes, **kwargs)]


@pytest.mark.parametrize("scenario", ["healthy", "loss", "mtu", "node-down", "rolling-update"])
def test_findings_on_the_demo_scenarios(scenario):
    clock = [1_800_000_000.0]
    source = DemoSource(scenario, seed=7, clock=lambda: clock[0])
    clock[0] += 40  # past the settle time of fresh tasks
    asyncio.run(source.start())
    snapshot = source.snapshot()
    check(f"findings-demo-{scenario}.json", findings_of(snapshot, source.probe_results()))


def ping(net, src, dst, sent, received, rtt=0.3, error=""):
    return ProbeResult("ping", net, src, dst, 0.0, sent=sent, received=received,
                       rtt_avg_ms=rtt if received else None, error=error)


def test_findings_on_constructed_probe_results():
    """Boundaries of every probe check on the lab's real topology: loss exactly at the thresholds, a loss-free
    pair, a blocked pair, encrypted overlays silent where plain ones pass, failed probes, slow pairs, MTU holes,
    discovery results, an underlay too small."""
    snapshot = lab_snapshot()
    overlays = [n.name for n in snapshot.networks if n.driver == "overlay" and not n.ingress]
    plain = overlays[0]
    probes = [
        ping(plain, "node1", "node2", 1000, 999),   # exactly 0.1 %: bad
        ping(plain, "node2", "node1", 10000, 9999),  # 0.01 %: acceptable at most
        ping(plain, "node1", "node3", 100000, 100000),  # loss-free, enough samples: good, no finding
        ping(plain, "node3", "node1", 100, 100),  # loss-free, too few samples
        ping(plain, "node2", "node3", 100, 0),  # silent both ways on the plain overlay: blocked
        ping(plain, "node3", "node2", 100, 0),
        ping(plain, "node2", "node2", 0, 0, error="exec on node2: no answer within the timeout"),
        ping(plain, "node3", "node3", 50, 50, rtt=25.0),  # slow
        ProbeResult("mtu", plain, "node1", "node2", 0.0, path_mtu=1350),
        ProbeResult("mtu", plain, "node2", "node1", 0.0, path_mtu=1400),
        ProbeResult("mtu", plain, "node1", "node3", 0.0, path_mtu=1450),
        ProbeResult("discovery", plain, "node1", "node2", 0.0, resolved_vip="10.0.0.2", resolved_tasks=2,
                    vip_answers=False, task_answers=True),
        ProbeResult("discovery", plain, "node2", "node1", 0.0, resolved_vip=None, resolved_tasks=0),
        ProbeResult("discovery", plain, "node3", "node1", 0.0, resolved_vip="10.0.0.2", resolved_tasks=3,
                    vip_answers=True, task_answers=True),
        ProbeResult("discovery", plain, "node3", "node2", -1.0, error="on node3: nslookup did not run"),
    ]
    underlay = {n.address: (1400 if n.hostname == "node3" else 1500) for n in snapshot.nodes}
    check("findings-constructed.json",
          findings_of(snapshot, probes, thresholds=LossThresholds(), underlay_mtus=underlay))
