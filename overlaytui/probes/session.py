"""A probing session on a real cluster: agents deployed on the chosen overlays, rounds of probes between every
pair of nodes, results accumulated (so verdicts can become honest with more samples), agents always removed.

Probes run from a node's agent task through that node's engine (`docker exec`): pairs from nodes without an
engine connection are missing, and the session says so.

Each session is one run (`agent.Run`): its own service names, and a lease on its agents renewed by a thread from
`start()` to `close()`, so any number of sessions, in any processes on any hosts, probe one cluster at once and
a crashed one's agents stop by themselves (see `agent`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial

import docker

from ..model import (
    ClusterSnapshot,
    Coverage,
    Health,
    PairGap,
    PairWindow,
    ProbeData,
    ProbeResult,
    natural_key,
    natural_sorted,
)
from ..sources.endpoints import EndpointSpec
from ..sources.errors import ENGINE_ERRORS, describe_error
from . import agent, runner
from .capabilities import Capabilities, unavailable
from .plan import DEFAULT_ROUND_PAIRS, RoundPlan, plan_round
from .scheduler import DEFAULT_CONCURRENCY, ProbeJob, ProbeScheduler

MAX_PROBLEMS = 100  # distinct problem texts a session remembers
KINDS = ("ping", "mtu", "iperf", "discovery")
IMAGE_HINT = "use --probe-image IMAGE with an image present on the nodes or in your registry (a POSIX shell, " \
    "ping and sleep are enough; iputils ping for path MTU, iperf3 for throughput)"


class ProbeError(Exception):
    """Probing cannot start (no manager, unknown network, no agent could start...): one line."""


@dataclass(frozen=True)
class ProbeSettings:
    kinds: tuple[str, ...] = ("ping", "mtu")
    networks: tuple[str, ...] = ()  # empty: every overlay but the ingress
    image: str = agent.DEFAULT_IMAGE
    count: int = 100
    interval: float = 0.2
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = 60.0
    iperf_seconds: int = 3
    deploy_timeout: float = 90.0
    start: bool = False  # the dashboard: start probing at launch (--probe) rather than on P
    via_logs: bool = False  # agents probe by themselves and report through the manager's service logs
    iperf_every_rounds: int = 1  # the dashboard's opt-in throughput schedule: every Nth round only (low duty)
    report_every: float = 5.0  # logs mode: the agents' pause between rounds
    window_s: float = 300.0  # the recent window of each pair's loss (the last round and everything are kept too)
    round_pairs: int = DEFAULT_ROUND_PAIRS  # directed pairs a round measures, shared by the overlays (plan.py);
    # beyond it rounds rotate through the nodes; 0: the full mesh every round


class ProbeSession:
    def __init__(self, snapshot_of: Callable[[], ClusterSnapshot], settings: ProbeSettings,
                 endpoints: Sequence[EndpointSpec] = (), call_timeout: float = 10.0):
        """`snapshot_of()` gives the current ClusterSnapshot (the source's `snapshot`); `endpoints` carry the TLS
        settings of tcp engines."""
        self._snapshot_of = snapshot_of
        self.settings = settings
        self.call_timeout = call_timeout
        self._executor = ThreadPoolExecutor(max_workers=max(8, settings.concurrency * 2),
                                            thread_name_prefix="overlaytui-probe")
        self._manager_url: str | None = None
        self._tls: dict[str, object] = {e.url: e.tls for e in endpoints if e.tls is not None}
        self._versions: dict[str, str] = {}  # engine url -> API version negotiated once
        self._services: dict[str, str] = {}  # network -> probe service id
        self._anchors: dict[str, str] = {}  # network -> the reporting agents' lease anchor (agent.deploy_anchor)
        self._agents: dict[str, list[agent.AgentTask]] = {}
        self._agent_failures: dict[str, dict[str, str]] = {}  # network -> node id -> why its agent is not running
        self._caps: dict[tuple[str, str], Capabilities | str] = {}  # (network, node id) -> tools, or why unknown
        self._latest: dict[tuple[str, str, str, str], ProbeResult] = {}
        self._expected: dict[str, tuple[str, ...]] = {}  # network -> hostnames expected to run an agent
        self._why: dict[tuple[str, str, str, str], str] = {}  # (kind, network, src, dst) -> why not measured
        self.rounds = 0
        self._completed = 0  # rounds that ended (self.rounds counts the one in progress too)
        self.focus: str | None = None  # the selected node (hostname): a source in every round, first
        self._plan_now: RoundPlan | None = None  # the latest round's plan (None: no round yet, or the full mesh)
        self._measured_in: dict[tuple[str, str, str, str], int] = {}  # (kind, network, src, dst) -> round measured
        self._totals: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._rounds: dict[tuple[str, str, str], tuple[tuple[float, int, int], ...]] = {}  # measured pings, recent
        self._version = 0  # bumped with every result and every plan
        self._state: ProbeState | None = None
        self._state_version: tuple = ()
        self._said: dict[str, None] = {}  # the latest distinct problems (bounded: probing runs for days)
        self._unsaid: deque[str] = deque(maxlen=MAX_PROBLEMS)  # not yet taken by new_problems()
        self.removed_leftovers: list[str] = []
        self.via_logs = settings.via_logs
        self._log_rounds: dict[str, int] = {}
        self._lock = threading.RLock()  # _services and the problems, shared with the renewal thread
        lease, problem = agent.lease_seconds()
        if problem:
            self._problem(problem)
        self.run = agent.Run.new(lease)  # this run's id: its services' names and labels (runs coexist)
        self._clock_offset = 0.0  # the manager's clock minus ours: leases are in the manager's clock
        self._renewal: threading.Thread | None = None
        self._renewal_stop = threading.Event()
        self._renewals = 0
        self._renewed: dict[str, float] = {}  # agent container -> time.monotonic() of its last renewal
        self._deployed_at: dict[str, float] = {}  # network -> time.monotonic() its service was (re-)deployed
        self._anchor_misses: dict[str, int] = {}  # anchor service -> renewals in a row that found it not running

    # ------------------------------------------------------------------------------------------- setup

    def _client(self, url: str, timeout: float | None = None) -> docker.APIClient:
        """A client for one engine. Blocking (the first one per engine negotiates the API version): call it in
        the executor, inside the caller's error handling."""
        api = docker.APIClient(base_url=url, timeout=timeout or self.call_timeout,
                               version=self._versions.get(url, "auto"), use_ssh_client=url.startswith("ssh://"),
                               tls=self._tls.get(url))
        self._versions.setdefault(url, api.api_version)
        return api

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    def _problem(self, text: str) -> None:
        with self._lock:  # the renewal thread says its problems too
            if text in self._said:  # said once, however many rounds repeat it
                return
            self._said[text] = None
            if len(self._said) > MAX_PROBLEMS:
                del self._said[next(iter(self._said))]
            self._unsaid.append(text)

    @property
    def problems(self) -> list[str]:
        """What probing cannot do (a tool missing in the image, an agent that will not start): the latest
        MAX_PROBLEMS distinct ones."""
        with self._lock:
            return list(self._said)

    def new_problems(self) -> list[str]:
        """The problems not taken yet (each is given once)."""
        with self._lock:
            taken = list(self._unsaid)
            self._unsaid.clear()
        return taken

    def service_name(self, network: str) -> str:
        """This run's agent service on `network` (what the discovery probe resolves)."""
        return agent.service_name(network, self.run.token)

    def _lease_until(self) -> float:
        return time.time() + self._clock_offset + self.run.lease

    async def start(self) -> None:
        snapshot = self._snapshot_of()
        managers = [e for e in snapshot.engines if e.role == "manager" and e.health is Health.OK]
        if not managers:
            raise ProbeError("probing needs a reachable manager (to create the probe agents)")
        self._manager_url = managers[0].endpoint
        overlays = [n for n in snapshot.networks if n.driver == "overlay" and not n.ingress and n.scope == "swarm"]
        wanted = list(self.settings.networks) or [n.name for n in overlays]
        unknown = [w for w in wanted if w not in {n.name for n in overlays}]
        if unknown:
            names = ", ".join(n.name for n in overlays) or "none"
            raise ProbeError(f"unknown overlay {', '.join(unknown)} (overlays here: {names})")
        if not wanted:
            raise ProbeError("there is no overlay network to probe")
        nodes = {n.id for n in snapshot.nodes if n.state == "ready" and n.availability == "active"}
        reachable = {e.node_id for e in snapshot.engines if e.node_id and e.health is Health.OK}
        if nodes - reachable:  # some nodes can only report through the manager
            self.via_logs = True
        report = None
        if self.via_logs:
            s = self.settings
            report = {"count": str(s.count), "interval": f"{s.interval:g}",
                      "deadline": str(int(s.count * s.interval + 3)), "every": f"{s.report_every:g}"}
            if set(s.kinds) - {"ping"}:
                self._problem("agents report through the service logs: ping only (path MTU, throughput "
                              "and discovery need each node's engine)")
        manager = None
        try:
            manager = await self._call(self._client, self._manager_url, 30)
            now = await self._call(agent.manager_now, manager)
            self._clock_offset = now - time.time()
            self.removed_leftovers = await self._call(agent.remove_leftovers, manager, self.run.token, now)
            self._start_renewal()
            # reporting agents' lease: an anchor on a node whose engine is reached (the manager's if it can)
            anchor_node = next((n for n in [managers[0].node_id, *sorted(reachable)] if n in nodes), None)
            if report is not None and anchor_node is None:
                self._problem("no node running agents has an engine connection: the agents reporting through the "
                              "service logs cannot be renewed and have no deadline of their own; a later run "
                              "removes them once their lease lapsed")
            for network in wanted:
                anchor = None
                if report is not None and anchor_node is not None:
                    anchor_id, anchor = await self._call(agent.deploy_anchor, manager, network, self.settings.image,
                                                         self.run, self._lease_until(), anchor_node)
                    with self._lock:
                        self._anchors[network] = anchor_id
                service_id = await self._call(agent.deploy, manager, network, self.settings.image, self.run,
                                              self._lease_until(), report, anchor)
                with self._lock:
                    self._services[network] = service_id
                self._deployed_at[network] = time.monotonic()
            for network, service_id in self._services.items():
                tasks, failures = await self._call(agent.wait_for_tasks, manager, service_id, network, nodes,
                                                   self.settings.deploy_timeout)
                self._agents[network] = tasks
                self._agent_failures[network] = failures
        except ENGINE_ERRORS as exc:
            await self.close()
            raise ProbeError(f"creating the probe agents: {describe_error(exc)}") from None
        finally:
            if manager is not None:
                manager.close()
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        for network, tasks in self._agents.items():
            failures = self._agent_failures[network]
            for node in sorted(nodes - {t.node_id for t in tasks}, key=lambda n: natural_key(hostnames.get(n, n))):
                failures.setdefault(node, f"not running after {self.settings.deploy_timeout:g} s")
                self._problem(f"{network}: no probe agent on {hostnames.get(node, node[:12])}: {failures[node]}")
        if not any(self._agents.values()):
            reasons = sorted({why for failures in self._agent_failures.values() for why in failures.values()})
            await self.close()
            raise ProbeError(f"no probe agent could start ({self.settings.image}): {'; '.join(reasons)[:400]}; "
                             f"{IMAGE_HINT}")
        if not self.via_logs:
            await self._check_images(snapshot)

    async def _check_images(self, snapshot: ClusterSnapshot) -> None:
        """Once per agent: what its image can run. Kinds it cannot run are said once and planned out."""
        engines = {e.node_id: e.endpoint for e in snapshot.engines if e.node_id and e.health is Health.OK}

        def check(url: str, container: str) -> Capabilities | str:
            try:
                with self._client(url, 30) as api:
                    return runner.check_capabilities(api, container)
            except ENGINE_ERRORS as exc:
                return f"checking the agent's tools: {describe_error(exc)}"
            except runner.ExecFailed as exc:
                return str(exc)
        keys = [(network, t) for network, tasks in self._agents.items() for t in tasks if t.node_id in engines]
        found = await asyncio.gather(*(self._call(check, engines[t.node_id], t.container_id) for _, t in keys))
        for (network, task), caps in zip(keys, found, strict=True):
            self._caps[(network, task.node_id)] = caps
            if isinstance(caps, Capabilities):
                for reason in unavailable(self.settings.kinds, caps, self.settings.image).values():
                    self._problem(reason)
            else:
                self._problem(f"{network}: {caps}")

    async def keep_agents(self) -> list[str]:
        """For a long-running session (the exporter): re-deploy this run's agent service when someone removed it
        (never another run's), or when agents stopped by themselves because their lease lapsed (the renewal
        failed for a lease: swarm does not start them again); pick up agents on nodes that joined (and drop
        those that left), check the tools of new agents. Returns the overlays whose agents were re-deployed.
        Engine errors are problems, not exceptions: the next round tries again."""
        if not self._manager_url or self.via_logs:
            return []
        snapshot = self._snapshot_of()
        nodes = {n.id for n in snapshot.nodes if n.state == "ready" and n.availability == "active"}
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        # an agent can be kept alive only where its engine is reached (the renewal is an exec through it)
        renewable = nodes & {e.node_id for e in snapshot.engines if e.node_id and e.health is Health.OK}
        redeployed = []

        def refresh(network: str, service_id: str) -> tuple[str, list[agent.AgentTask], dict[str, str]]:
            with self._client(self._manager_url, 30) as manager:
                try:
                    manager.inspect_service(service_id)
                    raw = manager.tasks(filters={"service": service_id})
                    if lapsed := self._lapsed(network, agent.completed_nodes(raw), renewable):
                        names = ", ".join(natural_sorted(hostnames.get(n, n[:12]) for n in lapsed))
                        self._problem(f"{network}: the probe agent stopped on {names} (its lease lapsed: it could "
                                      "not be renewed): deployed again")
                        manager.remove_service(service_id)
                        raise docker.errors.NotFound("lapsed")
                except docker.errors.NotFound:
                    service_id = _deploy_again(manager, network, self.settings.image, self.run, self._lease_until)
                    with self._lock:
                        self._services[network] = service_id
                    self._deployed_at[network] = time.monotonic()
                    redeployed.append(network)
                    tasks, failures = agent.wait_for_tasks(manager, service_id, network, nodes,
                                                           self.settings.deploy_timeout)
                    return service_id, tasks, failures
                tasks, failures = agent.agent_tasks(raw, network)
                return service_id, tasks, {n: why for n, (_count, why) in failures.items() if n in nodes}
        for network, service_id in list(self._services.items()):
            try:
                service_id, tasks, failures = await self._call(refresh, network, service_id)
            except ENGINE_ERRORS as exc:
                self._problem(f"{network}: checking the probe agents: {describe_error(exc)}")
                continue
            self._agents[network] = tasks
            self._agent_failures[network] = failures
        known = {key for key, caps in self._caps.items() if not isinstance(caps, str)}
        if any((network, t.node_id) not in known for network, tasks in self._agents.items() for t in tasks):
            await self._check_images(snapshot)
        return redeployed

    def _lapsed(self, network: str, completed: dict[str, str], nodes: set[str]) -> set[str]:
        """Of these nodes, those whose agent ended because its lease lapsed: ended by itself, and not renewed for a
        lease (an agent stopped with its engine, say, is swarm's to start again). Only nodes whose engine is
        reached are given: elsewhere a new agent would lapse again (and each re-deploy restarts every agent)."""
        now = time.monotonic()
        since = self._deployed_at.get(network, now)
        return {node for node, container in completed.items()
                if node in nodes and now - self._renewed.get(container, since) >= self.run.lease}

    def totals(self) -> dict[tuple[str, str, str], tuple[int, int]]:
        """(network, src, dst) -> (ping packets sent, received) since the session started: counters."""
        return dict(self._totals)

    async def close(self) -> None:
        """Remove this run's agents. The lease renewal is told to stop first but not waited for: a renewal in
        flight (an exec per agent, slow on a loaded node) must not hold the removal past the caller's bound; it
        finds the services gone and ends."""
        self._renewal_stop.set()
        if self._manager_url and (self._services or self._anchors):
            with self._lock:
                services = [*self._services.values(), *self._anchors.values()]
                self._services.clear()
                self._anchors.clear()

            def remove() -> None:
                with self._client(self._manager_url, 30) as manager:
                    agent.remove(manager, services)
            try:
                await self._call(remove)
            except ENGINE_ERRORS:
                pass  # they stop within a lease, and a later run removes their services (found by label)
        await asyncio.get_running_loop().run_in_executor(None, self._stop_renewal, 5.0)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------------- lease

    def _start_renewal(self) -> None:
        if self._renewal is None:
            self._renewal = threading.Thread(target=self._renew_loop, name="overlaytui-lease", daemon=True)
            self._renewal.start()

    def _stop_renewal(self, wait: float = 40.0) -> None:
        self._renewal_stop.set()
        if self._renewal is not None:
            self._renewal.join(wait)

    def _renew_loop(self) -> None:
        """Renew this run's lease every fifth of it, in its own thread: never delayed by the probes filling the
        executor, nor by the event loop. A renewal that fails is a problem; the next one tries again (an agent
        stops only after a whole lease without one)."""
        period = max(1.0, self.run.lease / 5)
        while not self._renewal_stop.wait(period):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - the thread must go on: the next renewal tries again
                self._problem(f"renewing the probe agents' lease: {describe_error(exc)}")

    def renew(self) -> None:
        """Renew the lease once (blocking): a new token written into each running agent (and anchor) through its
        node's engine, then each service's lease-until label."""
        with self._lock:
            services = [*self._services.items(), *self._anchors.items()]
            anchors = set(self._anchors.values())
        if not services or not self._manager_url:
            return
        self._renewals += 1
        token = f"{self.run.token}.{self._renewals}"
        engines = {e.node_id: e.endpoint for e in self._snapshot_of().engines if e.node_id and e.health is Health.OK}
        with self._client(self._manager_url, 30) as manager, ThreadPoolExecutor(
                max_workers=8, thread_name_prefix="overlaytui-lease-exec") as pool:
            for network, service_id in services:
                try:
                    tasks = agent.running_tasks(manager, service_id, network)
                except docker.errors.NotFound:
                    continue  # removed: keep_agents deploys it again, with a fresh lease
                missing = service_id in anchors and not any(t.node_id in engines for t in tasks)
                self._anchor_misses[service_id] = self._anchor_misses.get(service_id, 0) + 1 if missing else 0
                if self._anchor_misses[service_id] >= 2:  # twice in a row: not just starting
                    self._problem(f"{network}: the lease anchor of the agents reporting through the service logs "
                                  "is not running (or its node is not reachable): they stop within a lease")
                reachable = [t for t in tasks if t.node_id in engines]
                for task, error in zip(reachable, pool.map(
                        lambda t: self._renew_agent(engines[t.node_id], t.container_id, token), reachable),
                        strict=True):
                    if not error:
                        self._renewed[task.container_id] = time.monotonic()
                    else:
                        self._problem(f"{network}: renewing the probe agent's lease in {task.container_id[:12]}: "
                                      f"{error}")
                try:
                    agent.renew_service(manager, service_id, self._lease_until())
                except docker.errors.NotFound:
                    continue

    def _renew_agent(self, url: str, container: str, token: str) -> str:
        """"" when the agent has the new token, else why not."""
        try:
            with self._client(url, 15) as api:
                agent.renew_agent(api, container, token)
        except ENGINE_ERRORS as exc:
            return describe_error(exc)
        except agent.RenewFailed as exc:
            return str(exc)
        return ""

    # ------------------------------------------------------------------------------------------ rounds

    def _plan(self, snapshot: ClusterSnapshot) -> None:
        """Which nodes each overlay's pairs are expected between (Ready and active), and why a pair cannot be
        measured this round (no agent, no engine connection, a tool missing in the image)."""
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        expected_ids = [n.id for n in snapshot.nodes if n.state == "ready" and n.availability == "active"]
        engines = {e.node_id for e in snapshot.engines if e.node_id and e.health is Health.OK}
        self._why = {}
        self._version += 1  # what is expected, and why not, changed
        for network, tasks in self._agents.items():
            self._expected[network] = tuple(hostnames[n] for n in expected_ids)
            running = {t.node_id for t in tasks}
            failures = self._agent_failures.get(network, {})
            for src in expected_ids:
                for dst in expected_ids:
                    if src == dst:
                        continue
                    for kind in self.settings.kinds:
                        why = self._why_not(network, kind, src, dst, running, failures, engines, hostnames)
                        if why:
                            self._why[(kind, network, hostnames[src], hostnames[dst])] = why

    def _why_not(self, network, kind, src, dst, running, failures, engines, hostnames) -> str:
        for node in (src, dst):
            if node not in running:
                why = failures.get(node, "none was running when probing started")
                return f"no probe agent on {hostnames[node]}: {why}"
        if self.via_logs:
            return "" if kind == "ping" else "needs each node's engine (agents report through the service logs)"
        if src not in engines:
            return f"no engine connection to {hostnames[src]}"
        caps = self._caps.get((network, src))
        if isinstance(caps, str):
            return caps
        if caps is not None:
            return unavailable((kind,), caps, self.settings.image).get(kind, "")
        return ""

    def jobs(self, snapshot: ClusterSnapshot, with_iperf: bool = True, sources: Sequence[str] | None = None
             ) -> list[ProbeJob]:
        """The round's jobs: from each source node (hostname; None: every node) to every other node, the
        `sources` in their order (the selected node first)."""
        self._plan(snapshot)
        order = {name: i for i, name in enumerate(sources)} if sources is not None else None
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        engines = {e.node_id: e.endpoint for e in snapshot.engines if e.node_id and e.health is Health.OK}
        jobs: list[ProbeJob] = []
        s = self.settings
        for network, tasks in self._agents.items():
            net = snapshot.network(network)
            effective = net.effective_mtu if net else 1450
            by_node = {t.node_id: t for t in tasks if t.node_id in hostnames}
            planned = [t for t in by_node.values() if t.node_id in engines]
            if order is not None:
                planned = sorted((t for t in planned if hostnames[t.node_id] in order),
                                 key=lambda t: order[hostnames[t.node_id]])
            else:  # the selected node's jobs first
                planned.sort(key=lambda t: hostnames[t.node_id] != self.focus)
            for src in planned:
                src_name = hostnames[src.node_id]
                caps = self._caps.get((network, src.node_id))
                caps = caps if isinstance(caps, Capabilities) else None
                others = {hostnames[t.node_id]: t.address for t in by_node.values() if t.node_id != src.node_id}
                to = {kind: {dst: address for dst, address in others.items()
                             if (kind, network, src_name, dst) not in self._why} for kind in s.kinds}
                url = engines[src.node_id]
                if targets := to.get("ping"):
                    run = partial(self._call, self._ping, url, src.container_id, network, src_name, targets, caps)
                    jobs.append(ProbeJob("ping", network, run, _pairs(src_name, targets),
                                         timeout=s.count * s.interval + 30))
                if targets := to.get("discovery"):
                    dst, address = next(iter(sorted(targets.items())))
                    jobs.append(ProbeJob("discovery", network, partial(self._discovery, url, src.container_id,
                                                                       network, src_name, dst, address),
                                         ((src_name, dst),)))
                if targets := to.get("mtu"):  # every destination searched at once, in one exec
                    jobs.append(ProbeJob("mtu", network, partial(self._mtu_sweep, url, src.container_id, network,
                                                                 src_name, targets, effective, caps),
                                         _pairs(src_name, targets),
                                         timeout=max(s.timeout, runner.mtu_seconds(len(targets), effective) + 15)))
                if with_iperf:
                    for dst, address in to.get("iperf", {}).items():
                        jobs.append(ProbeJob("iperf", network, partial(self._iperf, url, src.container_id, network,
                                                                       src_name, dst, address),
                                             ((src_name, dst),), exclusive_nodes=(src_name, dst),
                                             timeout=s.iperf_seconds + 30))
        return jobs

    def _ping(self, url, container, network, src, targets, caps) -> list[ProbeResult]:
        s = self.settings
        try:
            with self._client(url, s.count * s.interval + 20) as api:
                return runner.ping_sweep(api, container, network, src, targets, s.count, s.interval, caps)
        except ENGINE_ERRORS as exc:
            return [ProbeResult("ping", network, src, dst, time.time(), error=f"exec on {src}: {describe_error(exc)}")
                    for dst in targets]

    async def _mtu_sweep(self, url, container, network, src, targets: dict[str, str], effective, caps
                         ) -> list[ProbeResult]:
        def run() -> list[ProbeResult]:
            try:
                with self._client(url, runner.mtu_seconds(len(targets), effective) + 15) as api:
                    return runner.mtu_sweep(api, container, network, src, targets, effective, caps)
            except ENGINE_ERRORS as exc:
                return [ProbeResult("mtu", network, src, dst, time.time(), error=f"exec on {src}: "
                                    f"{describe_error(exc)}") for dst in targets]
        return await self._call(run)

    async def _discovery(self, url, container, network, src, dst, address) -> list[ProbeResult]:
        def run() -> ProbeResult:
            try:
                with self._client(url, 30) as api:
                    return runner.discovery(api, container, network, src, dst, self.service_name(network),
                                            address)
            except ENGINE_ERRORS as exc:
                return ProbeResult("discovery", network, src, dst, time.time(),
                                   error=f"exec on {src}: {describe_error(exc)}")
        return [await self._call(run)]

    async def _iperf(self, url, container, network, src, dst, address) -> list[ProbeResult]:
        seconds = self.settings.iperf_seconds

        def run() -> ProbeResult:
            try:
                with self._client(url, seconds + 20) as api:
                    return runner.throughput(api, container, network, src, dst, address, seconds)
            except ENGINE_ERRORS as exc:
                return ProbeResult("iperf", network, src, dst, time.time(),
                                   error=f"exec on {src}: {describe_error(exc)}")
        return [await self._call(run)]

    async def run_round(self, on_result=lambda result: None) -> list[ProbeResult]:
        snapshot = self._snapshot_of()

        def keep(result: ProbeResult) -> None:
            self._record(result)
            on_result(result)
        self.rounds += 1
        try:
            if self.via_logs:  # the agents ping every peer by themselves: the full mesh
                self._plan(snapshot)
                return await self._round_via_logs(snapshot, keep)
            plan = self.next_plan(snapshot)
            self._plan_now = plan
            self._version += 1
            scheduler = ProbeScheduler(concurrency=self.settings.concurrency, timeout=self.settings.timeout)
            # throughput every Nth *cycle* of the plan (each round of it): every source gets its turn with iperf
            # (every Nth round alone would miss the sources whose turns never fall on one)
            with_iperf = (self.rounds - 1) // plan.every % max(1, self.settings.iperf_every_rounds) == 0
            # the full mesh: every node with an agent probes (also one not Ready, whose pairs say why)
            return await scheduler.run(self.jobs(snapshot, with_iperf, None if plan.full else plan.sources), keep)
        finally:
            self._completed = self.rounds
            self._version += 1

    def next_plan(self, snapshot: ClusterSnapshot) -> RoundPlan:
        """The next round's sources (plan.py): every expected node while the full mesh fits the round's budget
        (shared by the overlays), else the rotation after the previous round's, the selected node first."""
        expected = [n.hostname for n in snapshot.nodes if n.state == "ready" and n.availability == "active"]
        budget = self.settings.round_pairs
        if budget > 0:
            budget = max(1, budget // max(1, len(self._agents)))
        last = self._plan_now.last if self._plan_now is not None else None
        return plan_round(expected, last, budget, self.focus)

    @property
    def every(self) -> int:
        """Rounds in which every pair is measured at least once (1: each round is the full mesh)."""
        return self._plan_now.every if self._plan_now is not None else 1

    async def _round_via_logs(self, snapshot: ClusterSnapshot, keep) -> list[ProbeResult]:
        """Wait (bounded) until every agent reported a round newer than the last one read, then read it."""
        s = self.settings
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        results: list[ProbeResult] = []
        try:
            manager = await self._call(self._client, self._manager_url, 30)
        except ENGINE_ERRORS as exc:
            self._problem(f"reading the agents' reports: {describe_error(exc)}")
            return results
        for network, service_id in self._services.items():
            tasks = [t for t in self._agents.get(network, []) if t.node_id in hostnames]
            node_of_ip = {t.address: t.node_id for t in tasks}
            wanted = [(a.node_id, b.address) for a in tasks for b in tasks if a.node_id != b.node_id]
            target = self._log_rounds.get(network, 0) + 1
            deadline = time.monotonic() + s.count * s.interval + s.report_every + 60
            reports: dict = {}
            while True:
                try:
                    reports = await self._call(agent.read_reports, manager, service_id)
                except ENGINE_ERRORS as exc:
                    self._problem(f"{network}: reading the agents' reports: {describe_error(exc)}")
                    break
                if all(reports.get(key, (0, ""))[0] >= target for key in wanted) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1.0)
            self._log_rounds[network] = max([target] + [r for r, _ in reports.values()])
            for src_node, address in wanted:
                src, dst = hostnames[src_node], hostnames[node_of_ip[address]]
                round_, text = reports.get((src_node, address), (0, ""))
                if round_ < target:
                    result = ProbeResult("ping", network, src, dst, time.time(),
                                         error=f"no report from {src}'s agent within the deadline")
                else:
                    result = runner.ping_result(network, src, dst, text)
                keep(result)
                results.append(result)
        manager.close()
        return results

    # ----------------------------------------------------------------------------------------- results

    def _record(self, result: ProbeResult) -> None:
        key = (result.network, result.src_node, result.dst_node)
        if result.kind == "ping" and result.measured:
            sent, received = self._totals.get(key, (0, 0))
            self._totals[key] = (sent + result.sent, received + result.received)
            since = result.measured_at - self.settings.window_s  # bounded by the window (rounds are seconds apart)
            self._rounds[key] = (*(p for p in self._rounds.get(key, ()) if p[0] >= since),
                                 (result.measured_at, result.sent, result.received))
        self._latest[(result.kind, *key)] = result
        if result.measured:
            self._measured_in[(result.kind, *key)] = self.rounds
        self._version += 1

    def state(self) -> ProbeState:
        """The results as they are now, frozen: the same object until something changes. Cheap (shallow copies
        of dicts whose values are immutable); what is derived from it is computed by whoever reads it, off the
        event loop if they like (the dashboard's frame producer does)."""
        version = (self._version, self.rounds)
        if self._state is None or self._state_version != version:
            self._state = ProbeState(dict(self._latest), dict(self._rounds), dict(self._totals),
                                     dict(self._expected), dict(self._why), self.settings.kinds,
                                     self.settings.window_s, self.rounds, dict(self._measured_in),
                                     self._kind_every(), self._completed)
            self._state_version = version
        return self._state

    def _kind_every(self) -> dict[str, int]:
        """kind -> the rounds within which each of its pairs is measured: the plan's; iperf runs in one cycle of
        the plan out of `iperf_every_rounds`, so two of its turns are up to every x (N + 1) - 1 rounds apart."""
        every = self.every
        iperf = every * max(1, self.settings.iperf_every_rounds) + every - 1
        return {kind: iperf if kind == "iperf" else every for kind in self.settings.kinds}

    def probe_results(self, network: str | None = None) -> tuple[ProbeResult, ...]:
        return self.state().probe_results(network)

    def recent_results(self, network: str | None = None) -> tuple[ProbeResult, ...]:
        return self.state().recent_results(network)

    def windows(self, network: str) -> Mapping[tuple[str, str], PairWindow]:
        return self.state().windows(network)

    def coverage(self, network: str | None = None) -> tuple[Coverage, ...]:
        return self.state().coverage(network)


@dataclass(frozen=True)
class ProbeState:
    """A session's results at one moment (immutable: safe to read from any thread)."""

    latest: Mapping[tuple[str, str, str, str], ProbeResult]  # (kind, network, src, dst) -> the latest result
    rounds: Mapping[tuple[str, str, str], tuple[tuple[float, int, int], ...]]  # measured pings in the window
    totals: Mapping[tuple[str, str, str], tuple[int, int]]  # pings sent/received since start
    expected: Mapping[str, tuple[str, ...]]  # network -> hostnames expected to run an agent
    why: Mapping[tuple[str, str, str, str], str]  # (kind, network, src, dst) -> why not measured
    kinds: tuple[str, ...]
    window_s: float
    round_count: int  # rounds started (the latest one may be in progress)
    # (kind, network, src, dst) -> the round its latest measurement was made in; None: not tracked (a state made
    # from results alone), where the latest result measured counts
    measured_in: Mapping[tuple[str, str, str, str], int] | None = None
    every: Mapping[str, int] = field(default_factory=dict)  # kind -> each pair measured once every N rounds
    completed: int | None = None  # rounds that ended (None: all of them)
    _windows: dict = field(default_factory=dict, compare=False, repr=False)  # network -> windows, computed once

    def probe_results(self, network: str | None = None) -> tuple[ProbeResult, ...]:
        """Latest results per pair, each with its own round's counts (`loss_pct` is that round's loss)."""
        return tuple(r for (_kind, net, _s, _d), r in self.latest.items() if network in (None, net))

    def recent_results(self, network: str | None = None) -> tuple[ProbeResult, ...]:
        """Latest results per pair, ping counts summed over the recent window: what the findings judge (a round
        alone is too few packets for a firm verdict; everything since start never clears)."""
        results = []
        for result in self.probe_results(network):
            past = self.rounds.get((result.network, result.src_node, result.dst_node))
            if result.kind == "ping" and result.measured and past:
                result = replace(result, sent=sum(p[1] for p in past), received=sum(p[2] for p in past))
            results.append(result)
        return tuple(results)

    def windows(self, network: str) -> Mapping[tuple[str, str], PairWindow]:
        """(src, dst) -> the pair's ping counts for the last round, the recent window and since start."""
        found = self._windows.get(network)
        if found is not None:
            return found
        found = {}
        for (net, src, dst), past in self.rounds.items():
            if net != network or not past:
                continue
            _at, round_sent, round_received = past[-1]
            total_sent, total_received = self.totals[(net, src, dst)]
            found[(src, dst)] = PairWindow(net, src, dst, round_sent, round_received, sum(p[1] for p in past),
                                           sum(p[2] for p in past), total_sent, total_received, self.window_s)
        self._windows[network] = found
        return found

    def coverage(self, network: str | None = None) -> tuple[Coverage, ...]:
        """Per overlay and kind: pairs expected, pairs measured — in the last `every` rounds of the plan (and the
        round in progress): an older measurement is not one — how many of them in the latest round, and why each
        other pair is not measured."""
        found = []
        completed = self.round_count if self.completed is None else self.completed
        for net, hosts in sorted(self.expected.items(), key=lambda kv: natural_key(kv[0])):
            if network not in (None, net):
                continue
            for kind in self.kinds:
                every = self.every.get(kind, 1)
                since = completed - every + 1  # the oldest round that still counts
                measured, now, missing = 0, 0, []
                for src in hosts:
                    # discovery runs once per node (towards one other node): its unit is the source node
                    dsts = [d for d in hosts if d != src]
                    if kind == "discovery":
                        dsts = [self._discovery_target(net, src, dsts)] if dsts else []
                    for dst in dsts:
                        key = (kind, net, src, dst)
                        result = self.latest.get(key)
                        in_round = None
                        if result is not None and result.measured:  # the latest result, not an older one
                            in_round = self.round_count if self.measured_in is None else self.measured_in.get(key)
                        if in_round is not None and in_round >= since:
                            measured += 1
                            now += in_round == self.round_count
                            continue
                        reason = self.why.get(key) or (result.error if result else "")
                        if not reason and in_round is not None:
                            ago = self.round_count - in_round
                            reason = f"last measured {ago} round{'' if ago == 1 else 's'} ago"
                        if not reason and every > 1:
                            reason = f"not probed yet: each pair is probed once every {every} rounds"
                        missing.append(PairGap(src, dst, reason or "no result yet"))
                found.append(Coverage(net, kind, measured + len(missing), measured, tuple(missing), every,
                                      now if self.measured_in is not None else None))
        return tuple(found)

    def _discovery_target(self, network: str, src: str, candidates: list[str]) -> str:
        """The node src's discovery probe went to (the latest result's), else the first candidate."""
        done = [r for (kind, net, s, _d), r in self.latest.items() if (kind, net, s) == ("discovery", network, src)]
        return max(done, key=lambda r: r.measured_at).dst_node if done else min(candidates, key=natural_key)

    def data(self, problem: str = "") -> ProbeData:
        """Everything the panes and the findings read, per overlay, computed at once."""
        networks = natural_sorted({net for (_k, net, _s, _d) in self.latest} | set(self.expected))
        recent = self.recent_results()
        by_network: dict[str, list[ProbeResult]] = {net: [] for net in networks}
        for result in recent:
            by_network[result.network].append(result)
        return ProbeData(recent={net: tuple(rs) for net, rs in by_network.items()},
                         windows={net: self.windows(net) for net in networks}, coverage=self.coverage(),
                         totals=dict(self.totals), rounds=self.round_count, problem=problem)


def _deploy_again(manager: docker.APIClient, network: str, image: str, run: agent.Run, lease_until) -> str:
    """This run's service, deployed again under its own name (a removal frees the name at once on the
    managers seen so far; a conflict is retried briefly)."""
    for attempt in range(10):
        try:
            return agent.deploy(manager, network, image, run, lease_until())
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or attempt == 9:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _pairs(src: str, targets: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((src, dst) for dst in targets)
