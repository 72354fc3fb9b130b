"""The swarm source's start against two small engines over unix sockets (HTTP as the Engine API speaks it): a
manager that names a node, and that node's engine ([nodes] endpoint). The nodes a manager names are followed as
soon as it names them — the node's engine is asked while the manager's first poll still runs — and the start
still returns with every engine polled."""

from __future__ import annotations

import asyncio
import threading
import time

from overlaytui.model import Health
from overlaytui.sources.endpoints import EndpointSpec
from overlaytui.sources.swarm import DockerSwarmSource
from tests.unit.test_modern_engines import _Engine29, _UnixHTTPServer

NODES = [
    {"ID": "m1", "Description": {"Hostname": "mgr"}, "Spec": {"Role": "manager", "Availability": "active"},
     "Status": {"State": "ready", "Addr": "10.9.0.1"}, "ManagerStatus": {"Leader": True}},
    {"ID": "w2", "Description": {"Hostname": "node2"}, "Spec": {"Role": "worker", "Availability": "active"},
     "Status": {"State": "ready", "Addr": "10.9.0.2"}},
]


def _info(node_id: str, manager: bool) -> dict:
    return {"ID": f"E-{node_id}", "Name": node_id, "ServerVersion": "20.10.24",
            "Swarm": {"LocalNodeState": "active", "NodeID": node_id, "ControlAvailable": manager,
                      "NodeAddr": "10.9.0.1" if manager else "10.9.0.2", "Cluster": {"ID": "swarm1"}}}


class _Engines:
    """What both engines saw, in order, and a gate: the manager answers /tasks only once the node's engine was
    asked for its containers (or after 5 s: then the test fails on the order)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.node_asked = threading.Event()
        self.lock = threading.Lock()

    def handler(self, node_id: str, manager: bool):
        engines = self

        class Handler(_Engine29):  # its HTTP: JSON answers, quiet

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                rest = "/" + path.split("/", 2)[2] if path.startswith("/v1.") else path
                with engines.lock:
                    engines.seen.append(f"{node_id} {rest}")
                if not manager and rest == "/containers/json":
                    engines.node_asked.set()
                if manager and rest == "/tasks":
                    engines.node_asked.wait(5)
                    with engines.lock:
                        engines.seen.append(f"{node_id} /tasks answered")
                answers = {"/_ping": "OK", "/version": {"ApiVersion": "1.41", "Version": "20.10.24"},
                           "/info": _info(node_id, manager), "/containers/json": [], "/networks": [],
                           "/nodes": NODES, "/services": [], "/tasks": []}
                if rest not in answers or (not manager and rest in ("/nodes", "/services", "/tasks")):
                    self._send(404 if rest not in answers else 503, {"message": "no"})
                    return
                self._send(200, answers[rest])

        return Handler


def test_a_named_node_is_polled_while_the_managers_first_poll_runs(tmp_path):
    engines = _Engines()
    servers = [_UnixHTTPServer(str(tmp_path / "m1.sock"), engines.handler("m1", True)),
               _UnixHTTPServer(str(tmp_path / "w2.sock"), engines.handler("w2", False))]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()

    async def run():
        source = DockerSwarmSource([EndpointSpec(f"unix://{tmp_path / 'm1.sock'}", "--host")], events=False,
                                   call_timeout=10, node_endpoints={"node2": f"unix://{tmp_path / 'w2.sock'}"})
        started = time.monotonic()
        try:
            await source.start()
            return source.snapshot(), time.monotonic() - started
        finally:
            await source.close()

    try:
        snapshot, seconds = asyncio.run(run())
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    # the node's engine was asked before the manager's poll ended (it waits for that at /tasks, up to 5 s)
    assert engines.seen.index("w2 /containers/json") < engines.seen.index("m1 /tasks answered"), engines.seen
    assert seconds < 4, engines.seen
    # the start returned with both engines polled, the node's engine once (not again by the swarm poll's follow)
    assert [(e.hostname, e.health) for e in snapshot.engines] == [("m1", Health.OK), ("w2", Health.OK)]
    assert engines.seen.count("w2 /containers/json") == 1
    assert [n.hostname for n in snapshot.nodes] == ["mgr", "node2"]
