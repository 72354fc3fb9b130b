"""`overlaytui exporter`: a headless process with the dashboard's collectors, a probe session and the doctor's
checks, serving what they measure as Prometheus / OpenMetrics text on /metrics (metrics in overlaytui/exporter.py).

A scrape never waits: collection and probing run in their own loops and replace one immutable state; the
collector builds the metrics from it. Agents are deployed once and kept (re-deployed when removed); SIGTERM and
SIGINT remove them; leftovers of a crashed run are removed at start, as everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import replace

from prometheus_client import CollectorRegistry

from ..analysis.netio import aggregate
from ..exporter import DEFAULT_MAX_PAIRS, ExportState, OverlayCollector
from ..httpd import make_server, parse_listen
from ..model import Health
from ..probes.session import ProbeSettings
from ..producer import Producer, Update
from ..settings import Settings
from ..sources.base import ClusterSource
from .common import (
    add_deep_flags,
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

DEFAULT_LISTEN = "127.0.0.1:9476"  # not a port of the common exporters (node 9100, cAdvisor 8080, dockerd 9323)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "exporter", help="serve loss, RTT, path MTU and the doctor's findings as Prometheus metrics",
        description="A long-running, headless overlaytui: collects the cluster like the dashboard, probes every "
        "pair of nodes on the overlays every --probe-every seconds (agents deployed once, kept, removed on "
        "SIGTERM/SIGINT), runs the doctor's checks, and serves the results on http://LISTEN/metrics "
        "(Prometheus text or OpenMetrics). Low duty by default: one round of 50 pings x 0.2 s per pair a minute.")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDR:PORT",
                        help=f"where to serve (default {DEFAULT_LISTEN}: this host only; another address is "
                        "explicit, e.g. 0.0.0.0:9476)")
    parser.add_argument("--probe-every", type=bounded(float, 1, 86400, " s"), default=60.0, metavar="S",
                        help="seconds between the starts of probe rounds (default 60)")
    add_probe_flags(parser, "ping,mtu", 50, "image of the probe agents (see `probe --help`)")
    add_deep_flags(parser, "every 30 s")
    parser.add_argument("--no-probe", action="store_true", help="collect and check only (no agents)")
    parser.add_argument("--max-pairs", type=bounded(int, 0, 10_000_000), default=DEFAULT_MAX_PAIRS,
                        help=f"directed pairs x overlays with per-pair series (default {DEFAULT_MAX_PAIRS}); "
                        "beyond, per-node series only")
    parser.add_argument("--collect-every", type=bounded(float, 0.5, 3600, " s"), default=5.0, metavar="S",
                        help="seconds between collections (events re-poll sooner; default 5)")
    add_endpoint_flags(parser)
    add_demo_flags(parser)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    kinds = kinds_from_args(args, "exporter")
    settings = settings_from_args(args, "exporter") if kinds is not None else None
    if kinds is None or settings is None:
        return 2
    try:
        listen = parse_listen(args.listen)
    except ValueError as exc:
        print(f"overlaytui exporter: {exc}", file=sys.stderr)
        return 2
    source = source_from_args(args)
    if source is None:
        return 2
    exporter = Exporter(source, args, kinds, settings)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverlayCollector(lambda: exporter.state))
    try:
        server = make_server(listen[0], listen[1], registry, lambda: exporter.state)  # httpd.py: bounded
    except OSError as exc:
        print(f"overlaytui exporter: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"overlaytui exporter: serving http://{args.listen}/metrics; {settings.describe()}", file=sys.stderr)
    interrupt_on_sigterm()
    try:
        return asyncio.run(exporter.run())
    except KeyboardInterrupt:
        print(f"overlaytui exporter: stopped{' (agents removed)' if exporter.had_agents else ''}",
              file=sys.stderr)
        return 0
    finally:
        server.close()


class Exporter:
    """The producer's frames made into the state a scrape formats: collection every --collect-every seconds
    (sooner on events), a probe round every --probe-every seconds (agents kept, probing retried with backoff
    while it cannot start). Each frame replaces `state` whole."""

    def __init__(self, source: ClusterSource, args: argparse.Namespace, kinds: tuple[str, ...],
                 settings: Settings) -> None:
        self.args = args
        probe = None if args.no_probe else ProbeSettings(
            kinds=kinds, networks=tuple(args.network), count=args.count, interval=args.interval,
            image=settings.probe_image, window_s=settings.window_s)
        self.producer = Producer(source, thresholds=settings.thresholds, underlay=underlay_reader(args),
                                 interval=args.collect_every,
                                 probe=probe, probe_every=args.probe_every, call_timeout=args.timeout,
                                 retry_probing=True, say=say_on_stderr("exporter"),
                                 deep=settings.deep_settings())
        self.state = ExportState(max_pairs=args.max_pairs)
        self.had_agents = False

    async def run(self) -> int:
        producer = self.producer
        if not await producer.start():
            print(f"overlaytui exporter: {producer.failure}", file=sys.stderr)
            return 2
        if producer.probe_settings is not None:
            producer.start_probing()
        loop = asyncio.ensure_future(producer.run())
        try:
            async for update in producer.updates():
                self.publish(update)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
            self.had_agents = producer.session is not None
            await producer.close()
        return 0

    def publish(self, update: Update) -> None:
        """A new state from a frame (cheap: the frame was built in the producer's thread; the state's sums are
        computed here, once)."""
        frame, probes = update.frame, update.probe_state
        snapshot = frame.snapshot
        up = any(e.role == "manager" and e.health is Health.OK for e in snapshot.engines)
        self.state = replace(
            self.state, snapshot=snapshot, up=up,
            results=probes.probe_results() if probes is not None else frame.probes.results(),
            findings=frame.findings, totals=frame.probes.totals, coverage=frame.probes.coverage,
            netio=aggregate(snapshot), rounds=frame.probes.rounds, collected_at=time.time(),
            probe_problem=self.producer.probe_problem, last_round_at=self.producer.last_round_at,
            kernels=frame.kernels).warm()
