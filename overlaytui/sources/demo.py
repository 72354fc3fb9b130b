"""A simulated swarm for `overlaytui --demo`: the same interface as the real source, deterministic for a seed
and a clock, so the UI cannot tell it apart and the tests can pin every number.

Everything that moves is a function of (seed, elapsed seconds, the faults injected and when): traffic has a
daily-ish wave, noise and bursts; the probes' RTTs jitter per pair and round, the packets each pair loses in a
round are drawn from the loss in force (binomial over the packets sent). A scenario is faults in force from the
start (or from a fixed time after it); a presenter injects and clears more while it runs (`faults`): loss and
MTU black holes on a node, an overlay or a pair, a node or its engine down, a partition, a rolling update.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

from ..flags import SCENARIOS  # what each scenario shows (declared with the command line)
from ..model import (
    FAULTS,
    PACK_FROM,
    ClusterSnapshot,
    ContainerStats,
    Coverage,
    Engine,
    Fault,
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
    ResultColumns,
    Service,
    ServiceEndpoint,
    Task,
    TaskAddress,
    VirtualIP,
    WindowColumns,
    natural_key,
)
from ..safe import display
from .base import FaultError

SERVICE_NAMES = ["web", "api", "auth", "cache", "worker", "payments", "search", "metrics"]
OVERLAY_NAMES = ["frontend", "backend", "payments-secure"]
NODE_DOWN_AFTER = 8.0  # soon enough to be on the first screen; late enough to be seen happening
UPDATE_STEP = 10.0  # seconds between two tasks of the rolling update
UPDATE_DELAY = 3.0  # the first task is replaced this long after the start (the update was just asked for)
UPDATE_STARTING = 4.0  # seconds a replacement task spends starting (the old one already shut down)
PROBE_HISTORY = 3600.0  # probes behave as if they had been running for an hour at start
PROBE_RATE = 10.0  # packets per second per pair (100 packets every 10 s)
PROBE_ROUND = 10.0  # seconds between probe rounds
HEARTBEAT = 15.0  # seconds before the managers call a silent node (engine stopped, partitioned) down
UPDATE_HISTORY = 4  # old tasks a slot keeps (swarm's task history limit is 5 with the running one)
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
        self._silent: frozenset[str] = frozenset()  # node ids whose engine does not answer (as of the last poll)
        self._services_now: tuple[Service, ...] = ()
        self._probe_cache: tuple[object, ProbeData] | None = None  # (round, topology) -> the round's data
        self._changed = asyncio.Event()
        self._probed = tuple(n for n in self._plan.networks if not n.ingress)[:PROBED_OVERLAYS]
        self._probed_names = frozenset(n.name for n in self._probed)
        self._net_index = {n.name: i for i, n in enumerate(self._probed)}
        self._hosts = tuple(n.hostname for n in self._plan.nodes)
        self._host_index = {h: i for i, h in enumerate(self._hosts)}
        self._seed_bits = _mix(seed)
        self._history_rounds = int(PROBE_HISTORY // self._round)
        self._recent_rounds = max(1, int(RECENT_WINDOW // self._round))
        self._packets = int(PROBE_RATE * self._round)  # pings per pair per round (a longer round sends more)
        # faults: (since, until, fault) in seconds after the start (the scenario's first); rolling updates:
        # service -> (when, version) ("": back to the image it ran before any update)
        self._faults: list[tuple[float, float | None, Fault]] = self._scenario_faults()
        self._updates: dict[str, list[tuple[float, str]]] = {"api": [(UPDATE_DELAY, "2.0")]} \
            if scenario == "rolling-update" else {}
        self._moved: dict[tuple[str, int], str] = {}  # (service, slot) -> the node a node-down moved it to
        self._trackers: dict[tuple[str, str, str], _Tracker] = {}  # the pairs that lost packets, and how many
        self._folded: int | None = None  # the newest probe round counted

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
        if self._topology_key() != self._topology_at:  # else the same objects: what reads them can skip them
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
        down = self._silent  # engines that do not answer (a partitioned node's does: we reach it, its peers not)
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

    def probe_results(self, network: str | None = None) -> Sequence[ProbeResult]:
        """Simulated ping and path-MTU results between every node pair of the probed overlays (one overlay's with
        `network`): a round every PROBE_ROUND seconds, each pair's packets lost drawn from the loss in force
        then (binomial over the packets sent), its RTTs jittering round by round; the same for a seed, a clock
        and the faults injected."""
        return self.probes().results(network)

    def probes(self) -> ProbeData:
        """Every overlay's simulated results and windows; the same object for a whole probe round."""
        k = int(self.elapsed // self._round)
        round_key = (k, self._topology_key())
        if self._probe_cache is not None and self._probe_cache[0] == round_key:
            return self._probe_cache[1]
        data = self._round_data(k)
        data = replace(data, totals=_Totals(data.windows))  # read from the windows as held (packed when large)
        self._probe_cache = (round_key, data)
        return data

    def _round_data(self, k: int) -> ProbeData:
        """Round `k`: per overlay, each pair's ping and path-MTU result (or why not), its windows (the last round,
        the recent window, since probing started an hour before the start, as the pairs' trackers counted them)
        and the coverage. Written straight into columns (ResultColumns, WindowColumns): at 200 nodes a round is
        238,800 results and 119,400 windows, and making them as objects first left pymalloc's arenas pinned by
        the round's few survivors — the process grew ~35 MB an hour of rounds. Small overlays (under PACK_FROM)
        are handed over as plain results and windows."""
        self._advance(k)
        now = self.clock()
        t = k * self._round
        elapsed = self.elapsed
        down = {n.hostname for n in self._node_states() if n.state != "ready"}
        no_engine = self._engines_down(elapsed) - down
        cut = {f.node for _since, f in self._active(t) if f.kind == "partition"}
        recent: dict[str, Sequence[ProbeResult]] = {}
        windows: dict[str, Mapping[tuple[str, str], PairWindow]] = {}
        coverage = []
        for net_index, net in enumerate(self._probed):
            path_mtu = self._path_mtu(net, t)
            results, counts = ResultColumns(net.name), WindowColumns(net.name)
            no_ping: list[PairGap] = []
            no_mtu: list[PairGap] = []
            for si, src in enumerate(self._hosts):
                for di, dst in enumerate(self._hosts):
                    if src == dst:
                        continue
                    gone = (src if src in down else dst if dst in down else None)
                    silent = src if src in no_engine else dst if dst in no_engine else None
                    if gone is not None or silent is not None:
                        reasons = ((f"{gone} is down", "node down") if gone is not None else
                                   (f"no probe agent on {silent}: its engine does not answer",) * 2)
                        for kind, reason, gaps in zip(("ping", "mtu"), reasons, (no_ping, no_mtu), strict=True):
                            results.keep(ProbeResult(kind, net.name, src, dst, now, error=reason))
                            gaps.append(PairGap(src, dst, reason))
                        continue
                    self._ping(results, counts, net, net_index, si, di, k, now)
                    if src in cut or dst in cut:
                        reason = "no reply to any probe size (timed out)"
                        results.keep(ProbeResult("mtu", net.name, src, dst, now, error=reason))
                        no_mtu.append(PairGap(src, dst, reason))
                    else:
                        results.measured("mtu", src, dst, now, path_mtu=path_mtu(src, dst))
            if not len(results):
                continue  # one node: no pair
            pairs = len(results) // 2
            coverage += [Coverage(net.name, "ping", pairs, pairs - len(no_ping), tuple(no_ping)),
                         Coverage(net.name, "mtu", pairs, pairs - len(no_mtu), tuple(no_mtu))]
            recent[net.name] = results.packed() if len(results) >= PACK_FROM else tuple(results.packed())
            windows[net.name] = counts.packed() if len(counts) >= PACK_FROM else dict(counts.packed().items())
        return ProbeData(recent=recent, windows=windows, coverage=tuple(coverage), rounds=k + 1)

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
        """The nodes as the managers see them now: down when a node-down fault holds, or an engine-down or
        partition fault has held for a heartbeat (the managers stop hearing from it)."""
        down = self._down_hosts(self.elapsed)
        if not down:
            return self._plan.nodes
        return tuple(replace(n, state="down") if n.hostname in down else n for n in self._plan.nodes)

    def _down_hosts(self, t: float) -> frozenset[str]:
        down = set()
        for since, fault in self._active(t):
            if fault.kind == "node-down" or fault.kind in ("engine-down", "partition") and t - since >= HEARTBEAT:
                down.add(fault.node)
        return frozenset(down)

    def _engines_down(self, t: float) -> frozenset[str]:
        """Hostnames whose engine does not answer: the node is down or its engine stopped (a partitioned node's
        engine still answers us, as the lab's does through its socket)."""
        return frozenset(f.node for _since, f in self._active(t) if f.kind in ("node-down", "engine-down"))

    def _active(self, t: float) -> list[tuple[float, Fault]]:
        """(since, fault) of the faults in force at `t` seconds after the start."""
        return [(since, fault) for since, until, fault in self._faults if since <= t and (until is None or t < until)]

    def _update_phases(self) -> tuple:
        """Every rolling update's state (the topology changes when one moves on): per updated service, per slot,
        the updates that reached it and whether its newest task is still starting."""
        elapsed = self.elapsed
        return tuple((name, tuple(self._slot_updates(name, slot, elapsed) for slot in range(1, replicas + 1)))
                     for name, replicas in self._updated_services())

    def _updated_services(self) -> list[tuple[str, int]]:
        by_name = {s.name: s for s in self._plan.services}
        return [(name, by_name[name].replicas or 0) for name in self._updates]

    def _slot_updates(self, name: str, slot: int, elapsed: float) -> tuple[tuple[float, str, bool], ...]:
        """The updates that replaced this slot's task: (when, version, still starting), oldest first. An update
        replaces one task every UPDATE_STEP seconds; one that finds the slot at its version already skips it."""
        steps = []
        version = ""
        for at, to in self._updates[name]:
            when = at + (slot - 1) * UPDATE_STEP
            if elapsed < when or to == version:
                continue
            steps.append((when, to, elapsed - when < UPDATE_STARTING))
            version = to
        return tuple(steps)

    def _topology_changed_since_poll(self) -> bool:
        return self._topology_key() != self._topology_at

    def _topology_key(self):
        elapsed = self.elapsed
        return (self._node_states(), self._engines_down(elapsed), self._update_phases())

    def _refresh_topology(self) -> None:
        """Place every service's tasks on the ready nodes; a node that goes down has its replicated tasks
        rescheduled (they stay where they went when it comes back, as swarm does: it does not rebalance), the
        old task kept as history; a rolling update replaces one task after the other, the old ones kept."""
        self._topology_at = self._topology_key()
        elapsed = self.elapsed
        nodes = self._node_states()
        ready = [n for n in nodes if n.state == "ready"]
        down = {n.id for n in nodes if n.state != "ready"}
        by_id = {n.id: n for n in self._plan.nodes}
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
                    placed: Node | None = by_id[self._moved.get((service.name, number), planned.id)]
                    if placed is not None and placed.id in down:
                        # rescheduled: the old task on the down node is kept as history
                        tasks.append(self._task(service, number, placed, nets, "running", "shutdown",
                                                "node is down: task rescheduled"))
                        placed = ready[(offset + number) % len(ready)] if ready else None
                        if placed is not None:
                            self._moved[(service.name, number)] = placed.id
                    elif placed is not None and placed.id != planned.id:
                        tasks.append(self._task(service, number, planned, nets, "running", "shutdown",
                                                "node is down: task rescheduled"))
                    placements.append((number, placed))
            for slot, node in placements:
                if node is None:
                    tasks.append(self._task(service, slot, None, nets, "pending", "running",
                                            "no suitable node (all nodes down)"))
                    continue
                steps = self._slot_updates(service.name, slot, elapsed) if (
                    slot is not None and service.name in self._updates) else ()
                # the task each update replaced (its version, and which task of the slot it was: a rollback
                # runs the first version again in a new task)
                versions = ["", *(to for _when, to, _starting in steps)]
                ident = [v if i <= 1 else f"{v}@{i}" for i, v in enumerate(versions)]
                for index in range(max(0, len(steps) - UPDATE_HISTORY), len(steps)):
                    tasks.append(self._task(service, slot, node, nets, "running", "shutdown", "", ident[index],
                                            since=self._start + steps[index][0]))
                if steps:
                    when, _version, starting = steps[-1]
                    task = self._task(service, slot, node, nets, "starting" if starting else "running", "running",
                                      "", ident[-1], since=self._start + when)
                else:
                    task = self._task(service, slot, node, nets, "running", "running", "")
                tasks.append(task)
                if task.state == "running":
                    containers.append((task, service))
        self._tasks = tuple(tasks)
        self._containers = tuple(containers)
        self._networks_now = self._networks(down)
        hostnames = {n.id: n.hostname for n in self._plan.nodes}
        self._container_names = tuple(
            (task, service, f"{task.name}.{task.id[:25]}", f"demo://{hostnames.get(task.node_id or '', '?')}")
            for task, service in self._containers)
        self._nodes_now = nodes
        silent = self._engines_down(elapsed)
        self._silent = frozenset(n.id for n in nodes if n.hostname in silent)
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
        elapsed = self.elapsed
        result = []
        for s in self._plan.services:
            desired = ready if s.mode == "global" else s.replicas
            update, image = "", s.image
            updates = [(at, to) for at, to in self._updates.get(s.name, ()) if at <= elapsed]
            if updates:
                to = updates[-1][1]
                done = all((steps[-1][1], steps[-1][2]) == (to, False) if steps else not to
                           for steps in (self._slot_updates(s.name, slot, elapsed)
                                         for slot in range(1, (s.replicas or 0) + 1)))
                rollback = not to  # back to the image it ran before any update
                update = ("rollback_completed" if rollback else "completed") if done else (
                    "rollback_started" if rollback else "updating")
                image = s.image.replace(":1.4", f":{to}") if to else s.image
            result.append(replace(s, running_tasks=running.get(s.id, 0), desired_tasks=desired,
                                  update_state=update, image=image))
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

    def _container_stats(self, now: float, down: frozenset[str]) -> tuple[ContainerStats, ...]:
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

    def _scenario_faults(self) -> list[tuple[float, float | None, Fault]]:
        """What each scenario shows, as faults in force from the start (or from when it happens): a presenter can
        clear them as any other."""
        last = f"node{len(self._plan.nodes)}"
        faults: dict[str, list[tuple[float, float | None, Fault]]] = {
            "loss": [(-math.inf, None, Fault("loss", node="node4", value=2.0))],
            "mtu": [(-math.inf, None, Fault("mtu", node="node3", value=1400))],
            "node-down": [(NODE_DOWN_AFTER, None, Fault("node-down", node=last))],
            "bad-node": [(-math.inf, None, Fault("loss", node=self.bad_node, value=1.0)),
                         (-math.inf, None, Fault("mtu", node=self.bad_node, value=1400))],
        }
        return faults.get(self.scenario, [])

    def _loss_rates(self, t: float) -> tuple[dict[str, float], dict[str, float], dict[tuple[str, str, str], float]]:
        """The loss in force at `t`: per node (its incoming VXLAN: every pair with it at one end loses that
        much), per overlay and per pair (network, src, dst); a partitioned node loses everything."""
        nodes: dict[str, float] = {}
        overlays: dict[str, float] = {}
        pairs: dict[tuple[str, str, str], float] = {}
        for _since, fault in self._active(t):
            rate = fault.value / 100 if fault.kind == "loss" else 1.0 if fault.kind == "partition" else None
            if rate is None:
                continue
            if fault.target == "pair":
                key = (fault.network, fault.node, fault.peer)
                pairs[key] = _combine(pairs.get(key, 0.0), rate)
            elif fault.target == "node":
                nodes[fault.node] = _combine(nodes.get(fault.node, 0.0), rate)
            elif fault.target == "network":
                overlays[fault.network] = _combine(overlays.get(fault.network, 0.0), rate)
        return nodes, overlays, pairs

    def _lossy_pairs(self, t: float) -> dict[tuple[str, str, str], float]:
        """Every (network, src, dst) that loses packets at `t`, with its loss rate (the rest lose none)."""
        nodes, overlays, pairs = self._loss_rates(t)
        found: dict[tuple[str, str, str], float] = {}
        for net in self._probed:
            everyone = overlays.get(net.name, 0.0)
            if everyone:
                keys = [(src, dst) for src in self._hosts for dst in self._hosts if src != dst]
            else:
                keys = [pair for node in nodes for other in self._hosts if other != node
                        for pair in ((node, other), (other, node))]
            for src, dst in keys:
                found[(net.name, src, dst)] = _combine(_combine(everyone, nodes.get(src, 0.0)), nodes.get(dst, 0.0))
        for key, rate in pairs.items():
            if key[0] in self._probed_names:
                found[key] = _combine(found.get(key, 0.0), rate)
        return found

    def _pair_seed(self, key: tuple[str, str, str]) -> int:
        net, src, dst = key
        return _mix(self._seed_bits ^ _mix((1 << 63) | (self._net_index[net] << 42) | (self._host_index[src] << 21)
                                           | self._host_index[dst]))

    def _advance(self, k: int) -> None:
        """Count the rounds up to `k` for every pair that loses packets (the others lose none): each round's
        packets lost drawn from the loss in force at the round's time, the first time a pair loses anything
        its earlier rounds counted as lossless. The first call starts with the hour of history before the
        start (its older rounds as one draw)."""
        if self._folded is None:
            self._folded = 0
            rounds, recent = self._history_rounds, self._recent_rounds
            for key, rate in self._lossy_pairs(-self._round).items():  # faults from before the start
                seed = self._pair_seed(key)
                older = (rounds - recent) * self._packets
                lost = _binomial(older, rate, _draw(seed, -rounds))
                tracker = self._trackers[key] = _Tracker(lost, deque(maxlen=recent))
                for j in range(-recent + 1, 1):
                    tracker.add(_binomial(self._packets, rate, _draw(seed, j)))
        while self._folded < k:
            self._folded += 1
            j = self._folded
            lossy = self._lossy_pairs(j * self._round - 1e-6)  # a fault injected as it ends misses it
            for key in lossy.keys() - self._trackers.keys():
                self._trackers[key] = _Tracker(0, deque([0] * self._recent_rounds, maxlen=self._recent_rounds))
            for key, tracker in self._trackers.items():
                rate = lossy.get(key, 0.0)
                tracker.add(_binomial(self._packets, rate, _draw(self._pair_seed(key), j)) if rate else 0)

    def _ping(self, results: ResultColumns, windows: WindowColumns, net: Network, net_index: int, si: int,
              di: int, k: int, now: float) -> None:
        """One pair's ping result of round `k` (the recent window's packets, the round's RTTs: none when no reply
        came back in the round) and its windows."""
        src, dst = self._hosts[si], self._hosts[di]
        per_round = self._packets
        recent = per_round * self._recent_rounds
        total = per_round * (self._history_rounds + (self._folded or 0))
        tracker = self._trackers.get((net.name, src, dst))
        if tracker is None:  # never lost a packet
            results.measured("ping", src, dst, now, recent, recent, *self._rtts(net, net_index, si, di, k))
            windows.counts(src, dst, per_round, per_round, recent, recent, total, total, RECENT_WINDOW)
            return
        lost_round, lost_recent, lost_total = tracker.recent[-1], sum(tracker.recent), tracker.lost
        rtts = () if lost_round >= per_round else self._rtts(net, net_index, si, di, k)
        results.measured("ping", src, dst, now, recent, recent - lost_recent, *rtts)
        windows.counts(src, dst, per_round, per_round - lost_round, recent, recent - lost_recent, total,
                       total - lost_total, RECENT_WINDOW)

    def _rtts(self, net: Network, net_index: int, si: int, di: int, k: int) -> tuple[float, float, float, float]:
        """A pair's RTTs (min, avg, max, mdev) in round `k`: its own base (a few tenths of a millisecond, more on
        an encrypted overlay), jittering round by round with an occasional spike."""
        seed = _mix(self._seed_bits ^ _mix((net_index << 42) | (si << 21) | di))
        base = 0.25 + 0.3 * _draw(seed, 0) + (0.4 if net.encrypted else 0.0)
        a, b, c = _draw(seed, 3 * k + 1), _draw(seed, 3 * k + 2), _draw(seed, 3 * k + 3)
        avg = base * (0.85 + 0.3 * a + 1.5 * b ** 12)
        low = base * (0.55 + 0.1 * c)
        high = avg * (1.4 + 1.6 * b)
        return round(low, 3), round(avg, 3), round(high, 3), round((high - low) / 5, 3)

    def _path_mtu(self, net: Network, t: float) -> Callable[[str, str], int]:
        """The path MTU of each pair of the overlay at `t`: the overlay's, or 50 bytes (VXLAN) below the
        smallest underlay an MTU fault puts on the way."""
        full = net.effective_mtu or 1450
        nodes: dict[str, int] = {}
        pairs: dict[tuple[str, str], int] = {}
        overlay = full
        for _since, fault in self._active(t):
            if fault.kind != "mtu":
                continue
            fits = int(fault.value) - 50
            if fault.target == "node":
                nodes[fault.node] = min(nodes.get(fault.node, full), fits)
            elif fault.target == "network" and fault.network == net.name:
                overlay = min(overlay, fits)
            elif fault.target == "pair" and fault.network == net.name:
                pairs[(fault.node, fault.peer)] = min(pairs.get((fault.node, fault.peer), full), fits)

        def path(src: str, dst: str) -> int:
            return min(overlay, nodes.get(src, full), nodes.get(dst, full), pairs.get((src, dst), full))
        return path

    # --------------------------------------------------------------------------------------- faults

    @property
    def faults(self) -> DemoFaults:
        """The presenter's controls: faults injected and cleared while it runs (`Faults`)."""
        return DemoFaults(self)

    def inject(self, fault: Fault) -> str:
        """Inject a fault now (it replaces one of the same kind on the same subject); FaultError says why not."""
        self._check(fault)
        now = self.elapsed
        if fault.kind == "update":
            versions = [to for _at, to in self._updates.get(fault.service, ())]
            current = versions[-1] if versions else ""
            number = sum(1 for v in versions if v) + 1
            version = "2.0" if number == 1 else f"2.{number - 1}"
            if current and version == current:
                version = f"2.{number}"
            # replaced, never changed in place: the frame thread may be reading them
            self._updates = {**self._updates, fault.service: [*self._updates.get(fault.service, ()), (now, version)]}
            self._changed.set()
            return f"rolling update of {fault.service} to :{version} started (one task every {UPDATE_STEP:g} s)"
        same = Fault(fault.kind, node=fault.node, network=fault.network, peer=fault.peer)
        self._end(lambda f: same.on(f) and f.target == fault.target, now)
        self._faults = [*self._faults, (now, None, fault)]
        self._changed.set()
        return f"{fault.describe()} (from the next probe round)" if fault.kind in ("loss", "mtu") else \
            fault.describe()

    def clear(self, target: Fault) -> str:
        """End the faults `target` covers (`Fault.on`), now; a service's update is rolled back."""
        now = self.elapsed
        ended = self._end(target.on, now)
        rolled = []
        changed = dict(self._updates)  # replaced, never changed in place: the frame thread may be reading them
        for name, updates in self._updates.items():
            if target.target not in ("", "service") or target.kind not in ("", "update") or \
                    target.service not in ("", name):
                continue
            if updates and updates[-1][1] and updates[-1][0] <= now:
                changed[name] = [*updates, (now, "")]
                rolled.append(name)
            elif updates and updates[-1][0] > now:  # not begun yet (the scenario's): it never starts
                changed[name] = updates[:-1]
                rolled.append(name)
        self._updates = changed
        if not ended and not rolled:
            return f"no fault on {target.subject()}"
        self._changed.set()
        said = [f.describe() for f in ended] + [f"rolling back {name}" for name in rolled]
        return "cleared: " + "; ".join(said)

    def _end(self, covered: Callable[[Fault], bool], now: float) -> list[Fault]:
        """End the faults in force (or still to come) that `covered` picks, now; the list is replaced, never
        changed in place (the frame thread may be reading it)."""
        ended, faults = [], []
        for since, until, fault in self._faults:
            if (until is None or until > now) and covered(fault):
                ended.append(fault)
                until = min(max(since, now), until) if until is not None else max(since, now)
            faults.append((since, until, fault))
        self._faults = faults
        return ended

    def _check(self, fault: Fault) -> None:
        hosts = set(self._hosts)
        target = fault.target
        if fault.kind not in FAULTS:
            raise FaultError(f"unknown fault {fault.kind!r}: {', '.join(FAULTS)}")
        if target not in DEMO_FAULTS[fault.kind]:
            raise FaultError(f"{fault.kind} takes a {' or '.join(DEMO_FAULTS[fault.kind])}, "
                             f"not {('a ' + target) if target else 'nothing'}")
        for name in (fault.node, fault.peer):
            if name and name not in hosts:
                raise FaultError(f"no node {display(name)} in the demo")
        if fault.network and fault.network not in self._probed_names:
            raise FaultError(f"no probed overlay {display(fault.network)} in the demo "
                             f"({', '.join(sorted(self._probed_names))})")
        if target == "pair" and fault.node == fault.peer:
            raise FaultError("a pair needs two different nodes")
        if fault.kind == "loss" and not 0 < fault.value <= 100:
            raise FaultError(f"loss: a percentage above 0, up to 100 (got {fault.value:g})")
        if fault.kind == "mtu" and not 576 <= fault.value <= 9000:
            raise FaultError(f"mtu: 576 to 9000 bytes (got {fault.value:g})")
        if fault.kind == "update":
            service = next((s for s in self._plan.services if s.name == fault.service), None)
            if service is None:
                raise FaultError(f"no service {display(fault.service)} in the demo")
            if service.mode != "replicated":
                raise FaultError(f"{display(fault.service)} is a global service: the demo updates replicated ones")


DEMO_FAULTS = {"loss": ("node", "network", "pair"), "mtu": ("node", "network", "pair"), "node-down": ("node",),
               "engine-down": ("node",), "partition": ("node",), "update": ("service",)}


class DemoFaults:
    """The demo's `Faults`: simulated, at once (the panes show them from the next frame, the probes from the next
    round)."""

    offers = DEMO_FAULTS

    def __init__(self, source: DemoSource) -> None:
        self.source = source

    async def inject(self, fault: Fault) -> str:
        return self.source.inject(fault)

    async def clear(self, target: Fault) -> str:
        return self.source.clear(target)


@dataclass
class _Tracker:
    """One pair's packets lost since probing started, and per round over the recent window (the newest last)."""

    lost: int
    recent: deque

    def add(self, lost: int) -> None:
        self.recent.append(lost)
        self.lost += lost


class _Totals(Mapping[tuple[str, str, str], tuple[int, int]]):
    """ProbeData.totals, (overlay, src, dst) -> (sent, received) since start, read from the windows that count
    them: not a second copy of every pair (119,400 at 200 nodes, ~19 MB a round)."""

    def __init__(self, windows: Mapping[str, Mapping[tuple[str, str], PairWindow]]) -> None:
        self._windows = windows

    def __getitem__(self, key: tuple[str, str, str]) -> tuple[int, int]:
        network, src, dst = key
        window = self._windows[network][(src, dst)]
        return window.total_sent, window.total_received

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return ((network, src, dst) for network, pairs in self._windows.items() for src, dst in pairs)

    def __len__(self) -> int:
        return sum(len(pairs) for pairs in self._windows.values())


def _combine(a: float, b: float) -> float:
    """Two independent losses on one path."""
    return 1 - (1 - a) * (1 - b)


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit number from any integer (fast enough for every pair of a
    200-node cluster each round)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _draw(seed: int, k: int) -> float:
    """A deterministic number in [0, 1) for (seed, k)."""
    return _mix(seed ^ _mix(k & _MASK)) / 2**64


def _binomial(n: int, p: float, u: float) -> int:
    """The number of `n` packets lost at loss rate `p`, for the uniform draw `u`: the binomial distribution's
    inverse (a normal approximation beyond 500 packets)."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - _binomial(n, 1 - p, 1 - u)
    if n > 500:
        mean, sd = n * p, math.sqrt(n * p * (1 - p))
        return min(n, max(0, round(NormalDist(mean, sd).inv_cdf(min(max(u, 1e-12), 1 - 1e-12)))))
    q = 1 - p
    pmf = q ** n
    cdf, lost, ratio = pmf, 0, p / q
    while u > cdf and lost < n:
        pmf *= (n - lost) / (lost + 1) * ratio
        lost += 1
        cdf += pmf
    return lost
