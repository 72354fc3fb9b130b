"""A probing session's windows and coverage without a lab (issue 21): real `ProbeSession` rounds (plan, jobs,
scheduler, recording, state), with the engine replaced by scripted probe outputs and the clock by the results'
own `measured_at` — the only time `_record` and the windows read, so nothing sleeps.

Only lab tests used to reach these paths: a session that counted an error result as measured would turn
`probe`'s exit 3 (partial) into 0, and nothing else would notice."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial

import pytest

from overlaytui.analysis.thresholds import LossThresholds
from overlaytui.commands.probe import coverage_dict, outcome
from overlaytui.model import (
    ClusterSnapshot,
    Coverage,
    Engine,
    Health,
    Network,
    Node,
    PairGap,
    PairWindow,
    ProbeResult,
)
from overlaytui.probes import runner, session
from overlaytui.probes.agent import AgentTask
from overlaytui.probes.capabilities import Capabilities
from overlaytui.probes.mtu import find_path_mtu
from overlaytui.probes.scheduler import ProbeScheduler
from overlaytui.probes.session import ProbeSession, ProbeSettings, ProbeState

NET = "net"
HOSTS = ("node1", "node2", "node3")
ADDRESS = {"node1": "10.9.0.1", "node2": "10.9.0.2", "node3": "10.9.0.3"}
HOST_OF = {address: host for host, address in ADDRESS.items()}


def snapshot(hosts=HOSTS, engines_for=HOSTS, state="ready") -> ClusterSnapshot:
    nodes = tuple(Node(f"id-{h}", h, "manager" if h == "node1" else "worker", state if h == "node3" else "ready",
                       "active", f"192.168.0.{i}") for i, h in enumerate(hosts, 1))
    engines = tuple(Engine(f"tcp://{h}:2375", Health.OK, node_id=f"id-{h}", hostname=h,
                           role="manager" if h == "node1" else "worker") for h in engines_for)
    net = Network("netid", NET, "overlay", "swarm", "10.9.0.0/24", None, 4097, 1400, False, False, False, False)
    return ClusterSnapshot(0.0, engines, "swarm", nodes=nodes, networks=(net,))


class Clock:
    """The results' time: each round's results carry `now`, moved by the test."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now


class FakeApi:
    def __init__(self, url: str = "", timeout: float | None = None) -> None:
        self.url, self.timeout = url, timeout

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def close(self) -> None:
        pass


class Lab:
    """Scripted probe outputs per (src, dst): (sent, received) or an error text; path MTUs; discovery answers."""

    def __init__(self, monkeypatch, kinds=("ping",), window_s=300.0, snap=None) -> None:
        self.clock = Clock()
        self.snap = snap or snapshot()
        self.pings: dict[tuple[str, str], tuple[int, int] | str] = {}
        self.path_mtu: dict[tuple[str, str], int] = {}
        self.sweeps: list[tuple[str, tuple[str, ...], int, float]] = []  # (src, targets, count, interval)
        self.caps_seen: list = []  # what each DF ping was told of the image's ping
        self.session = ProbeSession(lambda: self.snap, ProbeSettings(kinds=kinds, window_s=window_s, count=10,
                                                                      interval=0.2))
        self.session._agents = {NET: [AgentTask(f"id-{h}", f"c-{h}", ADDRESS[h]) for h in HOSTS]}
        self.session._agent_failures = {NET: {}}
        self.clients: list[tuple[str, float | None]] = []  # (engine url, timeout) of each client made
        monkeypatch.setattr(self.session, "_client", self._client)
        monkeypatch.setattr(runner, "ping_sweep", self._sweep)
        monkeypatch.setattr(runner, "mtu_sweep", self._mtu_sweep)
        monkeypatch.setattr(runner, "discovery", self._discovery)
        monkeypatch.setattr(session, "ProbeScheduler", partial(ProbeScheduler, jitter=0.0))  # rounds in ms

    def _client(self, url, timeout=None) -> FakeApi:
        self.clients.append((url, timeout))
        return FakeApi(url, timeout)

    @staticmethod
    def _through(api, container, src) -> None:
        """Every probe runs in the source node's agent, through that node's engine."""
        assert (api.url, container) == (f"tcp://{src}:2375", f"c-{src}")

    def _sweep(self, api, container, network, src, targets, count, interval, caps=None):
        self._through(api, container, src)
        assert targets == {dst: ADDRESS[dst] for dst in targets}
        self.sweeps.append((src, tuple(sorted(targets)), count, interval))
        results = []
        for dst in targets:
            scripted = self.pings.get((src, dst), (count, count))
            if isinstance(scripted, str):
                results.append(ProbeResult("ping", network, src, dst, self.clock.now, error=scripted))
            else:
                results.append(ProbeResult("ping", network, src, dst, self.clock.now, sent=scripted[0],
                                           received=scripted[1], rtt_avg_ms=0.3))
        return results

    def _mtu_sweep(self, api, container, network, src, targets, high, caps=None) -> list[ProbeResult]:
        """The search as the agent's shell runs it (tests/unit/test_mtu_script.py runs the real one)."""
        self._through(api, container, src)
        assert targets == {dst: ADDRESS[dst] for dst in targets}
        self.caps_seen.append(caps)
        results = []
        for dst in targets:
            mtu = self.path_mtu.get((src, dst), 1400)

            async def passes(size: int, mtu: int = mtu) -> bool:
                return size <= mtu
            path = asyncio.run(find_path_mtu(passes, high))
            results.append(ProbeResult("mtu", network, src, dst, self.clock.now, path_mtu=path) if path else
                           ProbeResult("mtu", network, src, dst, self.clock.now,
                                       error="no packet of any size arrives"))
        return results

    def _discovery(self, api, container, network, src, dst, service, address):
        self._through(api, container, src)
        assert (service, address) == (self.session.service_name(network), ADDRESS[dst])
        return ProbeResult("discovery", network, src, dst, self.clock.now, resolved_vip="10.9.0.100",
                           resolved_tasks=3, vip_answers=True, task_answers=True)

    def round(self, at: float | None = None) -> list[ProbeResult]:
        if at is not None:
            self.clock.now = at
        seen: list[ProbeResult] = []
        results = asyncio.run(self.session.run_round(seen.append))
        assert sorted(map(id, seen)) == sorted(map(id, results))  # every result is given as it comes
        return results


@pytest.fixture
def lab(monkeypatch):
    return Lab(monkeypatch)


def window(state_or_session, src="node1", dst="node2") -> PairWindow:
    return state_or_session.windows(NET)[(src, dst)]


# ------------------------------------------------------------------------------------------- windows


def test_the_last_round_is_the_newest_round(lab):
    lab.pings[("node1", "node2")] = (10, 10)
    lab.round(1_000.0)
    lab.pings[("node1", "node2")] = (10, 4)
    lab.round(1_010.0)
    w = window(lab.session)
    assert (w.round_sent, w.round_received) == (10, 4)
    assert (w.recent_sent, w.recent_received) == (20, 14)
    assert (w.total_sent, w.total_received) == (20, 14)
    assert w.window_s == 300.0 and (w.network, w.src_node, w.dst_node) == (NET, "node1", "node2")
    [latest] = [r for r in lab.session.probe_results(NET) if (r.src_node, r.dst_node) == ("node1", "node2")]
    assert (latest.sent, latest.received, latest.measured_at) == (10, 4, 1_010.0)  # its own round's counts
    [recent] = [r for r in lab.session.recent_results(NET) if (r.src_node, r.dst_node) == ("node1", "node2")]
    assert (recent.sent, recent.received) == (20, 14)  # the window's counts, the latest round's other fields
    assert recent.measured_at == 1_010.0 and lab.session.rounds == 2


def test_a_round_older_than_the_window_leaves_it_but_stays_in_the_total(lab):
    lab.pings[("node1", "node2")] = (10, 0)
    lab.round(1_000.0)
    lab.pings[("node1", "node2")] = (10, 9)
    lab.round(1_200.0)
    lab.pings[("node1", "node2")] = (10, 10)
    lab.round(1_300.0)  # the first round is exactly 300 s old: still inside
    w = window(lab.session)
    assert (w.recent_sent, w.recent_received) == (30, 19)
    lab.round(1_300.5)  # now it is 300.5 s old: out of the window, still in the total
    w = window(lab.session)
    assert (w.round_sent, w.round_received) == (10, 10)
    assert (w.recent_sent, w.recent_received) == (30, 29)
    assert (w.total_sent, w.total_received) == (40, 29)
    assert lab.session.totals()[(NET, "node1", "node2")] == (40, 29)
    assert w.recent_loss_pct == pytest.approx(100 / 30) and w.total_loss_pct == pytest.approx(100 * 11 / 40)


def test_a_short_window_keeps_only_the_rounds_inside_it(monkeypatch):
    lab = Lab(monkeypatch, window_s=15.0)
    for i, received in enumerate((1, 2, 3, 4)):
        lab.pings[("node2", "node3")] = (10, received)
        lab.round(100.0 + 10 * i)
    w = window(lab.session, "node2", "node3")
    assert (w.recent_sent, w.recent_received) == (20, 7) and w.window_s == 15.0  # rounds at 120 and 130
    assert (w.total_sent, w.total_received) == (40, 10)


def test_error_rounds_feed_no_window_and_no_total(lab):
    lab.pings[("node1", "node2")] = (10, 7)
    lab.round(1_000.0)
    lab.pings[("node1", "node2")] = "exec on node1: EOF"
    lab.round(1_010.0)
    w = window(lab.session)
    assert (w.round_sent, w.recent_sent, w.total_sent) == (10, 10, 10)  # the last *measured* round
    assert lab.session.totals()[(NET, "node1", "node2")] == (10, 7)
    [latest] = [r for r in lab.session.probe_results(NET) if (r.src_node, r.dst_node) == ("node1", "node2")]
    assert latest.error == "exec on node1: EOF" and not latest.measured
    [recent] = [r for r in lab.session.recent_results(NET) if (r.src_node, r.dst_node) == ("node1", "node2")]
    assert recent is latest  # an error result is never given the window's counts


def test_a_ping_that_sent_nothing_is_not_a_round(lab):
    lab.pings[("node1", "node2")] = (0, 0)
    lab.round(1_000.0)
    assert ("node1", "node2") not in lab.session.windows(NET)
    assert (NET, "node1", "node2") not in lab.session.totals()
    [cov] = lab.session.coverage(NET)
    assert (cov.expected, cov.measured) == (6, 5)
    assert cov.missing == (PairGap("node1", "node2", "no result yet"),)


def test_the_state_is_the_same_object_until_a_result_arrives(lab):
    lab.round(1_000.0)
    state = lab.session.state()
    assert lab.session.state() is state and state.windows(NET) is state.windows(NET)
    assert state.round_count == 1 and state.window_s == 300.0 and state.kinds == ("ping",)
    lab.round(1_005.0)
    newer = lab.session.state()
    assert newer is not state and newer.round_count == 2
    assert window(state).total_sent == 10 and window(newer).total_sent == 20  # the old state stays frozen
    assert lab.session.windows(NET) is newer.windows(NET)


# ------------------------------------------------------------------------------------------ coverage


def test_complete_coverage_and_every_pair_measured(lab):
    results = lab.round(1_000.0)
    assert sorted((r.src_node, r.dst_node) for r in results) == [
        (s, d) for s in HOSTS for d in HOSTS if s != d]
    assert sorted(lab.sweeps) == [("node1", ("node2", "node3"), 10, 0.2), ("node2", ("node1", "node3"), 10, 0.2),
                                  ("node3", ("node1", "node2"), 10, 0.2)]
    [cov] = lab.session.coverage()
    assert cov == Coverage(NET, "ping", 6, 6, (), every=1, this_round=6)
    assert cov.complete
    assert outcome(results, lab.session.coverage(), lab.snap, LossThresholds())[0] == 0


def test_an_error_result_is_not_measured_and_its_reason_is_kept(lab):
    lab.pings[("node2", "node3")] = "exec on node2: connection reset"
    results = lab.round(1_000.0)
    [cov] = lab.session.coverage(NET)
    assert (cov.expected, cov.measured, cov.complete) == (6, 5, False)
    assert cov.missing == (PairGap("node2", "node3", "exec on node2: connection reset"),)
    code, verdict = outcome(results, lab.session.coverage(), lab.snap, LossThresholds())
    assert code == 3 and verdict == "partial: 5 of 6 pair measurements made, those within the thresholds"
    assert coverage_dict(cov) == {"network": NET, "kind": "ping", "expected": 6, "measured": 5, "complete": False,
                                  "missing": [{"src_node": "node2", "dst_node": "node3",
                                               "reason": "exec on node2: connection reset"}]}


def test_every_pair_failing_is_nothing_measured(lab):
    for s in HOSTS:
        for d in HOSTS:
            lab.pings[(s, d)] = f"exec on {s}: EOF"
    results = lab.round(1_000.0)
    [cov] = lab.session.coverage()
    assert (cov.expected, cov.measured) == (6, 0)
    assert [g.reason for g in cov.missing] == [f"exec on {s}: EOF" for s in HOSTS for d in HOSTS if s != d]
    code, verdict = outcome(results, lab.session.coverage(), lab.snap, LossThresholds())
    assert code == 2
    assert verdict == "nothing measured (6 pairs expected): exec on node1: EOF; exec on node2: EOF; exec on node3: EOF"


def test_why_a_pair_is_not_planned(monkeypatch):
    lab = Lab(monkeypatch, snap=snapshot(engines_for=("node1", "node2")))  # no engine connection to node3
    lab.session._agents[NET] = [t for t in lab.session._agents[NET] if t.node_id != "id-node2"]
    lab.session._agent_failures[NET] = {"id-node2": "image not found"}
    results = lab.round(1_000.0)
    assert sorted((r.src_node, r.dst_node) for r in results) == [("node1", "node3")]
    [cov] = lab.session.coverage()
    assert (cov.expected, cov.measured) == (6, 1)
    assert {(g.src_node, g.dst_node): g.reason for g in cov.missing} == {
        ("node1", "node2"): "no probe agent on node2: image not found",
        ("node2", "node1"): "no probe agent on node2: image not found",
        ("node2", "node3"): "no probe agent on node2: image not found",
        ("node3", "node1"): "no engine connection to node3",
        ("node3", "node2"): "no probe agent on node2: image not found",
    }
    assert outcome(results, lab.session.coverage(), lab.snap, LossThresholds())[0] == 3


def test_an_agent_that_never_ran_and_a_tool_the_image_lacks(monkeypatch):
    lab = Lab(monkeypatch, kinds=("ping", "mtu"))
    lab.session._agents[NET] = [t for t in lab.session._agents[NET] if t.node_id != "id-node3"]
    lab.session._caps[(NET, "id-node1")] = Capabilities(ping="/bin/ping", iputils=False, tools=frozenset({"sleep"}))
    lab.session._caps[(NET, "id-node2")] = "checking the agent's tools: timed out"
    results = lab.round(1_000.0)
    assert {(r.kind, r.src_node, r.dst_node) for r in results} == {("ping", "node1", "node2")}
    ping, mtu = lab.session.coverage()
    assert (ping.kind, ping.expected, ping.measured, mtu.kind, mtu.measured) == ("ping", 6, 1, "mtu", 0)
    reasons = {(g.src_node, g.dst_node): g.reason for g in mtu.missing}
    assert reasons[("node1", "node3")] == "no probe agent on node3: none was running when probing started"
    assert reasons[("node2", "node1")] == "checking the agent's tools: timed out"
    assert "-M do" in reasons[("node1", "node2")] or "iputils" in reasons[("node1", "node2")]


def test_a_node_not_ready_is_not_expected(monkeypatch):
    lab = Lab(monkeypatch, snap=snapshot(state="down"))
    results = lab.round(1_000.0)
    assert len(results) == 6  # an agent task still listed on it probes (its pairs explained by node.down)...
    [cov] = lab.session.coverage()
    assert (cov.expected, cov.measured, cov.missing) == (2, 2, ())  # ...but only Ready nodes' pairs are expected
    assert lab.session.state().expected == {NET: ("node1", "node2")}


def test_path_mtu_rounds_find_each_pairs_mtu(monkeypatch):
    lab = Lab(monkeypatch, kinds=("mtu",))
    lab.path_mtu[("node1", "node3")] = 1300
    results = lab.round(1_000.0)
    found = {(r.src_node, r.dst_node): r.path_mtu for r in results}
    assert found[("node1", "node3")] == 1300 and len(found) == 6
    assert found[("node3", "node1")] == 1350  # the overlay's effective MTU: the search starts there
    assert lab.session.coverage() == (Coverage(NET, "mtu", 6, 6, (), this_round=6),)
    assert lab.session.windows(NET) == {}  # only pings have windows


# ------------------------------------------------------------------------------------------ discovery


def test_discovery_coverage_unit_is_the_source_node(monkeypatch):
    lab = Lab(monkeypatch, kinds=("discovery",))
    results = lab.round(1_000.0)
    assert sorted((r.src_node, r.dst_node) for r in results) == [("node1", "node2"), ("node2", "node1"),
                                                                  ("node3", "node1")]  # one per node
    assert lab.session.coverage() == (Coverage(NET, "discovery", 3, 3, (), this_round=3),)


def state_with(latest: dict, kinds=("discovery",), why=None, hosts=HOSTS) -> ProbeState:
    return ProbeState(latest={(r.kind, r.network, r.src_node, r.dst_node): r for r in latest}, rounds={},
                      totals={}, expected={NET: hosts}, why=why or {}, kinds=kinds, window_s=300.0, round_count=1)


def test_discovery_follows_the_latest_target_and_its_error():
    ok = ProbeResult("discovery", NET, "node1", "node3", 10.0, resolved_vip="10.9.0.100", resolved_tasks=3,
                     vip_answers=True, task_answers=True)
    failed = ProbeResult("discovery", NET, "node2", "node3", 20.0, error="on node2: the TCP check did not run")
    older = replace(failed, dst_node="node1", measured_at=5.0, error="")
    [cov] = state_with([ok, failed, older]).coverage()
    assert (cov.expected, cov.measured) == (3, 1)  # node2's newest probe (to node3) failed; its older one is not it
    assert cov.missing == (PairGap("node2", "node3", "on node2: the TCP check did not run"),
                           PairGap("node3", "node1", "no result yet"))


def test_a_planned_reason_wins_over_the_results_error():
    failed = ProbeResult("ping", NET, "node1", "node2", 1.0, error="exec on node1: EOF")
    why = {("ping", NET, "node1", "node2"): "no engine connection to node1"}
    [cov] = state_with([failed], kinds=("ping",), why=why, hosts=("node1", "node2")).coverage()
    assert cov.missing == (PairGap("node1", "node2", "no engine connection to node1"),
                           PairGap("node2", "node1", "no result yet"))


def test_coverage_per_overlay_in_natural_order():
    state = ProbeState(latest={}, rounds={}, totals={}, expected={"net10": ("a", "b"), "net2": ("a",)},
                       why={}, kinds=("ping",), window_s=300.0, round_count=0)
    assert [(c.network, c.expected) for c in state.coverage()] == [("net2", 0), ("net10", 2)]
    assert [c.network for c in state.coverage("net10")] == ["net10"]
    assert not state.coverage()[0].complete  # nothing expected is never complete


# ------------------------------------------------------------------------------------------ exit codes


def test_probe_exit_codes_from_coverage():
    snap = snapshot()
    th = LossThresholds()
    good = [ProbeResult("ping", NET, "node1", "node2", 1.0, sent=100, received=100, rtt_avg_ms=0.2)]
    lossy = [replace(good[0], received=50)]
    full, partial = Coverage(NET, "ping", 1, 1), Coverage(NET, "ping", 2, 1, (PairGap("node2", "node1", "x"),))
    assert outcome(good, [full], snap, th) == (0, "all 1 pair measurements within the thresholds")
    assert outcome(lossy, [full], snap, th) == (1, "a threshold is crossed (1 of 1 pair measurements made)")
    assert outcome(lossy, [partial], snap, th)[0] == 1  # a crossed threshold outranks partial coverage
    assert outcome(good, [partial], snap, th)[0] == 3
    assert outcome([], [], snap, th) == (2, "nothing measured (0 pairs expected): no pair to probe")
    many = Coverage(NET, "ping", 4, 0, tuple(PairGap("a", "b", f"reason {i}") for i in (1, 2, 3, 4, 4)))
    assert outcome([], [many], snap, th) == (
        2, "nothing measured (4 pairs expected): reason 1; reason 2; reason 3 (and 1 more reasons)")
    several = [partial, Coverage("other", "mtu", 3, 3)]
    assert outcome(good, several, snap, th) == (
        3, "partial: 4 of 5 pair measurements made, those within the thresholds")


# ------------------------------------------------------------------------- what a probe that fails gives


ERROR_409 = "exec on {src}: 409 Conflict: container is not running"


def test_engine_errors_become_each_pairs_reason(lab, monkeypatch):
    import docker

    def refused(*args, **kwargs):
        raise docker.errors.APIError("409 Conflict: container is not running")

    lab.session.settings = replace(lab.session.settings, kinds=("ping", "mtu", "discovery"))
    monkeypatch.setattr(runner, "ping_sweep", refused)
    monkeypatch.setattr(runner, "mtu_sweep", refused)
    monkeypatch.setattr(runner, "discovery", refused)
    results = lab.round(1_000.0)
    assert {(r.kind, r.src_node, r.dst_node) for r in results} == (
        {("ping", s, d) for s in HOSTS for d in HOSTS if s != d} | {("mtu", s, d) for s in HOSTS for d in HOSTS
                                                                   if s != d}
        | {("discovery", "node1", "node2"), ("discovery", "node2", "node1"), ("discovery", "node3", "node1")})
    assert {r.error for r in results if r.src_node == "node2"} == {ERROR_409.format(src="node2")}
    assert all(not r.measured for r in results)
    assert [(c.kind, c.measured) for c in lab.session.coverage()] == [("ping", 0), ("mtu", 0), ("discovery", 0)]


def test_a_df_ping_that_does_not_run_is_no_mtu(lab, monkeypatch):
    """The real runner through the session: the agent's search said ping did not run (its section's ERR)."""
    lab.session.settings = replace(lab.session.settings, kinds=("mtu",))
    monkeypatch.setattr(runner, "mtu_sweep", real_mtu_sweep)

    def exec_run(api, container, command, seconds=None):  # the search's targets: its arguments
        return 0, "".join(f"=== {a}\nERR ping: socket: Operation not permitted\n" for a in ADDRESS.values()
                          if a in command[4:])

    monkeypatch.setattr(runner, "exec_run", exec_run)
    results = lab.round(1_000.0)
    assert {r.error for r in results} == {f"on {h}: the DF ping did not run: ping: socket: Operation not permitted"
                                          for h in HOSTS}
    assert all(r.path_mtu is None for r in results)


def test_each_source_searches_every_destination_in_one_exec_up_to_the_overlays_mtu(lab, monkeypatch):
    lab.session.settings = replace(lab.session.settings, kinds=("mtu",))
    monkeypatch.setattr(runner, "mtu_sweep", real_mtu_sweep)
    scripts = []

    def exec_run(api, container, command, seconds=None):
        scripts.append((container, command[2], seconds))
        return 0, "".join(f"=== {a}\n{'NONE' if a == ADDRESS['node2'] else 'MTU 1350'}\n" for a in ADDRESS.values()
                          if a in command[4:])

    monkeypatch.setattr(runner, "exec_run", exec_run)
    results = {(r.src_node, r.dst_node): r for r in lab.round(1_000.0)}
    assert sorted(c for c, _s, _t in scripts) == [f"c-{h}" for h in HOSTS]  # one exec per source
    assert all("H=1350" in script and seconds == runner.mtu_seconds(2, 1350) + 5 for _c, script, seconds in scripts)
    lost = results[("node1", "node2")]
    assert (lost.kind, lost.network, lost.error, lost.path_mtu) == ("mtu", NET, "no packet of any size arrives", None)
    assert results[("node2", "node1")].path_mtu == 1350


real_mtu_sweep = runner.mtu_sweep


class _Asyncio:
    """The asyncio module as the session sees it, with its own sleep (no real waiting)."""

    def __init__(self, sleep) -> None:
        self.sleep = sleep

    def __getattr__(self, name):
        return getattr(asyncio, name)


def test_throughput_every_nth_round_only(monkeypatch):
    lab = Lab(monkeypatch, kinds=("ping", "iperf"))
    lab.session.settings = replace(lab.session.settings, iperf_every_rounds=2, iperf_seconds=2)
    measured = []

    def throughput(api, container, network, src, dst, address, seconds):
        measured.append((src, dst, address, seconds))
        return ProbeResult("iperf", network, src, dst, lab.clock.now, bits_per_second=1e8, retransmits=0)

    monkeypatch.setattr(runner, "throughput", throughput)
    kinds = [sorted({r.kind for r in lab.round(1_000.0 + i)}) for i in range(3)]
    assert kinds == [["iperf", "ping"], ["ping"], ["iperf", "ping"]]  # rounds 1 and 3
    assert sorted(set(measured))[:2] == [("node1", "node2", "10.9.0.2", 2), ("node1", "node3", "10.9.0.3", 2)]
    assert len(measured) == 12


def test_problems_are_said_once_and_bounded():
    probe = ProbeSession(lambda: snapshot(), ProbeSettings())
    for text in ("a", "b", "a"):
        probe._problem(text)
    assert probe.problems == ["a", "b"] and probe.new_problems() == ["a", "b"] and probe.new_problems() == []
    for i in range(150):
        probe._problem(f"p{i}")
    assert len(probe.problems) == 100 and probe.problems[0] == "p50" and probe.problems[-1] == "p149"
    assert probe.new_problems()[-1] == "p149"


# ------------------------------------------------------------------------ agents reporting through logs


def report(round_no: int, loss: int = 0) -> tuple[int, str]:
    return round_no, (f"10 packets transmitted, {10 - loss} received, {loss * 10}% packet loss, time 1802ms "
                      "rtt min/avg/max/mdev = 0.101/0.200/0.300/0.050 ms")


def test_a_round_read_from_the_agents_logs(lab, monkeypatch):
    lab.session.via_logs, lab.session._manager_url, lab.session._services = True, "tcp://m:2375", {NET: "svc1"}
    clock = [0.0]
    reads = []

    async def sleep(seconds):
        clock[0] += 30.0  # each wait moves the session's clock on: the deadline is 62 s away

    def read_reports(manager, service_id):
        reads.append(service_id)
        found = {("id-node1", "10.9.0.2"): report(1, loss=1), ("id-node1", "10.9.0.3"): report(1),
                 ("id-node2", "10.9.0.1"): report(2), ("id-node2", "10.9.0.3"): report(1),
                 ("id-node3", "10.9.0.1"): report(1)}
        if len(reads) == 1:
            del found[("id-node3", "10.9.0.1")]  # not yet: the session waits and reads again
        return found

    monkeypatch.setattr(session, "asyncio", _Asyncio(sleep))
    monkeypatch.setattr(session, "time", type("T", (), {"monotonic": staticmethod(lambda: clock[0]),
                                                         "time": staticmethod(lambda: 5.0)}))
    monkeypatch.setattr(session.agent, "read_reports", read_reports)
    lab.session.settings = replace(lab.session.settings, count=10, interval=0.2, report_every=0.0)
    results = {(r.src_node, r.dst_node): r for r in lab.round()}
    assert (results[("node1", "node2")].sent, results[("node1", "node2")].received) == (10, 9)
    assert results[("node3", "node2")].error == "no report from node3's agent within the deadline"
    assert results[("node3", "node2")].measured_at == 5.0 and len(results) == 6
    assert reads == ["svc1"] * 4 and clock[0] == 90.0  # read, wait, ... until the deadline passed (62 s)
    assert lab.session._log_rounds == {NET: 2}  # the next round waits for reports newer than round 2
    [cov] = lab.session.coverage()
    assert (cov.expected, cov.measured) == (6, 5)


# ------------------------------------------------------------------------------------------ starting


def start(snap, settings=None):
    probe = ProbeSession(lambda: snap, settings or ProbeSettings())
    try:
        asyncio.run(probe.start())
    finally:
        probe._executor.shutdown(wait=False)
    return probe


def test_what_probing_needs_before_any_agent_is_deployed():
    snap = snapshot()
    no_manager = replace(snap, engines=tuple(replace(e, health=Health.ERROR) if e.role == "manager" else e
                                             for e in snap.engines))
    with pytest.raises(session.ProbeError, match=r"^probing needs a reachable manager \(to create the probe agents\)$"):
        start(no_manager)
    with pytest.raises(session.ProbeError, match=r"^unknown overlay other, more \(overlays here: net\)$"):
        start(snap, ProbeSettings(networks=("net", "other", "more")))
    bridge = replace(snap.networks[0], driver="bridge", scope="local")
    with pytest.raises(session.ProbeError, match=r"^there is no overlay network to probe$"):
        start(replace(snap, networks=(bridge,)))
    with pytest.raises(session.ProbeError, match=r"^unknown overlay net \(overlays here: none\)$"):
        start(replace(snap, networks=(bridge,)), ProbeSettings(networks=("net",)))
    ingress = replace(snap.networks[0], ingress=True)
    with pytest.raises(session.ProbeError, match=r"^there is no overlay network to probe$"):
        start(replace(snap, networks=(ingress,)))


class Manager:
    """The agents' side of a start, scripted: what each agent call got, and what it answers."""

    def __init__(self, monkeypatch, tasks=HOSTS, failures=None, deploy_error=None) -> None:
        self.calls: list[tuple] = []
        self.tasks, self.failures, self.deploy_error = tasks, failures or {}, deploy_error
        for name in ("manager_now", "remove_leftovers", "deploy", "deploy_anchor", "wait_for_tasks", "remove"):
            monkeypatch.setattr(session.agent, name, getattr(self, name))
        monkeypatch.setattr(runner, "check_capabilities", lambda api, container: Capabilities(
            ping="/bin/ping", iputils=True, dont_fragment=True, tools=frozenset({"sleep"})))
        monkeypatch.setattr(ProbeSession, "_client", lambda self, url, timeout=None: FakeApi())
        monkeypatch.setattr(ProbeSession, "_start_renewal", lambda self: None)

    def manager_now(self, manager):
        return 1_000.0

    def remove_leftovers(self, manager, *args):
        self.calls.append(("remove_leftovers",))
        return ["overlaytui-probe-old"]

    def deploy(self, manager, network, image, run, lease_until, report=None, anchor=None):
        self.calls.append(("deploy", network, image, report, anchor))
        if self.deploy_error:
            raise self.deploy_error
        return f"svc-{network}"

    def deploy_anchor(self, manager, network, image, run, lease_until, node):
        self.calls.append(("deploy_anchor", network, node))
        return f"anchor-{network}", "the-anchor"

    def wait_for_tasks(self, manager, service_id, network, nodes, timeout):
        self.calls.append(("wait_for_tasks", service_id, network, tuple(sorted(nodes)), timeout))
        return [AgentTask(f"id-{h}", f"c-{h}", ADDRESS[h]) for h in self.tasks], dict(self.failures)

    def remove(self, manager, service_ids):
        self.calls.append(("remove", tuple(service_ids)))


def test_start_deploys_an_agent_per_overlay_and_says_which_did_not_start(monkeypatch):
    manager = Manager(monkeypatch, tasks=("node1", "node2"), failures={"id-node3": "No such image: x"})
    probe = start(snapshot(), ProbeSettings(image="img:1", deploy_timeout=9.0))
    assert probe.removed_leftovers == ["overlaytui-probe-old"] and not probe.via_logs
    assert manager.calls == [("remove_leftovers",), ("deploy", NET, "img:1", None, None),
                             ("wait_for_tasks", "svc-net", NET, ("id-node1", "id-node2", "id-node3"), 9.0)]
    assert probe.new_problems() == ["net: no probe agent on node3: No such image: x"]
    assert set(probe._caps) == {(NET, "id-node1"), (NET, "id-node2")}
    assert all(isinstance(c, Capabilities) for c in probe._caps.values())


def test_an_agent_that_is_only_late_is_given_the_deploy_timeout_as_reason(monkeypatch):
    Manager(monkeypatch, tasks=("node1", "node2"))
    probe = start(snapshot(), ProbeSettings(deploy_timeout=9.5))
    assert probe.new_problems() == ["net: no probe agent on node3: not running after 9.5 s"]


def test_agents_report_through_the_logs_when_a_node_has_no_engine(monkeypatch):
    manager = Manager(monkeypatch)
    probe = start(snapshot(engines_for=("node1", "node2")), ProbeSettings(count=50, interval=0.5,
                                                                          report_every=7.0))
    assert probe.via_logs
    report = {"count": "50", "interval": "0.5", "deadline": "28", "every": "7"}
    assert ("deploy_anchor", NET, "id-node1") in manager.calls  # the lease anchor: on the manager's node
    assert ("deploy", NET, agent_image(), report, "the-anchor") in manager.calls
    assert probe.new_problems() == ["agents report through the service logs: ping only (path MTU, throughput and "
                                    "discovery need each node's engine)"]
    assert probe._caps == {}  # the tools are not checked through the logs


def agent_image() -> str:
    return ProbeSettings().image


def test_no_agent_at_all_is_an_error_with_the_reasons_and_the_hint(monkeypatch):
    manager = Manager(monkeypatch, tasks=(), failures={"id-node1": "No such image: x", "id-node2": "No such image: x",
                                                       "id-node3": "no suitable node"})
    with pytest.raises(session.ProbeError) as caught:
        start(snapshot(), ProbeSettings(image="x"))
    assert str(caught.value) == (f"no probe agent could start (x): No such image: x; no suitable node; "
                                 f"{session.IMAGE_HINT}")
    assert manager.calls[-1] == ("remove", ("svc-net",))  # what was deployed is removed


def test_an_engine_error_while_deploying_is_one_line_and_removes_what_was_made(monkeypatch):
    import docker

    manager = Manager(monkeypatch, deploy_error=docker.errors.APIError("500 Server Error: network not found"))
    with pytest.raises(session.ProbeError, match="^creating the probe agents: 500 Server Error: network not found$"):
        start(snapshot())
    assert ("remove", ()) not in manager.calls  # nothing was deployed, nothing to remove


def test_each_probe_kind_uses_its_own_engine_timeout_and_the_images_ping(monkeypatch):
    lab = Lab(monkeypatch, kinds=("ping", "mtu", "discovery", "iperf"))
    caps = Capabilities(ping="/usr/bin/ping", iputils=True, dont_fragment=True,
                        tools=frozenset({"sleep", "iperf3", "nslookup", "nc"}))
    for h in HOSTS:
        lab.session._caps[(NET, f"id-{h}")] = caps
    lab.session.settings = replace(lab.session.settings, iperf_seconds=4)

    def throughput(api, container, network, src, dst, address, seconds):
        lab._through(api, container, src)
        assert (address, seconds) == (ADDRESS[dst], 4)
        return ProbeResult("iperf", network, src, dst, lab.clock.now, bits_per_second=1e8, retransmits=0)

    monkeypatch.setattr(runner, "throughput", throughput)
    results = lab.round(1_000.0)
    assert sorted({r.kind for r in results}) == ["discovery", "iperf", "mtu", "ping"] and all(r.measured
                                                                                           for r in results)
    timeouts = {timeout for _url, timeout in lab.clients}
    assert timeouts == {22.0, runner.mtu_seconds(2, 1350) + 15, 30, 24}  # ping: 10 x 0.2 s + 20; the MTU search;
    # discovery 30; iperf 4 + 20
    assert set(lab.caps_seen) == {caps}


@pytest.mark.parametrize("kind", ["ping", "mtu", "discovery", "iperf"])
def test_an_engine_error_result_is_the_pairs_own(monkeypatch, kind):
    import docker

    lab = Lab(monkeypatch, kinds=(kind,))

    def refused(*args, **kwargs):
        raise docker.errors.APIError("409 Conflict: container is not running")

    for name in ("ping_sweep", "mtu_sweep", "discovery", "throughput"):
        monkeypatch.setattr(runner, name, refused)
    results = lab.round()
    expected = {("node1", "node2"), ("node2", "node1"), ("node3", "node1")} if kind == "discovery" else {
        (s, d) for s in HOSTS for d in HOSTS if s != d}
    assert {(r.src_node, r.dst_node) for r in results} == expected and len(results) == len(expected)
    for r in results:
        assert (r.kind, r.network, r.error) == (kind, NET, ERROR_409.format(src=r.src_node))
        assert isinstance(r.measured_at, float) and r.measured_at > 1e9  # the time it failed


def test_an_mtu_probe_that_did_not_run_is_the_pairs_own(lab, monkeypatch):
    lab.session.settings = replace(lab.session.settings, kinds=("mtu",))
    monkeypatch.setattr(runner, "mtu_sweep", real_mtu_sweep)
    monkeypatch.setattr(runner, "exec_run", lambda *args, **kwargs: (126, "exec: permission denied"))
    for r in lab.round():
        assert (r.kind, r.network, r.error) == (
            "mtu", NET, f"the path-MTU search did not run on {r.src_node} (exit 126): exec: permission denied")
        assert r.dst_node in HOSTS and r.dst_node != r.src_node and isinstance(r.measured_at, float)


def test_the_state_as_the_panes_and_findings_read_it(lab):
    lab.pings[("node1", "node2")] = (10, 8)
    lab.round(1_000.0)
    lab.round(1_010.0)
    data = lab.session.state().data("probing stopped")
    assert data.rounds == 2 and data.problem == "probing stopped"
    assert list(data.recent) == [NET] and len(data.recent[NET]) == 6
    recent = {(r.src_node, r.dst_node): r for r in data.recent[NET]}
    assert (recent[("node1", "node2")].sent, recent[("node1", "node2")].received) == (20, 16)  # the window's
    assert data.windows[NET] == lab.session.windows(NET) and data.coverage == lab.session.coverage()
    assert data.totals == lab.session.totals() and data.totals[(NET, "node1", "node2")] == (20, 16)
    assert ProbeState(latest={}, rounds={}, totals={}, expected={"b": (), "a10": (), "a9": ()}, why={},
                      kinds=("ping",), window_s=1.0, round_count=0).data().recent == {"a9": (), "a10": (), "b": ()}


def test_closing_removes_the_agents_once(monkeypatch):
    manager = Manager(monkeypatch)
    probe = ProbeSession(lambda: snapshot(), ProbeSettings())

    async def start_and_close_twice() -> None:
        await probe.start()
        await probe.close()
        await probe.close()
    asyncio.run(start_and_close_twice())
    assert [c for c in manager.calls if c[0] == "remove"] == [("remove", ("svc-net",))]  # once
    assert probe._services == {}


def test_the_jobs_of_a_round_describe_their_pairs_and_bounds(monkeypatch):
    lab = Lab(monkeypatch, kinds=("ping", "mtu", "discovery", "iperf"))
    lab.session.settings = replace(lab.session.settings, count=10, interval=0.2, iperf_seconds=3)
    jobs = lab.session.jobs(lab.snap)
    by = {(j.kind, j.pairs[0][0]): j for j in jobs if j.kind != "iperf"}
    assert {(j.kind, j.network) for j in jobs} == {(k, NET) for k in ("ping", "mtu", "discovery", "iperf")}
    assert by[("ping", "node1")].pairs == (("node1", "node2"), ("node1", "node3"))
    assert by[("ping", "node1")].timeout == 10 * 0.2 + 30
    assert by[("mtu", "node1")].timeout == runner.mtu_seconds(2, 1350) + 15
    assert by[("mtu", "node2")].pairs == (("node2", "node1"), ("node2", "node3"))
    assert by[("discovery", "node3")].pairs == (("node3", "node1"),)  # one per node: the first other node
    iperf = sorted((j.pairs, j.exclusive_nodes, j.timeout) for j in jobs if j.kind == "iperf")
    assert iperf[0] == ((("node1", "node2"),), ("node1", "node2"), 33) and len(iperf) == 6
    assert all(j.kind != "iperf" for j in lab.session.jobs(lab.snap, with_iperf=False))
    assert {j.kind for j in lab.session.jobs(replace(lab.snap, engines=()))} == set()  # no engine: no job
