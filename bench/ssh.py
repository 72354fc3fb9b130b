"""One ssh endpoint (--ssh-nodes) vs every engine's socket, on the lab with an sshd in every node (root): the same
cluster, the same 30 containers, measured the same way in the same process; over ssh twice: each node's Docker
socket forwarded over its one master (the default) and `docker system dial-stdio` per connection
(OVERLAYTUI_SSH_FORWARD=0, the baseline).

    .venv/bin/python -m bench ssh [--runs 5] [--cpu-seconds 60]

- phases, per node (median over nodes and runs, masters closed first): login (a master: `ssh -fN`), the
  forward's setup over it (the node's docker CLI names its socket, `-O forward`), one HTTP connection's ping
  through dial-stdio and through the forwarded socket;
- start -> the first poll of every node (each node's containers listed) and -> the first snapshot with every
  node's stats (every container of the benchmark's service has a rate: two stats samples), median of --runs,
  every run from cold (no ssh master left from the one before: a user's start); with the start's timeline
  (seconds from the start, median of the runs): the manager forwarded (its login, the socket's question, the
  forward), its stats streams opened, the nodes named, the last node forwarded, the last node's stats streams
  opened, the start's return (every engine's first poll), every container's two samples, and for the dashboard
  its first complete screen;
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


class Timeline:
    """Marks of one start (seconds since `begin`), put on the source's and ssh's functions while a bench runs."""

    def __init__(self) -> None:
        self.t0 = 0.0
        self.marks: dict[str, float] = {}
        self.runs: dict[str, dict[str, list[float]]] = {}
        self._installed = False

    def begin(self) -> None:
        self.t0, self.marks = time.perf_counter(), {}

    def mark(self, name: str, last: bool = False) -> None:
        """The first time (or with `last`, the latest time) `name` happened in this start."""
        if last or name not in self.marks:
            self.marks[name] = time.perf_counter() - self.t0

    def keep(self, label: str) -> None:
        for name, at in self.marks.items():
            self.runs.setdefault(label, {}).setdefault(name, []).append(at)

    def medians(self, label: str) -> dict[str, float]:
        marks = self.runs.get(label, {})
        return {name: round(statistics.median(at), 3)
                for name, at in sorted(marks.items(), key=lambda item: statistics.median(item[1]))}

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        forward, sync, follow = ssh._forward, DockerSwarmSource._sync_streams, DockerSwarmSource._add_nodes
        first = {}

        def forwarded(url, timeout):
            result = forward(url, timeout)
            self.mark("manager forwarded" if url == first.setdefault("url", url) else "last node forwarded",
                      last=True)
            return result

        def synced(source, state, containers):
            self.mark("manager's stats streams opened" if state.derived_for is None else
                      "last node's stats streams opened", last=state.streams is None)
            return sync(source, state, containers)

        def named(source, nodes, covered):
            self.mark("nodes named")
            return follow(source, nodes, covered)
        ssh._forward = forwarded
        DockerSwarmSource._sync_streams, DockerSwarmSource._add_nodes = synced, named
        self.first = first

    def reset(self) -> None:
        self.first.clear()


TIMELINE = Timeline()


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


def _close_masters(urls: list[str]) -> None:
    """No master left from an earlier run (each run starts as a user's does), no forward remembered."""
    wrapper = ssh.prepare() / "ssh"
    for url in urls:
        subprocess.run([str(wrapper), "-q", "-O", "exit", *ssh.ssh_args(url)], capture_output=True, timeout=10)
    ssh.forget()


async def _first_full_snapshot(endpoints, **options) -> tuple[float, float, DockerSwarmSource]:
    """(seconds to the first poll of every node, seconds to every container's rate, the source)."""
    start = time.perf_counter()
    TIMELINE.begin()
    first_poll = None
    source = DockerSwarmSource(endpoints, call_timeout=10, **options)
    await source.start()
    TIMELINE.mark("start returned (every engine's first poll)")
    while True:
        snap = source.snapshot()
        ours = [c for c in snap.containers if c.service_name == SERVICE]
        polled = len(ours) >= REPLICAS and len({c.node_id for c in ours}) == len(snap.nodes)
        if polled and first_poll is None:
            first_poll = time.perf_counter() - start
        if _complete(snap):
            TIMELINE.mark("every container's two samples")
            return first_poll, time.perf_counter() - start, source  # type: ignore[return-value]
        await asyncio.sleep(0.05)
        if time.perf_counter() - start > 120:
            raise SystemExit("bench: no full snapshot within 120 s")


def _complete(snap) -> bool:
    ours = [c for c in snap.containers if c.service_name == SERVICE]
    return len(ours) >= REPLICAS and all(c.rx_rate is not None for c in ours) and len(
        {c.node_id for c in ours}) == len(snap.nodes)


async def _first_complete_screen(endpoints, **options) -> float:
    """The dashboard (headless, 160x50) from its start to the first frame it shows with every node's engine and
    every container's rate."""
    from overlaytui.app import OverlayApp

    start = time.perf_counter()
    TIMELINE.begin()
    app = OverlayApp(DockerSwarmSource(endpoints, **options), source_label="bench", interval=1.0,
                     persist_config=False)
    async with app.run_test(size=(160, 50)) as pilot:
        while app.snapshot is None or not _complete(app.snapshot):
            if time.perf_counter() - start > 120:
                raise SystemExit("bench: no complete screen within 120 s")
            await pilot.pause(0.05)
        seconds = time.perf_counter() - start
        TIMELINE.mark("first complete screen")
        await pilot.press("q")
    return seconds


async def _screens(endpoints, runs: int, cold: list[str] | None = None, label: str = "",
                   **options) -> list[float]:
    times = []
    for _ in range(runs):
        if cold:
            _close_masters(cold)
        TIMELINE.reset()
        times.append(await _first_complete_screen(endpoints, **options))
        if label:
            TIMELINE.keep(label)
    return times


def _ping_dial_stdio(url: str) -> float:
    """One HTTP connection as docker-py's ssh transport makes it: `ssh HOST docker system dial-stdio` (over the
    master), a ping, its answer."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(ssh.prepare() / "ssh"), *ssh.ssh_args(url), "docker", "system", "dial-stdio"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.write(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    proc.stdin.flush()
    answer = proc.stdout.read(12)
    proc.kill()
    proc.wait()
    if not answer.startswith(b"HTTP/1."):
        raise SystemExit(f"bench: no ping through dial-stdio from {url}")
    return time.perf_counter() - start


def _phases(urls: list[str], runs: int) -> dict:
    """Per node, from cold: login, the forward's setup, one connection's ping each way (median of all)."""
    logins, setups, dials, channels = [], [], [], []
    for _ in range(runs):
        _close_masters(urls)
        for url in urls:
            start = time.perf_counter()
            subprocess.run([str(ssh.prepare() / "ssh"), "-f", "-N", *ssh.ssh_args(url)], check=True,
                           stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=30)
            logins.append(time.perf_counter() - start)
            start = time.perf_counter()
            local = ssh.engine_url(url)
            setups.append(time.perf_counter() - start)
            if not local.startswith("unix://"):
                raise SystemExit(f"bench: {url} was not forwarded")
            dials.append(_ping_dial_stdio(url))
            start = time.perf_counter()
            if not ssh._pings(local[len("unix://"):], 10):
                raise SystemExit(f"bench: no ping through {local}")
            channels.append(time.perf_counter() - start)
    return {"login_s": statistics.median(logins), "forward_setup_s": statistics.median(setups),
            "connection_dial_stdio_s": statistics.median(dials), "connection_forwarded_s": statistics.median(channels)}


async def _measure(endpoints, runs: int, cpu_seconds: float, cold: list[str] | None = None, label: str = "",
                   **options) -> dict:
    firsts, polls = [], []
    for _ in range(runs):
        if cold:
            _close_masters(cold)
        TIMELINE.reset()
        poll, seconds, source = await _first_full_snapshot(endpoints, **options)
        if label:
            TIMELINE.keep(label)
        firsts.append(seconds)
        polls.append(poll)
        await source.close()
    result = {"first_poll_s": statistics.median(polls), "first_full_snapshot_s": statistics.median(firsts),
              "first_full_snapshot_runs_s": [round(t, 3) for t in firsts]}
    if label:
        result["timeline_s"] = TIMELINE.medians(label)
    if not cpu_seconds:
        return result
    _poll, _seconds, source = await _first_full_snapshot(endpoints, **options)
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
    return {**result, "cpu_pct": 100 * used / wall, "ssh_masters": logins}


def main(runs: int = 5, cpu_seconds: float = 60) -> dict:
    layouts = ensure_lab()
    sshd.enable(layouts)
    os.environ["OVERLAYTUI_SSH_CONFIG"] = str(sshd.client_config())
    docker = ["docker", "-H", layouts[0].docker_host]
    subprocess.run([*docker, "network", "create", "-d", "overlay", NETWORK], capture_output=True, check=False)
    subprocess.run([*docker, "service", "create", "-q", "--name", SERVICE, "--replicas", str(REPLICAS),
                    "--network", NETWORK, PROBE_IMAGE], capture_output=True, check=True, timeout=180)
    urls = [sshd.node_url(layout) for layout in layouts]
    manager = [EndpointSpec(urls[0], "--host")]
    TIMELINE.install()
    try:
        phases = _phases(urls, runs)
        sockets = asyncio.run(_measure(lab_endpoints(), runs, cpu_seconds))
        over_ssh = asyncio.run(_measure(manager, runs, cpu_seconds, cold=urls, label="ssh", ssh_nodes=True))
        screens = {"sockets": asyncio.run(_screens(lab_endpoints(), runs)),
                   "ssh": asyncio.run(_screens(manager, runs, cold=urls, label="ssh screen", ssh_nodes=True))}
        os.environ["OVERLAYTUI_SSH_FORWARD"] = "0"
        try:
            dial_stdio = asyncio.run(_measure(manager, runs, cpu_seconds, cold=urls, ssh_nodes=True))
            screens["ssh_dial_stdio"] = asyncio.run(_screens(manager, runs, cold=urls, ssh_nodes=True))
        finally:
            os.environ.pop("OVERLAYTUI_SSH_FORWARD", None)
    finally:
        subprocess.run([*docker, "service", "rm", SERVICE], capture_output=True, check=False)
        time.sleep(5)
        subprocess.run([*docker, "network", "rm", NETWORK], capture_output=True, check=False)
    print(f"phases per node (median): login {phases['login_s']:.3f} s, forward setup {phases['forward_setup_s']:.3f}"
          f" s; one connection: dial-stdio {phases['connection_dial_stdio_s']:.3f} s, forwarded "
          f"{phases['connection_forwarded_s']:.4f} s")
    for name, measured in (("--ssh-nodes, forwarded", over_ssh), ("--ssh-nodes, dial-stdio", dial_stdio)):
        print(f"start -> first poll / first snapshot with every node's stats ({REPLICAS} containers on "
              f"{len(layouts)} nodes): {name} {measured['first_poll_s']:.2f} / {measured['first_full_snapshot_s']:.2f}"
              f" s vs sockets {sockets['first_poll_s']:.2f} / {sockets['first_full_snapshot_s']:.2f} s (ratio "
              f"{measured['first_full_snapshot_s'] / sockets['first_full_snapshot_s']:.1f})")
        if cpu_seconds:
            print(f"CPU of live collection over {cpu_seconds:g} s: {name} {measured['cpu_pct']:.1f} % of a core "
                  f"(with its ssh processes; {measured['ssh_masters']} ssh masters) vs sockets "
                  f"{sockets['cpu_pct']:.1f} % (ratio {measured['cpu_pct'] / sockets['cpu_pct']:.1f})")
    print("the start over ssh, forwarded (median s from the start): " + ", ".join(
        f"{name} {at:.2f}" for name, at in over_ssh.get("timeline_s", {}).items()))
    print("the dashboard's start over ssh, forwarded: " + ", ".join(
        f"{name} {at:.2f}" for name, at in TIMELINE.medians("ssh screen").items()))
    screen = {name: statistics.median(t) for name, t in screens.items()}
    print(f"dashboard start -> first complete screen (median of {runs}): --ssh-nodes forwarded {screen['ssh']:.2f} s,"
          f" dial-stdio {screen['ssh_dial_stdio']:.2f} s, sockets {screen['sockets']:.2f} s")
    return {"phases": phases, "sockets": sockets, "ssh": over_ssh, "ssh_dial_stdio": dial_stdio,
            "first_complete_screen_s": screen, "first_complete_screen_runs_s": screens,
            "first_complete_screen_timeline_s": TIMELINE.medians("ssh screen"),
            "containers": REPLICAS, "nodes": len(layouts), "runs": runs}
