"""The cluster as overlaytui sees it: frozen, typed values. Sources produce them; analysis and panes read them.

Collections are tuples (immutable, hashable); lookups that panes need often are cached properties.
Times are Unix seconds (float). Rates are bytes per second computed from two counter samples.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property, lru_cache
from itertools import accumulate, chain

_DIGITS = re.compile(r"(\d+)")

PROBE_LABEL = "overlaytui.probe"  # the label every probe agent service carries (probes/agent.py)


@lru_cache(maxsize=1 << 16)
def natural_key(name: str) -> tuple:
    """The order people count in: node2 before node10, svc-9 before svc-10 (case-insensitive; the name itself
    breaks ties, so node02 and node2 keep a stable order). Digit runs compare by length then digits, never
    through int(): a hostile name with thousands of digits sorts without the int-size limit. Cached: the same
    few hundred names are sorted hundreds of thousands of times per frame at 200 nodes."""
    parts = _DIGITS.split(name.casefold())
    key: list = []
    for i, part in enumerate(parts):
        if i % 2:
            digits = part.lstrip("0") or "0"
            key.append((len(digits), digits))
        else:
            key.append(part)
    return tuple(key), name


def natural_sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)


def natural_tuple(values: tuple) -> tuple:
    """Keys such as (network, src, dst) in natural order: each text part by `natural_key`."""
    return tuple(natural_key(v) if isinstance(v, str) else v for v in values)


# task states, as `docker service ps` reports them: the one place that says which are which
TASK_PENDING = frozenset({"new", "pending", "assigned", "accepted", "preparing", "ready", "starting"})
TASK_FAILED = frozenset({"failed", "rejected", "orphaned"})
TASK_ENDED = TASK_FAILED | {"complete", "shutdown"}


class Health(StrEnum):
    OK = "ok"  # the last poll of this engine succeeded
    STALE = "stale"  # the last poll is still running or older than the stale limit: data shown is old
    ERROR = "error"  # the last poll failed: message says why


@dataclass(frozen=True)
class Engine:
    """One Docker engine endpoint overlaytui talks to."""

    endpoint: str  # as given: unix:///..., tcp://..., ssh://...
    health: Health
    message: str = ""
    node_id: str | None = None  # swarm node id from /info (None: not in a swarm, or never reached)
    hostname: str | None = None
    role: str = "unknown"  # manager / worker / standalone / unknown
    version: str = ""
    updated_at: float | None = None  # when its data was last collected successfully
    firewall: str = ""  # the engine's firewall backend (iptables / nftables; API >= 1.49, "" when not reported)
    api_version: str = ""  # the Engine API version negotiated with it ("" before the first answer)


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    role: str  # manager / worker
    state: str  # ready / down / unknown / disconnected
    availability: str  # active / pause / drain
    address: str  # Status.Addr: the underlay address (= Peers[].IP = task "Host IP")
    leader: bool = False
    reachability: str = ""  # managers: reachable / unreachable
    engine_version: str = ""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VirtualIP:
    network_id: str
    address: str  # CIDR, e.g. 10.240.1.2/24


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    mode: str  # replicated / global / replicated-job / global-job
    replicas: int | None  # desired replicas (replicated); None for global
    endpoint_mode: str  # vip / dnsrr
    vips: tuple[VirtualIP, ...]
    network_ids: tuple[str, ...]
    image: str
    running_tasks: int | None = None  # ServiceStatus (API >= 1.41)
    desired_tasks: int | None = None
    update_state: str = ""  # updating / completed / paused / rollback_* ... ("" when never updated)
    published_ports: tuple[str, ...] = ()  # "8080->80/tcp"
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def probe_agent(self) -> bool:
        """An overlaytui probe agent service (any run's): transient, ours, never a finding about the cluster."""
        return any(key == PROBE_LABEL for key, _value in self.labels)

    @property
    def wanted_tasks(self) -> int | None:
        """How many tasks should run: the engine's count (ServiceStatus, API >= 1.41), else the replicas asked for
        (None: a global service on an engine too old to say)."""
        return self.desired_tasks if self.desired_tasks is not None else self.replicas


@dataclass(frozen=True)
class TaskAddress:
    network_id: str
    network_name: str
    address: str  # CIDR


@dataclass(frozen=True)
class Task:
    id: str
    service_id: str
    service_name: str
    slot: int | None  # None for global services
    node_id: str | None  # None while unassigned (pending)
    desired_state: str
    state: str  # new / pending / assigned / ... / running / complete / failed / shutdown / rejected / orphaned
    message: str
    error: str
    timestamp: float  # Status.Timestamp
    container_id: str | None
    pid: int | None
    exit_code: int | None
    addresses: tuple[TaskAddress, ...] = ()

    @property
    def up(self) -> bool:
        """Running, and meant to (not a task on its way out)."""
        return self.state == "running" and self.desired_state == "running"

    @property
    def wanted(self) -> bool:
        """The orchestrator wants this task up (a task being shut down or replaced is not wanted)."""
        return self.desired_state in ("running", "ready")

    @property
    def settling(self) -> bool:
        """On its way up or down: the manager will report another state soon, and no event will say so."""
        if self.wanted:
            return self.state in TASK_PENDING
        return self.desired_state == "shutdown" and self.state in TASK_PENDING | {"running"}

    @property
    def name(self) -> str:
        """As `docker service ps` names it: service.slot, or service.nodeid for global services."""
        return f"{self.service_name}.{self.slot if self.slot is not None else self.node_id}"


@dataclass(frozen=True)
class Peer:
    name: str  # NOT a node id: join on address
    address: str  # underlay IP


@dataclass(frozen=True)
class LocalEndpoint:
    """A network endpoint on one node: a container, or the node's lb-<network> load balancer."""

    name: str
    container_id: str
    ipv4: str  # CIDR
    mac: str


@dataclass(frozen=True)
class ServiceEndpoint:
    task_name: str
    ip: str
    host_ip: str  # the node's underlay address


@dataclass(frozen=True)
class NetworkService:
    name: str
    vip: str | None  # None in dnsrr mode ("<nil>" in the API)
    tasks: tuple[ServiceEndpoint, ...]


@dataclass(frozen=True)
class NetworkView:
    """What one node's engine says of a network (only where the network is active on that node)."""

    node_id: str | None
    engine: str
    peers: tuple[Peer, ...]
    endpoints: tuple[LocalEndpoint, ...]
    services: tuple[NetworkService, ...]


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str  # overlay / bridge / host / macvlan / ipvlan / null
    scope: str  # swarm / local / global
    subnet: str | None
    gateway: str | None
    vni: int | None  # VXLAN id (overlay)
    configured_mtu: int | None  # com.docker.network.driver.mtu, only if set at creation
    encrypted: bool
    attachable: bool
    ingress: bool
    internal: bool
    labels: tuple[tuple[str, str], ...] = ()
    views: tuple[NetworkView, ...] = ()  # per node, where active
    engine: str | None = None  # local networks: the engine they belong to
    ipam_status: tuple[int, int] | None = None  # (IPs in use or reserved, still available): API >= 1.52 only

    @property
    def effective_mtu(self) -> int | None:
        """The MTU containers get on this network (libnetwork): overlay = (configured or 1500) - 50 for VXLAN;
        encrypted loses another 26 (ESP) and is rounded down to a multiple of 4."""
        if self.driver in ("host", "null"):
            return None  # no interface of its own
        base = self.configured_mtu or 1500
        if self.driver != "overlay":
            return base
        mtu = base - 50
        if self.encrypted:
            mtu = (mtu - 26) // 4 * 4
        return mtu

    @cached_property
    def services(self) -> tuple[NetworkService, ...]:
        """Services attached to this network, merged over the node views (each view lists the whole cluster's
        tasks; merging covers nodes that lack a view)."""
        merged: dict[str, NetworkService] = {}
        for view in self.views:
            for svc in view.services:
                known = merged.get(svc.name)
                if known is None or len(svc.tasks) > len(known.tasks):
                    merged[svc.name] = svc
        return tuple(merged[name] for name in sorted(merged, key=natural_key))


@dataclass(frozen=True)
class InterfaceStats:
    name: str  # eth0, eth1 ...
    network_id: str | None  # None: could not be mapped
    network_name: str | None
    exact: bool  # True: mapped by MAC address; False: inferred from libnetwork's interface order
    rx_bytes: int
    tx_bytes: int
    rx_rate: float | None  # bytes/s; None on the first sample or after a counter reset
    tx_rate: float | None


@dataclass(frozen=True)
class ContainerStats:
    container_id: str
    name: str
    engine: str
    node_id: str | None
    task_id: str | None
    service_name: str | None
    read_at: float  # the engine's timestamp of the latest sample; 0.0: no sample yet (nothing measured)
    cpu_pct: float | None  # as `docker stats` computes it; None until two samples exist
    mem_bytes: int | None  # usage minus inactive file cache, as `docker stats` shows it
    mem_limit: int | None
    interfaces: tuple[InterfaceStats, ...] = ()

    @property
    def rx_bytes(self) -> int:
        return sum(i.rx_bytes for i in self.interfaces)

    @property
    def tx_bytes(self) -> int:
        return sum(i.tx_bytes for i in self.interfaces)

    @property
    def rx_rate(self) -> float | None:
        return _sum_rates(i.rx_rate for i in self.interfaces)

    @property
    def tx_rate(self) -> float | None:
        return _sum_rates(i.tx_rate for i in self.interfaces)

    def network_rates(self) -> dict[str, tuple[float, float]]:
        """network name -> (rx, tx) bytes/s, for interfaces with a rate."""
        rates: dict[str, tuple[float, float]] = {}
        for i in self.interfaces:
            if i.network_name and i.rx_rate is not None and i.tx_rate is not None:
                rx, tx = rates.get(i.network_name, (0.0, 0.0))
                rates[i.network_name] = (rx + i.rx_rate, tx + i.tx_rate)
        return rates


def _sum_rates(rates) -> float | None:
    values = list(rates)
    if not values or any(r is None for r in values):
        return None
    return float(sum(values))


@dataclass(frozen=True)
class ClusterSnapshot:
    taken_at: float
    engines: tuple[Engine, ...]
    swarm_id: str | None = None  # None: no manager reachable, or not a swarm
    nodes: tuple[Node, ...] = ()
    services: tuple[Service, ...] = ()
    tasks: tuple[Task, ...] = ()
    networks: tuple[Network, ...] = ()
    containers: tuple[ContainerStats, ...] = ()
    problems: tuple[str, ...] = field(default=())  # one line each: what could not be collected

    @cached_property
    def nodes_by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}


    @cached_property
    def networks_by_id(self) -> dict[str, Network]:
        return {n.id: n for n in self.networks}

    def network(self, name_or_id: str) -> Network | None:
        for net in self.networks:
            if name_or_id in (net.id, net.name):
                return net
        return None

    @property
    def nodes_without_engine(self) -> tuple[Node, ...]:
        """Swarm nodes that no reachable engine identifies as itself: no per-node stats or network views."""
        reached = {e.node_id for e in self.engines if e.health is not Health.ERROR and e.node_id}
        return tuple(n for n in self.nodes if n.id not in reached)

    @cached_property
    def unmeasured_nodes(self) -> dict[str, str]:
        """node id -> why its containers' stats are not measured (no engine connection, or its engine's error)."""
        known = {e.node_id: e for e in self.engines if e.node_id}
        gaps = {}
        for node in self.nodes_without_engine:
            engine = known.get(node.id)
            gaps[node.id] = (f"its engine {engine.endpoint}: {engine.message or engine.health.value}" if engine
                             else "no engine connection")
        return gaps


@dataclass(frozen=True, slots=True)  # hundreds of thousands at 200 nodes: no __dict__ each
class ProbeResult:
    """One measurement between two nodes across one overlay (ping, path MTU or throughput)."""

    kind: str  # ping / mtu / iperf
    network: str  # overlay name
    src_node: str  # hostnames
    dst_node: str
    measured_at: float
    sent: int = 0  # ping: packets
    received: int = 0
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    rtt_mdev_ms: float | None = None
    path_mtu: int | None = None  # mtu: largest packet (bytes, IP) that arrived with DF set
    bits_per_second: float | None = None  # iperf
    retransmits: int | None = None
    resolved_vip: str | None = None  # discovery: what the service name resolves to through 127.0.0.11
    resolved_tasks: int | None = None  # discovery: how many addresses tasks.<service> resolves to
    vip_answers: bool | None = None  # discovery: a TCP connect to the VIP succeeds
    task_answers: bool | None = None  # discovery: a TCP connect to another node's task succeeds
    error: str = ""  # the probe could not run: why

    @property
    def loss_pct(self) -> float | None:
        if self.kind != "ping" or self.sent == 0:
            return None
        return 100.0 * max(self.sent - self.received, 0) / self.sent

    @property
    def measured(self) -> bool:
        """The probe ran and measured something (an error result is never input to a verdict, nor is a ping
        that sent no packet)."""
        return not self.error and not (self.kind == "ping" and self.sent <= 0)


@dataclass(frozen=True)
class PairGap:
    """An expected pair that was not measured, and why."""

    src_node: str
    dst_node: str
    reason: str


@dataclass(frozen=True)
class Coverage:
    """How much of one overlay one probe kind measured: every ordered pair of the nodes that should run an agent
    (Ready and active) is expected; the ones without a measurement say why."""

    network: str
    kind: str
    expected: int
    measured: int  # pairs with a measurement in the last `every` rounds (and the round in progress)
    missing: tuple[PairGap, ...] = ()
    every: int = 1  # the plan: each pair is measured at least once every `every` rounds (1: every round)
    this_round: int | None = None  # pairs measured in the latest round (None: not known, e.g. the demo)

    @property
    def complete(self) -> bool:
        return self.expected > 0 and self.measured == self.expected

    @property
    def rotating(self) -> bool:
        """Rounds measure a rotating part of the pairs (a large cluster): `measured` spans `every` rounds."""
        return self.every > 1

    def summary(self) -> str:
        """'ping 6 of 6 pairs', or with a rotating plan 'ping 597 this round, 39800 of 39800 pairs in the last 67
        rounds (each pair every 67 rounds)'."""
        pairs = f"{self.expected} pair" + ("" if self.expected == 1 else "s")
        if not self.rotating:
            return f"{self.kind} {self.measured} of {pairs}"
        now = f" {self.this_round} this round," if self.this_round is not None else ""
        return (f"{self.kind}{now} {self.measured} of {pairs} in the last {self.every} rounds (each pair every "
                f"{self.every} rounds)")


@dataclass(frozen=True, slots=True)  # hundreds of thousands at 200 nodes: no __dict__ each
class PairWindow:
    """One pair's ping counts at three horizons: the last round (the loss of *now*: a change shows within one
    round), the recent window (the last `window_s` seconds) and everything since probing started (the firm
    verdict: more packets, tighter bounds)."""

    network: str
    src_node: str
    dst_node: str
    round_sent: int
    round_received: int
    recent_sent: int
    recent_received: int
    total_sent: int
    total_received: int
    window_s: float

    @staticmethod
    def _pct(sent: int, received: int) -> float | None:
        return 100.0 * max(sent - received, 0) / sent if sent else None

    @property
    def round_loss_pct(self) -> float | None:
        return self._pct(self.round_sent, self.round_received)

    @property
    def recent_loss_pct(self) -> float | None:
        return self._pct(self.recent_sent, self.recent_received)

    @property
    def total_loss_pct(self) -> float | None:
        return self._pct(self.total_sent, self.total_received)


PACK_FROM = 2_000  # ProbeData.packed() packs an overlay with this many results or pairs or more
_INT_RANGE = 1 << 62  # what a packed integer column holds (beyond it, or not an int: the result is kept whole)
_PACKED_KINDS = ("ping", "mtu")
_RARE = ("bits_per_second", "retransmits", "resolved_vip", "resolved_tasks", "vip_answers", "task_answers")


class _Nodes:
    """Hostnames as small integers, for the packed columns."""

    __slots__ = ("names", "index")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}

    def of(self, name: str) -> int:
        found = self.index.get(name)
        if found is None:
            found = self.index[name] = len(self.names)
            self.names.append(name)
        return found


def _int(value: object) -> bool:
    return type(value) is int and -_INT_RANGE < value < _INT_RANGE


def _exact(at: object, sent: object, received: object, rtts: tuple, path_mtu: object) -> bool:
    """Values the columns give back exactly: a float time, counts and an MTU that are ints in range, RTTs that are
    floats or None (a recording's odd value — a float MTU, a count past 2**62, NaN — is kept whole, never
    changed)."""
    return (type(at) is float and _int(sent) and _int(received) and (path_mtu is None or _int(path_mtu))
            and all(v is None or (type(v) is float and v == v)  # NaN: kept whole (it equals itself only so)
                    for v in rtts))


def _packable(r: ProbeResult, network: str) -> bool:
    """A measured ping or path MTU of this overlay whose values the columns hold exactly."""
    return (r.network == network and not r.error and r.kind in _PACKED_KINDS
            and _exact(r.measured_at, r.sent, r.received, (r.rtt_min_ms, r.rtt_avg_ms, r.rtt_max_ms, r.rtt_mdev_ms),
                       r.path_mtu)
            and all(getattr(r, name) is None for name in _RARE))


def _sequence_eq(self: Sequence, other: object) -> bool:
    """Equal to any sequence of equal results in the same order (a tuple, a list, another view)."""
    if not isinstance(other, Sequence) or isinstance(other, (str, bytes, bytearray, memoryview, range)):
        return NotImplemented
    return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))


class ResultColumns:
    """PackedResults in the making, a result at a time: `add` takes a ProbeResult, `measured` a ping's or a
    path MTU's values without making one (the demo's round at 200 nodes: 238,800 results that never exist as
    objects, so no round leaves pymalloc's arenas pinned by a few survivors among them — that fragmentation
    held ~35 MB more per hour of rounds), `keep` one as it is. `packed()` is the finished PackedResults."""

    __slots__ = ("network", "_nodes", "_kind", "_src", "_dst", "_at", "_sent", "_received", "_rtt", "_mtu",
                 "_empty", "_kept")

    def __init__(self, network: str) -> None:
        self.network, self._nodes = network, _Nodes()
        self._kind, self._src, self._dst, self._at = array("b"), array("l"), array("l"), array("d")
        self._sent, self._received, self._rtt, self._mtu = array("q"), array("q"), array("d"), array("q")
        self._empty: array = array("b")
        self._kept: dict[int, ProbeResult] = {}

    def __len__(self) -> int:
        return len(self._kind)

    def add(self, r: ProbeResult) -> None:
        if not _packable(r, self.network):
            self.keep(r)
            return
        self.measured(r.kind, r.src_node, r.dst_node, r.measured_at, r.sent, r.received, r.rtt_min_ms,
                      r.rtt_avg_ms, r.rtt_max_ms, r.rtt_mdev_ms, r.path_mtu)

    def measured(self, kind: str, src: str, dst: str, at: float, sent: int = 0, received: int = 0,
                 rtt_min: float | None = None, rtt_avg: float | None = None, rtt_max: float | None = None,
                 rtt_mdev: float | None = None, path_mtu: int | None = None) -> None:
        """A measured ping ("ping") or path MTU ("mtu") of this overlay, from its values (the same as
        ProbeResult's, in its order)."""
        rtts = (rtt_min, rtt_avg, rtt_max, rtt_mdev)
        if kind not in _PACKED_KINDS or not _exact(at, sent, received, rtts, path_mtu):
            self.keep(ProbeResult(kind, self.network, src, dst, at, sent, received, *rtts, path_mtu))
            return
        nodes = self._nodes
        self._kind.append(_PACKED_KINDS.index(kind))
        self._src.append(nodes.of(src)), self._dst.append(nodes.of(dst)), self._at.append(at)
        self._sent.append(sent), self._received.append(received)
        self._rtt.extend(0.0 if v is None else v for v in rtts)
        self._mtu.append(0 if path_mtu is None else path_mtu)
        self._empty.append(sum(1 << bit for bit, v in enumerate((*rtts, path_mtu)) if v is None))  # which are None

    def keep(self, r: ProbeResult) -> None:
        """A result as it is (an error, throughput, discovery, another overlay's, an odd value)."""
        self._kept[len(self._kind)] = r
        self._kind.append(-1)
        self._src.append(0), self._dst.append(0), self._at.append(0.0), self._sent.append(0)
        self._received.append(0), self._rtt.extend((0.0, 0.0, 0.0, 0.0)), self._mtu.append(0), self._empty.append(0)

    def packed(self) -> PackedResults:
        packed = PackedResults.__new__(PackedResults)
        packed._take(self)
        return packed


class PackedResults(Sequence[ProbeResult]):
    """One overlay's probe results in columns (arrays of numbers, nodes as indices): a large cluster's hundreds of
    thousands of results are a few arrays instead of an object each — about a third of the memory, and nothing for the
    garbage collector to walk (a full collection over 240,000 ProbeResults paused the dashboard for 0.15-0.47 s
    at 200 nodes, every few seconds). Reading gives back equal ProbeResults, made as read, in the same order.
    Only measured pings and path MTUs are packed; the rest (errors, throughput, discovery) are kept as they are.
    ResultColumns builds one without the results."""

    __slots__ = ("_network", "_names", "_kind", "_src", "_dst", "_at", "_sent", "_received", "_rtt", "_mtu",
                 "_empty", "_kept", "_len")

    def __init__(self, network: str, results: Iterable[ProbeResult]) -> None:
        columns = ResultColumns(network)
        for r in results:
            columns.add(r)
        self._take(columns)

    def _take(self, c: ResultColumns) -> None:
        self._network, self._names = c.network, tuple(c._nodes.names)
        self._kind, self._src, self._dst, self._at = c._kind, c._src, c._dst, c._at
        self._sent, self._received, self._rtt, self._mtu, self._empty = c._sent, c._received, c._rtt, c._mtu, c._empty
        self._kept, self._len = c._kept, len(c._kind)

    def __len__(self) -> int:
        return self._len

    def _make(self, i: int) -> ProbeResult:
        kept = self._kept.get(i)
        if kept is not None:
            return kept
        names, empty = self._names, self._empty[i]
        if empty & 15 == 15:  # no RTT (a path MTU, a ping without a reply)
            low = avg = high = mdev = None
        else:
            low, avg, high, mdev = self._rtt[4 * i:4 * i + 4]
            if empty:
                low, avg, high, mdev = (None if empty >> bit & 1 else v
                                        for bit, v in enumerate((low, avg, high, mdev)))
        return ProbeResult(_PACKED_KINDS[self._kind[i]], self._network, names[self._src[i]], names[self._dst[i]],
                           self._at[i], self._sent[i], self._received[i], low, avg, high, mdev,
                           None if empty & 16 else self._mtu[i])

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return tuple(self._make(i) for i in range(*index.indices(self._len)))
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(index)
        return self._make(index)

    def __iter__(self) -> Iterator[ProbeResult]:
        return map(self._make, range(self._len))

    def keyed(self) -> Iterator[tuple[str, str, str, str, float]]:
        """(kind, network, src, dst, measured_at) of each result in order, without making the results."""
        names, kinds, src, dst, at, kept, network = (self._names, self._kind, self._src, self._dst, self._at,
                                                      self._kept, self._network)
        for i in range(self._len):
            r = kept.get(i)
            yield ((r.kind, r.network, r.src_node, r.dst_node, r.measured_at) if r is not None
                   else (_PACKED_KINDS[kinds[i]], network, names[src[i]], names[dst[i]], at[i]))

    __eq__ = _sequence_eq
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackedResults({self._network!r}, {self._len} results)"


class Results(Sequence[ProbeResult]):
    """Every overlay's results as one sequence (ProbeData.results()), read from the overlays' own sequences
    (`parts`) rather than copied out of them: a packed overlay's results are made as read, never all at once."""

    __slots__ = ("parts", "_starts", "_len")

    def __init__(self, parts: Iterable[Sequence[ProbeResult]]) -> None:
        self.parts = tuple(parts)
        self._starts = list(accumulate((len(p) for p in self.parts), initial=0))
        self._len = self._starts[-1]

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._len)))
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(index)
        part = bisect_right(self._starts, index) - 1
        return self.parts[part][index - self._starts[part]]

    def __iter__(self) -> Iterator[ProbeResult]:
        return chain.from_iterable(self.parts)

    def keyed(self) -> Iterator[tuple[str, str, str, str, float]]:
        """(kind, network, src, dst, measured_at) of each result in order (packed overlays': without making
        them)."""
        for part in self.parts:
            if isinstance(part, PackedResults):
                yield from part.keyed()
            else:
                yield from ((r.kind, r.network, r.src_node, r.dst_node, r.measured_at) for r in part)

    __eq__ = _sequence_eq
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Results({self._len} results in {len(self.parts)} parts)"


class ResultsAt(Mapping):
    """key -> the result at its position in `results` (a Sequence), made as read: an index of a packed
    overlay's results without holding them (lossmap's pairs, the findings' latest per pair)."""

    __slots__ = ("_results", "_at")

    def __init__(self, results: Sequence[ProbeResult], at: dict) -> None:
        self._results, self._at = results, at

    def __getitem__(self, key) -> ProbeResult:
        return self._results[self._at[key]]

    def __contains__(self, key: object) -> bool:
        return key in self._at

    def __iter__(self) -> Iterator:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


class WindowColumns:
    """PackedWindows in the making (see ResultColumns): `add` takes a PairWindow, `counts` a pair's counts without
    making one. Each pair once."""

    __slots__ = ("network", "_nodes", "_pairs", "_counts", "_window_s", "_kept")

    def __init__(self, network: str) -> None:
        self.network, self._nodes = network, _Nodes()
        self._pairs, self._counts, self._window_s = array("l"), array("q"), array("d")
        self._kept: dict[int, PairWindow] = {}

    def __len__(self) -> int:
        return len(self._window_s)

    def add(self, src: str, dst: str, w: PairWindow) -> None:
        """The window of (src, dst): kept whole when it is another pair's or its values are not the columns'."""
        values = (w.round_sent, w.round_received, w.recent_sent, w.recent_received, w.total_sent, w.total_received)
        if (w.network, w.src_node, w.dst_node) != (self.network, src, dst) or type(w.window_s) is not float \
                or not all(_int(v) for v in values):
            self._kept[len(self._window_s)] = w
            self._append(src, dst, (0, 0, 0, 0, 0, 0), 0.0)
            return
        self._append(src, dst, values, w.window_s)

    def counts(self, src: str, dst: str, round_sent: int, round_received: int, recent_sent: int,
               recent_received: int, total_sent: int, total_received: int, window_s: float) -> None:
        """A pair's counts (PairWindow's values, in its order)."""
        values = (round_sent, round_received, recent_sent, recent_received, total_sent, total_received)
        if type(window_s) is not float or not all(_int(v) for v in values):
            self.add(src, dst, PairWindow(self.network, src, dst, *values, window_s))
            return
        self._append(src, dst, values, window_s)

    def _append(self, src: str, dst: str, values: tuple[int, ...], window_s: float) -> None:
        self._pairs.append(self._nodes.of(src)), self._pairs.append(self._nodes.of(dst))
        self._counts.extend(values)
        self._window_s.append(window_s)

    def packed(self) -> PackedWindows:
        packed = PackedWindows.__new__(PackedWindows)
        packed._take(self)
        return packed


class PackedWindows(Mapping[tuple[str, str], PairWindow]):
    """One overlay's pair windows in columns, keyed (src, dst) in the order given; each PairWindow made as read
    (see PackedResults: the same reasons). A window whose values the columns cannot hold exactly is kept whole.
    WindowColumns builds one without the windows."""

    __slots__ = ("_network", "_names", "_index", "_pairs", "_counts", "_window_s", "_position", "_kept")

    def __init__(self, network: str, windows: Mapping[tuple[str, str], PairWindow]) -> None:
        columns = WindowColumns(network)
        for (src, dst), w in windows.items():
            columns.add(src, dst, w)
        self._take(columns)

    def _take(self, c: WindowColumns) -> None:
        self._network, self._names, self._index = c.network, tuple(c._nodes.names), c._nodes.index
        self._pairs, self._counts, self._window_s, self._kept = c._pairs, c._counts, c._window_s, c._kept
        pairs, n = self._pairs, len(self._names)
        self._position: dict[int, int] | array  # src * n + dst -> the pair's position
        if len(pairs) // 2 * 4 >= n * n:  # dense (a full mesh's windows): an array; else only the pairs there are
            self._position = array("l", [-1]) * (n * n)
        else:
            self._position = {}
        for p in range(len(pairs) // 2):
            self._position[pairs[2 * p] * n + pairs[2 * p + 1]] = p

    def __len__(self) -> int:
        return len(self._pairs) // 2

    def _find(self, key: object) -> int:
        if not isinstance(key, tuple) or len(key) != 2:
            return -1
        src, dst = self._index.get(key[0]), self._index.get(key[1])
        if src is None or dst is None:
            return -1
        at = src * len(self._names) + dst
        return self._position.get(at, -1) if isinstance(self._position, dict) else self._position[at]

    def __getitem__(self, key: tuple[str, str]) -> PairWindow:
        p = self._find(key)
        if p < 0:
            raise KeyError(key)
        if p in self._kept:
            return self._kept[p]
        c = self._counts[6 * p:6 * p + 6]
        return PairWindow(self._network, key[0], key[1], c[0], c[1], c[2], c[3], c[4], c[5], self._window_s[p])

    def __contains__(self, key: object) -> bool:
        return self._find(key) >= 0

    def __iter__(self) -> Iterator[tuple[str, str]]:
        names, pairs = self._names, self._pairs
        return ((names[pairs[2 * p]], names[pairs[2 * p + 1]]) for p in range(len(pairs) // 2))

    def __repr__(self) -> str:
        return f"PackedWindows({self._network!r}, {len(self)} pairs)"


@dataclass(frozen=True)
class ProbeData:
    """Probe results at one moment, per overlay: what the panes, the findings and a recording read. From a probe
    session (measured), the demo (simulated) or a recording (replayed). `packed()` holds the large overlays in
    columns (PackedResults, PackedWindows: read the same, made as read)."""

    recent: Mapping[str, Sequence[ProbeResult]] = field(default_factory=dict)  # latest per pair, recent window
    windows: Mapping[str, Mapping[tuple[str, str], PairWindow]] = field(default_factory=dict)
    coverage: tuple[Coverage, ...] = ()  # per overlay and kind: expected, measured, why not
    totals: Mapping[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)  # since start
    rounds: int = 0
    problem: str = ""  # why probing could not start or stopped

    def packed(self) -> ProbeData:
        """The same data with each overlay of PACK_FROM results or pairs or more packed (PackedResults,
        PackedWindows): for data that lives long and is read as a whole now and then (the demo writes its rounds
        straight into columns instead: ResultColumns, WindowColumns). Packing 240,000 results costs ~0.35 s and
        reading them all back ~0.8 s, so data made anew for every frame (a live session's while a round comes in)
        stays as it is."""
        recent = {net: PackedResults(net, rs) if len(rs) >= PACK_FROM and not isinstance(rs, PackedResults) else rs
                  for net, rs in self.recent.items()}
        windows = {net: PackedWindows(net, ws) if len(ws) >= PACK_FROM and not isinstance(ws, PackedWindows)
                   else ws for net, ws in self.windows.items()}
        return replace(self, recent=recent, windows=windows)

    def results(self, network: str | None = None) -> Sequence[ProbeResult]:
        if network is not None:
            return self.recent.get(network, ())
        return Results(self.recent.values())

    def windows_of(self, network: str) -> Mapping[tuple[str, str], PairWindow]:
        return self.windows.get(network, {})

    def coverage_of(self, network: str) -> tuple[Coverage, ...]:
        return tuple(c for c in self.coverage if c.network == network)


NO_PROBES = ProbeData()


@dataclass(frozen=True)
class Moment:
    """Something that changed between two frames, on the frames' time axis (analysis/timeline.py finds them)."""

    t: float
    kind: str  # placement / node / engine / finding / resolved
    subject: str  # the node, service, engine or finding subject
    text: str  # one line
    severity: str = "info"  # error / warning / info / ok: how it is coloured


FAULTS = {  # a fault a presenter can inject (the demo simulates it, the lab makes it real): what it takes
    "loss": "drop PCT % of the VXLAN packets arriving at a node (or on an overlay, or one pair)",
    "mtu": "an underlay MTU of BYTES through a node (or on an overlay, or one pair): full-size packets vanish",
    "node-down": "the node goes down (its tasks are rescheduled)",
    "engine-down": "the node's engine stops (its containers with it); the managers see the node down later",
    "partition": "the node is cut off the others (its link stays up); the managers see it down later",
    "update": "a rolling update of a service, one task at a time",
}
FAULT_TARGETS = ("node", "network", "pair", "service")


@dataclass(frozen=True)
class Fault:
    """A fault to inject (or the target whose faults to clear): on a node (hostname), an overlay, one pair of
    nodes on an overlay (node -> peer), or a service (`update`). `value`: loss in percent, MTU in bytes."""

    kind: str  # one of FAULTS ("" when clearing: every kind)
    node: str = ""
    network: str = ""
    peer: str = ""
    service: str = ""
    value: float = 0.0

    @property
    def target(self) -> str:
        """node, network, pair, service, or "" (everything: clear all)."""
        if self.service:
            return "service"
        if self.node and self.peer and self.network:
            return "pair"
        if self.node:
            return "node"
        return "network" if self.network else ""

    def subject(self) -> str:
        target = self.target
        if target == "pair":
            return f"{self.node} → {self.peer} on {self.network}"
        return {"node": self.node, "network": f"overlay {self.network}", "service": f"service {self.service}",
                "": "every target"}[target]

    def describe(self) -> str:
        what = {"loss": f"loss {self.value:g} %", "mtu": f"MTU black hole ({self.value:g} bytes)",
                "update": "rolling update"}.get(self.kind, self.kind)
        return f"{what} on {self.subject()}"

    def on(self, other: Fault) -> bool:
        """This (a target to clear) covers `other`: the same kind (or any), and the same subject (or everything;
        a node covers the pairs it is part of)."""
        if self.kind and self.kind != other.kind:
            return False
        target = self.target
        if not target:
            return True
        if target == "node":
            return self.node in (other.node, other.peer) and not other.service
        return (self.node, self.peer, self.network, self.service) == (
            other.node, other.peer, other.network, other.service)


# ------------------------------------------------------------------------------------------ the kernel view
# What one node's kernel says below the overlay (`--deep`: sources/deep.py reads, sources/kernel.py parses).
# Every part carries `unavailable`: "" when it was read, else why it was not (a tool the image lacks, a command
# that failed, nothing attempted) — a part that was not read is never a verdict.


@dataclass(frozen=True)
class UnderlayRoute:
    """How the node reaches one peer (`ip route get PEER`): the interface and the source address VXLAN uses."""

    peer: str  # the peer's swarm address
    interface: str = ""
    source: str = ""
    unavailable: str = ""


@dataclass(frozen=True)
class UnderlayLink:
    """An underlay interface the routes to the peers use: its MTU, counters, tx checksum offload and driver."""

    name: str
    mtu: int | None = None
    rx_errors: int | None = None
    rx_dropped: int | None = None
    tx_errors: int | None = None
    tx_dropped: int | None = None
    tx_checksum: str = ""  # "on" / "off" (ethtool -k tx-checksumming), "" when not read
    driver: str = ""  # ethtool -i
    unavailable: str = ""  # the link itself (ip link)
    offload_unavailable: str = ""  # ethtool -k
    driver_unavailable: str = ""  # ethtool -i


@dataclass(frozen=True)
class VxlanDevice:
    """An overlay sandbox's vxlan device and its counters."""

    name: str
    vni: int | None
    local: str = ""  # the device's own local address, when set
    dstport: int | None = None
    mtu: int | None = None
    rx_packets: int = 0
    rx_bytes: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True)
class FdbEntry:
    """A forwarding entry of a vxlan device: a MAC behind a remote VTEP (`bridge fdb`)."""

    mac: str
    dst: str  # the remote VTEP (a node's underlay address); "" for a local entry
    device: str = ""
    state: str = ""  # permanent / static / ...


@dataclass(frozen=True)
class NeighEntry:
    """A neighbour entry in an overlay sandbox: a task's overlay IP and its MAC."""

    ip: str
    mac: str
    device: str = ""
    state: str = ""  # PERMANENT / REACHABLE / ...


@dataclass(frozen=True)
class SandboxKernel:
    """One overlay network's sandbox on a node (the engine's netns `1-<network id prefix>`)."""

    sandbox: str
    network_prefix: str  # the network id's first characters, from the sandbox's name
    vxlan: tuple[VxlanDevice, ...] = ()
    fdb: tuple[FdbEntry, ...] = ()
    neighbours: tuple[NeighEntry, ...] = ()
    vxlan_unavailable: str = ""
    fdb_unavailable: str = ""
    neigh_unavailable: str = ""


@dataclass(frozen=True)
class FirewallRule:
    """A firewall rule that drops or rejects swarm's traffic (or accepts nothing of it), with its counters."""

    source: str  # iptables-legacy / iptables-nft / nft
    table: str
    chain: str
    text: str  # the rule as the tool printed it (one line, bounded)
    blocks: tuple[str, ...]  # what it blocks: "4789/udp", "7946/tcp", "7946/udp", "2377/tcp", "esp"
    verdict: str  # DROP / REJECT
    packets: int | None = None
    bytes: int | None = None
    docker: str = ""  # why it is Docker's own rule, by design ("" when it is not Docker's)
    addresses: tuple[str, ...] = ()  # the addresses it matches (-s/-d, ip saddr/daddr): a rule blocking "all"


@dataclass(frozen=True)
class FirewallView:
    backend: str = ""  # iptables-legacy / iptables-nft / nftables / "" (which holds the rules)
    rules: tuple[FirewallRule, ...] = ()  # the rules that block swarm's traffic (Docker's own too, marked)
    read: tuple[str, ...] = ()  # the readings the view is made of
    unavailable: str = ""  # "" when at least one reading was read; the others' reasons are in `partial`
    partial: str = ""


@dataclass(frozen=True)
class XfrmState:
    src: str
    dst: str
    proto: str  # esp / ah / comp
    spi: str
    reqid: int | None = None


@dataclass(frozen=True)
class XfrmPolicy:
    src: str  # selector
    dst: str
    direction: str  # in / out / fwd
    proto: str = ""  # the selector's protocol (udp for VXLAN)
    tmpl_src: str = ""
    tmpl_dst: str = ""


@dataclass(frozen=True)
class IpsecView:
    states: tuple[XfrmState, ...] = ()
    policies: tuple[XfrmPolicy, ...] = ()
    states_unavailable: str = ""
    policies_unavailable: str = ""


@dataclass(frozen=True)
class KernelFeature:
    """Whether the kernel has a feature (esp4, ip_vs): "yes" / "no" / "not loaded" (a loadable module not in,
    which may load on demand) and how that is known; `unavailable` when it could not be told."""

    name: str
    state: str = ""  # yes / no / not loaded / "" (unavailable)
    how: str = ""
    unavailable: str = ""


@dataclass(frozen=True)
class ConntrackView:
    count: int | None = None
    max: int | None = None
    unavailable: str = ""

    @property
    def used(self) -> float | None:
        return self.count / self.max if self.count is not None and self.max else None


@dataclass(frozen=True)
class NodeKernel:
    """One node's kernel view, parsed from one raw reading (`--deep`)."""

    node_id: str
    hostname: str
    read_at: float = 0.0
    routes: tuple[UnderlayRoute, ...] = ()
    links: tuple[UnderlayLink, ...] = ()
    sandboxes: tuple[SandboxKernel, ...] = ()
    firewall: FirewallView = field(default_factory=FirewallView)
    ipsec: IpsecView = field(default_factory=IpsecView)
    esp: KernelFeature = field(default_factory=lambda: KernelFeature("esp4"))
    ipvs: KernelFeature = field(default_factory=lambda: KernelFeature("ip_vs"))
    conntrack: ConntrackView = field(default_factory=ConntrackView)
    underlay_unavailable: str = ""  # the routes and links as a whole (no ip in the image, no peers...)
    sandboxes_unavailable: str = ""
    problems: tuple[str, ...] = ()  # readings cut short or not understood, one line each

    def sandbox_of(self, network_id: str) -> SandboxKernel | None:
        for sbx in self.sandboxes:
            if sbx.network_prefix and network_id.startswith(sbx.network_prefix):
                return sbx
        return None
