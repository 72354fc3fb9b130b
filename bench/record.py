"""Recordings: size per hour, the writer's time per frame, reading and seeking.

    .venv/bin/python -m bench record

The demo recorded one frame a second (the dashboard's and `record`'s default), keyframes every 60 s, at its
default size (5 nodes, 8 services, 25 containers, 120 simulated probe results) and at 200 nodes / 300 services /
5000 tasks. Baseline, in the same process: the naive recording — every frame as `snapshot --json` prints it, one
line each, plain and gzipped. Sizes per hour are extrapolated from 10 minutes (the demo's traffic changes every
frame, as a busy cluster's stats do: that is what deltas cannot save).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from overlaytui.export import snapshot_to_dict
from overlaytui.frame import FrameBuilder
from overlaytui.recording import GZIP_LEVEL, RecordedFrame, Recorder, load
from overlaytui.sources.demo import DemoSource

T0 = 1_800_000_000.0


def run(scale, seconds: int, scenario: str = "rolling-update") -> dict:
    now = [T0]
    source = DemoSource(scenario, seed=1, scale=scale, clock=lambda: now[0])
    asyncio.run(source.start())
    builder = FrameBuilder(underlay=lambda addresses: {})
    result: dict = {"seconds": seconds}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"plain": Path(tmp, "r.jsonl"), "gzip": Path(tmp, "r.jsonl.gz"), "zstd": Path(tmp, "r.jsonl.zst")}
        recorders = {name: Recorder(path, source=source.name) for name, path in paths.items()}
        naive = Path(tmp, "naive.jsonl")
        writes: list[float] = []
        key_writes: list[float] = []
        key_bytes: dict[str, int] = {}
        with open(naive, "w") as out:
            for i in range(seconds):
                now[0] += 1
                if i % 10 == 0:
                    asyncio.run(source.poll())
                frame = builder.build(source.snapshot(), source.probes())
                recorded = RecordedFrame(frame.snapshot, frame.probes, frame.underlay_mtus)
                for name, recorder in recorders.items():
                    start = time.perf_counter()
                    recorder.write(recorded)
                    if name == "gzip":
                        (writes if i else key_writes).append(time.perf_counter() - start)
                    if i == 0:  # the keyframe's size on its own (a sync flush of the compressor)
                        recorder.flush()
                        key_bytes[name] = paths[name].stat().st_size
                out.write(json.dumps(snapshot_to_dict(frame.snapshot)) + "\n")
        for recorder in recorders.values():
            recorder.close()
        with open(naive, "rb") as fh, gzip.open(Path(tmp, "naive.jsonl.gz"), "wb", compresslevel=GZIP_LEVEL) as packed:
            shutil.copyfileobj(fh, packed)  # the level ours uses
        # an hour: keyframes as often as the writer makes them (every 60 s, or 20x the time one took), deltas
        # every second in between
        gap = recorders["gzip"]._key_gap
        result["keyframe_every_s"] = gap
        mib: dict[str, float] = {}
        for name, path in paths.items():
            delta = (path.stat().st_size - key_bytes[name]) / (seconds - 1)
            mib[name] = (3600 / gap * key_bytes[name] + 3600 * delta) / 2**20
        mib["naive"] = naive.stat().st_size / seconds * 3600 / 2**20
        mib["naive_gzip"] = Path(tmp, "naive.jsonl.gz").stat().st_size / seconds * 3600 / 2**20
        result["mib_per_hour"] = mib
        result["keyframe_kib"] = {name: size / 1024 for name, size in key_bytes.items()}
        result["write_ms"] = statistics.median(writes) * 1000
        result["keyframe_write_s"] = key_writes[0]
        start = time.perf_counter()
        recording = load(paths["gzip"])
        result["load_s"] = time.perf_counter() - start
        seeks = []
        for index in (len(recording) - 1, len(recording) // 3, 5)[: 3 if seconds > 100 else 2]:
            start = time.perf_counter()
            recording.frame(index)
            seeks.append(time.perf_counter() - start)
        result["seek_ms"] = statistics.median(seeks) * 1000
        start = time.perf_counter()
        played = range(len(recording) // 2, len(recording))
        for index in played:
            recording.frame(index)
        result["play_ms_per_frame"] = (time.perf_counter() - start) / len(played) * 1000
    return result


def main(runs: int = 5) -> dict:
    small = run(None, 600)
    large = run((200, 300, 5000), 20)
    for name, found in (("5 nodes", small), ("200/300/5000", large)):
        mib = found["mib_per_hour"]
        print(f"{name}: {mib['gzip']:.1f} MiB/h gzip, {mib['zstd']:.1f} MiB/h zstd, {mib['plain']:.0f} MiB/h plain "
              f"vs naive snapshots {mib['naive']:.0f} MiB/h ({mib['naive_gzip']:.1f} gzipped; ratio gzip/naive "
              f"gzip {mib['gzip'] / mib['naive_gzip']:.2f}); keyframe {found['keyframe_kib']['gzip']:.0f} KiB gzip "
              f"every {found['keyframe_every_s']:.0f} s, written in {found['keyframe_write_s']:.2f} s; delta write "
              f"{found['write_ms']:.1f} ms/frame; load {found['load_s']:.2f} s for {found['seconds']} frames; seek "
              f"{found['seek_ms']:.0f} ms; play {found['play_ms_per_frame']:.1f} ms/frame")
    return {"small": small, "large": large}
