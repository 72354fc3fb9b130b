"""Chart: textual-plotext's PlotextPlot, drawn from plotext's character matrix straight into strips.

PlotextPlot renders a plot as plotext's ANSI string (`build()`), parses it back into Rich `Text` and lets Textual
render that into lines: for the NetIO chart (140x16, six lines) the round trip cost as much again as plotext's
own drawing. plotext keeps every cell's character and colours in a matrix before it writes the string; this widget
reads that matrix and makes one `Strip` per row, with one Rich style per colour triple, converted once. The
plotting calls (`chart.plt.plot(...)`), theme handling and sizing are PlotextPlot's, unchanged.
"""

from __future__ import annotations

from plotext import _utility as plotext_utility
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual_plotext import PlotextPlot

from ..safe import cell_for_cell

_STYLES: dict[object, Style] = {}


def cell_style(fullground, style, background) -> Style:
    """The Rich style of one plotext cell: the exact style the ANSI round trip would give, computed once."""
    try:
        key = (fullground, style, background)
        hash(key)
    except TypeError:  # rgb colours can be lists
        key = repr((fullground, style, background))
    found = _STYLES.get(key)
    if found is None:
        ansi = plotext_utility.colors_to_ansi(fullground, style, background)
        spans = Text.from_ansi(ansi + "x").spans
        found = _STYLES[key] = spans[0].style if spans and isinstance(spans[0].style, Style) else Style()
    return found


class Chart(PlotextPlot):
    _strips: list[Strip] | None = None
    _drawn_for: tuple = ()

    def refresh(self, *regions, **kwargs):  # new data (or a theme: PlotextPlot refreshes): draw again
        self._strips = None
        return super().refresh(*regions, **kwargs)

    def render_line(self, y: int) -> Strip:
        drawn_for = (self.size, self.app.theme)  # Textual refreshes on both; never serve lines drawn for another
        if self._strips is None or drawn_for != self._drawn_for:
            self._strips, self._drawn_for = self._draw(), drawn_for
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def _draw(self) -> list[Strip]:
        width, height = self.size
        if width <= 0 or height <= 0:
            return []
        plot = self._plot
        plot.plotsize(width, height)  # what PlotextPlot.render does before plot.build() (see its comments)
        plot._set_size(width, height)
        plot.theme(self._get_plotext_theme_name(self.app.theme))
        plot._set_sizes()  # plot.build() without writing the ANSI string
        plot._build_matrix()
        matrix = plot.monitor.matrix
        base = self.rich_style
        strips = []
        for row in range(matrix.rows - 1, -1, -1):  # plotext's row 0 is the bottom line
            markers, fg, st, bg = matrix.marker[row], matrix.fullground[row], matrix.style[row], matrix.background[row]
            segments = []
            start = 0
            for col in range(1, matrix.cols + 1):
                if col == matrix.cols or fg[col] != fg[start] or bg[col] != bg[start] or st[col] != st[start]:
                    # titles and labels carry node names: one visible cell per unsafe character
                    segments.append(Segment(cell_for_cell("".join(markers[start:col])),
                                            base + cell_style(fg[start], st[start], bg[start])))
                    start = col
            strips.append(Strip(segments).adjust_cell_length(width, base))
        return strips
