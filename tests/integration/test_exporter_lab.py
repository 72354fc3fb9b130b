"""The exporter on the lab, scraped by a real Prometheus (Debian's package, on loopback, a temporary config and data
dir): loss through node2 and node3's black hole show in PromQL over the exported series; a removed agent service is
deployed again; SIGTERM leaves no agent."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.helpers import Lab, required_binary, wait_for

NETWORK = "e-plain"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return response.read().decode()


class Prometheus:
    def __init__(self, tmp_path, target: str) -> None:
        binary = required_binary("prometheus", "prometheus")
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
                          f"  - job_name: overlaytui\n    static_configs:\n      - targets: ['{target}']\n")
        self.log = (tmp_path / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            data = json.loads(get(url))
        except OSError:
            return []
        return data["data"]["result"] if data.get("status") == "success" else []

    def by_pair(self, expr: str) -> dict[tuple[str, str], float]:
        return {(r["metric"]["src_node"], r["metric"]["dst_node"]): float(r["value"][1]) for r in self.query(expr)}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def exporter_and_prometheus(lab: Lab, tmp_path):
    lab.docker("node1", "network", "create", "-d", "overlay", NETWORK)
    port = free_port()
    log = (tmp_path / "exporter.log").open("w")
    exporter = subprocess.Popen(
        [sys.executable, "-m", "overlaytui.cli", "exporter", "--lab", "--listen", f"127.0.0.1:{port}",
         "--network", NETWORK, "--probe-every", "1", "--count", "200", "--interval", "0.01", "--collect-every", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{port}")
    try:
        yield exporter, prometheus, port, tmp_path / "exporter.log"
    finally:
        prometheus.stop()
        if exporter.poll() is None:
            exporter.send_signal(signal.SIGTERM)
            try:
                exporter.wait(90)
            except subprocess.TimeoutExpired:
                exporter.kill()
        log.close()
        lab.fault("node2", "clear")
        lab.fault("node3", "clear")
        wait_until_gone(lab, 90, "the exporter's probe agents")
        lab.docker("node1", "network", "rm", NETWORK, check=False)


def agent_remains(lab: Lab) -> list[str]:
    """This exporter's agent service and its containers, in any state, on any node (other modules' leftovers
    are theirs to wait for)."""
    prefix = f"overlaytui-probe-{NETWORK}-"  # then the run's id
    services = lab.docker("node1", "service", "ls", "-q", "--filter", f"name={prefix}").stdout.split()
    containers = [f"{node}:{c}" for node in ("node1", "node2", "node3") for c in lab.docker(
        node, "ps", "-aq", "--filter", f"name={prefix}").stdout.split()]
    return services + containers


def agent_service(lab: Lab) -> str:
    """The exporter's agent service on the overlay (its name ends with the run's id)."""
    names = lab.docker("node1", "service", "ls", "--format", "{{.Name}}", "--filter",
                       f"name=overlaytui-probe-{NETWORK}-").stdout.split()
    assert len(names) == 1, names
    return names[0]


def wait_until_gone(lab: Lab, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    remains = agent_remains(lab)
    while remains:
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still there after {timeout:g} s: {remains}")
        time.sleep(0.5)
        remains = agent_remains(lab)


def loss_by_pair(prometheus: Prometheus, seconds: int) -> dict[tuple[str, str], float]:
    window = f"{network_selector()}[{seconds}s]"
    return prometheus.by_pair(
        f"sum by (src_node, dst_node) (increase(overlaytui_pair_packets_lost_total{window})) / "
        f"sum by (src_node, dst_node) (increase(overlaytui_pair_packets_sent_total{window}))")


def network_selector() -> str:
    return f'{{network="{NETWORK}"}}'


def test_prometheus_sees_loss_and_a_black_hole_and_sigterm_cleans_up(lab: Lab, exporter_and_prometheus):
    exporter, prometheus, port, log = exporter_and_prometheus
    up = wait_for(lambda: (pairs := prometheus.by_pair(f"overlaytui_pair_up{network_selector()}")) and len(
        pairs) == 6 and all(v == 1.0 for v in pairs.values()) and pairs, 120,
        "Prometheus to see all 6 pairs up", interval=1)
    assert set(up) == {(a, b) for a in ("node1", "node2", "node3") for b in ("node1", "node2", "node3") if a != b}
    scrape = get(f"http://127.0.0.1:{port}/metrics")
    check = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0 and not check.stderr.strip(), check.stderr

    lab.fault("node2", "loss", "10")
    started = time.monotonic()

    def lossy_enough():
        seconds = int(time.monotonic() - started) - 2  # rounds that began before the fault stay out
        if seconds < 8:
            return None
        sent = prometheus.by_pair(f"increase(overlaytui_pair_packets_sent_total{network_selector()}[{seconds}s])")
        # 800 packets at 10 %: one standard deviation is 1.1 points, the bounds below are 5 and 9 away
        if len(sent) < 6 or min(sent.values()) < 800:
            return None
        return loss_by_pair(prometheus, seconds)
    loss = wait_for(lossy_enough, 180, "800 packets per pair since node2 started dropping", interval=2)
    lab.fault("node2", "clear")
    for (src, dst), ratio in loss.items():
        if "node2" in (src, dst):
            assert 0.04 <= ratio <= 0.20, (src, dst, ratio)
        else:
            assert ratio < 0.02, (src, dst, ratio)

    lab.fault("node3", "mtu", "1400")
    holes = wait_for(lambda: (mtus := prometheus.by_pair(f"overlaytui_pair_path_mtu_bytes{network_selector()}"))
                     and all(mtus.get(p, 1450) < 1450 for p in (("node1", "node3"), ("node2", "node3"))) and mtus,
                     120, "the black hole into node3 in overlaytui_pair_path_mtu_bytes", interval=1)
    assert 1350 <= holes[("node1", "node3")] <= 1354 and holes[("node1", "node2")] == 1450
    below = prometheus.query("overlaytui_pair_path_mtu_bytes < on (network) group_left overlaytui_network_mtu_bytes")
    assert {(r["metric"]["src_node"], r["metric"]["dst_node"]) for r in below} >= {("node1", "node3"),
                                                                                   ("node2", "node3")}

    lab.fault("node3", "clear")
    # someone removes the agent service: the exporter deploys it again and the pairs come back
    lab.docker("node1", "service", "rm", agent_service(lab))
    wait_for(lambda: "was removed: deployed again" in log.read_text(), 120, "the agent to be deployed again",
             interval=1)
    rounds = prometheus.query("overlaytui_probe_rounds_total")[0]["value"][1]
    wait_for(lambda: float(prometheus.query("overlaytui_probe_rounds_total")[0]["value"][1]) > float(rounds) + 2
             and all(v == 1.0 for v in prometheus.by_pair(f"overlaytui_pair_up{network_selector()}").values()),
             120, "rounds with every pair up after the re-deploy", interval=1)

    exporter.send_signal(signal.SIGTERM)
    assert exporter.wait(90) == 0, log.read_text()[-2000:]
    assert "stopped (agents removed)" in log.read_text()
    wait_until_gone(lab, 90, "the probe agents after SIGTERM")
