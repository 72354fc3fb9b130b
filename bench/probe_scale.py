"""The lab at scale and what a probing round costs as the cluster grows (issue 26).

    .venv/bin/python -m bench.probe_scale --nodes 3 9 24 [--rounds 2] [--kinds ping mtu]
    .venv/bin/python -m bench.probe_scale --model     # the fit of the saved sizes, extrapolated to 200 nodes

For each size, holding /tmp/overlaytui-lab.lock only for that size (other sessions use the lab): the lab is taken
down, brought up with N nodes (timed, by phase), the per-node cost read (RSS of each node's dockerd and
containerd; MemAvailable before and after), one overlay created and probe agents deployed (timed), then rounds of
real probes measured one kind at a time — wall time, CPU of the agents (their containers' cpuacct cgroups
/otlab-nodeN), of the engines (every dockerd, containerd, shim and runc, moved into one cpuacct cgroup for the
bench), of overlaytui (this process: the session and its docker clients), and the packets on the underlay (the
lab's host-side veths, /sys/class/net/otlab-nN/statistics). Everything is taken down before the lock is released.
Each size is written to bench/results/probe_scale-N.json; `--model` fits them.

The 3-node figures of the same run are the baseline each larger size is a ratio of.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import re
import statistics
import subprocess
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from overlaytui.lab import lab
from overlaytui.lab.layout import available_memory_mb, data_dir, run_dir
from overlaytui.probes.agent import LAB_IMAGE
from overlaytui.probes.plan import DEFAULT_ROUND_PAIRS

LOCK = "/tmp/overlaytui-lab.lock"
NETWORK = "bench-scale"
CPUACCT = Path("/sys/fs/cgroup/cpuacct")
ENGINE_CGROUP = CPUACCT / "otlab-bench-engines"
RESULTS = Path(__file__).parent / "results"
_NODE_DIR = re.compile(rb"/overlaytui-lab/node(\d+)/")


class LockBusy(Exception):
    """The lab stayed in use by others for longer than the bench was allowed to wait."""


@contextmanager
def lab_lock(wait: float | None = None):
    """The lab's lock, waited for without bound, or up to `wait` seconds (LockBusy after)."""
    with open(LOCK, "a") as fh:
        if wait is None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LockBusy(f"the lab was in use for more than {wait:g} s") from None
                    time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------- readings


def engine_processes() -> list[tuple[int, int, str]]:
    """(pid, node index, program) of every dockerd, containerd and shim of the lab (their command lines name the
    lab's directories)."""
    markers = (str(run_dir()).encode(), str(data_dir()).encode())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if not any(m in cmdline for m in markers):
            continue
        match = _NODE_DIR.search(cmdline)
        program = os.path.basename(cmdline.split(b"\0", 1)[0]).decode(errors="replace")
        if match and program in ("dockerd", "containerd") or program.startswith("containerd-shim"):
            found.append((int(entry), int(match.group(1)) if match else 0, program))
    return found


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def per_node_rss() -> dict[str, dict[str, float]]:
    """program -> per-node RSS in MB: median, max, sum (dockerd and containerd; shims summed per node)."""
    by: dict[str, dict[int, int]] = {}
    for pid, index, program in engine_processes():
        kind = "shim" if program.startswith("containerd-shim") else program
        by.setdefault(kind, {}).setdefault(index, 0)
        by[kind][index] += rss_kb(pid)
    return {kind: {"median_mb": statistics.median(v.values()) / 1024, "max_mb": max(v.values()) / 1024,
                   "sum_mb": sum(v.values()) / 1024, "nodes": len(v)} for kind, v in by.items()}


def adopt_engines() -> None:
    """Move the engines (and so everything they start later: shims, runc) into the bench's cpuacct cgroup."""
    ENGINE_CGROUP.mkdir(exist_ok=True)
    for pid, _index, _program in engine_processes():
        try:
            (ENGINE_CGROUP / "cgroup.procs").write_text(str(pid))
        except OSError:
            pass  # exited meanwhile


def release_engines() -> None:
    """After `lab down`: the cgroup is empty; remove it (whatever is left is moved back to the root first)."""
    if not ENGINE_CGROUP.exists():
        return
    for pid in (ENGINE_CGROUP / "cgroup.procs").read_text().split():
        try:
            (CPUACCT / "cgroup.procs").write_text(pid)
        except OSError:
            pass
    try:
        ENGINE_CGROUP.rmdir()
    except OSError:
        pass


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far: the agents (every lab container), the engines, and this process."""
    agents = 0
    for node_cgroup in CPUACCT.glob("otlab-node*"):
        try:
            agents += int((node_cgroup / "cpuacct.usage").read_text())
        except (OSError, ValueError):
            pass
    engines = int((ENGINE_CGROUP / "cpuacct.usage").read_text()) if ENGINE_CGROUP.exists() else 0
    return {"agents": agents / 1e9, "engines": engines / 1e9, "overlaytui": time.process_time()}


def underlay_packets() -> dict[str, int]:
    """Packets and bytes the nodes sent onto the lab bridge (rx of the host ends of their veths)."""
    packets = octets = 0
    for iface in Path("/sys/class/net").glob("otlab-n*"):
        try:
            packets += int((iface / "statistics" / "rx_packets").read_text())
            octets += int((iface / "statistics" / "rx_bytes").read_text())
        except (OSError, ValueError):
            pass
    return {"packets": packets, "bytes": octets}


# --------------------------------------------------------------------------------------------- rounds


async def probe_rounds(nodes: int, rounds: int, kinds: list[str], plan: bool = False) -> dict:
    """`rounds` full-mesh rounds of each kind (the plan's budget off), then with `plan` one cycle of the default
    plan of each kind (as many rounds as measure every pair once), each round measured."""
    from overlaytui.lab.lab import endpoints
    from overlaytui.probes.session import ProbeSession, ProbeSettings
    from overlaytui.sources.swarm import DockerSwarmSource

    source = DockerSwarmSource(endpoints(), stats=False, events=False)
    await source.start()
    settings = ProbeSettings(networks=(NETWORK,), image=LAB_IMAGE, kinds=tuple(kinds), round_pairs=0)
    session = ProbeSession(source.snapshot, settings)
    out: dict = {"rounds": {}}
    try:
        started = time.monotonic()
        await session.start()
        out["deploy_s"] = time.monotonic() - started
        adopt_engines()  # the agents' shims were started meanwhile
        await source.poll()
        runs = [(kind, kind, 0) for kind in kinds]
        if plan:
            runs += [(f"{kind}-plan", kind, DEFAULT_ROUND_PAIRS) for kind in kinds]
        for label, kind, budget in runs:
            session.settings = replace(settings, kinds=(kind,), round_pairs=budget)
            session._plan_now = None  # each run starts its rotation at the first node
            measured = []
            cycle = rounds
            while len(measured) < cycle:
                before, packets, wall = cpu_seconds(), underlay_packets(), time.monotonic()
                results = await session.run_round()
                wall = time.monotonic() - wall
                if budget:
                    cycle = session.every
                after, packets_after = cpu_seconds(), underlay_packets()
                errors = [r for r in results if r.error]
                measured.append({
                    "wall_s": wall, "pairs": len(results), "errors": len(errors),
                    "first_error": errors[0].error if errors else "",
                    "cpu_s": {k: after[k] - before[k] for k in before},
                    "packets": packets_after["packets"] - packets["packets"],
                    "bytes": packets_after["bytes"] - packets["bytes"],
                    "every": session.every, "sources": len({r.src_node for r in results}),
                    # pings sent and answered: a saturated lab cuts sweeps short at ping's own deadline
                    "ping_sent": sum(r.sent or 0 for r in results if r.kind == "ping"),
                    "ping_received": sum(r.received or 0 for r in results if r.kind == "ping"),
                })
                m = measured[-1]
                print(f"  {nodes} nodes, {label} round ({m['sources']} sources, every {m['every']}): {wall:.1f} s, "
                      f"{m['pairs']} pairs ({m['errors']} errors), "
                      f"cpu agents {m['cpu_s']['agents']:.1f} s engines {m['cpu_s']['engines']:.1f} s "
                      f"overlaytui {m['cpu_s']['overlaytui']:.1f} s, {m['packets'] / wall:.0f} pkt/s", flush=True)
            if budget:  # after a cycle, every pair has a measurement in the plan's window
                [cov] = session.coverage(NETWORK)
                out.setdefault("plan_coverage", {})[kind] = {"expected": cov.expected, "measured": cov.measured,
                                                             "every": cov.every, "complete": cov.complete}
                print(f"  {nodes} nodes, {kind} plan: {cov.summary()}", flush=True)
            out["rounds"][label] = measured
    finally:
        await session.close()
        await source.close()
    return out


def median_round(measured: list[dict]) -> dict:
    """The median of each figure over a kind's rounds."""
    med = {key: statistics.median(m[key] for m in measured) for key in ("wall_s", "pairs", "errors", "packets",
                                                                          "bytes")}
    med["cpu_s"] = {k: statistics.median(m["cpu_s"][k] for m in measured) for k in measured[0]["cpu_s"]}
    med["pps"] = statistics.median(m["packets"] / m["wall_s"] for m in measured)
    med["max_wall_s"] = max(m["wall_s"] for m in measured)
    med["cpu_pct"] = {k: 100 * v / med["wall_s"] for k, v in med["cpu_s"].items()}
    return med


# ----------------------------------------------------------------------------------------------- size


def one_size(nodes: int, rounds: int, kinds: list[str], plan: bool = False, lock_wait: float | None = None) -> dict:
    phases: list[tuple[float, str]] = []
    with lab_lock(lock_wait):
        try:
            lab.down(log=lambda _m: None)
            release_engines()
            mem_before = available_memory_mb()
            start = time.monotonic()
            lab.up(nodes, 1, log=lambda m: phases.append((time.monotonic() - start, m)))
            up_s = time.monotonic() - start
            time.sleep(5)  # let the engines settle before reading their memory
            rss_idle = per_node_rss()
            mem_up = available_memory_mb()
            adopt_engines()
            host = lab.node(1).docker_host
            subprocess.run(["docker", "-H", host, "network", "create", "-d", "overlay", NETWORK],
                           capture_output=True, check=True, timeout=60)
            probing = asyncio.run(probe_rounds(nodes, rounds, kinds, plan))
            rss_agents = per_node_rss()
            mem_agents = available_memory_mb()
        finally:
            lab.down(log=lambda _m: None)
            release_engines()
    result = {
        "nodes": nodes, "up_s": up_s, "up_phases": [{"at_s": round(at, 2), "log": m} for at, m in phases],
        "rss_idle": rss_idle, "rss_with_agents": rss_agents,
        "mem_available_mb": {"before": mem_before, "lab_up": mem_up, "agents": mem_agents},
        "per_node_mb": ((mem_before - mem_agents) / nodes) if mem_before and mem_agents else None,
        "deploy_s": probing["deploy_s"], "rounds": probing["rounds"], "plan_coverage": probing.get("plan_coverage"),
        "median": {kind: median_round(m) for kind, m in probing["rounds"].items()},
        "when": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
    }
    print(f"{nodes} nodes: up {up_s:.1f} s, per node {result['per_node_mb'] or 0:.0f} MB "
          f"(dockerd {rss_idle['dockerd']['median_mb']:.0f} MB, containerd {rss_idle['containerd']['median_mb']:.0f} "
          f"MB idle), agents deployed in {probing['deploy_s']:.1f} s", flush=True)
    return result


# ---------------------------------------------------------------------------------------------- model


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = a + b x; returns (a, b)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - b * mx, b


def model(results: list[dict], target: int = 200) -> dict:
    """Per kind, each cost against the quantity it should scale with — ping packets and ping/MTU work with the
    directed pairs N(N-1), wall time with the pairs too (rounds run at a fixed concurrency) — fitted linearly
    and extrapolated to `target` nodes. Returns the coefficients, each size's fitted value and the prediction."""
    out: dict = {}
    kinds = sorted({k for r in results for k in r["median"] if not k.endswith("-plan")})  # the full mesh's
    for kind in kinds:
        # sizes where the kind failed (the 36-node MTU round: job bounds) measure the failure, not the cost
        rows = [(r["nodes"], r["median"][kind]) for r in results
                if kind in r["median"] and not r["median"][kind]["errors"]]
        if len(rows) < 2:
            continue  # nothing to fit
        out[kind] = {}
        for name, value in (("wall_s", lambda m: m["wall_s"]), ("packets", lambda m: m["packets"]),
                            ("cpu_agents_s", lambda m: m["cpu_s"]["agents"]),
                            ("cpu_engines_s", lambda m: m["cpu_s"]["engines"]),
                            ("cpu_overlaytui_s", lambda m: m["cpu_s"]["overlaytui"])):
            points = [(n * (n - 1), value(m)) for n, m in rows]
            a, b = fit(points)
            mean = sum(y for _, y in points) / len(points)
            total = sum((y - mean) ** 2 for _, y in points)
            r2 = 1 - sum((y - a - b * x) ** 2 for x, y in points) / total if total else 1.0
            out[kind][name] = {"a": a, "b_per_pair": b, "r2": r2, "points": {str(n): value(m) for n, m in rows},
                               "fitted": {str(n): a + b * n * (n - 1) for n, _ in rows},
                               f"at_{target}": a + b * target * (target - 1)}
    return out


def main(runs: int = 2, sizes=(3, 9, 24), kinds=("ping", "mtu"), plan_from: int = 25,
         lock_wait: float | None = None) -> dict:
    """Each size's full-mesh rounds; sizes from `plan_from` nodes also one cycle of the default plan."""
    RESULTS.mkdir(exist_ok=True)
    results = []
    for nodes in sizes:
        print(f"== {nodes} nodes", flush=True)
        result = one_size(nodes, runs, list(kinds), plan=nodes >= plan_from, lock_wait=lock_wait)
        suffix = "" if tuple(kinds) == ("ping", "mtu") else "-" + "-".join(kinds)  # --model reads the full runs
        (RESULTS / f"probe_scale-{nodes}{suffix}.json").write_text(json.dumps(result, indent=1) + "\n")
        results.append(result)
    return {"sizes": results, "model": model(results)}


FIT_SIZES = (3, 9, 24)  # the model's sizes: 36 nodes saturated the 2-core lab (docs/benchmarks.md)


def saved(sizes=FIT_SIZES) -> list[dict]:
    found = (json.loads(p.read_text()) for p in RESULTS.glob("probe_scale-*.json") if p.stem.count("-") == 1)
    return sorted((r for r in found if r["nodes"] in sizes), key=lambda r: r["nodes"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.probe_scale")
    parser.add_argument("--nodes", type=int, nargs="*", default=[3, 9, 24])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kinds", nargs="*", default=["ping", "mtu"])
    parser.add_argument("--model", action="store_true", help="only fit the saved sizes")
    parser.add_argument("--plan-from", type=int, default=25, help="sizes from here also run the default plan")
    parser.add_argument("--lock-wait", type=float, help="give up after waiting this many seconds for the lab")
    parser.add_argument("--fit", type=int, nargs="*", default=list(FIT_SIZES), help="the saved sizes --model fits")
    args = parser.parse_args()
    if not args.model:
        try:
            main(args.rounds, args.nodes, args.kinds, args.plan_from, args.lock_wait)
        except LockBusy as exc:
            raise SystemExit(f"bench.probe_scale: {exc}") from None
    print(json.dumps(model(saved(args.fit)), indent=1))
