"""The lab on real engines: every fault must have its measured effect, and `down` must leave nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from overlaytui.lab import engines
from overlaytui.lab.layout import BRIDGE, IPTABLES_COMMENT, PREFIX, PROBE_IMAGE, data_dir, run_dir
from overlaytui.probes.ping import PingStats, parse_ping, ping_command
from tests.helpers import Lab, wait_for

NETWORK = "labtest"
SERVICE = "labprobe"


class ProbeService:
    """A global service of the probe image on an overlay: one task per node to ping between."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def container(self, node: str) -> str | None:
        out = self.lab.docker(node, "ps", "-q", "-f", f"label=com.docker.swarm.service.name={SERVICE}",
                              check=False).stdout.split()
        return out[0] if out else None

    def address(self, node: str) -> str:
        container = wait_for(lambda: self.container(node), 30, f"the {SERVICE} task on {node}")
        fmt = f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}'
        return self.lab.docker(node, "inspect", "-f", fmt, container).stdout.strip()

    def ping(self, src: str, dst: str, count: int, **options) -> PingStats:
        container = wait_for(lambda: self.container(src), 30, f"the {SERVICE} task on {src}")
        cmd = ping_command(self.address(dst), count, 0.01, **options)
        proc = self.lab.docker(src, "exec", container, *cmd, check=False, timeout=count * 0.05 + 30)
        return parse_ping(proc.stdout)


@pytest.fixture(scope="module")
def probe(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", "--attachable", NETWORK)
    lab.docker("node1", "service", "create", "-q", "--detach", "--name", SERVICE, "--mode", "global",
               "--network", NETWORK, "--endpoint-mode", "dnsrr", PROBE_IMAGE)
    service = ProbeService(lab)
    for node in ("node1", "node2", "node3"):
        wait_for(lambda n=node: service.container(n), 60, f"the {SERVICE} task on {node} to run")
    yield service
    lab.docker("node1", "service", "rm", SERVICE, check=False)


def test_three_nodes_ready_with_their_hostnames(lab: Lab):
    assert lab.node_states() == {"node1": "Ready", "node2": "Ready", "node3": "Ready"}
    roles = lab.docker("node1", "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}").stdout
    assert "node1 Leader" in roles
    for node in ("node1", "node2", "node3"):
        assert lab.docker(node, "image", "inspect", "-f", "{{.Id}}", PROBE_IMAGE).stdout.startswith("sha256:")


def test_ping_across_the_overlay(probe: ProbeService):
    stats = probe.ping("node1", "node3", 20)
    assert stats.received == 20, stats


def test_loss_fault_drops_vxlan_into_the_node(lab: Lab, probe: ProbeService):
    lab.fault("node2", "loss", "20")
    try:
        lossy = probe.ping("node1", "node2", 200)
        assert 5 <= lossy.loss_pct <= 40, lossy
    finally:
        lab.fault("node2", "clear")
    clean = probe.ping("node1", "node2", 200)
    assert clean.loss_pct == 0, clean


def test_mtu_fault_makes_a_black_hole(lab: Lab, probe: ProbeService):
    lab.fault("node3", "mtu", "1400")
    try:
        big = probe.ping("node1", "node3", 3, payload=1422, dont_fragment=True)
        small = probe.ping("node1", "node3", 3, payload=1300, dont_fragment=True)
        other = probe.ping("node1", "node2", 3, payload=1422, dont_fragment=True)
    finally:
        lab.fault("node3", "clear")
    assert big.received == 0, big
    assert small.received == 3, small
    assert other.received == 3, other  # only the path through node3 is affected


def test_partition_turns_the_node_down_and_clear_brings_it_back(lab: Lab):
    lab.fault("node3", "partition")
    try:
        wait_for(lambda: lab.node_states().get("node3") == "Down", 30, "node3 to turn Down")
    finally:
        lab.fault("node3", "clear")
    wait_for(lambda: lab.node_states().get("node3") == "Ready", 60, "node3 to be Ready again")


def test_engine_stop_refuses_and_engine_start_rejoins(lab: Lab):
    node2 = lab.layout("node2")
    lab.fault("node2", "engine-stop")
    try:
        refused = lab.docker("node2", "version", check=False, timeout=20)
        assert refused.returncode != 0
        assert "Cannot connect" in refused.stderr or "connection refused" in refused.stderr.lower()
        assert not engines.engine_answers(node2)
        wait_for(lambda: lab.node_states().get("node2") == "Down", 30, "node2 to turn Down")
    finally:
        lab.fault("node2", "engine-start")
    assert engines.engine_answers(node2)
    wait_for(lambda: lab.node_states().get("node2") == "Ready", 60, "node2 to rejoin as Ready")


def test_status_reports_faults_from_the_system(lab: Lab):
    from overlaytui.lab import lab as lab_module

    lab.fault("node2", "loss", "7.5")
    lab.fault("node3", "mtu", "1400")
    try:
        _, nodes = lab_module.status()
        faults = {n.name: n.faults for n in nodes}
        assert faults == {"node1": [], "node2": ["loss 7.5%"], "node3": ["mtu 1400"]}
    finally:
        lab.fault("node2", "clear")
        lab.fault("node3", "clear")
    _, nodes = lab_module.status()
    assert all(n.faults == [] and n.engine == "running" for n in nodes)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overlaytui", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_second_up_reports_the_running_lab(lab: Lab):
    proc = _cli("lab", "up")
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stderr
    assert re.search(r"node3\s+worker\s+ready\s+running", proc.stdout), proc.stdout


def test_down_after_a_crash_leaves_nothing(lab: Lab):
    """SIGKILL every engine (a crash), then `lab down`: nothing of the lab may remain. Runs last here."""
    try:
        subprocess.run(["pkill", "-KILL", "-f", f"dockerd --data-root={data_dir()}"], check=False)
        proc = _cli("lab", "down")
        assert proc.returncode == 0, proc.stderr
        assert _lab_remains() == [], _lab_remains()
        again = _cli("lab", "down")
        assert again.returncode == 0 and "nothing to remove" in again.stderr, _processes_between(proc, again)
    finally:
        lab.rebuild()  # later tests in the session still have their lab


def _processes_between(first, second) -> str:
    """What the second `lab down` found: its line and the lab's processes now, with state and parent."""
    from overlaytui.lab.lab import netns_list_lab

    found = []
    for pid in engines.lab_processes([Path("/run/netns") / ns for ns in netns_list_lab()]):
        try:
            name, rest = Path(f"/proc/{pid}/stat").read_text().split("(", 1)[1].rsplit(")", 1)
            found.append(f"{pid} {name} state {rest.split()[0]} parent {rest.split()[1]}")
        except OSError as exc:
            found.append(f"{pid}: {exc}")
    return f"first: {first.stderr.strip()}; second: {second.stderr.strip()}; now: {found or 'none'}"


def _lab_remains() -> list[str]:
    remains = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(run_dir()).encode() in cmdline or str(data_dir()).encode() in cmdline:
                remains.append(f"process {entry}: {cmdline[:80]!r}")
    remains += [f"netns {ns}" for ns in os.listdir("/run/netns") if ns.startswith(PREFIX)] if os.path.isdir(
        "/run/netns") else []
    remains += [f"link {i}" for i in os.listdir("/sys/class/net") if i.startswith(PREFIX) or i == BRIDGE]
    with open("/proc/self/mountinfo") as fh:
        remains += [f"mount {line.split()[4]}" for line in fh if "overlaytui-lab" in line.split()[4]]
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    remains += [f"rule {r}" for r in rules.splitlines() if IPTABLES_COMMENT in r]
    remains += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/{PREFIX}-node*")]
    remains += [f"dir {d}" for d in (run_dir(), data_dir()) if d.exists()]
    return remains
