"""`overlaytui serve`'s web side without a browser (tests/ui/test_serve_browser.py drives chromium): who gets a
token, the pages a request gets (token asked for, wrong, right; the Host checked on loopback; the viewers' cap),
tickets single use and short-lived, the URL's parameters bounded."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from overlaytui.commands import serve
from overlaytui.producer import Producer
from overlaytui.sources.demo import DemoSource


@pytest.mark.parametrize("host, given, kind", [
    ("127.0.0.1", "", "none"), ("::1", "", "none"), ("localhost", "", "none"), ("127.0.0.1", "mine", "given"),
    ("0.0.0.0", "", "new"), ("192.0.2.7", "", "new"), ("::", "", "new"), ("example.org", "", "new"),
    ("0.0.0.0", "mine", "given")])
def test_a_token_is_needed_off_loopback(host, given, kind):
    token = serve.access_token(host, given)
    assert {"none": token == "", "given": token == "mine", "new": len(token) >= 20}[kind]
    if kind == "new":
        assert serve.access_token(host, given) != token  # generated per run


def _stage(token: str = "", max_viewers: int = 2, host: str = "127.0.0.1") -> serve.Stage:
    return serve.Stage(lambda say: Producer(DemoSource("healthy"), say=say), host=host, port=1, token=token,
                       max_viewers=max_viewers, viewer_options={}, theme=None, say=lambda s, t: None, probe=False)


async def _client(stage: serve.Stage) -> TestClient:
    client = TestClient(TestServer(stage.make_app()))
    await client.start_server()
    return client


async def test_the_token_page_the_wrong_token_and_the_right_one():
    stage = _stage(token="s3cret")
    client = await _client(stage)
    try:
        asked = await client.get("/?pane=loss&fontsize=30")
        assert asked.status == 401 and "needs its access token" in await asked.text()
        assert 'name="pane" value="loss"' in await asked.text()  # kept through the form
        wrong = await client.get("/?token=s3cre")
        assert wrong.status == 403 and "wrong" in await wrong.text()
        assert not stage.tickets  # nothing handed out
        right = await client.get("/?token=s3cret&pane=loss&fontsize=300")
        page = await right.text()
        assert right.status == 200 and 'data-font-size="72"' in page  # bounded
        assert right.headers["Cache-Control"] == "no-store"
        ticket = re.search(r"/ws/([\w-]+)", page)[1]
        assert stage.tickets[ticket][1] == "loss"
    finally:
        await client.close()


async def test_tickets_are_single_use_and_short_lived_and_the_host_is_checked_on_loopback(monkeypatch):
    stage = _stage()
    client = await _client(stage)
    try:
        rebound = await client.get("/", headers={"Host": "attacker.example:8470"})
        assert rebound.status == 421  # a DNS name rebound to 127.0.0.1 is not this host
        assert (await client.get("/", headers={"Host": "localhost:8470"})).status == 200
        assert (await client.get("/ws/made-up")).status == 403
        page = await (await client.get("/?pane=nonsense")).text()
        ticket = re.search(r"/ws/([\w-]+)", page)[1]
        assert stage.tickets[ticket][1] == "topology"  # an unknown pane: the first
        made, pane, theme = stage.tickets[ticket]
        stage.tickets[ticket] = (made - serve.TICKET_LIFE - 1, pane, theme)
        assert (await client.get(f"/ws/{ticket}")).status == 403  # expired
        assert ticket not in stage.tickets  # and gone
        now = time.monotonic()
        stage.tickets = {f"t{i}": (now, "topology", None) for i in range(serve.TICKETS_KEPT)}
        await client.get("/")
        assert len(stage.tickets) == serve.TICKETS_KEPT and "t0" not in stage.tickets  # the oldest went
    finally:
        await client.close()


async def test_viewers_beyond_the_cap_are_refused():
    stage = _stage(max_viewers=1)
    client = await _client(stage)
    try:
        stage.viewers[object()] = asyncio.get_running_loop().create_future()  # one viewer running
        full = await client.get("/")
        assert full.status == 503 and "--max-viewers" in await full.text()
    finally:
        stage.viewers.clear()
        await client.close()


# ------------------------------------------------------------------------------ viewers in the serve process


class Tab:
    """A browser tab's websocket without the browser: what its viewer drew (escape sequences and all)."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.drawn = bytearray()
        self.texts: list[str] = []
        self.closed = False

    async def until(self, predicate, timeout: float, what: str) -> None:
        """Read what comes until `predicate(self)`; fail after `timeout` seconds."""
        from aiohttp import WSMsgType

        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
            try:
                message = await asyncio.wait_for(self.socket.receive(), left)
            except TimeoutError:
                continue
            if message.type == WSMsgType.BINARY:
                self.drawn += message.data
            elif message.type == WSMsgType.TEXT:
                self.texts.append(message.data)
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                self.closed = True
                if not predicate(self):
                    pytest.fail(f"the tab closed while waiting for {what}")

    async def press(self, key: str) -> None:
        self.drawn.clear()
        await self.socket.send_json(["stdin", key])


async def _open_tab(client: TestClient, query: str = "") -> Tab:
    page = await (await client.get("/" + query)).text()
    ticket = re.search(r"/ws/([\w-]+)", page)[1]
    tab = Tab(await client.ws_connect(f"/ws/{ticket}?width=120&height=40"))
    await tab.until(lambda t: b"Topology" in t.drawn and b"node4" in t.drawn, 20, "the dashboard's first screen")
    return tab


class Serving:
    """A Stage serving the demo in this process (its producer running, frames fed), its lines kept."""

    def __init__(self, source: DemoSource | None = None) -> None:
        self.said: list[str] = []
        source = source or DemoSource("loss", seed=1)
        self.stage = serve.Stage(lambda say: Producer(source, say=say, interval=0.5),
                                 host="127.0.0.1", port=1, token="", max_viewers=5, viewer_options={}, theme=None,
                                 say=lambda severity, text: self.said.append(text), probe=False)

    async def __aenter__(self) -> TestClient:
        stage = self.stage
        stage.feed.bind()
        stage.producer.add_sink(stage.feed.publish)
        self.collect = asyncio.ensure_future(stage._collect())
        self.client = await _client(stage)
        return self.client

    async def __aexit__(self, *exc) -> None:
        await self.client.close()
        await self.stage._stop_viewers()
        self.collect.cancel()
        await self.stage.producer.close()


def _viewer_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "overlaytui-viewer" and t.is_alive()]


async def test_each_tab_is_a_viewer_in_this_process_and_a_closed_tab_frees_it_at_once():
    serving = Serving()
    async with serving as client:
        first, second = await _open_tab(client), await _open_tab(client, "?pane=networks")
        assert len(serving.stage.viewers) == 2 and len(_viewer_threads()) >= 2
        await second.until(lambda t: b"VNI" in t.drawn, 10, "the second tab's own start pane")
        await first.press("4")
        await first.until(lambda t: b"from" in t.drawn, 10, "the Loss pane in the first tab")
        await second.socket.close()
        await _until(lambda: "viewer 2 closed (1 open)" in serving.said, 10)  # its thread ended
        assert len(serving.stage.viewers) == 1
        await first.press("2")
        await first.until(lambda t: b"Placement" in t.drawn, 10, "the first tab going on")
    assert not serving.stage.viewers
    await _until(lambda: not _viewer_threads(), 10)  # every viewer's thread ended with serve
    assert "viewer 1 opened (1 open)" in serving.said and "viewer 2 opened (2 open)" in serving.said


async def test_a_viewer_that_fails_ends_its_tab_only(monkeypatch):
    from overlaytui.viewer import ViewerApp

    show_tab = ViewerApp.action_show_tab

    def broken(app, tab: str) -> None:
        if tab == "netio" and app.tab is first_tab:
            raise RuntimeError("a pane that cannot draw")
        show_tab(app, tab)
    monkeypatch.setattr(ViewerApp, "action_show_tab", broken)
    serving = Serving()
    async with serving as client:
        first = await _open_tab(client)
        first_tab = next(iter(serving.stage.viewers))
        second = await _open_tab(client)
        await first.press("3")
        await first.until(lambda t: t.closed, 15, "the failed viewer's tab to close")
        await _until(lambda: any("viewer 1 closed: RuntimeError: a pane that cannot draw" in line
                                 for line in serving.said), 10)
        assert len(serving.stage.viewers) == 1
        await second.press("3")
        await second.until(lambda t: b"NetIO" in t.drawn, 10, "the other tab going on")
        assert not serving.collect.done()  # the producer goes on


async def test_one_viewers_slow_render_does_not_hold_the_others(monkeypatch):
    import threading

    from overlaytui.viewer import ViewerApp

    on_frame_ready = ViewerApp.on_frame_ready
    stalled = threading.Event()
    release = threading.Event()

    def slow(app, message) -> None:
        if app.tab is first_tab and not release.is_set():
            stalled.set()
            release.wait(20)  # a render that holds its viewer's thread
        on_frame_ready(app, message)
    serving = Serving()
    async with serving as client:
        first = await _open_tab(client)
        first_tab = next(iter(serving.stage.viewers))
        monkeypatch.setattr(ViewerApp, "on_frame_ready", slow)
        second = await _open_tab(client)
        await asyncio.to_thread(stalled.wait, 10)
        assert stalled.is_set()
        started = time.monotonic()
        await second.press("5")  # the other tab answers a key while the first is stuck
        await second.until(lambda t: b"driver" in t.drawn, 5, "the other tab's Networks pane")
        assert time.monotonic() - started < 5
        await second.socket.send_json(["ping", "p1"])  # and serve's loop answers
        await second.until(lambda t: t.texts, 5, "the pong")
        assert second.texts == ['["pong", "p1"]']
        release.set()
        await first.press("2")
        await first.until(lambda t: b"Placement" in t.drawn, 10, "the first tab once its render ended")


class Unstartable(DemoSource):
    async def start(self) -> None:
        raise ConnectionRefusedError("no engine at unix:///nowhere.sock")


async def test_a_producer_that_cannot_start_shows_its_reason_in_every_viewer():
    serving = Serving(Unstartable("healthy"))
    async with serving as client:
        await _until(lambda: serving.collect.done(), 10)  # the producer gave up: its failure is the feed's
        tabs = []
        for _ in range(2):
            page = await (await client.get("/")).text()
            ticket = re.search(r"/ws/([\w-]+)", page)[1]
            tabs.append(Tab(await client.ws_connect(f"/ws/{ticket}?width=120&height=40")))
        for tab in tabs:
            await tab.until(lambda t: b"cannot collect" in t.drawn and b"nowhere.sock" in t.drawn, 20,
                            "the producer's failure in the viewer")


async def _until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.05)
