"""`overlaytui serve`: the dashboard in a browser, one producer for every viewer.

textual-serve (PyPI) turns a Textual app into a web page by starting one app process per browser tab, each
holding its own copy of everything. Here every tab is a viewer (`viewer.ViewerApp`, the dashboard, read-only) in
this process, on a thread of its own, speaking textual-serve's browser protocol (its page and xterm.js; our
driver, `viewer.TabDriver`): this process runs the one producer (the engine connections, the stats streams, the
probe agents with --probe) and hands its frames, the same immutable objects, to every viewer (`feed.FrameFeed`).
N tabs cost one set of engine connections and agents and one decoded cluster, plus each tab's own widgets, with
its own pane, filter, theme and selection.

Access: 127.0.0.1 by default, open to this host's users. Any other address needs a token (given with --token or
OVERLAYTUI_SERVE_TOKEN, else generated and printed): the page asks for it, or the URL carries it (?token=). The
page hands its viewer a ticket (single use, 60 s) in the websocket's path: a websocket without one is refused, so
another site's page cannot open a viewer; on a loopback address the Host header must name this host (no DNS
rebinding). `?fontsize=N` (6-72) and `?pane=loss` (a start pane) for projectors; `?theme=NAME`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import html
import ipaddress
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import memory
from ..httpd import parse_listen
from .common import bounded, faults_from_args, say_on_stderr, settings_from_args, source_from_args, underlay_reader
from .dashboard import add_flags as add_dashboard_flags

DEFAULT_LISTEN = "127.0.0.1:8470"
TICKET_LIFE = 60.0  # seconds a page's ticket opens its viewer
TICKETS_KEPT = 1000  # tickets not used yet (the oldest go)
VIEWER_STOP_WAIT = 5.0  # seconds a viewer has to quit when its browser left (then left to end on its own)
PANES = ("topology", "placement", "netio", "loss", "networks", "findings", "timeline")  # app.TABS, without the app
LOOPBACK_NAMES = {"localhost", "localhost."}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="the dashboard in a browser: one producer, every browser tab a viewer of its frames",
        description="The dashboard in a browser: one producer (engine connections, stats streams, probe agents) and "
        "every browser tab a viewer of its frames. See README, In a browser.")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDR:PORT",
                        help=f"where to listen (default {DEFAULT_LISTEN}: this host only; any other address needs "
                        "a token)")
    parser.add_argument("--token", metavar="TOKEN",
                        help="the access token the page asks for (env OVERLAYTUI_SERVE_TOKEN; default: none on a "
                        "loopback address, else one generated and printed)")
    parser.add_argument("--max-viewers", type=bounded(int, 1, 500), default=20, metavar="N",
                        help="browser tabs open at once, at most (default 20; each is a dashboard of its own)")
    parser.add_argument("--viewer-probe-control", action="store_true",
                        help="a viewer's P starts probing here (once, for every viewer); without it viewers are "
                        "read-only toward the cluster (--probe starts probing at launch)")
    parser.add_argument("--presenter", action="store_true",
                        help="viewers may play faults: f and the palette inject and clear them here, on the source "
                        "every viewer shows (the demo's simulated faults; the lab's real ones with --lab as root), "
                        "said in every viewer; P starts probing too. Without it viewers cannot inject anything")
    add_dashboard_flags(parser)
    parser.set_defaults(handler=main)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def access_token(host: str, given: str) -> str:
    """The token the page asks for: the one given, else none on a loopback address, else a new one."""
    if given or is_loopback(host):
        return given
    return secrets.token_urlsafe(16)


def main(args: argparse.Namespace) -> int:
    try:
        import aiohttp  # noqa: F401
        import textual_serve  # noqa: F401
    except ImportError:
        print("overlaytui serve: needs textual-serve (pip install 'overlaytui[serve]')", file=sys.stderr)
        return 2
    memory.keep_less()  # before any thread starts
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"overlaytui serve: {exc}", file=sys.stderr)
        return 2
    token = access_token(host, args.token or os.environ.get("OVERLAYTUI_SERVE_TOKEN") or "")
    settings = settings_from_args(args, "serve")
    if settings is None:
        return 2
    source = _source(args)
    if source is None:
        return 2
    from ..probes.session import ProbeSettings
    from ..producer import Producer
    from ..settings import Settings

    probe = ProbeSettings(image=settings.probe_image, start=args.probe, iperf_every_rounds=10,
                          window_s=settings.window_s,
                          kinds=("ping", "mtu", "discovery", *(("iperf",) if args.probe_iperf else ())))

    def producer(say: Callable[[str, str], None]) -> Producer:
        return Producer(source, thresholds=settings.thresholds, underlay=underlay_reader(args),
                        interval=args.interval, reconcile=args.reconcile, probe=probe,
                        probe_every=args.probe_every, call_timeout=args.timeout, say=say,
                        deep=settings.deep_settings(),  # --deep: read once here, for every viewer
                        retry_probing=True)  # nobody at a keyboard to press P again: a failed start is retried
    theme = args.theme or settings.theme
    faults = faults_from_args(args, source) if args.presenter else None
    if args.presenter and faults is None:
        print(f"overlaytui serve: --presenter: {source.name} has no faults to play (the demo has; the lab's as "
              "root)", file=sys.stderr)
    stage = Stage(producer, host=host, port=port, token=token, max_viewers=args.max_viewers,
                  viewer_options={"interval": args.interval, "settings": Settings(thresholds=settings.thresholds),
                                  "probe_control": args.viewer_probe_control or args.presenter, "tour": args.tour},
                  theme=theme, say=say_on_stderr("serve"), probe=args.probe, faults=faults)
    try:
        return asyncio.run(stage.run())
    except KeyboardInterrupt:
        return 130


def _source(args: argparse.Namespace):
    """The dashboard's sources: a recording (--replay, played here for every viewer), the demo, the engines."""
    if not args.replay:
        if args.at:
            print("overlaytui serve: --at needs --replay FILE", file=sys.stderr)
            return None
        return source_from_args(args)
    from ..recording import RecordingError, load
    from ..sources.replay import ReplaySource
    from .common import parse_at

    try:
        recording = load(args.replay, getattr(args, "recording_limits", None))
        at = parse_at(args.at, recording.start, recording.end) if args.at else None
    except (RecordingError, ValueError) as exc:
        print(f"overlaytui serve: {exc}", file=sys.stderr)
        return None
    replay = ReplaySource(args.replay, speed=args.speed, at=at)
    replay.load(recording)
    return replay


class Stage:
    """The serve process: the producer, its feed, and the web server whose tabs are viewers."""

    def __init__(self, make_producer: Callable[[Callable[[str, str], None]], Any], *, host: str, port: int,
                 token: str, max_viewers: int, viewer_options: dict[str, Any], theme: str | None, say: Any,
                 probe: bool, faults: Any = None) -> None:
        from ..feed import FrameFeed

        self._say_line = say
        self.producer = make_producer(self.say)  # its lines: on stderr and in every viewer
        self.host, self.port, self.token = host, port, token
        self.max_viewers = max_viewers
        self.viewer_options = viewer_options  # ViewerApp's (interval, settings, probe_control, faults)
        if faults is not None:  # serve --presenter: a viewer's faults are asked of this process's source
            self.viewer_options = {**viewer_options, "faults": PresenterFaults(self, faults)}
        self.theme = theme
        self.probe = probe
        self.feed = FrameFeed(on_control=self.control if viewer_options.get("probe_control") else None)
        self.tickets: dict[str, tuple[float, str, str | None]] = {}  # ticket -> (made at, pane, theme)
        self.viewers: dict[Any, asyncio.Future] = {}  # the tabs open (viewer.Tab) -> their viewer's end
        self.opened = 0  # viewers opened since start (their numbers in serve's lines)
        self.stopping = asyncio.Event()

    def say(self, severity: str, text: str) -> None:
        self._say_line(severity, text)
        self.feed.say(severity, text)

    def control(self, action: str) -> None:
        """A viewer's P (serve --viewer-probe-control): probing starts here, once for every viewer."""
        producer = self.producer
        if action != "start_probing" or producer.probing or not producer.started.is_set():
            return
        if not producer.can_probe:
            self.feed.say("information", f"{producer.source.name} has its own probe results (pane 4)")
            return
        self.say("information", "a viewer started probing: deploying the probe agents")
        producer.start_probing()

    async def run(self) -> int:
        from aiohttp import web

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        self.feed.bind()
        self.producer.add_sink(self.feed.publish)
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            print(f"overlaytui serve: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                  file=sys.stderr)
            await runner.cleanup()
            await self.producer.close()
            return 2
        where = f"[{self.host}]" if ":" in self.host else self.host
        url = f"http://{where}:{self.port}/" + (f"?token={self.token}" if self.token else "")
        print(f"overlaytui serve: {self.producer.source.name} on {url}"
              + ("" if self.token else " (this host only)"), flush=True)
        collect = asyncio.ensure_future(self._collect())
        try:
            await self.stopping.wait()
        finally:
            await self._stop_viewers()
            await runner.cleanup()
            collect.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await collect
            await self.producer.close()
        return 2 if self.producer.failure else 0

    async def _collect(self) -> None:
        producer = self.producer
        task = asyncio.ensure_future(producer.run())
        await producer.started.wait()
        if producer.failure:
            self.feed.fail(producer.failure)
            self._say_line("error", producer.failure)
        elif self.probe and producer.can_probe:
            producer.start_probing()
        await task

    # -------------------------------------------------------------------------------------------- web

    def make_app(self):
        from aiohttp import web
        from textual_serve.server import Server

        self._textual = Server("overlaytui viewer")  # its static files (the page's script, xterm.js, fonts)
        app = web.Application(client_max_size=4096)
        app.add_routes([web.get("/", self.index), web.get("/ws/{ticket}", self.websocket),
                        web.static("/static", self._textual.statics_path)])
        return app

    def _host_ok(self, request) -> bool:
        """On a loopback address the page must be asked for by this host's name (a rebound DNS name is not)."""
        if not is_loopback(self.host):
            return True
        name = request.host.rsplit(":", 1)[0] if not request.host.startswith("[") else request.host.split("]")[0]
        return is_loopback(name.strip("[]"))

    async def index(self, request):
        from aiohttp import web

        if not self._host_ok(request):
            return web.Response(status=421, text="overlaytui serve: this page is served to this host only\n")
        given = request.query.get("token", "")
        if self.token and not hmac.compare_digest(given.encode(), self.token.encode()):
            wrong = bool(given)
            return web.Response(status=403 if wrong else 401, content_type="text/html",
                                text=token_page(wrong, request.query))
        if len(self.viewers) >= self.max_viewers:
            return web.Response(status=503, text=f"overlaytui serve: {self.max_viewers} viewers are open already "
                                "(--max-viewers)\n")
        pane = request.query.get("pane", "topology")
        theme = request.query.get("theme") or self.theme
        font = _int(request.query.get("fontsize"), 16, 6, 72)
        now = time.monotonic()
        for old in [t for t, (made, *_rest) in self.tickets.items() if now - made > TICKET_LIFE]:
            del self.tickets[old]
        while len(self.tickets) >= TICKETS_KEPT:
            del self.tickets[next(iter(self.tickets))]
        ticket = secrets.token_urlsafe(24)
        self.tickets[ticket] = (now, pane if pane in PANES else "topology", theme)
        scheme = "wss" if request.secure else "ws"
        return web.Response(content_type="text/html", text=viewer_page(
            f"{scheme}://{request.host}/ws/{ticket}", font, self.producer.source.name),
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    async def websocket(self, request):
        from aiohttp import web

        from ..viewer import Tab, ViewerApp, run_viewer

        entry = self.tickets.pop(request.match_info["ticket"], None)
        if entry is None or time.monotonic() - entry[0] > TICKET_LIFE or not self._host_ok(request):
            return web.Response(status=403, text="overlaytui serve: open the page first (its ticket is single use)\n")
        if len(self.viewers) >= self.max_viewers:
            return web.Response(status=503, text=f"overlaytui serve: {self.max_viewers} viewers are open already\n")
        _made, pane, theme = entry
        socket = web.WebSocketResponse(heartbeat=15, max_msg_size=1 << 20)
        await socket.prepare(request)
        loop = asyncio.get_running_loop()
        tab = Tab(_int(request.query.get("width"), 80, 10, 1000), _int(request.query.get("height"), 24, 5, 500))
        stopped: asyncio.Future[str] = loop.create_future()
        self.opened += 1
        number = self.opened

        def make_app() -> ViewerApp:
            return ViewerApp(self.feed, name=self.producer.source.name, tab=tab, pane=pane, theme=theme,
                             **self.viewer_options)

        def done(error: str) -> None:  # the viewer's thread, at its end
            tab.ended()
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: stopped.done() or stopped.set_result(error))

        self.viewers[tab] = stopped
        self._say_line("information", f"viewer {number} opened ({len(self.viewers)} open)")
        run_viewer(make_app, done)
        sending = asyncio.ensure_future(self._send(socket, tab))
        try:
            with contextlib.suppress(Exception):  # a malformed message ends this viewer, not the server
                await self._receive(socket, tab)
        finally:  # shielded: aiohttp cancels the handler of a connection that is gone
            await asyncio.shield(self._close_viewer(number, socket, tab, stopped, sending))
        return socket

    async def _close_viewer(self, number: int, socket, tab, stopped: asyncio.Future, sending: asyncio.Future) -> None:
        """Its browser left (or the viewer ended): the viewer quits, bounded; said on stderr."""
        self.viewers.pop(tab, None)
        tab.close()
        with contextlib.suppress(Exception):
            await socket.close()
        error = await self._stopped(stopped)
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sending
        why = " (its browser did not read its screen)" if tab.behind else f": {error}" if error else ""
        self._say_line("error" if error else "information", f"viewer {number} closed{why} ({len(self.viewers)} open)")

    async def _receive(self, socket, tab) -> None:
        """The browser's messages (textual-serve's protocol): keys, resizes, focus, pings."""
        from aiohttp import WSMsgType

        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            envelope = json.loads(message.data)
            kind = envelope[0]
            if kind == "stdin":
                tab.input(str(envelope[1]))
            elif kind == "resize":
                size = envelope[1]
                tab.resize(_int(str(size["width"]), 80, 10, 1000), _int(str(size["height"]), 24, 5, 500))
            elif kind == "ping":
                await socket.send_json(["pong", envelope[1]])
            elif kind in ("focus", "blur"):
                tab.focus(kind == "focus")

    @staticmethod
    async def _send(socket, tab) -> None:
        """What the viewer draws, to the browser; the websocket closes when the viewer ends."""
        with contextlib.suppress(Exception):
            async for data in tab.output_chunks():
                await socket.send_bytes(data)
        with contextlib.suppress(Exception):
            await socket.close()

    @staticmethod
    async def _stopped(stopped: asyncio.Future) -> str:
        """The viewer's end (bounded: one that does not stop in time is left to end on its own)."""
        try:
            return await asyncio.wait_for(asyncio.shield(stopped), VIEWER_STOP_WAIT)
        except TimeoutError:
            return f"did not stop within {VIEWER_STOP_WAIT:g} s (left to end on its own)"

    async def _stop_viewers(self) -> None:
        """Every viewer quits (bounded)."""
        for tab in list(self.viewers):
            tab.close()
        if self.viewers:
            await asyncio.wait([asyncio.shield(end) for end in self.viewers.values()], timeout=VIEWER_STOP_WAIT)


class PresenterFaults:
    """A viewer's faults with serve --presenter (`sources.base.Faults`): each request runs on serve's loop, on the
    faults of the one source every viewer shows, and what was done is said in every viewer (and on stderr); a
    refusal comes back to the viewer that asked."""

    def __init__(self, stage: Stage, faults: Any) -> None:
        self.stage, self.faults = stage, faults
        self.offers = faults.offers

    async def inject(self, fault) -> str:
        return await self._ask(self.faults.inject, fault)

    async def clear(self, target) -> str:
        return await self._ask(self.faults.clear, target)

    async def _ask(self, act: Callable[[Any], Any], fault) -> str:
        from ..sources.base import FaultError

        async def work() -> str:
            said = await act(fault)
            self.stage.say("information", f"presenter: {said}")
            return ""  # said in every viewer already, the one that asked included

        try:
            return await self.stage.feed.call(work)
        except RuntimeError as exc:  # serve is stopping
            raise FaultError(str(exc)) from None


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(text or default), low), high)
    except ValueError:
        return default


PAGE_STYLE = """body{margin:0;background:#0c181f;color:#e6e6e6;font-family:'Roboto Mono',monospace}
@font-face{font-family:'Roboto Mono';src:url('/static/fonts/RobotoMono-VariableFont_wght.ttf')}
.textual-terminal{width:100vw;height:100vh}
.dialog{position:absolute;inset:0;display:none;align-items:center;justify-content:center;z-index:10}
body.-closed .dialog{display:flex}
.box{background:#12232d;padding:32px;text-align:center}
button,input{font:inherit;padding:8px 16px;margin:8px}
"""


def viewer_page(websocket_url: str, font_size: int, name: str) -> str:
    """textual-serve's page, without the outside fonts, with a ticketed websocket."""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>overlaytui | {html.escape(name)}</title>
<link rel="stylesheet" href="/static/css/xterm.css"><script src="/static/js/textual.js"></script>
<style>{PAGE_STYLE}</style></head>
<body>
<div class="dialog"><div class="box"><div>The viewer ended.</div>
<button type="button" onclick="location.reload()">Open again</button></div></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{html.escape(websocket_url)}"
 data-font-size="{font_size}"></div>
</body></html>
"""


def token_page(wrong: bool, query) -> str:
    """The page that asks for the token (the other parameters kept)."""
    kept = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                   for k, v in query.items() if k in ("pane", "fontsize", "theme"))
    message = "That token is wrong." if wrong else "This overlaytui needs its access token."
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>overlaytui: token</title><style>{PAGE_STYLE}</style></head>
<body class="-closed"><div class="dialog"><form class="box" method="get" action="/">
<div id="message">{message}</div>
<input name="token" type="password" autocomplete="off" autofocus aria-label="access token">{kept}
<button type="submit">Open</button></form></div></body></html>
"""

