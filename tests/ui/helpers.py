"""Building the app for UI tests: the demo cluster on a fixed clock, no automatic refresh, no saved config."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

from textual.worker import WorkerCancelled

from overlaytui.app import FrameReady, OverlayApp
from overlaytui.sources.demo import DemoSource
from tests.helpers import eventually

T0 = 1_800_000_000.0  # a fixed moment: every number on screen follows from it and the seed


class Clock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_app(scenario: str = "healthy", *, clock: Clock | None = None, theme: str | None = None,
             source=None, **kwargs) -> OverlayApp:
    clock = clock or Clock()
    source = source or DemoSource(scenario, seed=7, clock=clock)
    return OverlayApp(source, interval=None, clock=clock, theme=theme,
                      persist_config=kwargs.pop("persist_config", False), **kwargs)


async def feed(app: OverlayApp, pilot, clock: Clock, seconds: int = 30, poll: bool = False) -> None:
    """Advance the clock second by second, handing the app a snapshot each time (history for the charts).

    Handled directly: posted in a burst, FrameReady messages would collapse into the newest (as they should in
    the app), leaving no history. Frames are built here as the producer builds them (in its thread); with `poll`
    the source is polled before each (the demo's topology changes at a poll, as a real cluster's does).

    The app's own first frame comes first: its producer builds one at mount, in its frame thread, and a frame built
    here meanwhile would share the producer's state with it (at 200 nodes the two overlapped for seconds, and a
    loaded CI run showed another screen than the one recorded)."""
    if app.interval is None:
        for worker in [w for w in app.workers if w.group == "collect"]:
            with contextlib.suppress(WorkerCancelled):  # (by a refresh: the same exclusive group)
                await worker.wait()
        await pilot.pause()  # its FrameReady handled: in the history before the frames built here, always
    for _ in range(seconds):
        clock.now += 1
        if poll:  # as the collection loop does when the source says something changed
            await app.source.poll()
        app.on_frame_ready(FrameReady(app.build_frame()))
    await pilot.pause()


async def wait_until(pilot, condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Until `condition()` holds (the app running meanwhile), or fail after `timeout` seconds naming `what`."""
    await eventually(condition, timeout, what, pause=pilot.pause)


class MarkupNamedSource(DemoSource):
    """The demo cluster, with names and errors that look like Rich markup (as a cluster may have them)."""

    def snapshot(self):
        snap = super().snapshot()
        services = tuple(replace(s, name="[bold]x[/") if s.name == "web" else s for s in snap.services)
        nodes = tuple(replace(n, hostname="[red]n1") if n.hostname == "node1" else n for n in snap.nodes)
        tasks = tuple(replace(t, service_name="[bold]x[/", error="[/] bad [link=x]") if t.service_name == "web"
                      else t for t in snap.tasks)
        return replace(snap, services=services, nodes=nodes, tasks=tasks)


class NoProbesSource(DemoSource):
    """The demo cluster without probe results of its own, as the real source is until probing starts."""

    def probes(self):
        return None


OSC_TITLE = "\x1b]0;pwned\x07"
HOSTILE = {  # what a cluster may name things: markup, terminal escapes, NUL, bidi, and length
    "node1": f"[/]n1{OSC_TITLE}",
    "node2": "[@click=app.quit]n2[/]\x1b[2J",
    "node3": "n3\x00\u202eevil" + "x" * 500,
}
HOSTILE_NETWORK = "[b]x[/b]"


class HostileSource(DemoSource):
    """The demo cluster with hostile node hostnames, an overlay named as markup, and task errors and labels with
    escape sequences (hostnames are not limited to DNS characters; Docker validates network names, but a replay
    or another source need not)."""

    def snapshot(self):
        snap = super().snapshot()
        nodes = tuple(replace(n, hostname=HOSTILE.get(n.hostname, n.hostname),
                              labels=(("note", "\x1b[31mred\x1b[0m [bold]"),)) for n in snap.nodes)
        renamed = {n.hostname: HOSTILE.get(n.hostname, n.hostname) for n in snap.nodes}
        engines = tuple(replace(e, hostname=renamed.get(e.hostname, e.hostname)) for e in snap.engines)
        networks = tuple(replace(n, name=HOSTILE_NETWORK) if n.name == "backend" else n for n in snap.networks)
        tasks = tuple(replace(t, error=f"failed {OSC_TITLE} [/]") if t.service_name == "web" else t
                      for t in snap.tasks)
        return replace(snap, nodes=nodes, engines=engines, networks=networks, tasks=tasks)

    def probe_results(self, network=None):
        names = {"backend": HOSTILE_NETWORK}
        reverse = {v: k for k, v in names.items()}
        results = super().probe_results(reverse.get(network, network) if network else None)
        return tuple(replace(r, network=names.get(r.network, r.network), src_node=HOSTILE.get(r.src_node, r.src_node),
                             dst_node=HOSTILE.get(r.dst_node, r.dst_node)) for r in results)


def screen_text(app: OverlayApp) -> str:
    """What the terminal shows, as lines of plain text (the screen's rendered strips)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
