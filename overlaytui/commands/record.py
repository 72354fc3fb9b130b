"""`overlaytui record FILE`: the cluster's frames into a recording, for `--replay` (a talk, a post-mortem).

Frames are collected as the dashboard collects them (events trigger a poll at once, every engine is re-read every
--reconcile seconds) and written every --every seconds: a keyframe every --keyframe seconds, deltas between, and
the timeline's moments. With --probe, probe agents measure the overlays as in the dashboard (removed at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

from ..analysis.thresholds import LossThresholds
from ..frame import Frame, FrameBuilder
from ..model import NO_PROBES, Health
from ..probes.session import ProbeError, ProbeSession, ProbeSettings, ProbeState
from ..recording import KEYFRAME_EVERY, REDACTABLE, RecordedFrame, Recorder, RecordingError
from ..sources.base import ClusterSource
from ..sources.demo import SCENARIOS
from .common import (
    RECONCILE,
    add_endpoint_flags,
    add_probe_flags,
    bounded,
    endpoints_from_args,
    interrupt_on_sigterm,
    kinds_from_args,
    probe_image,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record", help="record the cluster's frames to a file, for --replay",
        description="Collect the cluster as the dashboard does and write its frames (nodes, services, tasks, "
        "networks, container stats, probe results, the underlay MTUs) and the timeline to FILE as JSON Lines: "
        "a keyframe every --keyframe seconds, what changed in between. FILE.gz is gzip-compressed, FILE.zst "
        "zstd (with the zstandard package). Environment values and secrets are never written; labels are. "
        "Replay with `overlaytui --replay FILE`, `snapshot --replay FILE --at T`, `doctor --replay FILE --at T`. "
        "Size: see README (Recording and replay). Ends after --duration, or on Ctrl-C / SIGTERM (exit 0).")
    parser.add_argument("file", metavar="FILE", help="the recording to create (never over an existing file)")
    parser.add_argument("--duration", type=_duration, metavar="D",
                        help="stop after D (90, 90s, 10m, 2h; default: until interrupted)")
    parser.add_argument("--every", type=bounded(float, 0.2, 3600, " s"), default=1.0, metavar="S",
                        help="seconds between frames (default 1; events add a frame at once)")
    parser.add_argument("--keyframe", type=bounded(float, 1, 86400, " s"), default=KEYFRAME_EVERY, metavar="S",
                        help=f"seconds between full frames (default {KEYFRAME_EVERY:g}; seeking replays at most "
                        "this much; more where a keyframe takes long to write: keyframes cost at most ~5 %% of a "
                        "core)")
    parser.add_argument("--redact", default="", metavar="KINDS",
                        help=f"replace these names with stable pseudonyms: any of {','.join(REDACTABLE)} "
                        "(ids, addresses and labels stay)")
    parser.add_argument("--demo", nargs="?", const="healthy", choices=list(SCENARIOS), metavar="SCENARIO",
                        help="record the simulated cluster (see `overlaytui --help`)")
    parser.add_argument("--seed", type=bounded(int, 0, 2**31, ""), default=1, help="the demo's seed (default 1)")
    parser.add_argument("--probe", action="store_true",
                        help="measure the overlays while recording (labelled agents, removed at the end)")
    parser.add_argument("--probe-every", type=bounded(float, 1, 86400, " s"), default=30.0, metavar="S",
                        help="seconds between probe rounds (default 30)")
    add_probe_flags(parser, "ping,mtu", 50, "image of the probe agents (see `probe --help`)")
    add_endpoint_flags(parser)
    parser.set_defaults(handler=main)


def _duration(text: str) -> float:
    from .common import parse_at

    try:
        seconds = parse_at(text, 0.0, 10 * 365 * 86400.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (90, 90s, 10m, 2h)") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return seconds


def main(args: argparse.Namespace) -> int:
    redact = [k.strip() for k in args.redact.split(",") if k.strip()]
    if any(k not in REDACTABLE for k in redact):
        print(f"overlaytui record: --redact takes {','.join(REDACTABLE)}", file=sys.stderr)
        return 2
    args.redact_kinds = redact
    source: ClusterSource
    if args.demo:
        from ..sources.demo import DemoSource

        source = DemoSource(args.demo, seed=args.seed)
    else:
        args.kinds = kinds_from_args(args, "record")
        endpoints = endpoints_from_args(args) if args.kinds is not None else None
        if endpoints is None:
            return 2
        from ..sources.swarm import DockerSwarmSource

        source = DockerSwarmSource(endpoints, call_timeout=args.timeout, **args.source_options)
    try:
        recorder = Recorder(args.file, source=source.name, keyframe_every=args.keyframe, redact=redact)
    except RecordingError as exc:
        print(f"overlaytui record: {exc}", file=sys.stderr)
        return 2
    interrupt_on_sigterm()
    run = Run(source, recorder, args)
    try:
        code = asyncio.run(run.main())
    except KeyboardInterrupt:
        code = run.code()
    finally:
        recorder.close()
    run.report()
    return code


class Run:
    def __init__(self, source: ClusterSource, recorder: Recorder, args: argparse.Namespace) -> None:
        self.source = source
        self.recorder = recorder
        self.args = args
        self.builder = FrameBuilder(LossThresholds(), lab=args.lab)
        self.session: ProbeSession | None = None
        self.problem = ""
        self.answered = False
        self.started = time.monotonic()
        self.failure = ""
        self.latest: Frame | None = None  # what probing plans on (the source's snapshot is built in one thread)
        self._first = asyncio.Event()

    def code(self) -> int:
        if self.failure or (not self.answered and not self.args.demo):
            return 2
        return 0

    def report(self) -> None:
        path = Path(self.args.file)
        size = path.stat().st_size if path.exists() else 0
        seconds = time.monotonic() - self.started
        line = (f"overlaytui record: {self.recorder.frames} frames ({self.recorder.keyframes} keyframes) in "
                f"{seconds:.0f} s to {path}, {size / 1024:.0f} KiB")
        if self.failure:
            line += f"; {self.failure}"
        elif not self.answered and not self.args.demo:
            line += "; no engine answered: the frames say why"
        print(line, file=sys.stderr)

    async def main(self) -> int:
        try:
            await self.source.start()
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback
            self.failure = f"cannot collect: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            return 2
        if self.args.probe and not self.source.endpoints:
            print(f"overlaytui record: not probing {self.source.name}: its probe results are its own, recorded as "
                  "they are", file=sys.stderr)
        probing = asyncio.create_task(self._probe()) if self.args.probe and self.source.endpoints else None
        try:
            await self._record()
        finally:
            if probing is not None:
                probing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await probing
            if self.session is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.session.close(), 60)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.source.close(), 5)
        return self.code()

    async def _record(self) -> None:
        deadline = None if self.args.duration is None else time.monotonic() + self.args.duration
        next_reconcile = time.monotonic() + RECONCILE
        while True:
            state = self.session.state() if self.session is not None else None
            frame = await asyncio.to_thread(self._write, state, self.problem)
            self.latest = frame
            self._first.set()
            self.answered = self.answered or any(e.health is Health.OK for e in frame.snapshot.engines)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            changed = await self.source.wait_for_change(self.args.every if left is None else
                                                        min(self.args.every, left))
            if changed or time.monotonic() >= next_reconcile:
                await self.source.poll()
                next_reconcile = time.monotonic() + RECONCILE

    def _write(self, state: ProbeState | None, problem: str) -> Frame:
        """In a thread: build the frame, write it and the moments since the previous one."""
        probes = state.data(problem) if state is not None else (self.source.probes() or NO_PROBES)
        frame = self.builder.build(self.source.snapshot(), probes)
        self.recorder.write(RecordedFrame(frame.snapshot, frame.probes, frame.underlay_mtus))
        for moment in frame.moments:
            self.recorder.moment(moment)
        self.recorder.flush()
        return frame

    def _latest_snapshot(self):
        assert self.latest is not None  # probing starts after the first frame
        return self.latest.snapshot

    async def _probe(self) -> None:
        """Probing as in the dashboard: agents deployed once, a round every --probe-every seconds."""
        args = self.args
        await self._first.wait()
        session = ProbeSession(self._latest_snapshot, ProbeSettings(
            kinds=args.kinds, networks=tuple(args.network), count=args.count, interval=args.interval,
            image=probe_image(args)), self.source.endpoints, call_timeout=args.timeout)
        try:
            await session.start()
        except ProbeError as exc:
            self.problem = str(exc)
            print(f"overlaytui record: not probing: {exc}", file=sys.stderr)
            await session.close()
            return
        self.session = session
        while True:
            for line in session.new_problems():
                print(f"overlaytui record: {line}", file=sys.stderr)
            try:
                await session.run_round()
                self.problem = ""
            except Exception as exc:  # noqa: BLE001 - a failed round is said, recorded, and tried again
                self.problem = f"a probe round failed: {type(exc).__name__}: {str(exc)[:200]}"
                print(f"overlaytui record: {self.problem}", file=sys.stderr)
            await asyncio.sleep(args.probe_every)
