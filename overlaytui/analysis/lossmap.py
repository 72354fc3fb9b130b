"""The loss overview for clusters too large for a node x node matrix (pure: no Textual).

`overview()` judges every directed pair once and, in the same pass, sums up per node (the worst loss it sends
and receives, pairs measured of expected, path-MTU problems), folds the matrix into a grid of cells for a heat
map, and keeps the worst unordered pairs. One node's fault is a row and a column of bad pairs: at 200 nodes it
shows in the grid at a glance and at the top of the node list. 200 nodes are 39,800 pairs per overlay: the pane
runs this off the UI loop (bench/bench_loss_overview.py has the figures).

"Worst" is one order everywhere (`RANK`): bad, then acceptable, then not measured, then not enough samples, then
good. A path MTU below the overlay's counts as bad (a black hole). Not measured ranks above a small sample: a
gap is something to look at, a small sample only needs time.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..model import Coverage, PackedResults, PairWindow, ProbeResult, ResultsAt, natural_key
from .thresholds import LossThresholds, Verdict, black_hole, judge_loss

RANK = {Verdict.GOOD: 0, Verdict.INSUFFICIENT: 1, Verdict.UNKNOWN: 2, Verdict.ACCEPTABLE: 3, Verdict.BAD: 4}
BY_RANK = {rank: verdict for verdict, rank in RANK.items()}
QUALITY = {Verdict.GOOD: 0, Verdict.ACCEPTABLE: 1, Verdict.INSUFFICIENT: 2, Verdict.UNKNOWN: 3, Verdict.BAD: 4}
DEFAULT_THRESHOLDS = LossThresholds()


@dataclass(frozen=True, slots=True)
class PairState:
    """One directed pair, judged: its recent loss (the recent window's, else the latest result's) and verdict, or
    why it is not measured; its path MTU and whether that is a black hole."""

    src: str
    dst: str
    loss_pct: float | None  # None: not measured
    verdict: Verdict  # UNKNOWN when not measured
    rtt_ms: float | None = None
    path_mtu: int | None = None
    mtu_hole: bool = False  # path MTU measured below the overlay's
    reason: str = ""  # why the loss is not measured ("" when it is)
    badness: tuple[int, float] = field(init=False, compare=False)  # larger is worse: the rank, then the loss

    def __post_init__(self) -> None:  # computed once: the overview compares it ~10 times per pair
        rank = max(RANK[self.verdict], RANK[Verdict.BAD] if self.mtu_hole else 0)
        object.__setattr__(self, "badness", (rank, self.loss_pct or 0.0))

    @property
    def rank(self) -> int:
        return self.badness[0]


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node across all its pairs (both directions)."""

    node: str
    worst_sent: PairState | None  # its worst pair towards another node (None: it has no pairs)
    worst_received: PairState | None  # its worst pair from another node
    measured: int  # pairs with a loss figure, both directions
    expected: int  # 2 x (nodes - 1)
    mtu_holes: int  # pairs (both directions) whose path MTU is below the overlay's
    min_path_mtu: int | None
    bad: int  # pairs judged bad (a black hole included)

    @property
    def rank(self) -> int:
        return max((p.rank for p in (self.worst_sent, self.worst_received) if p is not None), default=RANK[
            Verdict.UNKNOWN])

    @property
    def worst_loss(self) -> float:
        return max((p.loss_pct or 0.0 for p in (self.worst_sent, self.worst_received) if p is not None), default=0.0)


@dataclass(frozen=True)
class Indexed:
    """One overlay's results by pair: the latest ping and path-MTU result, why pairs are not measured (by kind),
    and the nodes in natural order."""

    pings: Mapping[tuple[str, str], ProbeResult]
    mtus: Mapping[tuple[str, str], ProbeResult]
    gaps: dict[tuple[str, str, str], str]  # (kind, src, dst) -> reason
    hosts: list[str]

    def ping_gaps(self) -> dict[tuple[str, str], str]:
        return {(s, d): why for (k, s, d), why in self.gaps.items() if k == "ping"}


def index_results(results: Sequence[ProbeResult], coverage: Sequence[Coverage] = ()) -> Indexed:
    pings: Mapping[tuple[str, str], ProbeResult]
    mtus: Mapping[tuple[str, str], ProbeResult]
    if isinstance(results, PackedResults):
        at: dict[str, dict[tuple[str, str], int]] = {"ping": {}, "mtu": {}}
        for i, (kind, _network, src, dst, _at) in enumerate(results.keyed()):
            if kind in at:
                at[kind][(src, dst)] = i
        pings, mtus = ResultsAt(results, at["ping"]), ResultsAt(results, at["mtu"])  # made as read
    else:
        pings, mtus = {}, {}
        for r in results:
            if r.kind == "ping":
                pings[(r.src_node, r.dst_node)] = r
            elif r.kind == "mtu":
                mtus[(r.src_node, r.dst_node)] = r
    gaps = {(c.kind, g.src_node, g.dst_node): g.reason for c in coverage for g in c.missing}
    hosts = {h for pair in pings for h in pair} | {h for pair in mtus for h in pair} | {
        h for (_k, s, d) in gaps for h in (s, d)}
    return Indexed(pings, mtus, gaps, sorted(hosts, key=natural_key))


@dataclass(frozen=True)
class HeatGrid:
    """The matrix folded into cells: `cells[r][c]` is the worst rank among the pairs from the nodes of row group
    r to the nodes of column group c (None: no pair there, only the diagonal). `row_size` and `col_size` nodes
    per group, in the hosts' order."""

    cells: tuple[tuple[int | None, ...], ...]
    row_size: int
    col_size: int


@dataclass(frozen=True)
class LossOverview:
    """What the Loss pane shows beyond its matrix limit, for one overlay."""

    hosts: tuple[str, ...]  # natural order
    nodes: tuple[NodeState, ...]  # worst first (only the picked node's, when one is picked)
    pairs: tuple[tuple[PairState, PairState | None], ...]  # unordered pairs (a -> b, b -> a), worst first, capped
    pair_count: int  # unordered pairs in scope (all, or the picked node's)
    grid: HeatGrid
    picked: str | None = None


def judge_pair(src: str, dst: str, ping: ProbeResult | None, mtu: ProbeResult | None, window: PairWindow | None,
               gap: str | None, expected_mtu: int | None, judge) -> PairState:
    """One directed pair: the recent window's loss and verdict when there is one, else the latest result's; not
    measured (with the reason) when the latest ping failed or sent nothing. A loss-free recent window (5 min at
    10 packets/s cannot show "good": that takes ~30,000 loss-free packets) is also judged on everything since
    start, and the better verdict stands: old losses do not paint a quiet pair, a short window does not hide
    a long clean record."""
    path = mtu.path_mtu if mtu is not None and not mtu.error else None
    hole = black_hole(path, expected_mtu)
    if ping is None or ping.error or ping.sent <= 0:
        reason = (gap or "no result yet") if ping is None else ping.error or "no packet sent"
        return PairState(src, dst, None, Verdict.UNKNOWN, None, path, hole, reason)
    if window is not None and window.recent_sent:
        sent, lost = window.recent_sent, max(window.recent_sent - window.recent_received, 0)
        verdict = judge(lost, sent)
        if not lost and window.total_sent > sent:  # nothing lost lately: everything since start may say more
            total = judge(max(window.total_sent - window.total_received, 0), window.total_sent)
            verdict = min(verdict, total, key=QUALITY.__getitem__)
    else:
        sent, lost = ping.sent, max(ping.sent - ping.received, 0)
        verdict = judge(lost, sent)
    return PairState(src, dst, 100.0 * lost / sent, verdict, ping.rtt_avg_ms, path, hole)


def overview(hosts: Sequence[str], pings: Mapping[tuple[str, str], ProbeResult],
             mtus: Mapping[tuple[str, str], ProbeResult], windows: Mapping[tuple[str, str], PairWindow],
             gaps: Mapping[tuple[str, str], str], expected_mtu: int | None,
             thresholds: LossThresholds = DEFAULT_THRESHOLDS, *, picked: str | None = None, limit: int = 250,
             max_rows: int = 16, max_cols: int = 100) -> LossOverview:
    """Every ordered pair of `hosts` (pass them in natural order) judged once; the nodes worst first (rank, then
    pairs judged bad, then pairs not measured, then the worst loss, then the hosts' order), the heat grid and the
    `limit` worst unordered pairs (all of `picked`'s pairs when a node is picked). `gaps`: why a pair's ping is
    not measured (coverage)."""
    verdicts: dict[tuple[int, int], Verdict] = {}

    def judge(lost: int, sent: int) -> Verdict:  # pairs share their counts: judge each (lost, sent) once
        verdict = verdicts.get((lost, sent))
        if verdict is None:
            verdict = verdicts[(lost, sent)] = judge_loss(lost, sent, thresholds)
        return verdict

    n = len(hosts)
    row_size, col_size = max(1, math.ceil(n / max(1, max_rows))), max(1, math.ceil(n / max(1, max_cols)))
    grid: list[list[int | None]] = [[None] * math.ceil(n / col_size) for _ in range(math.ceil(n / row_size))]
    states: dict[tuple[str, str], PairState] = {}
    sent_worst: list[PairState | None] = [None] * n
    received_worst: list[PairState | None] = [None] * n
    measured, holes, bad = [0] * n, [0] * n, [0] * n
    min_path: list[int | None] = [None] * n
    bad_rank = RANK[Verdict.BAD]
    for i, src in enumerate(hosts):
        cells = grid[i // row_size]
        for j, dst in enumerate(hosts):
            if i == j:
                continue
            pair = (src, dst)
            state = states[pair] = judge_pair(src, dst, pings.get(pair), mtus.get(pair), windows.get(pair),
                                              gaps.get(pair), expected_mtu, judge)
            badness = state.badness
            rank, c = badness[0], j // col_size
            if cells[c] is None or rank > cells[c]:
                cells[c] = rank
            for k, worst in ((i, sent_worst), (j, received_worst)):
                current = worst[k]
                if current is None or badness > current.badness:
                    worst[k] = state
                if state.loss_pct is not None:
                    measured[k] += 1
                if rank == bad_rank:
                    bad[k] += 1
                if state.mtu_hole:
                    holes[k] += 1
                    min_path[k] = min(state.path_mtu, min_path[k] or state.path_mtu)
    nodes = [NodeState(h, sent_worst[k], received_worst[k], measured[k], 2 * (n - 1), holes[k], min_path[k], bad[k])
             for k, h in enumerate(hosts) if picked in (None, h)]
    order = {h: k for k, h in enumerate(hosts)}
    nodes.sort(key=lambda node: (-node.rank, -node.bad, node.measured - node.expected, -node.worst_loss,
                                 order[node.node]))
    pairs, count = _worst_pairs(hosts, states, picked, limit)
    return LossOverview(tuple(hosts), tuple(nodes), pairs, count,
                        HeatGrid(tuple(map(tuple, grid)), row_size, col_size), picked)


def _worst_pairs(hosts: Sequence[str], states: Mapping[tuple[str, str], PairState], picked: str | None,
                 limit: int) -> tuple[tuple[tuple[PairState, PairState | None], ...], int]:
    """The `limit` worst unordered pairs (the worse direction decides, then the hosts' order), and how many
    there are. Most pairs are good and tie: only the others are sorted, the good ones follow in order."""
    order = {h: k for k, h in enumerate(hosts)}

    def unordered(src: str, dst: str) -> tuple[str, str]:
        if picked is not None:
            return (src, dst) if src == picked else (dst, src)
        return (src, dst) if order[src] < order[dst] else (dst, src)

    def row(a: str, b: str) -> tuple[PairState, PairState | None]:
        return states[(a, b)], states.get((b, a))

    def key(ab: tuple[PairState, PairState | None]) -> tuple[int, float, int, int]:
        a, b = ab
        rank, loss = max(a.badness, b.badness) if b is not None else a.badness
        return -rank, -loss, order[a.src], order[a.dst]

    others = [h for h in hosts if h != picked] if picked is not None else hosts
    count = len(others) if picked is not None else len(hosts) * (len(hosts) - 1) // 2
    notable = {unordered(s, d) for (s, d), state in states.items() if state.badness > (0, 0.0)
               and (picked is None or picked in (s, d))}
    rows = heapq.nsmallest(limit, (row(a, b) for a, b in notable), key=key)
    if len(rows) < limit:  # then the good ones, in order
        pairs = (((picked, h) for h in others) if picked is not None else
                 ((a, b) for k, a in enumerate(hosts) for b in hosts[k + 1:]))
        for a, b in pairs:
            if (a, b) not in notable:
                rows.append(row(a, b))
                if len(rows) >= limit:
                    break
    return tuple(rows), count
