"""Findings: what the doctor's checks say, worst first, with the evidence and the fix of the row under the cursor;
enter highlights the finding's subject (node, overlay, service) in the other panes."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ..analysis.findings import Finding, Severity
from .common import Picked, RenderGuard, Selection, View, palette_of, sync_columns, sync_rows, text, view_values
from .common import SafeText as Text
from .keptable import KeptTable


class FindingsPane(Widget):
    DEFAULT_CSS = """
    FindingsPane { height: 1fr; }
    FindingsPane > DataTable { height: 1fr; }
    FindingsPane > #finding-detail { height: auto; max-height: 8; padding: 0 1; background: $panel; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._guard = RenderGuard()
        self._findings: dict[str, Finding] = {}

    def compose(self) -> ComposeResult:
        yield KeptTable(id="findings-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="finding-detail")

    def show(self, view: View) -> None:
        frame = view.frame
        if self._guard.unchanged((frame.findings,), (frame.taken_at if not frame.findings else 0,
                                                     *view_values(view, self))):
            return
        colors = palette_of(self)
        style = {Severity.ERROR: f"bold {colors.bad}", Severity.WARNING: colors.warn, Severity.INFO: colors.muted,
                 Severity.OK: colors.good}
        findings = [f for f in frame.findings if view.matches(f.check, f.subject, f.summary)]
        table = self.query_one(DataTable)
        table.display = bool(findings)
        sync_columns(table, [("severity", text("severity")), ("check", text("check")), ("subject", text("subject")),
                             ("summary", text("what is wrong"))])
        self._findings = {f"{f.check}|{f.subject}": f for f in findings}
        sync_rows(table, {key: [text(str(f.severity), style[f.severity]), text(f.check), text(f.subject),
                                text(f.summary)] for key, f in self._findings.items()})
        if not findings:
            at = time.strftime("%H:%M:%S", time.localtime(frame.taken_at))
            note = Text()
            if frame.findings:  # the filter hides them
                note.append(f"No findings match the filter ({len(frame.findings)} hidden; esc clears it).",
                            style=colors.warn)
            else:
                note.append(f"No findings at {at}: every check passes.", style=f"bold {colors.good}")
            note.append(f"\nChecked: {frame.checked()}.", style=colors.muted)
            self.query_one("#finding-detail", Static).update(note)
        else:
            self._detail(table.cursor_row)

    def _detail(self, row: int) -> None:
        table = self.query_one(DataTable)
        if not self._findings or row < 0 or row >= table.row_count:
            return
        key = str(table.coordinate_to_cell_key((row, 0)).row_key.value)
        finding = self._findings.get(key)
        if finding is None:
            return
        detail = Text()
        detail.append("evidence: ", style="bold")
        detail.append(finding.evidence + "\n")
        detail.append("fix: ", style="bold")
        detail.append(finding.remedy)
        if finding.details:  # a root cause: the per-pair findings it explains, right here
            detail.append(f"\nexplains {len(finding.details)}: ", style="bold")
            detail.append("; ".join(f"{d.subject}: {d.summary}" for d in finding.details[:12])
                          + (" …" if len(finding.details) > 12 else ""))
        self.query_one("#finding-detail", Static).update(detail)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._detail(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        finding = self._findings.get(str(event.row_key.value))
        if finding is None or not finding.subject_key:
            return
        # a pair finding highlights the overlay it was measured on
        kind = "network" if finding.subject_kind == "pair" else finding.subject_kind
        if kind in ("node", "network", "service"):
            self.post_message(Picked("findings", Selection(kind, finding.subject_key, finding.subject_key)))
