"""Start-up: `overlaytui --version` and `--help` wall time, this tree against a baseline revision extracted from git
in the same run (default: the last revision that imported every command at start), with `python -X importtime`
evidence (what each imports: the heavy modules, the top cumulative ones); with a lab (root) also `snapshot --json`
against the docker CLI doing the same job (bench/collectors.py's two) and against the same command at a baseline
revision (SNAPSHOT_BASELINE: before the stats streams started within the first poll), interleaved run by run, with
each run's phases (bench/snapshot_phases.py: interpreter, command line, source start, first stats streams, first
poll of every engine, producer loaded, two samples of every container, printed) and every container's CPU % checked.

    .venv/bin/python -m bench startup [--runs 21]
    .venv/bin/python -m bench.startup --runs 21 --baseline REV [--no-lab]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "670e55b"  # before the lazy command line: cli.py imported every command module
IDLE = 1.5  # seconds before each snapshot-vs-CLI run: the engines' stats collectors idle (they tick once a second)
SNAPSHOT_BASELINE = "93f4ae7"  # before the stats streams started within the first poll and the snapshot's early start
HEAVY = ("docker", "paramiko", "textual", "prometheus_client", "requests", "overlaytui.model", "overlaytui.producer")


def extract(rev: str, into: Path) -> Path:
    """The package as it was at `rev`, in `into` (to run with that directory first on the path)."""
    archive = subprocess.run(["git", "archive", rev, "overlaytui"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def environment(tree: Path | None = None) -> dict[str, str]:
    """Bytecode cached as an installed package has it (pip compiles at install; PYTHONDONTWRITEBYTECODE, set
    in some shells, would time the compiler instead), in a directory of its own: the tree is left as it is."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir()) / "overlaytui-bench-pycache"), COLUMNS="120")
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def wall(tree: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "overlaytui.cli", *args], cwd=tree, capture_output=True, check=True,
                   env=environment(tree))
    return time.perf_counter() - start


def floor() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=environment())
    return time.perf_counter() - start


def importtime(tree: Path, args: list[str]) -> dict:
    """What `python -X importtime -m overlaytui.cli ARGS` imports: the count, the heavy ones, the top 8 by
    cumulative microseconds (one run: the order matters more than the numbers on a shared machine)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "overlaytui.cli", *args], cwd=tree,
                         capture_output=True, text=True, env=environment(tree))
    rows = []
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit():
                rows.append((int(cumulative), name[1:]))  # the name, indented by its depth
    names = {name.strip() for _, name in rows}
    top_level = sorted((us, name) for us, name in rows if not name.startswith(" "))[::-1]
    return {"modules": len(names), "heavy": sorted({n.split(".")[0] if not n.startswith("overlaytui") else n
                                                     for n in names if n.startswith(HEAVY)}),
            "top_cumulative_us": [[name, us] for us, name in top_level[:8]]}


def interleaved(fns: dict[str, object], runs: int) -> dict[str, list[float]]:
    """Each function once per round, in turn, `runs` rounds (load drifts on a shared machine: every one sees it),
    after one round untimed (it writes the bytecode cache)."""
    for fn in fns.values():
        fn()  # type: ignore[operator]
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            times[name].append(fn())  # type: ignore[operator]
    return times


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"median_s": round(statistics.median(ordered), 4), "min_s": round(ordered[0], 4),
            "max_s": round(ordered[-1], 4), "runs": len(ordered)}


def overlaytui_snapshot(tree: Path = ROOT, phases: dict[str, list[float]] | None = None) -> float:
    """collectors.py's `snapshot --lab --json` (as `python -m overlaytui` runs it, with its phases marked), with the
    bytecode cached as an installed package has it; its wall time. Every container must have its CPU % (two
    samples): a faster snapshot with fewer rates would not be the same job."""
    start = time.time()
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "snapshot_phases.py"), "snapshot", "--lab", "--json"],
                         check=True, capture_output=True, text=True, cwd=tree, env=environment(tree))
    seconds = time.time() - start
    containers = json.loads(run.stdout)["containers"]
    if not containers or any(c.get("cpu_pct") is None for c in containers):
        raise SystemExit(f"bench: a snapshot without every container's CPU % ({tree})")
    marks = next((json.loads(line[len("PHASES "):]) for line in run.stderr.splitlines()
                  if line.startswith("PHASES ")), {})
    if phases is not None:
        for name, at in marks.items():
            phases.setdefault(name, []).append(at - start)
        phases.setdefault("exit", []).append(seconds)
    return seconds


def snapshot_vs_cli(runs: int, baseline: str = SNAPSHOT_BASELINE) -> dict:
    """`snapshot --lab --json` against the docker CLI doing the same job (collectors.py) and against itself at
    `baseline`, interleaved; the median of each phase (seconds from the process's start)."""
    from . import collectors
    from .common import ensure_lab

    layouts = ensure_lab()
    containers = collectors.ensure_containers(layouts)

    def idle(fn):
        """After IDLE seconds (not timed): the engines' stats collectors have gone idle, so every command starts as
        a user's first does. Right after another's streams closed, a collector still ticks and the next command's
        streams land in its next tick at some phase: up to a second less, by luck of the order."""
        def run() -> float:
            time.sleep(IDLE)
            return fn()
        return run

    def timed(fn):
        def run() -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start
        return run

    phases: dict[str, dict[str, list[float]]] = {"now": {}, "baseline": {}}
    with tempfile.TemporaryDirectory(prefix="overlaytui-snapshot-") as tmp:
        old = extract(baseline, Path(tmp))
        times = interleaved({
            "overlaytui snapshot --json": idle(lambda: overlaytui_snapshot(ROOT, phases["now"])),
            f"overlaytui snapshot --json at {baseline}": idle(lambda: overlaytui_snapshot(old, phases["baseline"])),
            "docker CLI, one after another": idle(timed(
                lambda: collectors.cli_same_job(layouts, parallel_stats=False))),
            "docker CLI, stats in parallel": idle(timed(
                lambda: collectors.cli_same_job(layouts, parallel_stats=True))),
        }, runs)
    return {"containers": containers, "baseline_rev": baseline,
            **{name: summary(t) for name, t in times.items()},
            "phases_median_s": {label: {name: round(statistics.median(at[-runs:]), 3) for name, at in
                                        sorted(marks.items(), key=lambda item: statistics.median(item[1]))}
                                for label, marks in phases.items()}}


def main(runs: int = 21, baseline: str = BASELINE, lab: bool | None = None) -> dict:
    results: dict = {"baseline_rev": baseline, "note": "2 cores shared with other engineers' test runs: medians "
                     "of interleaved runs, the baseline measured in the same run"}
    with tempfile.TemporaryDirectory(prefix="overlaytui-startup-") as tmp:
        old = extract(baseline, Path(tmp))
        trees = {"now": ROOT, "baseline": old}
        for args in (["--version"], ["--help"]):
            fns = {f"python -c pass (beside {args[0]})": floor}
            fns.update({f"{label} {' '.join(args)}": (lambda t=tree, a=args: wall(t, a))
                        for label, tree in trees.items()})
            times = interleaved(fns, runs)
            for name, t in times.items():
                results[name] = summary(t)
                print(f"{name:28s} median {statistics.median(t):.3f} s  (min {min(t):.3f}, max {max(t):.3f}, "
                      f"{runs} runs)")
        for label, tree in trees.items():
            results[f"importtime {label} --version"] = found = importtime(tree, ["--version"])
            print(f"importtime {label} --version: {found['modules']} modules, heavy: {found['heavy'] or 'none'}; "
                  "top: " + ", ".join(f"{n} {us / 1000:.0f} ms" for n, us in found["top_cumulative_us"][:4]))
    if lab is None:
        lab = os.geteuid() == 0
    if lab:
        snap = snapshot_vs_cli(max(5, runs // 4))
        results["snapshot"] = snap
        for name, value in snap.items():
            if isinstance(value, dict) and "median_s" in value:
                print(f"{name:40s} median {value['median_s']:.3f} s  (min {value['min_s']:.3f}, "
                      f"max {value['max_s']:.3f}, {value['runs']} runs)")
        for label, marks in snap["phases_median_s"].items():
            print(f"phases, {label} (median s from the process's start): "
                  + ", ".join(f"{name} {at:.2f}" for name, at in marks.items()))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.startup")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--baseline", default=BASELINE, help=f"the revision to compare with (default {BASELINE})")
    parser.add_argument("--no-lab", dest="lab", action="store_false", default=None,
                        help="skip snapshot --json on the lab")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    options = parser.parse_args()
    result = main(options.runs, options.baseline, options.lab)
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=1) + "\n")
