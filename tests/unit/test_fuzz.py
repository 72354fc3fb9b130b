"""Fuzzing whole payloads: the recorded lab answers with random parts replaced by arbitrary JSON, through every
parser, the joins and the exports; and arbitrary text through the probe output parsers. Nothing but the
documented parse errors may escape, and a malformed item is skipped with a problem line."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlaytui.export import snapshot_to_dict, summary_text
from overlaytui.model import Engine, Health
from overlaytui.probes.agent import agent_tasks, parse_reports
from overlaytui.probes.capabilities import CapabilityError, parse_capabilities
from overlaytui.probes.iperf import parse_iperf
from overlaytui.probes.ping import PingParseError, parse_ping
from overlaytui.probes.runner import ExecFailed, parse_lookups, parse_tcp, split_sweep
from overlaytui.sources.assemble import assemble, engine_poll_from_payloads, swarm_poll_from_payloads
from overlaytui.sources.parse import PayloadError, parse_identity
from overlaytui.sources.stats import parse_stats_frame
from overlaytui.sources.swarm import read_event

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lab"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


@st.composite
def mutated(draw, payload):
    """The payload with 1-4 of its parts (anywhere, the whole included) replaced by arbitrary JSON."""
    value = copy.deepcopy(payload)
    paths = list(_paths(value))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        replacement = draw(json_values)
        if not path:
            return replacement
        parent = value
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = replacement
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this part
    return value


NODES, SERVICES, TASKS, NETWORKS = load("nodes.json"), load("services.json"), load("tasks.json"), load("networks.json")
INFO = load("node1-info.json")
CONTAINERS, LOCAL_NETWORKS = load("node1-containers.json"), load("node1-networks-verbose.json")
FRAMES = load("node1-stats-stream.json")


def _snapshot(swarm, poll, samples=None):
    engine = Engine("unix:///n1", Health.OK, node_id="n1")
    snap = assemble(taken_at=1.0, engines=[engine], swarm=swarm, polls={"unix:///n1": poll} if poll else {},
                    samples=samples or {})
    snapshot_to_dict(snap)
    summary_text(snap)
    return snap


@FUZZ
@given(mutated(NODES), mutated(SERVICES), mutated(TASKS), mutated(NETWORKS), mutated(INFO))
def test_swarm_answers(nodes, services, tasks, networks, info):
    try:
        identity = parse_identity(info)
        swarm = swarm_poll_from_payloads(identity, nodes, services, tasks, networks)
    except PayloadError:
        return
    _snapshot(swarm, None)


@FUZZ
@given(mutated(CONTAINERS), mutated(LOCAL_NETWORKS))
def test_engine_answers(containers, verbose):
    networks = list(verbose.values()) if isinstance(verbose, dict) else verbose
    views = {raw["Id"]: raw for raw in networks if isinstance(raw, dict) and isinstance(raw.get("Id"), str)} \
        if isinstance(networks, list) else {}
    try:
        poll = engine_poll_from_payloads("unix:///n1", parse_identity(INFO), containers, networks, views, {})
    except PayloadError:
        return
    snap = _snapshot(None, poll)
    good = [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []
    skipped = [p for p in snap.problems if "skipped a container" in p]
    assert len(snap.containers) + len(skipped) == len(good)  # every item: shown, or skipped and named


@FUZZ
@given(mutated(next(iter(FRAMES.values()))))
def test_stats_frames(pair):
    frames = pair if isinstance(pair, list) else [pair]
    samples = []
    for frame in frames[:2]:
        try:
            samples.append(parse_stats_frame(frame))
        except PayloadError:
            return
    if len(samples) == 2:
        cid = CONTAINERS[0]["Id"]
        poll = engine_poll_from_payloads("unix:///n1", parse_identity(INFO), CONTAINERS, list(LOCAL_NETWORKS.values()),
                                         {}, {})
        _snapshot(None, poll, {"unix:///n1": {cid: (samples[0], samples[1])}})


@FUZZ
@given(json_values | st.dictionaries(st.sampled_from(["Type", "Action", "timeNano", "Actor", "status", "id"]),
                                     json_values))
def test_events(event):
    at, relevant = read_event(event)
    assert at is None or float(at) > 0
    assert isinstance(relevant, bool)


@FUZZ
@given(mutated(TASKS))
def test_agent_task_lists(tasks):
    try:
        running, failures = agent_tasks(tasks if isinstance(tasks, list) else [], "p-plain")
    except (AttributeError, TypeError):
        raise AssertionError("agent_tasks must skip malformed tasks") from None
    assert all(t.address.count(".") == 3 or ":" in t.address for t in running)


fragments = st.sampled_from([
    "3 packets transmitted, 3 received, 0% packet loss", "packets transmitted, ", "% packet loss",
    "rtt min/avg/max/mdev = 1/2/3/. ms", "round-trip min/avg/max = ./1./.1 ms", "+2 errors", "\n", "=== ",
    "=== 10.0.0.2\n", "Server:", "Address: ", "Address 1: 10.0.0.1", "127.0.0.11#53", "=== END", "OTCAP 1",
    "ping /bin/ping", "df yes", "tool iperf3", "VIPTCP ok", "TASKTCP fail", "{", "}", '"error"', "\x1b[2J",
    "com.docker.swarm.node.id=abc OTPROBE 1 10.0.0.2 ", "99999999999999999999", "-1", "nan",
])
texts = st.lists(fragments | st.text(max_size=30), max_size=12).map("".join)


@FUZZ
@given(texts)
def test_probe_outputs(text):
    try:
        stats = parse_ping(text)
        assert stats.transmitted >= 0 and stats.received >= 0
    except PingParseError:
        pass
    assert parse_iperf(text).error or parse_iperf(text).bits_per_second is not None
    try:
        parse_lookups(text)
    except ExecFailed:
        pass
    try:
        parse_capabilities(text)
    except CapabilityError:
        pass
    parse_tcp(text)
    parse_reports(text)
    split_sweep(text)
