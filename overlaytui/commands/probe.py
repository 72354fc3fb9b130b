"""`overlaytui probe`: one round of probes between every pair of nodes on the overlays, printed as a matrix.

A large cluster's rounds measure a rotating part of the pairs (probes/plan.py): a run without --watch makes as
many rounds as measure every pair once (`probe_cycle`), and --watch prints each round with what it covered.

Exit codes, for cron and CI — never "fine" on what was not measured:
0 every expected pair was measured and is within the thresholds; 1 a measured pair crossed a threshold (loss, a
black hole, a pair that cannot reach the other); 2 a usage or connection error, or nothing could be measured;
3 what was measured is within the thresholds, but some expected pairs could not be measured (partial).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict

from ..analysis.thresholds import LossThresholds, Verdict, black_hole, judge, remedy
from ..model import ClusterSnapshot, Coverage, ProbeResult, natural_key, natural_tuple
from ..probes import agent
from ..probes.scheduler import DEFAULT_CONCURRENCY
from ..probes.session import ProbeError, ProbeSettings
from ..producer import Producer
from ..settings import Settings
from ..sources.base import ClusterSource
from .common import (
    add_demo_flags,
    add_endpoint_flags,
    add_probe_flags,
    bounded,
    interrupt_on_sigterm,
    kinds_from_args,
    say_on_stderr,
    settings_from_args,
    source_from_args,
    underlay_reader,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "probe", help="measure loss, latency, path MTU (and throughput) between every pair of nodes",
        description="Deploy a probe agent (a global service labelled overlaytui.probe) on each overlay, measure "
        "between every pair of nodes from inside the overlay, print the pair matrix, remove the agents. "
        "Beyond 25 nodes a round measures a rotating part of the pairs (600 a round) and probe runs as many rounds "
        "as measure each pair once. "
        "Exit 0: every pair measured and within thresholds; 1: a threshold crossed; 2: usage or connection error, "
        "or nothing measured; 3: within thresholds, but some pairs could not be measured (the coverage says why). "
        "Throughput (--kind iperf) is bounded to 3 s at 200 Mbit/s per pair.")
    add_probe_flags(parser, "ping,mtu", 100, f"image of the agents (default {agent.DEFAULT_IMAGE}; {agent.LAB_IMAGE} "
                    "with --lab); any image with a POSIX shell, ping and sleep; path MTU needs iputils ping (-M do), "
                    "throughput iperf3, discovery nslookup and nc — what is missing is reported, not measured",
                    window_flags=("--probe-window", "--window"))
    parser.add_argument("--concurrency", type=bounded(int, 1, 256), default=DEFAULT_CONCURRENCY,
                        help=f"probe jobs at once (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--via-logs", action="store_true",
                        help="agents probe by themselves and report through the manager's service logs (ping only); "
                        "automatic when a node's engine is not reachable")
    parser.add_argument("--json", action="store_true", help="print the results as JSON (with --watch: one object "
                        "per line per round)")
    parser.add_argument("--watch", type=bounded(float, 0, 86400, " s"), metavar="S",
                        help="repeat rounds S seconds apart until interrupted, printing each: every pair's loss "
                        "in that round, in the recent window and since start (beyond 25 nodes a round measures a "
                        "rotating part of the pairs: its coverage says which)")
    add_endpoint_flags(parser)
    add_demo_flags(parser)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    kinds = kinds_from_args(args, "probe")
    user = settings_from_args(args, "probe") if kinds is not None else None
    if user is None or kinds is None:
        return 2
    source = source_from_args(args, stats=False, events=False)
    if source is None:
        return 2
    settings = ProbeSettings(kinds=kinds, networks=tuple(args.network), image=user.probe_image, count=args.count,
                             interval=args.interval, concurrency=args.concurrency, via_logs=args.via_logs,
                             window_s=user.window_s)
    interrupt_on_sigterm()
    try:
        return asyncio.run(_run(source, settings, user, args))
    except KeyboardInterrupt:
        print("overlaytui probe: interrupted (agents removed)", file=sys.stderr)
        return 130


async def _run(source: ClusterSource, settings: ProbeSettings, user: Settings, args) -> int:
    producer = Producer(source, thresholds=user.thresholds, underlay=underlay_reader(args), interval=None,
                        probe=settings,
                        call_timeout=args.timeout, say=say_on_stderr("probe"))
    thresholds = user.thresholds
    try:
        if not await producer.start():
            print(f"overlaytui probe: {producer.failure}", file=sys.stderr)
            return 2
        snapshot = (await producer.frame_now()).frame.snapshot
        if not any(e.role == "manager" and e.health.value == "ok" for e in snapshot.engines):
            reasons = "; ".join(f"{e.endpoint}: {e.message or e.role}" for e in snapshot.engines)
            print(f"overlaytui probe: no reachable manager ({reasons})", file=sys.stderr)
            return 2
        round_no = 0
        while True:
            if args.watch is None:
                results = await probe_cycle(producer)
            else:
                await producer.refresh()  # the round is planned on the cluster as it is now
                results = await producer.probe_round()
            round_no += 1
            frame = (await producer.frame_now()).frame
            coverage = frame.probes.coverage
            problems = producer.session.problems if producer.session is not None else []
            code, verdict = outcome(results, coverage, frame.snapshot, thresholds)
            windows = {net: frame.probes.windows.get(net, {}) for net in sorted({r.network for r in results})}
            if args.watch is not None:
                _print_round(round_no, results, coverage, windows, problems, code, verdict, frame.snapshot,
                             args.json, thresholds)
                await asyncio.sleep(args.watch)
                continue
            if args.json:
                json.dump(round_dict(results, coverage, windows, problems, code, verdict), sys.stdout, indent=1)
                print()
            else:
                print(matrix_text(results, frame.snapshot, coverage, thresholds=thresholds))
            if code in (2, 3):
                print(f"overlaytui probe: {verdict}", file=sys.stderr)
            return code
    except ProbeError as exc:
        print(f"overlaytui probe: {exc}", file=sys.stderr)
        return 2
    finally:
        await producer.close()


async def probe_cycle(producer: Producer) -> list[ProbeResult]:
    """Rounds until every pair was measured once: one round while the full mesh fits a round, as many as the
    plan's rotation takes for a large cluster (`session.every`, read again after each round: nodes come and go).
    Each round is planned on the cluster as it is then."""
    results: list[ProbeResult] = []
    done = 0
    while True:
        await producer.refresh()
        results += await producer.probe_round()
        done += 1
        session = producer.session
        if session is None or done >= session.every:
            return results


def round_dict(results, coverage, windows, problems: list[str], code: int, verdict: str) -> dict:
    """One round as JSON: each result with `loss_pct` = that round's loss, plus the pair's recent window and
    everything since start (pings); the coverage; the verdict."""
    def with_windows(r: ProbeResult) -> dict:
        data = asdict(r) | {"loss_pct": r.loss_pct}
        window = windows.get(r.network, {}).get((r.src_node, r.dst_node)) if r.kind == "ping" else None
        if window is not None:
            data["window"] = {"seconds": window.window_s, "sent": window.recent_sent,
                              "received": window.recent_received, "loss_pct": window.recent_loss_pct}
            data["cumulative"] = {"sent": window.total_sent, "received": window.total_received,
                                  "loss_pct": window.total_loss_pct}
        return data
    ordered = sorted(results, key=lambda r: (natural_key(r.network), r.kind, natural_tuple((r.src_node, r.dst_node))))
    return {"results": [with_windows(r) for r in ordered], "coverage": [coverage_dict(c) for c in coverage],
            "problems": problems, "within_thresholds": code == 0, "verdict": verdict}


def _print_round(round_no, results, coverage, windows, problems, code, verdict, snapshot, as_json: bool,
                 thresholds: LossThresholds) -> None:
    """`--watch`: every round as it ends: one JSON object per line, or the matrix under a heading."""
    if as_json:
        print(json.dumps({"round": round_no, "at": time.time()}
                         | round_dict(results, coverage, windows, problems, code, verdict)), flush=True)
        return
    print(f"== round {round_no} at {time.strftime('%H:%M:%S')}: {verdict}")
    print(matrix_text(results, snapshot, coverage, windows, thresholds), flush=True)
    print()


def threshold_crossed(results, snapshot: ClusterSnapshot, thresholds: LossThresholds) -> bool:
    return any(judge(r, snapshot.network(r.network), thresholds) is Verdict.BAD for r in results)


def outcome(results: list[ProbeResult], coverage: Sequence[Coverage], snapshot: ClusterSnapshot,
            thresholds: LossThresholds) -> tuple[int, str]:
    """(exit code, one line): 0 all measured and within, 1 a threshold crossed, 2 nothing measured, 3 partial."""
    expected = sum(c.expected for c in coverage)
    measured = sum(c.measured for c in coverage)
    if measured == 0:
        reasons = list(dict.fromkeys(gap.reason for c in coverage for gap in c.missing))
        detail = "; ".join(reasons[:3]) + (f" (and {len(reasons) - 3} more reasons)" if len(reasons) > 3 else "")
        return 2, f"nothing measured ({expected} pairs expected): {detail or 'no pair to probe'}"
    if threshold_crossed(results, snapshot, thresholds):
        return 1, f"a threshold is crossed ({measured} of {expected} pair measurements made)"
    if measured < expected:
        return 3, f"partial: {measured} of {expected} pair measurements made, those within the thresholds"
    return 0, f"all {expected} pair measurements within the thresholds"


def coverage_dict(coverage: Coverage) -> dict:
    found = {"network": coverage.network, "kind": coverage.kind, "expected": coverage.expected,
             "measured": coverage.measured, "complete": coverage.complete,
             "missing": [asdict(gap) for gap in coverage.missing]}
    if coverage.rotating:  # a large cluster's plan: `measured` spans the last `every` rounds
        found |= {"every_rounds": coverage.every, "measured_this_round": coverage.this_round}
    return found


def matrix_text(results: list[ProbeResult], snapshot: ClusterSnapshot, coverage: Sequence[Coverage] = (),
                windows: dict | None = None, thresholds: LossThresholds | None = None) -> str:
    lines = []
    thresholds = thresholds or LossThresholds()
    gaps = {(c.network, c.kind, g.src_node, g.dst_node): g.reason for c in coverage for g in c.missing}
    for network in sorted({r.network for r in results} | {c.network for c in coverage}, key=natural_key):
        net = snapshot.network(network)
        lines.append(f"{network}  (effective MTU {net.effective_mtu if net else '?'}"
                     f"{', encrypted' if net and net.encrypted else ''})")
        heading = "loss (recent / all)" if windows else "loss"
        lines.append(f"  {'pair':22} {heading:>8} {'rtt avg':>9}  {'verdict':20} {'path MTU':>9}  throughput")
        pairs = sorted({(r.src_node, r.dst_node) for r in results if r.network == network}
                       | {(s, d) for (n, _k, s, d) in gaps if n == network}, key=natural_tuple)
        by = {(r.kind, r.src_node, r.dst_node): r for r in results if r.network == network}
        for src, dst in pairs:
            ping, mtu, iperf = (by.get((k, src, dst)) for k in ("ping", "mtu", "iperf"))
            loss = rtt = verdict = path = speed = "-"
            if ping is not None:
                if not ping.measured:
                    verdict = f"error: {ping.error or 'no packet sent'}"
                else:
                    loss = f"{ping.loss_pct:.2f}%"
                    rtt = f"{ping.rtt_avg_ms:.2f}ms" if ping.rtt_avg_ms is not None else "-"
                    verdict = judge(ping, net, thresholds).value
            elif (network, "ping", src, dst) in gaps:
                verdict = "not measured"
            if mtu is not None:
                path = str(mtu.path_mtu) if mtu.path_mtu else "error"
                if black_hole(mtu.path_mtu, net.effective_mtu if net else None):
                    path += " BLACK HOLE"
            elif (network, "mtu", src, dst) in gaps:
                path = "unmeasured"
            if iperf is not None:
                speed = f"{iperf.bits_per_second / 1e6:.0f} Mbit/s, {iperf.retransmits} retr" \
                    if iperf.bits_per_second else f"error: {iperf.error}"
            window = (windows or {}).get(network, {}).get((src, dst))
            if window is not None:  # --watch: the round's loss, then the recent window's and everything's
                loss += f" ({window.recent_loss_pct:.2f}% / {window.total_loss_pct:.2f}%)"
            lines.append(f"  {src + ' -> ' + dst:22} {loss:>8} {rtt:>9}  {verdict:20} {path:>9}  {speed}")
        holes = [r for r in results if r.network == network and r.kind == "mtu" and net
                 and black_hole(r.path_mtu, net.effective_mtu)]
        if holes:
            worst = min(holes, key=lambda r: r.path_mtu)
            lines.append(f"  remedy: {remedy(worst.path_mtu, net.effective_mtu, net.configured_mtu)}")
        for c in coverage:
            if c.network == network:
                lines.append(f"  {c.kind}: {c.measured} of {c.expected} pairs measured"
                             + (f" in the last {c.every} rounds (each pair every {c.every} rounds)" if c.rotating
                                else "") + ("" if c.complete else " (PARTIAL)"))
                for reason, count in Counter(g.reason for g in c.missing).most_common():
                    lines.append(f"    not measured ({count} pairs): {reason}")
        lines.append("")
    lines += encrypted_vs_plain(results, snapshot)
    return "\n".join(lines).rstrip()


def encrypted_vs_plain(results: list[ProbeResult], snapshot: ClusterSnapshot) -> list[str]:
    """Throughput per pair on encrypted overlays beside plain ones, when both were measured."""
    speeds: dict[tuple[str, str], dict[bool, list[str]]] = {}
    for r in results:
        net = snapshot.network(r.network)
        if r.kind != "iperf" or net is None:
            continue
        text = f"{r.bits_per_second / 1e6:.0f}" if r.bits_per_second else "error"
        speeds.setdefault((r.src_node, r.dst_node), {}).setdefault(net.encrypted, []).append(text)
    pairs = {pair: by for pair, by in speeds.items() if True in by and False in by}
    if not pairs:
        return []
    lines = ["throughput, plain vs encrypted overlays (Mbit/s)"]
    for (src, dst), by in sorted(pairs.items(), key=lambda kv: natural_tuple(kv[0])):
        lines.append(f"  {src + ' -> ' + dst:22} plain {'/'.join(by[False]):>10}   encrypted {'/'.join(by[True]):>10}")
    return lines
