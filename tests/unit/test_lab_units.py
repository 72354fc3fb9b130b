"""The lab's pure parts: names and paths, argument checks, the down summary, the CLI's one-line errors."""

import subprocess
import sys

import pytest

from overlaytui.lab import host, layout
from overlaytui.lab.lab import _summary


def test_node_layout_names_fit_kernel_limits():
    for index in range(1, layout.MAX_NODES + 1):
        node = layout.node(index)
        assert len(node.veth_host) + 1 <= 15  # the peer is named veth_host + "p" before it becomes eth0
        assert len(node.netns) <= 15
        assert node.address == f"10.231.0.{index}"
        assert len(str(node.socket)) < 100  # unix socket paths are limited to 108 bytes


def test_node_by_name():
    assert layout.node_by_name("node2").index == 2
    assert layout.node_by_name("3").index == 3
    assert layout.node_by_name("node24").index == 24
    assert layout.node_by_name(f"node{layout.MAX_NODES}").index == layout.MAX_NODES
    for bad in ("node0", "nodeX", f"node{layout.MAX_NODES + 1}", "worker1", "", "node-1", "node1e2", "node\u00b2"):
        with pytest.raises(ValueError, match="unknown lab node"):
            layout.node_by_name(bad)


def test_addresses_leave_the_hosts_ssh_address_free():
    addresses = {layout.node(i).address for i in range(1, layout.MAX_NODES + 1)}
    assert len(addresses) == layout.MAX_NODES
    assert "10.231.0.254" not in addresses and "10.231.0.255" not in addresses  # the host (--ssh), broadcast


def test_memory_check_names_what_is_needed_and_what_fits():
    each, reserve = layout.NODE_MEMORY_MB, layout.MEMORY_RESERVE_MB
    assert layout.memory_problem(24, 24 * each + reserve) is None
    assert layout.memory_problem(24, None) is None  # unknown: not checked
    problem = layout.memory_problem(24, 10 * each + reserve + 1)
    assert problem == (f"24 nodes need about {24 * each / 1024:.1f} GB ({each} MB each) and "
                       f"{(10 * each + reserve + 1) / 1024:.1f} GB is available ({reserve} MB kept for the rest): "
                       "at most 10 nodes fit here")
    assert "at most 0 nodes fit" in layout.memory_problem(1, reserve / 2)
    assert layout.memory_problem(0, 0) is not None  # the reserve alone does not fit in nothing


def test_available_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048000 kB\n")
    assert layout.available_memory_mb(str(meminfo)) == 2000
    meminfo.write_text("MemTotal: 1 kB\n")
    assert layout.available_memory_mb(str(meminfo)) is None
    meminfo.write_text("MemAvailable: lots kB\n")
    assert layout.available_memory_mb(str(meminfo)) is None
    assert layout.available_memory_mb(str(tmp_path / "absent")) is None


def test_step_bounds_grow_with_the_lab():
    from overlaytui.lab.lab import scaled_timeout

    assert scaled_timeout(90, 1) == scaled_timeout(90, 3) == 90  # the default lab keeps its bounds
    assert scaled_timeout(90, 24) == 90 + 4 * 21
    assert scaled_timeout(60, 9) < scaled_timeout(60, 24) < scaled_timeout(60, 250)


def test_too_many_nodes_is_refused_before_anything_is_created(monkeypatch):
    from overlaytui.lab import lab

    monkeypatch.setattr(lab, "read_state", lambda: None)
    monkeypatch.setattr(lab, "available_memory_mb", lambda: 2048.0)
    monkeypatch.setattr(lab, "down", lambda **_kw: pytest.fail("nothing may be touched"))
    monkeypatch.setattr(lab.engines, "dockerd_pid", lambda _node: None)
    fits = int((2048 - layout.MEMORY_RESERVE_MB) // layout.NODE_MEMORY_MB)
    with pytest.raises(host.LabError, match=f"at most {fits} nodes fit here"):
        lab.up(24, 1, log=lambda _m: None)
    with pytest.raises(host.LabError, match=f"between 1 and {layout.MAX_NODES}"):
        lab.up(layout.MAX_NODES + 1, 1, log=lambda _m: None)


def test_state_dirs_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OVERLAYTUI_LAB_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("OVERLAYTUI_LAB_RUN", str(tmp_path / "r"))
    node = layout.node(1)
    assert node.data_root == tmp_path / "d" / "node1" / "docker"
    assert node.socket == tmp_path / "r" / "node1" / "docker.sock"


def test_down_summary_counts_by_kind():
    removed = ["engine node1", "process 3", "process 4", "netns a", "netns b", "mount /x"]
    assert _summary(removed) == "removed 1 engine, 2 processes, 2 netns, 1 mount"


def test_missing_tools_are_named_with_their_package(monkeypatch):
    monkeypatch.setattr(host.os, "geteuid", lambda: 0)
    monkeypatch.setattr(host.shutil, "which", lambda tool: None if tool in ("dockerd", "iperf3") else "/x")
    problem = host.missing_requirements()
    assert problem == "the lab needs dockerd, iperf3: install with `apt-get install -y docker.io iperf3`"


def test_not_root_is_named(monkeypatch):
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    assert "needs root" in host.missing_requirements()


def test_run_turns_failures_into_one_line():
    with pytest.raises(host.LabError, match=r"`ls /nonexistent-overlaytui` failed: .*No such file"):
        host.run(["ls", "/nonexistent-overlaytui"])
    with pytest.raises(host.LabError, match="did not finish within 0.2 s"):
        host.run(["sleep", "5"], timeout=0.2)


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "overlaytui", *args], capture_output=True, text=True, env=env)


def test_cli_env_needs_no_root():
    proc = _cli("lab", "env", "node2")
    assert proc.returncode == 0
    assert proc.stdout == "export DOCKER_HOST=unix:///run/overlaytui-lab/node2/docker.sock\n"


def test_cli_bad_node_is_one_line_exit_2():
    proc = _cli("lab", "env", "node420")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown lab node" in proc.stderr


def test_cli_without_root_is_one_line_exit_2():
    if sys.platform != "linux":
        pytest.skip("linux only")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    # setpriv drops to an unprivileged uid: the lab must refuse in one line, with exit code 2
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                           "overlaytui", "lab", "up"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "overlaytui lab: the lab needs root (it creates network namespaces, a bridge " \
                                  "and dockerd engines); run it as root"


def test_a_child_that_exited_is_not_alive_while_a_zombie_and_gets_reaped():
    """The lab's engines may be children of this process (a test session's lab): one that exited on SIGTERM
    waits in /proc as a zombie until reaped, and stopping it must not wait for /proc to empty."""
    import os
    import signal
    import time
    from pathlib import Path

    from overlaytui.lab import engines

    child = subprocess.Popen(["sleep", "60"])
    try:
        assert engines._alive(child.pid)
        os.kill(child.pid, signal.SIGTERM)
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not engines._alive(child.pid)
        assert not stat.exists()  # reaped
    finally:
        child.kill()
        child.wait()


def test_a_join_that_goes_on_in_the_background_is_waited_for_not_failed():
    import requests
    from docker.errors import APIError

    from overlaytui.lab.lab import joining_in_background

    def error(status: int, explanation: str) -> APIError:
        response = requests.Response()
        response.status_code = status
        return APIError("swarm/join", response=response, explanation=explanation)
    slow = ("Timeout was reached before node joined. The attempt to join the swarm will continue in the "
            "background. Use the \"docker info\" command to see the current swarm status of your node.")
    assert joining_in_background(error(503, slow))
    assert not joining_in_background(error(503, "This node is already part of a swarm."))
    assert not joining_in_background(error(500, slow))
    assert not joining_in_background(error(503, None))


def test_nodes_that_did_not_become_ready_are_named_with_their_state():
    from overlaytui.lab.lab import not_ready

    def listed(host: str, state: str) -> dict:
        return {"ID": f"id-{host}", "Description": {"Hostname": host}, "Status": {"State": state}}
    nodes = [listed("node1", "ready"), listed("node10", "down"), listed("node9", "unknown"), listed("node2", "ready")]
    assert not_ready(nodes, 5) == "only 2 of 5 swarm nodes became Ready (node9 unknown, node10 down, 1 never joined)"
    assert not_ready([], 3) == "only 0 of 3 swarm nodes became Ready (3 never joined)"
    many = [listed(f"node{i}", "down") for i in range(1, 14)]
    assert not_ready(many, 13).endswith("node10 down, 3 more)")
    assert not_ready([{"ID": "abcdef0123456789"}], 1) == "only 0 of 1 swarm nodes became Ready (abcdef012345 ?)"
