"""`python -m bench [NAME ...]`: run benchmarks (default: all) and write bench/results/NAME.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from . import (
    collectors,
    dashboard,
    deep,
    deep_reader,
    exporter,
    frame,
    loss,
    probe_scale,
    probes,
    record,
    replay,
    serve,
    soak,
    ssh,
    startup,
)

BENCHMARKS = {"collectors": collectors.main, "dashboard": dashboard.main, "deep": deep.main,
              "deep_reader": deep_reader.main, "exporter": exporter.main,
              "frame": frame.main, "loss": loss.main, "probes": probes.main, "record": record.main,
              "probe_scale": lambda runs: probe_scale.main(min(runs, 2)),  # 2 rounds a kind: each size <= 20 min
              "replay": replay.main, "serve": serve.main, "soak": soak.main, "ssh": ssh.main, "startup": startup.main}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpu-seconds", type=float, default=60)
    parser.add_argument("--idle-seconds", type=float, default=60,
                        help="dashboard: seconds each pane is measured idle (a probe round is 100 s at 200 nodes)")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    for name in args.names or list(BENCHMARKS):
        print(f"== {name}")
        kwargs = {"runs": args.runs}
        if name in ("collectors", "exporter", "ssh"):
            kwargs["cpu_seconds"] = args.cpu_seconds
        if name == "dashboard":
            kwargs["idle_seconds"] = args.idle_seconds
        result = BENCHMARKS[name](**kwargs)
        result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "when": time.strftime("%Y-%m-%d %H:%M")}
        (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
