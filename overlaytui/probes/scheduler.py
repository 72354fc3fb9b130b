"""Running probe jobs in the background: a concurrency cap, a timeout per job, jitter, never two iperf3 tests
on one node at a time, and every result handed on as soon as it exists."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..model import ProbeResult
from ..sources.errors import describe_error

DEFAULT_CONCURRENCY = 16  # a 50-node, 3-overlay schedule fits 5 min (bench/probes.py)
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class ProbeJob:
    """One unit of probing: `run` produces results for `pairs` (source, destination hostnames)."""

    kind: str  # ping / mtu / iperf
    network: str
    run: Callable[[], Awaitable[Sequence[ProbeResult]]]
    pairs: tuple[tuple[str, str], ...]
    exclusive_nodes: tuple[str, ...] = ()  # nodes this job must have to itself (iperf3: client and server)
    timeout: float | None = None


@dataclass
class ProbeScheduler:
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    jitter: float = 0.5  # seconds of random delay before each job, so probes do not start in lockstep
    rng: random.Random = field(default_factory=random.Random)
    _node_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def run(self, jobs: Iterable[ProbeJob], on_result: Callable[[ProbeResult], None]) -> list[ProbeResult]:
        """Run the jobs; `on_result` gets each result as it arrives (from the event loop). Returns all results."""
        semaphore = asyncio.Semaphore(self.concurrency)
        results: list[ProbeResult] = []

        def emit(result: ProbeResult) -> None:
            results.append(result)
            on_result(result)

        def fail(job: ProbeJob, reason: str) -> None:
            for src, dst in job.pairs:
                emit(ProbeResult(job.kind, job.network, src, dst, time.time(), error=reason))

        async def one(job: ProbeJob) -> None:
            await asyncio.sleep(self.rng.uniform(0, self.jitter))
            locks = [self._node_locks.setdefault(n, asyncio.Lock()) for n in sorted(set(job.exclusive_nodes))]
            async with semaphore:
                for lock in locks:  # always in the same order: no deadlock between two iperf jobs
                    await lock.acquire()
                try:
                    limit = job.timeout or self.timeout
                    try:
                        for result in await asyncio.wait_for(job.run(), limit):
                            emit(result)
                    except TimeoutError:
                        fail(job, f"no result within {limit:g} s (probe hung?)")
                    except Exception as exc:  # noqa: BLE001 - a failed job is an error result, never a crash
                        fail(job, f"the {job.kind} probe failed: {describe_error(exc)}")
                finally:
                    for lock in reversed(locks):
                        lock.release()

        await asyncio.gather(*(one(job) for job in jobs))
        return results
