"""The probe agent: a global service on an overlay, one task per node, created, labelled and removed by
overlaytui — the only thing overlaytui ever creates in a cluster.

Each agent task sleeps and serves iperf3; probes run in it with `docker exec` on its node's engine, so they
measure task-to-task across the overlay, exactly the path the cluster's services use. Services carry the label
`overlaytui.probe`; a new probing run first removes any left by a crashed one (one probing overlaytui per
cluster at a time).
"""

from __future__ import annotations

import os
import re
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


# Reporting mode, for nodes whose engine overlaytui cannot reach: the agent itself pings every other task of its
# service (tasks.SERVICE through Docker's DNS) in rounds and prints one line per target, which the manager's
# service logs carry back: "OTPROBE <round> <target ip> <ping summary on one line>".
REPORT_SCRIPT = r"""trap 'exit 0' TERM INT
(iperf3 -s -D >/dev/null 2>&1 || true)
P=$(which ping)
n=0
while :; do
  n=$((n+1))
  ips=$(nslookup "tasks.$OT_SERVICE" 2>/dev/null | awk '/^Address/ && $NF !~ /#/ && $NF !~ /^127\./ {print $NF}')
  for ip in $ips; do
    ip -o addr show 2>/dev/null | grep -q "inet $ip/" && continue
    "$P" -q -n -c "$OT_COUNT" -i "$OT_INTERVAL" -W 1 -w "$OT_DEADLINE" "$ip" > "/tmp/otl.$ip" 2>&1 &
  done
  wait
  for ip in $ips; do
    [ -f "/tmp/otl.$ip" ] || continue
    echo "OTPROBE $n $ip $(tr '\n' ' ' < "/tmp/otl.$ip")"
    rm -f "/tmp/otl.$ip"
  done
  sleep "$OT_EVERY"
done
"""


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


def deploy(manager: docker.APIClient, network: str, image: str, report: dict[str, str] | None = None) -> str:
    """Create the global probe service on `network`; returns its id. With `report` (count, interval, deadline,
    every) the agents probe by themselves and report through the service logs."""
    command = AGENT_COMMAND
    env = None
    if report is not None:
        command = ["/bin/sh", "-c", REPORT_SCRIPT]
        env = [f"OT_SERVICE={service_name(network)}"] + [f"OT_{k.upper()}={v}" for k, v in report.items()]
    spec = ContainerSpec(image=image, command=command, env=env, labels={PROBE_LABEL: owner_label()},
                         stop_grace_period=1_000_000_000)
    template = TaskTemplate(container_spec=spec, restart_policy=RestartPolicy(condition="on-failure",
                                                                             max_attempts=3))
    created = manager.create_service(
        template, name=service_name(network), labels={PROBE_LABEL: owner_label()}, mode=ServiceMode("global"),
        # vip mode: the agents' own VIP is what the discovery probe checks (tasks.NAME resolves either way)
        networks=[NetworkAttachmentConfig(target=network)], endpoint_spec=EndpointSpec(mode="vip"),
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


_REPORT_LINE = re.compile(r"com\.docker\.swarm\.node\.id=(\w+)\S* OTPROBE (\d+) (\S+) (.*)$")


def parse_reports(logs: str) -> dict[tuple[str, str], tuple[int, str]]:
    """(reporting node id, target ip) -> (round, ping output) of the latest round in these service logs."""
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for line in logs.splitlines():
        match = _REPORT_LINE.search(line)
        if not match:
            continue
        node, round_, target, text = match.group(1), int(match.group(2)), match.group(3), match.group(4)
        if (node, target) not in latest or latest[(node, target)][0] <= round_:
            latest[(node, target)] = (round_, text)
    return latest


def read_reports(manager: docker.APIClient, service_id: str) -> dict[tuple[str, str], tuple[int, str]]:
    logs = manager.service_logs(service_id, details=True, stdout=True, stderr=False, tail=2000)
    text = logs.decode(errors="replace") if isinstance(logs, bytes) else b"".join(logs).decode(errors="replace")
    return parse_reports(text)


def remove(manager: docker.APIClient, service_ids: list[str]) -> None:
    for service_id in service_ids:
        try:
            manager.remove_service(service_id)
        except ENGINE_ERRORS:
            pass
