"""The status bar: each engine's health, the age of the data, the poll interval, paused, filter, selection."""

from __future__ import annotations

from textual.widgets import Static

from ..model import Health
from ..safe import display
from .common import SafeText as Text
from .common import View, palette_of

MAX_ENGINES_LISTED = 8


FAILING_FIRST = {Health.ERROR: 2, Health.STALE: 1, Health.OK: 0}


class StatusBar(Static):
    DEFAULT_CSS = "StatusBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }"

    def show(self, view: View | None, *, now: float, interval: float | None, paused: bool, source: str,
             mode: str = "") -> None:
        """`mode`: a replay's position and speed, a picked moment shown, recording (first: it is what the screen
        is showing)."""
        colors = palette_of(self)
        line = Text(no_wrap=True, overflow="ellipsis")
        if mode:
            line.append(f"{mode} ", style=f"bold reverse {colors.accent}")
            line.append(" ")
        if view is None:
            line.append("connecting…", style=colors.warn)
            line.append(f"  {display(source)}", style="bold")
            self.update(line)
            return
        # what matters first, so a narrow terminal cuts only the rest: failing engines, probing that failed,
        # paused, the filter and the selection; then the engines that answer, the data's age, the source
        snap = view.snapshot
        counts = {h: sum(1 for e in snap.engines if e.health is h) for h in Health}
        styles = {Health.OK: colors.good, Health.STALE: colors.warn, Health.ERROR: f"bold {colors.bad}"}
        marks = {Health.OK: "●", Health.STALE: "◐", Health.ERROR: "✖"}
        listed = len(snap.engines) <= MAX_ENGINES_LISTED
        failing = sorted((e for e in snap.engines if e.health is not Health.OK), key=lambda e: -FAILING_FIRST[e.health])
        if listed:
            for engine in failing:
                line.append(f"{marks[engine.health]} {display(engine.hostname or engine.endpoint)} ",
                            style=styles[engine.health])
        else:
            if counts[Health.ERROR]:
                line.append(f"✖ {counts[Health.ERROR]} error ", style=styles[Health.ERROR])
            if counts[Health.STALE]:
                line.append(f"◐ {counts[Health.STALE]} stale ", style=styles[Health.STALE])
        if view.probe_problem:
            line.append("│ ✖ probes failed (pane 4; P retries) ", style=f"bold {colors.bad}")
        if paused:
            line.append("│ PAUSED (p) ", style=f"bold reverse {colors.warn}")
        if view.filter_text:
            line.append("│ filter ")
            line.append(display(view.filter_text), style=f"bold {colors.accent}")
            line.append(" ")
        if view.selection:
            line.append(f"│ {display(view.selection.describe())} (esc clears) ", style=colors.accent)
        if listed:
            for engine in snap.engines:
                if engine.health is Health.OK:
                    line.append(f"● {display(engine.hostname or engine.endpoint)} ", style=colors.good)
        else:
            line.append(f"● {counts[Health.OK]} ok ", style=colors.good)
        gaps = snap.unmeasured_nodes
        if gaps and snap.nodes:
            line.append(f"│ stats {len(snap.nodes) - len(gaps)}/{len(snap.nodes)} nodes ", style=colors.warn)
        line.append(f"│ data {max(0.0, now - snap.taken_at):.1f} s old ")
        line.append(f"│ every {interval:g} s " if interval else "│ manual refresh (r) ")
        line.append(f"│ {display(source)}", style="bold")
        self.update(line)
