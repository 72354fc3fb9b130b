"""Contract tests for modern engines (Engine API 1.44-1.52; the lab runs 1.41).

Provenance: the payloads below are built by hand from the Engine API's published OpenAPI schemas (v1.44 to v1.52,
docs.docker.com/reference/api/engine) and its version history (docs/api/version-history.md in moby): events
without the legacy `status`/`id`/`from` fields (removed in 1.52), container and network payloads without the
deprecated top-level `NetworkSettings.IPAddress`/`MacAddress` (removed in 1.52; `Networks.*` carries them),
one-shot stats with an empty `precpu_stats` (1.41+, one-shot without a tick wait on engines >= 25), cgroup v2
memory stats (`inactive_file`, no `percpu_usage`), services whose networks are only in `TaskTemplate.Networks`
(the top-level `Spec.Networks` was deprecated in 1.44), `FirewallBackend` in /info (1.49), `Status.IPAM` on
network inspect (1.52), and an engine whose minimum API version is 1.44 (Docker 29 refuses older clients)."""

from __future__ import annotations

import json
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler

from overlaytui.analysis.findings import check_firewall, ipam_usage
from overlaytui.model import ClusterSnapshot, Engine, Health
from overlaytui.sources.assemble import assemble, engine_poll_from_payloads
from overlaytui.sources.parse import parse_identity, parse_network, parse_service
from overlaytui.sources.stats import cpu_percent, memory_used, parse_stats_frame
from overlaytui.sources.swarm import read_event

EVENT_152 = {"Type": "container", "Action": "start", "scope": "local", "time": 1764200000,
             "timeNano": 1764200000123456789,
             "Actor": {"ID": "4f1c8e", "Attributes": {"com.docker.swarm.task.id": "t1", "image": "web:1"}}}
EXEC_EVENT_152 = {"Type": "container", "Action": "exec_start: sh -c ping", "scope": "local",
                  "time": 1764200001, "timeNano": 1764200001000000000, "Actor": {"ID": "4f1c8e", "Attributes": {}}}


def test_events_without_the_legacy_fields():
    assert read_event(EVENT_152) == ("1764200000.123456789", True)
    assert read_event(EXEC_EVENT_152) == ("1764200001.000000000", False)


CONTAINER_152 = {  # GET /containers/json item: no top-level IPAddress/MacAddress under NetworkSettings
    "Id": "4f1c8e" * 10 + "abcd", "Names": ["/web.1.x"], "State": "running", "Labels": {
        "com.docker.swarm.task.id": "t1", "com.docker.swarm.service.name": "web"},
    "NetworkSettings": {"Networks": {"front": {"NetworkID": "n-front", "MacAddress": "02:42:0a:00:01:05",
                                              "IPAddress": "10.0.1.5", "Gateway": "", "IPPrefixLen": 24}}}}
NETWORK_152 = {"Id": "n-front", "Name": "front", "Scope": "swarm", "Driver": "overlay",
               "IPAM": {"Config": [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]},
               "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
               "Status": {"IPAM": {"Subnets": {"10.0.1.0/24": {"IPsInUse": 9, "DynamicIPsAvailable": 247}}}}}
ONE_SHOT_V2 = {  # stream=false&one-shot=true on cgroup v2: precpu empty, no percpu_usage, inactive_file
    "read": "2026-11-27T01:00:01.5Z", "preread": "0001-01-01T00:00:00Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 5_000_000_000, "usage_in_kernelmode": 1, "usage_in_usermode": 2},
                  "system_cpu_usage": 900_000_000_000, "online_cpus": 2, "throttling_data": {}},
    "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                     "throttling_data": {}},
    "memory_stats": {"usage": 50_000_000, "limit": 1_000_000_000, "stats": {"inactive_file": 10_000_000,
                                                                              "active_file": 1}},
    "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}}}


def test_containers_networks_and_one_shot_cgroup_v2_stats():
    sample = parse_stats_frame(ONE_SHOT_V2)
    assert cpu_percent(sample) is None  # one sample: no CPU % yet, never a made-up 0
    assert memory_used(sample) == 40_000_000  # usage minus inactive_file (cgroup v2)
    later = parse_stats_frame(ONE_SHOT_V2 | {"read": "2026-11-27T01:00:02.5Z", "networks": {
        "eth0": {"rx_bytes": 3000, "tx_bytes": 2500}}})
    info = {"ID": "E1", "Name": "node1", "ServerVersion": "29.0.0", "Swarm": {"LocalNodeState": "inactive"}}
    poll = engine_poll_from_payloads("unix:///e", parse_identity(info), [CONTAINER_152], [NETWORK_152], {}, {})
    snap = assemble(taken_at=2.0, engines=[Engine("unix:///e", Health.OK)], swarm=None, polls={"unix:///e": poll},
                    samples={"unix:///e": {CONTAINER_152["Id"]: (sample, later)}})
    [container] = snap.containers
    assert container.service_name == "web" and container.rx_rate == 2000.0 and container.tx_rate == 500.0
    assert [(i.name, i.network_name) for i in container.interfaces] == [("eth0", "front")]


def test_service_networks_from_the_task_template_only():
    raw = {"ID": "s1", "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 2}},
                                "TaskTemplate": {"ContainerSpec": {"Image": "web:1"},
                                                 "Networks": [{"Target": "n-front"}]}},
           "Endpoint": {"Spec": {"Mode": "vip"}, "VirtualIPs": [{"NetworkID": "n-front", "Addr": "10.0.1.2/24"}]}}
    service = parse_service(raw)
    assert service.network_ids == ("n-front",) and service.vips[0].address == "10.0.1.2/24"


def test_network_status_ipam_is_the_engines_own_count():
    net = parse_network(NETWORK_152)
    assert net.ipam_status == (9, 247)
    assert ipam_usage(ClusterSnapshot(0.0, (), networks=(net,)), net) == (9, 256)
    older = parse_network({k: v for k, v in NETWORK_152.items() if k != "Status"})
    assert older.ipam_status is None  # < 1.52: counted from tasks, VIPs and endpoints instead


def test_firewall_backend_from_info():
    info = {"ID": "E1", "Name": "node2", "ServerVersion": "28.3.0", "FirewallBackend": {"Driver": "nftables"},
            "Swarm": {"LocalNodeState": "active", "NodeID": "n2", "ControlAvailable": False, "NodeAddr": "10.0.0.2",
                      "Cluster": {"ID": "c1"}}}
    identity = parse_identity(info)
    assert identity["firewall"] == "nftables"
    assert parse_identity({**info, "FirewallBackend": None})["firewall"] == ""
    from overlaytui.model import Node

    engine = Engine("unix:///n2", Health.OK, node_id="n2", hostname="node2", firewall=identity["firewall"])
    snap = ClusterSnapshot(0.0, (engine,), nodes=(Node("n2", "node2", "worker", "ready", "active", "10.0.0.2"),))
    assert [f.subject for f in check_firewall(snap)] == ["node2"]


class _Engine29(BaseHTTPRequestHandler):
    """An engine with API 1.52 that refuses clients below 1.44, as Docker 29 does."""

    protocol_version = "HTTP/1.1"
    INFO = {"ID": "E29", "Name": "modern", "ServerVersion": "29.0.0", "Swarm": {"LocalNodeState": "inactive"},
            "FirewallBackend": {"Driver": "iptables"}}
    seen: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def _send(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", "1.52")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        self.seen.append(path)
        if path in ("/_ping", "/version"):
            self._send(200, {"ApiVersion": "1.52", "MinAPIVersion": "1.44", "Version": "29.0.0"} if path ==
                       "/version" else "OK")
            return
        version = path.split("/")[1]
        if version.startswith("v") and tuple(map(int, version[1:].split("."))) < (1, 44):
            self._send(400, {"message": f"client version {version[1:]} is too old. Minimum supported API version "
                                        "is 1.44, please upgrade your client to a newer version"})
            return
        rest = "/" + path.split("/", 2)[2] if path.count("/") >= 2 else path
        answers = {"/info": self.INFO, "/containers/json": [], "/networks": []}
        self._send(200, answers[rest]) if rest in answers else self._send(404, {"message": "page not found"})


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


def test_an_engine_that_refuses_old_api_versions_is_negotiated_with(tmp_path):
    server = _UnixHTTPServer(str(tmp_path / "docker29.sock"), _Engine29)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = subprocess.run([sys.executable, "-m", "overlaytui", "snapshot", "--json", "-H",
                               f"unix://{tmp_path / 'docker29.sock'}", "--timeout", "2"], capture_output=True,
                              text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr
    [engine] = json.loads(proc.stdout)["engines"]
    assert engine["health"] == "ok" and engine["version"] == "29.0.0" and engine["firewall"] == "iptables"
    assert any(p.startswith("/v1.52/") for p in _Engine29.seen)  # negotiated, never pinned to the lab's 1.41
    assert not any(p.startswith("/v1.4") and not p.startswith("/v1.44") for p in _Engine29.seen)
