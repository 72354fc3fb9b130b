"""A viewer of `overlaytui serve`: the dashboard on the serve process's relayed frames, one process per browser tab
(textual-serve starts it with its web driver). Its pane, filter, theme and selection are its own; it is read-only
toward the cluster and toward the serving host: no probing (the serve process probes, once for every viewer; with
`serve --viewer-probe-control` P asks it to start), no recording, no screenshot files, no theme saved into the
config.

    python -m overlaytui.viewer SOCKET [--name SOURCE] [--pane NAME] [--theme NAME] [--thresholds JSON] [--interval S]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .analysis.thresholds import LossThresholds
from .app import TABS, OverlayApp
from .recording import RecordingError, decode
from .settings import Settings
from .sources.relay import RelaySource

PANES = tuple(tab for tab, _label in TABS)
READ_ONLY = {"record", "save_screenshot", "start_probes"}  # files on the serving host; agents on the cluster


class ViewerApp(OverlayApp):
    def __init__(self, source: RelaySource, *, pane: str = "topology", probe_control: bool = False,
                 **options) -> None:
        super().__init__(source, persist_config=False, underlay=lambda addresses: source.underlay_mtus(), **options)
        self.relay = source
        self.start_pane = pane if pane in PANES else "topology"
        self.probe_control = probe_control  # serve --viewer-probe-control: P asks the serve process to probe
        source.on_say = self._say

    def on_mount(self) -> None:
        super().on_mount()
        if self.start_pane != "topology":
            self.action_show_tab(self.start_pane)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A viewer's keys change what it shows, never the cluster or the serving host."""
        if action == "start_probes" and self.probe_control:
            return True
        if action in READ_ONLY:
            return False
        return super().check_action(action, parameters)

    def action_start_probes(self) -> None:
        """P with serve --viewer-probe-control: the serve process starts probing (once, for every viewer)."""
        if self.probe_control:
            self.run_worker(self._ask_to_probe(), group="probe-control")

    async def _ask_to_probe(self) -> None:
        if await self.relay.control("start_probing"):
            self.notify("asked the serve process to probe; the results come in pane 4", timeout=4)
        else:
            self.notify("the serve process is gone", severity="error")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m overlaytui.viewer", description=__doc__.splitlines()[0])
    parser.add_argument("socket", help="the relay's unix socket (overlaytui serve makes it)")
    parser.add_argument("--name", default="", help="what the serve process shows (its source), for the header")
    parser.add_argument("--pane", choices=PANES, default="topology", help="the pane shown first")
    parser.add_argument("--theme", help="the theme (default: the user's, else overlaytui-dark)")
    parser.add_argument("--thresholds", help="the serve process's loss thresholds (JSON)")
    parser.add_argument("--probe-control", action="store_true", help="P asks the serve process to probe")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between frames at most")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        thresholds = decode(LossThresholds, json.loads(args.thresholds)) if args.thresholds else LossThresholds()
    except (ValueError, RecordingError) as exc:
        print(f"overlaytui viewer: --thresholds: {exc}", file=sys.stderr)
        return 2
    source = RelaySource(args.socket, name=args.name)
    app = ViewerApp(source, pane=args.pane, theme=args.theme, interval=args.interval, probe_control=args.probe_control,
                    settings=Settings(thresholds=thresholds))
    app.run()
    if app.return_code:
        return app.return_code
    return 2 if app.failure else 0


if __name__ == "__main__":
    sys.exit(main())
