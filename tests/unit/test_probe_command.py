"""`overlaytui probe` without a cluster: the matrix text and the JSON of one constructed round (pinned whole), and
the command's flow — which exit code, which lines on stderr, agents always closed — with the source and the
session replaced by scripted ones."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import signal
from dataclasses import replace

import pytest

from overlaytui import producer
from overlaytui.cli import build_parser
from overlaytui.commands import probe
from overlaytui.model import (
    ClusterSnapshot,
    Coverage,
    Engine,
    Health,
    Network,
    PairGap,
    PairWindow,
    ProbeData,
    ProbeResult,
)
from overlaytui.probes.session import ProbeError
from overlaytui.settings import Settings

T = 1_800_000_000.0
PLAIN = Network("np", "plain", "overlay", "swarm", "10.1.0.0/24", None, 4097, 1400, False, False, False, False)
SECURE = Network("ns", "secure", "overlay", "swarm", "10.2.0.0/24", None, 4098, None, True, False, False, False)
SNAP = ClusterSnapshot(T, (Engine("tcp://m:2375", Health.OK, node_id="id1", hostname="node1", role="manager"),),
                       "swarm", networks=(PLAIN, SECURE))


def ping(net, src, dst, sent=100, received=100, rtt=0.25, error=""):
    return ProbeResult("ping", net, src, dst, T, sent=sent, received=received, rtt_avg_ms=rtt, error=error)


RESULTS = [
    ping("plain", "node1", "node2", received=90),
    ping("plain", "node2", "node1", rtt=None),
    ping("plain", "node1", "node3", sent=0, received=0, rtt=None),
    ping("plain", "node3", "node1", sent=0, received=0, rtt=None, error="exec on node3: EOF"),
    ProbeResult("mtu", "plain", "node1", "node2", T, path_mtu=1350),
    ProbeResult("mtu", "plain", "node2", "node1", T, path_mtu=1200),
    ProbeResult("mtu", "plain", "node1", "node3", T, error="no packet of any size arrives"),
    ProbeResult("iperf", "plain", "node1", "node2", T, bits_per_second=180e6, retransmits=3),
    ProbeResult("iperf", "plain", "node2", "node1", T, error="busy"),
    ping("secure", "node1", "node2"),
    ProbeResult("mtu", "secure", "node1", "node2", T, path_mtu=1424),
    ProbeResult("iperf", "secure", "node1", "node2", T, bits_per_second=95.4e6, retransmits=0),
    ProbeResult("iperf", "secure", "node2", "node1", T, bits_per_second=90e6, retransmits=1),
]
COVERAGE = (Coverage("plain", "ping", 6, 2, (PairGap("node3", "node1", "exec on node3: EOF"),
                                            PairGap("node2", "node3", "no probe agent on node3: rejected"),
                                            PairGap("node3", "node2", "no probe agent on node3: rejected"),
                                            PairGap("node1", "node3", "no result yet"))),
            Coverage("plain", "mtu", 2, 2),
            Coverage("secure", "ping", 2, 1, (PairGap("node2", "node1", "no engine connection to node2"),)))
WINDOWS = {"plain": {("node1", "node2"): PairWindow("plain", "node1", "node2", 100, 90, 300, 280, 900, 890, 300.0),
                     ("node2", "node1"): PairWindow("plain", "node2", "node1", 100, 100, 300, 300, 300, 300,
                                                    300.0)}}


PROBLEMS = ["agents report through the service logs: ping only"]


def test_the_matrix_of_one_round():
    assert probe.matrix_text(RESULTS, SNAP, COVERAGE).splitlines() == [
        "plain  (effective MTU 1350)",
        "  pair                       loss   rtt avg  verdict               path MTU  throughput",
        "  node1 -> node2           10.00%    0.25ms  bad                       1350  180 Mbit/s, 3 retr",
        "  node1 -> node3                -         -  error: no packet sent     error  -",
        "  node2 -> node1            0.00%         -  not enough samples   1200 BLACK HOLE  error: busy",
        "  node2 -> node3                -         -  not measured                 -  -",
        "  node3 -> node1                -         -  error: exec on node3: EOF         -  -",
        "  node3 -> node2                -         -  not measured                 -  -",
        "  remedy: packets above 1200 bytes do not arrive while the overlay allows 1350: recreate the network "
        "with --opt com.docker.network.driver.mtu=1250 (now 1400), or raise the underlay MTU on the path to at "
        "least 1400",
        "  ping: 2 of 6 pairs measured (PARTIAL)",
        "    not measured (2 pairs): no probe agent on node3: rejected",
        "    not measured (1 pairs): exec on node3: EOF",
        "    not measured (1 pairs): no result yet",
        "  mtu: 2 of 2 pairs measured",
        "",
        "secure  (effective MTU 1424, encrypted)",  # ESP takes 26 bytes
        "  pair                       loss   rtt avg  verdict               path MTU  throughput",
        "  node1 -> node2            0.00%    0.25ms  not enough samples        1424  95 Mbit/s, 0 retr",
        "  node2 -> node1                -         -  not measured                 -  90 Mbit/s, 1 retr",
        "  ping: 1 of 2 pairs measured (PARTIAL)",
        "    not measured (1 pairs): no engine connection to node2",
        "",
        "throughput, plain vs encrypted overlays (Mbit/s)",
        "  node1 -> node2         plain        180   encrypted         95",
        "  node2 -> node1         plain      error   encrypted         90",
    ]


def test_the_watch_matrix_adds_the_recent_and_total_loss():
    lines = probe.matrix_text(RESULTS[:2], SNAP, (), WINDOWS).splitlines()
    assert lines[1].split() == ["pair", "loss", "(recent", "/", "all)", "rtt", "avg", "verdict", "path", "MTU",
                                "throughput"]
    assert lines[2] == "  node1 -> node2         10.00% (6.67% / 1.11%)    0.25ms  bad                          -  -"
    assert lines[3].startswith("  node2 -> node1         0.00% (0.00% / 0.00%)         -  not enough samples")


def test_an_overlay_unknown_to_the_snapshot_and_no_throughput_pairs():
    text = probe.matrix_text([ping("gone", "a", "b")], ClusterSnapshot(T, ()))
    assert text.splitlines()[0] == "gone  (effective MTU ?)"
    assert probe.encrypted_vs_plain(RESULTS[:9], SNAP) == []  # plain only: nothing to compare


def test_the_json_of_one_round():
    data = probe.round_dict(RESULTS[:3] + RESULTS[4:5], COVERAGE[:1], WINDOWS, PROBLEMS, 3, "partial")
    assert data["within_thresholds"] is False and data["verdict"] == "partial"
    assert data["problems"] == ["agents report through the service logs: ping only"]
    mtu, first, second, third = data["results"]  # by overlay, kind, then pair
    assert (first["kind"], first["src_node"], first["dst_node"], first["loss_pct"]) == ("ping", "node1", "node2",
                                                                                        10.0)
    assert first["window"] == {"seconds": 300.0, "sent": 300, "received": 280, "loss_pct": pytest.approx(20 / 3)}
    assert first["cumulative"] == {"sent": 900, "received": 890, "loss_pct": pytest.approx(10 / 9)}
    assert (second["src_node"], second["dst_node"]) == ("node1", "node3") and "window" not in second
    assert second["loss_pct"] is None and "cumulative" not in second
    assert (third["src_node"], third["window"]["loss_pct"]) == ("node2", 0.0)
    assert (mtu["kind"], mtu["path_mtu"], "window" in mtu) == ("mtu", 1350, False)
    assert data["coverage"] == [{"network": "plain", "kind": "ping", "expected": 6, "measured": 2, "complete": False,
                                 "missing": [{"src_node": g.src_node, "dst_node": g.dst_node, "reason": g.reason}
                                             for g in COVERAGE[0].missing]}]
    assert probe.round_dict([], (), {}, PROBLEMS, 0, "all")["within_thresholds"] is True


# ------------------------------------------------------------------------------------------- the flow


class FakeSource:
    snap = SNAP
    name = "fake"
    playback = None

    def __init__(self, endpoints, call_timeout, stats, events, **options) -> None:
        assert (stats, events) == (False, False)  # probing needs neither stats streams nor events
        self.options, self.call_timeout, self.closed, self.polls = options, call_timeout, False, 0
        self.endpoints = tuple(endpoints)

    async def wait_for_change(self, timeout: float) -> bool:
        await asyncio.sleep(timeout)
        return False

    def probes(self) -> None:
        return None

    async def start(self) -> None:
        pass

    async def poll(self) -> None:
        self.polls += 1

    def snapshot(self) -> ClusterSnapshot:
        return self.snap

    async def close(self) -> None:
        self.closed = True


class FakeSession:
    rounds: list[list[ProbeResult]] = []
    coverages: list[tuple[Coverage, ...]] = []
    fail_start: str = ""
    leftovers: list[str] = []
    made: list[FakeSession] = []
    every = 1  # the plan's rounds for every pair once (plan.py): 1, the full mesh

    def __init__(self, snapshot_of, settings, endpoints, call_timeout) -> None:
        self.settings, self.closed, self.done, self.removed_leftovers = settings, False, 0, []
        self.problems = ["ping only"]
        FakeSession.made.append(self)

    async def start(self) -> None:
        if self.fail_start:
            raise ProbeError(self.fail_start)
        self.removed_leftovers = list(self.leftovers)

    async def run_round(self) -> list[ProbeResult]:
        self.done += 1
        return self.rounds[min(self.done, len(self.rounds)) - 1]

    def new_problems(self) -> list[str]:
        return ["a tool is missing"] if self.done == 1 else []

    def coverage(self) -> tuple[Coverage, ...]:
        return self.coverages[min(self.done, len(self.coverages)) - 1]

    def windows(self, network):
        return WINDOWS.get(network, {})

    async def keep_agents(self) -> list[str]:
        return []

    async def close(self) -> None:
        self.closed = True

    def state(self) -> FakeState:
        return FakeState(self)


class FakeState:
    """What the producer takes from a session for a frame: its probe data."""

    def __init__(self, session: FakeSession) -> None:
        self.session = session

    def data(self, problem: str = "") -> ProbeData:
        results = self.session.rounds[min(self.session.done, len(self.session.rounds)) - 1] if self.session.done \
            else []
        by_network: dict[str, list[ProbeResult]] = {}
        for result in results:
            by_network.setdefault(result.network, []).append(result)
        return ProbeData(recent={net: tuple(rs) for net, rs in by_network.items()}, windows=WINDOWS,
                         coverage=self.session.coverage() if self.session.done else (), rounds=self.session.done,
                         problem=problem)


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(producer, "ProbeSession", FakeSession)
    FakeSession.made, FakeSession.fail_start, FakeSession.leftovers = [], "", []
    FakeSession.rounds = [[ping("plain", "node1", "node2")]]
    FakeSession.coverages = [(Coverage("plain", "ping", 1, 1),)]
    FakeSource.snap = SNAP
    return FakeSession


def run(json_out=False, watch=None, user=None) -> int:
    args = argparse.Namespace(timeout=7.0, source_options={"ssh_nodes": False}, watch=watch, json=json_out,
                              lab=False)
    source = FakeSource(["tcp://m:2375"], call_timeout=7.0, stats=False, events=False)
    return asyncio.run(probe._run(source, probe.ProbeSettings(), user or Settings(), args))


def test_the_users_thresholds_decide_the_exit_code(fakes, capsys):
    from overlaytui.analysis.thresholds import LossThresholds

    fakes.rounds = [[ping("plain", "node1", "node2", sent=100_000, received=99_990)]]
    assert run() == 0
    assert run(user=Settings(thresholds=LossThresholds(0.001, 0.005))) == 1
    out = capsys.readouterr().out
    assert " bad " in out.split("plain  (effective MTU 1350)")[2].splitlines()[2]  # the matrix judged so too


def test_a_rotating_plan_takes_as_many_rounds_as_measure_every_pair_once(fakes, capsys, monkeypatch):
    """A large cluster's rounds each measure part of the pairs: probe without --watch runs the plan's cycle and
    judges every round's results; the coverage is the last round's (the last K rounds')."""
    monkeypatch.setattr(FakeSession, "every", 3)
    fakes.rounds = [[ping("plain", "node1", "node2")], [ping("plain", "node2", "node1")],
                    [ping("plain", "node1", "node2", sent=100, received=50)]]
    fakes.coverages = [(Coverage("plain", "ping", 2, 1, (PairGap("node2", "node1", "not probed yet"),), every=3,
                                 this_round=1),)] * 2 + [(Coverage("plain", "ping", 2, 2, every=3, this_round=1),)]
    assert run() == 1  # the third round's loss: every round's results are judged
    assert FakeSession.made[-1].done == 3


def test_the_json_of_a_round_is_indented_by_one(fakes, capsys):
    assert run(json_out=True) == 0
    out = capsys.readouterr().out
    assert out.startswith('{\n "results": [\n  {\n   "kind": "ping",') and out.endswith("}\n")
    assert json.loads(out)["within_thresholds"] is True


def test_all_measured_and_within_exits_0(fakes, capsys):
    assert run() == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[2] == "  node1 -> node2            0.00%    0.25ms  not enough samples           -  -"
    assert err == "overlaytui probe: a tool is missing\n"  # no verdict line when all is well
    assert fakes.made[0].closed


def test_partial_exits_3_and_says_why(fakes, capsys):
    fakes.coverages = [(Coverage("plain", "ping", 2, 1, (PairGap("node2", "node1", "x"),)),)]
    fakes.leftovers = ["overlaytui-probe-plain", "overlaytui-probe-secure"]
    assert run() == 3
    err = capsys.readouterr().err.splitlines()
    assert err == ["overlaytui probe: removed probe agents left by an earlier run: overlaytui-probe-plain, "
                   "overlaytui-probe-secure",
                   "overlaytui probe: a tool is missing",
                   "overlaytui probe: partial: 1 of 2 pair measurements made, those within the thresholds"]


def test_nothing_measured_exits_2_with_the_reasons(fakes, capsys):
    fakes.rounds = [[ping("plain", "node1", "node2", sent=0, received=0, error="EOF")]]
    fakes.coverages = [(Coverage("plain", "ping", 1, 0, (PairGap("node1", "node2", "EOF"),)),)]
    assert run() == 2
    assert capsys.readouterr().err.splitlines()[-1] == "overlaytui probe: nothing measured (1 pairs expected): EOF"


def test_a_crossed_threshold_exits_1_as_json(fakes, capsys):
    fakes.rounds = [[ping("plain", "node1", "node2", received=50)]]
    assert run(json_out=True) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["verdict"] == "a threshold is crossed (1 of 1 pair measurements made)"
    assert data["results"][0]["window"]["sent"] == 300 and data["problems"] == ["ping only"]
    assert err == "overlaytui probe: a tool is missing\n"


def test_no_reachable_manager_exits_2(fakes, capsys):
    FakeSource.snap = ClusterSnapshot(T, (Engine("tcp://w:2375", Health.OK, role="worker"),
                                          Engine("tcp://m:2375", Health.ERROR, message="refused", role="manager")))
    assert run() == 2
    assert capsys.readouterr().err == ("overlaytui probe: no reachable manager (tcp://w:2375: worker; "
                                       "tcp://m:2375: refused)\n")
    assert fakes.made == []  # no session, no agents


def test_a_session_that_cannot_start_exits_2_and_closes(fakes, capsys):
    fakes.fail_start = "no probe agent could start"
    assert run() == 2
    assert capsys.readouterr().err == "overlaytui probe: no probe agent could start\n"
    assert fakes.made[0].closed


def test_watch_prints_every_round_until_interrupted(fakes, capsys, monkeypatch):
    slept = []

    async def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(probe.asyncio, "sleep", sleep)
    fakes.rounds = [[ping("plain", "node1", "node2")], [ping("plain", "node1", "node2", received=40)]]
    with pytest.raises(KeyboardInterrupt):
        run(json_out=True, watch=2.5)
    assert slept == [2.5, 2.5] and fakes.made[0].closed  # the agents are removed on the way out
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (first["round"], first["within_thresholds"], second["round"], second["within_thresholds"]) == (
        1, True, 2, False)
    assert isinstance(first["at"], float)


class Flushed(io.StringIO):
    """stdout that notes where it was flushed: --watch output is read live through pipes (`| tee`, `| jq`)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed_at: list[int] = []

    def flush(self) -> None:
        self.flushed_at.append(len(self.getvalue()))


@pytest.mark.parametrize("json_out", [False, True])
def test_watch_flushes_each_round(fakes, monkeypatch, json_out):
    async def sleep(seconds):
        raise KeyboardInterrupt

    out = Flushed()
    monkeypatch.setattr(probe.asyncio, "sleep", sleep)
    monkeypatch.setattr("sys.stdout", out)
    with pytest.raises(KeyboardInterrupt):
        run(json_out=json_out, watch=1.0)
    text = out.getvalue()
    end = len(text) if json_out else len(text) - 1  # the text matrix is flushed, then a blank line follows
    assert end in out.flushed_at


def test_watch_as_text_has_a_heading_per_round(fakes, capsys, monkeypatch):
    async def sleep(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(probe.asyncio, "sleep", sleep)
    with pytest.raises(KeyboardInterrupt):
        run(watch=1.0)
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"== round 1 at \d\d:\d\d:\d\d: all 1 pair measurements within the thresholds", out[0])
    assert out[1] == "plain  (effective MTU 1350)"
    assert out[3].startswith("  node1 -> node2         0.00% (6.67% / 1.11%)") and out[-1] == ""


# ------------------------------------------------------------------------------------------- the command line


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """`probe`'s main with the round replaced: what it made; no config file or environment of the user's, and
    SIGTERM restored afterwards."""
    seen = {}

    async def fake_run(source, settings, user, args):
        seen.update(source=source, settings=settings, user=user, args=args,
                    sigterm=signal.getsignal(signal.SIGTERM))
        if seen.get("interrupt"):
            raise KeyboardInterrupt
        return 3

    monkeypatch.setattr(probe, "_run", fake_run)
    monkeypatch.setenv("OVERLAYTUI_CONFIG", str(tmp_path / "none.toml"))
    for name in ("LOSS_GOOD_PCT", "LOSS_ACCEPTABLE_PCT", "PROBE_IMAGE", "PROBE_WINDOW_MIN", "SSH_NODES"):
        monkeypatch.delenv(f"OVERLAYTUI_{name}", raising=False)
    before = signal.getsignal(signal.SIGTERM)
    yield seen
    signal.signal(signal.SIGTERM, before)


def main(*argv: str) -> int:
    args = build_parser().parse_args(["probe", "-H", "tcp://10.0.0.1:2375", *argv])
    assert args.handler is probe.main
    return args.handler(args)


def test_the_flags_make_the_settings(captured):
    assert main("--kind", "ping, discovery", "--network", "a", "--network", "b", "--count", "50", "--interval",
                "0.1", "--concurrency", "4", "--via-logs", "--window", "2.5", "--probe-image", "img:1") == 3
    settings = captured["settings"]
    assert settings == probe.ProbeSettings(kinds=("ping", "discovery"), networks=("a", "b"), image="img:1",
                                           count=50, interval=0.1, concurrency=4, via_logs=True, window_s=150.0)
    assert [e.url for e in captured["source"].endpoints] == ["tcp://10.0.0.1:2375"]
    assert (captured["source"]._stats, captured["source"]._events) == (False, False)  # probing needs neither
    assert captured["sigterm"] is not signal.SIG_DFL and callable(captured["sigterm"])  # SIGTERM removes agents


def test_the_defaults(captured):
    assert main() == 3
    settings, args = captured["settings"], captured["args"]
    assert (settings.kinds, settings.networks, settings.count, settings.interval, settings.window_s) == (
        ("ping", "mtu"), (), 100, 0.2, 300.0)
    assert settings.concurrency == probe.DEFAULT_CONCURRENCY and not settings.via_logs
    assert settings.image == captured["user"].probe_image
    assert (args.json, args.watch, args.timeout) == (False, None, 10.0)


def test_an_interrupt_removes_the_agents_and_exits_130(captured, capsys):
    captured["interrupt"] = True
    assert main() == 130
    assert capsys.readouterr().err == "overlaytui probe: interrupted (agents removed)\n"


def test_an_unknown_kind_exits_2_before_any_engine_is_touched(captured, capsys):
    assert main("--kind", "ping,traceroute") == 2
    assert "settings" not in captured
    assert capsys.readouterr().err.startswith("overlaytui probe: --kind takes ping,")


def test_thresholds_that_cannot_be_used_exit_2_named_by_the_command(captured, capsys):
    assert main("--loss-good", "0.5", "--loss-acceptable", "0.1") == 2
    assert "settings" not in captured
    assert capsys.readouterr().err.startswith("overlaytui probe: loss thresholds: ")


def test_the_help_says_what_each_exit_code_means(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["probe", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for said in ("Exit 0: every pair measured and within thresholds; 1: a threshold crossed; 2: usage or "
                 "connection error, or nothing measured; 3: within thresholds, but some pairs could not be "
                 "measured (the coverage says why).",
                 "Throughput (--kind iperf) is bounded to 3 s at 200 Mbit/s per pair.",
                 "--concurrency CONCURRENCY probe jobs at once (default 16)",
                 "--via-logs agents probe by themselves and report through the manager's service logs (ping "
                 "only); automatic when a node's engine is not reachable",
                 "--json print the results as JSON (with --watch: one object per line per round)",
                 "--watch S repeat rounds S seconds apart until interrupted, printing each: every pair's loss in "
                 "that round, in the recent window and since start",
                 "what is missing is reported, not measured"):
        assert said in text, said


def test_the_users_thresholds_decide_what_is_crossed():
    from overlaytui.analysis.thresholds import LossThresholds

    lossy = [ping("plain", "node1", "node2", sent=100_000, received=99_990)]  # 0.01 %
    assert not probe.threshold_crossed(lossy, SNAP, LossThresholds())  # below the default 0.1 %
    assert probe.threshold_crossed(lossy, SNAP, LossThresholds(0.001, 0.005))


def test_the_matrix_orders_overlays_naturally_and_names_the_worst_hole():
    net2, net10 = (replace(PLAIN, id=f"id{n}", name=f"net{n}") for n in (2, 10))
    snap = ClusterSnapshot(T, (), networks=(net10, net2))
    results = [ping("net10", "node1", "node2"), ping("net2", "node1", "node2"),
               ProbeResult("mtu", "net2", "node1", "node2", T, path_mtu=1300),
               ProbeResult("mtu", "net2", "node2", "node1", T, path_mtu=1200),
               ProbeResult("mtu", "net2", "node1", "node3", T, path_mtu=1250),
               ProbeResult("mtu", "gone", "a", "b", T, path_mtu=1000)]
    gaps = (Coverage("net10", "mtu", 2, 0, (PairGap("node1", "node2", "no tool"), PairGap("node2", "node1", "x"))),)
    text = probe.matrix_text(results, snap, gaps)
    headings = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert headings == ["gone  (effective MTU ?)", "net2  (effective MTU 1350)", "net10  (effective MTU 1350)"]
    assert "  remedy: packets above 1200 bytes do not arrive" in text  # the smallest of three holes
    assert "a -> b" in text and "1000 BLACK HOLE" not in text  # an overlay not in the snapshot: no judgement
    net10_lines = text.split("net10  (effective MTU 1350)")[1].splitlines()
    assert net10_lines[2].rstrip().endswith("unmeasured  -") and net10_lines[3].rstrip().endswith("unmeasured  -")
    assert not text.endswith("\n") and text.endswith("(1 pairs): x")


def test_the_matrix_judges_with_the_users_thresholds_and_rounds_throughput():
    from overlaytui.analysis.thresholds import LossThresholds

    results = [ping("plain", "node1", "node2", sent=100_000, received=99_990),
               ProbeResult("iperf", "plain", "node1", "node2", T, bits_per_second=1_500_000, retransmits=0)]
    default = probe.matrix_text(results, SNAP).splitlines()[2]
    strict = probe.matrix_text(results, SNAP, thresholds=LossThresholds(0.001, 0.005)).splitlines()[2]
    assert " acceptable " in default and " bad " in strict
    assert default.endswith("2 Mbit/s, 0 retr")  # 1.5 rounds to even


def test_a_watched_round_judges_with_the_users_thresholds(capsys):
    from overlaytui.analysis.thresholds import LossThresholds

    results = [ping("plain", "node1", "node2", sent=100_000, received=99_990)]
    probe._print_round(1, results, (), {}, ["ping only"], 1, "crossed", SNAP, False, LossThresholds(0.001, 0.005))
    assert " bad " in capsys.readouterr().out.splitlines()[3]
    probe._print_round(2, results, (), {}, ["ping only"], 1, "crossed", SNAP, True, LossThresholds())
    assert json.loads(capsys.readouterr().out)["problems"] == ["ping only"]


def test_the_flags_bounds(capsys):
    def parses(*argv: str) -> bool:
        try:
            build_parser().parse_args(["probe", *argv])
        except SystemExit:
            return False
        return True
    assert parses("--concurrency", "1") and parses("--concurrency", "256")
    assert not parses("--concurrency", "0") and not parses("--concurrency", "257")
    assert parses("--watch", "0") and parses("--watch", "86400") and parses("--probe-window", "2")
    assert not parses("--watch", "-1") and not parses("--watch", "x")
    capsys.readouterr()
    assert not parses("--watch", "86401")
    assert capsys.readouterr().err.splitlines()[-1] == (
        "overlaytui probe: error: argument --watch: must be between 0 and 86400 s (got 86401)")


def test_the_help_says_what_probe_does_and_what_the_image_needs(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["probe", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("Deploy a probe agent (a global service labelled overlaytui.probe) on each overlay, measure between every "
            "pair of nodes from inside the overlay, print the pair matrix, remove the agents.") in text
    assert ("with --lab); any image with a POSIX shell, ping and sleep; path MTU needs iputils ping (-M do), "
            "throughput iperf3, discovery nslookup and nc — what is missing is reported, not measured") in text
    assert "--probe-window MIN, --window MIN" in text


def test_throughput_plain_beside_encrypted_in_natural_order():
    plain2 = replace(PLAIN, id="np2", name="plain2")
    snap = replace(SNAP, networks=(PLAIN, plain2, SECURE))
    results = [ProbeResult("iperf", net, src, dst, T, bits_per_second=bps, error="" if bps else "busy")
               for net, src, dst, bps in (("plain", "node10", "node2", 1_500_000), ("plain2", "node10", "node2", 0),
                                          ("secure", "node10", "node2", 2e6), ("plain", "node9", "node2", 3e6),
                                          ("secure", "node9", "node2", 4e6), ("secure", "node1", "node2", 4e6))]
    assert probe.encrypted_vs_plain(results, snap) == [
        "throughput, plain vs encrypted overlays (Mbit/s)",
        "  node9 -> node2         plain          3   encrypted          4",
        "  node10 -> node2        plain    2/error   encrypted          2",
    ]
