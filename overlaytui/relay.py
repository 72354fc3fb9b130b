"""The relay: one producer's frames streamed to viewer processes (`overlaytui serve`'s browser tabs).

A unix socket in a private directory (mode 0700: only this user reaches it). Each frame the producer builds is
encoded once (`recording.FrameEncoder`, the recording format) and written to every viewer connected: a header
line, then a keyframe for a viewer that has none yet, then the deltas. A viewer whose socket is too far behind
(a stalled process) skips frames and gets a keyframe once it has caught up; it never holds the producer back.
Besides frames the stream carries `{"type": "say"}` (the producer's lines) and `{"type": "failure"}` (the
producer could not start): records a recording's reader skips. Viewers say nothing, except with
`serve --viewer-probe-control`: a `{"type": "control", "action": "start_probing"}` line (the viewer's P).

Encoding runs in a thread of its own, the newest frame first: a frame that arrives while one is being encoded
replaces the one waiting. Without viewers nothing is encoded (at 200 nodes a frame's keyframe is ~230 MiB of
JSON and takes seconds to encode).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .frame import Frame
from .recording import FORMAT, FrameEncoder, RecordedFrame

CONTROLS = ("start_probing",)  # what a viewer may ask of the serve process, when serve allows it
BEHIND_MIN = 64 << 20  # bytes a viewer's socket may hold unread before it skips frames (or 2 keyframes' worth)


@dataclass
class _Viewer:
    writer: asyncio.StreamWriter
    keyed: bool = False  # it has a keyframe: deltas apply
    skipped: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class FrameRelay:
    """Serve frames to viewers. `sink(frame)` is the producer's sink (the frame thread); `start()` listens,
    `close()` stops (the directory is removed)."""

    def __init__(self, source_name: str, *, directory: Path | None = None,
                 on_control: Callable[[str], None] | None = None) -> None:
        self.source_name = source_name
        self.on_control = on_control  # a viewer's request (one of CONTROLS); None: viewers are read-only
        self._own_dir = directory is None
        self.directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="overlaytui-"))
        os.chmod(self.directory, 0o700)
        self.path = self.directory / "relay.sock"
        self.viewers: list[_Viewer] = []
        self.frames = 0  # frames encoded
        self.failure = ""
        self._encoder = FrameEncoder()
        self._encoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlaytui-relay")
        self._key_text: bytes | None = None  # the last frame encoded, whole (for viewers that join)
        self._key_size = 0
        self._waiting: Frame | None = None
        self._latest: Frame | None = None  # the newest frame the producer built
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._task: asyncio.Task | None = None
        self._header = (json.dumps({"type": "header", "format": FORMAT, "overlaytui": __version__,
                                    "source": source_name}) + "\n").encode()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_unix_server(self._connected, path=str(self.path))
        os.chmod(self.path, 0o600)
        self._task = asyncio.ensure_future(self._run())

    # ---------------------------------------------------------------------------------------- frames in

    def sink(self, frame: Frame) -> None:
        """The producer's sink (its frame thread): the newest frame waits for the encoder."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closing
            loop.call_soon_threadsafe(self._arrived, frame)

    def _arrived(self, frame: Frame) -> None:
        self._waiting = frame
        self._wake.set()

    def say(self, severity: str, text: str) -> None:
        """A producer line to every viewer (on the event loop)."""
        self._broadcast(_line({"type": "say", "severity": severity, "text": text}))

    def fail(self, text: str) -> None:
        """The producer could not start: every viewer (and each that joins) is told."""
        self.failure = text
        self._broadcast(_line({"type": "failure", "text": text}))

    def _broadcast(self, data: bytes) -> None:
        for viewer in list(self.viewers):
            self._send(viewer, data)

    async def _run(self) -> None:
        """The one sender of frames (so each viewer gets a keyframe, then the deltas after it, in order): on a
        new frame, the deltas to the viewers that have a keyframe; then a keyframe to those that have none."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            frame, self._waiting = self._waiting, None
            if frame is not None:
                self._latest = frame
            if not self.viewers:  # nobody watches: nothing encoded (the next viewer starts a new encoder)
                self._encoder, self._key_text = FrameEncoder(), None
                continue
            if frame is None and self._encoder.sections is None:
                frame = self._latest  # a viewer joined while nobody watched: the latest frame, now
            if frame is not None:
                try:
                    delta = await loop.run_in_executor(self._encoding, self._encode, frame)
                except Exception as exc:  # noqa: BLE001 - a frame that cannot be encoded: said, then a fresh start
                    self.say("error", f"the relay could not encode a frame: {type(exc).__name__}: {exc}"[:300])
                    self._encoder, self._key_text = FrameEncoder(), None
                    for viewer in self.viewers:
                        viewer.keyed = False  # a keyframe of the next frame, from the new encoder
                    continue
                self.frames += 1
                for viewer in list(self.viewers):
                    if not viewer.keyed:
                        continue
                    if self._behind(viewer):
                        viewer.keyed = False  # skips this frame; a keyframe once it has caught up
                        viewer.skipped += 1
                    else:
                        self._send(viewer, delta)
            if self._encoder.sections is None:
                continue
            unkeyed = [v for v in self.viewers if not v.keyed and not self._behind(v)]
            if unkeyed:
                key = await self._key()
                for viewer in unkeyed:
                    if viewer in self.viewers:
                        self._send(viewer, key)
                        viewer.keyed = True

    def _encode(self, frame: Frame) -> bytes:
        self._encoder.encode(RecordedFrame(frame.snapshot, frame.probes, frame.underlay_mtus))
        self._key_text = None
        return _line(self._encoder.delta())

    async def _key(self) -> bytes:
        """The last frame encoded, as a keyframe (dumped once per frame however many viewers join)."""
        key = self._key_text
        if key is None:
            key = await asyncio.get_running_loop().run_in_executor(
                self._encoding, lambda: _line(self._encoder.key()))
            self._key_text, self._key_size = key, len(key)
        return key

    def _behind(self, viewer: _Viewer) -> bool:
        transport = viewer.writer.transport
        return transport.get_write_buffer_size() > max(BEHIND_MIN, 2 * self._key_size)

    # --------------------------------------------------------------------------------------- viewers out

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        viewer = _Viewer(writer)
        self.viewers.append(viewer)
        try:
            writer.write(self._header)
            if self.failure:
                writer.write(_line({"type": "failure", "text": self.failure}))
            self._wake.set()  # a keyframe of the latest frame now, not at the next one
            while line := await reader.readline():  # its end (EOF) is its leaving
                self._asked(line)
        except (OSError, ValueError):  # ValueError: a line beyond the reader's limit
            pass
        finally:
            self._drop(viewer)

    def _asked(self, line: bytes) -> None:
        """A viewer's request (`{"type": "control", "action": "start_probing"}`): handed to `on_control` when
        serve allows viewers to control probing, else ignored (viewers are read-only toward the cluster)."""
        if self.on_control is None:
            return
        with contextlib.suppress(ValueError):
            request = json.loads(line)
            if type(request) is dict and request.get("type") == "control" and request.get("action") in CONTROLS:
                self.on_control(request["action"])

    def _send(self, viewer: _Viewer, data: bytes) -> None:
        try:
            viewer.writer.write(data)
        except (OSError, RuntimeError):
            self._drop(viewer)

    def _drop(self, viewer: _Viewer) -> None:
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        viewer.writer.close()
        viewer.closed.set()

    async def close(self) -> None:
        """Stop listening, close every viewer's stream, remove the directory."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._server is not None:
            self._server.close()
        for viewer in list(self.viewers):
            self._drop(viewer)
        self._encoding.shutdown(wait=False)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _line(record: dict) -> bytes:
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
