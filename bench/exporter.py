"""The exporter's scrape (metrics built from the latest state at scrape time) on the demo source; baseline: the
5-node demo scraped the same way in the same process.

    .venv/bin/python -m bench exporter

- scrape duration: the collector building every family from the state plus prometheus_client's text exposition,
  median over runs; size of the response and number of series;
- at 200 nodes / 300 services / 5000 tasks with 12 overlays probed (477,600 directed pairs): with the default
  --max-pairs the per-pair families are left out (per-node ones only); and one overlay with every per-pair series
  (39,800 pairs), to show how the per-pair series grow (nodes² x overlays);
- the exporter's CPU on the lab (root): the real `overlaytui exporter --lab` with its defaults (a probe round a
  minute on two overlays, collection every 5 s, stats streams) scraped every 15 s, over --cpu-seconds (600),
  measured with psutil (the process and its children, i.e. the ssh-less docker-py threads and nothing else).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import psutil
from prometheus_client import CollectorRegistry, generate_latest

from overlaytui.analysis.findings import diagnose
from overlaytui.analysis.netio import aggregate
from overlaytui.exporter import DEFAULT_MAX_PAIRS, ExportState, OverlayCollector
from overlaytui.sources.demo import DemoSource

T = 1_800_000_000.0


def state_of(scale, network: str | None = None, max_pairs: int = DEFAULT_MAX_PAIRS) -> ExportState:
    source = DemoSource("loss", seed=1, scale=scale, clock=lambda: T)
    asyncio.run(source.poll())
    snap = source.snapshot()
    results = source.probe_results(network)
    totals = {(r.network, r.src_node, r.dst_node): (r.sent, r.received) for r in results if r.kind == "ping"}
    return ExportState(snapshot=snap, up=True, results=results, totals=totals,
                       findings=tuple(diagnose(snap, results)), netio=aggregate(snap), rounds=1, last_round_at=T,
                       collected_at=T, max_pairs=max_pairs).warm()


def measure(state: ExportState, runs: int) -> dict:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverlayCollector(lambda: state))
    times, body = [], b""
    for _ in range(runs):
        start = time.perf_counter()
        body = generate_latest(registry)
        times.append(time.perf_counter() - start)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    pairs = len(state.totals)
    return {"scrape_ms": statistics.median(times) * 1000, "bytes": len(body), "series": series, "pairs": pairs}


def lab_cpu(seconds: float) -> dict | None:
    """CPU of the real exporter on the lab over `seconds`, in % of one core; None without root."""
    from .common import ensure_lab

    try:
        layouts = ensure_lab()
    except SystemExit as exc:
        print(f"exporter CPU on the lab: not measured ({exc})")
        return None
    docker = ["docker", "-H", layouts[0].docker_host]
    for net in ("bench-a", "bench-b"):
        subprocess.run([*docker, "network", "create", "-d", "overlay", net], capture_output=True, check=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "overlaytui.cli", "exporter", "--lab", "--listen",
                             f"127.0.0.1:{port}", "--network", "bench-a", "--network", "bench-b"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:  # noqa: S310
            return response.read().decode()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # measure from the first finished round on: agents are up
            try:
                if "overlaytui_probe_rounds_total 1.0" in scrape():
                    break
            except OSError:
                pass
            time.sleep(1)
        process = psutil.Process(proc.pid)

        def cpu() -> float:
            times = process.cpu_times()
            return times.user + times.system + sum(
                c.cpu_times().user + c.cpu_times().system for c in process.children(recursive=True))
        start_cpu, start = cpu(), time.monotonic()
        scrapes = 0
        while time.monotonic() - start < seconds:
            time.sleep(15)
            scrape()
            scrapes += 1
        used = cpu() - start_cpu
        wall = time.monotonic() - start
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
        for net in ("bench-a", "bench-b"):
            subprocess.run([*docker, "network", "rm", net], capture_output=True, check=False)
    return {"cpu_pct": 100 * used / wall, "seconds": wall, "scrapes": scrapes}


def main(runs: int = 5, cpu_seconds: float = 600) -> dict:
    runs = max(runs, 5)
    small = measure(state_of(None), runs)
    large = measure(state_of((200, 300, 5000)), runs)
    one_overlay = measure(state_of((200, 300, 5000), "frontend", max_pairs=10**9), max(3, runs // 2))
    fifty = measure(state_of((50, 75, 1250), "frontend", max_pairs=10**9), runs)
    print(f"scrape at 5 nodes: {small['scrape_ms']:.1f} ms, {small['series']} series, {small['bytes'] / 1024:.0f} KiB")
    print(f"scrape at 200/300/5000, every overlay probed ({large['pairs']:,} directed pairs, beyond --max-pairs: "
          f"per-node series): {large['scrape_ms']:.1f} ms (ratio {large['scrape_ms'] / small['scrape_ms']:.1f}), "
          f"{large['series']:,} series, {large['bytes'] / 1024:.0f} KiB")
    print(f"per-pair series, one overlay: 50 nodes ({fifty['pairs']:,} pairs) {fifty['scrape_ms']:.0f} ms, "
          f"{fifty['series']:,} series; 200 nodes ({one_overlay['pairs']:,} pairs) {one_overlay['scrape_ms']:.0f} ms, "
          f"{one_overlay['series']:,} series, {one_overlay['bytes'] / 2**20:.1f} MiB")
    cpu = lab_cpu(cpu_seconds)
    if cpu is not None:
        print(f"exporter CPU on the lab (3 nodes, 2 overlays, defaults, scraped every 15 s): {cpu['cpu_pct']:.2f} % "
              f"of a core over {cpu['seconds']:.0f} s")
    return {"small": small, "large": large, "per_pair_200_one_overlay": one_overlay, "per_pair_50_one_overlay": fifty,
            "lab_cpu": cpu}
