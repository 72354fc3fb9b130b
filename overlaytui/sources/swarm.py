"""The real cluster source: every reachable Docker engine of a swarm, polled and followed.

- One poll job per engine in a thread pool sized for the work (docker-py blocks; the default executor has only
  cpu+4 threads). Every API call has a timeout. A job still running when the next poll comes is not started
  twice: its engine shows `stale` and the others go on (polls never overlap, one dead engine never delays the
  rest).
- The swarm-level calls (nodes, services, tasks, networks: one each) go to one manager, inside its job.
- One event thread per engine (managers give swarm events, every engine its container/network events) wakes
  the consumer; there are no task events, so a reconcile poll catches what events miss. After a break the
  watcher reconnects with `since=` the last event it saw.
- A task's state reaches the manager after its container's events: a poll woken by an event often sees the
  task still `starting` (or still `running` while it shuts down). While tasks settle like that, the source
  asks for a follow-up poll every SETTLE_STEP, for up to SETTLE_FOR after the last event, so a scale shows
  its end state in about a second, not at the next reconcile.
- Stats come from `StatsStreams` (one stream per running container), synced after each poll.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import docker
from docker.errors import InvalidVersion, NotFound

from ..model import ClusterSnapshot, Engine, Health, Node, ProbeData, natural_key
from . import ssh
from .assemble import (
    EnginePoll,
    SwarmPoll,
    Topology,
    active_swarm_networks,
    assemble,
    assemble_topology,
    engine_poll_from_payloads,
    swarm_poll_from_payloads,
)
from .endpoints import EndpointSpec
from .errors import ENGINE_ERRORS, describe_error
from .parse import PayloadError, parse_all, parse_identity, parse_network, parse_node
from .stats import read_local_macs
from .streams import StatsStreams

EVENT_TYPES = ["container", "network", "service", "node"]
IDENTITY_REFRESH = 30.0  # /info is comparatively slow: ask it on connect and then at this interval
SETTLE_STEP = 1.0  # seconds between follow-up polls while tasks are on their way up or down
SETTLE_FOR = 15.0  # ... for at most this long after the last event (a task pending for lack of a node stays so)


@dataclass
class _EngineState:
    """The source's own mutable record of one engine (never shared with the UI)."""

    spec: EndpointSpec
    api: docker.APIClient | None = None
    api_version: str = "auto"
    poll: EnginePoll | None = None
    identity: dict = field(default_factory=dict)
    identity_at: float = 0.0
    error: str = ""
    updated_at: float | None = None
    busy_since: float | None = None  # monotonic time the running poll started
    job: asyncio.Future | None = None  # the running (or last) poll
    streams: StatsStreams | None = None
    pid_cache: dict[str, int] = field(default_factory=dict)
    event_stream: Any = None  # docker-py's CancellableStream (it has close())
    derived_for: str | None = None  # --ssh-nodes: the swarm node id this engine was derived for
    watched: bool = False  # its events thread runs
    removed: bool = False  # the node left the swarm: its threads stop
    failures: int = 0  # polls failed in a row (ssh engines back off)
    next_try: float = 0.0  # monotonic time before which a backed-off engine is not polled


class DockerSwarmSource:
    """ClusterSource over real Docker engines."""

    def __init__(
        self,
        endpoints: list[EndpointSpec],
        *,
        call_timeout: float = 5.0,
        stats: bool = True,
        stats_window: float = 1.0,
        events: bool = True,
        max_workers: int | None = None,
        ssh_nodes: bool = False,
        node_endpoints: Mapping[str, str] | None = None,
    ):
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = tuple(endpoints)
        # --ssh-nodes: every node's engine over ssh at its swarm address, with the first ssh endpoint's user and
        # port; `node_endpoints` (config [nodes]: hostname -> endpoint) overrides, for NAT and bastions
        self._ssh_base = next((e.url for e in endpoints if e.url.startswith("ssh://")), None) if ssh_nodes else None
        self._node_endpoints = dict(node_endpoints or {})
        if any(e.url.startswith("ssh://") for e in endpoints) or self._ssh_base or any(
                u.startswith("ssh://") for u in self._node_endpoints.values()):
            ssh.prepare()
        self.call_timeout = call_timeout
        self._engines = [_EngineState(spec) for spec in endpoints]
        self._stats = stats
        self._stats_window = stats_window
        self._events = events
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers or (64 if self._ssh_base else min(64, 4 + 2 * len(endpoints))),
            thread_name_prefix="overlaytui-docker")
        self._swarm: SwarmPoll | None = None
        self._swarm_error = ""
        self._manager: str | None = None  # endpoint of the manager the last swarm poll used
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._stats_ready = asyncio.Event()  # every engine's containers had two stats samples (set once)
        self._paired = asyncio.Event()  # a container's stats had two samples (wait_for_stats looks again)
        self._stats_told = False  # wait_for_change said so (a frame now: the first with every rate)
        self._started = False
        self._starting: asyncio.Future | None = None
        self._closing = threading.Event()
        self._mac_cache: dict[tuple[str, int], dict[str, str] | None] = {}
        self._topology: tuple[tuple, Topology] | None = None
        self._settling = False  # the last swarm poll saw tasks on their way up or down
        self._next_settle = 0.0  # monotonic: when a follow-up poll is due while settling
        self._settle_until = 0.0  # monotonic: follow-up polls stop here (SETTLE_FOR after the last event)

    @property
    def name(self) -> str:
        return self.endpoints[0].url if len(self.endpoints) == 1 else f"{len(self.endpoints)} engines"

    def probes(self) -> ProbeData | None:
        return None  # measured by a ProbeSession on these engines

    @property
    def playback(self) -> None:
        return None  # live

    # ------------------------------------------------------------------------------------- lifecycle

    def begin(self) -> None:
        """On the loop: start connecting without waiting; after one turn of the loop the first poll's jobs are in
        the pool (its stats streams start in them). `start()` waits for it (`snapshot` begins the source before it
        loads the rest of itself: the engine's ticks run meanwhile)."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
            self._starting.add_done_callback(lambda task: task.cancelled() or task.exception())  # start() says

    async def start(self) -> None:
        """Connect and take the first poll; once, however often it is called (or begun)."""
        self.begin()
        assert self._starting is not None
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = True
        await self.poll()
        if self._events:
            for state in self._engines:
                self._start_events(state)
        # the nodes' engines found by the first poll (--ssh-nodes, [nodes]): their first polls started as soon as the
        # manager named the nodes; the start waits for them as for the others (bounded as a poll is)
        first = [s.job for s in self._engines if s.derived_for and s.poll is None and s.job is not None
                 and not s.job.done()]
        if first:
            await asyncio.wait(first, timeout=self.call_timeout * 2 + 1)

    def _start_events(self, state: _EngineState) -> None:
        if state.watched:
            return
        state.watched = True
        threading.Thread(target=self._watch_events, args=(state,), daemon=True,
                         name=f"events-{state.spec.url}").start()

    @property
    def _following(self) -> bool:
        return bool(self._ssh_base or self._node_endpoints)

    def _follow_nodes(self) -> None:
        """--ssh-nodes: an engine for every swarm node no given engine speaks for, at the node's address over ssh
        (or its [nodes] endpoint); the engines of nodes that left the swarm go. Runs after each swarm poll, so
        joining and leaving nodes are followed at every reconcile; a new node's engine is polled at once."""
        if self._swarm is None or not self._following:
            return
        nodes = {n.id: n for n in self._swarm.nodes}
        covered = {s.identity.get("node_id") for s in self._engines if s.identity and not s.derived_for}
        derived = {s.derived_for: s for s in self._engines if s.derived_for}
        for node_id, state in derived.items():
            if node_id not in nodes or node_id in covered:
                self._drop(state)
        self._add_nodes(nodes.values(), covered)

    def _follow_early(self, manager_node: str | None, payload: object) -> None:
        """On the loop, while the one given manager's first poll goes on: the nodes it named (its first call) get
        their engines now, so their logins overlap the rest of the manager's poll. Adds, never drops (that is the
        swarm poll's to do)."""
        if self._swarm is not None or self._closing.is_set():
            return
        nodes, _problems = parse_all(payload, parse_node, "node")
        self._add_nodes(nodes, {manager_node})

    def _add_nodes(self, nodes: Iterable[Node], covered: set) -> None:
        derived = {s.derived_for for s in self._engines if s.derived_for}
        for node in sorted(nodes, key=lambda n: natural_key(n.hostname)):
            node_id = node.id
            if node_id in covered or node_id in derived or not node.address:
                continue
            url = self._node_endpoints.get(node.hostname) or (
                ssh.node_url(self._ssh_base, node.address) if self._ssh_base else None)
            if url is None or any(s.spec.url == url for s in self._engines):
                continue
            state = _EngineState(EndpointSpec(url, f"ssh-nodes {node.hostname}"), derived_for=node_id)
            self._engines.append(state)
            if self._loop is not None:
                self._submit(state, ask_swarm=False)  # its login and first poll now, not at the next poll
            if self._events and self._started:
                self._start_events(state)

    def _drop(self, state: _EngineState) -> None:
        state.removed = True
        self._engines.remove(state)
        state.api = None
        if state.streams is not None:
            state.streams.close()
        if state.event_stream is not None:
            try:
                state.event_stream.close()
            except Exception:  # noqa: BLE001 - closing a broken stream must not fail
                pass

    async def close(self) -> None:
        self._closing.set()
        for state in self._engines:
            if state.streams is not None:
                state.streams.close()
            stream = state.event_stream
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001 - closing a broken stream must not fail shutdown
                    pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------------ polls

    async def poll(self) -> None:
        """Re-read every engine (and the swarm from one manager), concurrently; return when all answered or
        the time budget is spent. Engines still busy from an earlier poll are left to finish."""
        self._loop = self._loop or asyncio.get_running_loop()
        manager = self._pick_manager()
        jobs = []
        now = time.monotonic()
        for state in list(self._engines):
            if state.busy_since is not None or state.next_try > now:
                continue
            jobs.append(self._submit(state, state.spec.url == manager))
        if jobs:
            await asyncio.wait(jobs, timeout=self.call_timeout * 2 + 1)

    def _submit(self, state: _EngineState, ask_swarm: bool) -> asyncio.Future:
        """On the loop: the engine's poll job, in the pool; its result is stored when it ends."""
        assert self._loop is not None
        state.busy_since = time.monotonic()
        future = self._loop.run_in_executor(self._executor, self._poll_engine, state, ask_swarm)
        future.add_done_callback(partial(self._store, state))
        state.job = future
        return future

    def _pick_manager(self) -> str | None:
        """The engine to ask for swarm-level objects: the last one that worked, else any known manager, else
        (first poll, or identities unknown) the first engine."""
        candidates = [s for s in self._engines if not s.error]
        for state in candidates:
            if state.spec.url == self._manager and state.identity.get("role") == "manager":
                return state.spec.url
        for state in candidates:
            if state.identity.get("role") == "manager":
                return state.spec.url
        unknown = [s for s in self._engines if not s.identity]
        return unknown[0].spec.url if unknown else None

    def _client(self, state: _EngineState, timeout: float | None) -> docker.APIClient:
        # an ssh engine: its socket forwarded over the host's one ssh master where it can be (else dial-stdio)
        url = ssh.engine_url(state.spec.url, self.call_timeout) if state.spec.url.startswith("ssh://") \
            else state.spec.url
        return docker.APIClient(
            base_url=url,
            tls=state.spec.tls,
            timeout=timeout,
            version=state.api_version,
            max_pool_size=16,
            use_ssh_client=url.startswith("ssh://"),
        )

    def _poll_engine(
        self, state: _EngineState, ask_swarm: bool
    ) -> tuple[EnginePoll | None, SwarmPoll | None, str, str]:
        """Runs in a worker thread. Returns (engine poll, swarm poll, engine error, swarm error)."""
        try:
            if state.api is None:
                state.api = self._client(state, self.call_timeout)
                state.api_version = state.api.api_version  # negotiated once; stats streams reuse it
            api = state.api
            identity = state.identity
            if not identity or time.monotonic() - state.identity_at > IDENTITY_REFRESH:
                identity = parse_identity(api.info())
            nodes = self._name_nodes_early(api, identity)
            engine_poll = self._read_engine(api, state, identity)
        except ENGINE_ERRORS + (PayloadError,) as exc:
            state.api = None
            if state.spec.url.startswith("ssh://"):
                ssh.lost(state.spec.url, self.call_timeout)  # a dead forward: ssh's reason in the log, now
            return None, None, describe_error(exc), ""
        swarm_poll, swarm_error = None, ""
        # the chosen manager asks; before any swarm view exists, every manager may (the first to answer wins)
        if identity.get("role") == "manager" and (ask_swarm or self._swarm is None):
            try:
                swarm_poll = self._read_swarm(api, identity, nodes)
            except ENGINE_ERRORS as exc:
                swarm_error = f"{state.spec.url}: swarm objects: {describe_error(exc)}"
        return engine_poll, swarm_poll, "", swarm_error

    def _name_nodes_early(self, api: docker.APIClient, identity: dict) -> object:
        """Worker thread. The first poll of the one given engine, a manager, when nodes are followed: its nodes first,
        handed to the loop at once (their engines' logins need only their addresses); the payload, for its swarm
        poll. None otherwise, or when the call fails (the swarm poll asks again and says why)."""
        loop = self._loop
        if (self._swarm is not None or not self._following or len(self.endpoints) != 1 or loop is None
                or identity.get("role") != "manager"):
            return None
        try:
            nodes = api.nodes()
        except ENGINE_ERRORS:
            return None
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._follow_early, identity.get("node_id"), nodes)
        return nodes

    def _read_engine(self, api: docker.APIClient, state: _EngineState, identity: dict) -> EnginePoll:
        containers = api.containers()
        if isinstance(containers, list):
            # the stats streams first: two samples are two engine ticks, and the rest of the poll (networks, their
            # views, the swarm's objects) runs within them instead of before them
            self._sync_streams(state, [c for c in containers if isinstance(c, dict)])
        networks = api.networks()
        endpoint = state.spec.url
        known, _ = parse_all(networks, parse_network, "network")
        views = {}
        for net in active_swarm_networks(containers, known):
            try:
                views[net.id] = api.inspect_network(net.id, verbose=True, scope="swarm")
            except NotFound:
                continue
        pids = self._container_pids(api, state, containers if isinstance(containers, list) else [])
        return engine_poll_from_payloads(endpoint, identity, containers, networks, views, pids)

    def _container_pids(self, api: docker.APIClient, state: _EngineState, containers: list) -> dict[str, int]:
        """Pids of containers, for the exact interface->network mapping; only worth asking when the engine can
        be on this host (a unix socket). Inspected once per container, kept while it lives."""
        if not state.spec.url.startswith("unix://"):
            return {}
        alive = {str(c.get("Id")) for c in containers if isinstance(c, dict)}
        for cid in list(state.pid_cache):
            if cid not in alive:
                del state.pid_cache[cid]
        for cid in alive - set(state.pid_cache):
            try:
                pid = (api.inspect_container(cid).get("State") or {}).get("Pid")
            except ENGINE_ERRORS:
                continue
            if isinstance(pid, int) and pid > 0:
                state.pid_cache[cid] = pid
        return dict(state.pid_cache)

    def _read_swarm(self, api: docker.APIClient, identity: dict, nodes: object = None) -> SwarmPoll:
        """`nodes`: the nodes' payload when this poll read it already (`_name_nodes_early`)."""
        try:
            services = api.services(status=True)
        except InvalidVersion:  # API < 1.41 has no ServiceStatus
            services = api.services()
        return swarm_poll_from_payloads(identity, api.nodes() if nodes is None else nodes, services, api.tasks(),
                                        api.networks(filters={"scope": "swarm"}))

    def _store(self, state: _EngineState, future: asyncio.Future) -> None:
        """On the event loop: take a finished poll's result."""
        state.busy_since = None
        if future.cancelled() or future.exception() is not None:
            failure = None if future.cancelled() else future.exception()
            state.error = describe_error(failure) if failure is not None else "poll failed"
            return
        engine_poll, swarm_poll, error, swarm_error = future.result()
        if state.removed:
            return  # its node left the swarm while this poll ran
        if error and state.spec.url.startswith("ssh://"):
            error = ssh.describe(state.spec.url, error)
            state.failures += 1  # an ssh login that fails is retried with backoff: 2, 4, 8 ... 30 s
            state.next_try = time.monotonic() + min(30.0, 2.0 ** state.failures)
        elif not error:
            state.failures, state.next_try = 0, 0.0
        state.error = error
        if engine_poll is not None:
            state.poll = engine_poll
            state.updated_at = time.time()
            if engine_poll.identity is not state.identity:
                state.identity, state.identity_at = dict(engine_poll.identity), time.monotonic()
            self._sync_streams(state, engine_poll.containers)
            self._stats_paired()  # its pairs may all have come while the rest of its poll ran
        if swarm_poll is not None:
            self._swarm, self._swarm_error, self._manager = swarm_poll, "", state.spec.url
            self._settling = any(task.settling for task in swarm_poll.tasks)
            self._next_settle = time.monotonic() + SETTLE_STEP
            self._follow_nodes()
        elif swarm_error:
            self._swarm_error = swarm_error

    def _sync_streams(self, state: _EngineState, containers: Iterable[Mapping]) -> None:
        """Stream exactly these containers' stats. Called in the engine's poll job as soon as its containers are
        listed, and again with the poll's result on the loop (one job per engine at a time: no race on `streams`)."""
        if not self._stats or self._closing.is_set() or state.removed:
            return
        if state.streams is None:
            state.streams = StatsStreams(partial(self._client, state), self._stats_window,
                                         on_pair=self._stats_arrived)
        state.streams.sync(str(c.get("Id")) for c in containers)

    def _stats_arrived(self) -> None:
        """A stream's thread: a container's rates can be shown now (once per container): looked at on the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed() and not self._closing.is_set():
            loop.call_soon_threadsafe(self._stats_paired)

    def _stats_paired(self) -> None:
        """On the loop. When every engine's containers have two samples for the first time, wake wait_for_change
        once: the first frame with every rate is built then, not at the next interval."""
        self._paired.set()
        if not self._stats_ready.is_set() and self._stats_complete():
            self._stats_ready.set()

    def _stats_complete(self) -> bool:
        """Every engine that answered streams all its containers, each of them with two samples."""
        for state in list(self._engines):
            if state.error or state.removed:
                continue
            if state.streams is None or state.poll is None or not state.streams.all_paired():
                return False
        return True

    # ----------------------------------------------------------------------------------------- events

    def _notify(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed() and not self._closing.is_set():
            loop.call_soon_threadsafe(self._changed.set)

    def _watch_events(self, state: _EngineState) -> None:
        """Thread: follow one engine's events; every event (and every break) wakes the consumer."""
        since: str | None = None
        backoff = 0.5
        while not self._closing.is_set() and not state.removed:
            try:
                probe = self._client(state, self.call_timeout)
                probe.ping()  # fail fast on a dead engine: the stream itself has no read timeout
                stream = self._client(state, None).events(
                    decode=True, since=since, filters={"type": EVENT_TYPES}
                )
                state.event_stream = stream
                if since is not None:
                    self._notify()  # reconnected after a break: whatever happened meanwhile needs a resync
                backoff = 0.5
                for event in stream:
                    if self._closing.is_set():
                        return
                    at, relevant = read_event(event)
                    since = at or since
                    if relevant:
                        self._notify()
            except ENGINE_ERRORS:
                pass
            if self._closing.is_set() or state.removed:
                return
            self._notify()  # the stream ended: the engine may be gone
            if since is None:
                since = f"{time.time():.9f}"
            self._closing.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    async def wait_for_change(self, timeout: float, debounce: float = 0.1) -> bool:
        """Wait until an event arrives or a follow-up poll is due while tasks settle (True), or `timeout`
        passes (False). Bursts within `debounce` collapse."""
        now = time.monotonic()
        settling = self._settling and now < self._settle_until
        wait = min(timeout, max(0.0, self._next_settle - now)) if settling else timeout
        try:
            if not await asyncio.wait_for(self._changed_or_stats(), wait):
                return False  # the stats just became complete: a frame now (no poll needed)
        except TimeoutError:
            if not settling or time.monotonic() < self._next_settle:
                return False
            # due now, and not again within a step even if this poll brings no swarm view (a busy manager)
            self._next_settle = time.monotonic() + SETTLE_STEP
            return True
        await asyncio.sleep(debounce)
        self._changed.clear()
        self._settle_until = time.monotonic() + SETTLE_FOR
        return True

    async def _changed_or_stats(self) -> bool:
        """True on an event; False (once per source) when every container's stats first had two samples."""
        if self._stats_told:
            await self._changed.wait()
            return True
        changed = asyncio.ensure_future(self._changed.wait())
        ready = asyncio.ensure_future(self._stats_ready.wait())
        try:
            await asyncio.wait([changed, ready], return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            ready.cancel()
        if self._changed.is_set():
            return True
        self._stats_told = True
        return False

    async def wait_for_stats(self, timeout: float) -> bool:
        """Wait until every running container has two samples (rates can be shown), or `timeout`."""
        deadline = time.monotonic() + timeout
        while self._stats and not self._stats_complete():
            self._paired.clear()
            try:
                await asyncio.wait_for(self._paired.wait(), deadline - time.monotonic())
            except TimeoutError:
                return self._stats_complete()
        return True

    # --------------------------------------------------------------------------------------- snapshot

    def snapshot(self) -> ClusterSnapshot:
        """Assemble the latest data into one snapshot (no engine calls)."""
        now = time.time()
        engines, problems = [], []
        for state in self._engines:
            engines.append(self._engine_model(state))
            if state.streams is not None and state.streams.skipped:
                problems.append(f"{state.spec.url}: no stats for {state.streams.skipped} containers (stream cap)")
            failing = state.streams.errors() if state.streams is not None else {}
            if failing:
                problems.append(f"{state.spec.url}: {len(failing)} stats stream(s) failing: "
                                f"{next(iter(failing.values()))}")
        if self._swarm is None:
            problems.append(self._no_swarm_reason())
        elif self._swarm_error:
            problems.append(f"{self._swarm_error} (showing the last answer)")
        polls = {s.spec.url: s.poll for s in self._engines if s.poll is not None}
        samples = {s.spec.url: s.streams.samples() for s in self._engines if s.streams is not None}
        # the same answers give the same topology objects: panes skip what did not change
        key = (self._swarm, *polls.values())
        if self._topology is None or len(key) != len(self._topology[0]) or any(
                a is not b for a, b in zip(key, self._topology[0], strict=True)):
            self._topology = (key, assemble_topology(self._swarm, polls))
        return assemble(taken_at=now, engines=engines, swarm=self._swarm, polls=polls, samples=samples,
                        read_macs=self._read_macs, problems=problems, topology=self._topology[1])

    def _engine_model(self, state: _EngineState) -> Engine:
        identity = state.identity
        if state.error:
            health, message = Health.ERROR, state.error
        elif state.busy_since is not None and time.monotonic() - state.busy_since > self.call_timeout:
            health, message = Health.STALE, f"no answer for {time.monotonic() - state.busy_since:.0f} s"
        elif state.poll is None:
            health, message = Health.STALE, "not polled yet"
        else:
            health, message = Health.OK, ""
        return Engine(
            endpoint=state.spec.url,
            health=health,
            message=message,
            node_id=identity.get("node_id"),
            hostname=identity.get("hostname"),
            role=identity.get("role", "unknown"),
            version=identity.get("version", ""),
            updated_at=state.updated_at,
            firewall=identity.get("firewall", ""),
            api_version=state.api_version if state.api_version != "auto" else "",
        )

    def _no_swarm_reason(self) -> str:
        identities = [s.identity for s in self._engines if s.identity and not s.error]
        if not identities:
            return "no engine answered: nothing to show"
        if all(i.get("role") == "standalone" for i in identities):
            return "not a swarm: showing containers and local networks only"
        if not any(i.get("role") == "manager" for i in identities):
            return ("no manager reachable (only workers given): nodes, services and tasks need a manager — "
                    "add a manager with --host or --context")
        return self._swarm_error or "the manager has not answered yet"

    def _read_macs(self, pid: int | None, container_id: str) -> dict[str, str] | None:
        if not pid:
            return None
        key = (container_id, pid)
        if key not in self._mac_cache:
            if len(self._mac_cache) > 4096:
                self._mac_cache.clear()
            self._mac_cache[key] = read_local_macs(pid, container_id)
        return self._mac_cache[key]


def read_event(event: object) -> tuple[str | None, bool]:
    """(the event's time as `since=` wants it, or None; whether it may change what is shown). Pure: any payload,
    including ones without the legacy `status`/`id`/`from` fields (Engine API >= 1.44), gives an answer."""
    if not isinstance(event, dict):
        return None, False
    nanos = event.get("timeNano")
    at = None
    if isinstance(nanos, int) and not isinstance(nanos, bool) and nanos > 0:
        at = f"{nanos // 1_000_000_000}.{nanos % 1_000_000_000:09d}"
    if str(event.get("Action", "")).startswith("exec_"):
        return at, False  # our own and others' docker exec: no topology change
    return at, True
