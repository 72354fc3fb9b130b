"""The health line under the header, whatever pane is shown: the worst current problems in words with their
subject ("✖ loss node4 ~2.0 % · ✖ MTU black hole node3 on frontend (fits 1350)"), or that the cluster is healthy
and what was checked. Also the tab labels with their badges (count and worst severity)."""

from __future__ import annotations

from rich.text import Text as RichText
from textual.content import Content
from textual.widgets import Static

from ..analysis.findings import Severity, plural
from ..analysis.headline import MARKS, Headline
from .common import Palette, RenderGuard, View, palette_of
from .common import SafeText as Text


def severity_style(colors: Palette, severity: Severity) -> str:
    return {Severity.ERROR: f"bold {colors.bad}", Severity.WARNING: f"bold {colors.warn}",
            Severity.INFO: colors.primary or colors.accent, Severity.OK: colors.good}[severity]


class HealthLine(Static):
    DEFAULT_CSS = "HealthLine { height: 1; background: $panel; color: $foreground; padding: 0 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._guard = RenderGuard()

    def show(self, view: View | None) -> None:
        colors = palette_of(self)
        line = Text(no_wrap=True, overflow="ellipsis")
        if view is None or view.headline is None:
            line.append("waiting for the first data…", style=colors.muted)
            self.update(line)
            self._guard = RenderGuard()  # the next frame is drawn whatever the last one was
            return
        frame, headline = view.frame, view.headline
        if self._guard.unchanged((headline, frame.probes, frame.snapshot.services),
                                 (self.app.theme, view.probe_problem)):
            return
        self.update(health_text(headline, frame.checked(), colors, view.probe_problem))


def health_text(headline: Headline, checked: str, colors: Palette, probe_problem: str = "") -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    if probe_problem:  # the data plane is not being measured: first, as the status bar says it
        line.append(f"✖ cannot probe: {probe_problem} (P retries)", style=severity_style(colors, Severity.ERROR))
        if headline.problems:
            line.append(" · ", style=colors.muted)
    elif not headline.problems:
        line.append("✔ healthy", style=f"bold {colors.good}")
        line.append(f" · checked {checked}", style=colors.muted)
        if headline.notes:
            line.append(f" · ℹ {plural(headline.notes, 'note')} (6)", style=colors.muted)
        return line
    for i, problem in enumerate(headline.problems):
        if i:
            line.append(" · ", style=colors.muted)
        style = severity_style(colors, problem.severity)
        line.append(f"{MARKS[problem.severity]} ", style=style)
        line.append(problem.text, style=style if problem.severity == Severity.ERROR else "")
    return line


def tab_label(label: str, badge: tuple[int, Severity] | None, colors: Palette) -> Content:
    """"4 Loss ✖2": the pane's name and, when it shows problems, their count marked by the worst."""
    text = RichText(label)
    if badge:
        count, severity = badge
        text.append(f" {MARKS[severity]}{count}", style=severity_style(colors, severity))
    return Content.from_rich_text(text)
