"""Issue 23: the exporter's HTTP server under abuse (loopback only, bounded loops): idle and slow connections
cannot starve the scrapes nor end the process; HEAD, the health path and 404; label values a scrape can encode;
series unique when names repeat."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from overlaytui.exporter import ExportState, OverlayCollector
from overlaytui.httpd import Server
from tests.helpers import wait_for
from tests.unit.test_exporter import demo_state

ROOT = Path(__file__).parents[2]


def _registry(state_of) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverlayCollector(state_of))
    return registry


def _request(port: int, raw: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _get(port: int, path: str, method: str = "GET", timeout: float = 5.0) -> tuple[str, dict, bytes]:
    answer = _request(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), timeout)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, body


def test_routes_head_health_404_and_405():
    state = demo_state()
    server = Server("127.0.0.1", 0, _registry(lambda: state), lambda: state).start()
    port = server.address[1]
    try:
        status, headers, body = _get(port, "/metrics")
        assert status == "HTTP/1.1 200 OK" and b"overlaytui_up 1.0" in body
        assert int(headers["content-length"]) == len(body)
        status, headers, body = _get(port, "/metrics", "HEAD")
        assert status == "HTTP/1.1 200 OK" and body == b"" and int(headers["content-length"]) > 1000
        assert _get(port, "/")[0].endswith("200 OK") and b"overlaytui exporter" in _get(port, "/")[2]
        assert _get(port, "/healthz")[2] == b"ok\n" and _get(port, "/-/healthy")[0].endswith("200 OK")
        assert _get(port, "/nope")[0] == "HTTP/1.1 404 Not Found"
        assert _get(port, "/metrics", "POST")[0] == "HTTP/1.1 405 Method Not Allowed"
        assert _request(port, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert _request(port, b"GET /" + b"x" * 40000 + b" HTTP/1.1\r\n\r\n") == b""  # too long: closed
    finally:
        server.close()


def test_idle_connections_are_evicted_for_a_scrape_and_time_out():
    state = demo_state()
    server = Server("127.0.0.1", 0, _registry(lambda: state), lambda: state, max_connections=20,
                    header_timeout=1.0).start()
    port = server.address[1]
    idle = []
    try:
        for _ in range(60):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        started = time.monotonic()
        assert _get(port, "/metrics")[0].endswith("200 OK")
        assert time.monotonic() - started < 2.0 and server.evicted >= 40
        time.sleep(1.5)
        assert len(server._open) == 0  # the rest ran out of time
    finally:
        for conn in idle:
            conn.close()
        server.close()


def test_a_lone_surrogate_and_duplicate_names_still_make_a_valid_scrape():
    state = demo_state()
    snap = state.snapshot
    nodes = tuple(replace(n, hostname="\udc9bnode") if n.hostname in ("node1", "node2") else n for n in snap.nodes)
    overlay = next(n for n in snap.networks if n.name == "frontend")
    twin = replace(overlay, id="twin" + overlay.id, configured_mtu=1350)
    state = replace(state, snapshot=replace(snap, nodes=nodes, networks=(*snap.networks, twin)))
    text = generate_latest(_registry(lambda: state)).decode("utf-8")  # strict: raised before
    keys = [(s.name, tuple(sorted(s.labels.items()))) for f in text_string_to_metric_families(text)
            for s in f.samples]
    assert len(keys) == len(set(keys))  # Prometheus rejects a scrape with one duplicate series
    ready = {s.labels["node"] for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == "overlaytui_node_ready"}
    assert len([n for n in ready if n.startswith("\\udc9bnode (")]) == 2
    mtus = {s.labels["network"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "overlaytui_network_mtu_bytes" and s.labels["network"].startswith("frontend")}
    assert sorted(mtus.values()) == sorted([float(twin.effective_mtu), float(overlay.effective_mtu)])
    assert twin.effective_mtu != overlay.effective_mtu and len(mtus) == 2


def test_nothing_collected_serves_too():
    server = Server("127.0.0.1", 0, _registry(ExportState), ExportState).start()
    try:
        assert b"overlaytui_up 0.0" in _get(server.address[1], "/metrics")[2]
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accept_queue(port: int) -> int:
    """Connections the kernel holds for the listening socket, not accepted yet (`ss`: Recv-Q of a listener)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10).stdout
    fields = out.split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_the_exporter_holds_2000_idle_and_100_slow_connections_at_1024_descriptors():
    """The issue's attack on the real command: `overlaytui exporter --demo` with RLIMIT_NOFILE 1024, 2,000 idle
    connections and 100 that send a byte a second, scraped every second for 20 s: every scrape answers within
    2 s and the exporter is still running at the end."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    port = _free_port()
    exporter = subprocess.Popen([sys.executable, "-m", "overlaytui.cli", "exporter", "--demo", "--no-probe",
                                 "--listen", f"127.0.0.1:{port}", "--collect-every", "1"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_limit_descriptors,
                                env={**os.environ, "OVERLAYTUI_CONFIG": "/nonexistent/config.toml"})
    attackers: list[socket.socket] = []
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # up: its first answer
            with contextlib.suppress(OSError):
                if b"overlaytui_up" in _get(port, "/metrics", timeout=2)[2]:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("the exporter never answered")
        for i in range(2100):
            conn = socket.socket()
            conn.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                conn.connect(("127.0.0.1", port))
            attackers.append(conn)
            if i >= 2000:
                with contextlib.suppress(OSError):
                    conn.send(b"GET /metrics HTTP/1.1\r\n")  # the slow ones: a request that never ends
            if i % 500 == 499:  # connects beyond the listen backlog (1024) at once are a SYN flood, not this test's
                wait_for(lambda: _accept_queue(port) == 0, 10, "the exporter to accept the connections so far")
        wait_for(lambda: _accept_queue(port) == 0, 10, "the exporter to accept every connection")
        for second in range(20):
            started = time.monotonic()
            for conn in attackers[2000:]:  # a byte a second each
                with contextlib.suppress(OSError):
                    conn.send(b"X")
            status, _headers, body = _get(port, "/metrics", timeout=5)
            latencies.append(time.monotonic() - started)
            assert status.endswith("200 OK") and b"overlaytui_up" in body, (second, status)
            assert exporter.poll() is None
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        assert max(latencies) < 2.0, latencies
        assert exporter.poll() is None
        print(f"scrapes under attack: max {max(latencies) * 1000:.0f} ms, median "
              f"{sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms")
    finally:
        for conn in attackers:
            conn.close()
        exporter.terminate()
        try:
            _out, err = exporter.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            exporter.kill()
            _out, err = exporter.communicate()
    assert "Traceback" not in err.decode(errors="replace"), err.decode(errors="replace")[-2000:]


def test_listen_problems_are_one_line_from_the_command():
    for listen, says in ((":9476", "the host is empty; say which"), ("::1:9476", "[ADDRESS]:PORT"),
                         ("127.0.0.1:99999", "the port must be 1-65535")):
        done = subprocess.run([sys.executable, "-m", "overlaytui.cli", "exporter", "--demo", "--no-probe",
                               "--listen", listen], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr
