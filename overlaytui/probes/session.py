"""A probing session on a real cluster: agents deployed on the chosen overlays, rounds of probes between every
pair of nodes, results accumulated (so verdicts can become honest with more samples), agents always removed.

Probes run from a node's agent task through that node's engine (`docker exec`): pairs from nodes without an
engine connection are missing, and the session says so.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial

import docker

from ..model import ClusterSnapshot, Health, ProbeResult
from ..sources.endpoints import EndpointSpec
from ..sources.errors import ENGINE_ERRORS, describe_error
from . import agent, runner
from .mtu import MIN_MTU, find_path_mtu
from .scheduler import DEFAULT_CONCURRENCY, ProbeJob, ProbeScheduler

KINDS = ("ping", "mtu", "iperf", "discovery")


class ProbeError(Exception):
    """Probing cannot start (no manager, unknown network...): one line."""


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
    history: int = 360  # results kept per pair and kind (for charts)
    report_every: float = 5.0  # logs mode: the agents' pause between rounds


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
        self._services: dict[str, str] = {}  # network -> probe service id
        self._agents: dict[str, list[agent.AgentTask]] = {}
        self._latest: dict[tuple[str, str, str, str], ProbeResult] = {}
        self._history: dict[tuple[str, str, str, str], deque[ProbeResult]] = {}
        self.rounds = 0
        self._totals: dict[tuple[str, str, str], tuple[int, int]] = {}
        self.problems: list[str] = []
        self.removed_leftovers: list[str] = []
        self.via_logs = settings.via_logs
        self._log_rounds: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------- setup

    def _client(self, url: str, timeout: float | None = None) -> docker.APIClient:
        return docker.APIClient(base_url=url, timeout=timeout or self.call_timeout, version="auto",
                                use_ssh_client=url.startswith("ssh://"), tls=self._tls.get(url))

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

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
                self.problems.append("agents report through the service logs: ping only (path MTU, throughput "
                                     "and discovery need each node's engine)")
        manager = self._client(self._manager_url, 30)
        try:
            self.removed_leftovers = await self._call(agent.remove_leftovers, manager)
            for network in wanted:
                self._services[network] = await self._call(agent.deploy, manager, network, self.settings.image,
                                                           report)
            for network, service_id in self._services.items():
                self._agents[network] = await self._call(agent.wait_for_tasks, manager, service_id, network, nodes,
                                                         self.settings.deploy_timeout)
        except ENGINE_ERRORS as exc:
            await self.close()
            raise ProbeError(f"creating the probe agents: {describe_error(exc)}") from None
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        for network, tasks in self._agents.items():
            missing = nodes - {t.node_id for t in tasks}
            if missing:
                self.problems.append(f"{network}: no probe agent running on "
                                     f"{', '.join(sorted(hostnames.get(m, m[:12]) for m in missing))}")

    async def close(self) -> None:
        if self._manager_url and self._services:
            manager = self._client(self._manager_url, 30)
            await self._call(agent.remove, manager, list(self._services.values()))
            self._services.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------------ rounds

    def jobs(self, snapshot: ClusterSnapshot, with_iperf: bool = True) -> list[ProbeJob]:
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        engines = {e.node_id: e.endpoint for e in snapshot.engines if e.node_id and e.health is Health.OK}
        jobs: list[ProbeJob] = []
        s = self.settings
        for network, tasks in self._agents.items():
            net = snapshot.network(network)
            effective = net.effective_mtu if net else 1450
            by_node = {t.node_id: t for t in tasks if t.node_id in hostnames}
            sources = [t for t in by_node.values() if t.node_id in engines]
            unreachable = sorted(hostnames[t.node_id] for t in by_node.values() if t.node_id not in engines)
            if unreachable:
                self.problems.append(f"{network}: no engine connection to {', '.join(unreachable)}: "
                                     "probes from there are missing")
            for src in sources:
                src_name = hostnames[src.node_id]
                targets = {hostnames[t.node_id]: t.address for t in by_node.values() if t.node_id != src.node_id}
                if not targets:
                    continue
                url = engines[src.node_id]
                pairs = tuple((src_name, dst) for dst in targets)
                if "ping" in s.kinds:
                    run = partial(self._call, self._ping, url, src.container_id, network, src_name, targets)
                    jobs.append(ProbeJob("ping", network, run, pairs,
                                         timeout=s.count * s.interval + 30))
                if "discovery" in s.kinds:
                    dst, address = next(iter(sorted(targets.items())))
                    jobs.append(ProbeJob("discovery", network, partial(self._discovery, url, src.container_id,
                                                                       network, src_name, dst, address),
                                         ((src_name, dst),)))
                if "mtu" in s.kinds:  # one job per source: every destination searched at once
                    jobs.append(ProbeJob("mtu", network, partial(self._mtu_sweep, url, src.container_id, network,
                                                                 src_name, targets, effective), pairs))
                for dst, address in targets.items():
                    if "iperf" in s.kinds and with_iperf:
                        jobs.append(ProbeJob("iperf", network, partial(self._iperf, url, src.container_id, network,
                                                                       src_name, dst, address),
                                             ((src_name, dst),), exclusive_nodes=(src_name, dst),
                                             timeout=s.iperf_seconds + 30))
        return jobs

    def _ping(self, url, container, network, src, targets) -> list[ProbeResult]:
        s = self.settings
        with self._client(url, s.count * s.interval + 20) as api:
            return runner.ping_sweep(api, container, network, src, targets, s.count, s.interval)

    async def _mtu_sweep(self, url, container, network, src, targets: dict[str, str], effective
                         ) -> list[ProbeResult]:
        return list(await asyncio.gather(*(self._mtu(url, container, network, src, dst, address, effective)
                                           for dst, address in targets.items())))

    async def _mtu(self, url, container, network, src, dst, address, effective) -> ProbeResult:
        api = self._client(url, 15)

        async def passes(size: int) -> bool:
            return await self._call(runner.df_ping_passes, api, container, address, size)
        try:
            # the first packets between new tasks can be lost while the overlay learns its neighbours: search
            # only once a small packet gets through (else a lost probe would read as a smaller path MTU)
            for attempt in range(3):
                if await passes(MIN_MTU):
                    break
                await asyncio.sleep(1.0 + attempt)
            path = await find_path_mtu(passes, effective)
        except ENGINE_ERRORS as exc:
            return ProbeResult("mtu", network, src, dst, time.time(), error=f"exec on {src}: {describe_error(exc)}")
        finally:
            api.close()
        if path is None:
            return ProbeResult("mtu", network, src, dst, time.time(), error="no packet of any size arrives")
        return ProbeResult("mtu", network, src, dst, time.time(), path_mtu=path)

    async def _discovery(self, url, container, network, src, dst, address) -> list[ProbeResult]:
        def run() -> ProbeResult:
            with self._client(url, 30) as api:
                return runner.discovery(api, container, network, src, dst, agent.service_name(network), address)
        return [await self._call(run)]

    async def _iperf(self, url, container, network, src, dst, address) -> list[ProbeResult]:
        seconds = self.settings.iperf_seconds

        def run() -> ProbeResult:
            with self._client(url, seconds + 20) as api:
                return runner.throughput(api, container, network, src, dst, address, seconds)
        return [await self._call(run)]

    async def run_round(self, on_result=lambda result: None) -> list[ProbeResult]:
        snapshot = self._snapshot_of()

        def keep(result: ProbeResult) -> None:
            self._record(result)
            on_result(result)
        self.rounds += 1
        if self.via_logs:
            return await self._round_via_logs(snapshot, keep)
        scheduler = ProbeScheduler(concurrency=self.settings.concurrency, timeout=self.settings.timeout)
        with_iperf = (self.rounds - 1) % max(1, self.settings.iperf_every_rounds) == 0
        return await scheduler.run(self.jobs(snapshot, with_iperf), keep)

    async def _round_via_logs(self, snapshot: ClusterSnapshot, keep) -> list[ProbeResult]:
        """Wait (bounded) until every agent reported a round newer than the last one read, then read it."""
        s = self.settings
        hostnames = {n.id: n.hostname for n in snapshot.nodes}
        manager = self._client(self._manager_url, 30)
        results: list[ProbeResult] = []
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
                    self.problems.append(f"{network}: reading the agents' reports: {describe_error(exc)}")
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
        if result.kind == "ping" and not result.error:
            sent, received = self._totals.get(key, (0, 0))
            self._totals[key] = (sent + result.sent, received + result.received)
        self._latest[(result.kind, *key)] = result
        past = self._history.get((result.kind, *key))
        if past is None:
            past = self._history[(result.kind, *key)] = deque(maxlen=self.settings.history)
        past.append(result)

    def history(self, kind: str, network: str, src: str, dst: str) -> list[ProbeResult]:
        """Every kept result of one pair and kind, oldest first (each round's own counts)."""
        return list(self._history.get((kind, network, src, dst), ()))

    def probe_results(self, network: str | None = None) -> tuple[ProbeResult, ...]:
        """Latest results per pair; ping results carry the counts accumulated over all rounds."""
        results = []
        for (kind, net, src, dst), result in self._latest.items():
            if network not in (None, net):
                continue
            if kind == "ping" and not result.error and (net, src, dst) in self._totals:
                sent, received = self._totals[(net, src, dst)]
                result = replace(result, sent=sent, received=received)
            results.append(result)
        return tuple(results)
