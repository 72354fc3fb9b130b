"""The probe agent: a global service on an overlay, one task per node, created, labelled and removed by
overlaytui — the only thing overlaytui ever creates in a cluster.

Each agent task sleeps and serves iperf3; probes run in it with `docker exec` on its node's engine, so they
measure task-to-task across the overlay, exactly the path the cluster's services use. Services carry the label
`overlaytui.probe`; a new probing run first removes any left by a crashed one (one probing overlaytui per
cluster at a time).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import docker
from docker.types import ContainerSpec, EndpointSpec, NetworkAttachmentConfig, RestartPolicy, ServiceMode, TaskTemplate

from ..sources.errors import ENGINE_ERRORS

PROBE_LABEL = "overlaytui.probe"
DEFAULT_IMAGE = "nicolaka/netshoot"
LAB_IMAGE = "overlaytui/probe:lab"
# sleep until told to stop; serve iperf3 for throughput probes (where the image has it)
AGENT_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; (iperf3 -s -D >/dev/null 2>&1 || true); "
                 "while :; do sleep 3600 & wait $!; done"]


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def service_name(network: str) -> str:
    return f"overlaytui-probe-{network}"[:63]


@dataclass(frozen=True)
class AgentTask:
    node_id: str
    container_id: str
    address: str  # the task's IP on the probed overlay (no prefix length)


def remove_leftovers(manager: docker.APIClient) -> list[str]:
    """Remove every probe service (found by label): the remains of a run that could not clean up."""
    removed = []
    for svc in manager.services(filters={"label": PROBE_LABEL}):
        try:
            manager.remove_service(svc["ID"])
            removed.append(svc["Spec"]["Name"])
        except ENGINE_ERRORS:
            continue
    return removed


def deploy(manager: docker.APIClient, network: str, image: str) -> str:
    """Create the global probe service on `network`; returns its id."""
    spec = ContainerSpec(image=image, command=AGENT_COMMAND, labels={PROBE_LABEL: owner_label()},
                         stop_grace_period=1_000_000_000)
    template = TaskTemplate(container_spec=spec, restart_policy=RestartPolicy(condition="on-failure",
                                                                             max_attempts=3))
    created = manager.create_service(
        template, name=service_name(network), labels={PROBE_LABEL: owner_label()}, mode=ServiceMode("global"),
        networks=[NetworkAttachmentConfig(target=network)], endpoint_spec=EndpointSpec(mode="dnsrr"),
    )
    return created["ID"]


def running_tasks(manager: docker.APIClient, service_id: str, network: str) -> list[AgentTask]:
    tasks = []
    for task in manager.tasks(filters={"service": service_id, "desired-state": "running"}):
        status = task.get("Status") or {}
        container = (status.get("ContainerStatus") or {}).get("ContainerID")
        if status.get("State") != "running" or not container:
            continue
        for attachment in task.get("NetworksAttachments") or []:
            if (attachment.get("Network") or {}).get("Spec", {}).get("Name") == network:
                address = (attachment.get("Addresses") or [""])[0].split("/")[0]
                if address:
                    tasks.append(AgentTask(task["NodeID"], container, address))
    return tasks


def wait_for_tasks(manager: docker.APIClient, service_id: str, network: str, nodes: set[str],
                   timeout: float) -> list[AgentTask]:
    """Wait (bounded) until the agent runs on each of these nodes; returns what runs by then."""
    deadline = time.monotonic() + timeout
    tasks: list[AgentTask] = []
    while time.monotonic() < deadline:
        tasks = running_tasks(manager, service_id, network)
        if nodes <= {t.node_id for t in tasks}:
            return tasks
        time.sleep(0.3)
    return tasks


def remove(manager: docker.APIClient, service_ids: list[str]) -> None:
    for service_id in service_ids:
        try:
            manager.remove_service(service_id)
        except ENGINE_ERRORS:
            pass
