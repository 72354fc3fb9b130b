"""The presenter's fault picker (`f`): a fault kind on the node, overlay, pair or service under the cursor, its
rate, or the faults there cleared. The app makes the choices (what the cluster's `Faults` offers for what the
pane selects); this screen only lets the user pick one and the rate."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from ..model import Fault
from ..safe import display

DEFAULT_LOSS_PCT = 2.0
DEFAULT_MTU = 1400


@dataclass(frozen=True)
class FaultChoice:
    """One line of the picker: inject `fault` (its value from the rate fields), or clear what `fault` covers."""

    action: str  # inject / clear
    fault: Fault

    def label(self) -> str:
        fault = self.fault
        if self.action == "clear":
            what = f"{fault.kind} " if fault.kind else ""
            return f"clear {what}faults on {fault.subject()}" if fault.target else "clear every fault"
        if fault.kind == "loss":
            return f"loss … % on {fault.subject()}"
        if fault.kind == "mtu":
            return f"MTU black hole (… bytes) on {fault.subject()}"
        return f"{fault.kind} on {fault.subject()}" if fault.kind != "update" else \
            f"rolling update of {fault.service}"

    def with_values(self, loss_pct: float, mtu: float) -> FaultChoice:
        """Its fault with the rate the user gave (loss in percent, MTU in bytes)."""
        if self.action != "inject" or self.fault.kind not in ("loss", "mtu"):
            return self
        return replace(self, fault=replace(self.fault, value=loss_pct if self.fault.kind == "loss" else mtu))


def choices(offers: dict[str, tuple[str, ...]], targets: list[Fault]) -> list[FaultChoice]:
    """Every fault the cluster offers for the targets (most specific first), then clearing each target that can
    have one, then clearing everything."""
    found = []
    for target in targets:
        for kind, takes in offers.items():
            if target.target in takes:
                found.append(FaultChoice("inject", replace(target, kind=kind)))
    found += [FaultChoice("clear", target) for target in targets
              if any(target.target in takes for takes in offers.values())]
    found.append(FaultChoice("clear", Fault("")))
    return found


def parse_value(text: str, low: float, high: float) -> float | None:
    """A rate the user typed, or None when it is not a number within [low, high]."""
    try:
        value = float(text.strip().rstrip("%").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and low <= value <= high else None


class FaultScreen(ModalScreen[FaultChoice | None]):
    """Pick a fault to inject (with its rate) or what to clear; esc leaves without doing anything."""

    DEFAULT_CSS = """
    FaultScreen { align: center middle; }
    FaultScreen > Vertical { width: 72; max-width: 100%; height: auto; max-height: 90%; background: $surface;
                             border: round $primary; padding: 0 1; }
    FaultScreen Horizontal { height: auto; }
    FaultScreen Input { width: 1fr; }
    FaultScreen Horizontal > Label { padding: 1 1 0 0; }
    FaultScreen OptionList { height: auto; max-height: 16; }
    FaultScreen #fault-problem { color: $error; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Close", id="fault.close")]
    AUTO_FOCUS = "OptionList"

    def __init__(self, where: str, options: list[FaultChoice], loss_pct: float = DEFAULT_LOSS_PCT,
                 mtu: float = DEFAULT_MTU) -> None:
        super().__init__()
        self.where = where
        self.options = options
        self.loss_pct, self.mtu = loss_pct, mtu

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Fault: {display(self.where)}", style="bold"))
            yield Label(Text("enter picks · tab: the rates · esc closes", style="dim"))
            with Horizontal():
                yield Label("loss %")
                yield Input(f"{self.loss_pct:g}", id="fault-loss", restrict=r"[0-9.]*", max_length=8)
                yield Label("MTU bytes")
                yield Input(f"{self.mtu:g}", id="fault-mtu", restrict=r"[0-9]*", max_length=4)
            yield OptionList(*(Option(Text(display(c.label())), id=str(i)) for i, c in enumerate(self.options)),
                             id="fault-options")
            yield Label("", id="fault-problem")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0  # enter picks the first at once

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        loss = parse_value(self.query_one("#fault-loss", Input).value, 0.001, 100)
        mtu = parse_value(self.query_one("#fault-mtu", Input).value, 576, 9000)
        problem = self.query_one("#fault-problem", Label)
        if loss is None:
            problem.update("loss %: a number above 0, up to 100")
            return
        if mtu is None:
            problem.update("MTU bytes: 576 to 9000")
            return
        choice = self.options[int(event.option.id or 0)]
        self.dismiss(choice.with_values(loss, mtu))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
