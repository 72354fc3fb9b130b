"""The dashboard: one async Textual app over a cluster source (real engines, the simulated demo, a recording).

Data flows one way: the collection loop polls the source and has a Frame built off the UI loop (snapshot, NetIO
sums, probe results, findings) and posts it as one message; the app keeps the latest frame, the throughput
history and the selection, and hands a View of them to the visible pane only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from itertools import islice
from pathlib import Path

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Header, Input, Static, TabbedContent, TabPane

from . import memory
from .analysis.findings import plural
from .analysis.headline import Headline, headline
from .analysis.netio import sums
from .config import Config, save_config
from .frame import Frame, FrameBuilder
from .history import History
from .model import ClusterSnapshot, Fault, Moment
from .panes.common import Picked, Selection, View, palette_of
from .panes.details import DETAIL_SCREENS, DetailScreen, HelpScreen
from .panes.faults import DEFAULT_LOSS_PCT, DEFAULT_MTU, FaultChoice, FaultScreen, choices
from .panes.findings import FindingsPane
from .panes.footer import PrunedFooter
from .panes.health import HealthLine, tab_label
from .panes.livetable import LiveTable
from .panes.loss import LossPane
from .panes.netio import NetIOPane
from .panes.networks import NetworksPane
from .panes.placement import PlacementPane
from .panes.status import StatusBar
from .panes.timeline import MomentPicked, TimelinePane
from .panes.topology import TopologyPane
from .panes.tour import TOUR, TOUR_LOSS_PCT, Caption
from .probes.session import ProbeSession, ProbeSettings
from .producer import FrameRecorder, Producer, Update
from .recording import RecordingError
from .safe import display
from .settings import RECONCILE, Settings
from .sources.base import ClusterSource, FaultError, Faults, Playback
from .themes import DEFAULT_THEME, for_color_system, load_themes

TABS = [("topology", "1 Topology"), ("placement", "2 Placement"), ("netio", "3 NetIO"), ("loss", "4 Loss"),
        ("networks", "5 Networks"), ("findings", "6 Findings"), ("timeline", "7 Timeline")]
SHORT_TABS = {"topology": "1 Topo", "placement": "2 Place", "networks": "5 Nets", "timeline": "7 Time"}
NARROW = 100  # columns below which the tabs take their short names (all seven and their badges fit 80)
TIMELINE_KEPT = 2000  # moments the live dashboard keeps (a recording keeps them all)
MOMENT_FRAMES = 200  # frames kept for the newest moments (enter on one shows the cluster then)
REPLAY_HISTORY = 300.0  # seconds of recording fed to the NetIO chart after a seek (the chart's window)
REPLAY_HISTORY_BUDGET = 1.0  # seconds the frame thread may spend on that beyond reaching the frame itself
REPLAY_ONLY = {"replay_toggle", "replay_step", "replay_seek"}
LIVE_ONLY = {"start_probes", "refresh"}  # a replay shows what was recorded: nothing to probe or poll
FAULT_PANES = {"topology", "placement", "loss", "networks"}  # panes whose cursor names a fault's target
TOUR_CLEAR_WAIT = 20.0  # seconds the app's end waits for the tour's fault to be cleared (the lab's loss: ~1 s)


PaneWidget = TopologyPane | PlacementPane | NetIOPane | LossPane | NetworksPane | FindingsPane | TimelinePane
PANES: dict[str, type[PaneWidget]] = {
    "topology": TopologyPane, "placement": PlacementPane, "netio": NetIOPane, "loss": LossPane,
    "networks": NetworksPane, "findings": FindingsPane, "timeline": TimelinePane}


FULL_GC_EVERY = 30.0  # seconds between the dashboard's own full garbage collections (see _freeze_startup_objects)
# Python 3.14's incremental collector has no third threshold to hold full collections off with
HOLD_FULL_GC = sys.version_info < (3, 14)


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up (modules, the widget tree, styles, themes) out of the garbage
    collector's sight. Each snapshot's objects live about a second, so Python runs a full collection every few
    snapshots; at 5000 tasks one walked ~150k start-up objects and paused the UI for 75 ms, with them frozen
    it takes ~12 ms (bench/dashboard.py measures it). Only for the real process: frozen objects are never freed."""
    gc.collect()
    gc.freeze()


class _FullCollections:
    """Full collections on the dashboard's schedule instead of Python's. What is left to walk at 200 nodes after
    the freeze (~150k objects: the frame's, the tables', Textual's caches) still paused every thread for
    0.13-0.25 s several times a minute, and most key presses slower than 150 ms waited for one (bench/dashboard.py
    counts them). While an app holds them, generation 2's threshold is out of Python's reach and the app collects
    every FULL_GC_EVERY seconds, between its messages; the young generations are collected as before, and almost
    everything is freed by reference counting anyway, so cyclic garbage waits at most that long. Held per app,
    counted: the first holder's thresholds come back when the last one lets go."""

    held = 0
    saved: tuple[int, int, int] | None = None

    @classmethod
    def hold(cls) -> None:
        if cls.held == 0:
            cls.saved = gc.get_threshold()
            gc.set_threshold(cls.saved[0], cls.saved[1], 1 << 30)
        cls.held += 1

    @classmethod
    def release(cls) -> None:
        cls.held -= 1
        if cls.held == 0 and cls.saved is not None:
            gc.set_threshold(*cls.saved)

    @staticmethod
    def collect() -> None:
        gc.collect()
        memory.trim_soon()  # what the collection and a probe round's churn freed goes back to the system


class FrameReady(Message):
    """A new frame from the collection loop. Only the newest one matters: queued older ones are replaced."""

    def __init__(self, frame: Frame, history: History | None = None) -> None:
        self.frame = frame
        self.history = history  # a replay after a seek: the chart's history rebuilt up to the frame
        super().__init__()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FrameReady)


class SourceFailed(Message):
    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__()


class JumpCommands(Provider):
    """Command palette: jump to a node, service, network or container (opens its details)."""

    def _targets(self) -> Iterator[tuple[str, str, str]]:
        """(label, kind, key), made as they are read: the palette opens on the first 40 of 5,500 at 200 nodes."""
        app = self.app
        snap = app.snapshot if isinstance(app, OverlayApp) else None
        if snap is None:
            return
        yield from ((f"node {display(n.hostname)}", "node", n.id) for n in snap.nodes)
        yield from ((f"service {display(s.name)}", "service", s.name) for s in snap.services)
        yield from ((f"network {display(n.name)}", "network", n.name) for n in snap.networks if n.scope != "local")
        yield from ((f"container {display(c.name)}", "container", c.container_id) for c in snap.containers)


    def _open(self, kind: str, key: str) -> None:
        if isinstance(self.app, OverlayApp):
            self.app.open_detail(kind, key)

    async def discover(self) -> Hits:
        for label, kind, key in islice(self._targets(), 40):
            yield DiscoveryHit(Content(label), partial(self._open, kind, key), text=label,
                               help=f"open the {kind}'s details")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, kind, key in self._targets():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, _highlight(matcher, label), partial(self._open, kind, key), text=label,
                          help=f"open the {kind}'s details")


class ActionCommands(Provider):
    """Command palette: every action by name ("prob" finds the probe), each pane, and each theme (saved as `t`
    saves it)."""

    def _commands(self) -> list[tuple[str, str, str]]:
        """(label, action, help) for what applies now (a replay's keys only in a replay, as in the footer)."""
        app = self.app
        if not isinstance(app, OverlayApp):
            return []
        commands = []
        for binding in app.BINDINGS:
            if not isinstance(binding, Binding) or binding.action in ("command_palette", "quit"):
                continue
            action = binding.action.split("(", 1)[0]
            if app.check_action(action, ()) is False:
                continue
            if binding.action.startswith("show_tab"):
                label = f"pane {binding.key} {binding.description}"
            else:
                label = PALETTE_NAMES.get(binding.action, binding.description.lower())
            commands.append((label, binding.action, f"{binding.tooltip or binding.description} ("
                             f"{binding.key_display or binding.key})"))
        commands += [(f"theme {name}", f"set_theme({name!r})", "use this theme (saved, as t saves it)")
                     for name in app.available_themes]
        return commands

    def _run(self, action: str) -> None:
        self.app.call_later(self.app.run_action, action)

    async def discover(self) -> Hits:
        for label, action, help_text in self._commands():
            yield DiscoveryHit(Content(label), partial(self._run, action), text=label, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, action, help_text in self._commands():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, _highlight(matcher, label), partial(self._run, action), text=label, help=help_text)


class FaultCommands(Provider):
    """Command palette: the presenter's faults (`Faults`, handed to the app: the demo's, the lab's, or serve's
    with --presenter) on what the pane's cursor and the selection name, at the rates last used, and clearing
    them."""

    def _commands(self) -> list[tuple[str, Callable[[], None], str]]:
        app = self.app
        if not isinstance(app, OverlayApp) or app.faults is None or not app.check_action("fault", ()):
            return []
        commands: list[tuple[str, Callable[[], None], str]] = [
            ("fault: pick a fault and its rate…", app.action_fault, "the fault picker (f)")]
        loss, mtu = app.fault_values
        for choice in app.fault_choices():
            choice = choice.with_values(loss, mtu)
            label = display(choice.fault.describe() if choice.action == "inject" else choice.label())
            commands.append((f"fault: {label}", partial(app.apply_fault, choice),
                             "inject it now" if choice.action == "inject" else "clear them now"))
        return commands

    async def discover(self) -> Hits:
        for label, run, help_text in self._commands():
            yield DiscoveryHit(Content(label), run, text=label, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, run, help_text in self._commands():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, _highlight(matcher, label), run, text=label, help=help_text)


PALETTE_NAMES = {  # palette names that say what the action is (the footer's labels are one word)
    "start_probes": "probe: measure loss, latency and path MTU", "record": "record: start/stop recording",
    "next_theme": "theme: the next one", "save_screenshot": "screenshot: save an SVG",
    "filter": "filter the rows", "pause": "pause / resume", "refresh": "refresh: poll every engine now",
    "help": "help: every key", "clear": "clear the selection and the filter",
    "next_dimension": "NetIO by node / service / network",
    "fault": "fault: inject or clear one on the selected node, overlay, pair or service",
}


def _highlight(matcher, label: str) -> Content:
    """The matched characters of a label highlighted — without parsing the label as markup (Textual's
    `Matcher.highlight` does: a hostname with `[/]` in it crashed the palette)."""
    content = Content(label)
    score, offsets = matcher.fuzzy_search.match(matcher.query, label)
    for offset in offsets if score else ():
        if not label[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


class OverlayApp(App):
    TITLE = "overlaytui"
    CSS_PATH = "app.tcss"
    AUTO_FOCUS = "DataTable"  # not the (hidden) filter field
    COMMANDS = App.COMMANDS | {ActionCommands, JumpCommands, FaultCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="leave overlaytui"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("slash", "filter", "Filter", key_display="/", id="app.filter", tooltip="show only matching rows"),
        Binding("p", "pause", "Pause", id="app.pause", tooltip="stop/resume updating the panes"),
        Binding("P", "start_probes", "Probe", id="app.probe",
                tooltip="measure loss, latency and path MTU between every pair of nodes (deploys labelled agents)"),
        Binding("r", "refresh", "Refresh", id="app.refresh", tooltip="poll every engine now", show=False),
        Binding("t", "next_theme", "Theme", id="app.theme", tooltip="cycle the themes (remembered)", show=False),
        Binding("s", "save_screenshot", "Screenshot", id="app.screenshot", tooltip="save an SVG of the screen",
                show=False),
        Binding("d", "next_dimension", "NetIO by", id="app.dimension", show=False),
        Binding("f", "fault", "Fault", id="app.fault", show=False,
                tooltip="inject or clear a fault on the node, overlay, pair or service under the cursor (the demo; "
                "the lab as root; serve --presenter)"),
        Binding("escape", "clear", "Clear", id="app.clear", tooltip="clear the selection and the filter", show=False),
        *(Binding(str(i), f"show_tab('{tab}')", label.split(" ", 1)[1], id=f"app.tab.{tab}", show=False)
          for i, (tab, label) in enumerate(TABS, start=1)),
        Binding("ctrl+p", "command_palette", "Commands", id="app.palette",
                tooltip="every action by name; jump to a node, service, network or container"),
        Binding("colon", "command_palette", "Commands", key_display=":", id="app.palette.colon", show=False),
        Binding("R", "record", "Record", id="app.record",
                tooltip="start/stop recording the frames to overlaytui-TIME.jsonl.gz (replay: --replay FILE)"),
        Binding("space", "replay_toggle", "Play/pause", id="app.replay.toggle", tooltip="replay: play or pause"),
        Binding("comma", "replay_step(-1)", "Frame back", key_display=",", id="app.replay.back", show=False),
        Binding("full_stop", "replay_step(1)", "Frame on", key_display=".", id="app.replay.on", show=False),
        Binding("left_square_bracket", "replay_seek(-10)", "-10 s", key_display="[", id="app.replay.rew"),
        Binding("right_square_bracket", "replay_seek(10)", "+10 s", key_display="]", id="app.replay.fwd"),
        Binding("left_curly_bracket", "replay_seek(-60)", "-60 s", key_display="{", id="app.replay.rew60",
                show=False),
        Binding("right_curly_bracket", "replay_seek(60)", "+60 s", key_display="}", id="app.replay.fwd60",
                show=False),
    ]

    def __init__(
        self,
        source: ClusterSource,
        *,
        source_label: str = "",
        interval: float | None = 1.0,
        reconcile: float = RECONCILE,
        clock: Callable[[], float] = time.time,
        config: Config | None = None,
        theme: str | None = None,
        persist_config: bool = True,
        screenshot_dir: Path | None = None,
        probe_settings: ProbeSettings | None = None,
        probe_every: float = 30.0,
        freeze_gc: bool = False,
        builder: FrameBuilder | None = None,
        settings: Settings | None = None,
        underlay: Callable[[Iterable[str]], Mapping[str, int]] | None = None,
        faults: Faults | None = None,
        tour: bool = False,
    ) -> None:
        """`settings`: the user's (thresholds, theme, the config to save the theme into); without them, `config`
        (tests) or the defaults. The producer owns collection, frames, probing and recording; the app shows."""
        super().__init__()
        self._freeze_gc = freeze_gc
        self._holds_gc = False  # full collections held off on the app's own schedule (_FullCollections)
        self.source = source
        self.source_label = source_label or source.name
        self.interval = interval
        self.clock = clock
        self.config = settings.config if settings is not None else (config or Config())
        self.thresholds = settings.thresholds if settings is not None else self.config.loss
        self._requested_theme = theme or (settings.theme if settings else None) or self.config.theme \
            or DEFAULT_THEME
        self._persist = persist_config
        self.screenshot_dir = screenshot_dir or Path.cwd()
        self.frame: Frame | None = None
        self._headline: tuple[tuple, Headline] | None = None  # (the inputs it was made of, the headline)
        self._badges: dict[str, tuple] = {}  # tab -> the badge its label shows
        self.producer = Producer(source, thresholds=self.thresholds, underlay=underlay, interval=interval,
                                 reconcile=reconcile, probe=probe_settings, probe_every=probe_every,
                                 say=self._say, builder=builder, prepare_jump=self.replay_history,
                                 on_update=self._post_update,
                                 deep=settings.deep_settings() if settings is not None else None)
        self._recorder: FrameRecorder | None = None
        self.timeline: deque[Moment] = deque(maxlen=TIMELINE_KEPT)
        self._moment_frames: dict[float, Frame] = {}  # live: the frame of each of the newest moments
        self.shown_at: float | None = None  # live: the picked moment shown (paused) instead of the newest
        self.history = History()
        self._panes: dict[str, PaneWidget] = {tab: PANES[tab](id=f"pane-{tab}") for tab, _ in TABS}
        self.selection: Selection | None = None
        self.filter_text = ""
        self.paused = False
        self._own_themes: list[str] = []
        self.probe_settings = probe_settings
        self.faults = faults  # the presenter's controls (`f`), when the command handed some
        self.fault_values = (DEFAULT_LOSS_PCT, float(DEFAULT_MTU))  # the rates last used
        self.tour = tour  # --tour: the booth's scripted walk through the panes, until a key is pressed
        self.tour_pace = 1.0  # seconds per second of a step (tests make it short)
        self._tour_fault: Fault | None = None  # the fault the tour injected (cleared when it stops)
        self.failure = ""  # why the run failed (the source could not start): the command exits non-zero

    @property
    def playback(self) -> Playback | None:
        """A recording's playback controls (None on a live or simulated cluster)."""
        return self.source.playback

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every toast (the panes' too) shows its text as printable text, never as markup: messages carry names,
        errors and paths from the cluster or the user."""
        super().notify(display(message, limit=2000), title=display(title), severity=severity, timeout=timeout,
                       markup=False)

    def format_title(self, title: str, sub_title: str) -> Content:
        """"overlaytui | demo: loss". Textual's " — " was drawn glued to the name ("overlaytui—  demo"): the em
        dash is ambiguous-width, and SVG renderers move a span's leading space to its end. So: an ASCII bar, and
        no span that starts with a space (the space ends the title's span)."""
        if not sub_title:
            return Content(title)
        return Content.assemble(Content(f"{title} "), Content(f"| {sub_title}").stylize("dim"))

    # ------------------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield HealthLine(id="health")
        with TabbedContent(initial="topology", id="tabs"):
            for tab, label in TABS:
                with TabPane(label, id=tab):
                    yield self._panes[tab]
        yield Static(id="no-match")
        yield Caption(id="caption")
        yield Input(placeholder="filter: part of a name, subnet or image (enter keeps it, esc clears)",
                    id="filter")
        yield StatusBar(id="status")
        yield PrunedFooter(show_command_palette=False)  # ^p is in the bindings as "Jump": once, not twice

    def on_mount(self) -> None:
        for theme in load_themes():
            self.register_theme(for_color_system(theme, self.console.color_system))
            self._own_themes.append(theme.name)
        if self._requested_theme not in self.available_themes:
            self.notify(f"unknown theme {self._requested_theme!r}; using {DEFAULT_THEME}", severity="warning")
            self._requested_theme = DEFAULT_THEME
        self.theme = self._requested_theme
        self.theme_changed_signal.subscribe(self, self._theme_changed)  # after the first: only choices are saved
        self.sub_title = display(self.source_label)
        self._render_status()
        self.query_one(HealthLine).show(None)
        if self._freeze_gc:
            self.call_after_refresh(_freeze_startup_objects)
            if HOLD_FULL_GC:
                _FullCollections.hold()
                self._holds_gc = True
                self.set_interval(FULL_GC_EVERY, _FullCollections.collect, name="full garbage collection")
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._terminate)
        self.collect()
        if self.probe_settings is not None and self.probe_settings.start and self.producer.can_probe:
            self.producer.start_probing()
        if self.tour:
            self.play_tour()

    # ---------------------------------------------------------------------------------------- collection

    @property
    def snapshot(self) -> ClusterSnapshot | None:
        return self.frame.snapshot if self.frame is not None else None

    @work(exclusive=True, group="collect")
    async def collect(self) -> None:
        """The producer's loop (collection, the frame thread): its frames are posted as FrameReady."""
        await self.producer.run()
        if self.producer.failure:
            self.post_message(SourceFailed(self.producer.failure.removeprefix("cannot collect: ")))

    def _post_update(self, update: Update) -> None:
        history = update.prepared if isinstance(update.prepared, History) else None
        self.post_message(FrameReady(update.frame, history))

    @work(exclusive=True, group="collect")
    async def refresh_once(self) -> None:
        await self.producer.refresh()

    def _poll(self) -> None:
        """Poll every engine and show a frame now: the producer's loop does it; without one (no interval: a
        one-shot app, the tests) a worker does."""
        if self.interval is None:
            self.refresh_once()
        else:
            self.producer.poll_now()

    def build_frame(self) -> Frame:
        """Blocking: one frame from the source's latest data, as the producer builds it in its frame thread
        (tests and benchmarks call it directly)."""
        session = self.producer.session
        return self.producer.build_frame(session.state() if session is not None else None,
                                         self.producer.probe_problem)

    def replay_history(self, t: float) -> History:
        """Blocking (the frame thread, after a replay jumped): a History of the recorded frames of the
        REPLAY_HISTORY seconds before `t`: the chart shows what it would have shown had the replay played up to
        there."""
        history = History()
        playback = self.source.playback
        if playback is None:
            return history
        for snapshot in playback.snapshots_before(t, REPLAY_HISTORY, REPLAY_HISTORY_BUDGET):
            history.add(snapshot, sums(snapshot))
        return history

    @property
    def probe_session(self) -> ProbeSession | None:
        return self.producer.session

    @property
    def probe_problem(self) -> str:
        return self.producer.probe_problem

    @property
    def recorder(self) -> FrameRecorder | None:
        return self._recorder

    def _say(self, severity: str, text: str) -> None:
        """The producer's lines (from the event loop): toasts; a probing failure stays on screen too."""
        timeout = {"error": 15, "warning": 8}.get(severity, 4)
        self.notify(text, severity=severity, timeout=timeout)  # type: ignore[arg-type]
        if severity == "error":
            self.render_visible()
            self._render_status(self.view())

    def on_frame_ready(self, message: FrameReady) -> None:
        if self.paused or not self.is_running:  # (quitting: Textual is tearing the screens down)
            return
        frame = message.frame
        if message.history is not None:  # a replay after a seek: its own past, older or newer than before
            self.history = message.history
        elif self.frame is not None and frame.taken_at < self.frame.taken_at:
            return  # a late message: never replace newer data with older
        self.frame = frame
        self.history.add(frame.snapshot, frame.netio)
        if self.playback is None and frame.moments:
            self.timeline.extend(frame.moments)
            self._moment_frames[frame.taken_at] = frame
            for old in list(self._moment_frames)[:-MOMENT_FRAMES]:
                del self._moment_frames[old]
        recorder = self._recorder
        if recorder is not None and recorder.problem:
            self.notify(recorder.problem, severity="error", timeout=15)
            self._recorder = None
        self.render_visible()

    def on_source_failed(self, message: SourceFailed) -> None:
        self.failure = f"cannot collect: {message.error}"
        self.notify(self.failure, severity="error", timeout=30)

    # ------------------------------------------------------------------------------------------- render

    def view(self) -> View | None:
        if self.frame is None:
            return None
        playback = self.playback
        if playback is not None:
            timeline: Sequence[Moment] = playback.moments
            now_t: float | None = self.frame.taken_at
        else:
            timeline, now_t = tuple(self.timeline), self.shown_at
        return View(frame=self.frame, history=self.history, probe_problem=self.probe_problem,
                    selection=self.selection, filter_text=self.filter_text, thresholds=self.thresholds,
                    timeline=timeline, now_t=now_t, replaying=playback is not None,
                    headline=self.headline(self.frame))

    def headline(self, frame: Frame) -> Headline:
        """The frame's problems in words, the tabs' badges, what the findings name: made again only when the
        findings or the services changed (the same objects otherwise: nothing here grows with the tasks)."""
        snap = frame.snapshot
        key = (frame.findings, snap.services, snap.nodes, snap.networks)
        cached = self._headline
        if cached is None or any(a is not b for a, b in zip(cached[0], key, strict=True)):
            cached = self._headline = (key, headline(snap, frame.findings))
        return cached[1]

    def render_visible(self) -> None:
        view = self.view()
        if view is None or not self.is_running:  # quitting: the screens are going, a frame landing has nowhere to go
            return
        with self.batch_update():
            screen = self.screen
            if isinstance(screen, DetailScreen):
                screen.show(view)  # an open detail screen follows the data
            else:
                active = self.query_one(TabbedContent).active
                self._panes[active].show(view)
                self._show_no_match(active)
                if active != "loss":  # hidden panes are not rendered; this one judges new results ahead
                    self.query_one(LossPane).prepare(view)
            self.query_one(HealthLine).show(view)
            self._show_badges(view)
            self._render_status(view)

    def _show_no_match(self, tab: str) -> None:
        """A filter that leaves the pane's table empty says so (a blank table says nothing). The Findings pane
        says it itself; Topology keeps everything when the filter matches nothing."""
        notice = self.query_one("#no-match", Static)
        pane = self._panes[tab]
        empty = bool(self.filter_text) and tab not in ("findings", "topology") and all(
            table.row_count == 0 for table in pane.query(DataTable)) and all(
            len(table.row_keys) == 0 for table in pane.query(LiveTable))
        if empty:
            label = dict(TABS)[tab].split(" ", 1)[1]
            notice.update(Content.assemble(f"Nothing in {label} matches ",
                                           (display(self.filter_text), "bold"), ": esc clears the filter"))
        if notice.display != empty:
            notice.display = empty

    def _show_badges(self, view: View) -> None:
        """Each tab's label with its badge (problems and the worst of them), relabelled only when it changed."""
        badges = view.headline.badges if view.headline is not None else {}
        narrow = self.size.width < NARROW
        wanted = {tab: (badges.get(tab), self.theme, narrow) for tab, _ in TABS}
        if wanted == self._badges:
            return
        self._badges = wanted
        tabs = self.query_one(TabbedContent)
        colors = palette_of(self)
        for tab, label in TABS:
            shown = SHORT_TABS.get(tab, label) if narrow else label
            tabs.get_tab(tab).label = tab_label(shown, badges.get(tab), colors)

    def on_resize(self) -> None:
        view = self.view()
        if view is not None:
            self._show_badges(view)

    def _render_status(self, view: View | None = None) -> None:
        if not self.is_running:
            return
        playback = self.playback
        mode = ""
        if playback is not None:
            at = playback.position
            mode = (f"{'▶' if playback.playing else '⏸'} {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))} "
                    f"+{_span(at - playback.start_t)}/{_span(playback.end_t - playback.start_t)}"
                    + (f" {playback.speed:g}×" if playback.playing else ""))
        elif self.shown_at is not None:
            mode = f"⏸ showing {time.strftime('%H:%M:%S', time.localtime(self.shown_at))} (p: live)"
        if self.recorder is not None:
            mode = (mode + " " if mode else "") + f"● REC {self.recorder.frames}"
        now = playback.position if playback is not None else self.clock()
        self.query_one(StatusBar).show(view, now=now, interval=self.interval, paused=self.paused and not mode,
                                       source=self.source_label, mode=mode)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.render_visible()
        self._focus_pane()

    def _focus_pane(self) -> None:
        """Keys go to the visible pane's table (not to a hidden one)."""
        active = self.query_one(TabbedContent).active
        tables = self.query_one(f"#pane-{active}").query("DataTable, LiveTable")
        if tables:
            tables.first().focus()

    # -------------------------------------------------------------------------------------- selection

    def _select(self, selection: Selection | None) -> None:
        if selection is not None and self.snapshot is not None:
            selection = self._resolve(selection)
        self.selection = selection
        node = self.snapshot.nodes_by_id.get(selection.key) if selection is not None and selection.kind == "node" \
            and self.snapshot is not None else None
        self.producer.probe_focus = node.hostname if node is not None else None  # its pairs first when probing
        self.render_visible()

    def _resolve(self, selection: Selection) -> Selection:
        """Ids from the panes -> the names the other panes filter on, with a readable label."""
        snap = self.snapshot
        if snap is None:
            return selection
        if selection.kind == "node":
            node = snap.nodes_by_id.get(selection.key)
            return replace(selection, label=node.hostname if node else selection.key[:12])
        if selection.kind == "network":
            net = snap.networks_by_id.get(selection.key.split("@")[0]) or snap.network(selection.key)
            return Selection("network", net.name, net.name) if net else selection
        return selection

    def on_picked(self, message: Picked) -> None:
        if message.pane in ("topology", "findings", "loss"):
            self._select(message.selection)
            shown = self.selection or message.selection
            self.notify(f"showing {shown.describe()} in the other panes (esc: all)", timeout=3)
        else:
            self.open_detail(message.selection.kind, message.selection.key)

    def open_detail(self, kind: str, key: str) -> None:
        view = self.view()
        if view is None:
            return
        self.push_screen(DETAIL_SCREENS[kind](key, view))

    # ------------------------------------------------------------------------------------------ actions

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_pane()

    def action_help(self) -> None:
        rows = [(b.key_display or b.key, (b.description or b.action) + (f": {b.tooltip}" if b.tooltip else ""))
                for b in self.BINDINGS if isinstance(b, Binding)]
        rows += [("1-7", "switch pane"), ("enter", "details of the row / select node or overlay; on a moment "
                 "(pane 7): the cluster then"), ("d", "NetIO: per node / service / network"),
                 ("o O", "Loss: the next / previous overlay"),
                 ("space , . [ ] { }", "replay (--replay FILE): play/pause, a frame back/on, -10/+10 s, "
                  "-60/+60 s; p pauses too"),
                 ("^p :", "the command palette: every action by name (probe, record, theme, pane, screenshot, "
                  "filter, pause) and every node, service, network, container")]
        self.push_screen(HelpScreen(rows))

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.render_visible()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.input.display = False
        self._focus_pane()

    def action_clear(self) -> None:
        if self.shown_at is not None:
            self.action_pause()  # esc leaves a picked moment too
        field = self.query_one("#filter", Input)
        field.value = ""
        field.display = False
        self.filter_text = ""
        self._select(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The replay keys exist only in a replay (hidden from the footer otherwise); probing and polling the
        engines only where there are engines (hidden in a replay). R stays: in a replay it says why it does
        nothing."""
        if action in REPLAY_ONLY:
            return self.playback is not None
        if action in LIVE_ONLY:
            return self.playback is None
        if action == "fault":
            return self.faults is not None and self.playback is None
        return True

    def action_replay_toggle(self) -> None:
        if self.playback is None:
            return
        playing = self.playback.toggle()
        self._replay_moved("playing" if playing else "paused")

    def action_replay_step(self, frames: int) -> None:
        if self.playback is not None:
            self.playback.step(frames)
            self._replay_moved()

    def action_replay_seek(self, seconds: float) -> None:
        if self.playback is not None:
            self.playback.seek(self.playback.position + seconds)
            self._replay_moved()

    def seek_to(self, t: float) -> None:
        """Show the cluster at `t`: the replay seeks there; live, the frame of that moment is shown, paused."""
        if self.playback is not None:
            self.playback.pause()
            self.playback.seek(t)
            self._replay_moved()
            return
        frame = self._moment_frames.get(t)
        if frame is None:
            self.notify("that moment's frame is no longer kept (only the newest "
                        f"{MOMENT_FRAMES}); record with R to keep everything", severity="warning", timeout=5)
            return
        self.paused, self.shown_at, self.frame = True, t, frame
        self.render_visible()
        self._render_status(self.view())

    def on_moment_picked(self, message: MomentPicked) -> None:
        self.seek_to(message.t)

    def _replay_moved(self, said: str = "") -> None:
        """A new position: a frame from there now (the producer rebuilds the chart's history for it)."""
        if said:
            self.notify(said, timeout=1)
        self._poll()
        self._render_status(self.view())

    def action_record(self) -> None:
        """R: start recording the frames (handed to the recording's writer as the producer builds them), or
        stop."""
        if self.playback is not None:
            self.notify("R records a live or simulated cluster; a replay is a recording already (its frames are "
                        "in the file you opened)", severity="warning", timeout=5)
            return
        recorder = self._recorder
        if recorder is not None:
            self._recorder = None
            self.run_worker(self.producer.stop_recording(recorder), group="record")
            skipped = f" ({recorder.skipped} left out: the writer could not keep up)" if recorder.skipped else ""
            self.notify(f"recording stopped: {plural(recorder.frames, 'frame')} in {recorder.path}{skipped}", timeout=6)
            self._render_status(self.view())
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            self._recorder = self.producer.record(self.screenshot_dir / f"overlaytui-{stamp}.jsonl.gz",
                                                  source=self.source_label)
        except RecordingError as exc:
            self.notify(f"cannot record: {exc}", severity="error", timeout=8)
            return
        self.notify(f"recording to {self._recorder.path} (R stops; replay: overlaytui --replay FILE)", timeout=6)
        self._render_status(self.view())

    def action_pause(self) -> None:
        if self.playback is not None:
            self.action_replay_toggle()
            return
        if self.shown_at is not None:  # back to live from a picked moment
            self.shown_at = None
            self.paused = False
            self.notify("live again", timeout=2)
            self._poll()
            return
        self.paused = not self.paused
        self._render_status(self.view())
        self.notify("paused: the panes keep what they show" if self.paused else "resumed", timeout=2)

    def action_refresh(self) -> None:
        self.paused = False
        self._poll()

    def action_next_dimension(self) -> None:
        self.query_one(NetIOPane).cycle_dimension()

    def action_next_theme(self) -> None:
        names = self._own_themes or [DEFAULT_THEME]
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"theme {self.theme}", timeout=2)

    def action_set_theme(self, name: str) -> None:
        """The palette's "theme NAME"."""
        if name in self.available_themes:
            self.theme = name

    def _theme_changed(self, theme) -> None:
        """Any theme change (t, our palette entries, Textual's own "Theme" command) is saved to the config file
        and redraws the panes (their cells carry the theme's colours)."""
        if theme.name == self._requested_theme:  # the one it started with (published after mount) or unchanged
            return
        self._requested_theme = theme.name
        self.config = self.config.with_theme(theme.name)
        if self._persist:
            try:
                save_config(self.config)
            except OSError as exc:
                self.notify(f"theme not saved: {exc}", severity="warning")
        self.render_visible()

    def action_save_screenshot(self) -> None:
        """An SVG of the screen in the screenshot directory, created exclusively: never over an existing file
        (nor through a symlink planted under the name)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        svg = self.export_screenshot()
        for attempt in range(100):
            path = self.screenshot_dir / f"overlaytui-{stamp}{f'-{attempt}' if attempt else ''}.svg"
            try:
                with open(path, "x", encoding="utf-8") as fh:
                    fh.write(svg)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                self.notify(f"screenshot not saved: {exc}", severity="error")
                return
        else:
            self.notify("screenshot not saved: 100 files of this second exist", severity="error")
            return
        self.notify(f"saved {path}", timeout=4)

    def action_start_probes(self) -> None:
        if self.producer.probing:
            self.notify("probes are running; their results are in the Loss pane (4)", timeout=3)
        elif not self.producer.can_probe:
            self.notify(f"{self.source.name} has its own probe results (pane 4): there are no engines to probe",
                        timeout=3)
        else:
            self.notify("deploying probe agents on the overlays…", timeout=4)
            self.producer.start_probing()

    # ------------------------------------------------------------------------------------------ faults

    def fault_targets(self) -> list[Fault]:
        """What a fault would be injected on, most specific first: what the visible pane's cursor is on (a pair in
        the Loss matrix, a node, an overlay, a service), then the selection (enter in Topology, Loss)."""
        snap = self.snapshot
        if snap is None:
            return []
        active = self.screen_stack[0].query_one(TabbedContent).active
        found: list[Fault] = []
        pane = self._panes[active]
        if active in FAULT_PANES and isinstance(pane, TopologyPane | PlacementPane | LossPane | NetworksPane):
            found += pane.subjects(snap)
        selection = self.selection
        if selection is not None:
            node = snap.nodes_by_id.get(selection.key) if selection.kind == "node" else None
            if node is not None:
                found.append(Fault("", node=node.hostname))
            elif selection.kind == "network":
                found.append(Fault("", network=selection.key))
            elif selection.kind == "service":
                found.append(Fault("", service=selection.key))
        return list(dict.fromkeys(found))

    def fault_choices(self) -> list[FaultChoice]:
        return choices(self.faults.offers, self.fault_targets()) if self.faults is not None else []

    def action_fault(self) -> None:
        """f: the fault picker for what the pane's cursor (or the selection) names."""
        if self.faults is None or self.playback is not None:
            self.notify("no faults to inject here: the demo has them, the lab as root, and serve --presenter",
                        severity="warning", timeout=4)
            return
        targets = self.fault_targets()
        where = targets[0].subject() if targets else "nothing selected (move the cursor onto a node, an overlay, " \
            "a pair or a service)"
        loss, mtu = self.fault_values
        self.push_screen(FaultScreen(where, self.fault_choices(), loss, mtu), self._fault_picked)

    def _fault_picked(self, choice: FaultChoice | None) -> None:
        if choice is not None:
            if choice.action == "inject" and choice.fault.kind in ("loss", "mtu"):
                loss, mtu = self.fault_values
                self.fault_values = (choice.fault.value, mtu) if choice.fault.kind == "loss" else \
                    (loss, choice.fault.value)
            self.apply_fault(choice)

    def apply_fault(self, choice: FaultChoice) -> None:
        """Inject or clear (in a worker: the lab's faults take seconds); what was done is said."""
        self.run_worker(self._apply_fault(choice), group="fault")

    async def _apply_fault(self, choice: FaultChoice) -> None:
        faults = self.faults
        if faults is None:
            return
        try:
            if choice.action == "inject":
                said = await faults.inject(choice.fault)
            else:
                said = await faults.clear(choice.fault)
        except FaultError as exc:
            self.notify(f"fault not {'injected' if choice.action == 'inject' else 'cleared'}: {exc}",
                        severity="error", timeout=8)
            return
        if said:  # (serve --presenter says it in every viewer itself)
            self.notify(said, timeout=5)
        self._poll()

    # -------------------------------------------------------------------------------------------- tour

    @work(exclusive=True, group="tour")
    async def play_tour(self) -> None:
        """--tour: the steps (panes/tour.py) over and over, each caption shown for its time; where faults are
        offered, loss injected on a node, shown where it appears, then cleared. Any key stops it (`on_event`)."""
        caption = self.query_one(Caption)
        caption.display = True
        faults = self.faults
        offered = faults is not None and "node" in faults.offers.get("loss", ())
        while True:
            for step in TOUR:
                snap = self.snapshot
                nodes = [n.hostname for n in snap.nodes if n.state == "ready"] if snap is not None else []
                node = nodes[1] if len(nodes) > 1 else nodes[0] if nodes else ""
                if step.fault and not (offered and node):
                    continue
                if step.fault == "inject" and faults is not None:
                    self._tour_fault = Fault("loss", node=node, value=TOUR_LOSS_PCT)
                    await self._apply_fault(FaultChoice("inject", self._tour_fault))
                elif step.fault == "clear" and self._tour_fault is not None:
                    await self._apply_fault(FaultChoice("clear", replace(self._tour_fault, kind="", value=0.0)))
                    self._tour_fault = None
                self.action_show_tab(step.pane)
                caption.update(Content(f"▶ {step.caption.format(node=display(node))}   (any key: stop the tour)"))
                await asyncio.sleep(step.seconds * self.tour_pace)  # the tour's pace is its point: a timer

    def stop_tour(self) -> None:
        """Any key: the tour ends where it is (its fault cleared); the key itself does nothing more."""
        self.tour = False
        self.workers.cancel_group(self, "tour")
        self.query_one(Caption).display = False
        fault, self._tour_fault = self._tour_fault, None
        if fault is not None:
            self.apply_fault(FaultChoice("clear", replace(fault, kind="", value=0.0)))
        self.notify("tour stopped: the dashboard is yours", timeout=3)

    async def on_unmount(self) -> None:
        """The app ends mid-tour without a key (q is the tour's; a closed browser tab, serve stopping, SIGTERM):
        the tour's fault is cleared, bounded, never left in the cluster every other viewer (or the lab) shows."""
        if self._holds_gc:
            self._holds_gc = False
            _FullCollections.release()
        fault, self._tour_fault = self._tour_fault, None
        if fault is None or self.faults is None:
            return
        with contextlib.suppress(FaultError, TimeoutError, RuntimeError):
            await asyncio.wait_for(self.faults.clear(replace(fault, kind="", value=0.0)), TOUR_CLEAR_WAIT)

    async def on_event(self, event) -> None:
        if self.tour and isinstance(event, events.Key):
            event.stop()
            self.stop_tour()
            return
        await super().on_event(event)

    async def action_quit(self) -> None:
        self._recorder = None
        await self.producer.close()
        if not self.failure and not self.producer.answered:
            self.failure = "no engine answered while the dashboard ran"
        self.exit(return_code=2 if self.failure else 0)

    def _terminate(self) -> None:
        """SIGTERM: quit as `q` does (the probe agents are removed), with a non-zero exit."""
        self.failure = self.failure or "terminated"
        self.run_worker(self.action_quit(), group="quit", exclusive=True)


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"
