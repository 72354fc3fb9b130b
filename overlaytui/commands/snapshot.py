"""`overlaytui snapshot`: one consistent snapshot of every engine, with real rates (two stats samples)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..model import ClusterSnapshot, Health, NodeKernel
from ..sources.swarm import DockerSwarmSource
from .common import (
    add_deep_flags,
    add_demo_flags,
    add_endpoint_flags,
    add_replay_flags,
    bounded,
    interrupt_on_sigterm,
    recorded_frame,
    say_on_stderr,
    settings_from_args,
    source_from_args,
    underlay_reader,
)

if TYPE_CHECKING:
    from ..sources.base import ClusterSource


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "snapshot",
        help="print one snapshot of the cluster (JSON or a readable summary)",
        description="Collect nodes, services, tasks, networks and container stats from every engine given, "
        "and print them once (or every --watch seconds). Rates come from two stats samples --interval apart. "
        "Exit 0 when something could be shown, 2 when nothing could (bad endpoint, no engine answered).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (schema: docs/snapshot-schema.md)")
    parser.add_argument("--interval", type=bounded(float, 0.5, 60, " s"), default=1.0, metavar="S",
                        help="seconds between the two stats samples rates come from (default 1; the engine "
                             "samples once a second)")
    parser.add_argument("--watch", type=bounded(float, 0.5, 86400, " s"), metavar="S",
                        help="repeat every S seconds until interrupted")
    parser.add_argument("--timeout", type=bounded(float, 0.1, 600, " s"), default=5.0, metavar="S",
                        help="timeout of each engine call")
    add_deep_flags(parser, "once (every 30 s with --watch); the nodes' kernels are in the JSON")
    add_endpoint_flags(parser)
    add_demo_flags(parser)
    add_replay_flags(parser, "with --replay: the snapshot at T (default: the recording's last frame).")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if settings_from_args(args, "snapshot") is None:
        return 2
    if args.replay:
        frame = recorded_frame(args, "snapshot")
        return 2 if frame is None else _print(frame.snapshot, args.json, frame.kernels)
    if args.at:
        print("overlaytui snapshot: --at needs --replay FILE", file=sys.stderr)
        return 2
    source = source_from_args(args, stats_window=args.interval, events=args.watch is not None)
    if source is None:
        return 2
    interrupt_on_sigterm()  # SIGTERM takes the Ctrl-C path: the producer closed, exit 130 (was killed outright)
    try:
        return asyncio.run(_run(args, source))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside the command's own coroutine
        return 130


async def _run(args: argparse.Namespace, source: ClusterSource) -> int:
    if isinstance(source, DockerSwarmSource):
        # its first poll starts the stats streams, whose two samples take two engine ticks (~2 s): the producer's
        # modules load within them, not before them (Producer.start waits for this start, and says why it failed)
        source.begin()
        await asyncio.sleep(0)  # one turn of the loop: its first poll's jobs are in the pool now
    from ..producer import Producer

    producer = Producer(source, thresholds=args.settings.thresholds, underlay=underlay_reader(args),
                        interval=args.watch, deep=args.settings.deep_settings(), call_timeout=args.timeout,
                        say=say_on_stderr("snapshot"))
    loop = None
    try:
        if not await producer.start():
            print(f"overlaytui snapshot: {producer.failure}", file=sys.stderr)
            return 2
        if isinstance(source, DockerSwarmSource):
            # two samples per container; bounded: the engine ticks once a second, a stream starts on a tick
            await source.wait_for_stats(timeout=args.interval + 2.5)
        if args.watch is None:
            frame = (await producer.frame_now()).frame
            return _print(frame.snapshot, args.json, frame.kernels)
        loop = asyncio.ensure_future(producer.run())  # a frame every --watch seconds, polls on events
        code = 2
        async for update in producer.updates():
            code = _print(update.frame.snapshot, args.json, update.frame.kernels)
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
        await producer.close()


def _print(snapshot: ClusterSnapshot, as_json: bool, kernels: Sequence[NodeKernel] = ()) -> int:
    """`kernels`: the nodes' kernel views (`--deep`): in the JSON when read."""
    # an engine that never answered (an error, or a stale one with no data at all: it stalls) shows nothing
    reachable = [e for e in snapshot.engines if e.health is not Health.ERROR and e.updated_at is not None]
    if not reachable:
        reasons = "; ".join(f"{e.endpoint}: {e.message or e.health.value}" for e in snapshot.engines)
        print(f"overlaytui: no engine answered: {reasons}", file=sys.stderr)
        return 2
    from ..export import snapshot_to_dict, summary_text

    if as_json:
        json.dump(snapshot_to_dict(snapshot, kernels or None), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(summary_text(snapshot))
    sys.stdout.flush()
    for problem in snapshot.problems:
        if as_json:
            print(f"overlaytui: {problem}", file=sys.stderr)
    return 0
