"""What the command line declares that other modules also use, importable in a blink: `overlaytui --help` and
`--version` build their parser from this module and argparse alone (no engine client, model, UI or exporter is
imported before a command runs; a unit test walks `python -X importtime` to keep it so)."""

from __future__ import annotations

import argparse
import math

RECONCILE = 15.0  # seconds: every engine re-read at least this often (there are no task events), all commands

SCENARIOS = {  # the demo's scenarios (overlaytui.sources.demo) and what each shows
    "healthy": "everything works",
    "loss": "node4 drops 2 % of the VXLAN packets it receives",
    "mtu": "the underlay through node3 has MTU 1400: full-size overlay packets vanish (a black hole)",
    "node-down": "node5 goes down 8 s after the start; its tasks are rescheduled",
    "rolling-update": "service api rolls to a new image, one task every 10 s",
    "bad-node": "one node two thirds down the list (node133 of 200, node3 of 5) loses 1 % of the VXLAN packets "
                "through it and its underlay fits only 1400 bytes",
}

LIMITS_HELP = ("raise what a recording may hold before reading stops with one line: line_mb (one record, default "
               "128), records (lines, default 1000000), depth (JSON nesting, default 32), moments (default 200000); "
               "e.g. records=5000000,line_mb=512 (also OVERLAYTUI_RECORDING_LIMITS)")


def add_threshold_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--loss-good", type=pct, metavar="PCT",
                        help="loss below PCT %% is good (default 0.01; env OVERLAYTUI_LOSS_GOOD_PCT; config "
                        "[thresholds] loss_good_pct)")
    parser.add_argument("--loss-acceptable", type=pct, metavar="PCT",
                        help="loss below PCT %% is acceptable, at or above it bad (default 0.1; env "
                        "OVERLAYTUI_LOSS_ACCEPTABLE_PCT; config [thresholds] loss_acceptable_pct)")


def pct(text: str) -> float:
    """A loss threshold in percent, above 0 and below 100 (an argparse type: one line when it is not)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be a percentage above 0 and below 100 (got {text})")
    return value
