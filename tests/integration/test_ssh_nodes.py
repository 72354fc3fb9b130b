"""One ssh endpoint is enough (--ssh-nodes) on the lab with an sshd in every node: the same nodes, per-node stats
and peer views as the three sockets; one ssh login per node however many streams; a node whose sshd dies is
marked with the ssh reason while the others go on, and comes back when it returns."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from overlaytui.lab import sshd
from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.lab.layout import PROBE_IMAGE, node_by_name
from overlaytui.model import ClusterSnapshot, Health
from overlaytui.sources import ssh
from overlaytui.sources.endpoints import EndpointSpec
from overlaytui.sources.swarm import DockerSwarmSource
from tests.helpers import Lab, lab_required, wait_for

NETWORK, SERVICE = "s-net", "s-web"
MANAGER = "ssh://root@10.231.0.1"


@pytest.fixture(scope="module")
def ssh_lab(lab: Lab):
    problem = sshd.missing()
    if problem:
        if lab_required():
            pytest.fail(f"{problem}: required here")
        pytest.skip(problem)
    layouts = [node_by_name(f"node{i}") for i in range(1, lab.nodes + 1)]
    sshd.enable(layouts)
    os.environ["OVERLAYTUI_SSH_CONFIG"] = str(sshd.client_config())
    lab.docker("node1", "network", "create", "-d", "overlay", NETWORK)
    lab.docker("node1", "service", "create", "-q", "--detach", "--name", SERVICE, "--mode", "global", "--network",
               NETWORK, PROBE_IMAGE)
    wait_for(lambda: lab.docker("node1", "service", "ls", "--filter", f"name={SERVICE}", "--format",
                                "{{.Replicas}}").stdout.strip() == "3/3", 90, "the service on every node")
    yield lab
    lab.docker("node1", "service", "rm", SERVICE, check=False)
    wait_for(lambda: lab.docker("node1", "network", "rm", NETWORK, check=False).returncode == 0, 60,
             "the overlay to be removable")
    for layout in layouts:
        sshd.start(layout)  # a failed test may have left one stopped
    os.environ.pop("OVERLAYTUI_SSH_CONFIG", None)


async def collect(endpoints, **kwargs) -> ClusterSnapshot:
    """A snapshot once the service's three containers have rates (not every container: an earlier module's
    probe agents may still be going away)."""
    source = DockerSwarmSource(endpoints, events=False, **kwargs)
    try:
        await source.start()
        deadline = time.monotonic() + 60
        while True:
            snapshot = source.snapshot()
            ours = [c for c in snapshot.containers if c.service_name == SERVICE]
            if len(ours) == 3 and all(c.rx_rate is not None for c in ours):
                return snapshot
            assert time.monotonic() < deadline, f"no rates for the service's containers: {ours}"
            await asyncio.sleep(0.2)
            await source.poll()
    finally:
        await source.close()


def per_node(snapshot: ClusterSnapshot):
    names = {n.id: n.hostname for n in snapshot.nodes}
    stats = sorted((names.get(c.node_id or "", "?"), c.service_name) for c in snapshot.containers
                   if c.service_name == SERVICE and c.rx_rate is not None)
    net = snapshot.network(NETWORK)
    peers = sorted((names.get(v.node_id or "", "?"), tuple(sorted(p.address for p in v.peers))) for v in net.views)
    return stats, peers


def test_one_ssh_endpoint_gives_what_three_sockets_give(ssh_lab: Lab):
    def both() -> tuple[ClusterSnapshot, ClusterSnapshot] | None:
        pair = (asyncio.run(collect(lab_endpoints())),
                asyncio.run(collect([EndpointSpec(MANAGER, "--host")], ssh_nodes=True)))
        return pair if per_node(pair[0]) == per_node(pair[1]) else None  # peer lists settle after a deploy
    sockets, over_ssh = wait_for(both, 90, "the same per-node stats and peers both ways", interval=1)
    assert [n.id for n in over_ssh.nodes] == [n.id for n in sockets.nodes]
    assert [(e.hostname, e.health, e.endpoint) for e in over_ssh.engines] == [
        ("node1", Health.OK, MANAGER), ("node2", Health.OK, "ssh://root@10.231.0.2"),
        ("node3", Health.OK, "ssh://root@10.231.0.3")]
    assert not over_ssh.unmeasured_nodes
    stats, peers = per_node(over_ssh)
    assert stats == [("node1", SERVICE), ("node2", SERVICE), ("node3", SERVICE)]
    assert (stats, peers) == per_node(sockets)
    assert all(len(addresses) == 3 for _node, addresses in peers)


def test_streams_share_one_ssh_login_per_node(ssh_lab: Lab):
    logs = {n: node_by_name(n) for n in ("node2", "node3")}

    def logins(name: str) -> int:
        path = sshd.run_dir() / name / "sshd.log"
        return path.read_text().count("Accepted publickey") if path.exists() else 0
    wrapper = ssh.prepare() / "ssh"
    for layout in logs.values():  # masters left by an earlier source: this one must log in afresh
        subprocess.run([str(wrapper), "-O", "exit", "--", layout.address], capture_output=True, timeout=10)
    before = {n: logins(n) for n in logs}
    snapshot = asyncio.run(collect([EndpointSpec(MANAGER, "--host")], ssh_nodes=True))
    containers = {n: sum(1 for c in snapshot.containers if c.engine == f"ssh://root@{layout.address}")
                  for n, layout in logs.items()}
    assert all(count >= 1 for count in containers.values()), containers
    # at least two connections per node (the polls' pool and a stats stream per container), and one login: the
    # master connection (ControlMaster) carries them all
    assert {n: logins(n) - before[n] for n in logs} == {n: 1 for n in logs}


async def _watch_node3(lab: Lab) -> tuple[str, float]:
    source = DockerSwarmSource([EndpointSpec(MANAGER, "--host")], ssh_nodes=True, events=False, call_timeout=3)
    await source.start()
    try:
        def engine(snapshot, name):
            return next(e for e in snapshot.engines if e.hostname == name or e.endpoint.endswith(
                node_by_name(name).address))
        assert engine(source.snapshot(), "node3").health is Health.OK
        lab.fault("node3", "ssh-stop")
        deadline = time.monotonic() + 30
        while True:
            await source.poll()
            snap = source.snapshot()
            if engine(snap, "node3").health is Health.ERROR:
                break
            assert time.monotonic() < deadline, "node3 never marked"
            await asyncio.sleep(0.5)
        reason = engine(snap, "node3").message
        assert engine(snap, "node1").health is Health.OK and engine(snap, "node2").health is Health.OK
        lab.fault("node3", "ssh-start")
        started = time.monotonic()
        while engine(source.snapshot(), "node3").health is not Health.OK:
            assert time.monotonic() - started < 60, "node3 never came back"
            await source.poll()
            await asyncio.sleep(0.5)
        return reason, time.monotonic() - started
    finally:
        await source.close()


def test_a_node_whose_sshd_dies_is_marked_with_the_reason_and_recovers(ssh_lab: Lab):
    reason, recovered_in = asyncio.run(_watch_node3(ssh_lab))
    assert "ssh connection refused" in reason, reason
    assert recovered_in < 40  # backoff is capped at 30 s


def test_the_commands_take_ssh_nodes(ssh_lab: Lab):
    result = subprocess.run([sys.executable, "-m", "overlaytui.cli", "snapshot", "--json", "-H", MANAGER,
                             "--ssh-nodes"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"health": "ok"') == 3
    bad = subprocess.run([sys.executable, "-m", "overlaytui.cli", "snapshot", "--lab", "--ssh-nodes"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--ssh-nodes needs an ssh endpoint" in bad.stderr
    probe = subprocess.run([sys.executable, "-m", "overlaytui.cli", "probe", "-H", MANAGER, "--ssh-nodes",
                            "--network", NETWORK, "--probe-image", "overlaytui/probe:lab", "--count", "50",
                            "--interval", "0.01", "--json"], capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-2000:]
    found = json.loads(probe.stdout)
    assert sum(1 for r in found["results"] if r["kind"] == "ping" and r["error"] == "") == 6
    assert found["within_thresholds"] is True  # docker exec over ssh (docker-py#3218 worked around)


def test_the_exporter_from_one_ssh_endpoint_with_a_minimal_image(ssh_lab: Lab, tmp_path):
    """Not the lab's defaults: one manager endpoint over ssh, the user's own minimal image (a shell, ping, sleep:
    no iperf3). Throughput is said to be unavailable and never exported; loss and path MTU are."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "exporter.log"
    with log.open("w") as out:
        exporter = subprocess.Popen(
            [sys.executable, "-m", "overlaytui.cli", "exporter", "-H", MANAGER, "--ssh-nodes", "--listen",
             f"127.0.0.1:{port}", "--network", NETWORK, "--probe-image", "overlaytui/probe:minimal", "--kind",
             "ping,mtu,iperf", "--probe-every", "1", "--count", "50", "--interval", "0.01"], stdout=out,
            stderr=subprocess.STDOUT)
        try:
            def scrape() -> str:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
                        return response.read().decode()
                except OSError:
                    return ""
            text = wait_for(lambda: (t := scrape()) and t.count("overlaytui_pair_up{") == 6 and
                            "overlaytui_pair_path_mtu_bytes{" in t and t, 180,
                            "six pairs up with a path MTU, over ssh", interval=1)
            assert text.count("} 1.0\n", text.index("# TYPE overlaytui_pair_up")) >= 6
            assert "overlaytui_pair_throughput_bits_per_second{" not in text
            assert 'overlaytui_pairs_measured{kind="iperf",network="s-net"} 0.0' in text
            assert 'overlaytui_pairs_expected{kind="iperf",network="s-net"} 6.0' in text
        finally:
            exporter.send_signal(signal.SIGTERM)
            code = exporter.wait(90)
    said = log.read_text()
    assert code == 0 and "not available in overlaytui/probe:minimal: missing iperf3" in said, said[-2000:]
    assert "Traceback" not in said
