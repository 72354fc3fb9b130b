"""`overlaytui` with no subcommand: the dashboard, on real engines or (--demo) on the simulated cluster."""

from __future__ import annotations

import argparse
import sys

from .. import memory
from ..flags import LIMITS_HELP, RECONCILE, add_threshold_flags
from .common import (
    add_deep_flags,
    add_demo_flags,
    add_endpoint_flags,
    add_window_flag,
    bounded,
    faults_from_args,
    recording_limits,
    settings_from_args,
    source_from_args,
    underlay_reader,
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dashboard")
    add_demo_flags(group)
    group.add_argument("--theme", help="overlaytui-dark (default), overlaytui-light, overlaytui-high-contrast, "
                                       "or any Textual theme; the choice made with t is remembered")
    group.add_argument("--interval", type=bounded(float, 0.1, 3600, " s"), default=1.0, metavar="S",
                       help="refresh every S seconds (default 1)")
    group.add_argument("--reconcile", type=bounded(float, 0.5, 86400, " s"), default=RECONCILE, metavar="S",
                       help="re-read every engine at least every S seconds (events trigger it sooner; default 15)")
    group.add_argument("--timeout", type=bounded(float, 0.1, 600, " s"), default=5.0, metavar="S",
                       help="timeout of each engine call")
    group.add_argument("--probe", action="store_true",
                       help="start probing at launch (else press P): a labelled probe agent on each overlay, removed "
                            "on exit; loss, RTT and path MTU between every pair of nodes")
    group.add_argument("--probe-image", metavar="IMAGE",
                       help="image of the probe agents (default nicolaka/netshoot; the lab's image with --lab; env "
                       "OVERLAYTUI_PROBE_IMAGE; config probe_image)")
    group.add_argument("--probe-iperf", action="store_true",
                       help="also measure throughput (iperf3, 3 s per pair) every 10th probe round: opt-in, low duty")
    add_window_flag(group, "--probe-window")
    add_deep_flags(group, "every 30 s")
    add_threshold_flags(group)
    group.add_argument("--probe-every", type=bounded(float, 1, 86400, " s"), default=30.0, metavar="S",
                       help="seconds between probe rounds (default 30; a round takes about 20 s)")
    group.add_argument("--replay", metavar="FILE",
                       help="the dashboard on a recording (`overlaytui record`, R): space plays/pauses, , and . "
                       "step a frame, [ and ] seek 10 s, { and } 60 s; the status bar shows the recording's time")
    group.add_argument("--speed", type=bounded(float, 0.1, 1000, "x"), default=1.0, metavar="X",
                       help="replay X times as fast as recorded (default 1)")
    group.add_argument("--at", metavar="T", help="start the replay at T: an offset (90s, 5m, -30s from the end), a "
                       "time of day (14:03:10) or an ISO time")
    group.add_argument("--recording-limits", metavar="NAME=N,...", type=recording_limits, help=LIMITS_HELP)
    group.add_argument("--tour", action="store_true",
                       help="a booth's scripted walk through the panes with captions, looping; where faults are "
                       "offered (the demo, the lab as root, serve --presenter) it injects loss on a node, shows "
                       "where it appears and clears it. Any key stops it")
    add_endpoint_flags(parser)


def main(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, "")
    if settings is None:
        return 2
    if args.replay:
        from ..recording import RecordingError, load
        from ..sources.replay import ReplaySource
        from .common import parse_at

        try:
            recording = load(args.replay)
            at = parse_at(args.at, recording.start, recording.end) if args.at else None
        except (RecordingError, ValueError) as exc:
            print(f"overlaytui: {exc}", file=sys.stderr)
            return 2
        source = ReplaySource(args.replay, speed=args.speed, at=at)
        source.load(recording)
    elif args.at:
        print("overlaytui: --at needs --replay FILE", file=sys.stderr)
        return 2
    else:
        found = source_from_args(args)
        if found is None:
            return 2
        source = found
    from ..app import OverlayApp
    from ..probes.session import ProbeSettings

    memory.keep_less()  # before the app's threads start
    app = OverlayApp(source, interval=args.interval, reconcile=args.reconcile, settings=settings,
                     theme=args.theme, probe_settings=ProbeSettings(
                         image=settings.probe_image, start=args.probe, iperf_every_rounds=10,
                         window_s=settings.window_s,
                         kinds=("ping", "mtu", "discovery", *(("iperf",) if args.probe_iperf else ()))),
                     probe_every=args.probe_every, freeze_gc=True, underlay=underlay_reader(args),
                     faults=faults_from_args(args, source), tour=args.tour)
    app.run()
    if app.return_code:  # Textual sets it on an unhandled exception (and has printed the traceback)
        return app.return_code
    if app.failure:
        print(f"overlaytui: {app.failure}", file=sys.stderr)
        return 2
    return 0
