"""Starting, stopping and finding the lab's dockerd engines (and everything they spawn)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import docker

from ..sources.errors import ENGINE_ERRORS
from .host import LabError, in_netns, netns_inode, run
from .layout import LAB_LABEL, NodeLayout, data_dir, run_dir

ENGINE_TIMEOUT = 10


def client(node: NodeLayout, timeout: float = ENGINE_TIMEOUT) -> docker.APIClient:
    return docker.APIClient(base_url=node.docker_host, timeout=timeout, version="auto")


def engine_answers(node: NodeLayout, timeout: float = 2) -> bool:
    if not node.socket.exists():
        return False
    try:
        with docker.APIClient(base_url=node.docker_host, timeout=timeout, version="auto") as api:
            return api.ping()
    except ENGINE_ERRORS:
        return False


def dockerd_pid(node: NodeLayout) -> int | None:
    """The running dockerd of this node, from its pid file (checked against /proc, pids get reused)."""
    try:
        pid = int(node.pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"dockerd" in cmdline and str(node.exec_root).encode() in cmdline else None


def start_engine(node: NodeLayout) -> subprocess.Popen[bytes]:
    """Start the node's dockerd in its network namespace with its own hostname; return without waiting."""
    for path in (node.data_root, node.exec_root, node.socket.parent):
        path.mkdir(parents=True, exist_ok=True)
    node.config_path.write_text(json.dumps({"labels": [f"{LAB_LABEL}={node.name}"]}) + "\n")
    dockerd = [
        "dockerd",
        f"--data-root={node.data_root}",
        f"--exec-root={node.exec_root}",
        f"--pidfile={node.pidfile}",
        f"--host={node.docker_host}",
        f"--config-file={node.config_path}",
        f"--cgroup-parent={node.cgroup_parent}",
        "--log-level=warn",
    ]
    # nsenter, not `ip netns exec` (which remounts /sys and hides the cgroup mounts); unshare --uts gives
    # the engine its own hostname, which swarm reports as the node's hostname. It is written to the UTS
    # namespace's /proc/sys/kernel/hostname, from the environment: any bytes a kernel allows (the `hostname`
    # command refuses markup or escapes, which is what `lab fault NODE hostname` is for), never through a shell.
    script = 'printf %s "$OT_HOSTNAME" > /proc/sys/kernel/hostname && exec "$@"'
    cmd = ["nsenter", f"--net={node.netns_path}", "unshare", "--uts", "--", "sh", "-c", script, "sh", *dockerd]
    hostname = node.hostname_path.read_text() if node.hostname_path.exists() else node.name
    log = open(node.log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "OT_HOSTNAME": hostname})
    finally:
        log.close()


def wait_for_engine(node: NodeLayout, proc: subprocess.Popen[bytes] | None, deadline: float) -> None:
    while time.monotonic() < deadline:
        if engine_answers(node, timeout=1):
            return
        if proc is not None and proc.poll() is not None:
            raise LabError(f"{node.name}: dockerd exited ({proc.returncode}); last log line: {_last_log_line(node)}")
        time.sleep(0.1)
    raise LabError(f"{node.name}: dockerd did not answer within the deadline; last log line: {_last_log_line(node)}")


def _last_log_line(node: NodeLayout) -> str:
    try:
        lines = node.log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1][-300:] if lines else "(empty log)"


def stop_engine(node: NodeLayout, timeout: float = 20) -> bool:
    """SIGTERM the node's dockerd and wait for it to exit (SIGKILL after the timeout). True if one ran."""
    pid = dockerd_pid(node)
    if pid is None:
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        _signal(pid, signal.SIGKILL)
    _reap(pid)
    _release_overlay_sandboxes(node)
    return True


VXLAN_PORT_HEX = f"{4789:04X}"


def _release_overlay_sandboxes(node: NodeLayout, timeout: float = 10) -> None:
    """A stopped dockerd leaves its overlay sandboxes mounted (for live-restore), and their VXLAN devices keep
    the VNI's UDP socket in the node's namespace. An engine started again within seconds unmounts them and
    creates the VXLAN device at once, while the kernel still tears the old one down: "error creating vxlan
    interface: file exists", and the node runs none of that overlay's tasks for minutes (seen in CI). So a
    stop unmounts them itself and waits, bounded, until the kernel has let the socket go."""
    prefix = f"{node.exec_root}/netns/"
    with open("/proc/self/mountinfo") as fh:
        mounts = [line.split()[4] for line in fh if line.split()[4].startswith(prefix)]
    for mountpoint in mounts:
        run(["umount", "-l", mountpoint], check=False)
    deadline = time.monotonic() + timeout
    while mounts and vxlan_sockets(node) and time.monotonic() < deadline:
        time.sleep(0.05)


def vxlan_sockets(node: NodeLayout) -> list[str]:
    """The node's UDP sockets on the VXLAN port (its /proc/net/udp lines): one while any overlay device lives."""
    table = in_netns(node, ["cat", "/proc/net/udp"], check=False).stdout
    return [line for line in table.splitlines()[1:]
            if len(line.split()) > 1 and line.split()[1].endswith(f":{VXLAN_PORT_HEX}")]


def _alive(pid: int) -> bool:
    """The process we signalled runs. One that exited is not alive, also while it waits as a zombie to be
    reaped (reaped here if it is our child): a dockerd started by this process (the test session's lab) stays in
    /proc until reaped, and a loop watching /proc for it to go would wait out its whole timeout (20 s per engine
    stop, as the suite once did)."""
    _reap(pid)
    return _running(pid)


def _running(pid: int) -> bool:
    """In /proc and not a zombie (no side effect: any process may be asked)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def lab_processes(netns_paths: list[Path]) -> list[int]:
    """Pids of everything the lab runs: processes in a lab netns, processes whose command line names a lab
    directory (dockerd, its containerd and shims), and processes in a lab cgroup (the containers)."""
    inodes = {ino for ino in (netns_inode(p) for p in netns_paths) if ino is not None}
    markers = (str(run_dir()).encode(), str(data_dir()).encode())
    cgroup_marker = b":/otlab-node"  # e.g. "4:memory:/otlab-node1/<container id>"
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        if not _running(pid):
            continue  # a zombie holds nothing but its pid (and where PID 1 does not reap, it stays one)
        try:
            if netns_inode(f"/proc/{pid}/ns/net") in inodes:
                found.append(pid)
                continue
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if any(marker in cmdline for marker in markers):
                found.append(pid)
                continue
            cgroup = Path(f"/proc/{pid}/cgroup").read_bytes()
            if cgroup_marker in cgroup:
                found.append(pid)
        except OSError:
            continue
    return found


def kill_all(pids: list[int], grace: float = 3) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL whatever is left."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
            _reap(pid)
