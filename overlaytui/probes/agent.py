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
from .targets import ip_address

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


SERVICE_PREFIX = "overlaytui-probe-"


def service_name(network: str) -> str:
    return f"{SERVICE_PREFIX}{network}"[:63]


@dataclass(frozen=True)
class AgentTask:
    node_id: str
    container_id: str
    address: str  # the task's IP on the probed overlay (no prefix length)


def is_leftover(service: dict, host: str | None = None, alive=None) -> bool:
    """A probe service left by a run that could not clean up: ours by name and label, and not owned by an
    overlaytui still running on this host (the owner label is `host:pid`). A user's service that merely carries
    the label, or one named otherwise, is never touched."""
    spec = service.get("Spec") or {}
    owner = (spec.get("Labels") or {}).get(PROBE_LABEL)
    if not str(spec.get("Name", "")).startswith(SERVICE_PREFIX) or not isinstance(owner, str):
        return False
    owner_host, _, pid = owner.rpartition(":")
    if not owner_host or not pid.isdigit():
        return False
    if owner_host == (host or socket.gethostname()) and int(pid) != os.getpid():
        return not (alive or _process_alive)(int(pid))
    return True  # another host's run: one probing overlaytui per cluster (README)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(manager: docker.APIClient) -> list[str]:
    """Remove the probe services a crashed run left (see `is_leftover`)."""
    removed = []
    for svc in manager.services(filters={"label": PROBE_LABEL}):
        if not is_leftover(svc):
            continue
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
    return agent_tasks(manager.tasks(filters={"service": service_id}), network)[0]


FAILED_STATES = {"failed", "rejected", "orphaned"}
GIVE_UP_AFTER = 8.0  # seconds after a node's first failed agent task without a running one: report it


def agent_tasks(tasks: list, network: str) -> tuple[list[AgentTask], dict[str, tuple[int, str]]]:
    """The running agent tasks (with a valid address on the overlay), and per node without one: (how many of
    its tasks failed or were rejected, the latest one's error) — what `docker service ps` shows. Malformed
    tasks are skipped."""
    running: list[AgentTask] = []
    failed: dict[str, list[tuple[str, str]]] = {}
    for task in tasks:
        try:
            found = _agent_task(task, network)
        except (AttributeError, TypeError, ValueError, IndexError):
            continue
        if isinstance(found, AgentTask):
            running.append(found)
        elif found is not None:
            failed.setdefault(found[0], []).append(found[1:])
    up = {t.node_id for t in running}
    failures = {node: (len(errors), max(errors)[1]) for node, errors in failed.items() if node not in up}
    return running, failures


def _agent_task(task: dict, network: str) -> AgentTask | tuple[str, str, str] | None:
    """One task: an AgentTask when it runs with an address on the overlay, (node, timestamp, error) when it
    failed, else None."""
    status = task.get("Status") or {}
    node = str(task.get("NodeID") or "")
    state = status.get("State")
    container = (status.get("ContainerStatus") or {}).get("ContainerID")
    if state == "running" and isinstance(container, str) and container and task.get("DesiredState") in (
            "running", None):
        for attachment in task.get("NetworksAttachments") or []:
            if (attachment.get("Network") or {}).get("Spec", {}).get("Name") == network:
                address = ip_address(str((attachment.get("Addresses") or [""])[0]))  # never anything else
                return AgentTask(node, container, address)
        return None
    if state in FAILED_STATES and node:
        return node, str(status.get("Timestamp") or ""), str(status.get("Err") or state)
    return None


def wait_for_tasks(manager: docker.APIClient, service_id: str, network: str, nodes: set[str], timeout: float,
                   give_up_after: float = GIVE_UP_AFTER) -> tuple[list[AgentTask], dict[str, str]]:
    """Wait (bounded) until the agent runs on each of these nodes. A node whose agent tasks fail (no such image,
    pull access denied, no resources...) with none running for `give_up_after` s is not waited for: returns
    what runs, and node id -> the latest task error for the nodes given up on."""
    deadline = time.monotonic() + timeout
    first_failure: dict[str, float] = {}
    tasks: list[AgentTask] = []
    failures: dict[str, tuple[int, str]] = {}
    while True:
        tasks, failures = agent_tasks(manager.tasks(filters={"service": service_id}), network)
        now = time.monotonic()
        for node in failures:
            first_failure.setdefault(node, now)
        given_up = {node for node in failures if node in nodes and now - first_failure[node] >= give_up_after}
        if nodes <= {t.node_id for t in tasks} | given_up or now >= deadline:
            return tasks, {node: error for node, (_count, error) in failures.items() if node in nodes}
        time.sleep(0.3)


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
