"""Names and paths of everything the lab creates.

Every resource gets a name that `lab down` can find again without any state file, so a lab left behind by a
crash (or a half-finished `up`) is still removed completely: network namespaces `otlab-nodeN`, the bridge
`otlab0`, host veths `otlab-nN`, host iptables rules commented `overlaytui-lab`, cgroups `/otlab-nodeN`, and
the two state directories.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PREFIX = "otlab"
BRIDGE = "otlab0"
IPTABLES_COMMENT = "overlaytui-lab"
FAULT_CHAIN = "OTLAB-FAULT"
UNDERLAY_PREFIX = "10.231.0"  # node N has 10.231.0.N/24 on the bridge
UNDERLAY_PREFIXLEN = 24
OVERLAY_POOL = "10.240.0.0/16"  # swarm default address pool: overlays get /24s from here
PROBE_IMAGE = "overlaytui/probe:lab"
MINIMAL_PROBE_IMAGE = "overlaytui/probe:minimal"  # a shell (dash), iputils ping and sleep: nothing else
LAB_LABEL = "overlaytui.lab"
MAX_NODES = 250  # node N is 10.231.0.N (the host is .254 with --ssh); names stay short (`otlab-n250p`: 11 of 15)
NODE_MEMORY_MB = 160  # a node's cost with margin: RSS of its dockerd ~84 MB, containerd ~38 MB, a probe agent's
# shim ~14 MB (bench/probe_scale.py at 3, 9 and 24 nodes; MemAvailable fell by 66-86 MB a node)
MEMORY_RESERVE_MB = 1024  # left to the rest of the machine when a lab is sized against MemAvailable


def data_dir() -> Path:
    """Persistent state: each engine's data root and log."""
    return Path(os.environ.get("OVERLAYTUI_LAB_DATA", "/var/lib/overlaytui-lab"))


def cache_dir() -> Path:
    """The probe image's root filesystem tar, kept across labs (`lab down` leaves it)."""
    return Path(os.environ.get("OVERLAYTUI_LAB_CACHE", "/var/cache/overlaytui-lab"))


def run_dir() -> Path:
    """Runtime state: sockets, pid files, exec roots."""
    return Path(os.environ.get("OVERLAYTUI_LAB_RUN", "/run/overlaytui-lab"))


@dataclass(frozen=True)
class NodeLayout:
    index: int

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def netns(self) -> str:
        return f"{PREFIX}-node{self.index}"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def veth_host(self) -> str:
        return f"{PREFIX}-n{self.index}"

    @property
    def address(self) -> str:
        return f"{UNDERLAY_PREFIX}.{self.index}"

    @property
    def cgroup_parent(self) -> str:
        return f"/{self.netns}"

    @property
    def data_root(self) -> Path:
        return data_dir() / self.name / "docker"

    @property
    def log_path(self) -> Path:
        return data_dir() / self.name / "dockerd.log"

    @property
    def config_path(self) -> Path:
        return data_dir() / self.name / "daemon.json"

    @property
    def exec_root(self) -> Path:
        return run_dir() / self.name / "exec"

    @property
    def socket(self) -> Path:
        return run_dir() / self.name / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return run_dir() / self.name / "dockerd.pid"

    @property
    def hostname_path(self) -> Path:
        """A hostname other than the node's name (`lab fault NODE hostname NAME`), read when its engine starts."""
        return run_dir() / self.name / "hostname"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"


def node(index: int) -> NodeLayout:
    return NodeLayout(index)


def memory_problem(nodes: int, available_mb: float | None) -> str | None:
    """None when `nodes` engines fit in the available memory (MemAvailable less a reserve), else one line saying
    what they need and how many would fit. An unknown amount (no /proc/meminfo) is not checked."""
    if available_mb is None:
        return None
    needed = nodes * NODE_MEMORY_MB
    if needed + MEMORY_RESERVE_MB <= available_mb:
        return None
    fits = max(0, int((available_mb - MEMORY_RESERVE_MB) // NODE_MEMORY_MB))
    return (f"{nodes} nodes need about {needed / 1024:.1f} GB ({NODE_MEMORY_MB} MB each) and "
            f"{available_mb / 1024:.1f} GB is available ({MEMORY_RESERVE_MB} MB kept for the rest): "
            f"at most {fits} nodes fit here")


def available_memory_mb(meminfo: str = "/proc/meminfo") -> float | None:
    """MemAvailable in MB, None where it cannot be read."""
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def node_by_name(name: str) -> NodeLayout:
    """`node2` or `2` -> NodeLayout(2); ValueError with a readable message otherwise."""
    digits = name.removeprefix("node")
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_NODES:
        raise ValueError(f"unknown lab node {name!r}: use node1..node{MAX_NODES}")
    return NodeLayout(int(digits))
