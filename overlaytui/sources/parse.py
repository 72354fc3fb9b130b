"""Engine API payloads -> model values. Pure functions: no I/O, no Textual.

A malformed item raises PayloadError (one line naming what is wrong); `parse_all` skips such items and reports
them, so one odd object never hides the rest of the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from ..model import (
    LocalEndpoint,
    Network,
    NetworkService,
    NetworkView,
    Node,
    Peer,
    Service,
    ServiceEndpoint,
    Task,
    TaskAddress,
    VirtualIP,
)

T = TypeVar("T")
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


class PayloadError(ValueError):
    """An API object lacks a field overlaytui needs, or has one of the wrong type."""


def _dict(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _opt_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _opt_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{what}: missing or invalid {key!r}")
    return value


def _opt_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _labels(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in _opt_dict(value).items()))


def parse_timestamp(value: Any) -> float:
    """RFC 3339 with nanoseconds (the engine's format) -> Unix seconds. 0.0 when absent or unreadable."""
    if not isinstance(value, str):
        return 0.0
    match = _TIMESTAMP.match(value.strip())
    if not match:
        return 0.0
    base, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(base + (zone if zone and zone != "Z" else "+00:00"))
    except ValueError:
        return 0.0
    if moment.year <= 1:  # "0001-01-01T00:00:00Z": Go's zero time
        return 0.0
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def parse_all(items: Any, parser: Callable[[Any], T], what: str) -> tuple[list[T], list[str]]:
    """Parse a list of API objects; malformed ones are skipped and named in the problems."""
    if not isinstance(items, list):
        return [], [f"{what}: expected a list, got {type(items).__name__}"]
    values, problems = [], []
    for item in items:
        try:
            values.append(parser(item))
        except PayloadError as exc:
            problems.append(f"skipped a {what}: {exc}")
    return values, problems


# ------------------------------------------------------------------------------------------------ swarm


def parse_node(raw: Any) -> Node:
    obj = _dict(raw, "node")
    node_id = _str(obj, "ID", "node")
    spec, status = _opt_dict(obj.get("Spec")), _opt_dict(obj.get("Status"))
    description = _opt_dict(obj.get("Description"))
    manager = _opt_dict(obj.get("ManagerStatus"))
    return Node(
        id=node_id,
        hostname=_opt_str(description.get("Hostname")) or node_id[:12],
        role=_opt_str(spec.get("Role")) or "worker",
        state=_opt_str(status.get("State")) or "unknown",
        availability=_opt_str(spec.get("Availability")) or "active",
        address=_opt_str(status.get("Addr")),
        leader=manager.get("Leader") is True,
        reachability=_opt_str(manager.get("Reachability")),
        engine_version=_opt_str(_opt_dict(description.get("Engine")).get("EngineVersion")),
        labels=_labels(spec.get("Labels")),
    )


def _service_mode(spec: Mapping[str, Any]) -> tuple[str, int | None]:
    mode = _opt_dict(spec.get("Mode"))
    if "Global" in mode:
        return "global", None
    if "GlobalJob" in mode:
        return "global-job", None
    if "ReplicatedJob" in mode:
        return "replicated-job", _opt_int(_opt_dict(mode["ReplicatedJob"]).get("TotalCompletions"))
    return "replicated", _opt_int(_opt_dict(mode.get("Replicated")).get("Replicas"))


def parse_service(raw: Any) -> Service:
    obj = _dict(raw, "service")
    service_id = _str(obj, "ID", "service")
    spec = _opt_dict(obj.get("Spec"))
    name = _str(spec, "Name", f"service {service_id[:12]}")
    mode, replicas = _service_mode(spec)
    template = _opt_dict(spec.get("TaskTemplate"))
    networks = _opt_list(template.get("Networks")) or _opt_list(spec.get("Networks"))
    endpoint = _opt_dict(obj.get("Endpoint"))
    endpoint_spec = _opt_dict(endpoint.get("Spec")) or _opt_dict(spec.get("EndpointSpec"))
    vips = tuple(
        VirtualIP(_opt_str(v.get("NetworkID")), _opt_str(v.get("Addr")))
        for v in _opt_list(endpoint.get("VirtualIPs"))
        if isinstance(v, Mapping) and v.get("Addr")
    )
    ports = tuple(
        f"{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol', 'tcp')}"
        for p in _opt_list(endpoint.get("Ports"))
        if isinstance(p, Mapping) and p.get("PublishedPort")
    )
    status = _opt_dict(obj.get("ServiceStatus"))
    image = _opt_str(_opt_dict(template.get("ContainerSpec")).get("Image"))
    return Service(
        id=service_id,
        name=name,
        mode=mode,
        replicas=replicas,
        endpoint_mode=_opt_str(endpoint_spec.get("Mode")) or "vip",
        vips=vips,
        network_ids=tuple(_opt_str(n.get("Target")) for n in networks if isinstance(n, Mapping)),
        image=image.split("@sha256:")[0],
        running_tasks=_opt_int(status.get("RunningTasks")),
        desired_tasks=_opt_int(status.get("DesiredTasks")),
        update_state=_opt_str(_opt_dict(obj.get("UpdateStatus")).get("State")),
        published_ports=ports,
        labels=_labels(spec.get("Labels")),
    )


def parse_task(raw: Any, service_names: Mapping[str, str]) -> Task:
    obj = _dict(raw, "task")
    task_id = _str(obj, "ID", "task")
    service_id = _str(obj, "ServiceID", f"task {task_id[:12]}")
    status = _opt_dict(obj.get("Status"))
    container = _opt_dict(status.get("ContainerStatus"))
    addresses = []
    for attachment in _opt_list(obj.get("NetworksAttachments")):
        if not isinstance(attachment, Mapping):
            continue
        network = _opt_dict(attachment.get("Network"))
        for address in _opt_list(attachment.get("Addresses")):
            addresses.append(
                TaskAddress(_opt_str(network.get("ID")), _opt_str(_opt_dict(network.get("Spec")).get("Name")),
                            _opt_str(address))
            )
    slot = _opt_int(obj.get("Slot"))
    return Task(
        id=task_id,
        service_id=service_id,
        service_name=service_names.get(service_id, service_id[:12]),
        slot=slot if slot else None,  # global tasks have no slot (absent or 0)
        node_id=_opt_str(obj.get("NodeID")) or None,
        desired_state=_opt_str(obj.get("DesiredState")),
        state=_opt_str(status.get("State")) or "unknown",
        message=_opt_str(status.get("Message")),
        error=_opt_str(status.get("Err")),
        timestamp=parse_timestamp(status.get("Timestamp")),
        container_id=_opt_str(container.get("ContainerID")) or None,
        pid=_opt_int(container.get("PID")) or None,
        exit_code=_opt_int(container.get("ExitCode")),
        addresses=tuple(addresses),
    )


# --------------------------------------------------------------------------------------------- networks


def parse_network(raw: Any, engine: str | None = None) -> Network:
    """A network from the list call or an inspect (views are added separately)."""
    obj = _dict(raw, "network")
    network_id = _str(obj, "Id", "network")
    name = _str(obj, "Name", f"network {network_id[:12]}")
    options = _opt_dict(obj.get("Options"))
    ipam = [c for c in _opt_list(_opt_dict(obj.get("IPAM")).get("Config")) if isinstance(c, Mapping)]
    ipv4 = next((c for c in ipam if ":" not in _opt_str(c.get("Subnet"))), ipam[0] if ipam else {})
    vni = _opt_str(options.get("com.docker.network.driver.overlay.vxlanid_list")).split(",")[0]
    scope = _opt_str(obj.get("Scope")) or "local"
    # Engine API >= 1.52: Status.IPAM.Subnets{CIDR: {IPsInUse, DynamicIPsAvailable}} (the engine's own count)
    subnets = _opt_dict(_opt_dict(_opt_dict(obj.get("Status")).get("IPAM")).get("Subnets"))
    status = _opt_dict(subnets.get(_opt_str(ipv4.get("Subnet"))))
    in_use, available = _opt_int(status.get("IPsInUse")), _opt_int(status.get("DynamicIPsAvailable"))
    return Network(
        id=network_id,
        name=name,
        driver=_opt_str(obj.get("Driver")) or "unknown",
        scope=scope,
        subnet=_opt_str(ipv4.get("Subnet")) or None,
        gateway=_opt_str(ipv4.get("Gateway")) or None,
        vni=int(vni) if vni.isdigit() else None,
        configured_mtu=_opt_int(options.get("com.docker.network.driver.mtu")),
        encrypted="encrypted" in options,
        attachable=obj.get("Attachable") is True,
        ingress=obj.get("Ingress") is True,
        internal=obj.get("Internal") is True,
        labels=_labels(obj.get("Labels")),
        engine=engine if scope == "local" else None,
        ipam_status=(in_use, available) if in_use is not None and available is not None else None,
    )


def parse_network_view(raw: Any, node_id: str | None, engine: str) -> NetworkView:
    """One node's verbose inspect of a network: its peers, its local endpoints, the services on it."""
    obj = _dict(raw, "network inspect")
    peers = tuple(
        Peer(_opt_str(p.get("Name")), _opt_str(p.get("IP")))
        for p in _opt_list(obj.get("Peers"))
        if isinstance(p, Mapping)
    )
    endpoints = tuple(
        LocalEndpoint(_opt_str(e.get("Name")), str(cid), _opt_str(e.get("IPv4Address")), _opt_str(e.get("MacAddress")))
        for cid, e in _opt_dict(obj.get("Containers")).items()
        if isinstance(e, Mapping)
    )
    services = []
    for svc_name, svc in _opt_dict(obj.get("Services")).items():
        if not isinstance(svc, Mapping) or not svc_name:  # the ingress sandbox shows up as service ""
            continue
        vip = _opt_str(svc.get("VIP"))
        tasks = tuple(
            ServiceEndpoint(_opt_str(t.get("Name")), _opt_str(t.get("EndpointIP")),
                            _opt_str(_opt_dict(t.get("Info")).get("Host IP")))
            for t in _opt_list(svc.get("Tasks"))
            if isinstance(t, Mapping)
        )
        services.append(NetworkService(str(svc_name), vip if vip and vip != "<nil>" else None,
                                       tuple(sorted(tasks, key=lambda t: t.task_name))))
    return NetworkView(node_id, engine, tuple(sorted(peers, key=lambda p: p.address)),
                       tuple(sorted(endpoints, key=lambda e: e.name)), tuple(sorted(services, key=lambda s: s.name)))


# ------------------------------------------------------------------------------------------------- info


def parse_identity(raw: Any) -> dict[str, Any]:
    """/info -> node_id, hostname, role (manager/worker/standalone), swarm_id, version, address."""
    obj = _dict(raw, "info")
    swarm = _opt_dict(obj.get("Swarm"))
    active = _opt_str(swarm.get("LocalNodeState")) == "active"
    cluster = _opt_dict(swarm.get("Cluster"))
    return {
        "node_id": (_opt_str(swarm.get("NodeID")) or None) if active else None,
        "hostname": _opt_str(obj.get("Name")) or None,
        "role": ("manager" if swarm.get("ControlAvailable") is True else "worker") if active else "standalone",
        "swarm_id": _opt_str(cluster.get("ID")) or None,
        "version": _opt_str(obj.get("ServerVersion")),
        "address": _opt_str(swarm.get("NodeAddr")),
        "swarm_state": _opt_str(swarm.get("LocalNodeState")) or "inactive",
        # Engine API >= 1.49 (Docker 28): {"Driver": "iptables" | "nftables", "Info": [...]}; absent before
        "firewall": _opt_str(_opt_dict(obj.get("FirewallBackend")).get("Driver")),
    }
