"""The booth tour (`--tour`): a scripted walk through the panes with a caption, looping — a fault injected where
the cluster offers faults (the demo; the lab as root; serve --presenter), shown where it appears, then cleared.
Any key stops it. The steps are data; the app plays them (`OverlayApp.play_tour`)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.widgets import Static


@dataclass(frozen=True)
class Step:
    pane: str  # the pane shown
    seconds: float  # how long
    caption: str  # "{node}": the node the tour plays its fault on
    fault: str = ""  # "inject": loss on the node; "clear": the node's faults cleared; "shown": the fault's effect
    # (a step with a fault is played only where the cluster offers faults)


TOUR_LOSS_PCT = 20.0  # the loss the tour injects: plain in the Loss pane within one round

TOUR = (
    Step("topology", 10, "Topology: every overlay is a bus through the nodes it reaches, with its VNI, subnet, MTU "
         "and services; the line under the title names the worst problem"),
    Step("placement", 8, "Placement: every service's tasks on every node — running, pending, failed"),
    Step("netio", 8, "NetIO: overlay traffic per node, service or network, over time"),
    Step("loss", 8, "Loss: every pair of nodes on an overlay, probed — loss, RTT and path MTU"),
    Step("loss", 25, f"Now {TOUR_LOSS_PCT:g} % of the packets arriving at {{node}} are dropped: its row and column "
         "turn red from the next probe round", fault="inject"),
    Step("findings", 10, "Findings: the doctor names the cause — loss through {node} — with its evidence and fix",
         fault="shown"),
    Step("timeline", 8, "Timeline: what changed and when, newest first"),
    Step("loss", 15, "The fault is cleared: the next round is clean; the recent window still remembers it",
         fault="clear"),
    Step("topology", 6, "overlaytui: a dashboard for Docker Swarm overlay networks (any key takes over)"),
)


class Caption(Static):
    """The tour's caption, above the status bar (hidden when no tour runs)."""

    DEFAULT_CSS = """
    Caption { height: auto; padding: 0 1; background: $primary; color: $text; display: none; }
    """
