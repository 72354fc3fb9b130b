"""The frames of another overlaytui process as a cluster source: a viewer of `overlaytui serve`.

`overlaytui serve` runs one producer (the engine connections, the stats streams, the probe agents) and relays
each frame it builds, in the recording format (a header, a keyframe, then deltas: `recording.FrameEncoder`), over
a unix socket in a private directory. Every browser tab is a dashboard process on a `RelaySource`: its snapshot
and probe results are the latest relayed frame's; it has no engines (`endpoints` is empty: a viewer never deploys
probe agents) and no playback. When the serve process goes away, the last frame stays, with an engine in error
that says so; a producer that could not start is this source's start failing with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from ..model import ClusterSnapshot, Engine, Health, ProbeData
from ..recording import FrameDecoder, RecordedFrame, RecordingError, default_limits
from ..safe import one_line

RELAY_ENDPOINT = "overlaytui serve"  # the endpoint of the engine in error when the relay is gone
RELAY_LINE_LIMIT = 1 << 30  # one record, at most: the socket is the serve process's own (a 0700 directory); a
# keyframe at 200 nodes / 5000 tasks with every pair probed is ~230 MiB, beyond a recording file's default limit
START_WAIT = 300.0  # seconds a viewer waits for the first frame (a 200-node demo's first keyframe takes a while)


def release_memory() -> None:
    """Freed heap back to the system (glibc's malloc_trim; nothing elsewhere): a keyframe parsed is a transient
    peak several times the frame it makes."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class RelayError(Exception):
    """The relay cannot be reached, or the producer behind it could not start."""


class RelaySource:
    endpoints: tuple = ()  # viewers never talk to engines: the serve process does, once for all of them
    playback = None  # a live stream (a replay served is played by the serve process)

    def __init__(self, path: str | Path, *, name: str = "", start_wait: float = START_WAIT) -> None:
        self.path = Path(path)
        self.start_wait = start_wait
        self.source_name = name  # the serve process's source (its stream's header says it too)
        self.on_say: Callable[[str, str], None] | None = None  # the serve's producer lines (a viewer's toasts)
        self.gone = ""  # why the relay stopped (the serve process ended): shown as an engine in error
        self.frames = 0  # frames received
        self._frame: RecordedFrame | None = None
        self._taken: RecordedFrame | None = None  # the frame `snapshot()` gave (probes() answers from the same)
        self._failure = ""
        self._changed = asyncio.Event()
        self._first = asyncio.Event()
        self._reader_task: asyncio.Task | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = FrameDecoder()

    @property
    def name(self) -> str:
        return self.source_name or "overlaytui serve"

    # ------------------------------------------------------------------------------------- interface

    async def start(self) -> None:
        """Connect and wait for the first frame (RelayError: no relay there, or its producer failed)."""
        limit = max(RELAY_LINE_LIMIT, default_limits().line_mb << 20)
        try:
            reader, self._writer = await asyncio.open_unix_connection(str(self.path), limit=limit)
        except OSError as exc:
            raise RelayError(f"cannot reach the serve process at {one_line(self.path)}: "
                             f"{one_line(exc.strerror or exc)}") from None
        self._reader_task = asyncio.ensure_future(self._read(reader))
        try:
            await asyncio.wait_for(self._first.wait(), self.start_wait)
        except TimeoutError:
            raise RelayError(f"no frame from the serve process within {self.start_wait:g} s") from None
        if self._frame is None:
            raise RelayError(self._failure or self.gone or "the serve process sent no frame")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "the serve process stopped"
        try:
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    break  # the end, or cut short: the serve process ended mid-record
                keyframe = await self._take(line)
                del line
                if keyframe:  # its JSON (~1 GB parsed, at 200 nodes) goes back to the system
                    await asyncio.to_thread(release_memory)
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:  # ValueError: a line beyond the limit
            why = f"the relay failed: {one_line(exc)[:200]}"
        self.gone = why
        self._first.set()
        self._changed.set()

    async def _take(self, line: bytes) -> bool:
        """One record; True when it was a keyframe. Parsed and decoded off the UI's loop (a keyframe of a large
        cluster takes seconds)."""
        try:
            kind, record, frame = await asyncio.to_thread(self._decode, line)
        except RecordingError as exc:
            self._say("warning", f"a relayed frame could not be read: {one_line(exc)[:200]}")
            return False
        if frame is not None:
            self._frame = frame
            self.frames += 1
            self._first.set()
            self._changed.set()
        elif kind == "header":
            self.source_name = str(record.get("source") or "")
        elif kind == "failure":
            self._failure = str(record.get("text") or "the producer failed")
            self._first.set()
        elif kind == "say":
            self._say(str(record.get("severity") or "information"), str(record.get("text") or ""))
        return kind == "key"

    def _decode(self, line: bytes) -> tuple[str, dict, RecordedFrame | None]:
        try:
            record = json.loads(line)
        except ValueError:
            return "", {}, None
        if type(record) is not dict:
            return "", {}, None
        kind = str(record.get("type"))
        if kind in ("key", "delta"):
            return kind, {}, self._decoder.feed(record)
        return kind, record, None

    def _say(self, severity: str, text: str) -> None:
        if self.on_say is not None and text:
            self.on_say(severity, text)

    async def control(self, action: str) -> bool:
        """Ask the serve process for `action` (`start_probing`); it acts only when started with
        --viewer-probe-control. False when the relay is gone."""
        writer = self._writer
        if writer is None or self.gone:
            return False
        try:
            writer.write((json.dumps({"type": "control", "action": action}) + "\n").encode())
            await asyncio.wait_for(writer.drain(), 5)
        except (OSError, TimeoutError):
            return False
        return True

    async def poll(self) -> None:
        return None  # nothing to read: frames come when the serve process builds them

    async def wait_for_change(self, timeout: float) -> bool:
        """Until a frame arrives or the relay goes (True), or `timeout` (False)."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
        came = changed.is_set()
        changed.clear()
        return came

    def snapshot(self) -> ClusterSnapshot:
        frame = self._frame
        if frame is None:
            raise RuntimeError("no relayed frame yet (start() first)")
        self._taken = frame
        snapshot = frame.snapshot
        if self.gone:
            lost = Engine(endpoint=RELAY_ENDPOINT, health=Health.ERROR, message=self.gone,
                          hostname="overlaytui serve", updated_at=snapshot.taken_at)
            snapshot = dataclasses.replace(snapshot, engines=(*snapshot.engines, lost),
                                           problems=(*snapshot.problems, f"{self.gone}: the last frame it sent"))
        return snapshot

    def probes(self) -> ProbeData:
        """The probe data of the frame `snapshot()` gave."""
        frame = self._taken or self._frame
        return frame.probes if frame is not None else ProbeData()

    def underlay_mtus(self) -> dict[str, int]:
        """The underlay MTUs the serve process knew (this viewer's host may not be the one it runs on)."""
        frame = self._taken or self._frame
        return dict(frame.underlay_mtus) if frame is not None else {}

    async def close(self) -> None:
        task, self._reader_task = self._reader_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
