"""Container stats: frames -> samples, samples -> ContainerStats with rates, interfaces -> networks. Pure.

CPU % and memory are computed as the docker CLI computes them (cli/command/container/stats_helpers.go);
rates come from two of our own samples (Δbytes / Δ`read`), never from a second API wait.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import ContainerStats, InterfaceStats
from .parse import PayloadError, parse_timestamp

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_IFACE_INDEX = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class StatsSample:
    read_at: float
    cpu_total: int
    system_cpu: int
    precpu_total: int
    presystem_cpu: int
    online_cpus: int
    mem_usage: int | None
    mem_inactive_file: int | None
    mem_limit: int | None
    networks: Mapping[str, tuple[int, int]]  # interface -> (rx_bytes, tx_bytes)


def _object(parent: Mapping, key: str) -> Mapping:
    """parent[key] when it is an object, else an empty one (engines leave sections out, or send null)."""
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_stats_frame(frame: Any) -> StatsSample:
    if not isinstance(frame, Mapping):
        raise PayloadError("stats frame: expected an object")
    read_at = parse_timestamp(frame.get("read"))
    if read_at <= 0:
        raise PayloadError("stats frame: missing 'read' timestamp (container not running?)")
    cpu = _object(frame, "cpu_stats")
    precpu = _object(frame, "precpu_stats")
    usage = _object(cpu, "cpu_usage")
    preusage = _object(precpu, "cpu_usage")
    online = _int(cpu.get("online_cpus")) or len(usage.get("percpu_usage") or ()) or 1
    memory = _object(frame, "memory_stats")
    mem_stats = _object(memory, "stats")
    # cgroup v1 reports total_inactive_file, v2 inactive_file
    inactive = mem_stats.get("total_inactive_file", mem_stats.get("inactive_file"))
    networks = {}
    for iface, counters in (frame.get("networks") or {}).items() if isinstance(frame.get("networks"), Mapping) else ():
        if isinstance(counters, Mapping):
            networks[str(iface)] = (_int(counters.get("rx_bytes")), _int(counters.get("tx_bytes")))
    return StatsSample(
        read_at=read_at,
        cpu_total=_int(usage.get("total_usage")),
        system_cpu=_int(cpu.get("system_cpu_usage")),
        precpu_total=_int(preusage.get("total_usage")),
        presystem_cpu=_int(precpu.get("system_cpu_usage")),
        online_cpus=online,
        mem_usage=_int(memory["usage"]) if "usage" in memory else None,
        mem_inactive_file=_int(inactive) if inactive is not None else None,
        mem_limit=_int(memory["limit"]) if "limit" in memory else None,
        networks=networks,
    )


def cpu_percent(sample: StatsSample) -> float | None:
    """`docker stats` CPU %: Δcontainer / Δsystem × online CPUs × 100, from the frame's own precpu."""
    if sample.presystem_cpu == 0:  # first frame of a stream: no precpu yet
        return None
    cpu_delta = sample.cpu_total - sample.precpu_total
    system_delta = sample.system_cpu - sample.presystem_cpu
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * sample.online_cpus * 100.0


def memory_used(sample: StatsSample) -> int | None:
    """`docker stats` memory: usage minus inactive file cache (when it is smaller than usage)."""
    if sample.mem_usage is None:
        return None
    if sample.mem_inactive_file is not None and sample.mem_inactive_file < sample.mem_usage:
        return sample.mem_usage - sample.mem_inactive_file
    return sample.mem_usage


def rate(previous: int | None, current: int, seconds: float) -> float | None:
    """Bytes per second between two counter readings; None without a previous one, after a counter reset
    (a restarted container starts again from zero), or without elapsed time."""
    if previous is None or seconds <= 0 or current < previous:
        return None
    return (current - previous) / seconds


@dataclass(frozen=True)
class Attachment:
    """A network a container is attached to, as the engine lists it."""

    network_id: str
    network_name: str
    mac: str
    internal: bool = False
    has_gateway: bool = False  # bridge-like networks give the container its default gateway; overlays don't


@dataclass(frozen=True)
class InterfaceNetwork:
    network_id: str | None
    network_name: str | None
    exact: bool


def map_interfaces(
    interfaces: Sequence[str],
    attachments: Sequence[Attachment],
    local_macs: Mapping[str, str] | None,
    gateway: tuple[str, str] | None,
) -> dict[str, InterfaceNetwork]:
    """Which network each container interface belongs to.

    Exact when the interfaces' MAC addresses are known (`local_macs`, read from the container's /sys when its
    engine runs on this host): match the attachment with that MAC; an interface matching none is the
    docker_gwbridge endpoint (`gateway`), which the engine does not list among the container's networks.

    Otherwise inferred from libnetwork's interface order (its endpoint heap, `epHeap.Less`): the gateway
    network last, internal networks after the others, networks with a gateway before those without, then by
    network name; interfaces ethN are handed out in that order.
    """
    result: dict[str, InterfaceNetwork] = {}
    if local_macs:
        by_mac = {a.mac.lower(): a for a in attachments if a.mac}
        for iface in interfaces:
            mac = local_macs.get(iface, "").lower()
            match = by_mac.get(mac)
            if match is not None:
                result[iface] = InterfaceNetwork(match.network_id, match.network_name, True)
            elif mac and gateway is not None:
                result[iface] = InterfaceNetwork(gateway[0], gateway[1], True)
            else:
                result[iface] = InterfaceNetwork(None, None, False)
        return result
    ordered = sorted(attachments, key=lambda a: (a.internal, not a.has_gateway, a.network_name))
    names = sorted(interfaces, key=_iface_order)
    for index, iface in enumerate(names):
        if index < len(ordered):
            result[iface] = InterfaceNetwork(ordered[index].network_id, ordered[index].network_name, False)
        elif index == len(ordered) and gateway is not None:
            result[iface] = InterfaceNetwork(gateway[0], gateway[1], False)
        else:
            result[iface] = InterfaceNetwork(None, None, False)
    return result


def _iface_order(name: str) -> tuple[str, int]:
    match = _IFACE_INDEX.search(name)
    return (name[: match.start()] if match else name, int(match.group(1)) if match else -1)


def read_local_macs(pid: int | None, container_id: str, proc: str = "/proc") -> dict[str, str] | None:
    """Interface -> MAC of a container whose process runs on this host, or None.

    The pid is checked against the container id in its cgroup: a pid from another host (or a reused one)
    must not be read as this container's."""
    if not pid or not container_id:
        return None
    try:
        if container_id not in _read_small(f"{proc}/{pid}/cgroup", 65536):
            return None
        net_dir = f"{proc}/{pid}/root/sys/class/net"
        macs = {}
        for iface in os.listdir(net_dir)[:64]:
            if iface == "lo":
                continue
            mac = _read_small(f"{net_dir}/{iface}/address", 64).strip().lower()
            if _MAC.match(mac):
                macs[iface] = mac
        return macs or None
    except (OSError, UnicodeDecodeError):
        return None


def _read_small(path: str, limit: int) -> str:
    """At most `limit` bytes of a regular file (a FIFO, device or huge file planted in a container's filesystem
    must not block or flood the collector). /sys/class/net/*/address is a sysfs attribute: regular."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        return os.read(fd, limit).decode()
    finally:
        os.close(fd)


def container_stats(
    *,
    container_id: str,
    name: str,
    engine: str,
    node_id: str | None,
    task_id: str | None,
    service_name: str | None,
    previous: StatsSample | None,
    current: StatsSample,
    networks: Mapping[str, InterfaceNetwork],
) -> ContainerStats:
    elapsed = current.read_at - previous.read_at if previous is not None else 0.0
    interfaces = []
    for iface in sorted(current.networks, key=_iface_order):
        rx, tx = current.networks[iface]
        before = previous.networks.get(iface) if previous is not None else None
        mapped = networks.get(iface, InterfaceNetwork(None, None, False))
        interfaces.append(
            InterfaceStats(
                name=iface,
                network_id=mapped.network_id,
                network_name=mapped.network_name,
                exact=mapped.exact,
                rx_bytes=rx,
                tx_bytes=tx,
                rx_rate=rate(before[0] if before else None, rx, elapsed),
                tx_rate=rate(before[1] if before else None, tx, elapsed),
            )
        )
    return ContainerStats(
        container_id=container_id,
        name=name,
        engine=engine,
        node_id=node_id,
        task_id=task_id,
        service_name=service_name,
        read_at=current.read_at,
        cpu_pct=cpu_percent(current),
        mem_bytes=memory_used(current),
        mem_limit=current.mem_limit,
        interfaces=tuple(interfaces),
    )
