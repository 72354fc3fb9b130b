"""Which nodes' pairs a probing round measures: the full mesh while it fits a round's budget, else a rotation.

Probes are per source node: one ping sweep (one exec, every destination at once) and one path-MTU sweep per
source and overlay. So a round measures whole rows of the pair matrix: the pairs from each of its *sources* to
every other node. Measured on the lab (bench/probe_scale.py, docs/benchmarks.md): a full-mesh round costs, per
directed pair, ~214 underlay packets (ping 100 x 0.2 s), ~9 ms of overlaytui's CPU (the MTU search's execs)
and ~0.1 s of engine and agent CPU; 24 nodes (552 pairs) take 45 s on this 2-core machine, 200 nodes (39,800
pairs) would take ~6 min of overlaytui's CPU alone. A round's budget is therefore a number of directed pairs per
overlay (`DEFAULT_ROUND_PAIRS`, the 24-node lab's 552 with a margin):

- N(N-1) <= budget: every node is a source in every round (the full mesh; `every` = 1).
- otherwise `per` = budget // (N-1) sources a round, taken in natural name order after the previous round's last
  one (wrapping): each node is a source, so each of its pairs measured, at least once every
  `every` = ceil(N / per) rounds — also while nodes join and leave (the rotation follows names, not positions:
  a node that joined waits at most one turn of the ring).
- the selected node (`focus`, the dashboard's selection) is a source in every round, first, on top of the rotation
  (which it never delays): its pairs to every other node are measured every round (each ping is a round trip: the
  paths both ways), its pairs from others with their sources' turns.

Pure and deterministic: the same nodes, previous source and focus give the same plan.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..model import natural_key

DEFAULT_ROUND_PAIRS = 600  # directed pairs per overlay and round: a 24-node lab's full mesh (552) fits


@dataclass(frozen=True)
class RoundPlan:
    sources: tuple[str, ...]  # the nodes whose pairs to every other node this round measures, the focus first
    every: int  # each node is a source at least once every `every` rounds (1: the full mesh every round)
    last: str | None  # the rotation's last source: the next round continues after it (None: the full mesh)
    nodes: int  # how many nodes the plan was made for

    @property
    def full(self) -> bool:
        return self.every == 1

    def pairs(self, nodes: Sequence[str]) -> tuple[tuple[str, str], ...]:
        """The directed pairs this round measures among `nodes` (in the plan's order)."""
        return tuple((src, dst) for src in self.sources for dst in nodes if dst != src)


def sources_per_round(nodes: int, budget: int) -> int:
    """How many sources (each to every other node) fit in a round's budget of directed pairs; at least one, at most
    every node. A budget of 0 or less: no limit (the full mesh)."""
    if nodes < 2 or budget <= 0:
        return max(nodes, 1)
    return max(1, min(nodes, budget // (nodes - 1)))


def plan_round(nodes: Sequence[str], last: str | None = None, budget: int = DEFAULT_ROUND_PAIRS,
               focus: str | None = None) -> RoundPlan:
    """The next round's sources among `nodes` (hostnames), after the previous round's last rotation source."""
    ordered = sorted(set(nodes), key=natural_key)
    count = len(ordered)
    per = sources_per_round(count, budget)
    first = (focus,) if focus in ordered else ()
    if per >= count:
        return RoundPlan((*first, *(n for n in ordered if n != focus)), 1, None, count)
    keys = [natural_key(n) for n in ordered]
    start = bisect.bisect_right(keys, natural_key(last)) if last is not None else 0
    rotation = [ordered[(start + i) % count] for i in range(per)]
    return RoundPlan((*first, *(n for n in rotation if n != focus)), math.ceil(count / per), rotation[-1], count)
