"""`overlaytui serve` in a real browser: Playwright driving Debian's chromium (/usr/bin/chromium; no browser is
downloaded). The screen is read from the terminal's text buffer (xterm.js in textual-serve's page: each
terminal the page makes is kept by an init script, `buffer.active` read line by line), never guessed from pixels.

Checked: the page loads and the dashboard's first screen is there within 10 s; a key switches the pane; a second
tab works at the same time (its own start pane and font size from the URL) with one producer behind both; a tab
closed frees its viewer; a wrong token is refused (no viewer started), the right one opens the dashboard; a
websocket without the page's ticket is refused; nothing is left running after serve stops.

Skipped where chromium or playwright is missing, unless CI (OVERLAYTUI_REQUIRE_LAB=1 or CI=true): then it fails
(.ci/run installs chromium; playwright is in the `test` extra).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import lab_required, wait_for

CHROMIUM = Path("/usr/bin/chromium")
FIRST_SCREEN = 10.0  # seconds from opening the page to the dashboard's first screen (issue 25)

# every xterm.js Terminal the page makes, kept where page.evaluate reaches it: textual.js assigns its terminal to
# `this.terminal` of its own object; a setter on Object.prototype sees that assignment (and no other of the page)
KEEP_TERMINALS = """
window.__terminals = [];
Object.defineProperty(Object.prototype, 'terminal', {
  configurable: true,
  set(value) {
    Object.defineProperty(this, 'terminal', {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer && typeof value.loadAddon === 'function') window.__terminals.push(value);
  },
});
"""
SCREEN_TEXT = """() => {
  const term = window.__terminals[0];
  if (!term) return '';
  const buffer = term.buffer.active, rows = [];
  for (let i = 0; i < term.rows; i++) {
    const line = buffer.getLine(buffer.viewportY + i);
    rows.push(line ? line.translateToString(true) : '');
  }
  return rows.join('\\n');
}"""


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = "playwright (pip install playwright)" if sync_playwright is None else \
        f"{CHROMIUM} (apt-get install chromium)" if not CHROMIUM.exists() else ""
    if missing:
        if lab_required():
            pytest.fail(f"the browser tests need {missing}")
        pytest.skip(f"needs {missing}")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(*flags: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`overlaytui serve --demo ... --listen 127.0.0.1:PORT`, its base URL once it listens; stopped (SIGTERM, then
    its whole process group killed) at the end, and nothing of it left running."""
    port = _free_port()
    with tempfile.TemporaryFile("w+") as said:
        process = subprocess.Popen([sys.executable, "-m", "overlaytui", "serve", *flags, "--listen",
                                    f"127.0.0.1:{port}"], stdout=said, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        try:
            def listening() -> bool:
                said.seek(0)
                return f"127.0.0.1:{port}/" in said.read() or process.poll() is not None
            wait_for(listening, 30, "overlaytui serve to listen")
            said.seek(0)
            assert process.poll() is None, said.read()
            yield f"http://127.0.0.1:{port}/", process
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=40) == 0
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the serve process and every viewer it started
            process.wait(timeout=10)
    gone = not any(p.info["cmdline"] and "overlaytui.viewer" in " ".join(p.info["cmdline"])
                   and _group(p) == process.pid for p in psutil.process_iter(["cmdline"]))
    assert gone, "a viewer outlived overlaytui serve"


def _group(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return None


def viewers(process: subprocess.Popen) -> list[psutil.Process]:
    """The viewer processes the serve process runs (one per browser tab)."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if "overlaytui.viewer" in " ".join(child.cmdline()):
                found.append(child)
    return found


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], timeout=30000)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(15000)
    page.add_init_script(KEEP_TERMINALS)
    page.goto(url)
    return page


def screen(page) -> str:
    return page.evaluate(SCREEN_TEXT)


def wait_screen(page, *words: str, timeout: float = 10.0) -> str:
    return wait_for(lambda: (text := screen(page)) and all(w in text for w in words) and text, timeout,
                    f"the browser's screen to show {words}", interval=0.2)


def test_two_tabs_view_one_producer_in_a_real_browser():
    with chromium() as browser, serving("--demo", "loss") as (url, process):
        opened = time.monotonic()
        first = open_page(browser, url)
        text = wait_screen(first, "1 Topology", "4 Loss", "node4", timeout=FIRST_SCREEN)
        assert time.monotonic() - opened < FIRST_SCREEN
        assert "demo: loss" in text  # the header names the serve process's source

        first.click("#terminal")
        first.keyboard.press("4")
        wait_screen(first, "from \\ to", "2.00%", timeout=10)  # the Loss pane's matrix: node4's 2 % (the demo's)

        second = open_page(browser, url + "?pane=networks&fontsize=22")
        wait_screen(second, "network", "driver", "VNI", timeout=FIRST_SCREEN)  # its own start pane
        assert second.evaluate("Number(window.__terminals[0].options.fontSize)") == 22
        assert "from \\ to" in screen(first)  # the first tab keeps its own pane
        second.click("#terminal")
        second.keyboard.press("1")
        wait_screen(second, "VNI · subnet", timeout=10)  # the Topology pane, in the second tab only
        assert "from \\ to" in screen(first)

        running = wait_for(lambda: len(viewers(process)) == 2 and viewers(process), 10, "two viewers")
        assert len(running) == 2  # one dashboard process per tab; one producer (the serve process) behind both
        relay = [c for c in psutil.Process(process.pid).net_connections(kind="unix") if c.laddr]
        assert len(relay) >= 2  # each viewer reads the one relay

        second.close()
        wait_for(lambda: len(viewers(process)) == 1, 10, "the closed tab's viewer to end")
        first.keyboard.press("2")
        wait_screen(first, "2 Placement", timeout=10)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_wrong_token_is_refused_and_the_right_one_opens_the_dashboard():
    with chromium() as browser, serving("--demo", "--token", "s3cret-token") as (url, process):
        assert _status(url) == 401
        assert _status(url + "?token=wrong") == 403
        assert _status(url + "ws/not-a-ticket") == 403  # a websocket needs the ticket of a page served
        page = open_page(browser, url + "?token=guess&pane=loss")
        assert "That token is wrong" in page.inner_text("#message")
        assert not viewers(process)  # nothing started for a wrong token
        page.fill("input[name=token]", "s3cret-token")
        page.click("button[type=submit]")
        text = wait_screen(page, "from \\ to", timeout=FIRST_SCREEN)  # the start pane the URL asked for, kept
        assert "demo: healthy" in text
        assert len(viewers(process)) == 1
