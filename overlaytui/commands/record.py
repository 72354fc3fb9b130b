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

from ..analysis.findings import plural
from ..probes.session import ProbeSettings
from ..producer import FrameRecorder, Producer
from ..recording import KEYFRAME_EVERY, REDACTABLE, Recorder, RecordingError
from ..safe import printable
from ..settings import Settings
from ..sources.base import ClusterSource
from ..units import human_bytes
from .common import (
    add_deep_flags,
    add_demo_flags,
    add_endpoint_flags,
    add_probe_flags,
    bounded,
    demo_source,
    interrupt_on_sigterm,
    kinds_from_args,
    say_on_stderr,
    settings_from_args,
    source_from_args,
    underlay_reader,
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
    add_demo_flags(parser)
    parser.add_argument("--probe", action="store_true",
                        help="measure the overlays while recording (labelled agents, removed at the end)")
    parser.add_argument("--probe-every", type=bounded(float, 1, 86400, " s"), default=30.0, metavar="S",
                        help="seconds between probe rounds (default 30)")
    add_probe_flags(parser, "ping,mtu", 50, "image of the probe agents (see `probe --help`)")
    add_deep_flags(parser, "every 30 s")
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
    settings = settings_from_args(args, "record")
    if settings is None:
        return 2
    kinds = () if demo_source(args) else kinds_from_args(args, "record")
    source = source_from_args(args) if kinds is not None else None
    if source is None or kinds is None:
        return 2
    try:
        recorder = Recorder(args.file, source=source.name, keyframe_every=args.keyframe, redact=redact)
    except RecordingError as exc:
        print(f"overlaytui record: {exc}", file=sys.stderr)
        return 2
    interrupt_on_sigterm()
    run = Run(source, FrameRecorder(recorder), args, settings, kinds)
    try:
        code = asyncio.run(run.main())
    except KeyboardInterrupt:
        code = run.code()
    finally:
        run.recorder.close_now()
    run.report()
    return code


class Progress:
    """"recording: 42 frames, 1.3 MiB, 0m42s" on one line of a terminal's stderr, rewritten in place at most once a
    second; nothing when stderr is not a terminal (a pipe, a log, a test's captured output)."""

    def __init__(self, stream) -> None:
        self._stream = getattr(stream, "_raw", stream)  # past PrintableStream: the line's \r and erase are ours
        self.on = bool(getattr(stream, "isatty", lambda: False)())
        self._shown_at = -1.0

    def show(self, frames: int, path: Path, elapsed: float) -> None:
        if not self.on or elapsed - self._shown_at < 1.0:
            return
        self._shown_at = elapsed
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        minutes, seconds = divmod(int(elapsed), 60)
        line = f"recording {path}: {plural(frames, 'frame')}, {human_bytes(size)}, {minutes}m{seconds:02d}s " \
               "(Ctrl-C stops)"
        self._stream.write(f"\r\x1b[K{printable(line)}")
        self._stream.flush()

    def clear(self) -> None:
        """Erase the line before the closing report."""
        if self.on and self._shown_at >= 0:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


class Run:
    """The producer's frames into the recording (its sink, written by the recording's own thread), until
    --duration or an interrupt; with --probe, the producer probes as the dashboard does."""

    def __init__(self, source: ClusterSource, recorder: FrameRecorder, args: argparse.Namespace,
                 settings: Settings, kinds: tuple[str, ...]) -> None:
        self.args = args
        self.recorder = recorder
        self.producer = Producer(source, thresholds=settings.thresholds, underlay=underlay_reader(args),
                                 interval=args.every,
                                 probe=ProbeSettings(kinds=kinds, networks=tuple(args.network), count=args.count,
                                                     interval=args.interval, image=settings.probe_image,
                                                     window_s=settings.window_s),
                                 probe_every=args.probe_every, call_timeout=args.timeout,
                                 say=say_on_stderr("record"), deep=settings.deep_settings())
        self.producer.add_sink(recorder)
        self.started = time.monotonic()
        self.progress = Progress(sys.stderr)

    def code(self) -> int:
        """2 when the recording is not what was asked for: the source could not start, no engine ever answered,
        or the writer stopped (a full disk: what it wrote stays readable)."""
        if self.producer.failure or self.recorder.problem or (not self.producer.answered and self.producer.can_probe):
            return 2
        return 0

    def report(self) -> None:
        self.progress.clear()
        path = Path(self.args.file)
        size = path.stat().st_size if path.exists() else 0
        seconds = time.monotonic() - self.started
        keyframes = self.recorder.recorder.keyframes
        line = (f"overlaytui record: {self.recorder.frames} frames ({keyframes} keyframe"
                f"{'' if keyframes == 1 else 's'}) in {seconds:.0f} s to {path}, {size / 1024:.0f} KiB")
        if self.recorder.skipped:
            line += f"; {self.recorder.skipped} left out (the writer could not keep up)"
        failure = self.producer.failure or self.recorder.problem
        if failure:
            line += f"; {failure}"
        elif not self.producer.answered and self.producer.can_probe:
            line += "; no engine answered: the frames say why"
        print(line, file=sys.stderr)

    async def main(self) -> int:
        producer = self.producer
        if not await producer.start():
            return 2
        if self.args.probe and not producer.can_probe:
            print(f"overlaytui record: not probing {producer.source.name}: its probe results are its own, "
                  "recorded as they are", file=sys.stderr)
        elif self.args.probe:
            producer.start_probing()
        loop = asyncio.ensure_future(producer.run())
        try:
            await asyncio.wait_for(self._follow(), self.args.duration)
        except TimeoutError:
            pass  # --duration reached
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
            await producer.close()
        return self.code()

    async def _follow(self) -> None:
        """Until the recording fails (a full disk) or the producer stops (its source could not start)."""
        async for _update in self.producer.updates():
            self.progress.show(self.recorder.frames, Path(self.args.file), time.monotonic() - self.started)
            if self.recorder.problem:
                return
