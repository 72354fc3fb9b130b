"""The deep view's reader on the lab (`--deep`, issue 24): what one round costs against what the container alone
costs.

    .venv/bin/python -m bench deep_reader

On the 3-node lab, with a global service on one overlay (each node has its sandbox and the ingress'), interleaved,
medians over runs:

- the reader's round (`DeepReader.read_nodes`: per node, a container created with the reader's options, started,
  waited for, its output copied out, removed — the three nodes concurrently);
- the baseline: the same lifecycle per node, concurrently, with the same image and options but a script that reads
  nothing (`true`): what any one-container-per-node-and-round design pays before reading anything;
- the source's poll of the same engines (what every frame's collection costs), for scale.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from overlaytui.lab import engines
from overlaytui.lab.image import DEEP_IMAGE
from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.lab.layout import LAB_LABEL, PROBE_IMAGE
from overlaytui.sources.deep import DeepReader
from overlaytui.sources.swarm import DockerSwarmSource

from .common import ensure_lab

NET, SERVICE = "benchdeep", "benchdeep-web"


def _docker(layout, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "-H", layout.docker_host, *args], capture_output=True, text=True, timeout=120)


def _setup(layouts) -> None:
    _docker(layouts[0], "network", "create", "-d", "overlay", "--label", LAB_LABEL, NET)
    _docker(layouts[0], "service", "create", "-d", "--name", SERVICE, "--mode", "global", "--network", NET,
            "--label", LAB_LABEL, PROBE_IMAGE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        states = _docker(layouts[0], "service", "ps", SERVICE, "--format", "{{.CurrentState}}").stdout
        if states.count("Running") >= len(layouts):
            return
        time.sleep(0.5)
    raise SystemExit("bench: the service did not start")


def _teardown(layouts) -> None:
    _docker(layouts[0], "service", "rm", SERVICE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _docker(layouts[0], "network", "rm", NET).returncode != 0:
        time.sleep(1)


def _snapshot():
    async def once():
        source = DockerSwarmSource(lab_endpoints(), events=False, stats=False)
        try:
            await source.start()
            started = time.perf_counter()
            await source.poll()
            took = time.perf_counter() - started
            return source.snapshot(), took
        finally:
            await source.close()
    return asyncio.run(once())


def _bare_round(reader: DeepReader, layouts) -> None:
    """Per node, concurrently: the reader's container lifecycle with a script that reads nothing."""
    def one(layout) -> None:
        with engines.client(layout) as api:
            directory = str(layout.exec_root / "netns")
            container = reader._create(api, directory, (), "", time.time(), ["/bin/sh", "-c", "true"])
            try:
                api.start(container)
                api.wait(container, timeout=60)
                reader_archive(api, container)
            finally:
                api.remove_container(container, force=True)
    with ThreadPoolExecutor(max_workers=len(layouts)) as pool:
        list(pool.map(one, layouts))


def reader_archive(api, container) -> None:
    stream, _stat = api.get_archive(container, "/etc/passwd")  # a small file: the copy's round trip
    for _chunk in stream:
        pass


def main(runs: int = 5) -> dict:
    layouts = ensure_lab(3)
    _setup(layouts)
    try:
        reader = DeepReader(image=DEEP_IMAGE)
        snapshot, _poll = _snapshot()
        reader.read_nodes(snapshot)  # warm: the netns directories found once, the image's pages cached
        rounds, bare, polls, sections = [], [], [], []
        for _ in range(max(runs, 7)):
            started = time.perf_counter()
            raw = reader.read_nodes(snapshot)
            rounds.append(time.perf_counter() - started)
            sections.append(sum(len(r) for r in raw.values()))
            started = time.perf_counter()
            _bare_round(reader, layouts)
            bare.append(time.perf_counter() - started)
            polls.append(_snapshot()[1])
    finally:
        _teardown(layouts)
    result = {
        "nodes": len(layouts), "runs": len(rounds),
        "deep_round_s": statistics.median(rounds), "deep_round_min_s": min(rounds),
        "bare_container_round_s": statistics.median(bare), "bare_container_round_min_s": min(bare),
        "source_poll_s": statistics.median(polls),
        "ratio_round_to_bare": statistics.median(rounds) / statistics.median(bare),
        "sections_per_round": statistics.median(sections),
    }
    print(f"deep round on {len(layouts)} nodes: {result['deep_round_s']:.3f} s (min {min(rounds):.3f}) vs the bare "
          f"container lifecycle {result['bare_container_round_s']:.3f} s (min {min(bare):.3f}): ratio "
          f"{result['ratio_round_to_bare']:.2f}; the source's poll {result['source_poll_s']:.3f} s; "
          f"{result['sections_per_round']:.0f} sections a round")
    return result
