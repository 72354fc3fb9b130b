"""Join what the engines said into one ClusterSnapshot. Pure: no I/O except reading container MACs from /proc
(through the `read_macs` function passed in)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..model import ClusterSnapshot, ContainerStats, Engine, Network, NetworkView, Node, Service, Task, natural_key
from .parse import (
    PayloadError,
    parse_all,
    parse_network,
    parse_network_view,
    parse_node,
    parse_service,
    parse_task,
)
from .stats import Attachment, InterfaceNetwork, StatsSample, container_stats, map_interfaces

TASK_LABEL = "com.docker.swarm.task.id"
SERVICE_LABEL = "com.docker.swarm.service.name"
GATEWAY_NETWORK = "docker_gwbridge"


@dataclass(frozen=True)
class SwarmPoll:
    """What a manager said: the cluster-wide objects."""

    swarm_id: str | None
    nodes: tuple[Node, ...]
    services: tuple[Service, ...]
    tasks: tuple[Task, ...]
    networks: tuple[Network, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnginePoll:
    """What one engine said about itself."""

    endpoint: str
    identity: Mapping[str, Any]
    containers: tuple[Mapping[str, Any], ...]  # running containers, as the list call returns them
    networks: tuple[Network, ...]  # every network this engine lists
    views: Mapping[str, NetworkView] = field(default_factory=dict)  # network id -> this node's view
    pids: Mapping[str, int] = field(default_factory=dict)  # container id -> pid, where known
    problems: tuple[str, ...] = ()


def swarm_poll_from_payloads(identity: Mapping[str, Any], nodes: Any, services: Any, tasks: Any,
                             networks: Any) -> SwarmPoll:
    """A manager's answers (nodes, services, tasks, swarm networks) joined into a SwarmPoll."""
    node_values, p1 = parse_all(nodes, parse_node, "node")
    service_values, p2 = parse_all(services, parse_service, "service")
    names = {s.id: s.name for s in service_values}
    task_values, p3 = parse_all(tasks, lambda raw: parse_task(raw, names), "task")
    network_values, p4 = parse_all(networks, parse_network, "network")
    return SwarmPoll(identity.get("swarm_id"), tuple(node_values), tuple(service_values), tuple(task_values),
                     tuple(network_values), tuple(p1 + p2 + p3 + p4))


def active_swarm_networks(containers: Any, networks: Sequence[Network]) -> list[Network]:
    """The swarm networks active on an engine: a local container is attached (or it is the ingress). Only
    these have a verbose view there; asking the others would only get 404s."""
    attached = {
        str(net.get("NetworkID"))
        for c in containers if isinstance(c, Mapping)
        for net in ((c.get("NetworkSettings") or {}).get("Networks") or {}).values() if isinstance(net, Mapping)
    }
    return [n for n in networks if n.scope == "swarm" and (n.id in attached or n.ingress)]


def engine_poll_from_payloads(endpoint: str, identity: Mapping[str, Any], containers: Any, networks: Any,
                              views: Mapping[str, Any], pids: Mapping[str, int]) -> EnginePoll:
    """One engine's answers (containers, networks, verbose inspects by network id) joined into an EnginePoll."""
    if not isinstance(containers, list):
        raise PayloadError("the container list is not a list")
    network_values, problems = parse_all(networks, lambda raw: parse_network(raw, endpoint), "network")
    names = {n.id: n.name for n in network_values}
    parsed_views = {}
    for net_id, raw in views.items():
        try:
            parsed_views[net_id] = parse_network_view(raw, identity.get("node_id"), endpoint)
        except PayloadError as exc:
            problems.append(f"{endpoint}: network {names.get(net_id, net_id[:12])}: {exc}")
    return EnginePoll(endpoint, identity, tuple(c for c in containers if isinstance(c, Mapping)),
                      tuple(network_values), parsed_views, dict(pids), tuple(problems))


def container_name(raw: Mapping[str, Any]) -> str:
    names = raw.get("Names") or []
    return str(names[0]).lstrip("/") if names else str(raw.get("Id", ""))[:12]


def attachments(raw: Mapping[str, Any], networks_by_id: Mapping[str, Network]) -> list[Attachment]:
    result = []
    settings = raw.get("NetworkSettings") or {}
    for name, net in (settings.get("Networks") or {}).items():
        if not isinstance(net, Mapping):
            continue
        network = networks_by_id.get(net.get("NetworkID") or "")
        result.append(Attachment(
            network_id=str(net.get("NetworkID") or ""),
            network_name=str(name),
            mac=str(net.get("MacAddress") or ""),
            internal=network.internal if network else False,
            has_gateway=bool(net.get("Gateway")),
        ))
    return result


@dataclass(frozen=True)
class Topology:
    """The joined cluster-wide objects; rebuilt only when a poll brought new answers."""

    nodes: tuple[Node, ...]
    services: tuple[Service, ...]
    tasks: tuple[Task, ...]
    networks: tuple[Network, ...]
    problems: tuple[str, ...]


def assemble_topology(swarm: SwarmPoll | None, polls: Mapping[str, EnginePoll]) -> Topology:
    problems: list[str] = list(swarm.problems) if swarm is not None else []
    networks: dict[str, Network] = {n.id: n for n in (swarm.networks if swarm else ())}
    views: dict[str, list[NetworkView]] = {}
    for poll in polls.values():
        problems += poll.problems
        for net in poll.networks:
            if net.id not in networks:
                networks[net.id] = net  # local networks, and swarm networks when no manager answered
        for net_id, view in poll.views.items():
            views.setdefault(net_id, []).append(view)
    merged = tuple(
        replace(net, views=tuple(sorted(views.get(net.id, ()), key=lambda v: v.engine)))
        for net in sorted(networks.values(), key=lambda n: (n.driver != "overlay", natural_key(n.name), n.engine or ""))
    )
    return Topology(
        nodes=tuple(sorted(swarm.nodes, key=lambda n: natural_key(n.hostname))) if swarm else (),
        services=tuple(sorted(swarm.services, key=lambda s: natural_key(s.name))) if swarm else (),
        tasks=swarm.tasks if swarm else (),
        networks=merged,
        problems=tuple(problems),
    )


def assemble(
    *,
    taken_at: float,
    engines: Sequence[Engine],
    swarm: SwarmPoll | None,
    polls: Mapping[str, EnginePoll],
    samples: Mapping[str, Mapping[str, tuple[StatsSample | None, StatsSample]]],
    read_macs: Callable[[int | None, str], Mapping[str, str] | None] = lambda pid, cid: None,
    problems: Sequence[str] = (),
    topology: Topology | None = None,
) -> ClusterSnapshot:
    topology = topology or assemble_topology(swarm, polls)
    tasks = topology.tasks
    task_pids = {t.container_id: t.pid for t in tasks if t.container_id and t.pid}

    containers = []
    skipped: list[str] = []
    node_of_engine = {e.endpoint: e.node_id for e in engines}
    for endpoint, poll in polls.items():
        engine_samples = samples.get(endpoint, {})
        engine_networks = {n.id: n for n in poll.networks}
        gateway = next(((n.id, n.name) for n in poll.networks if n.name == GATEWAY_NETWORK), None)
        for raw in poll.containers:
            try:
                containers.append(_container(raw, endpoint, node_of_engine.get(endpoint), engine_samples,
                                             engine_networks, gateway, read_macs, poll.pids, task_pids))
            except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
                # a malformed item is skipped and named, never a crash of the whole snapshot
                skipped.append(f"{endpoint}: skipped a container ({type(exc).__name__}: {str(exc)[:120]})")
    return ClusterSnapshot(
        taken_at=taken_at,
        engines=tuple(engines),
        swarm_id=swarm.swarm_id if swarm else None,
        nodes=topology.nodes,
        services=topology.services,
        tasks=tasks,
        networks=topology.networks,
        containers=tuple(sorted(containers, key=lambda c: natural_key(c.name))),
        problems=tuple(dict.fromkeys([*problems, *topology.problems, *skipped])),
    )


def _container(raw, endpoint, node_id, engine_samples, engine_networks, gateway, read_macs, pids, task_pids
               ) -> ContainerStats:
    cid = str(raw.get("Id", ""))
    pair = engine_samples.get(cid)
    labels = raw.get("Labels") or {}
    if not isinstance(labels, Mapping):
        raise TypeError("Labels is not an object")
    task_id, service = labels.get(TASK_LABEL), labels.get(SERVICE_LABEL)
    if pair is None:  # running, but no stats sample yet: listed, with nothing measured
        return ContainerStats(cid, container_name(raw), endpoint, node_id, task_id, service, 0.0, None, None, None)
    previous, current = pair
    attached = attachments(raw, engine_networks)
    # the gateway bridge carries a container's outside traffic only when none of its networks has one
    container_gateway = None if any(a.has_gateway for a in attached) else gateway
    macs = read_macs(pids.get(cid) or task_pids.get(cid), cid)
    mapping: dict[str, InterfaceNetwork] = map_interfaces(list(current.networks), attached, macs, container_gateway)
    return container_stats(container_id=cid, name=container_name(raw), engine=endpoint, node_id=node_id,
                           task_id=task_id, service_name=service, previous=previous, current=current,
                           networks=mapping)
