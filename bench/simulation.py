"""The demo's simulation alone, driven as the producer drives it, for `python -m bench dashboard` (issue 26).

    python bench/simulation.py SCENARIO NODES,SERVICES,TASKS|- FROM SECONDS

Run by path with PYTHONPATH at the tree to measure (this file imports nothing of the bench), it prints the CPU %
of a core the DemoSource spends over SECONDS of its own time (a fake clock): the probe data and a snapshot a
second, a poll every reconcile or when its topology moved (what `wait_for_change` tells the producer), from FROM
seconds after its start (the dashboard's measurement starts after its start-up too: the same probe rounds fall in).
"""

from __future__ import annotations

import asyncio
import sys
import time

from overlaytui.settings import RECONCILE
from overlaytui.sources.demo import DemoSource


def simulate(scenario: str, scale: tuple[int, int, int] | None, start: int, seconds: int) -> float:
    now = [time.time()]
    source = DemoSource(scenario, seed=1, scale=scale, clock=lambda: now[0])
    asyncio.run(source.start())
    next_poll = now[0] + RECONCILE
    cpu = 0.0
    for second in range(start + seconds):
        if second == start:
            cpu = time.process_time()
        now[0] += 1
        source.probes()
        source.snapshot()
        if source._changed.is_set() or now[0] >= next_poll:
            source._changed.clear()
            asyncio.run(source.poll())
            next_poll = now[0] + RECONCILE
    return 100 * (time.process_time() - cpu) / seconds


if __name__ == "__main__":
    name, given, start, span = sys.argv[1:5]
    print(simulate(name, None if given == "-" else tuple(map(int, given.split(","))), int(start), int(float(span))))
