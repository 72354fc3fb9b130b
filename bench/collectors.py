"""Collector benchmarks on a 3-node lab with >= 60 running containers; baselines run in the same script.

    .venv/bin/python -m bench collectors [--runs 5] [--cpu-seconds 60]

1. `overlaytui snapshot --json` wall time vs the docker CLI doing the same job: `docker stats --no-stream` on
   every engine, `docker node ls`, `docker service ps` of all services, `docker network inspect -v` of every
   overlay — once one after another (as an operator types it) and once with the per-engine stats in parallel.
2. Topology refresh (everything but stats: one poll of every engine + the swarm, parsed and joined) vs the
   same raw API calls made directly over the same sockets.
3. Event latency: a service created, and a service scaled 1 -> 3 until the snapshot shows 3 tasks running (the
   manager reports `running` after the containers' events: follow-up polls while tasks settle) vs the docker
   CLI's `service ls` polled every 0.1 s, and vs the same source without follow-up polls.
4. CPU of live collection over N seconds (polling and stats streams, a snapshot every second, as the dashboard
   does) vs `docker stats` streaming the same containers (one CLI per engine), and the age of the stats shown.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import psutil

from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.lab.layout import PROBE_IMAGE
from overlaytui.sources import swarm
from overlaytui.sources.swarm import DockerSwarmSource

from .common import ensure_lab, median_of, report

SERVICE = "bench-web"


def ensure_containers(layouts, total: int = 60) -> int:
    """A replicated service with enough tasks that the lab runs at least `total` containers."""
    manager = docker.APIClient(base_url=layouts[0].docker_host, version="auto", timeout=30)
    running = sum(len(docker.APIClient(base_url=n.docker_host, version="auto").containers()) for n in layouts)
    existing = [s for s in manager.services() if s["Spec"]["Name"] == SERVICE]
    if running < total and not existing:
        subprocess.run(["docker", "-H", layouts[0].docker_host, "network", "create", "-d", "overlay",
                        "bench-net"], capture_output=True)
        subprocess.run(["docker", "-H", layouts[0].docker_host, "service", "create", "-q", "--detach", "--name",
                        SERVICE, "--replicas", str(total - running), "--network", "bench-net", PROBE_IMAGE],
                       check=True, capture_output=True)
    elif running < total:  # made by an earlier run beside containers that have gone since
        replicas = existing[0]["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0)
        subprocess.run(["docker", "-H", layouts[0].docker_host, "service", "scale", "--detach",
                        f"{SERVICE}={replicas + total - running}"], check=True, capture_output=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        running = sum(len(docker.APIClient(base_url=n.docker_host, version="auto").containers()) for n in layouts)
        if running >= total:
            return running
        time.sleep(1)
    raise SystemExit(f"only {running} containers running after 180 s")


def cli(host: str, *args: str) -> None:
    subprocess.run(["docker", "-H", host, *args], check=True, capture_output=True)


def cli_same_job(layouts, parallel_stats: bool) -> None:
    manager = layouts[0].docker_host
    if parallel_stats:
        with ThreadPoolExecutor(len(layouts)) as pool:
            list(pool.map(lambda n: cli(n.docker_host, "stats", "--no-stream"), layouts))
    else:
        for n in layouts:
            cli(n.docker_host, "stats", "--no-stream")
    cli(manager, "node", "ls")
    services = subprocess.run(["docker", "-H", manager, "service", "ls", "-q"], capture_output=True,
                              text=True, check=True).stdout.split()
    cli(manager, "service", "ps", *services)
    overlays = subprocess.run(["docker", "-H", manager, "network", "ls", "-q", "--filter", "driver=overlay"],
                              capture_output=True, text=True, check=True).stdout.split()
    for net in overlays:
        cli(manager, "network", "inspect", "-v", net)


def overlaytui_snapshot() -> None:
    subprocess.run([sys.executable, "-m", "overlaytui", "snapshot", "--lab", "--json"], check=True,
                   capture_output=True)


def raw_topology_calls(clients, manager) -> None:
    """The HTTP calls a topology refresh makes, made directly (no parsing beyond JSON, no joins)."""
    def engine(api):
        containers = api.containers()
        nets = api.networks()
        attached = {n["NetworkID"] for c in containers for n in c["NetworkSettings"]["Networks"].values()}
        for net in nets:
            if net["Scope"] == "swarm" and (net["Id"] in attached or net.get("Ingress")):
                try:
                    api.inspect_network(net["Id"], verbose=True, scope="swarm")
                except docker.errors.NotFound:
                    pass

    def swarm():
        manager.nodes(), manager.services(status=True), manager.tasks(), manager.networks(filters={"scope": "swarm"})

    with ThreadPoolExecutor(len(clients) + 1) as pool:
        futures = [pool.submit(engine, api) for api in clients] + [pool.submit(swarm)]
        for f in futures:
            f.result()


async def topology_refresh_times(runs: int) -> list[float]:
    source = DockerSwarmSource(lab_endpoints(), stats=False, events=False)
    await source.start()
    times = []
    try:
        for _ in range(runs):
            start = time.perf_counter()
            await source.poll()
            source.snapshot()
            times.append(time.perf_counter() - start)
    finally:
        await source.close()
    return times


async def event_latencies(layouts, runs: int) -> list[float]:
    """Seconds from `docker service create` returning to the new service being in the source's snapshot,
    through the event path (the consumer's 0.1 s debounce included); no reconcile poll can help."""
    source = DockerSwarmSource(lab_endpoints(), stats=False)
    await source.start()
    latencies = []
    try:
        while await source.wait_for_change(0.5):  # drain the connect notifications
            pass
        for i in range(runs):
            name = f"bench-evt-{i}"
            cli(layouts[0].docker_host, "service", "create", "-q", "--detach", "--name", name, "--replicas", "0",
                PROBE_IMAGE)
            start = time.monotonic()
            while time.monotonic() - start < 10:
                await source.wait_for_change(1.0)
                await source.poll()
                if any(s.name == name for s in source.snapshot().services):
                    break
            latencies.append(time.monotonic() - start)
            cli(layouts[0].docker_host, "service", "rm", name)
            while await source.wait_for_change(0.5):
                pass
    finally:
        await source.close()
    return latencies


async def scale_latencies(layouts, runs: int, settle: bool) -> list[float]:
    """Seconds from `docker service scale NAME=3` returning to the source's snapshot showing 3 tasks up, with
    a consumer that polls on `wait_for_change` only (no reconcile poll; 15 s is where the reconcile would catch
    it). `settle=False`: the same source with its follow-up polls switched off."""
    saved = swarm.SETTLE_FOR
    swarm.SETTLE_FOR = saved if settle else 0.0
    name = "bench-scale"
    cli(layouts[0].docker_host, "service", "create", "-q", "--name", name, "--replicas", "1", PROBE_IMAGE)
    source = DockerSwarmSource(lab_endpoints(), stats=False)
    await source.start()
    latencies = []

    def up() -> int:
        return sum(1 for t in source.snapshot().tasks if t.service_name == name and t.up)

    try:
        for _ in range(runs):
            cli(layouts[0].docker_host, "service", "scale", "--detach", f"{name}=3")
            start = time.monotonic()
            while up() < 3 and time.monotonic() - start < 15:
                if await source.wait_for_change(15 - (time.monotonic() - start)):
                    await source.poll()
            latencies.append(time.monotonic() - start)
            cli(layouts[0].docker_host, "service", "scale", f"{name}=1")
            while await source.wait_for_change(1.0):
                await source.poll()
    finally:
        swarm.SETTLE_FOR = saved
        await source.close()
        cli(layouts[0].docker_host, "service", "rm", name)
    return latencies


def cli_scale_latencies(layouts, runs: int) -> list[float]:
    """The baseline: `docker service ls` every 0.1 s until REPLICAS reads 3/3 after the same scale."""
    name, host = "bench-scale-cli", layouts[0].docker_host
    cli(host, "service", "create", "-q", "--name", name, "--replicas", "1", PROBE_IMAGE)
    latencies = []
    try:
        for _ in range(runs):
            cli(host, "service", "scale", "--detach", f"{name}=3")
            start = time.monotonic()
            while time.monotonic() - start < 15 and subprocess.run(
                    ["docker", "-H", host, "service", "ls", "--filter", f"name={name}", "--format",
                     "{{.Replicas}}"], capture_output=True, text=True).stdout.strip() != "3/3":
                time.sleep(0.1)
            latencies.append(time.monotonic() - start)
            cli(host, "service", "scale", f"{name}=1")
    finally:
        cli(host, "service", "rm", name)
    return latencies


def live_collection_worker(seconds: float) -> None:
    """Runs in a child process: live collection as the dashboard does it; prints stats ages as JSON."""
    async def run():
        source = DockerSwarmSource(lab_endpoints())
        await source.start()
        ages = []
        deadline = time.monotonic() + seconds
        next_reconcile = time.monotonic() + 15
        while time.monotonic() < deadline:
            if await source.wait_for_change(1.0) or time.monotonic() >= next_reconcile:
                await source.poll()
                next_reconcile = time.monotonic() + 15
            snap = source.snapshot()
            ages += [snap.taken_at - c.read_at for c in snap.containers if c.read_at]
        await source.close()
        print(json.dumps({"ages": ages, "containers": len(snap.containers)}))
    asyncio.run(run())


def cpu_of(procs: list[subprocess.Popen], seconds: float) -> float:
    """CPU seconds used by these processes (and their children) over `seconds` of wall time."""
    handles = [psutil.Process(p.pid) for p in procs]

    def total() -> float:
        used = 0.0
        for h in handles:
            try:
                for proc in [h, *h.children(recursive=True)]:
                    t = proc.cpu_times()
                    used += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return used

    time.sleep(3)  # let start-up pass: we measure steady-state collection
    before = total()
    time.sleep(seconds)
    return total() - before


def main(runs: int = 5, cpu_seconds: float = 60) -> dict:
    layouts = ensure_lab()
    containers = ensure_containers(layouts)
    print(f"lab: {len(layouts)} nodes, {containers} running containers; medians of {runs} runs")
    results: dict = {"containers": containers, "runs": runs}

    ours = median_of(overlaytui_snapshot, runs)
    cli_seq = median_of(lambda: cli_same_job(layouts, parallel_stats=False), runs)
    cli_par = median_of(lambda: cli_same_job(layouts, parallel_stats=True), runs)
    results["snapshot"] = {"overlaytui_s": ours, "cli_sequential_s": cli_seq, "cli_parallel_stats_s": cli_par}
    report("snapshot --json wall time", ours, {"docker CLI, one after another": cli_seq,
                                               "docker CLI, stats in parallel": cli_par})

    clients = [docker.APIClient(base_url=n.docker_host, version="auto", timeout=10) for n in layouts]
    topo_runs = max(runs, 20)
    raw = median_of(lambda: raw_topology_calls(clients, clients[0]), topo_runs)
    topo = statistics.median(asyncio.run(topology_refresh_times(topo_runs)))
    results["topology"] = {"overlaytui_s": topo, "raw_api_s": raw}
    report(f"topology refresh (median of {topo_runs})", topo, {"raw API calls": raw})

    latencies = asyncio.run(event_latencies(layouts, runs))
    results["event_to_snapshot_s"] = {"median": statistics.median(latencies), "max": max(latencies)}
    print(f"service created -> in the snapshot through events: median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s (reconcile poll: 15 s)")
    settled = asyncio.run(scale_latencies(layouts, runs, settle=True))
    unsettled = asyncio.run(scale_latencies(layouts, runs, settle=False))
    by_cli = cli_scale_latencies(layouts, runs)
    results["scale_to_snapshot_s"] = {
        "median": statistics.median(settled), "max": max(settled),
        "without_follow_up_polls_median": statistics.median(unsettled), "cli_service_ls_median":
        statistics.median(by_cli)}
    report("service scaled 1 -> 3 -> 3 running in the snapshot", statistics.median(settled), {
        "docker service ls every 0.1 s": statistics.median(by_cli),
        "the source without follow-up polls (15 s = left to the reconcile)": statistics.median(unsettled)})

    worker = subprocess.Popen([sys.executable, "-c", f"from bench.collectors import live_collection_worker as w; "
                               f"w({cpu_seconds + 6})"], stdout=subprocess.PIPE, text=True)
    ours_cpu = cpu_of([worker], cpu_seconds)
    ages = json.loads(worker.communicate(timeout=60)[0])["ages"]
    streams = [subprocess.Popen(["docker", "-H", n.docker_host, "stats"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for n in layouts]
    try:
        cli_cpu = cpu_of(streams, cpu_seconds)
    finally:
        for p in streams:
            p.terminate()
            p.wait(10)
    ages.sort()
    results["cpu"] = {
        "seconds": cpu_seconds,
        "overlaytui_core_pct": 100 * ours_cpu / cpu_seconds,
        "docker_stats_cli_core_pct": 100 * cli_cpu / cpu_seconds,
        "stats_age_p50_s": ages[len(ages) // 2],
        "stats_age_p99_s": ages[int(len(ages) * 0.99)],
        "stats_age_max_s": ages[-1],
    }
    print(f"live collection CPU over {cpu_seconds:g} s: overlaytui {results['cpu']['overlaytui_core_pct']:.2f} % "
          f"of a core vs docker stats CLI {results['cpu']['docker_stats_cli_core_pct']:.2f} % "
          f"(ratio {ours_cpu / cli_cpu:.2f})")
    print(f"age of stats shown (snapshot every 1 s): p50 {results['cpu']['stats_age_p50_s']:.2f} s, "
          f"p99 {results['cpu']['stats_age_p99_s']:.2f} s, max {results['cpu']['stats_age_max_s']:.2f} s")
    return results
