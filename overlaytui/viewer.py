"""A viewer of `overlaytui serve`: the dashboard of one browser tab, inside the serve process.

Every tab is a `ViewerApp` (the dashboard, read-only) on a thread and an event loop of its own, showing the serve
producer's frames as they come through the `FrameFeed` — the same immutable objects for every tab: one decoded
cluster in memory, no copy per tab. Its pane, filter, theme and selection are its own. Its terminal is the
browser's: `TabDriver` is a Textual driver speaking textual-serve's browser protocol through a `Tab` (the serve
process's side: the websocket's bytes out, keys and resizes in). It is read-only toward the cluster and toward the
serving host: no probing (the serve process probes, once for every viewer; with `serve --viewer-probe-control` P
asks it to start), no polling, no recording, no screenshot files, no theme saved into the config.

Why a thread per tab: one tab's slow render (a first visit of a pane at 200 nodes) takes its turns at the
interpreter lock with the others (a switch every 5 ms) instead of holding a shared loop, so neither the other tabs
nor the serve loop (the producer, the websockets) wait for it; an exception in one ends that tab only.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rich.color import ColorSystem
from textual import events, messages, work
from textual._xterm_parser import XTermParser
from textual.driver import Driver
from textual.geometry import Size
from textual.message import Message

from .app import TABS, FrameReady, OverlayApp, SourceFailed
from .feed import FrameFeed
from .model import ClusterSnapshot, ProbeData

PANES = tuple(tab for tab, _label in TABS)
# files on the serving host (screenshot: Textual's own action), the cluster
READ_ONLY = {"record", "save_screenshot", "screenshot", "start_probes", "refresh"}
OUTPUT_BEHIND = 16 << 20  # bytes of screen a tab may leave unsent (its browser not reading) before it is closed
INPUT_KEPT = 64 << 10  # characters of keys kept for a viewer still starting
ESCAPE_TICK = 0.15  # seconds after input when a lone escape is taken as the escape key (Textual waits 0.1 s)


class ServedSource:
    """A viewer's source: the serve process's, seen through its feed — its name, the latest frame; no engines
    (a viewer never deploys agents), no playback (a replay is played by serve, for every viewer)."""

    endpoints: tuple = ()
    playback = None

    def __init__(self, feed: FrameFeed, name: str) -> None:
        self.feed = feed
        self.name = name

    async def start(self) -> None:
        return None

    async def poll(self) -> None:
        return None

    async def wait_for_change(self, timeout: float) -> bool:
        await asyncio.sleep(timeout)
        return False

    def snapshot(self) -> ClusterSnapshot:
        frame = self.feed.latest()[1]
        if frame is None:
            raise RuntimeError("no frame from the serve process yet")
        return frame.snapshot

    def probes(self) -> ProbeData | None:
        frame = self.feed.latest()[1]
        return frame.probes if frame is not None else None

    def underlay_mtus(self, addresses: Iterable[str] = ()) -> Mapping[str, int]:
        frame = self.feed.latest()[1]
        return frame.underlay_mtus if frame is not None else {}

    async def close(self) -> None:
        return None


class Said(Message):
    """A line of the serve producer's (a toast)."""

    def __init__(self, severity: str, text: str) -> None:
        self.severity = severity
        self.text = text
        super().__init__()


class Tab:
    """One browser tab's terminal, between the serve loop (its websocket: made there, `input`, `resize`, `focus`,
    `close` and `output_chunks` run there) and its viewer's thread (the driver: `attach`, `output`, `ended`)."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.behind = False  # closed because its browser left too much of its screen unsent
        self._lock = threading.Lock()
        self._driver: TabDriver | None = None
        self._parser = XTermParser()
        self._input: list[str] = []  # keys before the viewer is ready
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._pending = 0  # bytes queued for the websocket
        self._tick: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ the viewer's thread

    def attach(self, driver: TabDriver) -> None:
        with self._lock:
            self._driver, closed = driver, self.closed
        if closed:
            driver.quit()
        else:
            self._hop(self._replay_input)

    def output(self, data: bytes) -> None:
        self._hop(self._queue, data)

    def ended(self) -> None:
        """The viewer's app stopped: the websocket closes after what it drew."""
        self._hop(self._chunks.put_nowait, None)

    def _hop(self, callback: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the serve loop has closed
            self.loop.call_soon_threadsafe(callback, *args)

    # ------------------------------------------------------------------------ the serve loop

    def _queue(self, data: bytes) -> None:
        if self.behind:
            return
        self._pending += len(data)
        if self._pending > OUTPUT_BEHIND:
            self.behind = True
            self._chunks.put_nowait(None)
            self.close()
            return
        self._chunks.put_nowait(data)

    async def output_chunks(self):
        """What the viewer draws, for the websocket, until it ends (or its browser fell too far behind)."""
        while (data := await self._chunks.get()) is not None:
            self._pending -= len(data)
            yield data

    def input(self, text: str) -> None:
        driver = self._driver
        if driver is None:
            if sum(map(len, self._input)) < INPUT_KEPT:
                self._input.append(text)
            return
        for event in self._parser.feed(text):
            driver.process_message(event)
        if self._tick is None:
            self._tick = self.loop.call_later(ESCAPE_TICK, self._ticked)

    def _ticked(self) -> None:
        self._tick = None
        driver = self._driver
        if driver is not None:
            for event in self._parser.tick():
                driver.process_message(event)

    def _replay_input(self) -> None:
        waiting, self._input = self._input, []
        for text in waiting:
            self.input(text)

    def resize(self, width: int, height: int) -> None:
        self.size = (width, height)
        driver = self._driver
        if driver is not None:
            driver.resized(width, height)

    def focus(self, focused: bool) -> None:
        driver = self._driver
        if driver is not None:
            driver.post(events.AppFocus() if focused else events.AppBlur())

    def close(self) -> None:
        """The browser left: its viewer quits (its thread ends on its own once it has)."""
        with self._lock:
            self.closed, driver = True, self._driver
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if driver is not None:
            driver.quit()


class TabDriver(Driver):
    """A Textual driver whose terminal is a browser tab (xterm.js in textual-serve's page) of the serve process:
    what the app draws goes to the tab's websocket, one message per screen update; keys, resizes and focus come
    from it. The escape sequences are textual-serve's web driver's."""

    def __init__(self, app: Any, *, debug: bool = False, mouse: bool = True,
                 size: tuple[int, int] | None = None) -> None:
        tab: Tab = app.tab
        super().__init__(app, debug=debug, mouse=mouse, size=size or tab.size)
        self.tab = tab
        self._out: list[str] = []

    @property
    def is_web(self) -> bool:
        return True

    def write(self, data: str) -> None:
        self._out.append(data)

    def flush(self) -> None:
        if self._out:
            data = "".join(self._out).encode("utf-8", "replace")
            self._out.clear()
            self.tab.output(data)

    def start_application_mode(self) -> None:
        self.write("\x1b[?1049h")  # the alternate screen
        self.write("\x1b[?1000h\x1b[?1003h\x1b[?1015h\x1b[?1006h")  # mouse: clicks, motion, SGR coordinates
        self.write("\x1b[?25l")  # no cursor
        self.write("\x1b[?2026$p")  # does the terminal synchronise updates?
        self.write("\x1b[?2004h")  # bracketed paste
        self.flush()
        size = Size(*(self._size or self.tab.size))
        self._app.post_message(events.Resize(size, size))
        self._app.call_later(self._app.post_message, events.AppBlur())  # until the browser says it has focus
        self.tab.attach(self)

    def disable_input(self) -> None:
        return None

    def stop_application_mode(self) -> None:
        self.flush()
        self.tab.ended()

    # from the serve loop (thread-safe: a message posted from another thread is handed to the app's loop)

    def resized(self, width: int, height: int) -> None:
        self._size = (width, height)
        size = Size(width, height)
        self.post(events.Resize(size, size))

    def post(self, message: Message) -> None:
        with contextlib.suppress(RuntimeError):  # the app's loop has closed
            self._app.post_message(message)

    def quit(self) -> None:
        self.post(messages.ExitApp())


class ViewerApp(OverlayApp):
    """The dashboard on the serve process's frames (`feed`), read-only; with `tab`, in a browser tab."""

    def __init__(self, feed: FrameFeed, *, name: str = "", tab: Tab | None = None, pane: str = "topology",
                 probe_control: bool = False, **options) -> None:
        source = ServedSource(feed, name)
        super().__init__(source, persist_config=False, underlay=source.underlay_mtus, **options)
        self.feed = feed
        self.history = feed.history  # serve's, for every viewer (fed once per frame)
        self.tab = tab
        self.start_pane = pane if pane in PANES else "topology"
        self.probe_control = probe_control  # serve --viewer-probe-control: P asks the serve process to probe
        self._shown = asyncio.Event()
        if tab is not None:
            self.driver_class = TabDriver
            self.console._color_system = ColorSystem.TRUECOLOR  # xterm.js (textual-serve sets it in the env)
            # Textual redirects sys.stdout/sys.stderr to the running app, process-wide: with several apps in
            # one process the last to stop would leave them on a gone one. Redirected to the real streams, they
            # stay the real streams whatever the order.
            self._capture_stdout = sys.__stdout__ or sys.stdout  # type: ignore[assignment]
            self._capture_stderr = sys.__stderr__ or sys.stderr  # type: ignore[assignment]

    def on_mount(self) -> None:
        super().on_mount()
        if self.start_pane != "topology":
            self.action_show_tab(self.start_pane)

    @work(exclusive=True, group="collect")
    async def collect(self) -> None:
        """The serve producer's frames, the newest each time this viewer has shown the one before."""
        following = self.feed.follow(self._said)
        try:
            async for frame in following.frames():
                self._shown.clear()
                self.post_message(FrameReady(frame))
                await self._shown.wait()
        finally:
            following.close()
        if self.feed.failure:
            self.post_message(SourceFailed(self.feed.failure.removeprefix("cannot collect: ")))

    def on_frame_ready(self, message: FrameReady) -> None:
        try:
            super().on_frame_ready(message)
        finally:
            self._shown.set()

    def _said(self, severity: str, text: str) -> None:
        """From the serve loop: a producer line, handed to this app's loop."""
        with contextlib.suppress(RuntimeError):
            self.post_message(Said(severity, text))

    def on_said(self, message: Said) -> None:
        self._say(message.severity, message.text)

    def _poll(self) -> None:
        return None  # the serve process polls, for every viewer

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A viewer's keys change what it shows, never the cluster or the serving host."""
        if action == "start_probes" and self.probe_control:
            return True
        if action in READ_ONLY:
            return False
        return super().check_action(action, parameters)

    def action_start_probes(self) -> None:
        """P with serve --viewer-probe-control: the serve process starts probing (once, for every viewer)."""
        if not self.probe_control:
            return
        if self.feed.control("start_probing"):
            self.notify("asked the serve process to probe; the results come in pane 4", timeout=4)
        else:
            self.notify("the serve process is stopping", severity="error")

    async def action_quit(self) -> None:
        self.exit()  # this tab only: the serve process and its producer go on

    def get_system_commands(self, screen):
        """Textual's palette commands but its Screenshot (an SVG into the serving user's downloads directory)."""
        return (command for command in super().get_system_commands(screen) if command.title != "Screenshot")

    def _deliver_binary(self, binary, **_options) -> str | None:
        """Nothing a viewer asks for is saved on the serving host: Textual's file deliveries (its palette's
        Screenshot wrote an SVG into the serving user's ~/Downloads for any browser tab, again and again)."""
        with contextlib.suppress(Exception):
            binary.close()
        self.notify("nothing is saved on the serving host from a browser viewer", severity="warning", timeout=4)
        return None


def run_viewer(make_app: Callable[[], ViewerApp], done: Callable[[str], None]) -> threading.Thread:
    """A viewer on a thread and an event loop of its own; `done(error)` when it has stopped (error: "" or one
    line)."""
    def run() -> None:
        error = ""
        try:
            app = make_app()
            asyncio.run(app.run_async())
            if app._exception is not None:
                error = f"{type(app._exception).__name__}: {app._exception}"
        except Exception as exc:  # noqa: BLE001 - one viewer failing is said; the serve process goes on
            error = f"{type(exc).__name__}: {exc}"
        finally:
            done(error.splitlines()[0][:300] if error else "")
    thread = threading.Thread(target=run, name="overlaytui-viewer", daemon=True)
    thread.start()
    return thread
