"""`overlaytui serve --lab --probe` launched while the manager's engine is down is tried again until its agents
are deployed. It stops the lab's only manager: the swarm takes a while to settle after it (peer lists, network
attachments), so this module runs after every other lab module (its name), not in the middle of them."""

from __future__ import annotations

import pytest

from tests.helpers import Lab, wait_for
from tests.integration.test_serve_lab import NODES, owned
from tests.ui.test_serve_browser import serving

pytestmark = pytest.mark.lab

RETRY_NETWORK = "s-retry"


def test_probing_that_cannot_start_at_launch_is_tried_again(lab: Lab):
    """`serve --lab --probe` launched while the manager's engine is down: its first frame has no manager to create
    the probe agents from — as when, on a loaded machine, the manager's first poll outlasts the poll's bound (the
    first frame is built without it). serve says it cannot probe yet and tries again with backoff; once the engine
    is back the agents are deployed (before, the first failure was final: no agent, ever)."""
    lab.docker("node1", "network", "create", "-d", "overlay", RETRY_NETWORK)
    lab.fault("node1", "engine-stop")
    try:
        with serving("--lab", "--probe", "--probe-every", "15") as served:
            wait_for(lambda: "trying again" in served.said(), 90, "serve to say it cannot probe yet")
            lab.fault("node1", "engine-start")
            try:
                wait_for(lambda: _owned_once_answering(lab, served.process.pid), 120,
                         "the agents once the manager is back")
            except pytest.fail.Exception as failed:
                pytest.fail(f"{failed}; overlaytui serve said:\n{served.said()}")
            assert "trying again" in served.said()
        assert not owned(lab, served.process.pid)  # removed when serve stopped
    finally:
        lab.fault("node1", "engine-start")
        wait_for(lambda: list(lab.node_states().values()) == ["Ready"] * len(NODES), 120, "every node Ready again")
        wait_for(lambda: lab.docker("node1", "network", "rm", RETRY_NETWORK, check=False).returncode == 0, 60,
                 f"{RETRY_NETWORK} removed")


def _owned_once_answering(lab: Lab, pid: int) -> set[str]:
    """`owned`, nothing while the manager just started still refuses the CLI."""
    try:
        return owned(lab, pid)
    except pytest.fail.Exception:
        return set()
