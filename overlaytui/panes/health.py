"""The health line under the header, whatever pane is shown: the worst current problems in words with their
subject ("✖ loss node4 ~2.0 % · ✖ MTU black hole node3 on frontend (fits 1350)"), or that the cluster is healthy
and what was checked. Also the tab labels with their badges (count and worst severity)."""

from __future__ import annotations

from rich.text import Text as RichText
from textual.content import Content
from textual.widgets import Static

from ..analysis.findings import Severity
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
            return
        frame, headline = view.frame, view.headline
        if self._guard.unchanged((headline, frame.probes, frame.snapshot.services), (self.app.theme,)):
            return
        self.update(health_text(headline, frame.checked(), colors))


def health_text(headline: Headline, checked: str, colors: Palette) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    if not headline.problems:
        line.append("✔ healthy", style=f"bold {colors.good}")
        line.append(f" · checked {checked}", style=colors.muted)
        if headline.notes:
            line.append(f" · ℹ {headline.notes} {'note' if headline.notes == 1 else 'notes'} (6)", style=colors.muted)
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
