"""A simulated swarm for `overlaytui --demo`: the same interface as the real source, deterministic for a seed
and a clock, so the UI cannot tell it apart and the tests can pin every number.

Everything that moves is a function of (seed, elapsed seconds): traffic has a daily-ish wave, noise and bursts;
scenarios change the cluster at fixed times after the start.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..flags import SCENARIOS  # what each scenario shows (declared with the command line)
from ..model import (
    ClusterSnapshot,
    ContainerStats,
    Coverage,
    Engine,
    Health,
    InterfaceStats,
    Network,
    NetworkService,
    NetworkView,
    Node,
    PairGap,
    PairWindow,
    Peer,
    ProbeData,
    ProbeResult,
    Service,
    ServiceEndpoint,
    Task,
    TaskAddress,
    VirtualIP,
    natural_key,
)

SERVICE_NAMES = ["web", "api", "auth", "cache", "worker", "payments", "search", "metrics"]
OVERLAY_NAMES = ["frontend", "backend", "payments-secure"]
NODE_DOWN_AFTER = 8.0  # soon enough to be on the first screen; late enough to be seen happening
UPDATE_STEP = 10.0  # seconds between two tasks of the rolling update
UPDATE_DELAY = 3.0  # the first task is replaced this long after the start (the update was just asked for)
UPDATE_STARTING = 4.0  # seconds a replacement task spends starting (the old one already shut down)
PROBE_HISTORY = 3600.0  # probes behave as if they had been running for an hour at start
PROBE_RATE = 10.0  # packets per second per pair (100 packets every 10 s)
PROBE_ROUND = 10.0  # seconds between probe rounds
PROBED_OVERLAYS = 3  # the simulated probes cover the first three overlays, as `--network` would choose them: at
# 200 nodes that is 238,800 results a round (all twelve overlays would be 955,200: ~9 s of one core per round just
# to make them up, more than any real round at that size could measure)
RECENT_WINDOW = 300.0  # seconds: the recent window of the Loss pane


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (stable across runs and Python versions)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _id(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=13).hexdigest()[:25]


@dataclass(frozen=True)
class _Plan:
    """The static shape of the simulated cluster."""

    nodes: tuple[Node, ...]
    services: tuple[Service, ...]
    networks: tuple[Network, ...]
    service_networks: dict[str, tuple[str, ...]]  # service id -> overlay names


class DemoSource:
    def __init__(
        self,
        scenario: str = "healthy",
        seed: int = 1,
        scale: tuple[int, int, int] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown demo scenario {scenario!r}: choose from {', '.join(SCENARIOS)}")
        self.scenario = scenario
        self.seed = seed
        self.clock = clock
        nodes, services, tasks = scale or (5, 8, 0)
        if nodes < 1 or services < 1 or tasks < 0:
            raise ValueError("--demo-scale needs NODES >= 1, SERVICES >= 1, TASKS >= 0")
        self._scale = (nodes, services, tasks)
        # a round takes longer with more nodes, as a real one does: 10 s up to 39 nodes, 100 s at 200
        self._round = PROBE_ROUND * max(1, nodes // 20)
        self._start = clock()
        self._plan = self._build_plan()
        self._service_static = {  # per service: a CPU factor and the memory its tasks use
            s.name: (_unit(seed, "cpu", s.name), int((40 + 400 * _unit(seed, "mem", s.name)) * 2**20))
            for s in self._plan.services}
        self._container_names: tuple = ()
        self._tasks: tuple[Task, ...] = ()
        self._containers: tuple[tuple[Task, Service], ...] = ()
        self._topology_at: object = None
        self._networks_now: tuple[Network, ...] = ()
        self._nodes_now: tuple[Node, ...] = ()
        self._services_now: tuple[Service, ...] = ()
        self._probe_cache: tuple[object, tuple[ProbeResult, ...]] | None = None
        self._window_cache: tuple[tuple[ProbeResult, ...], ProbeData] | None = None
        self._pairs: dict[tuple[str, str, str], tuple[float, float, tuple[float, float, float, float]]] = {}
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------------------------- interface

    call_timeout = 0.0
    endpoints: tuple = ()  # no engines: the probe results are simulated (`probes`)
    playback = None  # live (simulated)

    @property
    def name(self) -> str:
        scale = f" ({','.join(map(str, self._scale))})" if self._scale != (5, 8, 0) else ""
        return f"demo: {self.scenario}{scale}"

    async def start(self) -> None:
        await self.poll()

    async def close(self) -> None:
        return None

    async def poll(self) -> None:
        self._refresh_topology()

    async def wait_for_change(self, timeout: float, debounce: float = 0.1) -> bool:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        self._changed.clear()
        return True

    async def wait_for_stats(self, timeout: float) -> bool:
        return True

    @property
    def elapsed(self) -> float:
        return max(0.0, self.clock() - self._start)

    def snapshot(self) -> ClusterSnapshot:
        now = self.clock()
        if self._topology_changed_since_poll():
            self._changed.set()
        nodes = self._nodes_now  # the topology as of the last poll, as with real engines
        down = {n.id for n in nodes if n.state != "ready"}
        engines = tuple(
            Engine(endpoint=f"demo://{n.hostname}", health=Health.ERROR if n.id in down else Health.OK,
                   message="connection refused (engine not running?)" if n.id in down else "",
                   node_id=n.id, hostname=n.hostname, role=n.role, version=n.engine_version,
                   updated_at=None if n.id in down else now)
            for n in nodes
        )
        return ClusterSnapshot(
            taken_at=now,
            engines=engines,
            swarm_id=_id("swarm", self.seed),
            nodes=nodes,
            services=self._services_now,
            tasks=self._tasks,
            networks=self._networks_now,
            containers=self._container_stats(now, down),
            problems=(),
        )

    def probe_results(self, network: str | None = None) -> tuple[ProbeResult, ...]:
        """Simulated ping and path-MTU results between every node pair of one overlay (all overlays when
        `network` is None: mind the size, N x (N-1) x 2 per overlay)."""
        round_key = (network, int(self.elapsed // self._round), self._topology_key())
        if self._probe_cache is not None and self._probe_cache[0] == round_key:
            return self._probe_cache[1]
        now = self.clock()
        results = []
        sent = int((PROBE_HISTORY + self.elapsed // self._round * self._round) * PROBE_RATE)
        down = {n.hostname for n in self._node_states() if n.state != "ready"}
        hosts = [n.hostname for n in self._plan.nodes]
        for net in [n for n in self._plan.networks if not n.ingress][:PROBED_OVERLAYS]:
            if network not in (None, net.name):
                continue
            for src in hosts:
                for dst in hosts:
                    if src == dst:
                        continue
                    results.append(self._ping(net, src, dst, sent, now, down))
                    results.append(self._mtu(net, src, dst, now, down))
        self._probe_cache = (round_key, tuple(results))
        return self._probe_cache[1]

    def probes(self) -> ProbeData:
        """Every overlay's simulated results and windows; the same object for a whole probe round."""
        results = self.probe_results()
        if self._window_cache is not None and self._window_cache[0] is results:
            return self._window_cache[1]
        per_network: dict[str, list[ProbeResult]] = {}
        for result in results:
            per_network.setdefault(result.network, []).append(result)
        coverage = []
        for net, found in per_network.items():
            for kind in ("ping", "mtu"):
                of_kind = [r for r in found if r.kind == kind]
                missing = tuple(PairGap(r.src_node, r.dst_node, r.error) for r in of_kind if not r.measured)
                coverage.append(Coverage(net, kind, len(of_kind), len(of_kind) - len(missing), missing))
        data = ProbeData(recent={net: tuple(rs) for net, rs in per_network.items()},
                         windows={net: self._windows(rs) for net, rs in per_network.items()},
                         coverage=tuple(coverage), rounds=int(self.elapsed // self._round) + 1)
        self._window_cache = (results, data)
        return data

    @staticmethod
    def _windows(results) -> dict[tuple[str, str], PairWindow]:
        """The simulated pairs' counts at the three horizons (last round, the recent 5 minutes, since start),
        from the same loss rates as the results."""
        windows = {}
        per_round, recent = int(PROBE_RATE * PROBE_ROUND), int(PROBE_RATE * RECENT_WINDOW)
        for r in results:
            if r.kind != "ping" or not r.measured:
                continue
            kept = r.received / r.sent if r.sent else 0.0
            windows[(r.src_node, r.dst_node)] = PairWindow(
                r.network, r.src_node, r.dst_node, per_round, round(per_round * kept), recent, round(recent * kept),
                r.sent, r.received, RECENT_WINDOW)
        return windows

    # ---------------------------------------------------------------------------------------- plan

    def _build_plan(self) -> _Plan:
        n_nodes, n_services, _ = self._scale
        managers = 3 if n_nodes >= 5 else 1
        nodes = tuple(
            Node(id=_id("node", self.seed, i), hostname=f"node{i}", role="manager" if i <= managers else "worker",
                 state="ready", availability="active", address=f"10.231.{i // 250}.{i % 250}",
                 leader=i == 1, reachability="reachable" if i <= managers else "", engine_version="24.0.7")
            for i in range(1, n_nodes + 1)
        )
        overlay_names = OVERLAY_NAMES + [f"overlay-{i}" for i in range(4, max(3, n_services // 25) + 1)]
        self._prefixes = {"ingress": "10.0.0"} | {
            name: f"10.{1 + i // 200}.{i % 200}" for i, name in enumerate(overlay_names)}
        networks = [Network(id=_id("net", "ingress"), name="ingress", driver="overlay", scope="swarm",
                            subnet="10.0.0.0/24", gateway="10.0.0.1", vni=4096, configured_mtu=None,
                            encrypted=False, attachable=False, ingress=True, internal=False)]
        for i, name in enumerate(overlay_names):
            networks.append(Network(
                id=_id("net", name), name=name, driver="overlay", scope="swarm",
                subnet=f"{self._prefixes[name]}.0/24", gateway=f"{self._prefixes[name]}.1", vni=4097 + i,
                configured_mtu=1400 if name == "backend" else None, encrypted=name.endswith("secure"),
                attachable=name == "frontend", ingress=False, internal=False))
        services, service_networks = [], {}
        for i in range(n_services):
            name = SERVICE_NAMES[i] if i < len(SERVICE_NAMES) else f"svc-{i + 1:03d}"
            sid = _id("svc", name)
            nets = self._service_overlays(i, name, overlay_names)
            service_networks[sid] = nets
            mode = "global" if name == "metrics" else "replicated"
            replicas = None if mode == "global" else self._replicas(i, name)
            vip_mode = "dnsrr" if name == "cache" else "vip"
            vips = () if vip_mode == "dnsrr" else tuple(
                VirtualIP(_id("net", net), self._address(net, 2 + i)) for net in nets)
            ports = ("80->8080/tcp",) if name == "web" else ()
            if ports:
                vips = (VirtualIP(_id("net", "ingress"), f"10.0.0.{2 + i}/24"), *vips)
            services.append(Service(id=sid, name=name, mode=mode, replicas=replicas, endpoint_mode=vip_mode,
                                    vips=vips, network_ids=tuple(_id("net", n) for n in nets),
                                    image=f"registry.example/{name}:1.4", published_ports=ports))
        # the order the real source gives (sources/assemble.py): names in natural order
        services.sort(key=lambda s: natural_key(s.name))
        networks.sort(key=lambda n: natural_key(n.name))
        return _Plan(nodes, tuple(services), tuple(networks), service_networks)

    def _replicas(self, index: int, name: str) -> int:
        n_nodes, n_services, n_tasks = self._scale
        if n_tasks:
            return max(1, round(n_tasks / n_services * (0.5 + _unit(self.seed, "replicas", name))))
        return {"web": 4, "api": 3, "auth": 2, "cache": 3, "worker": 5, "payments": 2, "search": 2}.get(
            name, 1 + int(_unit(self.seed, "replicas", name) * 4))

    @staticmethod
    def _service_overlays(index: int, name: str, overlays: list[str]) -> tuple[str, ...]:
        fixed = {"web": ("frontend",), "api": ("frontend", "backend"), "auth": ("backend",), "cache": ("backend",),
                 "worker": ("backend",), "payments": ("backend", "payments-secure"), "search": ("backend",),
                 "metrics": ("frontend", "backend")}
        return fixed.get(name, (overlays[index % len(overlays)],))

    def _address(self, network: str, host: int) -> str:
        return f"{self._prefixes[network]}.{2 + host % 250}/24"

    # ------------------------------------------------------------------------------------ dynamics

    def _node_states(self) -> tuple[Node, ...]:
        if self.scenario == "node-down" and self.elapsed >= NODE_DOWN_AFTER:
            victim = f"node{len(self._plan.nodes)}"
            return tuple(replace(n, state="down") if n.hostname == victim else n for n in self._plan.nodes)
        return self._plan.nodes

    def _update_phases(self) -> tuple[int, ...]:
        """The rolling update, per slot of api: 0 the old task runs, 1 it is shut down and its replacement is
        starting, 2 the replacement runs (the old task kept as history, as `docker service ps` shows it)."""
        if self.scenario != "rolling-update":
            return ()
        api = next(s for s in self._plan.services if s.name == "api")
        phases = []
        for slot in range(1, (api.replicas or 0) + 1):
            since = self.elapsed - self._update_at(slot)
            phases.append(0 if since < 0 else 1 if since < UPDATE_STARTING else 2)
        return tuple(phases)

    def _update_at(self, slot: int) -> float:
        """Seconds after the start at which the rolling update replaces this slot's task."""
        return UPDATE_DELAY + (slot - 1) * UPDATE_STEP

    def _topology_changed_since_poll(self) -> bool:
        return self._topology_key() != self._topology_at

    def _topology_key(self):
        return (self._node_states(), self._update_phases())

    def _refresh_topology(self) -> None:
        """Place every service's tasks on the ready nodes (and keep the failed history of a node-down)."""
        self._topology_at = self._topology_key()
        nodes = self._node_states()
        ready = [n for n in nodes if n.state == "ready"]
        down = {n.id for n in nodes if n.state != "ready"}
        tasks, containers = [], []
        for service in self._plan.services:
            nets = self._plan.service_networks[service.id]
            if service.mode == "global":
                placements: list[tuple[int | None, Node | None]] = [(None, n) for n in ready]
            else:
                offset = int(_unit(self.seed, "offset", service.name) * len(self._plan.nodes))
                placements = []
                for number in range(1, (service.replicas or 0) + 1):
                    planned = self._plan.nodes[(offset + number) % len(self._plan.nodes)]
                    placed: Node | None = planned
                    if planned.id in down:
                        # rescheduled: the old task on the down node is kept as history
                        tasks.append(self._task(service, number, planned, nets, "running", "shutdown",
                                                "node is down: task rescheduled"))
                        placed = ready[(offset + number) % len(ready)] if ready else None
                    placements.append((number, placed))
            for slot, node in placements:
                if node is None:
                    tasks.append(self._task(service, slot, None, nets, "pending", "running",
                                            "no suitable node (all nodes down)"))
                    continue
                phases = self._update_phases()
                if service.name == "api" and slot is not None and phases and phases[slot - 1]:
                    at = self._start + self._update_at(slot)
                    tasks.append(self._task(service, slot, node, nets, "running", "shutdown", "", since=at))
                    state = "starting" if phases[slot - 1] == 1 else "running"
                    task = self._task(service, slot, node, nets, state, "running", "", "2.0", since=at)
                    tasks.append(task)
                    if state == "running":
                        containers.append((task, service))
                    continue
                task = self._task(service, slot, node, nets, "running", "running", "")
                tasks.append(task)
                containers.append((task, service))
        self._tasks = tuple(tasks)
        self._containers = tuple(containers)
        self._networks_now = self._networks(down)
        hostnames = {n.id: n.hostname for n in self._plan.nodes}
        self._container_names = tuple(
            (task, service, f"{task.name}.{task.id[:25]}", f"demo://{hostnames.get(task.node_id or '', '?')}")
            for task, service in self._containers)
        self._nodes_now = nodes
        self._services_now = self._service_states()

    def _task(self, service: Service, slot: int | None, node: Node | None, nets: tuple[str, ...], state: str,
              desired: str, error: str, version: str = "", since: float | None = None) -> Task:
        """`since`: when the task reached its state (else an hour before the start); a starting task has the id
        it keeps once running."""
        key = (service.name, slot, node.id if node else None, version, "running" if state == "starting" else state)
        host = int(_unit(self.seed, "ip", *key) * 240)
        return Task(
            id=_id("task", self.seed, *key),
            service_id=service.id,
            service_name=service.name,
            slot=slot,
            node_id=node.id if node else None,
            desired_state=desired,
            state=state if desired == "running" else "shutdown",
            message="started" if state == "running" else state,
            error=error,
            timestamp=since if since is not None else self._start - 3600 + 10 * (slot or 0),
            container_id=_id("ctr", self.seed, *key) if state == "running" and desired == "running" else None,
            pid=None,
            exit_code=None,
            addresses=tuple(TaskAddress(_id("net", n), n, self._address(n, host)) for n in nets),
        )

    def _service_states(self) -> tuple[Service, ...]:
        running: dict[str, int] = {}
        for task, _ in self._containers:
            running[task.service_id] = running.get(task.service_id, 0) + 1
        ready = sum(1 for n in self._node_states() if n.state == "ready")
        result = []
        for s in self._plan.services:
            desired = ready if s.mode == "global" else s.replicas
            update = ""
            if self.scenario == "rolling-update" and s.name == "api":
                update = "completed" if all(p == 2 for p in self._update_phases()) else "updating"
            result.append(replace(s, running_tasks=running.get(s.id, 0), desired_tasks=desired,
                                  update_state=update,
                                  image=s.image.replace(":1.4", ":2.0") if update else s.image))
        return tuple(result)

    def _networks(self, down: set[str]) -> tuple[Network, ...]:
        nodes = [n for n in self._node_states() if n.id not in down]
        by_net: dict[str, list[tuple[Task, Service]]] = {}
        for task, service in self._containers:
            for address in task.addresses:
                by_net.setdefault(address.network_name, []).append((task, service))
        address_of = {n.id: n.address for n in self._plan.nodes}
        hostnames = {n.id: n.hostname for n in self._plan.nodes}
        result = []
        for net in self._plan.networks:
            members = by_net.get(net.name, [])
            if net.ingress:
                members = [m for m in by_net.get("frontend", []) if m[1].published_ports]
            services: dict[str, tuple[str | None, list[ServiceEndpoint]]] = {}
            for task, service in members:
                vip = next((v.address.split("/")[0] for v in service.vips if v.network_id == net.id), None)
                endpoint_ip = next((a.address.split("/")[0] for a in task.addresses if a.network_name == net.name),
                                   "")
                entry = services.setdefault(service.name, (vip, []))
                entry[1].append(ServiceEndpoint(f"{task.name}.{task.id[:25]}", endpoint_ip,
                                                address_of.get(task.node_id or "", "")))
            net_services = tuple(NetworkService(name, vip, tuple(eps)) for name, (vip, eps) in sorted(services.items()))
            active = sorted({t.node_id for t, _ in members if t.node_id})
            peers = tuple(Peer(hostnames[nid][:12], address_of[nid]) for nid in active)
            if net.ingress:  # every node has an ingress sandbox
                active = sorted(n.id for n in nodes)
                peers = tuple(Peer(hostnames[nid][:12], address_of[nid]) for nid in active)
            views = tuple(NetworkView(nid, f"demo://{hostnames[nid]}", peers, (), net_services)
                          for nid in active if nid in {n.id for n in nodes})
            result.append(replace(net, views=views))
        return tuple(result)

    # ---------------------------------------------------------------------------------------- stats

    def _rate(self, name: str, t: float) -> float:
        """bytes/s for a service's task at time t: base x wave x noise, with an occasional burst."""
        base = 20_000 + 400_000 * _unit(self.seed, "base", name)
        wave = 1 + 0.3 * math.sin(t / 90 + 6.28 * _unit(self.seed, "phase", name))
        second = int(t)
        noise = 0.85 + 0.3 * _unit(self.seed, "noise", name, second)
        burst = 4.0 if _unit(self.seed, "burst", name, second // 15) > 0.92 else 1.0
        return base * wave * noise * burst

    def _service_interfaces(self, service: Service, task: Task, elapsed: float) -> tuple[InterfaceStats, ...]:
        """A task's interfaces: its overlays (traffic shared by all tasks of the service) and the gateway."""
        base = self._rate(service.name, elapsed)
        interfaces = []
        for index, address in enumerate(task.addresses):
            rx = base / (index + 1)
            tx = rx * (0.6 + 0.5 * _unit(self.seed, "tx", service.name, address.network_name))
            total = int((3600 + elapsed) * rx)
            interfaces.append(InterfaceStats(f"eth{index}", address.network_id, address.network_name, True,
                                             total, int(total * tx / rx), rx, tx))
        gateway = base * 0.02
        interfaces.append(InterfaceStats(f"eth{len(task.addresses)}", _id("net", "docker_gwbridge"),
                                         "docker_gwbridge", True, int(gateway * 3600), int(gateway * 1800),
                                         gateway, gateway / 2))
        return tuple(interfaces)

    def _container_stats(self, now: float, down: set[str]) -> tuple[ContainerStats, ...]:
        """One ContainerStats per running task; the tasks of a service share their (simulated) rates."""
        elapsed = self.elapsed
        result = []
        per_service: dict[str, tuple[tuple[InterfaceStats, ...], float, int]] = {}
        for task, service, name, engine in self._container_names:
            if task.node_id in down:
                continue
            shared = per_service.get(service.id)
            if shared is None:
                interfaces = self._service_interfaces(service, task, elapsed)
                cpu_unit, mem = self._service_static[service.name]
                cpu = round(2 + 30 * cpu_unit * ((interfaces[0].rx_rate or 0.0) / 200_000), 2)
                shared = per_service[service.id] = (interfaces, cpu, mem)
            result.append(ContainerStats(task.container_id or "", name, engine, task.node_id, task.id, service.name,
                                         now - 0.4, shared[1], shared[2], 2 * 2**30, shared[0]))
        return tuple(result)

    # --------------------------------------------------------------------------------------- probes

    @property
    def bad_node(self) -> str:
        """The faulty node of the bad-node scenario: two thirds down the list, never first by any order."""
        return f"node{max(1, round(self._scale[0] * 2 / 3))}"

    def _affected(self, src: str, dst: str, node: str) -> bool:
        return node in (src, dst)

    def _ping(self, net: Network, src: str, dst: str, sent: int, now: float, down: set[str]) -> ProbeResult:
        if src in down or dst in down:
            return ProbeResult("ping", net.name, src, dst, now, error=f"{dst if dst in down else src} is down")
        loss, spread, rtts = self._pair(net, src, dst)
        lost = int(sent * loss * spread)
        return ProbeResult("ping", net.name, src, dst, now, sent, sent - lost, *rtts)

    def _pair(self, net: Network, src: str, dst: str) -> tuple[float, float, tuple[float, float, float, float]]:
        """A pair's loss rate, its spread and RTTs (min, avg, max, mdev): fixed for the seed, computed once per pair."""
        key = (net.name, src, dst)
        found = self._pairs.get(key)
        if found is None:
            loss = 0.0
            if self.scenario == "loss" and self._affected(src, dst, "node4"):
                loss = 0.02
            elif self.scenario == "bad-node" and self._affected(src, dst, self.bad_node):
                loss = 0.01
            spread = 0.9 + 0.2 * _unit(self.seed, "loss", net.name, src, dst)
            rtt = 0.25 + 0.3 * _unit(self.seed, "rtt", net.name, src, dst) + (0.4 if net.encrypted else 0.0)
            found = self._pairs[key] = (loss, spread, (round(rtt * 0.6, 3), round(rtt, 3), round(rtt * 3, 3),
                                               round(rtt * 0.2, 3)))
        return found

    def _mtu(self, net: Network, src: str, dst: str, now: float, down: set[str]) -> ProbeResult:
        if src in down or dst in down:
            return ProbeResult("mtu", net.name, src, dst, now, error="node down")
        path = net.effective_mtu or 1450
        if (self.scenario, self._affected(src, dst, "node3")) == ("mtu", True) or (
                self.scenario == "bad-node" and self._affected(src, dst, self.bad_node)):
            path = min(path, 1400 - 50)
        return ProbeResult("mtu", net.name, src, dst, now, path_mtu=path)
