"""`overlaytui lab up --ssh`: an sshd in every node, so the lab can be reached the way real clusters are — one
ssh endpoint per node, the node's engine behind it (`ssh://root@10.231.0.N`, as the docker CLI does it:
`docker system dial-stdio` on the node, whose sshd sets DOCKER_HOST to the node's socket).

The host gets 10.231.0.254 on the lab bridge (to reach the nodes); a key pair, the nodes' host keys, a
known_hosts and an ssh config are generated under the lab's run directory (`lab env --ssh` prints how to use
them). Every sshd runs in its node's network namespace and listens on the node's address only; `lab down`
removes them with everything else in the namespaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import psutil

from .host import LabError, run
from .layout import BRIDGE, UNDERLAY_PREFIX, UNDERLAY_PREFIXLEN, NodeLayout, run_dir

HOST_ADDRESS = f"{UNDERLAY_PREFIX}.254"
SSHD = "/usr/sbin/sshd"


def ssh_dir() -> Path:
    return run_dir() / "ssh"


def client_config() -> Path:
    """The ssh config for the lab: root, the lab's key, the lab's known_hosts (OVERLAYTUI_SSH_CONFIG, or ssh -F)."""
    return ssh_dir() / "config"


def node_url(layout: NodeLayout) -> str:
    return f"ssh://root@{layout.address}"


def missing() -> str:
    for binary in (SSHD, shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen", shutil.which("ssh") or "/usr/bin/ssh"):
        if not Path(binary).exists():
            return f"{binary} is missing: apt-get install -y openssh-server openssh-client"
    return ""


def enable(layouts: list[NodeLayout]) -> None:
    """Keys, configs and an sshd per node (idempotent: a running sshd is left alone)."""
    problem = missing()
    if problem:
        raise LabError(problem)
    directory = ssh_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    addresses = run(["ip", "-o", "addr", "show", "dev", BRIDGE]).stdout
    if f" {HOST_ADDRESS}/" not in addresses:
        run(["ip", "addr", "add", f"{HOST_ADDRESS}/{UNDERLAY_PREFIXLEN}", "dev", BRIDGE])
    key = directory / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "overlaytui-lab", "-f", str(key)])
    (directory / "authorized_keys").write_text((directory / "id_ed25519.pub").read_text())
    known = []
    for layout in layouts:
        host_key = _node_dir(layout) / "ssh_host_ed25519_key"
        if not host_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
        known.append(f"{layout.address} {Path(f'{host_key}.pub').read_text().split(' ')[0]} "
                     f"{Path(f'{host_key}.pub').read_text().split(' ')[1]}")
        _write_sshd_config(layout, host_key)
    (directory / "known_hosts").write_text("\n".join(known) + "\n")
    client_config().write_text(
        f"Host {UNDERLAY_PREFIX}.*\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {directory / 'known_hosts'}\n  StrictHostKeyChecking yes\n")
    for layout in layouts:
        start(layout)


def _node_dir(layout: NodeLayout) -> Path:
    path = run_dir() / layout.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_sshd_config(layout: NodeLayout, host_key: Path) -> None:
    (_node_dir(layout) / "sshd_config").write_text(
        f"Port 22\nListenAddress {layout.address}\nHostKey {host_key}\nPidFile {_pidfile(layout)}\n"
        f"AuthorizedKeysFile {ssh_dir() / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\n"
        f"SetEnv DOCKER_HOST={layout.docker_host}\n")


def _pidfile(layout: NodeLayout) -> Path:
    return _node_dir(layout) / "sshd.pid"


def pid(layout: NodeLayout) -> int | None:
    try:
        value = int(_pidfile(layout).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(value, 0)
    except OSError:
        return None
    return value


def answers(layout: NodeLayout, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((layout.address, 22), timeout=timeout) as conn:
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def start(layout: NodeLayout, timeout: float = 15) -> None:
    if pid(layout) is not None and answers(layout):
        return
    config = _node_dir(layout) / "sshd_config"
    if not config.exists():
        raise LabError(f"{layout.name}: no sshd config: `overlaytui lab up --ssh` first")
    run(["nsenter", f"--net={layout.netns_path}", SSHD, "-f", str(config), "-E",
         str(_node_dir(layout) / "sshd.log")])
    deadline = time.monotonic() + timeout
    while not answers(layout):
        if time.monotonic() > deadline:
            raise LabError(f"{layout.name}: sshd does not answer on {layout.address}:22 after {timeout:g} s")
        time.sleep(0.1)


def stop(layout: NodeLayout) -> None:
    """Stop the node's sshd and the sessions it serves (their connections drop: what a dead sshd looks like)."""
    value = pid(layout)
    if value is None:
        return
    try:
        listener = psutil.Process(value)
        processes = [*listener.children(recursive=True), listener]  # its sessions first, then itself
    except psutil.Error:
        return
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGTERM)
    psutil.wait_procs(processes, timeout=5)


def enabled() -> bool:
    return client_config().exists()
