"""ssh:// engines (sources/ssh.py): the node endpoints --ssh-nodes derives, the reasons read from ssh's own words,
the wrapper that multiplexes and keeps ssh off the terminal; the [nodes] table of the config."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overlaytui.config import Config, load_config, save_config
from overlaytui.sources import ssh


def test_node_endpoints_keep_the_managers_user_and_port():
    assert ssh.node_url("ssh://admin@mgr1", "10.0.0.7") == "ssh://admin@10.0.0.7"
    assert ssh.node_url("ssh://admin@mgr1:2222", "10.0.0.7") == "ssh://admin@10.0.0.7:2222"
    assert ssh.node_url("ssh://mgr1", "10.0.0.7") == "ssh://10.0.0.7"
    assert ssh.host_of("ssh://admin@Node-7.example:2222") == "Node-7.example"
    assert ssh.host_of("ssh://10.0.0.7") == "10.0.0.7"


@pytest.mark.parametrize(("said", "reason"), [
    ("root@10.0.0.7: Permission denied (publickey).", "ssh authentication failed"),
    ("Host key verification failed.", "ssh host key not trusted"),
    ("bash: line 1: docker: command not found", "no docker CLI on the node"),
    ("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
     "permission denied on the node's Docker socket"),
    ("ssh: connect to host 10.0.0.7 port 22: Connection refused", "ssh connection refused"),
    ("ssh: connect to host 10.0.0.7 port 22: No route to host", "no route to the node's address"),
])
def test_the_reason_comes_from_what_ssh_said(tmp_path, monkeypatch, said, reason):
    monkeypatch.setattr(ssh, "_dir", tmp_path)
    (tmp_path / "10.0.0.7.log").write_text(f"earlier noise\n{said}\n\n")
    described = ssh.describe("ssh://root@10.0.0.7", "Error while fetching server API version: broken pipe")
    assert described.startswith(reason) and said in described


def test_without_words_from_ssh_the_engine_error_stands(tmp_path, monkeypatch):
    monkeypatch.setattr(ssh, "_dir", tmp_path)
    assert ssh.describe("ssh://root@10.0.0.9", "timed out") == "timed out"
    (tmp_path / "10.0.0.9.log").write_text("kex_exchange_identification: read: Connection reset by peer\n")
    assert ssh.describe("ssh://root@10.0.0.9", "timed out") == (
        "timed out (ssh: kex_exchange_identification: read: Connection reset by peer)")


def wrapper_with_fake_ssh(tmp_path, directory, fake_body: str):
    """The wrapper made for `directory`, running a stand-in ssh (a shell script body)."""
    fake = tmp_path / "fake-ssh"
    fake.write_text("#!/bin/sh\n" + fake_body)
    fake.chmod(0o755)
    wrapper = directory / "ssh"
    wrapper.write_text(ssh.wrapper_script(directory, str(fake)))
    wrapper.chmod(0o755)
    return wrapper


def test_the_wrapper_multiplexes_never_prompts_and_logs_per_host(tmp_path, monkeypatch):
    """The wrapper, run with a stand-in ssh that prints its arguments and complains on stderr."""
    wrapper = wrapper_with_fake_ssh(tmp_path, tmp_path,
                                    "echo \"$@\"\necho 'Permission denied (publickey).' >&2\nexit 255\n")
    env = dict(os.environ, OVERLAYTUI_SSH_CONFIG="/etc/lab/config")
    result = subprocess.run([str(wrapper), "-l", "admin", "-p", "2222", "--", "node7", "docker system dial-stdio"],
                            capture_output=True, text=True, env=env, timeout=10)
    args = result.stdout.split()
    assert result.returncode == 255 and result.stderr == ""  # nothing on the terminal
    assert args[:2] == ["-F", "/etc/lab/config"]
    assert "ControlMaster=auto" in args and "BatchMode=yes" in args and f"ControlPath={tmp_path}/cm-%C" in args
    assert args[-9:] == ["-l", "admin", "-p", "2222", "--", "node7", "docker", "system", "dial-stdio"]
    assert (tmp_path / "node7.log").read_text().strip() == "Permission denied (publickey)."


def test_the_config_keeps_ssh_nodes_and_the_nodes_table(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('theme = "x"\nssh_nodes = true\n[nodes]\nnode7 = "ssh://admin@n7.example:2222"\n'
                    'node8 = "ftp://nope"\n"[b]odd" = "tcp://10.0.0.9:2376"\n')
    config, problem = load_config(path)
    assert config.ssh_nodes and dict(config.nodes) == {"node7": "ssh://admin@n7.example:2222",
                                                       "[b]odd": "tcp://10.0.0.9:2376"}
    assert problem and "[nodes] node8: not an engine URL" in problem
    save_config(config.with_theme("y"), path)  # a theme change must not lose them
    again, _ = load_config(path)
    assert again == Config(theme="y", loss=config.loss, ssh_nodes=True, nodes=config.nodes)


def test_closing_an_ssh_socket_whose_ssh_is_gone_is_not_an_error():
    """docker/docker-py#3218: after `docker exec` over ssh, closing wrote to a dead ssh and raised."""
    from docker.transport.sshconn import SSHSocket

    ssh.prepare()
    sock = SSHSocket("root@10.0.0.7")
    sock.proc = subprocess.Popen(["true"], stdin=subprocess.PIPE)
    sock.proc.wait()
    sock.close()  # the write hits a closed pipe: tolerated, the process is done
    assert sock.proc.returncode == 0


def _node(i: int, address: str | None = None):
    from overlaytui.model import Node

    return Node(id=f"id{i}", hostname=f"node{i}", role="worker", state="ready", availability="active",
                address=address if address is not None else f"10.0.0.{i}")


def test_ssh_nodes_follows_the_swarm(monkeypatch):
    """--ssh-nodes: an engine per node no given engine speaks for, the manager's user and port, [nodes]
    overrides, natural order; nodes that leave lose theirs; each engine gets one events thread and is polled at
    once (not at the next poll)."""
    from overlaytui.sources.assemble import SwarmPoll
    from overlaytui.sources.endpoints import EndpointSpec
    from overlaytui.sources.swarm import DockerSwarmSource

    watched, polled = [], []
    monkeypatch.setattr(DockerSwarmSource, "_watch_events", lambda self, state: watched.append(state.spec.url))
    monkeypatch.setattr(DockerSwarmSource, "_submit", lambda self, state, ask_swarm: polled.append(state.spec.url))
    source = DockerSwarmSource([EndpointSpec("ssh://admin@mgr:2222", "--host")], ssh_nodes=True,
                               node_endpoints={"node10": "ssh://admin@bastion-10"})
    manager = source._engines[0]
    manager.identity = {"node_id": "id1", "role": "manager"}
    source._loop, source._started = object(), True  # as after start(): new engines get their events thread
    source._swarm = SwarmPoll("s", tuple(_node(i) for i in (10, 2, 1, 3)) + (_node(4, ""),), (), (), ())
    source._follow_nodes()
    assert [(s.spec.url, s.derived_for) for s in source._engines] == [
        ("ssh://admin@mgr:2222", None), ("ssh://admin@10.0.0.2:2222", "id2"), ("ssh://admin@10.0.0.3:2222", "id3"),
        ("ssh://admin@bastion-10", "id10")]  # node4 has no address: nothing to reach
    assert polled == [s.spec.url for s in source._engines[1:]]
    source._follow_nodes()  # nothing new: nothing added, no second thread, no second poll
    assert polled == [s.spec.url for s in source._engines[1:]]
    source._start_events(source._engines[1])
    time.sleep(0.1)
    assert sorted(watched) == sorted(s.spec.url for s in source._engines[1:])
    source._swarm = SwarmPoll("s", (_node(1), _node(3), _node(10)), (), (), ())  # node2 left
    gone = source._engines[1]
    source._follow_nodes()
    assert gone.removed and [s.derived_for for s in source._engines] == [None, "id3", "id10"]


ROOT = Path(__file__).parents[2]


def test_the_wrapper_quotes_its_directory_never_expanding_what_it_holds(tmp_path):
    """A directory under an XDG_RUNTIME_DIR that holds `$(...)`, backquotes, quotes or a `%`: a path, never a
    command (the wrapper's paths are single-quoted)."""
    marker = tmp_path / "expanded"
    odd = tmp_path / "run $(touch expanded) `touch expanded` 'q\" 50%"
    odd.mkdir()
    wrapper = wrapper_with_fake_ssh(tmp_path, odd, "printf '%s\\n' \"$@\"\necho complaint >&2\nexit 3\n")
    result = subprocess.run([str(wrapper), "--", "node\n$(x)", "docker"], capture_output=True, text=True,
                            timeout=10, env={**os.environ, "OVERLAYTUI_SSH_CONFIG": ""}, cwd=tmp_path)
    assert result.returncode == 3 and not marker.exists()
    assert f"ControlPath={odd}".replace("%", "%%") + "/cm-%C" in result.stdout.splitlines()
    assert (odd / f"{ssh.log_name('node' + chr(10) + '$(x)')}.log").read_text() == "complaint\n"
    assert ssh.log_name("node7") == "node7" and ssh.log_name("a:b") != ssh.log_name("a_b")


def test_prepare_under_a_hostile_xdg_runtime_dir_and_removal_on_every_exit(tmp_path, monkeypatch):
    marker = tmp_path / "expanded"
    runtime = tmp_path / "rt $(touch expanded)"
    runtime.mkdir(mode=0o700)
    stale = runtime / f"{ssh.PREFIX}999999999-abc"  # a killed run's (no such pid)
    stale.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setattr(ssh, "_dir", None)
    monkeypatch.setenv("PATH", os.environ["PATH"])
    made = ssh.prepare()
    try:
        assert made is not None and made.parent == runtime and not stale.exists()
        script = (made / "ssh").read_text()
        assert f"dir='{made}'" in script and not marker.exists()
    finally:
        ssh.remove()
    assert not made.exists()
    # the forced exit (os._exit, which skips atexit) removes it too: a child process that takes that path
    code = ("import os, threading, time, sys\n"
            "from overlaytui.sources import ssh\n"
            "from overlaytui.cli import exit_now\n"
            "d = ssh.prepare(); print(d, flush=True)\n"
            "threading.Thread(target=time.sleep, args=(60,)).start()\n"  # a stuck thread: exit_now's os._exit
            "exit_now(0)\n")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=tmp_path,
                           env={**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT)})
    assert child.returncode == 0, child.stderr
    assert not Path(child.stdout.strip()).exists()


def test_an_endpoint_that_cannot_be_used_says_so_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(ssh, "_dir", tmp_path)
    (tmp_path / "fe80.log").write_text("ssh: connect to host fe80 port 22: Connection refused\n")  # another host's
    url = ssh.node_url("ssh://admin@mgr1:2222", "fe80::1")
    said = ssh.describe(url, "Error while fetching server API version")
    assert said.startswith(f"cannot use the ssh endpoint {url}") and "IPv6" in said and "refused" not in said
    assert ssh.describe("ssh://admin@10.0.0.7:99999", "x").startswith("cannot use the ssh endpoint")
    assert ssh.unusable("ssh://admin@10.0.0.7:2222") == ""
