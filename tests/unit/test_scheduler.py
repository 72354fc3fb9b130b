"""The probe scheduler's limits: concurrency cap, per-job timeout, iperf3 exclusivity, streaming results."""

from __future__ import annotations

import asyncio
import random
import time

from overlaytui.model import ProbeResult
from overlaytui.probes.scheduler import ProbeJob, ProbeScheduler


def job(kind: str, src: str, dst: str, seconds: float, track: dict, exclusive=()) -> ProbeJob:
    async def run():
        track["running"] += 1
        track["peak"] = max(track["peak"], track["running"])
        for node in exclusive:
            assert node not in track["busy"], f"two iperf tests on {node}"
            track["busy"].add(node)
        try:
            await asyncio.sleep(seconds)
        finally:
            track["running"] -= 1
            for node in exclusive:
                track["busy"].discard(node)
        return [ProbeResult(kind, "net", src, dst, time.time(), sent=10, received=10)]
    return ProbeJob(kind, "net", run, ((src, dst),), exclusive_nodes=tuple(exclusive))


def fresh_track() -> dict:
    return {"running": 0, "peak": 0, "busy": set()}


def test_concurrency_cap_and_streamed_results():
    track, seen = fresh_track(), []
    scheduler = ProbeScheduler(concurrency=3, jitter=0.01, rng=random.Random(1))
    jobs = [job("ping", f"n{i}", "x", 0.05, track) for i in range(10)]
    results = asyncio.run(scheduler.run(jobs, seen.append))
    assert len(results) == 10 and seen == results
    assert track["peak"] == 3


def test_a_hanging_probe_times_out_into_an_error_result():
    track = fresh_track()
    scheduler = ProbeScheduler(concurrency=4, timeout=0.2, jitter=0.0)
    start = time.monotonic()
    results = asyncio.run(scheduler.run([job("ping", "a", "b", 30, track), job("ping", "c", "d", 0.01, track)],
                                        lambda r: None))
    assert time.monotonic() - start < 2
    errors = {(r.src_node, r.dst_node): r.error for r in results}
    assert errors[("a", "b")].startswith("no result within 0.2 s") and errors[("c", "d")] == ""


def test_never_two_iperf_tests_on_one_node():
    track = fresh_track()
    scheduler = ProbeScheduler(concurrency=8, jitter=0.0)
    pairs = [("n1", "n2"), ("n2", "n3"), ("n3", "n1"), ("n1", "n3"), ("n4", "n5")]
    jobs = [job("iperf", a, b, 0.05, track, exclusive=(a, b)) for a, b in pairs]
    results = asyncio.run(scheduler.run(jobs, lambda r: None))  # the job asserts exclusivity itself
    assert len(results) == 5 and track["peak"] == 2  # n4->n5 may run beside one of the others
