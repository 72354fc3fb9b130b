"""The probe agent: a global service on an overlay, one task per node, created, labelled and removed by
overlaytui — the only thing overlaytui ever creates in a cluster.

Each agent task sleeps and serves iperf3; probes run in it with `docker exec` on its node's engine, so they
measure task-to-task across the overlay, exactly the path the cluster's services use.

**Runs coexist.** Every probing run (a dashboard, the exporter, doctor, `probe`, `record --probe`, from any host)
has its own run id: a random token, in the service names (`overlaytui-probe-<overlay>-<token>`) and labels,
with the host and pid (`overlaytui.probe=<host>:<pid>`). A run only ever removes, re-deploys or renews its own
services — and the services of runs whose **lease** lapsed:

- the service label `overlaytui.lease-until=<unix time>` (the manager's clock) is renewed by the run, by updating
  the service's labels only (never its TaskTemplate: that would restart the tasks);
- each agent stops by itself (exit 0; restart condition on-failure, so swarm does not start it again) when the
  token its run writes into it (`docker exec` through the node's engine, shell builtins only) did not change for
  a lease — a crashed run's agents stop within a lease even if no overlaytui ever runs again;
- any later run removes the services whose lease-until passed.

Agents that report through the service logs (`--via-logs`, or nodes without an engine connection) cannot be
reached with `docker exec`. Their lease goes through Docker's DNS instead: the run also deploys an **anchor**, one
task on a node whose engine it reaches, attached to the overlay and renewed like any agent; the reporting agents
count their lease as renewed while `tasks.<anchor>` resolves. A crashed run's anchor stops within a lease, its
name stops resolving, and the reporting agents stop a lease later.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass

import docker
from docker.types import ContainerSpec, EndpointSpec, NetworkAttachmentConfig, RestartPolicy, ServiceMode, TaskTemplate

from .. import model
from ..sources.errors import ENGINE_ERRORS
from ..sources.lease import LAPSE_MARGIN as LAPSE_MARGIN
from ..sources.lease import LEASE_LABEL, LEASE_UNTIL_LABEL, RUN_LABEL, engine_now, lapsed
from ..sources.lease import engine_time as engine_time
from ..sources.lease import parse_lease_until as parse_lease_until
from .targets import ip_address

PROBE_LABEL = model.PROBE_LABEL  # "overlaytui.probe" = <host>:<pid> of the run
# RUN_LABEL, LEASE_UNTIL_LABEL (the manager's clock, renewed), LEASE_LABEL: sources/lease.py (shared with the deep
# view's reader)
DEFAULT_IMAGE = "nicolaka/netshoot"
LAB_IMAGE = "overlaytui/probe:lab"

LEASE_ENV = "OVERLAYTUI_AGENT_LEASE"
DEFAULT_LEASE = 300.0
MIN_LEASE = 10.0
MAX_LEASE = 86400.0
LEASE_FILE = "/tmp/overlaytui.lease"  # inside the agent: the token its run renews

# The lease watch, shell builtins besides sleep: the token file is read every OT_STEP s; `w` returns once it did
# not change for OT_LEASE s (counted in sleeps, so never early).
_WATCH = (f'w() {{ f={LEASE_FILE}; echo start > "$f"; last=; idle=0; '
          'while [ "$idle" -lt "$OT_LEASE" ]; do sleep "$OT_STEP" & wait $!; v=; read -r v 2>/dev/null < "$f"; '
          'if [ "$v" = "$last" ]; then idle=$((idle + OT_STEP)); else last=$v; idle=0; fi; done; }\n')
# Reporting agents: while the run's anchor resolves (nslookup, which they need anyway), a loop beside the watch
# renews the token itself. Apart from the watch, so a slow failing lookup (forwarded, timing out) cannot stretch
# the watch's count.
_ANCHOR_RENEWAL = (f'(n=0; while :; do if nslookup "tasks.$OT_ANCHOR" 2>/dev/null | awk \'/^Address/ && '
                   "$NF !~ /#/ && $NF !~ /^127\\./ {f=1} END {exit !f}'; then n=$((n+1)); "
                   f'echo "anchor.$n" > {LEASE_FILE}; fi; sleep "$OT_STEP"; done) &\n')
# sleep until told to stop or the lease lapses (exit 0: not restarted); serve iperf3 for throughput probes
AGENT_SCRIPT = ("trap 'exit 0' TERM INT\n(iperf3 -s -D >/dev/null 2>&1 || true)\n" + _WATCH +
                'if [ "$OT_LEASE" -gt 0 ]; then w; exit 0; fi\nwhile :; do sleep 3600 & wait $!; done\n')
AGENT_COMMAND = ["/bin/sh", "-c", AGENT_SCRIPT]


# Reporting mode, for nodes whose engine overlaytui cannot reach: the agent itself pings every other task of its
# service (tasks.SERVICE through Docker's DNS) in rounds and prints one line per target, which the manager's
# service logs carry back: "OTPROBE <round> <target ip> <ping summary on one line>". Their lease: the anchor's name
# (see above); without an anchor (no node of theirs reachable) OT_LEASE=0: no deadline of their own, and only a
# later run removes them once their service's lease label lapsed (see the README).
REPORT_SCRIPT = r"""trap 'exit 0' TERM INT
(iperf3 -s -D >/dev/null 2>&1 || true)
""" + _WATCH + ('if [ "$OT_LEASE" -gt 0 ]; then\n  [ -z "$OT_ANCHOR" ] || ' + _ANCHOR_RENEWAL
                + "  (w; kill -TERM $$) &\nfi\n") + r"""P=$(which ping)
n=0
while :; do
  n=$((n+1))
  ips=$(nslookup "tasks.$OT_SERVICE" 2>/dev/null | awk '/^Address/ && $NF !~ /#/ && $NF !~ /^127\./ {print $NF}')
  pids=
  for ip in $ips; do
    ip -o addr show 2>/dev/null | grep -q "inet $ip/" && continue
    "$P" -q -n -c "$OT_COUNT" -i "$OT_INTERVAL" -W 1 -w "$OT_DEADLINE" "$ip" > "/tmp/otl.$ip" 2>&1 &
    pids="$pids $!"
  done
  [ -z "$pids" ] || wait $pids  # the pings only: not the lease watch running beside them
  for ip in $ips; do
    [ -f "/tmp/otl.$ip" ] || continue
    echo "OTPROBE $n $ip $(tr '\n' ' ' < "/tmp/otl.$ip")"
    rm -f "/tmp/otl.$ip"
  done
  sleep "$OT_EVERY"
done
"""


def lease_seconds(environ=None) -> tuple[float, str]:
    """The agents' lease (OVERLAYTUI_AGENT_LEASE seconds, else 5 minutes), and what is wrong with the setting
    ("" when nothing)."""
    raw = (os.environ if environ is None else environ).get(LEASE_ENV, "").strip()
    if not raw:
        return DEFAULT_LEASE, ""
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_LEASE, f"{LEASE_ENV}={raw[:40]!r} is not a number of seconds: the lease is " \
            f"{DEFAULT_LEASE:g} s"
    if value != value or not MIN_LEASE <= value <= MAX_LEASE:  # NaN, too short, too long
        used = DEFAULT_LEASE if value != value else min(max(value, MIN_LEASE), MAX_LEASE)
        return used, f"{LEASE_ENV}={raw[:40]} is out of range ({MIN_LEASE:g} to {MAX_LEASE:g} s): the lease is " \
            f"{used:g} s"
    return value, ""


def lease_step(lease: float) -> int:
    """How often an agent looks at its token: a tenth of the lease, between 1 and 5 s."""
    return max(1, min(5, int(lease // 10)))


@dataclass(frozen=True)
class Run:
    """One probing run's identity: its token (in its services' names) and who runs it."""

    token: str
    host: str
    pid: int
    lease: float = DEFAULT_LEASE

    @classmethod
    def new(cls, lease: float = DEFAULT_LEASE) -> Run:
        return cls(secrets.token_hex(4), socket.gethostname(), os.getpid(), lease)

    @property
    def owner(self) -> str:
        return f"{self.host}:{self.pid}"

    def labels(self, lease_until: float) -> dict[str, str]:
        return {PROBE_LABEL: self.owner, RUN_LABEL: self.token, LEASE_UNTIL_LABEL: str(int(lease_until + 0.999)),
                LEASE_LABEL: f"{self.lease:g}"}


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


SERVICE_PREFIX = "overlaytui-probe-"
MAX_NAME = 63


ANCHOR_SUFFIX = "-lease"


def service_name(network: str, run: str, suffix: str = "") -> str:
    """`overlaytui-probe-<overlay>-<run>[suffix]`, at most 63 characters of letters, digits and dashes (a DNS
    label): an overlay name that had to be cut or cleaned keeps a short hash of itself, so two overlays never
    share a name within a run."""
    safe = re.sub(r"[^A-Za-z0-9-]+", "-", network).strip("-")
    room = MAX_NAME - len(SERVICE_PREFIX) - 1 - len(run) - len(suffix)
    if safe != network or len(safe) > room:
        digest = hashlib.sha1(network.encode(), usedforsecurity=False).hexdigest()[:6]
        safe = f"{safe[:room - 7].rstrip('-')}-{digest}".lstrip("-")
    return f"{SERVICE_PREFIX}{safe}-{run}{suffix}"


@dataclass(frozen=True)
class AgentTask:
    node_id: str
    container_id: str
    address: str  # the task's IP on the probed overlay (no prefix length)


def is_leftover(service: dict, now: float, own_run: str = "", host: str | None = None, alive=None) -> bool:
    """Whether a probe service belongs to a run that is gone and may be removed: ours by name and label, not
    this run's, and its lease (`overlaytui.lease-until`, the manager's clock) lapsed more than LAPSE_MARGIN s
    ago — whatever host the run was on. A live run's services are never touched, nor a user's service that
    merely carries the label, nor one named otherwise, nor a run label with no readable lease.

    Services from before leases (owner `host:pid`, no run label) are removed only when their owner was on this
    host and its process is gone: another host's cannot be judged."""
    spec = service.get("Spec") or {}
    labels = spec.get("Labels") or {}
    owner = labels.get(PROBE_LABEL)
    if not str(spec.get("Name", "")).startswith(SERVICE_PREFIX) or not isinstance(owner, str):
        return False
    judged = lapsed(labels, now, own_run)
    if judged is not None:
        return judged
    owner_host, _, pid = owner.rpartition(":")
    if not owner_host or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return owner_host == (host or socket.gethostname()) and not (alive or _process_alive)(int(pid))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def manager_now(manager: docker.APIClient) -> float:
    """The manager's clock (leases are judged by it, so hosts' clocks need not agree); this host's when the
    engine does not say."""
    return engine_now(manager)


def remove_leftovers(manager: docker.APIClient, own_run: str = "", now: float | None = None) -> list[str]:
    """Remove the probe services of runs whose lease lapsed (see `is_leftover`)."""
    removed = []
    now = manager_now(manager) if now is None else now
    for svc in manager.services(filters={"label": PROBE_LABEL}):
        if not is_leftover(svc, now, own_run):
            continue
        try:
            manager.remove_service(svc["ID"])
            removed.append(svc["Spec"]["Name"])
        except ENGINE_ERRORS:
            continue
    return removed


def deploy(manager: docker.APIClient, network: str, image: str, run: Run, lease_until: float,
           report: dict[str, str] | None = None, anchor: str | None = None) -> str:
    """Create this run's global probe service on `network`; returns its id. With `report` (count, interval,
    deadline, every) the agents probe by themselves and report through the service logs; their lease is then
    the `anchor` service's name resolving (`deploy_anchor`), and without one they have no deadline."""
    name = service_name(network, run.token)
    env = [f"OT_LEASE={int(run.lease + 0.999)}", f"OT_STEP={lease_step(run.lease)}"]
    command = AGENT_COMMAND
    if report is not None:
        command = ["/bin/sh", "-c", REPORT_SCRIPT]
        env = ([f"OT_LEASE={int(run.lease + 0.999) if anchor else 0}", f"OT_STEP={lease_step(run.lease)}",
                f"OT_ANCHOR={anchor or ''}", f"OT_SERVICE={name}"]
               + [f"OT_{k.upper()}={v}" for k, v in report.items()])
    return _create(manager, name, network, image, command, env, run, lease_until, ServiceMode("global"))


def deploy_anchor(manager: docker.APIClient, network: str, image: str, run: Run, lease_until: float,
                  node_id: str) -> tuple[str, str]:
    """The lease of reporting agents: one task on `node_id` (a node whose engine the run reaches), on the overlay,
    renewed like an agent; the reporting agents stop a lease after its name stopped resolving. Returns (service
    id, name)."""
    name = service_name(network, run.token, ANCHOR_SUFFIX)
    env = [f"OT_LEASE={int(run.lease + 0.999)}", f"OT_STEP={lease_step(run.lease)}"]
    return _create(manager, name, network, image, AGENT_COMMAND, env, run, lease_until, ServiceMode("replicated", 1),
                   [f"node.id=={node_id}"]), name


def _create(manager: docker.APIClient, name: str, network: str, image: str, command: list[str], env: list[str],
            run: Run, lease_until: float, mode: ServiceMode, constraints: list[str] | None = None) -> str:
    spec = ContainerSpec(image=image, command=command, env=env,
                         labels={PROBE_LABEL: run.owner, RUN_LABEL: run.token}, stop_grace_period=1_000_000_000)
    # exit 0 (a lapsed lease) is final: on-failure does not restart it
    template = TaskTemplate(container_spec=spec, restart_policy=RestartPolicy(condition="on-failure",
                                                                             max_attempts=3),
                            placement=constraints)
    created = manager.create_service(
        template, name=name, labels=run.labels(lease_until), mode=mode,
        # vip mode: the agents' own VIP is what the discovery probe checks (tasks.NAME resolves either way)
        networks=[NetworkAttachmentConfig(target=network)], endpoint_spec=EndpointSpec(mode="vip"),
    )
    return created["ID"]


def renew_service(manager: docker.APIClient, service_id: str, lease_until: float) -> None:
    """Move the service's lease-until label: its labels only, the rest of the spec as it is (a changed
    TaskTemplate would restart the tasks; labels do not — checked on the lab)."""
    found = manager.inspect_service(service_id)
    spec = dict(found["Spec"])
    spec["Labels"] = {**(spec.get("Labels") or {}), LEASE_UNTIL_LABEL: str(int(lease_until + 0.999))}
    response = manager._post_json(manager._url("/services/{0}/update", service_id), data=spec,
                                  params={"version": found["Version"]["Index"]})
    manager._raise_for_status(response)


def renew_agent(api: docker.APIClient, container: str, token: str) -> None:
    """Write the run's new token into the agent (a shell builtin: `echo`). Raises RenewFailed when it did not."""
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", token):
        raise ValueError(f"bad lease token {token!r}")
    exec_id = api.exec_create(container, ["sh", "-c", f"echo {token} > {LEASE_FILE}"], stdout=True,
                              stderr=True)["Id"]
    output = api.exec_start(exec_id)
    code = api.exec_inspect(exec_id).get("ExitCode")
    if code != 0:
        text = output.decode(errors="replace").strip() if isinstance(output, bytes) else ""
        raise RenewFailed(f"exit {code}: {text[:160] or '(no output)'}")


class RenewFailed(Exception):
    """The token could not be written into an agent."""


def running_tasks(manager: docker.APIClient, service_id: str, network: str) -> list[AgentTask]:
    return agent_tasks(manager.tasks(filters={"service": service_id}), network)[0]


def completed_nodes(tasks: list) -> dict[str, str]:
    """Node -> container of an agent task that ended by itself (exit 0, e.g. its lease lapsed), for the nodes with
    none running or about to: swarm does not start those again."""
    done: dict[str, str] = {}
    up = set()
    for task in tasks:
        if not isinstance(task, dict):
            continue
        status = task.get("Status") or {}
        node, state = str(task.get("NodeID") or ""), status.get("State")
        if state == "complete" and node:
            done[node] = str((status.get("ContainerStatus") or {}).get("ContainerID") or "")
        elif state in ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"):
            up.add(node)
    return {node: container for node, container in done.items() if node not in up}


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
