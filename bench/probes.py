"""Probe benchmarks.

    .venv/bin/python -m bench probes [--runs 3]

1. The full pair matrix of a 3-node lab with the default settings (ping 100 x 0.2 s and path MTU, default
   concurrency), agent deployment included: seconds until every pair has both results; median of runs.
2. The schedule of a 50-node cluster (the demo's shape: three overlays) at the default concurrency: the real
   ProbeScheduler runs one job per (source node, overlay, kind), each lasting what that job took on the lab
   (ping sweep, MTU sweep on a healthy path); the clock is scaled down 60 x so it runs in seconds.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time

from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.model import ProbeResult
from overlaytui.probes.agent import LAB_IMAGE
from overlaytui.probes.scheduler import DEFAULT_CONCURRENCY, ProbeJob, ProbeScheduler
from overlaytui.probes.session import ProbeSession, ProbeSettings
from overlaytui.sources.demo import DemoSource
from overlaytui.sources.swarm import DockerSwarmSource

from .common import ensure_lab

NETWORK = "bench-probe"
SCALE = 60.0


async def lab_matrix() -> dict:
    source = DockerSwarmSource(lab_endpoints(), stats=False, events=False)
    await source.start()
    settings = ProbeSettings(networks=(NETWORK,), image=LAB_IMAGE)
    session = ProbeSession(source.snapshot, settings)
    durations: dict[str, list[float]] = {"ping": [], "mtu": []}
    start = time.monotonic()
    try:
        await session.start()
        deployed = time.monotonic() - start
        await source.poll()
        round_start = time.monotonic()
        seen: dict[str, float] = {}

        def on_result(result: ProbeResult) -> None:
            seen.setdefault(f"{result.kind}:{result.src_node}", time.monotonic() - round_start)

        results = await session.run_round(on_result)
        total = time.monotonic() - start
        for key, seconds in seen.items():
            durations[key.split(":")[0]].append(seconds)
        assert len([r for r in results if not r.error]) == 12, results  # 6 pairs x (ping, mtu)
    finally:
        await session.close()
        await source.close()
    return {"total_s": total, "deploy_s": deployed, "ping_job_s": max(durations["ping"]),
            "mtu_job_s": max(durations["mtu"])}


async def schedule_50_nodes(ping_s: float, mtu_s: float) -> tuple[float, int]:
    now = [1_800_000_000.0]
    demo = DemoSource("healthy", scale=(50, 8, 0), clock=lambda: now[0])
    await demo.start()
    snapshot = demo.snapshot()
    hosts = [n.hostname for n in snapshot.nodes]
    overlays = [n.name for n in snapshot.networks if n.driver == "overlay" and not n.ingress]

    def job(kind: str, network: str, src: str, seconds: float) -> ProbeJob:
        pairs = tuple((src, dst) for dst in hosts if dst != src)

        async def run():
            await asyncio.sleep(seconds / SCALE)
            return [ProbeResult(kind, network, s, d, 0.0) for s, d in pairs]
        return ProbeJob(kind, network, run, pairs)

    jobs = [job(kind, net, src, seconds) for net in overlays for src in hosts
            for kind, seconds in (("ping", ping_s), ("mtu", mtu_s))]
    covered: set = set()
    scheduler = ProbeScheduler(concurrency=DEFAULT_CONCURRENCY, jitter=0.5 / SCALE)
    start = time.monotonic()
    await scheduler.run(jobs, lambda r: covered.add((r.kind, r.network, r.src_node, r.dst_node)))
    elapsed = (time.monotonic() - start) * SCALE
    assert len(covered) == 2 * len(overlays) * len(hosts) * (len(hosts) - 1)
    return elapsed, len(covered) // 2


def main(runs: int = 3) -> dict:
    layouts = ensure_lab()
    subprocess.run(["docker", "-H", layouts[0].docker_host, "network", "create", "-d", "overlay", NETWORK],
                   capture_output=True)
    try:
        measured = [asyncio.run(lab_matrix()) for _ in range(max(1, runs))]
    finally:
        subprocess.run(["docker", "-H", layouts[0].docker_host, "network", "rm", NETWORK], capture_output=True)
    med = {key: statistics.median(m[key] for m in measured) for key in measured[0]}
    print(f"3-node lab, full pair matrix (ping 100 x 0.2 s + path MTU), agents deployed on the way: "
          f"median {med['total_s']:.1f} s over {len(measured)} runs (deploying {med['deploy_s']:.1f} s, "
          f"ping sweep {med['ping_job_s']:.1f} s, MTU sweep {med['mtu_job_s']:.1f} s)")
    makespan, pairs = asyncio.run(schedule_50_nodes(med["ping_job_s"], med["mtu_job_s"]))
    print(f"50-node cluster, 3 overlays ({pairs} directed pairs per kind) at concurrency {DEFAULT_CONCURRENCY}: "
          f"every pair covered after {makespan / 60:.1f} min (target 5 min)")
    return {"lab": med, "runs": len(measured), "schedule_50_nodes_s": makespan, "pairs": pairs,
            "concurrency": DEFAULT_CONCURRENCY}
