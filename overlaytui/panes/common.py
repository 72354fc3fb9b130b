"""What every pane shares: the View it renders, safe text, keyed table updates, status colours.

Panes keep no cluster state: they are handed a View (snapshot, history, probes, selection, filter) and render it.
Text from the cluster (names, labels, errors) is never interpreted as markup: it goes into `Text` objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.color import Color, ColorParseError
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from ..analysis.headline import Headline
from ..analysis.thresholds import LossThresholds, Verdict
from ..frame import Frame
from ..history import History
from ..model import TASK_FAILED, TASK_PENDING, ClusterSnapshot, Coverage, Moment, PairWindow, ProbeResult
from ..safe import printable

MAX_TEXT = 2000  # characters in one cell: no single value from the cluster may flood a pane
MAX_NODE_COLUMNS = 40  # beyond this a node-per-column matrix is unreadable (and slow): panes summarise instead


@dataclass(frozen=True)
class Selection:
    """What the user picked in one pane, to filter the others: a node, a network or a service."""

    kind: str  # node / network / service
    key: str  # node id, network name, service name
    label: str

    def describe(self) -> str:
        return f"{self.kind} {self.label}"


def cursor_keys(table: DataTable) -> tuple[str, str] | None:
    """(row key, column key) of the cell under a table's cursor; None when there is none (an empty table, or one
    rebuilt meanwhile)."""
    if not table.row_count:
        return None
    try:
        row_key, column_key = table.coordinate_to_cell_key(table.cursor_coordinate)
    except (CellDoesNotExist, RowDoesNotExist):
        return None
    return str(row_key.value), str(column_key.value)


class Picked(Message):
    """The user picked something in a pane (enter or click). The app decides what it means there: the topology
    pane filters the others, placement and networks open details."""

    def __init__(self, pane: str, selection: Selection) -> None:
        self.pane = pane
        self.selection = selection
        super().__init__()


@dataclass(frozen=True)
class View:
    """What a pane renders: the frame (snapshot, probe results, findings), the history and what the user chose."""

    frame: Frame
    history: History
    probe_problem: str = ""  # why probing could not start (shown until the user starts it again)
    selection: Selection | None = None
    filter_text: str = ""
    thresholds: LossThresholds = field(default_factory=LossThresholds)
    timeline: Sequence[Moment] = ()  # what changed, oldest first (live, or the recording's)
    now_t: float | None = None  # the moment shown, when it is not the newest (a replay, a picked moment)
    replaying: bool = False
    headline: Headline | None = None  # the frame's problems in words, badges, what findings name

    @property
    def snapshot(self) -> ClusterSnapshot:
        return self.frame.snapshot

    def probes(self, network: str) -> Sequence[ProbeResult]:
        """The overlay's latest results per pair, pings over the recent window (a round is too few packets;
        since start never clears)."""
        return self.frame.probes.results(network)

    def coverage(self, network: str) -> Sequence[Coverage]:
        """Per kind: pairs measured, and why not."""
        return self.frame.probes.coverage_of(network)

    def windows(self, network: str) -> Mapping[tuple[str, str], PairWindow]:
        """(src, dst) -> the pair's counts for the last round, the recent window and since start."""
        return self.frame.probes.windows_of(network)

    def matches(self, *texts: str | None) -> bool:
        """The filter (`/`) matches any of these texts (case-insensitive substring)."""
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        return any(needle in t.lower() for t in texts if t)

    # selection helpers -----------------------------------------------------------------------------


    def services_in_scope(self) -> set[str] | None:
        """Service names the selection allows (None: all)."""
        sel, snap = self.selection, self.snapshot
        if sel is None:
            return None
        if sel.kind == "service":
            return {sel.key}
        if sel.kind == "network":
            net = snap.network(sel.key)
            ids = {net.id} if net else set()
            return {s.name for s in snap.services if ids & set(s.network_ids) or
                    any(v.network_id in ids for v in s.vips)}
        if sel.kind == "node":
            return {t.service_name for t in snap.tasks if t.node_id == sel.key and t.desired_state == "running"}
        return None

    def nodes_in_scope(self) -> set[str] | None:
        """Node ids the selection allows (None: all)."""
        sel, snap = self.selection, self.snapshot
        if sel is None:
            return None
        if sel.kind == "node":
            return {sel.key}
        if sel.kind == "service":
            return {t.node_id for t in snap.tasks if t.service_name == sel.key and t.node_id
                    and t.desired_state == "running"}
        if sel.kind == "network":
            net = snap.network(sel.key)
            return {v.node_id for v in net.views if v.node_id} if net else set()
        return None


class SafeText(Text):
    """A Rich `Text` whose content is always made printable (`safe.printable`: control and bidi characters
    visible, line breaks kept) — what every pane builds its text with; panes never import rich's `Text`.
    Text is never parsed as markup."""

    def __init__(self, text: str = "", *args, **kwargs) -> None:
        super().__init__(printable(text), *args, **kwargs)

    def append(self, text, style=None):  # noqa: ANN001 - rich's signature
        return super().append(printable(text) if isinstance(text, str) else text, style)


def text(value: object, style: str = "") -> Text:
    """Cluster text for one cell: printable (line breaks kept: some cells are two lines), bounded, never markup."""
    value = "" if value is None else str(value)
    return SafeText(value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…", style=style, no_wrap=True,
                    overflow="ellipsis")


def join(*parts: Text | str, sep: str = " ") -> Text:
    result = SafeText(no_wrap=True, overflow="ellipsis")
    for i, part in enumerate(p for p in parts if p):
        if i:
            result.append(sep)
        result.append(part if isinstance(part, Text) else SafeText(part))
    return result


class RenderGuard:
    """Skips a pane's render when its inputs are the very same objects as last time (and the plain values —
    selection, filter, theme — are equal). Sources keep unchanged topology as the same objects between polls,
    so a stats-only snapshot costs the topology panes nothing. References are held, so an id is never
    recycled into a false match."""

    def __init__(self) -> None:
        self._objects: tuple = ()
        self._values: tuple | None = None

    def unchanged(self, objects: tuple, values: tuple) -> bool:
        if self._values == values and len(objects) == len(self._objects) and all(
                a is b for a, b in zip(objects, self._objects, strict=True)):
            return True
        self._objects, self._values = objects, values
        return False



def view_values(view: View, widget) -> tuple:
    """The plain values every pane's output depends on, besides its objects (not its size: tables and plots
    lay themselves out)."""
    return (view.selection, view.filter_text, view.thresholds, widget.app.theme)


class Palette:
    """Status colours from the current theme (cells are Rich Text, so they need colours, not CSS)."""

    def __init__(self, theme) -> None:
        self.good = theme.success or "green"
        self.warn = theme.warning or "yellow"
        self.bad = theme.error or "red"
        self.accent = theme.accent or "magenta"
        self.primary = theme.primary
        self.muted = f"{theme.foreground or 'white'} dim" if theme.foreground else "dim"
        # the loss heat map needs plain colours (a cell's lower half is a background): two greys between the
        # theme's background and foreground stand for "too few samples" and "not measured"
        try:
            back, fore = Color.parse(theme.background or "black"), Color.parse(theme.foreground or "white")
        except ColorParseError:
            back, fore = Color(0, 0, 0), Color(255, 255, 255)
        self._heat = {0: self.good, 1: back.blend(fore, 0.55).hex, 2: back.blend(fore, 0.3).hex, 3: self.warn,
                      4: self.bad}

    def heat(self, rank: int) -> str:
        """A plain colour for a heat-map cell of this rank (analysis.lossmap.RANK: 0 good ... 4 bad)."""
        return self._heat[rank]

    def verdict(self, verdict: Verdict) -> str:
        return {Verdict.GOOD: self.good, Verdict.ACCEPTABLE: self.warn, Verdict.BAD: f"bold {self.bad}",
                Verdict.INSUFFICIENT: self.muted, Verdict.UNKNOWN: self.muted}[verdict]

    def task_state(self, state: str) -> str:
        if state == "running":
            return self.good
        if state in TASK_PENDING:
            return self.warn
        if state in TASK_FAILED:
            return f"bold {self.bad}"
        return self.muted

    def node_state(self, state: str, availability: str = "active") -> str:
        if state != "ready":
            return f"bold {self.bad}"
        return self.warn if availability != "active" else self.good


def palette_of(widget) -> Palette:
    return Palette(widget.app.current_theme)


def sync_columns(table: DataTable, columns: Sequence[tuple[str, Text | str]]) -> bool:
    """Make the table's columns exactly these (key, label); rebuild only when they changed. True if rebuilt."""
    wanted = [key for key, _ in columns]
    current = [str(col.key.value) for col in table.ordered_columns]
    labels = [str(label) for _, label in columns]
    current_labels = [str(col.label) for col in table.ordered_columns]
    if wanted == current and labels == current_labels:
        return False
    table.clear(columns=True)
    for key, label in columns:
        table.add_column(label if isinstance(label, Text) else Text(label), key=key)
    return True


FEW_CELLS = 8  # changed cells sync_rows updates in place at most (or one per column, when there are more columns)


def sync_rows(table: DataTable, rows: Mapping[str, Sequence[Text]], height: int = 1) -> None:
    """Update the table to exactly these rows, by key: a few changed cells are updated in place, new rows added
    in order, rows gone removed. Rebuilt instead (each cell measured once) when most rows are gone, the order
    changed, or more cells changed: for each updated cell narrower than its column Textual measures the whole
    column again — a theme switch on a 300-row table was 120,000 measures, seconds of the UI loop."""
    existing = [str(r.value) for r in table.rows]
    known = set(existing)
    kept = [key for key in existing if key in rows]
    new = [key for key in rows if key not in known]
    if len(kept) < len(existing) - len(existing) // 2 or list(rows) != kept + new:
        _rebuild(table, rows, height)
        return
    column_keys = [col.key for col in table.ordered_columns]
    changed = []
    for key in kept:
        for column_key, value in zip(column_keys, rows[key], strict=False):
            try:
                current = table.get_cell(key, column_key)
            except (CellDoesNotExist, RowDoesNotExist):
                continue
            if current is not value and current != value:
                changed.append((key, column_key, value))
        if len(changed) > max(FEW_CELLS, len(column_keys)):
            _rebuild(table, rows, height)
            return
    for key in existing:
        if key not in rows:
            table.remove_row(key)
    for key, column_key, value in changed:
        table.update_cell(key, column_key, value, update_width=True)  # the column grows
    for key in new:
        table.add_row(*rows[key], key=key, height=height)


def _rebuild(table: DataTable, rows: Mapping[str, Sequence[Text]], height: int) -> None:
    cursor, scrolled = table.cursor_coordinate, table.scroll_offset
    table.clear()
    for key, cells in rows.items():
        table.add_row(*cells, key=key, height=height)
    table.cursor_coordinate = cursor
    table.call_after_refresh(table.scroll_to, scrolled.x, scrolled.y, animate=False)  # the view stays where it was
