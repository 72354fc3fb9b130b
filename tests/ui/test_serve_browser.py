"""`overlaytui serve` in a real browser: Playwright driving Debian's chromium (/usr/bin/chromium; no browser is
downloaded). The screen is read from the terminal's text buffer (xterm.js in textual-serve's page: each
terminal the page makes is kept by an init script, `buffer.active` read line by line), never guessed from pixels.

Checked: the page loads and the dashboard's first screen is there within 10 s; a key switches the pane; a second
tab works at the same time (its own start pane and font size from the URL) with one producer behind both, and
both viewers inside the serve process (no process per tab); a tab closed frees its viewer; a wrong token is
refused (no viewer started), the right one opens the dashboard; a websocket without the page's ticket is refused;
nothing is left running after serve stops.

Skipped where chromium or playwright is missing, unless CI (OVERLAYTUI_REQUIRE_LAB=1 or CI=true): then it fails
(.ci/run installs chromium; playwright is in the `test` extra).
"""

from __future__ import annotations

import contextlib
import os
import re
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


class Served:
    """A running `overlaytui serve`: its base URL, its process, what it said (stdout and stderr)."""

    def __init__(self, url: str, process: subprocess.Popen, said) -> None:
        self.url, self.process, self._said = url, process, said

    def said(self) -> str:
        self._said.seek(0)
        return self._said.read()

    def viewers(self) -> int:
        """Viewers open, as serve says on each opening and closing ("viewer 2 opened (2 open)")."""
        counts = OPEN.findall(self.said())
        return int(counts[-1]) if counts else 0

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


OPEN = re.compile(r"overlaytui serve: viewer \d+ (?:opened|closed)[^\n]*\((\d+) open\)")


@contextlib.contextmanager
def serving(*flags: str) -> Iterator[Served]:
    """`overlaytui serve --demo ... --listen 127.0.0.1:PORT` once it listens; stopped (SIGTERM, then its whole
    process group killed) at the end, and nothing of it left running."""
    port = _free_port()
    with tempfile.TemporaryFile("w+") as said:
        process = subprocess.Popen([sys.executable, "-m", "overlaytui", "serve", *flags, "--listen",
                                    f"127.0.0.1:{port}"], stdout=said, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        served = Served(f"http://127.0.0.1:{port}/", process, said)
        try:
            wait_for(lambda: f"127.0.0.1:{port}/" in served.said() or process.poll() is not None, 30,
                     "overlaytui serve to listen")
            assert process.poll() is None, served.said()
            yield served
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=40) == 0, served.said()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the serve process and anything it started
            process.wait(timeout=10)
    gone = not any(_group(p) == process.pid for p in psutil.process_iter())
    assert gone, "a process of overlaytui serve outlived it"


def _group(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, psutil.Error):
        return None


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
    with chromium() as browser, serving("--demo", "loss") as served:
        url = served.url
        opened = time.monotonic()
        first = open_page(browser, url)
        text = wait_screen(first, "1 Topology", "4 Loss", "node4", timeout=FIRST_SCREEN)
        assert time.monotonic() - opened < FIRST_SCREEN
        assert "demo: loss" in text  # the header names the serve process's source

        first.click("#terminal")
        first.keyboard.press("4")
        wait_screen(first, "from \\ to", "%✖", timeout=10)  # the Loss pane's matrix: node4's pairs judged bad

        second = open_page(browser, url + "?pane=networks&fontsize=22")
        wait_screen(second, "network", "driver", "VNI", timeout=FIRST_SCREEN)  # its own start pane
        assert second.evaluate("Number(window.__terminals[0].options.fontSize)") == 22
        # the first tab keeps its own pane (its legend: the matrix's corner reads "from \ to" or "from…" by the widths)
        wait_screen(first, "loss: good", "measured: ping", timeout=5)
        second.click("#terminal")
        second.keyboard.press("1")
        wait_screen(second, "VNI · subnet", timeout=10)  # the Topology pane, in the second tab only
        wait_screen(first, "loss: good", "measured: ping", timeout=5)

        wait_for(lambda: served.viewers() == 2, 10, "two viewers")
        assert not served.children()  # both viewers in the serve process, on its one producer's frames

        second.close()
        wait_for(lambda: served.viewers() == 1, 10, "the closed tab's viewer to end")
        first.keyboard.press("2")
        wait_screen(first, "2 Placement", timeout=10)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_wrong_token_is_refused_and_the_right_one_opens_the_dashboard():
    with chromium() as browser, serving("--demo", "--token", "s3cret-token") as served:
        url = served.url
        assert _status(url) == 401
        assert _status(url + "?token=wrong") == 403
        assert _status(url + "ws/not-a-ticket") == 403  # a websocket needs the ticket of a page served
        page = open_page(browser, url + "?token=guess&pane=loss")
        assert "That token is wrong" in page.inner_text("#message")
        assert served.viewers() == 0  # nothing started for a wrong token
        page.fill("input[name=token]", "s3cret-token")
        page.click("button[type=submit]")
        text = wait_screen(page, "from \\ to", timeout=FIRST_SCREEN)  # the start pane the URL asked for, kept
        assert "demo: healthy" in text
        assert served.viewers() == 1


LOSSY = re.compile(r"\b[2-7]\d\.\d\d%")  # a pair's last round at 20-79 % lost (the fault below: 50 %)


def test_a_presenter_injects_loss_from_one_tab_and_both_tabs_show_it_within_a_probe_round():
    from overlaytui.sources.demo import PROBE_ROUND

    with chromium() as browser, serving("--demo", "--presenter") as served:
        first = open_page(browser, served.url)
        second = open_page(browser, served.url + "?pane=loss")
        wait_screen(first, "1 Topology", "node1", timeout=FIRST_SCREEN)
        wait_screen(second, "from \\ to", timeout=FIRST_SCREEN)
        assert not LOSSY.search(screen(second))
        first.click("#terminal")
        first.keyboard.press("ArrowRight")  # the Topology cursor from the overlay onto node1's column
        first.keyboard.press("f")
        wait_screen(first, "Fault: node1", "loss … % on node1", timeout=10)
        for key in ("Shift+Tab", "Shift+Tab", "Backspace"):  # to the rate's field (a key at a time: focus moves)
            first.keyboard.press(key, delay=50)
        first.keyboard.type("50", delay=50)
        wait_for(lambda: re.search(r"loss % \S*\s+50 ", screen(first)), 10, "the rate typed", interval=0.2)
        for key in ("Tab", "Tab", "Enter"):  # back to the list: its first line, loss on node1
            first.keyboard.press(key, delay=50)
        injected = time.monotonic()
        wait_screen(first, "presenter: loss 50 % on node1", timeout=10)  # said in every viewer
        wait_screen(second, "presenter: loss 50 % on node1", timeout=10)
        first.keyboard.press("4")
        for page in (first, second):  # within one probe round (and the frame after it)
            wait_for(lambda page=page: LOSSY.search(screen(page)), PROBE_ROUND + 5 - (time.monotonic() - injected),
                     "the loss in the Loss pane", interval=0.2)
        assert "loss node1" in screen(second).splitlines()[1]  # the health line names it
        assert "presenter: loss 50 % on node1" in served.said()


def test_a_viewer_cannot_inject_without_presenter():
    with chromium() as browser, serving("--demo") as served:
        page = open_page(browser, served.url)
        wait_screen(page, "1 Topology", "node1", timeout=FIRST_SCREEN)
        page.click("#terminal")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("f")  # no faults here: the key does nothing
        page.keyboard.press("4")
        wait_screen(page, "from \\ to", timeout=10)  # the key after it was handled: no picker came
        assert "Fault:" not in screen(page)
        page.keyboard.press("Control+p", delay=50)
        wait_screen(page, "Search for commands", timeout=10)
        page.keyboard.type("fault loss", delay=50)
        wait_screen(page, "fault loss", "No matches found", timeout=10)  # the palette has no fault to offer
        assert "presenter:" not in served.said()
