"""`overlaytui serve --lab --probe` with three browser tabs (Playwright, Debian's chromium): the engines see one
overlaytui — the connections to each lab engine's socket, counted at the socket (`ss -xp`: the engine's end of
each connection, joined to the process at the other end), all belong to the serve process (the viewers are in it:
it starts no process), and there are no more with three tabs than before the first; one set of probe agents, the
same services before and after the tabs opened; none left once serve stops."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter

import pytest

from overlaytui.probes.agent import PROBE_LABEL
from tests.helpers import Lab, required_binary, wait_for
from tests.integration.test_coexist_lab import services
from tests.ui.test_serve_browser import chromium, open_page, serving, wait_screen

pytestmark = pytest.mark.lab
NODES = ("node1", "node2", "node3")
NETWORK = "s-plain"
USERS = re.compile(r"pid=(\d+)")


def engine_connections(lab: Lab) -> Counter:
    """pid -> connections it holds to the lab's engine sockets, counted at the sockets."""
    out = subprocess.run([required_binary("ss", "iproute2"), "-xpn"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    sockets = {str(lab.layout(node).socket) for node in NODES}
    engine_ends: list[str] = []  # the peer inode of each connection accepted on an engine socket
    owners: dict[str, list[int]] = {}  # socket inode -> the processes holding it
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        local, inode, peer = parts[4], parts[5], parts[7]
        if local in sockets:
            engine_ends.append(peer)
        owners[inode] = [int(pid) for pid in USERS.findall(line)]
    return Counter(pid for peer in engine_ends for pid in owners.get(peer, ()))


def owned(lab: Lab, pid: int) -> set[str]:
    """The probe services of the run with this pid (an earlier module's may still be there, leased)."""
    return {name for name, labels in services(lab).items() if labels.get(PROBE_LABEL, "").endswith(f":{pid}")}


def test_three_tabs_cost_one_set_of_engine_connections_and_agents(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", NETWORK)  # an overlay to probe
    try:
        _three_tabs(lab)
    finally:
        lab.docker("node1", "network", "rm", NETWORK, check=False)


def _three_tabs(lab: Lab) -> None:
    with chromium() as browser, serving("--lab", "--probe", "--probe-every", "15") as served:
        process = served.process
        try:
            wait_for(lambda: owned(lab, process.pid), 120, "the serve's probe agents")
        except pytest.fail.Exception as failed:  # what serve said is the reason
            pytest.fail(f"{failed}; overlaytui serve said:\n{served.said()}")
        time.sleep(5)  # the stats streams opened
        before = engine_connections(lab)
        assert before[process.pid] > 0
        agents = owned(lab, process.pid)

        pages = [open_page(browser, served.url) for _ in range(3)]
        for page in pages:
            wait_screen(page, "1 Topology", "node1", "node3", timeout=30)
        wait_for(lambda: served.viewers() == 3, 20, "three viewers")
        time.sleep(5)
        after = engine_connections(lab)
        assert not served.children()  # the viewers are in the serve process: no process of their own
        assert {pid for pid in after if pid == process.pid} == {process.pid}
        # one set: no more than before the tabs (a probe round's execs come and go meanwhile)
        assert after[process.pid] <= before[process.pid] + 3
        assert owned(lab, process.pid) == agents  # the same agents, not one set per tab
    assert not owned(lab, process.pid)  # removed when serve stopped
