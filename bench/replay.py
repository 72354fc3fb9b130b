"""Reading a long recording: time and peak memory of indexing it and rebuilding its last and middle frames.

    .venv/bin/python -m bench replay

The recording is real-shaped: 120 s of the demo recorded (keyframes every 60 s), then N records made of its
keyframe and of deltas that change one container each, times one second apart (gzip level 6). Each reading runs
in a subprocess of its own (peak RSS is per process): `load` (one indexing pass), the last frame (what
`snapshot --replay` shows), the middle one (a seek back: gzip is decompressed again from its start).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.unit.test_recording import record_demo

READ = """
import resource, sys, time
from overlaytui.recording import Limits, load
started = time.perf_counter()
recording = load(sys.argv[1], Limits(records=10_000_000))
indexed = time.perf_counter() - started
recording.frame(len(recording) - 1)
last = time.perf_counter() - started
recording.frame(len(recording) // 2)
print(indexed, last, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def make(path: Path, records: int, work: Path) -> int:
    """The recording of `records` records; returns its decompressed size."""
    demo = work / "demo.jsonl"
    if not demo.exists():
        record_demo(demo, seconds=120, keyframe=60)
    lines = demo.read_text().splitlines()
    key = next(line for line in lines if line.startswith('{"type":"key"'))
    cid, item = next(iter(json.loads(key)["frame"]["containers"].items()))
    item_text = json.dumps(item, separators=(",", ":"))
    key_rest = key.split(",", 2)[2]
    size = 0
    t = 1_800_000_000.0
    with gzip.open(path, "wt", compresslevel=6) as out:
        out.write(lines[0] + "\n")
        for i in range(records):
            if i % 60 == 0:
                line = f'{{"type":"key","t":{t + i},{key_rest}\n'
            else:
                changed = item_text.replace('"rx_bytes":', f'"rx_bytes":{i}0', 1)
                line = f'{{"type":"delta","t":{t + i},"set":{{"containers":{{"{cid}":{changed}}}}},"del":{{}}}}\n'
            out.write(line)
            size += len(line)
    return size


def main(runs: int = 1) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for records in (100_000, 1_000_000):
            path = work / f"r{records}.jsonl.gz"
            started = time.perf_counter()
            size = make(path, records, work)
            made = time.perf_counter() - started
            best = None
            for _ in range(max(1, runs)):
                done = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True, text=True,
                                      check=True, cwd=Path(__file__).parents[1])
                indexed, last, middle, peak = (float(v) for v in done.stdout.split())
                if best is None or middle < best[2]:
                    best = (indexed, last, middle, peak)
            assert best is not None
            results[str(records)] = {"gzip_mib": round(path.stat().st_size / 2**20, 1),
                                     "decompressed_mib": round(size / 2**20), "made_s": round(made, 1),
                                     "index_s": round(best[0], 2), "last_frame_s": round(best[1], 2),
                                     "middle_frame_s": round(best[2], 2), "peak_rss_mib": round(best[3] / 2**20)}
            print(records, results[str(records)])
    return {"replay": results}
