"""`overlaytui serve`'s web side without a browser (tests/ui/test_serve_browser.py drives chromium): who gets a
token, the pages a request gets (token asked for, wrong, right; the Host checked on loopback; the viewers' cap),
tickets single use and short-lived, the URL's parameters bounded."""

from __future__ import annotations

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
                       max_viewers=max_viewers, viewer_options=[], theme=None, say=lambda s, t: None, probe=False)


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
        await stage.relay.close()


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
        await stage.relay.close()


async def test_viewers_beyond_the_cap_are_refused():
    stage = _stage(max_viewers=1)
    client = await _client(stage)
    try:
        stage.services.add(object())  # one viewer running
        full = await client.get("/")
        assert full.status == 503 and "--max-viewers" in await full.text()
    finally:
        stage.services.clear()
        await client.close()
        await stage.relay.close()
