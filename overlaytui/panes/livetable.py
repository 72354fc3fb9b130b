"""LiveTable: a read-only table for rows whose values change on every refresh (the NetIO rates).

Why not DataTable: any `update_cell` invalidates every cell of a DataTable, and it re-renders each visible cell
through Rich (padding, styling, line splitting): 25 ms for 37 rows x 6 columns at 200x60, every second. Here a row
is a handful of padded strings turned into one `Strip` (Textual's line API): well under a millisecond for the
screen. What it keeps from DataTable: a fixed header, zebra stripes, a row cursor that follows its row's key when
rows reorder, keys and mouse, `RowSelected` on enter or click, theme-variable styles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    justify: str = "left"  # or "right" (numbers)


class LiveTable(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LiveTable {
        background: $surface;
        color: $foreground;
        &:focus { background-tint: $foreground 5%; }
        & > .livetable--header { text-style: bold; background: $panel; color: $foreground; }
        &:dark > .livetable--even-row { background: $surface-darken-1 40%; }
        & > .livetable--even-row { background: $surface-lighten-1 50%; }
        & > .livetable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .livetable--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """
    COMPONENT_CLASSES = {"livetable--header", "livetable--even-row", "livetable--cursor"}
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First row", show=False),
        Binding("end", "cursor_to(-1)", "Last row", show=False),
        Binding("enter", "select", "Select", show=False),
    ]

    class RowSelected(Message):
        def __init__(self, table: LiveTable, key: str) -> None:
            self.table = table
            self.key = key
            super().__init__()

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self._columns: tuple[Column, ...] = ()
        self._widths: list[int] = []
        self._keys: list[str] = []
        self._cells: dict[str, Sequence[Text]] = {}
        self._cursor = 0

    # ------------------------------------------------------------------------------------------------ data

    @property
    def row_keys(self) -> list[str]:
        return list(self._keys)

    @property
    def cursor_key(self) -> str | None:
        return self._keys[self._cursor] if self._keys else None

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def set_columns(self, columns: Sequence[Column]) -> None:
        """The columns; widths start again from the labels when they change."""
        columns = tuple(columns)
        if columns != self._columns:
            self._columns = columns
            self._widths = [cell_len(c.label) for c in columns]
            self._cells = {}
            self._keys = []

    def set_rows(self, rows: Mapping[str, Sequence[Text]]) -> None:
        """Exactly these rows, in this order. The cursor stays on its row's key if the row is still there.
        Column widths only grow while the columns stay the same, so a number that gets shorter does not make
        the table jump."""
        keep = self.cursor_key
        self._keys = list(rows)
        self._cells = dict(rows)
        widths = self._widths
        for cells in self._cells.values():
            for i, cell in enumerate(cells[: len(widths)]):
                if (n := cell.cell_len) > widths[i]:
                    widths[i] = n
        if keep is not None and keep in self._cells:
            self._cursor = self._keys.index(keep)
        self._cursor = max(0, min(self._cursor, len(self._keys) - 1))
        self.virtual_size = Size(sum(widths) + 2 * len(widths), len(self._keys) + 1)
        self.refresh()

    # --------------------------------------------------------------------------------------------- drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        over = None
        if y == 0:
            cells: Sequence[Text] = [Text(c.label) for c in self._columns]
            row = base + self.get_component_rich_style("livetable--header")
        else:
            index = self.scroll_offset.y + y - 1
            if index >= len(self._keys):
                return Strip.blank(width, base)
            cells = self._cells[self._keys[index]]
            row = base + self.get_component_rich_style("livetable--even-row") if index % 2 else base
            if index == self._cursor:
                row, over = base, self.get_component_rich_style("livetable--cursor")
        x = self.scroll_offset.x
        filler = row + over if over is not None else row
        return self._line(cells, row, over).crop(x, x + width).extend_cell_length(width, filler)

    def _line(self, cells: Sequence[Text], row: Style, over: Style | None) -> Strip:
        """One row: each cell padded to its column's width (which fits every cell) with one space either side.
        A cell is styled as a whole (its `style`, over the row's zebra background); the cursor wins over both."""
        segments = []
        for column, width, cell in zip(self._columns, self._widths, cells, strict=False):
            plain = cell.plain
            pad = " " * (width - cell_len(plain))
            style = row + _style(cell.style)
            segments.append(Segment(f" {pad}{plain} " if column.justify == "right" else f" {plain}{pad} ",
                                    style + over if over is not None else style))
        return Strip(segments)

    # -------------------------------------------------------------------------------------------- actions

    def _move_to(self, index: int) -> None:
        if not self._keys:
            return
        self._cursor = max(0, min(index, len(self._keys) - 1))
        visible = max(1, self.scrollable_content_region.height - 1)  # rows under the header
        top = self.scroll_offset.y
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self._move_to(self._cursor + delta)

    def action_cursor_to(self, index: int) -> None:
        self._move_to(index if index >= 0 else len(self._keys) - 1)

    def action_page(self, direction: int) -> None:
        self._move_to(self._cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_select(self) -> None:
        if (key := self.cursor_key) is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1 and (index := self.scroll_offset.y + event.y - 1) < len(self._keys):
            self._move_to(index)
            self.action_select()


def _style(style: str | Style) -> Style:
    return style if isinstance(style, Style) else Style.parse(style) if style else _NULL


_NULL = Style()
