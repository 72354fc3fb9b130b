"""Parsers on real API payloads recorded from the lab (tests/fixtures/lab, see record_lab.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overlaytui.sources import parse
from overlaytui.sources.parse import PayloadError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lab"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="module")
def services():
    values, problems = parse.parse_all(load("services.json"), parse.parse_service, "service")
    assert problems == []
    return {s.name: s for s in values}


@pytest.fixture(scope="module")
def networks():
    return {n.name: n for n in (parse.parse_network(raw) for raw in load("networks.json"))}


def test_nodes():
    nodes, problems = parse.parse_all(load("nodes.json"), parse.parse_node, "node")
    assert problems == []
    by_name = {n.hostname: n for n in nodes}
    assert sorted(by_name) == ["node1", "node2", "node3"]
    assert by_name["node1"].role == "manager" and by_name["node1"].leader
    assert by_name["node1"].reachability == "reachable"
    assert by_name["node2"].role == "worker" and not by_name["node2"].leader
    assert {n.address for n in nodes} == {"10.231.0.1", "10.231.0.2", "10.231.0.3"}
    assert all(n.state == "ready" and n.availability == "active" for n in nodes)
    assert by_name["node3"].engine_version.startswith("20.10")


def test_services(services, networks):
    assert sorted(services) == ["agent", "api", "broken", "pending", "sec", "web"]
    web, api, agent = services["web"], services["api"], services["agent"]
    assert (web.mode, web.replicas, web.endpoint_mode) == ("replicated", 4, "vip")
    assert web.published_ports == ("8080->80/tcp",)
    vip_networks = {v.network_id for v in web.vips}
    assert vip_networks == {networks["frontend"].id, networks["ingress"].id}
    assert (api.endpoint_mode, api.vips) == ("dnsrr", ())
    assert api.network_ids == (networks["frontend"].id, networks["backend"].id)
    assert (agent.mode, agent.replicas) == ("global", None)
    assert (web.running_tasks, web.desired_tasks) == (4, 4)
    assert services["broken"].running_tasks == 0 and services["broken"].desired_tasks == 2
    assert web.image == "overlaytui/probe:lab"


def test_tasks(services):
    names = {s.id: s.name for s in services.values()}
    tasks, problems = parse.parse_all(load("tasks.json"), lambda raw: parse.parse_task(raw, names), "task")
    assert problems == []
    running = [t for t in tasks if t.state == "running"]
    assert sorted(t.name for t in running if t.service_name == "web") == ["web.1", "web.2", "web.3", "web.4"]
    agent = [t for t in running if t.service_name == "agent"]
    assert len(agent) == 3 and all(t.slot is None and t.name == f"agent.{t.node_id}" for t in agent)
    assert all(t.container_id and t.pid for t in running)
    rejected = [t for t in tasks if t.service_name == "broken"]
    assert rejected and all(t.state == "rejected" and t.error == "No such image: nosuchimage:1" for t in rejected)
    pending = [t for t in tasks if t.service_name == "pending"]
    assert pending[0].state == "pending" and pending[0].node_id is None
    assert "no suitable node" in pending[0].error
    api1 = next(t for t in running if t.name == "api.1")
    assert {a.network_name for a in api1.addresses} == {"frontend", "backend"}
    assert all(a.address.endswith("/24") for a in api1.addresses)
    assert all(t.timestamp > 1.7e9 for t in tasks)


def test_networks(networks):
    frontend, backend, secure, ingress = (networks[n] for n in ("frontend", "backend", "secure", "ingress"))
    assert (frontend.driver, frontend.scope, frontend.subnet, frontend.gateway) == (
        "overlay", "swarm", "10.240.1.0/24", "10.240.1.1")
    assert (frontend.vni, frontend.configured_mtu, frontend.effective_mtu) == (4097, None, 1450)
    assert frontend.attachable and not frontend.encrypted
    assert (backend.configured_mtu, backend.effective_mtu) == (1400, 1350)
    assert secure.encrypted and secure.effective_mtu == 1424  # measured on the container's eth0 in the lab
    assert ingress.ingress and ingress.vni == 4096
    bridge = networks["bridge"]
    assert bridge.scope == "local" and bridge.effective_mtu == 1500 and bridge.vni is None
    assert networks["host"].effective_mtu is None


def test_network_view_on_a_node():
    raw = load("node2-networks-verbose.json")["frontend"]
    view = parse.parse_network_view(raw, "n2", "unix:///node2")
    assert {p.address for p in view.peers} == {"10.231.0.1", "10.231.0.2", "10.231.0.3"}
    lb = [e for e in view.endpoints if e.container_id == "lb-frontend"]
    assert lb and lb[0].ipv4.startswith("10.240.1.")
    by_name = {s.name: s for s in view.services}
    assert by_name["api"].vip is None  # dnsrr: "<nil>" in the API
    assert by_name["web"].vip == "10.240.1.2"
    assert len(by_name["web"].tasks) == 4  # the whole cluster's tasks, from one node
    assert {t.host_ip for t in by_name["web"].tasks} == {"10.231.0.1", "10.231.0.2", "10.231.0.3"}


def test_a_worker_does_not_list_an_overlay_it_runs_no_task_of():
    assert "secure" not in load("node2-networks-verbose.json")  # no sec task on node2
    assert "secure" in load("node1-networks-verbose.json")


def test_identity():
    manager = parse.parse_identity(load("node1-info.json"))
    worker = parse.parse_identity(load("node2-info.json"))
    assert (manager["role"], manager["hostname"], manager["address"]) == ("manager", "node1", "10.231.0.1")
    assert worker["role"] == "worker" and worker["node_id"]
    assert manager["swarm_id"] and worker["swarm_id"] is None  # only managers' /info carries the cluster
    standalone = parse.parse_identity({"Name": "box", "Swarm": {"LocalNodeState": "inactive"}})
    assert standalone["role"] == "standalone" and standalone["node_id"] is None


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-26T06:59:59.742123456Z", 1795676399.742123456),
    ("2026-11-26T06:59:59Z", 1795676399.0),
    ("2026-11-26T07:59:59.5+01:00", 1795676399.5),
    ("0001-01-01T00:00:00Z", 0.0),
    ("yesterday", 0.0),
    (None, 0.0),
])
def test_timestamps(text, expected):
    assert parse.parse_timestamp(text) == pytest.approx(expected, abs=1e-6)


def test_malformed_items_are_skipped_and_named():
    good = load("nodes.json")[0]
    values, problems = parse.parse_all([good, {"Spec": {}}, "junk", None], parse.parse_node, "node")
    assert len(values) == 1
    assert problems == ["skipped a node: node: missing or invalid 'ID'",
                        "skipped a node: node: expected an object, got str",
                        "skipped a node: node: expected an object, got NoneType"]
    assert parse.parse_all({"not": "a list"}, parse.parse_node, "node") == ([], ["node: expected a list, got dict"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)
# objects shaped like API payloads, with the keys the parsers look for, holding arbitrary values
payload_keys = st.sampled_from(["ID", "Id", "Name", "Spec", "Status", "Description", "ManagerStatus", "Mode",
                                "Endpoint", "Options", "IPAM", "Peers", "Containers", "Services", "Swarm",
                                "ServiceID", "NetworksAttachments", "Slot", "read", "networks", "cpu_stats"])
payloads = st.dictionaries(payload_keys, json_values, max_size=8) | json_values


@settings(max_examples=300, deadline=None)
@given(payloads)
def test_malformed_payloads_raise_payload_error_or_parse(raw):
    for parser in (parse.parse_node, parse.parse_service, lambda r: parse.parse_task(r, {}), parse.parse_network,
                   lambda r: parse.parse_network_view(r, None, "e"), parse.parse_identity):
        try:
            parser(raw)
        except PayloadError:
            pass


@pytest.mark.parametrize(("desired", "state", "settling"), [
    ("running", "starting", True),  # on its way up: the manager says `running` a moment after the container starts
    ("running", "assigned", True),
    ("running", "running", False),
    ("running", "failed", False),  # ended: a new task replaces it, with events of its own
    ("shutdown", "running", True),  # on its way down
    ("shutdown", "shutdown", False),
    ("shutdown", "rejected", False),
    ("ready", "pending", True),  # a job's task
    ("complete", "complete", False),
])
def test_a_task_is_settling_while_on_its_way_up_or_down(desired, state, settling):
    raw = {"ID": "t1", "ServiceID": "s1", "DesiredState": desired, "Status": {"State": state}}
    assert parse.parse_task(raw, {"s1": "web"}).settling is settling
