"""The producer: the one loop from a cluster source (and the probe agents) to frames, for every consumer.

It owns
- collection: the source's start, then a poll on a change (an event, a poll asked for) or every `reconcile`
  seconds, and a frame every `interval`;
- the single frame thread: frames are built there, one at a time, off the event loop (only that thread calls
  the source's `snapshot()`); sinks (a recording) receive each frame there;
- the probe session's lifecycle: agents deployed once the first frame exists, kept (re-deployed when removed,
  nodes followed), rounds every `probe_every` seconds, a failed round said and tried again, agents removed on
  close (bounded);
- the deep view (`--deep`): every node's kernel read through its engine (sources/deep.py) once the first frame
  exists, then every `deep.every` seconds (a producer without an interval, a one-shot command's: once, before its
  first frame is handed out); the readings go to the frame builder, which parses them;
- the backlog policy: a consumer gets the newest frame; one that is slower than the producer skips frames,
  nothing queues.

The dashboard, `snapshot`, `doctor`, `probe`, `record` and the exporter are consumers: they say only what they do
with a frame. A replay is a source like the others; its playback controls are the source's `playback`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import memory
from .analysis.thresholds import LossThresholds
from .frame import Frame, FrameBuilder
from .model import ClusterSnapshot, ProbeData, ProbeResult
from .probes.session import ProbeError, ProbeSession, ProbeSettings, ProbeState
from .recording import RecordedFrame, Recorder, RecordingError
from .settings import RECONCILE
from .sources.base import ClusterSource
from .sources.deep import DeepReader, DeepSettings
from .sources.deepraw import NodeRaw

PROBE_START_WAIT = 60.0  # seconds probing waits for the first frame
PROBE_CLOSE_WAIT = 30.0  # removing the probe agents: one call to the manager per overlay
SOURCE_CLOSE_WAIT = 3.0  # closing the streams; what a stalled engine holds is left to the process exit
PROBE_RETRY_MAX = 300.0  # seconds between attempts to start probing, at most (when retrying)
DEEP_CLOSE_WAIT = 10.0  # seconds closing waits for a round's containers to be removed
DEEP_ROUND_WAIT = 180.0  # seconds a deep round is awaited at most (the reader bounds itself well within)
RECORD_BEHIND = 30  # frames a recording's writer may be behind before frames without a moment are left out

Say = Callable[[str, str], None]  # (severity: "information" | "warning" | "error", one line)


@dataclass(frozen=True)
class Update:
    """One frame as the producer hands it out: the frame, the probe state it was built from (None when nothing
    probes), whether the source jumped to it (a replay's seek: what changed is not "since the previous frame"),
    and what `prepare_jump` made for it in the frame thread."""

    frame: Frame
    probe_state: ProbeState | None = None
    jumped: bool = False
    prepared: object = None
    version: int = 0


class FrameRecorder:
    """A recording fed by the frame thread, written by a writer thread of its own (a keyframe of a large cluster
    takes seconds to write: recording never delays a frame). When the writer is RECORD_BEHIND frames behind,
    frames without a moment are left out and counted."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.problem = ""  # why recording stopped (a full disk), for the consumer to say
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlaytui-record")
        self._pending = 0
        self._lock = threading.Lock()
        self.stopped = False  # no more frames taken
        self._closed = False

    @property
    def path(self) -> Path:
        return self.recorder.path

    @property
    def frames(self) -> int:
        return self.recorder.frames

    @property
    def skipped(self) -> int:
        return self.recorder.skipped

    def __call__(self, frame: Frame) -> None:
        if self.stopped:
            return
        with self._lock:
            if self._pending >= RECORD_BEHIND and not frame.moments:
                self.recorder.skipped += 1
                return
            self._pending += 1
        self._writer.submit(self._write, frame)

    def _write(self, frame: Frame) -> None:
        try:
            if self.problem:  # the writer failed: what is still queued is dropped
                return
            self.recorder.write(RecordedFrame(frame.snapshot, frame.probes, frame.underlay_mtus, frame.kernels))
            for moment in frame.moments:
                self.recorder.moment(moment)
            self.recorder.flush()
        except (OSError, ValueError, RecordingError) as exc:  # a full disk: stop recording, say so
            self.problem = f"recording stopped: {exc}"
            self.stopped = True
            with contextlib.suppress(Exception):
                self.recorder.close()
        finally:
            with self._lock:
                self._pending -= 1

    def pending(self) -> int:
        with self._lock:
            return self._pending

    async def close(self, timeout: float = 10.0) -> None:
        """After the writes in flight; bounded (a stalled disk must not keep a command open)."""
        self.stopped = True
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(loop.run_in_executor(self._writer, self.recorder.close), timeout)
        self._writer.shutdown(wait=False)

    def close_now(self, timeout: float = 30.0) -> None:
        """Blocking close (no event loop), after the writes in flight; does nothing when closed already."""
        self.stopped = True
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._writer.submit(self.recorder.close).result(timeout=timeout)
        self._writer.shutdown(wait=False)


class Producer:
    def __init__(self, source: ClusterSource, *, thresholds: LossThresholds | None = None,
                 underlay: Callable[[Iterable[str]], Mapping[str, int]] | None = None,
                 interval: float | None = 1.0, reconcile: float = RECONCILE,
                 probe: ProbeSettings | None = None, probe_every: float = 30.0, call_timeout: float = 10.0,
                 retry_probing: bool = False, say: Say | None = None, builder: FrameBuilder | None = None,
                 prepare_jump: Callable[[float], object] | None = None,
                 on_update: Callable[[Update], None] | None = None, deep: DeepSettings | None = None) -> None:
        """
        - `underlay(addresses)`: the nodes' underlay MTUs where known (default: this host's NICs; a replay's are
          the recorded ones);
        - `interval`: seconds between frames (None: a frame only when asked, `refresh`);
        - `probe`: how to probe (None: never; `start_probing` starts it);
        - `retry_probing`: when probing cannot start, try again with backoff (the exporter) instead of waiting
          to be asked again (the dashboard's P);
        - `say`: where the producer's lines go (the dashboard's toasts, a command's stderr);
        - `prepare_jump(position)`: run in the frame thread before a frame the source jumped to (the dashboard
          rebuilds its chart's history there);
        - `on_update(update)`: called on the event loop with every frame (the dashboard posts it as a message);
        - `deep`: read every node's kernel (`--deep`; engines only: not the demo, nor a replay, which carries its
          own).
        """
        self.source = source
        playback = source.playback
        self.builder = builder or FrameBuilder(thresholds, underlay=(
            (lambda addresses: playback.underlay_mtus()) if playback is not None else underlay))
        self.interval = interval
        self.reconcile = reconcile
        self.probe_settings = probe
        self.probe_every = probe_every
        self.call_timeout = call_timeout
        self.retry_probing = retry_probing
        self._say = say or (lambda severity, text: None)
        self._prepare_jump = prepare_jump
        self._on_update = on_update
        self._frames = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlaytui-frame")  # one at a time
        self._sinks: list[Callable[[Frame], None]] = []
        self._probe_data: tuple[ProbeState | None, str, ProbeData] | None = None
        self._rounds_built = -1  # the probe rounds of the last frame built
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()  # poll now (r), or a probe round ended (a frame now, no poll needed)
        self._poll_asked = False
        self.latest: Update | None = None
        self.session: ProbeSession | None = None
        self.probe_focus: str | None = None  # the selected node (hostname): its pairs first in every round
        self.probe_problem = ""  # why probing failed or stopped (shown until probing works again)
        self.last_round_at: float | None = None
        self.failure = ""  # why the source could not start
        self.answered = False  # some engine answered at least once
        self.started = asyncio.Event()  # the source started (or failed to: see `failure`)
        self._probing: asyncio.Task | None = None
        self._version = 0
        self.deep = deep
        self.deep_raw: Mapping[str, NodeRaw] | None = None  # the latest round's readings (node id -> raw)
        self.last_deep_at: float | None = None
        self._deep_reader: DeepReader | None = None
        self._deep_task: asyncio.Task | None = None
        self._deep_once = False  # a producer without an interval read once
        self._deep_said: set[str] = set()
        self._deep_pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------------------------------ frames

    async def start(self) -> bool:
        """Start the source once; False (with `failure` set) when it cannot start at all."""
        if self.started.is_set():
            return not self.failure
        try:
            await self.source.start()
        except Exception as exc:  # noqa: BLE001 - a source that cannot start is one line, never a traceback
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.failure = f"cannot collect: {text}"
        if not self.failure and self.deep is not None and not self.can_read_deep:  # was taken without a word
            self._say("warning", "--deep: no engines to read the nodes' kernels through (the demo simulates none; a "
                      "replay shows the kernel views it recorded, if any)")
        self.started.set()
        return not self.failure

    async def run(self) -> None:
        """The loop: a frame now, then one every `interval` (a poll first when something changed or the
        reconcile is due). Returns if the source cannot start, or after the first frame when there is no
        interval (then `refresh` makes each further frame); cancel it to stop."""
        if not await self.start():
            async with self._changed:
                self._changed.notify_all()
            return
        next_reconcile = time.monotonic() + self.reconcile
        while True:
            await self.frame_now()
            if self.can_read_deep and self._deep_task is None and self.interval is not None:
                self._deep_task = asyncio.ensure_future(self._deep_loop())
            if self.interval is None:
                return
            poll = await self._wait(self.interval)
            if poll or time.monotonic() >= next_reconcile:
                await self.source.poll()
                next_reconcile = time.monotonic() + self.reconcile

    async def _wait(self, timeout: float) -> bool:
        """Until the source says something changed (True), a poll is asked for (True), a probe round ended
        (False: a frame, no poll), or `timeout` passed (False)."""
        waits = [asyncio.ensure_future(self._wake.wait()),
                 asyncio.ensure_future(self.source.wait_for_change(timeout))]
        try:
            done, _pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        asked, self._poll_asked = self._poll_asked, False
        self._wake.clear()
        if any(not t.cancelled() and t.exception() is not None for t in done):  # a source's wait that failed
            await asyncio.sleep(timeout)  # must not make the loop spin: the interval, then a frame
        return asked or any(t.result() is True for t in done if not t.cancelled() and t.exception() is None
                            and t is not waits[0])

    def poll_now(self) -> None:
        """Poll every engine and build a frame now (r in the dashboard; a replay that moved)."""
        self._poll_asked = True
        self._wake.set()

    def frame_soon(self) -> None:
        """A frame now, without polling (a probe round ended)."""
        self._wake.set()

    async def refresh(self) -> Update:
        """Poll every engine, then build a frame (without the loop: one-shot commands, a producer without an
        interval)."""
        await self.source.poll()
        return await self.frame_now()

    async def frame_now(self) -> Update:
        """Build a frame now (in the frame thread) and hand it to every consumer."""
        state = self.session.state() if self.session is not None else None
        playback = self.source.playback
        jumped = playback is not None and playback.take_jump()
        loop = asyncio.get_running_loop()
        prepared = None
        if jumped and self._prepare_jump is not None and playback is not None:
            prepared = await loop.run_in_executor(self._frames, self._prepare_jump, playback.position)
        frame = await loop.run_in_executor(self._frames, self.build_frame, state, self.probe_problem, jumped)
        self._version += 1
        update = Update(frame, state, jumped, prepared, self._version)
        self.latest = update
        self.answered = self.answered or any(e.updated_at is not None for e in frame.snapshot.engines)
        if self._on_update is not None:
            self._on_update(update)
        async with self._changed:
            self._changed.notify_all()
        if self.interval is None and self.can_read_deep and not self._deep_once:
            self._deep_once = True  # one-shot: the nodes read once, on this first frame's cluster
            if await self.deep_round() is not None:
                return await self.frame_now()
        return update

    def build_frame(self, state: ProbeState | None = None, problem: str = "", jumped: bool = False) -> Frame:
        """Blocking: one frame from the source's latest data, handed to the sinks (the frame thread calls it;
        tests and benchmarks call it directly)."""
        if jumped:
            self.builder.reset()
        snapshot = self.source.snapshot()
        cached = self._probe_data
        if cached is not None and cached[0] is state and cached[1] == problem and state is not None:
            probes = cached[2]
        elif state is not None:
            probes = state.data(problem)
        else:
            probes = self.source.probes() or ProbeData(problem=problem)
        self._probe_data = (state, problem, probes)
        playback = self.source.playback
        frame = self.builder.build(snapshot, probes, deep=self.deep_raw,
                                   kernels=playback.kernels() if playback is not None else None)
        if probes.rounds != self._rounds_built:  # a new round's checks just ran: their churn goes back now (at 200
            self._rounds_built = probes.rounds  # nodes ~25 MB, held until the app's next trim, up to 30 s, before)
            memory.trim_soon()
        for sink in list(self._sinks):
            sink(frame)
        return frame

    async def updates(self) -> AsyncIterator[Update]:
        """Every frame from now on, newest first: a consumer slower than the producer skips frames (it gets the
        newest when it asks again). Ends when the source could not start."""
        seen = [0]

        def newer() -> bool:
            return (self.latest is not None and self.latest.version > seen[0]) or bool(self.failure)
        while True:
            async with self._changed:
                await self._changed.wait_for(newer)
            update = self.latest
            if update is None or update.version <= seen[0]:
                return
            seen[0] = update.version
            yield update

    # ------------------------------------------------------------------------------------------- sinks

    def add_sink(self, sink: Callable[[Frame], None]) -> None:
        """`sink(frame)` is called in the frame thread with every frame built (it must be quick)."""
        self._sinks.append(sink)

    def remove_sink(self, sink: Callable[[Frame], None]) -> None:
        with contextlib.suppress(ValueError):
            self._sinks.remove(sink)

    def record(self, path: str | Path, *, source: str, **options) -> FrameRecorder:
        """Record every frame from now on (RecordingError when the file cannot be created)."""
        recorder = FrameRecorder(Recorder(path, source=source, **options))
        self.add_sink(recorder)
        return recorder

    async def stop_recording(self, recorder: FrameRecorder) -> None:
        self.remove_sink(recorder)
        await recorder.close()

    # --------------------------------------------------------------------------------------- deep view

    @property
    def can_read_deep(self) -> bool:
        """`--deep` on engines (the demo and a replay have none to read)."""
        return self.deep is not None and bool(self.source.endpoints)

    async def deep_round(self) -> Mapping[str, NodeRaw] | None:
        """Read every node's kernel now, on the latest frame's cluster (bounded: the reader bounds each engine call
        and the round); the next frame parses the readings. None when nothing was read (said why)."""
        latest = self.latest
        if not self.can_read_deep or latest is None or self.deep is None:
            return None
        if self._deep_reader is None:
            self._deep_reader = DeepReader(image=self.deep.image, call_timeout=self.call_timeout,
                                           tls={e.url: e.tls for e in self.source.endpoints if e.tls is not None})
            self._deep_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlaytui-deep-round")
        reader, loop = self._deep_reader, asyncio.get_running_loop()
        try:
            raw = await asyncio.wait_for(loop.run_in_executor(self._deep_pool, reader.read_nodes,
                                                              latest.frame.snapshot), DEEP_ROUND_WAIT)
        except Exception as exc:  # noqa: BLE001 - a failed round is said and tried again at the next one
            self._say_deep("warning", f"the deep view's round failed: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        removed, reader.removed = reader.removed, []
        if removed:
            self._say("information", f"removed deep-view readers left by an earlier run: {', '.join(removed)}")
        for node, reading in sorted(raw.items()):
            failed = reading.get("meta/error")
            if failed is not None:
                self._say_deep("warning", f"deep view: node {node}: {failed.err.splitlines()[0][:300]}")
        self.deep_raw, self.last_deep_at = raw, time.time()
        self.frame_soon()
        return raw

    def _say_deep(self, severity: str, line: str) -> None:
        if line not in self._deep_said and len(self._deep_said) < 100:  # each distinct line once, not every round
            self._deep_said.add(line)
            self._say(severity, line)

    async def _deep_loop(self) -> None:
        assert self.deep is not None
        while True:
            started = time.monotonic()
            await self.deep_round()
            await asyncio.sleep(max(1.0, self.deep.every - (time.monotonic() - started)))

    # ----------------------------------------------------------------------------------------- probing

    @property
    def can_probe(self) -> bool:
        """There are engines to deploy agents on (not the demo, not a replay: their probe results are their own)."""
        return bool(self.source.endpoints)

    @property
    def probing(self) -> bool:
        return self._probing is not None and not self._probing.done()

    def start_probing(self) -> asyncio.Task | None:
        """Probe in the background: agents deployed on the first frame's cluster, kept, a round every
        `probe_every` seconds, removed when probing stops (`stop_probing`, `close`). Nothing to do where the
        source carries its own probe results (None)."""
        if not self.can_probe:
            return None
        if self._probing is None or self._probing.done():
            self.probe_problem = ""
            self._probing = asyncio.ensure_future(self._probe_loop())
        return self._probing

    def _latest_snapshot(self) -> ClusterSnapshot:
        """What the probe session plans on: the latest frame's snapshot (the source's snapshot is built in the
        frame thread only)."""
        latest = self.latest
        assert latest is not None  # probing starts after the first frame
        return latest.frame.snapshot

    async def _first_frame(self) -> bool:
        if self.latest is not None:
            return True
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.latest is not None or bool(self.failure)),
                                       PROBE_START_WAIT)
        except TimeoutError:
            return False
        return self.latest is not None

    async def open_session(self) -> ProbeSession:
        """Deploy the agents (ProbeError says why not). The first frame must exist (frame_now, or run())."""
        if self.session is not None:
            return self.session
        if not await self._first_frame():
            raise ProbeError(f"no snapshot of the cluster within {PROBE_START_WAIT:g} s")
        session = ProbeSession(self._latest_snapshot, self.probe_settings or ProbeSettings(),
                               self.source.endpoints, call_timeout=self.call_timeout)
        try:
            await session.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), PROBE_CLOSE_WAIT)
            raise
        self.session = session
        if session.removed_leftovers:
            self._say("information", "removed probe agents left by an earlier run: "  # their lease lapsed
                      f"{', '.join(session.removed_leftovers)}")
        self._tell_problems()
        return session

    async def probe_round(self) -> list[ProbeResult]:
        """One round now (deploying the agents first if needed); a frame follows it. A source with probe results
        of its own (the demo, a recording) is read instead: the results of its latest frame."""
        if not self.can_probe:
            update = await self.refresh()
            return list(update.frame.probes.results())
        session = await self.open_session()
        for network in await session.keep_agents():
            self._say("warning", f"the probe agent on {network} was removed: deployed again")
        session.focus = self.probe_focus
        results = await session.run_round()
        self.last_round_at = time.time()
        self._tell_problems()
        self.frame_soon()
        return results

    def _tell_problems(self) -> None:
        if self.session is not None:
            for line in self.session.new_problems():
                self._say("warning", line)

    async def _probe_loop(self) -> None:
        delay = 5.0
        while self.session is None:
            try:
                await self.open_session()
            except ProbeError as exc:
                if not self.retry_probing:
                    self._probe_failed(str(exc))
                    return
                self._probe_failed(f"{exc}; trying again in {delay:g} s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, PROBE_RETRY_MAX)
            except Exception as exc:  # noqa: BLE001 - probing failing must never take a consumer down
                self._probe_failed(f"probing stopped: {type(exc).__name__}: {str(exc)[:200]}")
                return
        while True:
            started = time.monotonic()
            try:
                await self.probe_round()
                if self.probe_problem:
                    self.probe_problem = ""
                    self.frame_soon()
            except Exception as exc:  # noqa: BLE001 - a failed round is said, shown and tried again
                self._probe_failed(f"a probe round failed: {type(exc).__name__}: {str(exc)[:200]}")
            await asyncio.sleep(max(0.0, self.probe_every - (time.monotonic() - started)))

    def _probe_failed(self, reason: str) -> None:
        self.probe_problem = reason
        self._say("error", f"cannot probe: {reason}" if not reason.startswith(("probing", "a probe")) else reason)
        self.frame_soon()

    async def stop_probing(self) -> None:
        """Stop the rounds and remove the agents (bounded)."""
        task, self._probing = self._probing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        session, self.session = self.session, None
        if session is not None:
            try:
                await asyncio.wait_for(session.close(), PROBE_CLOSE_WAIT)
            except TimeoutError:
                self._say("warning", f"removing the probe agents timed out after {PROBE_CLOSE_WAIT:g} s (their "
                          "lease ends them)")
            except Exception:  # noqa: BLE001 - closing is best effort, bounded
                pass

    # ------------------------------------------------------------------------------------------- close

    async def close(self) -> bool:
        """Stop probing (agents removed), the sinks, the source: each bounded. True when agents were removed."""
        had_agents = self.session is not None
        task, self._deep_task = self._deep_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._deep_pool is not None:
            self._deep_pool.shutdown(wait=False, cancel_futures=True)
        if self._deep_reader is not None:  # a round in flight: its containers removed now (the process may exit next)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                    None, self._deep_reader.close, DEEP_CLOSE_WAIT), DEEP_CLOSE_WAIT + 2)
        await self.stop_probing()
        for sink in list(self._sinks):
            if isinstance(sink, FrameRecorder):
                await self.stop_recording(sink)
        try:
            await asyncio.wait_for(self.source.close(), SOURCE_CLOSE_WAIT)
        except Exception:  # noqa: BLE001 - a stalled engine's thread is left to the process exit
            pass
        self._frames.shutdown(wait=False)
        return had_agents
