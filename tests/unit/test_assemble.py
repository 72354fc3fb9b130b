"""Joining the recorded payloads of a 3-node lab into one snapshot; NetIO sums; JSON export; endpoints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from overlaytui.analysis.netio import by_network, by_node, by_service
from overlaytui.export import SCHEMA, snapshot_to_dict, summary_text
from overlaytui.model import Engine, Health
from overlaytui.sources.assemble import (
    active_swarm_networks,
    assemble,
    engine_poll_from_payloads,
    swarm_poll_from_payloads,
)
from overlaytui.sources.endpoints import DEFAULT_HOST, EndpointError, resolve_endpoints
from overlaytui.sources.parse import parse_all, parse_identity, parse_network
from overlaytui.sources.stats import parse_stats_frame
from overlaytui.units import human_bytes

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lab"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def engine_polls(nodes=(1, 2, 3)):
    polls, engines, samples = {}, [], {}
    for n in nodes:
        endpoint = f"unix:///lab/node{n}.sock"
        identity = parse_identity(load(f"node{n}-info.json"))
        verbose = {raw["Id"]: raw for raw in load(f"node{n}-networks-verbose.json").values() if raw}
        networks = list(verbose.values())
        containers = [c for c in load(f"node{n}-containers.json") if c["State"] == "running"]
        known, _ = parse_all(networks, parse_network, "network")
        views = {net.id: verbose[net.id] for net in active_swarm_networks(containers, known)}
        polls[endpoint] = engine_poll_from_payloads(endpoint, identity, containers, networks, views, {})
        engines.append(Engine(endpoint, Health.OK, node_id=identity["node_id"], hostname=identity["hostname"],
                              role=identity["role"]))
        frames = load(f"node{n}-stats-stream.json")
        samples[endpoint] = {cid: (parse_stats_frame(f[0]), parse_stats_frame(f[1])) for cid, f in frames.items()}
    return polls, engines, samples


@pytest.fixture(scope="module")
def snapshot():
    swarm = swarm_poll_from_payloads(parse_identity(load("node1-info.json")), load("nodes.json"),
                                     load("services.json"), load("tasks.json"), load("networks.json"))
    polls, engines, samples = engine_polls()
    return assemble(taken_at=1.0, engines=engines, swarm=swarm, polls=polls, samples=samples)


def test_snapshot_joins_the_whole_cluster(snapshot):
    assert [n.hostname for n in snapshot.nodes] == ["node1", "node2", "node3"]
    assert snapshot.problems == ()
    assert snapshot.nodes_without_engine == ()
    placement = {}
    for task in snapshot.tasks:
        if task.state == "running":
            host = snapshot.nodes_by_id[task.node_id].hostname
            placement[(task.service_name, host)] = placement.get((task.service_name, host), 0) + 1
    assert sum(v for (svc, _), v in placement.items() if svc == "web") == 4
    assert {h for (svc, h) in placement if svc == "agent"} == {"node1", "node2", "node3"}


def test_overlay_views_are_merged_per_node(snapshot):
    frontend = snapshot.network("frontend")
    assert len(frontend.views) == 3
    assert {v.node_id for v in frontend.views} == {n.id for n in snapshot.nodes}
    secure = snapshot.network("secure")
    assert len(secure.views) == 2  # node2 runs no sec task: the network is not active there
    assert {s.name: s.vip for s in frontend.services} == {"api": None, "web": "10.240.1.2"}
    # local networks stay per engine: three bridges named "bridge"
    assert sum(1 for n in snapshot.networks if n.name == "bridge") == 3


def test_containers_are_mapped_to_networks_and_tasks(snapshot):
    assert snapshot.containers and all(c.task_id and c.service_name and c.node_id for c in snapshot.containers)
    for c in snapshot.containers:
        names = [i.network_name for i in c.interfaces]
        assert names[-1] == "docker_gwbridge", (c.name, names)  # the gateway endpoint comes last
        assert None not in names
        assert all(i.rx_rate is not None for i in c.interfaces)  # two recorded frames each


def test_a_node_without_engine_connection_is_named():
    swarm = swarm_poll_from_payloads(parse_identity(load("node1-info.json")), load("nodes.json"),
                                     load("services.json"), load("tasks.json"), load("networks.json"))
    polls, engines, samples = engine_polls(nodes=(1,))
    snap = assemble(taken_at=1.0, engines=engines, swarm=swarm, polls=polls, samples=samples)
    assert sorted(n.hostname for n in snap.nodes_without_engine) == ["node2", "node3"]
    assert len(snap.network("frontend").views) == 1
    assert len(snap.tasks) == len(load("tasks.json"))  # the manager alone still gives the whole swarm view


def test_netio_adds_up_across_nodes(snapshot):
    networks, services, nodes = by_network(snapshot), by_service(snapshot), by_node(snapshot)
    containers_with_rates = [c for c in snapshot.containers if c.rx_rate is not None]
    assert sum(t.rx for t in services.values()) == pytest.approx(sum(c.rx_rate for c in containers_with_rates))
    assert sum(t.rx for t in nodes.values()) == pytest.approx(sum(t.rx for t in services.values()))
    assert sum(t.rx for t in networks.values()) == pytest.approx(sum(t.rx for t in nodes.values()))
    assert set(nodes) <= {"node1", "node2", "node3"}
    assert "docker_gwbridge" in networks  # gateway traffic is kept apart from the overlays


def test_json_export(snapshot):
    data = json.loads(json.dumps(snapshot_to_dict(snapshot)))
    assert data["schema"] == SCHEMA
    assert {n["name"]: n["effective_mtu"] for n in data["networks"] if n["driver"] == "overlay"} == {
        "backend": 1350, "frontend": 1450, "ingress": 1450, "secure": 1424}
    assert {t["name"] for t in data["tasks"]} >= {"web.1", "web.4", "api.3"}
    assert set(data["netio"]) == {"by_network", "by_service", "by_node"}
    assert data["engines"][0]["health"] == "ok"


def test_summary_text_names_problems_and_never_fails(snapshot):
    text = summary_text(snapshot)
    assert "OVERLAYS" in text and "secure" in text and "encrypted" in text
    assert "No such image: nosuchimage:1" in text


@pytest.mark.parametrize(("value", "text"), [(None, "-"), (0, "0 B"), (1536, "1.5 KiB"), (3 * 1024**3, "3.0 GiB")])
def test_human_bytes(value, text):
    assert human_bytes(value) == text


# ------------------------------------------------------------------------------------------- endpoints


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """An isolated ~/.docker with one context 'remote' (as the docker CLI stores it)."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"remote").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({
        "Name": "remote", "Metadata": {}, "Endpoints": {"docker": {"Host": "tcp://10.9.9.9:2376",
                                                                   "SkipTLSVerify": False}}}))
    return tmp_path


def test_precedence_like_the_docker_cli(docker_config):
    env = {"DOCKER_CONFIG": str(docker_config)}
    assert resolve_endpoints(environ=env)[0].url == DEFAULT_HOST
    assert resolve_endpoints(environ={**env, "DOCKER_CONTEXT": "remote"})[0].url == "tcp://10.9.9.9:2376"
    with_host = {**env, "DOCKER_CONTEXT": "remote", "DOCKER_HOST": "unix:///x.sock"}
    assert resolve_endpoints(environ=with_host)[0].url == "unix:///x.sock"
    assert resolve_endpoints(context="remote", environ=with_host)[0].origin == "context remote"
    hosts = resolve_endpoints(hosts=["unix:///a.sock", "tcp://h:2375"], environ=with_host)
    assert [h.url for h in hosts] == ["unix:///a.sock", "tcp://h:2375"]
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    assert resolve_endpoints(environ=env)[0].url == "tcp://10.9.9.9:2376"


def test_endpoint_errors_are_one_line(docker_config):
    env = {"DOCKER_CONFIG": str(docker_config)}
    with pytest.raises(EndpointError, match="unknown docker context 'nope'"):
        resolve_endpoints(context="nope", environ=env)
    with pytest.raises(EndpointError, match="not a Docker host URL"):
        resolve_endpoints(hosts=["localhost:2375"], environ=env)
    with pytest.raises(EndpointError, match="exclude each other"):
        resolve_endpoints(hosts=["unix:///a"], context="remote", environ=env)


def test_a_running_container_without_a_sample_yet_is_listed_with_nothing_measured():
    polls, engines, _ = engine_polls(nodes=(1,))
    snap = assemble(taken_at=1.0, engines=engines, swarm=None, polls=polls, samples={})
    running = [c for c in load("node1-containers.json") if c["State"] == "running"]
    assert len(snap.containers) == len(running)
    assert all(c.read_at == 0.0 and c.interfaces == () and c.rx_rate is None for c in snap.containers)
    assert all(c.service_name for c in snap.containers)  # still joined to their tasks' services
