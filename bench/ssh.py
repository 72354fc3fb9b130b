"""One ssh endpoint (--ssh-nodes) vs every engine's socket, on the lab with an sshd in every node (root): the same
cluster, the same 30 containers, measured the same way in the same process.

    .venv/bin/python -m bench ssh [--cpu-seconds 60]

- start -> the first snapshot with every node's stats: a new source, started, until every container of the
  benchmark's service has a rate (two stats samples), median of --runs;
- CPU of live collection (a poll and a snapshot every second, stats streams for every container) over
  --cpu-seconds: this process plus the ssh processes it uses (the mux clients it starts and the per-node masters,
  which ssh detaches), in % of one core.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time

import psutil

from overlaytui.lab import sshd
from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.lab.layout import PROBE_IMAGE
from overlaytui.sources import ssh
from overlaytui.sources.endpoints import EndpointSpec
from overlaytui.sources.swarm import DockerSwarmSource

from .common import ensure_lab

SERVICE, NETWORK, REPLICAS = "bench-ssh", "bench-ssh-net", 30


def _ssh_processes() -> list[psutil.Process]:
    marker = str(ssh.prepare() or "/nonexistent")
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if process.info["name"] == "ssh" and marker in cmdline:
            found.append(process)
    return found


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    times = {}
    for process in processes:
        try:
            t = process.cpu_times()
            times[process.pid] = t.user + t.system
        except psutil.Error:
            continue
    return times


async def _first_full_snapshot(endpoints, **options) -> tuple[float, DockerSwarmSource]:
    start = time.perf_counter()
    source = DockerSwarmSource(endpoints, call_timeout=10, **options)
    await source.start()
    while True:
        snap = source.snapshot()
        ours = [c for c in snap.containers if c.service_name == SERVICE]
        if len(ours) >= REPLICAS and all(c.rx_rate is not None for c in ours) and len(
                {c.node_id for c in ours}) == len(snap.nodes):
            return time.perf_counter() - start, source
        await asyncio.sleep(0.05)
        if time.perf_counter() - start > 120:
            raise SystemExit("bench: no full snapshot within 120 s")


async def _measure(endpoints, runs: int, cpu_seconds: float, **options) -> dict:
    firsts = []
    for _ in range(runs):
        seconds, source = await _first_full_snapshot(endpoints, **options)
        firsts.append(seconds)
        await source.close()
    _seconds, source = await _first_full_snapshot(endpoints, **options)
    me = psutil.Process()
    before = _cpu([me, *_ssh_processes()])
    start = time.monotonic()
    while time.monotonic() - start < cpu_seconds:
        await source.wait_for_change(1.0)
        await source.poll()
        source.snapshot()
    wall = time.monotonic() - start
    after = _cpu([me, *_ssh_processes()])
    used = sum(after[pid] - before.get(pid, 0.0) for pid in after)
    logins = len([p for p in _ssh_processes() if "[mux]" in " ".join(p.cmdline())])
    await source.close()
    return {"first_full_snapshot_s": statistics.median(firsts), "cpu_pct": 100 * used / wall,
            "ssh_masters": logins}


def main(runs: int = 5, cpu_seconds: float = 60) -> dict:
    layouts = ensure_lab()
    sshd.enable(layouts)
    os.environ["OVERLAYTUI_SSH_CONFIG"] = str(sshd.client_config())
    docker = ["docker", "-H", layouts[0].docker_host]
    subprocess.run([*docker, "network", "create", "-d", "overlay", NETWORK], capture_output=True, check=False)
    subprocess.run([*docker, "service", "create", "-q", "--name", SERVICE, "--replicas", str(REPLICAS),
                    "--network", NETWORK, PROBE_IMAGE], capture_output=True, check=True, timeout=180)
    try:
        sockets = asyncio.run(_measure(lab_endpoints(), runs, cpu_seconds))
        over_ssh = asyncio.run(_measure([EndpointSpec(sshd.node_url(layouts[0]), "--host")], runs, cpu_seconds,
                                        ssh_nodes=True))
    finally:
        subprocess.run([*docker, "service", "rm", SERVICE], capture_output=True, check=False)
        time.sleep(5)
        subprocess.run([*docker, "network", "rm", NETWORK], capture_output=True, check=False)
    print(f"start -> first snapshot with every node's stats ({REPLICAS} containers on {len(layouts)} nodes): "
          f"--ssh-nodes {over_ssh['first_full_snapshot_s']:.2f} s vs sockets {sockets['first_full_snapshot_s']:.2f} s "
          f"(ratio {over_ssh['first_full_snapshot_s'] / sockets['first_full_snapshot_s']:.1f})")
    print(f"CPU of live collection over {cpu_seconds:g} s: --ssh-nodes {over_ssh['cpu_pct']:.1f} % of a core "
          f"(with its ssh processes; {over_ssh['ssh_masters']} ssh masters) vs sockets {sockets['cpu_pct']:.1f} % "
          f"(ratio {over_ssh['cpu_pct'] / sockets['cpu_pct']:.1f})")
    return {"sockets": sockets, "ssh": over_ssh, "containers": REPLICAS, "nodes": len(layouts)}
