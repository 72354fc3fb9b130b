"""An ssh engine's Docker socket forwarded over the host's one ssh master (sources/ssh.engine_url), against a real
sshd on loopback whose sessions name a stand-in engine's socket (DOCKER_HOST): the socket is forwarded and answers
through the master (one login however many connections); where the node's sshd refuses stream-local forwarding,
or its docker CLI names no unix socket, dial-stdio stays (the ssh URL)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from overlaytui.sources import ssh

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path(SSHD).exists() or not shutil.which("ssh")
                                or not shutil.which("docker"), reason="needs root, sshd, ssh and the docker CLI")


class Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A stand-in engine: answers every request with 200 OK (the ping), counts the connections."""
    daemon_threads = True
    connections = 0


class Ping(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        Engine.connections += 1
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def node(tmp_path, monkeypatch):
    """An sshd on 127.0.0.1 (its own keys and port), sessions with DOCKER_HOST set; yields a function that
    starts it with extra sshd_config lines and returns its ssh URL."""
    short = Path(f"/tmp/otfw-{os.getpid()}")  # unix socket paths are short
    short.mkdir(exist_ok=True)
    engine_sock = short / "engine.sock"
    with contextlib.suppress(FileNotFoundError):
        engine_sock.unlink()
    engine = Engine(str(engine_sock), Ping)
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "user")], check=True)
    (tmp_path / "authorized_keys").write_text((tmp_path / "user.pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    started: dict[int, int] = {}  # port -> sshd pid

    def start(extra: str = "", docker_host: str = f"unix://{engine_sock}") -> str:
        port = _free_port()
        config = tmp_path / f"sshd_config.{port}"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path / 'host'}\nPidFile {tmp_path / f'{port}.pid'}\n"
            f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            f"SetEnv DOCKER_HOST={docker_host}\n{extra}")
        subprocess.run([SSHD, "-f", str(config), "-E", str(tmp_path / f"{port}.log")], check=True)
        host_key = (tmp_path / "host.pub").read_text().split()
        with (tmp_path / "known_hosts").open("a") as known:
            known.write(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        deadline = time.monotonic() + 10
        pid_file = tmp_path / f"{port}.pid"
        while not (pid_file.exists() and pid_file.read_text().strip()):  # sshd creates it, then writes it
            assert time.monotonic() < deadline, "sshd did not start"
            time.sleep(0.05)
        started[port] = int((tmp_path / f"{port}.pid").read_text())
        return f"ssh://root@127.0.0.1:{port}"

    (tmp_path / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {tmp_path / 'user'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {tmp_path / 'known_hosts'}\n  StrictHostKeyChecking yes\n")
    monkeypatch.setenv("OVERLAYTUI_SSH_CONFIG", str(tmp_path / "ssh_config"))
    monkeypatch.delenv("OVERLAYTUI_SSH_FORWARD", raising=False)
    start.logins = lambda url: (tmp_path / f"{url.rsplit(':', 1)[1]}.log").read_text().count("Accepted publickey")
    start.pid = lambda url: started[int(url.rsplit(":", 1)[1])]
    yield start
    wrapper = ssh.prepare() / "ssh"
    for port, pid in started.items():
        subprocess.run([str(wrapper), "-q", "-O", "exit", *ssh.ssh_args(f"ssh://root@127.0.0.1:{port}")],
                       capture_output=True, timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
    engine.shutdown()
    engine.server_close()
    ssh.forget()
    shutil.rmtree(short, ignore_errors=True)


def test_the_socket_is_forwarded_over_one_login(node):
    url = node()
    local = ssh.engine_url(url)
    assert local.startswith("unix://") and ssh.forwarded(url) == local[len("unix://"):]
    before = Engine.connections
    for _ in range(20):  # twenty connections: channels of the one master, no process each
        assert ssh._pings(local[len("unix://"):], 5)
    assert Engine.connections - before == 20
    assert ssh.engine_url(url) == local  # the next client reuses the forward
    assert node.logins(url) == 1


def test_a_master_gone_is_started_again(node, monkeypatch):
    monkeypatch.setattr(ssh, "RECHECK", 0.2)  # a forward that answered is trusted this long without a ping
    url = node()
    local = ssh.engine_url(url)
    subprocess.run([str(ssh.prepare() / "ssh"), "-q", "-O", "exit", *ssh.ssh_args(url)], capture_output=True,
                   timeout=10)
    deadline = time.monotonic() + 5
    while ssh._pings(local[len("unix://"):], 1):
        assert time.monotonic() < deadline, "the forward outlived its master"
        time.sleep(0.1)
    time.sleep(0.3)
    again = ssh.engine_url(url)
    assert again.startswith("unix://") and ssh._pings(again[len("unix://"):], 5)


def test_a_node_whose_sshd_died_is_described_by_ssh(node):
    """The forward dies with the node's sshd (and its sessions): the failed call sets it up again at once, and
    the login that fails leaves ssh's reason for the engine's error."""
    url = node()
    local = ssh.engine_url(url)[len("unix://"):]
    listener = psutil.Process(node.pid(url))
    for process in [*listener.children(recursive=True), listener]:
        process.terminate()
    psutil.wait_procs([listener], timeout=5)
    deadline = time.monotonic() + 5
    while ssh._pings(local, 1):
        assert time.monotonic() < deadline, "the forward outlived the node's sshd"
        time.sleep(0.1)
    ssh.lost(url, 5)
    said = ssh.describe(url, "connection refused (engine not running?)")
    assert said.startswith("ssh connection refused") and "Connection refused" in said, said
    assert ssh.engine_url(url, 5) == url  # no login: dial-stdio, which says the same


@pytest.mark.parametrize("extra, docker_host", [
    ("AllowStreamLocalForwarding no\n", None),  # the node's sshd refuses: dial-stdio stays
    ("", "tcp://127.0.0.1:2375"),  # the node's docker CLI names no unix socket
])
def test_dial_stdio_stays_where_forwarding_cannot_be_used(node, extra, docker_host):
    url = node(extra, **({"docker_host": docker_host} if docker_host else {}))
    assert ssh.engine_url(url) == url and ssh.forwarded(url) is None
    assert ssh.engine_url(url) == url  # said once, remembered


def test_forwarding_is_off_with_the_environment(node, monkeypatch):
    url = node()
    monkeypatch.setenv("OVERLAYTUI_SSH_FORWARD", "0")
    assert ssh.engine_url(url) == url
