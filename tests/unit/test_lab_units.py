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
    for bad in ("node0", "nodeX", "node10", "worker1", ""):
        with pytest.raises(ValueError, match="unknown lab node"):
            layout.node_by_name(bad)


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
    proc = _cli("lab", "env", "node42")
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
