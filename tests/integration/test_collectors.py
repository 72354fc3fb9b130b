"""The swarm source on the real lab, checked against the docker CLI run on the same lab."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.lab.layout import PROBE_IMAGE
from overlaytui.model import ClusterSnapshot, Health
from overlaytui.sources.assemble import attachments
from overlaytui.sources.stats import map_interfaces, read_local_macs
from overlaytui.sources.swarm import DockerSwarmSource
from tests.helpers import Lab, wait_for

NODES = ("node1", "node2", "node3")
OVERLAYS = ("c-front", "c-back", "c-secure")
SERVICES = {"c-web": 4, "c-api": 3, "c-agent": None, "c-sec": 2}  # None: global


@pytest.fixture(scope="module")
def cluster(lab: Lab):
    d = lambda *args: lab.docker("node1", *args)  # noqa: E731
    d("network", "create", "-d", "overlay", "--attachable", "c-front")
    d("network", "create", "-d", "overlay", "--opt", "com.docker.network.driver.mtu=1400", "c-back")
    d("network", "create", "-d", "overlay", "--opt", "encrypted", "c-secure")
    common = ["service", "create", "-q", "--detach"]
    d(*common, "--name", "c-web", "--replicas", "4", "--network", "c-front", "-p", "18080:80", PROBE_IMAGE)
    d(*common, "--name", "c-api", "--replicas", "3", "--endpoint-mode", "dnsrr", "--network", "c-back",
      "--network", "c-front", PROBE_IMAGE)
    d(*common, "--name", "c-agent", "--mode", "global", "--network", "c-back", PROBE_IMAGE)
    d(*common, "--name", "c-sec", "--replicas", "2", "--network", "c-secure", PROBE_IMAGE)
    wait_for(lambda: _running_counts(lab) == {"c-web": 4, "c-api": 3, "c-agent": 3, "c-sec": 2}, 90,
             "all services to run")
    # some real overlay traffic, so that byte counters are not all near zero
    web = lab.docker("node1", "ps", "-q", "-f", "label=com.docker.swarm.service.name=c-web").stdout.split()[0]
    lab.docker("node1", "exec", web, "ping", "-q", "-c", "50", "-i", "0.01", "-s", "1000", "tasks.c-api",
               check=False)
    yield lab
    for service in SERVICES:
        lab.docker("node1", "service", "rm", service, check=False)


def _running_counts(lab: Lab) -> dict[str, int]:
    out = lab.docker("node1", "service", "ls", "--format", "{{.Name}} {{.Replicas}}").stdout
    counts = {}
    for line in out.splitlines():
        name, replicas = line.split()[:2]
        if name in SERVICES:
            counts[name] = int(replicas.split("/")[0])
    return counts


def _vxlan_state(node: str) -> str:
    """A node's VXLAN devices, its sockets on udp/4789 and the overlay sandboxes mounted for it: what to look at
    when its engine cannot create a VXLAN device ("file exists")."""
    from overlaytui.lab.engines import vxlan_sockets
    from overlaytui.lab.host import in_netns
    from overlaytui.lab.layout import node_by_name

    layout = node_by_name(node)
    links = in_netns(layout, ["ip", "-d", "-o", "link", "show", "type", "vxlan"], check=False).stdout
    udp = vxlan_sockets(layout)
    with open("/proc/self/mountinfo") as fh:
        mounts = [line.split()[4] for line in fh if f"{layout.exec_root}/netns/" in line.split()[4]]
    return f"vxlan links: {links.strip() or 'none'}; udp/4789: {udp or 'none'}; sandboxes: {mounts or 'none'}"


def _engine_counts(lab: Lab) -> dict[str, int]:
    """Running containers per service, as the engines list them (the managers' counts lag their removal)."""
    counts: Counter[str] = Counter()
    for node in NODES:
        out = lab.docker(node, "ps", "--format", '{{.Label "com.docker.swarm.service.name"}}').stdout
        counts.update(name for name in out.split() if name in SERVICES)
    return dict(counts)


async def take_snapshot(**kwargs) -> ClusterSnapshot:
    source = DockerSwarmSource(lab_endpoints(), events=False, **kwargs)
    try:
        await source.start()
        assert await source.wait_for_stats(timeout=5)
        return source.snapshot()
    finally:
        await source.close()


@pytest.fixture(scope="module")
def snapshot(cluster) -> ClusterSnapshot:
    return asyncio.run(take_snapshot())


def test_nodes_match_docker_node_ls(cluster: Lab, snapshot: ClusterSnapshot):
    cli = {}
    for line in cluster.docker("node1", "node", "ls", "--format", "{{json .}}").stdout.splitlines():
        row = json.loads(line)
        cli[row["Hostname"]] = (row["Status"].lower(), "manager" if row["ManagerStatus"] else "worker",
                                row["ManagerStatus"] == "Leader")
    ours = {n.hostname: (n.state, n.role, n.leader) for n in snapshot.nodes}
    assert ours == cli
    assert all(e.health is Health.OK for e in snapshot.engines)
    assert {e.hostname for e in snapshot.engines} == set(NODES)


def test_services_match_docker_service_inspect(cluster: Lab, snapshot: ClusterSnapshot):
    ours = {s.name: s for s in snapshot.services}
    for name in SERVICES:
        raw = json.loads(cluster.docker("node1", "service", "inspect", name).stdout)[0]
        mode = "global" if "Global" in raw["Spec"]["Mode"] else "replicated"
        replicas = raw["Spec"]["Mode"].get("Replicated", {}).get("Replicas")
        vips = sorted((v["NetworkID"], v["Addr"]) for v in raw["Endpoint"].get("VirtualIPs", []))
        service = ours[name]
        assert (service.mode, service.replicas) == (mode, replicas)
        assert service.endpoint_mode == raw["Spec"]["EndpointSpec"]["Mode"]
        assert sorted((v.network_id, v.address) for v in service.vips) == vips
    assert ours["c-api"].endpoint_mode == "dnsrr" and ours["c-api"].vips == ()
    assert ours["c-web"].published_ports == ("18080->80/tcp",)


def test_placement_matches_docker_service_ps(cluster: Lab, snapshot: ClusterSnapshot):
    hostnames = {n.id: n.hostname for n in snapshot.nodes}
    ours = Counter((t.service_name, hostnames[t.node_id]) for t in snapshot.tasks
                   if t.service_name in SERVICES and t.desired_state == "running" and t.state == "running")
    cli = Counter()
    for name in SERVICES:
        out = cluster.docker("node1", "service", "ps", name, "--filter", "desired-state=running",
                             "--format", "{{.Node}} {{.CurrentState}}").stdout
        for line in out.splitlines():
            node, state = line.split()[:2]
            if state == "Running":
                cli[(name, node)] += 1
    assert ours == cli


def test_overlays_match_network_inspect(cluster: Lab, snapshot: ClusterSnapshot):
    addr_to_host = {n.address: n.hostname for n in snapshot.nodes}
    for name in OVERLAYS:
        raw = json.loads(cluster.docker("node1", "network", "inspect", "-v", name).stdout)[0]
        net = snapshot.network(name)
        options = raw.get("Options") or {}
        assert net.subnet == raw["IPAM"]["Config"][0]["Subnet"]
        assert net.gateway == raw["IPAM"]["Config"][0]["Gateway"]
        assert net.vni == int(options["com.docker.network.driver.overlay.vxlanid_list"])
        assert net.configured_mtu == (int(options["com.docker.network.driver.mtu"])
                                      if "com.docker.network.driver.mtu" in options else None)
        assert net.encrypted == ("encrypted" in options)
        assert net.attachable == raw["Attachable"]
        # each node's own peer list, as its engine reports it; peers change while tasks settle, so both sides
        # are read at one moment (a fresh snapshot, then the CLI) and compared until they agree
        deadline = time.monotonic() + 60
        while (wrong := _peers_disagree(cluster, name)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not wrong, f"{name}: our peer lists differ from `docker network inspect -v` for 60 s: {wrong}"
    assert snapshot.network("c-back").effective_mtu == 1350
    secure_hosts = {addr_to_host[p.address] for v in snapshot.network("c-secure").views for p in v.peers}
    assert len(secure_hosts) >= 1


def _peers_disagree(cluster: Lab, name: str) -> list[str]:
    """Nodes where our peer list of `name` differs from the node's `docker network inspect -v`."""
    net = asyncio.run(take_snapshot(stats=False)).network(name)
    wrong = []
    for node in NODES:
        inspect = cluster.docker(node, "network", "inspect", "-v", name, check=False)
        view = next((v for v in net.views if v.engine.endswith(f"/{node}/docker.sock")), None)
        # not active on a node: a worker cannot inspect it, a manager shows it without peers; we show no view
        ours = sorted(p.address for p in view.peers) if view else []
        cli = sorted(p["IP"] for p in json.loads(inspect.stdout)[0].get("Peers") or []) \
            if inspect.returncode == 0 else []
        if ours != cli:
            wrong.append(f"{node}: ours {ours} cli {cli}")
    return wrong


_SIZE = re.compile(r"([\d.]+)\s*([kMGT]?B)")
_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def _cli_netio(lab: Lab, node: str) -> dict[str, tuple[float, float]]:
    """container id prefix -> (rx, tx) bytes, from `docker stats --no-stream` (decimal units, 3 digits)."""
    out = lab.docker(node, "stats", "--no-stream", "--format", "{{.ID}} {{.NetIO}}").stdout
    result = {}
    for line in out.splitlines():
        cid, rest = line.split(" ", 1)
        (rx, rx_unit), (tx, tx_unit) = _SIZE.findall(rest)
        result[cid] = (float(rx) * _UNITS[rx_unit], float(tx) * _UNITS[tx_unit])
    return result


def test_stats_for_every_container_netio_within_5_percent_of_docker_stats(cluster: Lab):
    with ThreadPoolExecutor(3) as pool:
        before = dict(zip(NODES, pool.map(lambda n: _cli_netio(cluster, n), NODES), strict=False))
    snapshot = asyncio.run(take_snapshot())
    with ThreadPoolExecutor(3) as pool:
        after = dict(zip(NODES, pool.map(lambda n: _cli_netio(cluster, n), NODES), strict=False))
    ours = {c.container_id[:12]: c for c in snapshot.containers}
    for node in NODES:
        assert set(after[node]) <= set(ours) | (set(after[node]) - set(before[node]))  # every container has stats
        for cid, (rx_after, tx_after) in after[node].items():
            if cid not in before[node]:
                continue
            container = ours[cid]
            for mine, low, high in ((container.rx_bytes, before[node][cid][0], rx_after),
                                    (container.tx_bytes, before[node][cid][1], tx_after)):
                assert min(low, high) * 0.95 - 10 <= mine <= max(low, high) * 1.05 + 10, (container.name, mine,
                                                                                           low, high)
    assert any(c.rx_bytes > 50_000 for c in snapshot.containers)  # the ping traffic is in there


def test_inferred_interface_mapping_equals_the_exact_one(cluster: Lab, snapshot: ClusterSnapshot):
    """On the lab the MACs can be read (exact); the order rule used for remote engines must agree."""
    checked = 0
    for node in NODES:
        ids = cluster.docker(node, "ps", "-q", "--no-trunc").stdout.split()
        for cid in ids:
            inspect = json.loads(cluster.docker(node, "inspect", cid).stdout)[0]
            listed = {"Id": cid, "NetworkSettings": {"Networks": inspect["NetworkSettings"]["Networks"]}}
            networks = {n.id: n for n in snapshot.networks}
            attached = attachments(listed, networks)
            macs = read_local_macs(inspect["State"]["Pid"], cid)
            assert macs, f"MACs of {cid[:12]} unreadable"
            gateway = next((n.id, n.name) for n in snapshot.networks
                           if n.name == "docker_gwbridge" and n.engine.endswith(f"/{node}/docker.sock"))
            exact = map_interfaces(list(macs), attached, macs, gateway)
            inferred = map_interfaces(list(macs), attached, None, gateway)
            assert {k: v.network_name for k, v in inferred.items()} == {k: v.network_name for k, v in exact.items()}
            checked += 1
    assert checked >= 12


async def test_engine_stop_shows_error_within_one_poll_and_recovers(cluster: Lab):
    source = DockerSwarmSource(lab_endpoints(), call_timeout=2.0)
    await source.start()
    try:
        cluster.fault("node2", "engine-stop")
        try:
            await source.poll()
            engines = {e.hostname: e for e in source.snapshot().engines}
            assert engines["node2"].health is Health.ERROR
            # refused, or (a poll right after the engine died, on a pooled connection) dropped
            assert any(why in engines["node2"].message for why in ("refused", "no Docker socket", "dropped")), \
                engines["node2"].message
            assert engines["node1"].health is Health.OK and engines["node3"].health is Health.OK
            assert source.snapshot().nodes  # the manager still gives the swarm view
            # an outage the managers see (node2 Down), not a blink shorter than their heartbeat
            wait_for(lambda: cluster.node_states().get("node2") == "Down", 30, "node2 to turn Down")
        finally:
            cluster.fault("node2", "engine-start")
        await source.poll()
        engines = {e.hostname: e for e in source.snapshot().engines}
        assert engines["node2"].health is Health.OK
    finally:
        await source.close()
    wait_for(lambda: cluster.node_states().get("node2") == "Ready", 60, "node2 Ready again")
    # Isolation for the tests after this one: node2's tasks went elsewhere while it was Down, and node2 removes
    # its old containers once back. Wait until the engines themselves run the replicated services in full.
    # node2's own global task is not waited for: after an engine restart Docker has at times failed to create
    # c-back's VXLAN device there ("error creating vxlan interface: file exists") and kept retrying for minutes
    # (CI, also before this lab released the old sandboxes); that is Docker's to recover, not what this tests.
    replicated = {"c-web": 4, "c-api": 3, "c-sec": 2}

    def settled() -> bool:
        managers, engines = _running_counts(cluster), _engine_counts(cluster)
        return all(managers.get(k) == v and engines.get(k) == v for k, v in replicated.items()) and \
            managers.get("c-agent", 0) >= 2 and engines.get("c-agent", 0) >= 2

    deadline = time.monotonic() + 60
    while not settled():
        assert time.monotonic() < deadline, (
            "the replicated services did not run in full again within 60 s",
            _running_counts(cluster), _engine_counts(cluster), _vxlan_state("node2"))
        time.sleep(0.5)
    if _engine_counts(cluster).get("c-agent") != 3:
        print("node2's c-agent not back yet:", cluster.docker(
            "node1", "service", "ps", "c-agent", "--no-trunc", "--format", "{{.Node}} {{.CurrentState}} {{.Error}}"
        ).stdout, _vxlan_state("node2"))


async def test_events_wake_the_consumer_before_the_reconcile_poll(cluster: Lab):
    source = DockerSwarmSource(lab_endpoints(), stats=False)
    await source.start()
    try:
        await source.wait_for_change(timeout=0.5)  # the connect notifications
        cluster.docker("node1", "service", "create", "-q", "--detach", "--name", "c-evt", "--replicas", "1",
                       PROBE_IMAGE)
        assert await source.wait_for_change(timeout=10)  # reconcile would take 15 s
        await source.poll()
        assert "c-evt" in {s.name for s in source.snapshot().services}

        # the task's `running` reaches the manager after its container's events: the follow-up polls while it
        # settles show it without a reconcile poll (this loop never does one)
        def up() -> int:
            return sum(1 for t in source.snapshot().tasks if t.service_name == "c-evt" and t.up)

        deadline = time.monotonic() + 12
        while up() < 1 and time.monotonic() < deadline:
            if await source.wait_for_change(timeout=deadline - time.monotonic()):
                await source.poll()
        assert up() == 1, [(t.state, t.desired_state) for t in source.snapshot().tasks if t.service_name == "c-evt"]
    finally:
        cluster.docker("node1", "service", "rm", "c-evt", check=False)
        await source.close()
        # its task's container stops and goes a moment after the removal: gone before the next test reads every
        # container's rates (a container going away has none to give; once in a full CI run it was still listed)
        nodes = [f"node{i}" for i in range(1, cluster.nodes + 1)]
        wait_for(lambda: not any(cluster.docker(n, "ps", "-aq", "--filter", "name=c-evt.", check=False).stdout.strip()
                                 for n in nodes), 60, "c-evt's container to go")


async def test_the_consumer_is_woken_once_when_every_rate_can_be_shown(cluster: Lab):
    """Two stats samples per container take two engine ticks from the streams' start: the consumer's wait ends
    (False: a frame, no poll) as soon as every container has them, not at its next interval — and only then."""
    source = DockerSwarmSource(lab_endpoints(), events=False)  # nothing else ends a wait
    await source.start()
    try:
        waited = time.monotonic()
        assert await source.wait_for_change(timeout=30) is False
        assert time.monotonic() - waited < 25  # woken, not timed out (the ticks are ~2 s; slack for a loaded host)
        containers = source.snapshot().containers
        assert containers and all(c.rx_rate is not None and c.cpu_pct is not None for c in containers), [
            (c.name, c.rx_rate, c.cpu_pct) for c in containers if c.rx_rate is None or c.cpu_pct is None]
        waited = time.monotonic()
        assert await source.wait_for_change(timeout=0.5) is False
        assert time.monotonic() - waited >= 0.45  # once: this wait ran to its timeout
    finally:
        await source.close()


def _snapshot_cli(*args: str, user: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "overlaytui", "snapshot", *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "HOME": "/tmp"})


def test_snapshot_cli_json_on_the_lab(cluster: Lab):
    proc = _snapshot_cli("--lab", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {n["hostname"] for n in data["nodes"]} == set(NODES)
    front = [{k: c.get(k) for k in ("name", "node", "engine", "rx_rate", "networks")} for c in data["containers"]
             if str(c.get("name", "")).startswith(("c-web", "c-api"))]
    assert data["netio"]["by_network"]["c-front"]["containers"] >= 7, (front, proc.stderr)


@pytest.mark.parametrize(("args", "message"), [
    (("--host", "tcp://127.0.0.1:9"), "connection refused"),
    (("--host", "unix:///nonexistent/docker.sock"), "no Docker socket there"),
    (("--context", "no-such-context"), "unknown docker context 'no-such-context'"),
])
def test_snapshot_cli_bad_endpoints_one_line_exit_2(lab: Lab, args, message):
    proc = _snapshot_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_snapshot_cli_permission_denied(lab: Lab):
    proc = _snapshot_cli("--host", lab.layout("node1").docker_host, user="65534")
    assert proc.returncode == 2
    assert "permission denied" in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_snapshot_cli_worker_instead_of_manager(cluster: Lab):
    # a container of node2's own: after node2's engine restart above, swarm may take minutes to run node2's
    # global task again (seen in CI: `docker ps` on node2 empty for over 60 s while the managers said 3/3)
    cluster.docker("node2", "run", "-d", "--name", "worker-own", PROBE_IMAGE)
    try:
        proc = _snapshot_cli("--host", cluster.layout("node2").docker_host, "--json")
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["nodes"] == [] and "no manager reachable" in proc.stderr, proc.stderr
        assert "worker-own" in [c["name"] for c in data["containers"]]  # its own containers are still shown
        assert [e["role"] for e in data["engines"]] == ["worker"]
    finally:
        cluster.docker("node2", "rm", "-f", "worker-own", check=False)


def test_snapshot_cli_not_a_swarm(cluster: Lab):
    """node3 leaves the swarm: a single engine shows its containers and local networks, then rejoins."""
    manager = cluster.layout("node1")
    old_id = cluster.docker("node3", "info", "-f", "{{.Swarm.NodeID}}").stdout.strip()
    cluster.docker("node3", "swarm", "leave", "--force")
    try:
        cluster.docker("node3", "run", "-d", "--name", "standalone", PROBE_IMAGE)
        proc = _snapshot_cli("--host", cluster.layout("node3").docker_host, "--json")
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert "not a swarm" in proc.stderr
        assert [c["name"] for c in data["containers"]] == ["standalone"]
        assert {n["name"] for n in data["networks"]} >= {"bridge", "host", "none"}
        assert data["engines"][0]["role"] == "standalone"
    finally:
        cluster.docker("node3", "rm", "-f", "standalone", check=False)
        token = cluster.docker("node1", "swarm", "join-token", "-q", "worker").stdout.strip()
        cluster.docker("node3", "swarm", "join", "--token", token, "--advertise-addr",
                       cluster.layout("node3").address, f"{manager.address}:2377")
        wait_for(lambda: "Down" in cluster.docker("node1", "node", "inspect", old_id, "-f", "{{.Status.State}}",
                                                  check=False).stdout.title(), 30, "the old node3 to be down")
        cluster.docker("node1", "node", "rm", "--force", old_id, check=False)
        wait_for(lambda: cluster.node_states().get("node3") == "Ready", 60, "node3 to rejoin")
