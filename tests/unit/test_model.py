"""The model's own rules (overlaytui/model.py), each at its boundary: natural order, task states, the MTU
containers get, summed rates, which nodes are unmeasured and why, loss percentages, coverage."""

from __future__ import annotations

import pytest

from overlaytui.model import (
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
    PairWindow,
    ProbeData,
    ProbeResult,
    Service,
    ServiceEndpoint,
    Task,
    natural_key,
    natural_sorted,
    natural_tuple,
)


def test_natural_order():
    assert natural_sorted(["node10", "node2", "Node3", "node1"]) == ["node1", "node2", "Node3", "node10"]
    assert natural_sorted(["node02", "node2", "node1"]) == ["node1", "node02", "node2"]  # the name breaks ties
    assert natural_sorted(["a9b", "a10a", "a10"]) == ["a9b", "a10", "a10a"]
    assert natural_sorted(["x" + "9" * 5000, "x1" + "0" * 5000, "x10"]) == ["x10", "x" + "9" * 5000,
                                                                               "x1" + "0" * 5000]
    assert natural_key("Web-007") == (("web-", (1, "7"), ""), "Web-007")
    assert natural_key("0") == (("", (1, "0"), ""), "0") and natural_key("abc") == (("abc",), "abc")
    assert natural_tuple(("node10", 3, "node2")) == (natural_key("node10"), 3, natural_key("node2"))
    assert sorted([("net", "node10"), ("net", "node9")], key=natural_tuple) == [("net", "node9"), ("net", "node10")]


def service(replicas=3, desired=None):
    return Service("s", "web", "replicated", replicas, "vip", (), (), "nginx", desired_tasks=desired)


def test_wanted_tasks_prefer_the_engines_count():
    assert service(3).wanted_tasks == 3 and service(3, desired=5).wanted_tasks == 5
    assert service(None).wanted_tasks is None and service(3, desired=0).wanted_tasks == 0


def task(state, desired="running", slot=2, node="nodeid"):
    return Task("t", "s", "web", slot, node, desired, state, "", "", 0.0, None, None, None)


@pytest.mark.parametrize(("state", "desired", "up", "wanted", "settling"), [
    ("running", "running", True, True, False),
    ("running", "ready", False, True, False),
    ("preparing", "running", False, True, True),
    ("failed", "running", False, True, False),
    ("running", "shutdown", False, False, True),
    ("starting", "shutdown", False, False, True),
    ("shutdown", "shutdown", False, False, False),
    ("running", "complete", False, False, False),
    ("pending", "complete", False, False, False),
])
def test_task_states(state, desired, up, wanted, settling):
    t = task(state, desired)
    assert (t.up, t.wanted, t.settling) == (up, wanted, settling)


def test_task_names_as_docker_service_ps():
    assert task("running").name == "web.2" and task("running", slot=None).name == "web.nodeid"
    assert task("running", slot=0).name == "web.0"


def network(driver="overlay", mtu=None, encrypted=False, views=()):
    return Network("id", "net", driver, "swarm", None, None, None, mtu, encrypted, False, False, False, views=views)


def test_the_mtu_containers_get():
    assert network().effective_mtu == 1450 and network(mtu=1400).effective_mtu == 1350
    assert network(encrypted=True).effective_mtu == 1424  # (1450 - 26) rounded down to a multiple of 4
    assert network(mtu=1403, encrypted=True).effective_mtu == 1324  # 1327 -> 1324
    assert network(mtu=1406, encrypted=True).effective_mtu == 1328  # 1330 -> 1328
    assert network("bridge").effective_mtu == 1500 and network("bridge", mtu=9000).effective_mtu == 9000
    assert network("host").effective_mtu is None and network("null").effective_mtu is None
    assert network("macvlan", encrypted=True).effective_mtu == 1500


def test_a_networks_services_merged_over_the_views():
    def svc(name, n):
        return NetworkService(name, "10.0.0.2", tuple(ServiceEndpoint(f"{name}.{i}", f"10.0.0.{i}", "")
                                                       for i in range(n)))
    views = (NetworkView("n1", "e1", (), (), (svc("web10", 1), svc("web2", 2))),
             NetworkView("n2", "e2", (), (), (svc("web10", 3), svc("web2", 1))),
             NetworkView("n3", "e3", (), (), (svc("web10", 3),)))
    merged = network(views=views).services
    assert [(s.name, len(s.tasks)) for s in merged] == [("web2", 2), ("web10", 3)]
    assert merged[1] is views[1].services[0]  # the first view with the most tasks
    assert network().services == ()


def iface(name, net, rx, tx, rx_rate, tx_rate):
    return InterfaceStats(name, "nid", net, True, rx, tx, rx_rate, tx_rate)


def stats(*interfaces):
    return ContainerStats("c", "web.1", "e", "n", "t", "web", 1.0, 1.0, 1, 2, interfaces)


def test_container_rates_and_bytes():
    c = stats(iface("eth0", "front", 100, 10, 5.0, 1.0), iface("eth1", "front", 20, 2, 1.5, 0.5),
              iface("eth2", "back", 3, 4, 2.0, None), iface("eth3", None, 1, 1, 7.0, 7.0))
    assert (c.rx_bytes, c.tx_bytes) == (124, 17)
    assert c.rx_rate == 15.5 and isinstance(c.rx_rate, float) and c.tx_rate is None  # one unknown: unknown
    assert c.network_rates() == {"front": (6.5, 1.5)}  # eth2 has no tx rate, eth3 no network
    empty = stats()
    assert (empty.rx_bytes, empty.rx_rate, empty.tx_rate, empty.network_rates()) == (0, None, None, {})
    assert stats(iface("eth0", "front", 1, 1, 0.0, 0.0)).rx_rate == 0.0


def test_which_nodes_are_unmeasured_and_why():
    nodes = tuple(Node(f"id{i}", f"node{i}", "worker", "ready", "active", f"10.0.0.{i}") for i in (1, 2, 3, 4, 5))
    engines = (Engine("tcp://a", Health.OK, node_id="id1"), Engine("tcp://b", Health.STALE, node_id="id2"),
               Engine("tcp://c", Health.ERROR, "refused", node_id="id3"), Engine("tcp://d", Health.ERROR,
                                                                                node_id="id4"),
               Engine("tcp://e", Health.OK))
    snap = ClusterSnapshot(0.0, engines, nodes=nodes, networks=(network(),))
    assert [n.id for n in snap.nodes_without_engine] == ["id3", "id4", "id5"]
    assert snap.unmeasured_nodes == {"id3": "its engine tcp://c: refused", "id4": "its engine tcp://d: error",
                                     "id5": "no engine connection"}
    assert snap.network("id").name == "net" and snap.network("net").id == "id" and snap.network("x") is None
    assert snap.nodes_by_id["id2"].hostname == "node2" and snap.networks_by_id["id"].name == "net"


def test_loss_and_measured():
    ping = ProbeResult("ping", "n", "a", "b", 0.0, sent=200, received=199)
    assert ping.loss_pct == 0.5 and ping.measured
    assert ProbeResult("ping", "n", "a", "b", 0.0, sent=10, received=12).loss_pct == 0.0  # duplicates
    assert ProbeResult("ping", "n", "a", "b", 0.0).loss_pct is None
    assert not ProbeResult("ping", "n", "a", "b", 0.0).measured  # sent nothing
    assert not ProbeResult("ping", "n", "a", "b", 0.0, sent=5, received=5, error="x").measured
    mtu = ProbeResult("mtu", "n", "a", "b", 0.0, path_mtu=1400)
    assert mtu.measured and mtu.loss_pct is None and not ProbeResult("mtu", "n", "a", "b", 0.0, error="x").measured


def test_coverage_and_windows():
    assert Coverage("n", "ping", 2, 2).complete and not Coverage("n", "ping", 2, 1).complete
    assert not Coverage("n", "ping", 0, 0).complete
    w = PairWindow("n", "a", "b", 10, 9, 100, 100, 0, 0, 300.0)
    assert (w.round_loss_pct, w.recent_loss_pct, w.total_loss_pct) == (10.0, 0.0, None)
    assert PairWindow("n", "a", "b", 4, 6, 0, 0, 0, 0, 1.0).round_loss_pct == 0.0


def test_probe_data_per_overlay():
    a = ProbeResult("ping", "a", "x", "y", 0.0, sent=1, received=1)
    b = ProbeResult("ping", "b", "x", "y", 0.0, sent=1, received=1)
    window = PairWindow("a", "x", "y", 1, 1, 1, 1, 1, 1, 300.0)
    data = ProbeData(recent={"a": (a,), "b": (b,)}, windows={"a": {("x", "y"): window}},
                     coverage=(Coverage("a", "ping", 2, 1), Coverage("b", "ping", 2, 2), Coverage("a", "mtu", 2, 2)))
    assert data.results() == (a, b) and data.results("b") == (b,) and data.results("c") == ()
    assert data.windows_of("a") == {("x", "y"): window} and data.windows_of("b") == {}
    assert [c.kind for c in data.coverage_of("a")] == ["ping", "mtu"] and data.coverage_of("c") == ()
