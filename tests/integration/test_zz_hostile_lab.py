"""The real lab with a hostile node and a failing engine. This module restarts engines (node3 with a hostname
holding markup and an OSC title sequence; node2 stopped mid-round), so its name sorts it last: a node whose
engine restarted can take minutes to run its tasks again, which must not slow the other modules."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from overlaytui.app import OverlayApp
from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.lab.layout import MINIMAL_PROBE_IMAGE
from overlaytui.panes.common import Picked, Selection
from overlaytui.probes.agent import PROBE_LABEL
from overlaytui.sources.swarm import DockerSwarmSource
from tests.helpers import Lab, wait_for
from tests.integration.test_app_lab import until

HOSTILE = "[b]n3[/b]\x1b]0;pwned\x07"
SHOWN = "[b]n3[/b]\\x1b]0;pwned\\x07"  # how overlaytui shows it: the escape made visible, never interpreted
NET = "z-hostile"
RAW = ("\x1b", "\x07")


def hostnames(lab: Lab) -> list[str]:
    return lab.docker("node1", "node", "ls", "--format", "{{.Hostname}}").stdout.splitlines()


def services_gone(lab: Lab) -> bool:
    return lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.strip() == ""


@pytest.fixture(scope="module")
def hostile(lab: Lab):
    lab.fault("node3", "hostname", HOSTILE)
    try:
        wait_for(lambda: HOSTILE in hostnames(lab), 60, "node3's new hostname in the swarm")
        wait_for(lambda: lab.node_states().get("node1") == "Ready" and len(lab.node_states()) == 3, 60,
                 "the nodes Ready")
        lab.docker("node1", "network", "create", "-d", "overlay", "--attachable", NET)
        yield lab
    finally:
        lab.docker("node1", "network", "rm", NET, check=False)
        lab.fault("node3", "hostname", "node3")
        wait_for(lambda: "node3" in hostnames(lab), 60, "node3's name back")


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overlaytui", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, codes", [
    (("snapshot", "--lab"), (0,)),
    (("snapshot", "--lab", "--json"), (0,)),
    (("probe", "--lab", "--network", NET, "--count", "20", "--interval", "0.01"), (0,)),
    (("doctor", "--lab", "--network", NET, "--count", "20", "--interval", "0.01", "--kind", "ping,mtu"), (0, 1)),
])
def test_one_shot_commands_show_the_hostile_name_literally(hostile: Lab, args, codes):
    proc = cli(*args)
    output = proc.stdout + proc.stderr
    assert proc.returncode in codes, output
    assert "Traceback" not in output
    assert not any(char in output for char in RAW), "a raw escape reached the terminal"
    if "--json" in args:
        assert "\\u001b]0;pwned\\u0007" in proc.stdout  # JSON keeps the value, escaped by JSON
    else:
        assert SHOWN in proc.stdout
    wait_for(lambda: services_gone(hostile), 30, "the probe agents removed")


async def test_the_dashboard_on_the_hostile_node(hostile: Lab):
    app = OverlayApp(DockerSwarmSource(lab_endpoints()), source_label="lab", interval=0.5,
                     persist_config=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and any(
            n.hostname == HOSTILE for n in app.snapshot.nodes), 30, "the hostile node in a snapshot")
        for key in "123456":
            await pilot.press(key)
            await pilot.pause(0.2)
            screen = app.export_screenshot()
            assert not any(char in screen for char in RAW), key
        await pilot.press("1")
        await pilot.pause(0.2)
        assert SHOWN in app.export_screenshot().replace("&#160;", " ")
        await pilot.press("ctrl+p")
        await pilot.press(*"n3")
        await pilot.pause(0.5)
        assert not any(char in app.export_screenshot() for char in RAW)
        await pilot.press("escape")
        node3 = next(n for n in app.snapshot.nodes if n.hostname == HOSTILE)
        app.on_picked(Picked("topology", Selection("node", node3.id, "")))  # enter on its topology column
        await pilot.pause(0.2)
        assert SHOWN in str(app.query_one("#status").render())
        app.open_detail("node", node3.id)
        await pilot.pause(0.2)
        assert not any(char in app.export_screenshot() for char in RAW)
        await pilot.press("escape", "q")


def test_an_engine_stopping_mid_round_gives_error_results_not_a_crash(hostile: Lab):
    lab = hostile
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "overlaytui", "probe", "--lab", "--network", NET, "--probe-image",
                             MINIMAL_PROBE_IMAGE, "--count", "1500", "--interval", "0.01", "--kind", "ping,mtu",
                             "--timeout", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: lab.docker("node2", "ps", "-q", "--filter", f"label={PROBE_LABEL}").stdout.strip(), 60,
                 "node2's agent to run")
        time.sleep(3)  # the round is under way (15 s of pings)
        lab.fault("node2", "engine-stop")
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        lab.fault("node2", "engine-start")
    assert "Traceback" not in err, err
    assert proc.returncode in (1, 2, 3), (out, err)  # node2's pairs: errors or loss, never "all fine"
    assert "node2" in out and time.monotonic() - started < 180
    wait_for(lambda: services_gone(lab), 60, "the agents removed by the manager")
    wait_for(lambda: lab.node_states().get("node2") == "Ready", 90, "node2 back")

