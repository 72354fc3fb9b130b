"""Probes on the real lab: each fault must show in the measurements, and nothing of the probes may remain."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from overlaytui.analysis.thresholds import Verdict, judge_loss
from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.lab.layout import PROBE_IMAGE
from overlaytui.probes.agent import LAB_IMAGE, LEASE_ENV, PROBE_LABEL
from overlaytui.probes.session import ProbeSession, ProbeSettings
from overlaytui.sources.swarm import DockerSwarmSource
from tests.helpers import Lab, wait_for

PLAIN, SECURE = "p-plain", "p-secure"
FAST = {"count": 200, "interval": 0.01}  # root in the agents: short intervals are allowed


@pytest.fixture(scope="module")
def overlays(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", "--attachable", PLAIN)
    lab.docker("node1", "network", "create", "-d", "overlay", "--attachable", "--opt", "encrypted", SECURE)
    yield lab
    lab.docker("node1", "network", "rm", PLAIN, SECURE, check=False)


async def probe(networks, kinds=("ping",), **settings) -> list:
    source = DockerSwarmSource(lab_endpoints(), stats=False, events=False)
    await source.start()
    session = ProbeSession(source.snapshot, ProbeSettings(kinds=kinds, networks=tuple(networks), image=LAB_IMAGE,
                                                          **settings))
    try:
        await session.start()
        await source.poll()
        return list(await session.run_round())
    finally:
        await session.close()
        await source.close()


def by_pair(results, kind):
    return {(r.src_node, r.dst_node): r for r in results if r.kind == kind}


def probe_remains(lab: Lab) -> list[str]:
    """Probe services and containers left in the cluster (containers go 10-15 s after their service, and longer
    on a node that was cut off meanwhile: callers wait with a deadline)."""
    services = lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.split()
    containers = [c for node in ("node1", "node2", "node3") for c in lab.docker(
        node, "ps", "-aq", "--filter", f"label={PROBE_LABEL}").stdout.split()]
    return services + containers


def clear_probe_leftovers(lab: Lab, wait: float) -> None:
    """Isolation between modules only (each test asserts what overlaytui removed itself): wait up to `wait`
    seconds for Docker to remove the agents' containers, then force-remove what is left of services that are
    gone. After a partition or an engine restart, Docker has kept such containers for minutes on this lab."""
    deadline = time.monotonic() + wait
    while probe_remains(lab) and time.monotonic() < deadline:
        time.sleep(0.5)
    if lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.split():
        return  # a service still runs: not a leftover
    for node in ("node1", "node2", "node3"):
        if ids := lab.docker(node, "ps", "-aq", "--filter", f"label={PROBE_LABEL}").stdout.split():
            print(f"{node}: force-removing probe containers Docker kept after {wait:g} s: {ids}")
            lab.docker(node, "rm", "-f", *ids, check=False)


def test_healthy_overlay_all_pairs_measured_without_loss(overlays: Lab):
    results = asyncio.run(probe([PLAIN], kinds=("ping", "mtu"), **FAST))
    pings, mtus = by_pair(results, "ping"), by_pair(results, "mtu")
    assert len(pings) == 6 and len(mtus) == 6  # every directed pair of 3 nodes
    assert all(r.error == "" and r.received == r.sent == 200 for r in pings.values()), pings
    assert all(r.path_mtu == 1450 for r in mtus.values()), mtus
    wait_for(lambda: probe_remains(overlays) == [], 90, "the probe agents to be gone")


def test_loss_through_node2(overlays: Lab):
    overlays.fault("node2", "loss", "10")
    try:
        results = asyncio.run(probe([PLAIN], **FAST))
    finally:
        overlays.fault("node2", "clear")
    pings = by_pair(results, "ping")
    assert len(pings) == 6 and all(r.measured for r in pings.values()), pings  # every pair measured first
    for (src, dst), r in pings.items():
        if "node2" in (src, dst):
            assert 4 <= r.loss_pct <= 20, (src, dst, r.loss_pct)
            assert judge_loss(r.sent - r.received, r.sent) is Verdict.BAD
        else:
            assert r.loss_pct < 2, (src, dst, r.loss_pct)


def test_mtu_black_hole_through_node3(overlays: Lab):
    overlays.fault("node3", "mtu", "1400")
    try:
        results = asyncio.run(probe([PLAIN], kinds=("mtu",)))
    finally:
        overlays.fault("node3", "clear")
    mtus = by_pair(results, "mtu")
    assert len(mtus) == 6 and all(r.measured for r in mtus.values()), mtus
    for (src, dst), r in mtus.items():
        if "node3" in (src, dst):
            # the underlay carries 1400: overlay packets fit up to 1400 - 50 (VXLAN); a receiving link accepts 4
            # bytes over its MTU (room for a VLAN tag), so packets *into* node3 pass up to 1354 (measured)
            assert r.path_mtu is not None and 1350 <= r.path_mtu <= 1354, (src, dst, r)
        else:
            assert r.path_mtu == 1450, (src, dst, r)


def test_encrypted_overlay_drops_cross_node_traffic(overlays: Lab):
    """This kernel has no ESP: encrypted overlays are created but carry nothing between nodes."""
    lab = overlays
    lab.docker("node1", "run", "-d", "--name", "p-neighbour", "--network", SECURE, PROBE_IMAGE)
    try:
        results = asyncio.run(probe([SECURE], count=20, interval=0.01))
        cross = by_pair(results, "ping")
        assert len(cross) == 6 and all(r.received == 0 for r in cross.values()), cross
        # same node: the agent on node1 reaches a container beside it
        neighbour = lab.docker("node1", "inspect", "-f",
                               f'{{{{(index .NetworkSettings.Networks "{SECURE}").IPAddress}}}}', "p-neighbour"
                               ).stdout.strip()
        out = lab.docker("node1", "exec", "p-neighbour", "ping", "-c", "5", "-i", "0.01", "-W", "1", neighbour,
                         check=False).stdout
        assert "5 received" in out  # the path inside one node works
    finally:
        lab.docker("node1", "rm", "-f", "p-neighbour", check=False)


def _probe_cli(*args: str, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "overlaytui", "probe", "--lab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_cli_exit_codes_and_json(overlays: Lab):
    ok = _probe_cli("--network", PLAIN, "--count", "20", "--interval", "0.01", "--json")
    out, err = ok.communicate(timeout=180)
    assert ok.returncode == 0, err
    data = json.loads(out)
    assert data["within_thresholds"] and len([r for r in data["results"] if r["kind"] == "ping"]) == 6
    unknown = _probe_cli("--network", "no-such-net")
    _, err = unknown.communicate(timeout=60)
    assert unknown.returncode == 2 and "unknown overlay no-such-net" in err
    overlays.fault("node2", "loss", "30")
    try:
        lossy = _probe_cli("--network", PLAIN, "--count", "50", "--interval", "0.01", "--kind", "ping")
        out, err = lossy.communicate(timeout=180)
    finally:
        overlays.fault("node2", "clear")
    assert lossy.returncode == 1, (out, err)
    assert "node1 -> node2" in out and "bad" in out


def test_a_crashed_runs_agents_are_left_alone_while_its_lease_runs(overlays: Lab):
    """A run killed with SIGKILL cannot be told from a live one (another host's, or this one's in another pid
    namespace) until its lease lapses: the next start leaves its agents alone. That they then stop by themselves
    and a later run removes them: test_coexist_lab."""
    lab = overlays
    env = {**os.environ, LEASE_ENV: "20"}
    crashed = _probe_cli("--network", PLAIN, "--count", "3000", "--interval", "0.01", env=env)
    wait_for(lambda: lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.strip(),
             60, "the probe agents to be deployed")
    time.sleep(0.5)
    crashed.send_signal(signal.SIGKILL)
    crashed.communicate(timeout=30)
    left = lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.split()
    assert len(left) == 1  # a crash leaves its agents behind...
    again = _probe_cli("--network", PLAIN, "--count", "5", "--interval", "0.01", env=env)
    _, err = again.communicate(timeout=180)
    assert again.returncode == 0, err  # ...the next run probes beside them...
    assert "left by an earlier run" not in err  # ...and leaves them alone while their lease runs
    assert lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.split() == left
    lab.docker("node1", "service", "rm", *left)  # isolation: the next tests expect a clean cluster
    wait_for(lambda: probe_remains(lab) == [], 90, "every probe service and container to be gone")


def test_with_only_the_manager_reachable_agents_report_through_service_logs(overlays: Lab):
    from overlaytui.sources.endpoints import EndpointSpec

    async def run():
        only_manager = [EndpointSpec(overlays.layout("node1").docker_host, "test: manager only")]
        source = DockerSwarmSource(only_manager, stats=False, events=False)
        await source.start()
        session = ProbeSession(source.snapshot, ProbeSettings(networks=(PLAIN,), image=LAB_IMAGE, count=20,
                                                              interval=0.01, report_every=1))
        try:
            await session.start()
            assert session.via_logs  # node2 and node3 have no engine connection
            return list(await session.run_round())
        finally:
            await session.close()
            await source.close()

    pings = by_pair(asyncio.run(run()), "ping")
    assert len(pings) == 6  # every directed pair, node2 and node3 included as sources
    assert all(r.error == "" and r.sent == 20 and r.received == 20 for r in pings.values()), pings
    wait_for(lambda: probe_remains(overlays) == [], 90, "the probe agents to be gone")


def test_watch_shows_loss_within_a_round_of_it_appearing_and_clearing(overlays: Lab):
    """`probe --watch --json`: one object per round; each result's `loss_pct` is that round's loss (with the
    window and the cumulative figures beside it), so loss that starts or stops shows in the next round."""
    lab = overlays
    proc = _probe_cli("--network", PLAIN, "--kind", "ping", "--count", "200", "--interval", "0.01", "--watch", "0.5",
                      "--json")
    rounds: list[dict] = []

    def next_round() -> dict:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        rounds.append(json.loads(line))
        return rounds[-1]

    def first_round_after(moment: float) -> tuple[int, dict]:
        while True:
            data = next_round()
            if all(r["measured_at"] > moment for r in data["results"]):
                return len(rounds), data

    def node2_loss(data) -> dict:
        return {(r["src_node"], r["dst_node"]): r["loss_pct"] for r in data["results"] if r["kind"] == "ping"}

    try:
        next_round()
        injected_after = len(rounds)
        lab.fault("node2", "loss", "10")
        index, data = first_round_after(time.time())
        assert index <= injected_after + 2  # the round under way, then the next one at the latest
        loss = node2_loss(data)
        assert len(loss) == 6, data
        for (src, dst), pct in loss.items():
            assert (4 <= pct <= 20) if "node2" in (src, dst) else pct < 2, (src, dst, pct)
        some = next(r for r in data["results"] if "node2" in (r["src_node"], r["dst_node"]))
        assert some["cumulative"]["sent"] > some["sent"] and some["window"]["seconds"] == 300
        cleared_after = len(rounds)
        lab.fault("node2", "clear")
        index, data = first_round_after(time.time())
        assert index <= cleared_after + 2
        assert all(pct < 1 for pct in node2_loss(data).values()), data
    finally:
        lab.fault("node2", "clear")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 130
    wait_for(lambda: lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.strip()
             == "", 30, "the agents removed on SIGTERM")
