"""Thin, bounded wrappers around the host tools the lab drives (ip, iptables, nsenter)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from .layout import NodeLayout

APT_PACKAGES = "docker.io iperf3 busybox-static iputils-ping iproute2 iptables util-linux"

# tool -> Debian package that provides it
REQUIRED_TOOLS = {
    "ip": "iproute2",
    "iptables": "iptables",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "dockerd": "docker.io",
    "containerd": "docker.io",
}
IMAGE_TOOLS = {"busybox": "busybox-static", "ping": "iputils-ping", "iperf3": "iperf3"}


class LabError(Exception):
    """A lab operation failed; the message is one readable line."""


class LabUnavailable(LabError):
    """The lab cannot run on this machine at all (not root, tools missing): exit code 2."""


def missing_requirements(with_image_tools: bool = True) -> str | None:
    """None when the lab can run here, else one line naming what is missing and how to install it."""
    if os.geteuid() != 0:
        return "the lab needs root (it creates network namespaces, a bridge and dockerd engines); run it as root"
    tools = dict(REQUIRED_TOOLS)
    if with_image_tools:
        tools.update(IMAGE_TOOLS)
    missing = sorted(tool for tool in tools if shutil.which(tool) is None)
    if missing:
        packages = " ".join(sorted({tools[t] for t in missing}))
        return f"the lab needs {', '.join(missing)}: install with `apt-get install -y {packages}`"
    return None


def run(cmd: Sequence[str], *, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command with a deadline; on failure raise LabError carrying the command's own error line."""
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(cmd)}` did not finish within {timeout:g} s") from exc
    except FileNotFoundError as exc:
        raise LabUnavailable(f"`{cmd[0]}` is not installed: `apt-get install -y {APT_PACKAGES}`") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"`{' '.join(cmd)}` failed: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc


def in_netns(node: NodeLayout, cmd: Sequence[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a host tool inside a node's network namespace.

    nsenter, not `ip netns exec`: the latter remounts /sys, which hides the cgroup mounts from dockerd.
    """
    return run(["nsenter", f"--net={node.netns_path}", *cmd], **kwargs)


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def netns_list() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def netns_inode(path: os.PathLike[str] | str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
