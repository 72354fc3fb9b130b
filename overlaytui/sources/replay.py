"""A recording played back as a cluster source: the dashboard, `snapshot` and `doctor` read it as they read the
live cluster, at the recording's own times.

The position moves with the clock times `speed` while playing; pause, step and seek move it by hand. The position
is the recording's time (Unix seconds): the status bar shows it, and "data N s old" is measured against it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..model import ClusterSnapshot, Moment, NodeKernel, ProbeData
from ..recording import RecordedFrame, Recording, load


class ReplaySource:
    endpoints: tuple = ()  # no engines behind a recording: its probe results are the recorded ones

    def __init__(self, path: str | Path, *, speed: float = 1.0, at: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.speed = speed
        self._start_at = at  # recording time to start at (None: its start)
        self._clock = clock
        self.recording: Recording | None = None
        self._position = 0.0  # recording time when last anchored
        self._anchor = 0.0  # clock time of that anchor
        self.playing = True
        self._index = -1
        self._frame: RecordedFrame | None = None
        self.seeked = True  # the position jumped (loaded, seek, step): the app rebuilds the chart's history

    @property
    def name(self) -> str:
        return f"replay: {self.path.name}"

    # ------------------------------------------------------------------------------------- interface

    async def start(self) -> None:
        """Read the recording (in a thread: a long one takes a moment), unless it was handed over already;
        RecordingError says why it cannot."""
        if self.recording is None:
            self.load(await asyncio.to_thread(load, self.path))

    def load(self, recording: Recording) -> None:
        self.recording = recording
        recording.lenient = True  # a damaged record is shown (an engine in error) and playing goes on
        start = recording.start if self._start_at is None else self._start_at
        self._position = min(max(start, recording.start), recording.end)
        self._anchor = self._clock()

    async def poll(self) -> None:
        return None  # nothing to read: the position decides the frame

    async def wait_for_change(self, timeout: float) -> bool:
        """Until the next recorded frame is due at this speed (True), or `timeout` (False)."""
        recording = self.recording
        if recording is None or not self.playing:
            await asyncio.sleep(timeout)
            return False
        index = recording.index_at(self.position)
        if index + 1 >= len(recording):
            await asyncio.sleep(timeout)
            return False
        due = (recording.times[index + 1] - self.position) / self.speed
        if due > timeout:
            await asyncio.sleep(timeout)
            return False
        await asyncio.sleep(max(0.0, due))
        return True

    def snapshot(self) -> ClusterSnapshot:
        return self.frame().snapshot

    def probes(self) -> ProbeData:
        """The probe data of the frame `snapshot()` gave (playing on between the two calls must not mix
        frames)."""
        return (self._frame or self.frame()).probes

    def underlay_mtus(self) -> dict[str, int]:
        return dict((self._frame or self.frame()).underlay_mtus)

    def kernels(self) -> tuple[NodeKernel, ...]:
        return (self._frame or self.frame()).kernels

    # -------------------------------------------------------------------------------------- playback

    @property
    def playback(self) -> ReplaySource | None:
        """Its own playback controls, once the recording is loaded."""
        return self if self.recording is not None else None

    @property
    def start_t(self) -> float:
        return self.recording.start if self.recording is not None else 0.0

    @property
    def end_t(self) -> float:
        return self.recording.end if self.recording is not None else 0.0

    @property
    def moments(self) -> Sequence[Moment]:
        return self.recording.moments if self.recording is not None else ()

    def take_jump(self) -> bool:
        jumped, self.seeked = self.seeked, False
        return jumped

    def snapshots_before(self, t: float, seconds: float, budget: float) -> list[ClusterSnapshot]:
        """The recorded snapshots of the `seconds` before `t`. Reaching `t` means going forward from its
        keyframe anyway; going back beyond that keyframe is done only when it costs little (at 5000 tasks a
        recorded frame takes ~0.8 s to rebuild, and then they start at the keyframe)."""
        recording = self.recording
        if recording is None:
            return []
        last = recording.index_at(t)
        first = recording.index_at(t - seconds)
        key = recording.keyframe_at(last)
        if first < key and recording.delta_cost * (last - first) > budget:
            first = key
        return [recording.frame(index).snapshot for index in range(first, last)]

    async def close(self) -> None:
        return None

    # -------------------------------------------------------------------------------------- position

    @property
    def position(self) -> float:
        """The recording time shown now (stops at the end)."""
        recording = self.recording
        if recording is None:
            return 0.0
        if not self.playing:
            return self._position
        moved = self._position + (self._clock() - self._anchor) * self.speed
        if moved >= recording.end:
            self._position, self.playing = recording.end, False  # the end: playback stops there
            return recording.end
        return moved

    def frame(self) -> RecordedFrame:
        recording = self.recording
        if recording is None:
            raise RuntimeError("the recording is not loaded (start() first)")
        index = recording.index_at(self.position)
        if index != self._index or self._frame is None:
            self._frame, self._index = recording.frame(index), index
        return self._frame

    @property
    def index(self) -> int:
        return self.recording.index_at(self.position) if self.recording is not None else 0

    def _anchor_at(self, position: float) -> None:
        recording = self.recording
        if recording is None:
            return
        if abs(position - self._position) > 1e-9 and not (self.playing and position >= self._position):
            self.seeked = True
        self._position = min(max(position, recording.start), recording.end)
        self._anchor = self._clock()

    def pause(self) -> None:
        self._anchor_at(self.position)
        self.playing = False

    def play(self) -> None:
        if self.recording is not None and self.position >= self.recording.end:
            self._anchor_at(self.recording.start)  # at the end: play from the start again
        else:
            self._anchor_at(self.position)
        self.playing = True

    def toggle(self) -> bool:
        """Pause or play; True when playing now."""
        if self.playing:
            self.pause()
        else:
            self.play()
        return self.playing

    def seek(self, t: float) -> None:
        """To recording time `t` (clamped to the recording), playing or not as before."""
        self._anchor_at(t)

    def step(self, frames: int) -> None:
        """Pause, then move by `frames` recorded frames (negative: back)."""
        recording = self.recording
        if recording is None:
            return
        self.pause()
        index = min(max(recording.index_at(self._position) + frames, 0), len(recording) - 1)
        self._anchor_at(recording.times[index])
