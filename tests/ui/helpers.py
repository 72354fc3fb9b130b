"""Building the app for UI tests: the demo cluster on a fixed clock, no automatic refresh, no saved config."""

from __future__ import annotations

from dataclasses import replace

from overlaytui.app import OverlayApp, SnapshotReady
from overlaytui.sources.demo import DemoSource

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
    return OverlayApp(source, source_label=f"demo: {scenario}", interval=None, clock=clock, theme=theme,
                      persist_config=kwargs.pop("persist_config", False), **kwargs)


async def feed(app: OverlayApp, pilot, clock: Clock, seconds: int = 30) -> None:
    """Advance the clock second by second, handing the app a snapshot each time (history for the charts).

    Handled directly: posted in a burst, SnapshotReady messages would collapse into the newest (as they should
    in the app), leaving no history."""
    for _ in range(seconds):
        clock.now += 1
        app.on_snapshot_ready(SnapshotReady(app.source.snapshot()))
    await pilot.pause()


class MarkupNamedSource(DemoSource):
    """The demo cluster, with names and errors that look like Rich markup (as a cluster may have them)."""

    def snapshot(self):
        snap = super().snapshot()
        services = tuple(replace(s, name="[bold]x[/") if s.name == "web" else s for s in snap.services)
        nodes = tuple(replace(n, hostname="[red]n1") if n.hostname == "node1" else n for n in snap.nodes)
        tasks = tuple(replace(t, service_name="[bold]x[/", error="[/] bad [link=x]") if t.service_name == "web"
                      else t for t in snap.tasks)
        return replace(snap, services=services, nodes=nodes, tasks=tasks)


class NoProbesSource:
    """The demo cluster seen through the real source's interface, which has no probe results."""

    def __init__(self, inner: DemoSource) -> None:
        self._inner = inner

    def __getattr__(self, name):
        if name == "probe_results":
            raise AttributeError(name)
        return getattr(self._inner, name)
